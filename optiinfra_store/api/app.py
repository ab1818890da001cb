"""The workflow-history service: the seed's five routes, live events and the page, over a Store.

Every request with a token runs through `store.for_customer(<the token's customer>)`: the
database, not a handler, decides what the caller sees (another customer's execution is as absent
as one that never existed). One listening connection serves every event stream of the process.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, BeforeValidator
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from optiinfra_store import __version__
from optiinfra_store.api import openapi, problems
from optiinfra_store.api.auth import READ_SCOPE, Principal, TokenVerifier
from optiinfra_store.api.models import DemoCustomer, ExecutionDetails, Health, HistoryPage, Me, Trend
from optiinfra_store.api.problems import responses
from optiinfra_store.enums import WorkflowStatus, WorkflowType
from optiinfra_store.errors import AccessDenied, InvalidArgument, NotFound, StoreError, StoreTimeout, StoreUnavailable
from optiinfra_store.records import WorkflowPerformance, WorkflowStatistics
from optiinfra_store.store import Store
from optiinfra_store.workflow_events import EventsHub, WorkflowEvents, parse_position

_log = logging.getLogger("optiinfra_store.api")
_access = logging.getLogger("optiinfra_store.api.access")

JSON = "application/json"
KEEPALIVE_SECONDS = 15.0
MAX_STREAMS = 5000  # event streams per server process
MAX_CUSTOMER_STREAMS = 50  # and per customer
ANALYTICS_PER_CUSTOMER = 2  # statistics / performance computed at once for one customer
ANALYTICS_QUEUED_PER_CUSTOMER = 8  # different ones waiting or running (429 beyond)
STATIC = resources.files("optiinfra_store.api") / "static"
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@dataclass
class Service:
    """What the routes share: the platform store (never handed to a route), the token verifier,
    the events hub and the confined stores made so far."""

    store: Store
    verifier: TokenVerifier
    cache_max_age: int = 15
    demo_customers: Sequence[DemoCustomer] = ()
    poll_interval: float = 30.0  # a backstop: the hub's notifications wake subscribers at once
    hub: EventsHub | None = None
    stopping: bool = False
    streams: weakref.WeakSet[WorkflowEvents] = field(default_factory=weakref.WeakSet)
    _streams_of: dict[UUID, int] = field(default_factory=dict)
    _open_streams: int = 0
    _computing: dict[tuple[Any, ...], asyncio.Future[Any]] = field(default_factory=dict)
    _analytics_slots: dict[UUID, tuple[asyncio.Semaphore, int]] = field(default_factory=dict)  # and its users

    def open_stream(self, customer_id: UUID) -> None:
        """Count an event stream in; 429 beyond the caps (per customer, per process)."""
        if self._open_streams >= MAX_STREAMS or self._streams_of.get(customer_id, 0) >= MAX_CUSTOMER_STREAMS:
            raise problems.Problem(
                429, "Too many requests", "too many event streams open; close one or retry later", retry_after="30"
            )
        self._streams_of[customer_id] = self._streams_of.get(customer_id, 0) + 1
        self._open_streams += 1

    def close_stream(self, customer_id: UUID) -> None:
        self._open_streams -= 1
        left = self._streams_of.get(customer_id, 1) - 1
        if left:
            self._streams_of[customer_id] = left
        else:
            self._streams_of.pop(customer_id, None)

    async def analytics(self, key: tuple[Any, ...], compute: Callable[[], Awaitable[Any]]) -> Any:
        """The figures of `compute`, computed once for identical requests in flight (a burst of
        revalidations costs one query) and at most ANALYTICS_PER_CUSTOMER at once per customer
        (key[0]), so one customer cannot take the pool from the others."""
        running = self._computing.get(key)
        if running is None:
            if sum(1 for k in self._computing if k[0] == key[0]) >= ANALYTICS_QUEUED_PER_CUSTOMER:
                raise problems.Problem(
                    429, "Too many requests", "too many analytics requests of this customer at once", retry_after="5"
                )
            running = self._computing[key] = asyncio.ensure_future(self._limited(key[0], compute))
            running.add_done_callback(lambda _: self._computing.pop(key, None))
            running.add_done_callback(_collect)  # every waiter may have left
        return await asyncio.shield(running)

    async def _limited(self, customer_id: UUID, compute: Callable[[], Awaitable[Any]]) -> Any:
        slots, users = self._analytics_slots.get(customer_id) or (asyncio.Semaphore(ANALYTICS_PER_CUSTOMER), 0)
        self._analytics_slots[customer_id] = (slots, users + 1)
        try:
            async with slots:
                return await compute()
        finally:
            slots, users = self._analytics_slots[customer_id]
            if users == 1:
                del self._analytics_slots[customer_id]
            else:
                self._analytics_slots[customer_id] = (slots, users - 1)

    async def close_streams(self) -> None:
        """End every open event stream and refuse new ones (the clients reconnect, to another
        process if need be)."""
        self.stopping = True
        for stream in list(self.streams):
            await stream.close()

    def store_for(self, customer_id: UUID) -> Store:
        """The store confined to one customer: made for each request (a few microseconds)."""
        return self.store.for_customer(customer_id)


def _service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


# in the OpenAPI document only: the verifier reads the header itself, to say what is wrong with it
BEARER = HTTPBearer(
    bearerFormat="JWT",
    description=f"a JWT with exp, sub, customer_id and scope (reads need {READ_SCOPE})",
    auto_error=False,
)


async def _customer_store(
    request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]
) -> Store:
    """The store confined to the customer of the request's token (401 and 403 otherwise)."""
    service = _service(request)
    principal = service.verifier.verify(request.headers.get("authorization"))
    request.state.customer_id = str(principal.customer_id)  # for the request log
    principal.require(READ_SCOPE)
    request.state.principal = principal
    return service.store_for(principal.customer_id)


