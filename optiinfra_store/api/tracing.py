"""OpenTelemetry: a SERVER span per request, the parent of the store's statement spans.

Added by `create_app` only when a tracer provider is set (globally, or `tracer_provider=`) and
opentelemetry-api is installed (the `otel` extra): otherwise no middleware, no cost. A request's
span is named by its route's template (`GET /api/workflows/{execution_id}/details`), continues
the caller's trace when the request carries `traceparent`, and holds the method, route, scheme
and status: never the path as requested, its query, a header's value or the customer.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from optiinfra_store.api.access_log import StatusSent, route_of
from optiinfra_store.store import failed, tracer_of

__all__ = ["SERVICE", "RequestSpans", "tracer_of"]

SERVICE = "optiinfra_store.api"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_PROPAGATED = frozenset({b"traceparent", b"tracestate", b"baggage"})


class RequestSpans:
    def __init__(self, app: ASGIApp, tracer: Any) -> None:
        from opentelemetry import context, propagate, trace

        self.app = app
        self._trace = trace
        self.tracer = tracer
        self._context = context
        self._propagate = propagate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in _PROPAGATED}
        parent = self._propagate.extract(carrier) if carrier else None
        method = scope["method"] if scope["method"] in _METHODS else "_OTHER"
        trace = self._trace
        span = self.tracer.start_span(
            method,
            context=parent,
            kind=trace.SpanKind.SERVER,
            attributes={"http.request.method": method, "url.scheme": scope.get("scheme", "http")},
        )
        token = self._context.attach(trace.set_span_in_context(span, parent))
        sending = StatusSent(send)
        try:
            await self.app(scope, receive, sending)
        except BaseException as exc:
            failed(span, exc)
            raise
        finally:
            route = route_of(scope)
            span.update_name(f"{method} {route}")
            span.set_attribute("http.route", route)
            span.set_attribute("http.response.status_code", sending.status)
            if sending.status >= 500:
                span.set_status(trace.Status(trace.StatusCode.ERROR))
            self._context.detach(token)
            span.end()
