"""The workflow-history service: the seed's five routes, live events and the page, over a Store.

Every request with a token runs through `store.for_customer(<the token's customer>)`: the
database, not a handler, decides what the caller sees (another customer's execution is as absent
as one that never existed). One listening connection serves every event stream of the process.
This module only assembles the app: the routes are in routes/, what they are handed in
dependencies.py, the limits in limits.py and settings.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from inspect import signature
from typing import Any

from fastapi import FastAPI
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from optiinfra_store import __version__
from optiinfra_store.api import metrics, openapi, problems, tracing
from optiinfra_store.api.access_log import RequestLog
from optiinfra_store.api.auth import TokenVerifier
from optiinfra_store.api.models import DemoCustomer
from optiinfra_store.api.routes import ROUTERS
from optiinfra_store.api.service import Service
from optiinfra_store.api.settings import DEFAULTS, Settings
from optiinfra_store.store import Store

STATIC = resources.files("optiinfra_store.api") / "static"
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class _Static(StaticFiles):
    """The page's files, with the page's headers (index.html is reachable here too)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(PAGE_HEADERS)
        return response


# FastAPI's own OpenTelemetry (from 0.16x, on whenever a tracer provider is set) records the path
# as requested and the query string (ids, cursors) on its spans, and validation errors with their
# input in its logs: the service's own request spans (api/tracing.py) take their place
_NO_FASTAPI_TRACES: dict[str, Any] = (
    {"telemetry": {"tracing": False, "logs": False}} if "telemetry" in signature(FastAPI.__init__).parameters else {}
)


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
    settings: Settings = DEFAULTS,
    demo_customers: Sequence[DemoCustomer] = (),
    trusted_hosts: Sequence[str] = (),
    tracer_provider: Any = None,
) -> FastAPI:
    """The ASGI app over an open (unconfined) store; the caller closes the store. Its lifespan
    opens the events hub; on shutdown every event stream ends and the hub closes. With a tracer
    provider (`tracer_provider`, else OpenTelemetry's global one when set), each request is a span,
    the parent of the store's statement spans (api/tracing.py)."""
    service = Service(store, verifier, settings, demo_customers=demo_customers)

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
        **_NO_FASTAPI_TRACES,
        title="OptiInfra workflow history",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,  # the interactive docs load scripts from a CDN; the OpenAPI document is served
        redoc_url=None,
    )
    app.state.service = service
    problems.install(app)
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", _Static(directory=str(STATIC)), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> Response:
        return FileResponse(str(STATIC / "index.html"), headers=PAGE_HEADERS)

    if trusted_hosts:  # the demo: a page on another name (DNS rebinding) cannot ask it for tokens
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(trusted_hosts))
    if settings.metrics:  # outside the host check: a refused host is counted too
        app.state.metrics = metrics.install(app, service)
    if tracer := tracing.tracer_of(tracer_provider, tracing.SERVICE):
        app.add_middleware(tracing.RequestSpans, tracer=tracer)
    app.add_middleware(RequestLog)
    return app