Caller = Annotated[Store, Depends(_customer_store)]
Limit = Annotated[int, Query(ge=1, le=1000, description="executions per page")]
Cursor = Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")]
Days = Annotated[int, Query(ge=1, le=366, description="the window: this many days back from now")]
# RFC 3339 section 5.6 (T and Z in either case); the day, hour and offset ranges are checked by parsing
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
# the store's range: years 1 to 9999 in UTC, less the two instants the driver sends as infinities
_EARLIEST = datetime.min.replace(tzinfo=UTC) + timedelta(microseconds=1)
_LATEST = datetime.max.replace(tzinfo=UTC) - timedelta(microseconds=1)


def _rfc3339(value: object) -> datetime:
    """Only an RFC 3339 date-time, as the document says (pydantic alone would also read a number
    as a Unix time, or a date without a time)."""
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 date-time with an offset, like 2026-01-01T00:00:00Z")
    return datetime.fromisoformat(value.upper())


def _within_the_store(value: datetime) -> datetime:
    """A bound beyond the store's range selects what the end of the range selects."""
    return min(max(value, _EARLIEST), _LATEST)


Instant = Annotated[datetime, BeforeValidator(_rfc3339), AfterValidator(_within_the_store)]
router = APIRouter()


_PRIVATE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _json(body: str | bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer; not stored by caches unless `headers` say otherwise."""
    return Response(body, status_code=status, media_type=JSON, headers={**_PRIVATE, **(headers or {})})


@router.get("/healthz", response_model=Health, tags=["operations"])
async def healthz() -> Response:
    """The process is up."""
    return _json(b'{"status":"ok"}')


@router.get("/readyz", response_model=Health, tags=["operations"], responses={503: {"model": Health}})
async def readyz(request: Request) -> Response:
    """The database answers and its schema is current (503 otherwise); `events` says whether live
    events arrive at once or, while the hub reconnects, by polling."""
    service = _service(request)
    events = None if service.hub is None else "listening" if service.hub.listening else "reconnecting"
    try:
        pending = await service.store.pending_migrations()
    except (StoreUnavailable, StoreTimeout) as exc:
        _log.warning("not ready: %s", type(exc).__name__)
        return _json(Health(status="database unavailable", events=events).model_dump_json(), 503)
    except AccessDenied:  # before 0015 the application role may not read the list of migrations
        return _json(Health(status="schema not current", events=events).model_dump_json(), 503)
    if pending:
        body = Health(status="schema not current", pending_migrations=pending, events=events)
        return _json(body.model_dump_json(), 503)
    return _json(Health(status="ready", events=events).model_dump_json())


@router.get("/api/me", response_model=Me, tags=["session"], responses=responses(401, 403, 503))
async def me(request: Request, store: Caller) -> Response:
    """Who the token speaks for."""
    principal: Principal = request.state.principal
    try:
        name: str | None = (await store.customers.get(principal.customer_id)).name
    except NotFound:
        name = None
    body = Me(
        sub=principal.subject, customer_id=principal.customer_id, customer_name=name, scopes=sorted(principal.scopes)
    )
    return _json(body.model_dump_json())


@router.get(
    "/api/demo/customers",
    response_model=list[DemoCustomer],
    tags=["session"],
    responses=responses((404, "the service is not running the embedded demo")),
)
async def demo_customers(request: Request) -> Response:
    """Ready tokens for the seeded customers: only when the service runs the embedded demo."""
    customers = _service(request).demo_customers
    if not customers:
        raise problems.Problem(404, "Not found", "no such route")
    return _json(json.dumps([c.model_dump(mode="json") for c in customers]))


async def _history(
    store: Store,
    limit: int,
    cursor: str | None,
    status: list[WorkflowStatus] | None,
    workflow_type: WorkflowType | None,
    agent_id: UUID | None,
    since: datetime | None,
    until: datetime | None,
) -> Response:
    try:
        page = await store.workflow_executions.list(
            agent_id=agent_id,
            workflow_type=workflow_type,
            status=status or None,
            started_after=since,
            started_before=until,
            limit=limit,
            cursor=cursor,
        )
    except InvalidArgument as exc:
        if exc.argument != "cursor":  # since and until are within the store's range (Instant)
            raise
        raise problems.Problem(400, "Invalid parameter", "cursor: not a cursor this service gave out") from None
    return _json(page.model_dump_json())


HISTORY_PROBLEMS = responses(400, 401, 403, 422, 503)


@router.get("/api/workflows/history", response_model=HistoryPage, tags=["workflows"], responses=HISTORY_PROBLEMS)
async def history(
    store: Caller,
    limit: Limit = 50,
    cursor: Cursor = None,
    status: Annotated[list[WorkflowStatus] | None, Query(description="repeat for several")] = None,
    workflow_type: WorkflowType | None = None,
    agent_id: UUID | None = None,
    since: Annotated[Instant | None, Query(description="started at or after")] = None,
    until: Annotated[Instant | None, Query(description="started before")] = None,
) -> Response:
    """The caller's executions, newest first, a page at a time."""
    return await _history(store, limit, cursor, status, workflow_type, agent_id, since, until)


# statistics and performance: answered with a validator of their figures
IfNoneMatch = Annotated[str | None, Header(description="the ETag of figures the client has: 304 while unchanged")]
_VALIDATED = {
    "ETag": {"description": "a weak validator of the figures", "required": True, "schema": {"type": "string"}}
}
ANALYTICS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"headers": _VALIDATED},
    304: {"description": "the figures are those of If-None-Match", "headers": _VALIDATED},
    **responses(401, 403, 422, 429, 503),
}


