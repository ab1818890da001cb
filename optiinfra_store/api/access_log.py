"""The access log: one structured line per request."""

from __future__ import annotations

import json
import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_access = logging.getLogger("optiinfra_store.api.access")


def route_of(scope: Scope) -> str:
    """What a request is logged and counted under: its route's template, `/static` for the page's
    files, else `unmatched`; never the path as requested (ids, anything a client typed)."""
    route = scope.get("route")
    return getattr(route, "path", None) or ("/static" if scope["path"].startswith("/static/") else "unmatched")


class StatusSent:
    """An ASGI `send` that passes every message on and notes the response's status: 500 until a
    response starts (what the server answers for a request that ends without one)."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.status = 500

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self.send(message)


class RequestLog:
    """One JSON line per request: method, route template, status, duration and customer (set by
    the principal dependency); never the token, the query string or a raw path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        sending = StatusSent(send)
        try:
            await self.app(scope, receive, sending)
        finally:
            line = {
                "method": scope["method"],
                "route": route_of(scope),
                "status": sending.status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "customer_id": scope.get("state", {}).get("customer_id"),
            }
            _access.info(json.dumps(line))
