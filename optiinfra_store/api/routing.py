"""The route class of the JSON routers: their answers are not stored by caches unless the route
set its own Cache-Control. A route class rather than a router's dependency: each dependency FastAPI
solves costs every request some tens of microseconds, measured on the cheapest routes."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

NOT_STORED = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


class NotStoredRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def not_stored(request: Request) -> Response:
            response = await handler(request)
            if "cache-control" not in response.headers:  # the analytics' validators say their own
                response.headers.update(NOT_STORED)
            return response

        return not_stored