@router.get(
    "/api/workflows/statistics", response_model=WorkflowStatistics, tags=["workflows"], responses=ANALYTICS_RESPONSES
)
async def statistics(
    request: Request,
    store: Caller,
    days: Days = 30,
    workflow_type: WorkflowType | None = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """Counts by status, success rate and durations (avg, p50, p95, max), overall and by type."""
    return await _analytics(request, store, store.workflow_executions.statistics, days, workflow_type, if_none_match)


@router.get(
    "/api/workflows/performance-metrics",
    response_model=WorkflowPerformance,
    tags=["workflows"],
    responses=ANALYTICS_RESPONSES,
)
async def performance_metrics(
    request: Request,
    store: Caller,
    days: Days = 30,
    workflow_type: WorkflowType | None = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """Duration buckets, error patterns, slowest steps, retry hotspots and tips."""
    return await _analytics(request, store, store.workflow_executions.performance, days, workflow_type, if_none_match)


async def _analytics(
    request: Request,
    store: Store,
    compute: Callable[..., Awaitable[WorkflowStatistics | WorkflowPerformance]],
    days: int,
    workflow_type: WorkflowType | None,
    if_none_match: str | None,
) -> Response:
    """The figures of `compute` over the last `days`, shared with identical requests in flight,
    answered with their validator."""
    key = (store.customer_id, compute.__name__, days, workflow_type)
    since = datetime.now(UTC) - timedelta(days=days)
    figures = await _service(request).analytics(key, lambda: compute(since=since, workflow_type=workflow_type))
    return _cached(request, figures, if_none_match)


@router.get("/api/workflows/trend", response_model=Trend, tags=["workflows"], responses=responses(401, 403, 422, 503))
async def trend(
    store: Caller,
    days: Annotated[int, Query(ge=1, le=366, description="the window, in days: at most 31 with bucket=hour")] = 30,
    bucket: Literal["day", "hour"] = "day",
    workflow_type: WorkflowType | None = None,
) -> Response:
    """Executions per day (or hour, at most 31 days) over the window, by status, with their
    average duration: whole UTC days or hours, the current one last."""
    width = timedelta(days=1) if bucket == "day" else timedelta(hours=1)
    if bucket == "hour" and days > 31:
        raise problems.Problem(422, "Invalid parameter", "days: at most 31 with bucket=hour")
    now = datetime.now(UTC)
    current = now.replace(minute=0, second=0, microsecond=0)
    if bucket == "day":
        current = current.replace(hour=0)
    since = current - width * (days * 24 - 1 if bucket == "hour" else days - 1)
    buckets = await store.workflow_executions.trend(bucket=width, since=since, workflow_type=workflow_type)
    return _json(Trend.model_construct(buckets=buckets).model_dump_json())


# an event's id, `<transition id>@<position>`, or a bare transition id
EVENT_ID = r"^[0-9]{1,19}(@[0-9]{1,19}:([0-9]{1,19}(-[0-9]{1,19})?(,[0-9]{1,19}(-[0-9]{1,19})?)*)?)?$"
TRANSITION_EVENT = {
    "type": "object",
    "properties": {
        "event": {"const": "transition"},
        "id": {"type": "string", "pattern": EVENT_ID},
        "data": {
            "type": "string",
            "contentMediaType": JSON,
            "contentSchema": {"$ref": "#/components/schemas/WorkflowTransition"},
        },
        "retry": {"type": "integer", "minimum": 0},
    },
}
EVENTS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the stream, one event per transition",
        "content": {"text/event-stream": {"itemSchema": TRANSITION_EVENT}},
    },
    **responses(
        401,
        403,
        (404, "Last-Event-ID names no event to resume after (unknown, or too far back): start without it"),
        422,
        429,
        503,
    ),
}


