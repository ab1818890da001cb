"""Errors as `application/problem+json` (RFC 9457): a type, a title, the status and a detail that
speaks to the caller. Never a stack trace, a statement or a DSN: anything unforeseen is a bare
500 here and a logged traceback on the server."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from optiinfra_store.api.auth import READ_SCOPE, Forbidden, Unauthenticated
from optiinfra_store.errors import ConfigurationError, InvalidArgument, NotFound, StoreTimeout, StoreUnavailable

_log = logging.getLogger("optiinfra_store.api")

MEDIA_TYPE = "application/problem+json"
RETRY_AFTER_SECONDS = "5"


class Problem(Exception):
    """A request answered with a problem document."""

    def __init__(self, status: int, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.extra = extra


_CHALLENGE = {
    "WWW-Authenticate": {
        "description": "a Bearer challenge (RFC 6750) with the error and its description",
        "required": True,
        "schema": {"type": "string"},
    }
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}
# what each status means on every route that can answer it, and the headers it always carries
_MEANINGS: dict[int, tuple[str, dict[str, Any]]] = {
    400: ("a cursor the service did not give out", {}),
    401: ("no usable token: missing, malformed, expired, living too long or badly signed", _CHALLENGE),
    403: (f"the token lacks the scope {READ_SCOPE}", _CHALLENGE),
    404: ("not found", {}),
    422: ("a parameter out of its type, format or range: named in detail, listed in errors", {}),
    429: ("too many at once: retry later", _RETRY_AFTER),
    503: ("the database is unavailable or the service cannot answer now: retry later", _RETRY_AFTER),
}


def responses(*statuses: int | tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI responses of a route's problem documents: each a status, or a status and what it
    means on that route."""
    documented: dict[int | str, dict[str, Any]] = {}
    for entry in statuses:
        status, meaning = entry if isinstance(entry, tuple) else (entry, _MEANINGS[entry][0])
        content = {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        documented[status] = {"description": meaning, "content": content}
        if _MEANINGS[status][1]:
            documented[status]["headers"] = _MEANINGS[status][1]
    return documented


def document(status: int, title: str, detail: str) -> dict[str, Any]:
    """The problem document's members (RFC 9457 3.1)."""
    slug = title.lower().replace(" ", "-")
    return {"type": f"https://optiinfra.dev/problems/{slug}", "title": title, "status": status, "detail": detail}


def problem(
    status: int, title: str, detail: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = document(status, title, detail)
    return JSONResponse({**body, **extra}, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _field(loc: tuple[Any, ...] | list[Any]) -> tuple[str, str]:
    """Where a validation error is (query, path, header) and which parameter it names."""
    where = str(loc[0]) if loc else "request"
    name = str(loc[1]) if len(loc) > 1 else where  # "status", not "status.0"
    return where, name


async def _invalid_request(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for error in exc.errors():
        where, name = _field(error.get("loc", ()))
        errors.append({"in": where, "parameter": name, "message": error.get("msg", "invalid")})
    detail = "; ".join(f"{e['parameter']}: {e['message']}" for e in errors)
    return problem(422, "Invalid parameter", detail, errors=errors)


def _quoted(text: str) -> str:
    """Text fit for a quoted-string of a WWW-Authenticate parameter (RFC 6750 3)."""
    return "".join(c if " " <= c <= "~" and c not in '"\\' else "'" if c == '"' else "" for c in text)


async def _unauthenticated(_: Request, exc: Exception) -> Response:
    challenge = f'Bearer realm="optiinfra", error="invalid_token", error_description="{_quoted(str(exc))}"'
    return problem(401, "Unauthorized", str(exc), headers={"WWW-Authenticate": challenge})


async def _forbidden(_: Request, exc: Exception) -> Response:
    challenge = f'Bearer realm="optiinfra", error="insufficient_scope", scope="{READ_SCOPE}"'
    return problem(403, "Forbidden", str(exc), headers={"WWW-Authenticate": challenge})


async def _not_found(_: Request, exc: Exception) -> Response:
    # the same for another customer's row as for one that does not exist: the database hid it
    return problem(404, "Not found", str(exc))


async def _invalid_argument(_: Request, exc: Exception) -> Response:
    return problem(400, "Invalid parameter", str(exc))


async def _unavailable(_: Request, exc: Exception) -> Response:
    _log.warning("database unavailable: %s", type(exc).__name__)
    return problem(
        503, "Service unavailable", "the database is unavailable; retry shortly", {"Retry-After": RETRY_AFTER_SECONDS}
    )


async def _misconfigured(request: Request, exc: Exception) -> Response:
    # the schema is behind, or the role cannot be confined: the operator's to fix, not the caller's
    _log.error("cannot serve %s: %s", getattr(request.scope.get("route"), "path", "?"), exc)
    return problem(
        503, "Service unavailable", "the service cannot answer this now; it has been logged", {"Retry-After": "30"}
    )


async def _problem(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    extra = dict(exc.extra)
    retry_after = extra.pop("retry_after", None)
    headers = {"Retry-After": retry_after} if retry_after else None
    return problem(exc.status, exc.title, exc.detail, headers, **extra)


async def _http(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    titles = {404: "Not found", 405: "Method not allowed"}
    detail = "no such route" if exc.status_code == 404 else str(exc.detail)
    return problem(exc.status_code, titles.get(exc.status_code, "Error"), detail, headers=exc.headers)


async def _internal(_: Request, exc: Exception) -> Response:
    # the server logs the traceback (Starlette re-raises after this answer is sent)
    return problem(500, "Internal error", "the request failed on the server; it has been logged")


def install(app: FastAPI) -> None:
    handlers: list[tuple[type[Exception], Any]] = [
        (RequestValidationError, _invalid_request),
        (Unauthenticated, _unauthenticated),
        (Forbidden, _forbidden),
        (NotFound, _not_found),
        (InvalidArgument, _invalid_argument),
        (StoreUnavailable, _unavailable),
        (StoreTimeout, _unavailable),
        (ConfigurationError, _misconfigured),
        (Problem, _problem),
        (HTTPException, _http),
        (Exception, _internal),
    ]
    for cls, handler in handlers:
        app.add_exception_handler(cls, handler)
