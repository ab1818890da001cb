"""The service over the session's database, seeded with the demo's two customers, through a pool
that logs in as an application role (a member of optiinfra_app), as production would."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter

from optiinfra_store import Store, seed
from optiinfra_store.api import TokenVerifier, create_app, issue_token
from optiinfra_store.api.models import Problem
from optiinfra_store.api.routes import ROUTERS
from optiinfra_store.api.settings import DEFAULTS, Settings
from tests.pg import app_login

JWT_SECRET = "a-test-secret-of-at-least-32-bytes!!"
API_LOGIN = "optiinfra_api_login"
ACME = "c1000000-0000-4000-8000-000000000001"
TECHSTART = "c1000000-0000-4000-8000-000000000002"


def token(customer_id: str = ACME, **claims: Any) -> str:
    return issue_token(JWT_SECRET, subject=claims.pop("subject", "ana@example.com"), customer_id=customer_id, **claims)


def bearer(customer_id: str = ACME, **claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(customer_id, **claims)}"}


@pytest.fixture(scope="session")
def api_dsn(databases, migrated_dsn: str) -> str:
    return app_login(databases.admin_dsn, migrated_dsn, API_LOGIN)


@pytest.fixture(scope="session")
async def api_store(api_dsn: str) -> AsyncIterator[Store]:
    async with Store.connect(api_dsn, min_size=1, max_size=8) as store:
        yield store


@pytest.fixture
async def seeded(store, clean_dsn: str) -> str:
    """The demo's customers, agents and workflows (loaded by the owner), emptied after the test."""
    seed.load(clean_dsn)
    return clean_dsn


@dataclass
class Service:
    app: Any
    client: httpx.AsyncClient
    store: Store  # the platform store the app runs on


def declared() -> Callable[[httpx.Response], Awaitable[None]]:
    """A response hook: every answer fits what its route declares in the OpenAPI document (the
    route's model for a success, the model of a documented status, the problem document for an
    error), with no member the model lacks, however the route builds its JSON."""
    routes = [route for router in ROUTERS for route in router.routes if isinstance(route, APIRoute)]

    async def check(response: httpx.Response) -> None:
        kind = response.headers.get("content-type", "")
        if response.status_code == 304 or kind.startswith("text/event-stream"):
            assert response.status_code != 304 or not await response.aread()
            return
        body = await response.aread()
        route = next((r for r in routes if r.path_regex.match(response.request.url.path)), None)
        if kind == "application/problem+json":
            model: Any = Problem
            assert Problem.model_validate_json(body).status == response.status_code
        elif kind == "application/json" and route is not None:
            status = response.status_code
            model = route.response_model if status < 300 else route.responses[status]["model"]
            assert model is not None, f"{route.path} answers JSON without declaring its model"
        else:
            return  # the page, its files, the OpenAPI document
        TypeAdapter(model).validate_json(body)
        if isinstance(model, type) and issubclass(model, BaseModel):
            names = {field.alias or name for name, field in model.model_fields.items()}
            members = set(json.loads(body))
            assert members <= names | set(model.model_computed_fields), (route and route.path, members - names)

    return check


@contextlib.asynccontextmanager
async def running(store: Store, **options: Any) -> AsyncIterator[Service]:
    app = create_app(store, TokenVerifier.hs256(JWT_SECRET, **options))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        hooks = {"response": [declared()]}
        async with httpx.AsyncClient(transport=transport, base_url="http://service", event_hooks=hooks) as client:
            yield Service(app, client, store)


@pytest.fixture
async def service(api_store: Store, seeded: str) -> AsyncIterator[Service]:
    async with running(api_store) as running_service:
        yield running_service


@contextlib.asynccontextmanager
async def live_server(store: Store, *, settings: Settings = DEFAULTS, **options: Any) -> AsyncIterator[tuple[str, Any]]:
    """The app under a real uvicorn server on a free port, in this event loop, configured as
    `optiinfra-store serve` configures it, with `settings` (the service's limits by default)."""
    import asyncio

    import uvicorn

    from optiinfra_store.commands.serve import server_config
    from tests.pg import free_port

    app = create_app(store, TokenVerifier.hs256(JWT_SECRET), settings=settings, **options)
    port = free_port()
    server = uvicorn.Server(server_config(app, "127.0.0.1", port, settings))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        await app.state.service.close_streams()
        server.should_exit = True
        await asyncio.wait_for(task, 15)


@dataclass
class Frame:
    id: int | None  # the transition's
    event: str | None
    data: dict | None
    last_event_id: str | None  # the event's whole id, to resume after it


async def frames(response: httpx.Response) -> AsyncIterator[Frame]:
    """The SSE frames of a streaming response (comments and retry fields skipped)."""
    import json

    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line == "":
            if "data" in fields or "id" in fields:
                yield Frame(
                    int(fields["id"].partition("@")[0]) if "id" in fields else None,
                    fields.get("event"),
                    json.loads(fields["data"]) if "data" in fields else None,
                    fields.get("id"),
                )
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