@router.get("/api/workflows/events", tags=["workflows"], response_class=StreamingResponse, responses=EVENTS_RESPONSES)
async def events(
    request: Request,
    store: Caller,
    last_event_id: Annotated[
        str | None,
        Header(max_length=48_000, pattern=EVENT_ID, description="the id of the last event received: resume after it"),
    ] = None,
) -> Response:
    """Server-Sent Events: the caller's workflow transitions as they are committed. Each event's
    id is `<transition id>@<position>`; sent back as `Last-Event-ID`, the position resumes the
    stream with nothing lost or repeated, even when transactions overlapped."""
    service = _service(request)
    if service.hub is None or service.stopping:
        raise problems.Problem(
            503, "Service unavailable", "this server is not streaming events; retry shortly", retry_after="5"
        )
    after, position = _resume_from(last_event_id)
    principal: Principal = request.state.principal
    service.open_stream(principal.customer_id)
    stack = AsyncExitStack()
    stack.callback(service.close_stream, principal.customer_id)
    subscription = store.workflow_events(
        after=after, resume=position, hub=service.hub, poll_interval=service.poll_interval
    )
    try:
        stream = await stack.enter_async_context(subscription)  # an unknown Last-Event-ID answers 404 here
    except BaseException:
        await stack.aclose()
        raise
    service.streams.add(stream)
    stack.callback(service.streams.discard, stream)
    return _EventStream(_sse(stream, principal.expires), stack)


def _resume_from(last_event_id: str | None) -> tuple[int | None, str | None]:
    """(after, position) from a Last-Event-ID of the form EVENT_ID; 404 for one no event of this
    service can carry (a number beyond int8, a range reversed or too long): like one too far back,
    the client starts without it."""
    if last_event_id is None:
        return None, None
    transition, at, position = last_event_id.partition("@")
    try:
        if at:
            parse_position(position)
            return None, position
        if int(transition) < 2**63:
            return int(transition), None
    except InvalidArgument:
        pass
    raise problems.Problem(404, "Not found", "last-event-id: no event of this service has this id; start without it")


class _EventStream(StreamingResponse):
    """An event stream that always ends its subscription, even when the client leaves before the
    first byte (the body's generator then never starts, so its own cleanup would not run)."""

    def __init__(self, body: AsyncIterator[bytes], subscription: AsyncExitStack) -> None:
        super().__init__(
            body, media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )
        self._subscription = subscription

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._subscription.aclose()


def _collect(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: a read that ended with the stream is not an unhandled error


async def _sse(stream: WorkflowEvents, token_expires: float) -> AsyncIterator[bytes]:
    """The stream's frames, until it closes or the token it was opened with expires (the client
    then reconnects with a fresh token and its Last-Event-ID)."""
    pending: asyncio.Future[Any] | None = None
    try:
        yield b"retry: 1000\n\n"
        while True:
            left = token_expires - time.time()
            if left <= 0:
                return
            if pending is None:
                pending = asyncio.ensure_future(anext(stream))
                pending.add_done_callback(_collect)
            done, _ = await asyncio.wait({pending}, timeout=min(KEEPALIVE_SECONDS, left))
            if not done:
                if time.time() < token_expires:
                    yield b": keepalive\n\n"
                continue
            finished, pending = pending, None
            try:
                transition = finished.result()
            except StopAsyncIteration:  # closed: the service is stopping
                return
            except StoreError as exc:  # the client reconnects with Last-Event-ID and loses nothing
                _log.warning("event stream ended: %s", type(exc).__name__)
                return
            position = stream.position  # None in the rare case it has grown too long: the bare id
            event_id = f"{transition.id}@{position}" if position is not None else str(transition.id)
            yield b"id: %s\nevent: transition\ndata: %s\n\n" % (
                event_id.encode(),
                transition.model_dump_json().encode(),
            )
    finally:
        if pending is not None:
            pending.cancel()


@router.get(
    "/api/workflows/{execution_id}/details",
    response_model=ExecutionDetails,
    tags=["workflows"],
    responses=responses(401, 403, (404, "no execution of the caller's has this id"), 422, 503),
)
async def details(store: Caller, execution_id: UUID) -> Response:
    """One execution with its steps, artifacts and transition trail."""
    async with store.transaction() as tx:
        detail = await tx.workflow_executions.get_detail(execution_id)
        trail = await tx.workflow_executions.history(execution_id)
    body = ExecutionDetails.model_construct(**dict(detail), transitions=trail)
    return _json(body.model_dump_json())


@router.get(
    "/api/workflows/{workflow_type}/history", response_model=HistoryPage, tags=["workflows"], responses=HISTORY_PROBLEMS
)
async def type_history(
    store: Caller,
    workflow_type: Annotated[WorkflowType, Path()],
    limit: Limit = 50,
    cursor: Cursor = None,
    status: Annotated[list[WorkflowStatus] | None, Query()] = None,
    agent_id: UUID | None = None,
    since: Instant | None = None,
    until: Instant | None = None,
) -> Response:
    """The history of one workflow type, same paging as /api/workflows/history."""
    return await _history(store, limit, cursor, status, workflow_type, agent_id, since, until)


def _cached(request: Request, figures: WorkflowStatistics | WorkflowPerformance, presented: str | None) -> Response:
    """The answer with a validator of its figures (the window's bounds, which move with the clock,
    left out): a client that has them gets 304. The figures come from the rollups in a few
    milliseconds, so the answer itself is the cheapest validator that is never stale; a change
    counter would miss purges and executions leaving the window."""
    digest = hashlib.sha256(figures.model_dump_json(exclude={"since", "until"}).encode()).hexdigest()[:32]
    etag = f'W/"{digest}"'
    service = _service(request)
    headers = {"ETag": etag, "Cache-Control": f"private, max-age={service.cache_max_age}", "Vary": "Authorization"}
    # weak comparison (RFC 9110 13.1.2): W/"x" and "x" match
    if any(tag.strip().removeprefix("W/") in (etag.removeprefix("W/"), "*") for tag in (presented or "").split(",")):
        return Response(status_code=304, headers=headers)
    return _json(figures.model_dump_json(), headers=headers)


class _Static(StaticFiles):
    """The page's files, with the page's headers (index.html is reachable here too)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(PAGE_HEADERS)
        return response


class RequestLog:
    """One structured line per request: method, route template, status, duration and customer;
    never the token, the query string or a raw path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            line = {
                "method": scope["method"],
                "route": getattr(route, "path", None)
                or ("/static" if scope["path"].startswith("/static/") else "unmatched"),
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "customer_id": scope.get("state", {}).get("customer_id"),
            }
            _access.info(json.dumps(line))


class _App(FastAPI):
    """FastAPI, with the OpenAPI document completed by openapi.document."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            self.openapi_schema = openapi.document(self)
        return self.openapi_schema


def create_app(
    store: Store,
    verifier: TokenVerifier,
    *,
    cache_max_age: int = 15,
    demo_customers: Sequence[DemoCustomer] = (),
    trusted_hosts: Sequence[str] = (),
) -> FastAPI:
    """The ASGI app over an open (unconfined) store; the caller closes the store. Its lifespan
    opens the events hub; on shutdown every event stream ends and the hub closes."""
    service = Service(store, verifier, cache_max_age=cache_max_age, demo_customers=demo_customers)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with store.events_hub() as hub:
            service.hub = hub
            try:
                yield
            finally:
                await service.close_streams()
                service.hub = None

    app = _App(
        title="OptiInfra workflow history",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,  # the interactive docs load scripts from a CDN; the OpenAPI document is served
        redoc_url=None,
    )
    app.state.service = service
    problems.install(app)
    app.include_router(router)
    app.mount("/static", _Static(directory=str(STATIC)), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> Response:
        return FileResponse(str(STATIC / "index.html"), headers=PAGE_HEADERS)

    if trusted_hosts:  # the demo: a page on another name (DNS rebinding) cannot ask it for tokens
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(trusted_hosts))
    app.add_middleware(RequestLog)
    return app
