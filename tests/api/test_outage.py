"""The service through a database outage, on a server of the test's own that it stops and starts
again: /readyz answers 503 while no server can be reached and 200 once it is back; a request in
flight when the server goes, or arriving while it is gone, is a 503 problem document with
Retry-After, never a 500; /healthz answers all along."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from optiinfra_store import Store, seed
from tests.api.conftest import bearer, running
from tests.pg import private_embedded_server, start_embedded, stop_embedded

HISTORY = "/api/workflows/history"


@pytest.fixture
def private_server() -> Iterator[Any]:
    """A migrated, seeded embedded server of this test's own, which it may stop and start."""
    with private_embedded_server("optiinfra-outage-") as server:
        seed.load(server.get_uri())
        yield server
        with contextlib.suppress(Exception):  # pgserver's cleanup knows only the first postmaster
            stop_embedded(server)


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.05)


def assert_outage(response: httpx.Response) -> None:
    """A 503 problem document that says to retry, and nothing of the database's."""
    assert response.status_code == 503, (response.request.url.path, response.status_code, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"].isdigit()
    body = response.json()
    assert body["status"] == 503 and body["detail"] == "the database is unavailable; retry shortly", body


async def test_outage__503_with_retry_after_for_every_request_and_readyz_until_the_server_is_back(private_server):
    dsn = private_server.get_uri()
    async with Store.connect(dsn, min_size=2, max_size=4, acquire_timeout=5) as store, running(store) as service:
        client = service.client
        assert (await client.get("/readyz")).json()["status"] == "ready"
        page = await client.get(HISTORY, headers=bearer())
        assert page.status_code == 200 and page.json()["items"]
        execution = page.json()["items"][0]["id"]
        routes = [
            HISTORY,
            f"/api/workflows/{execution}/details",
            "/api/workflows/statistics",
            "/api/workflows/performance-metrics",
            "/api/workflows/trend",
            "/api/me",
        ]

        # in flight: waiting on a lock when the server goes. Immediate: in a fast shutdown the lock's
        # holder may exit first and hand the lock over, and the request then completes (a 200)
        locker = await asyncpg.connect(dsn)
        await locker.execute("BEGIN; LOCK TABLE workflow_executions IN ACCESS EXCLUSIVE MODE")

        async def waiting() -> bool:
            query = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> $1"
            return bool(await locker.fetchval(query, locker.get_server_pid()))

        in_flight = asyncio.create_task(client.get(HISTORY, headers=bearer()))
        await eventually(waiting, "the request waits on the lock")
        await asyncio.to_thread(stop_embedded, private_server, "immediate")
        assert_outage(await in_flight)
        locker.terminate()

        # arriving during the outage
        for route in routes:
            assert_outage(await client.get(route, headers=bearer()))
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "database unavailable"
        assert ready.headers["retry-after"].isdigit()
        assert (await client.get("/healthz")).json() == {"status": "ok"}  # liveness only

        await asyncio.to_thread(start_embedded, private_server)

        async def ready_again() -> bool:
            return (await client.get("/readyz")).status_code == 200

        await eventually(ready_again, "/readyz says ready again")
        for route in routes:  # the same store, never reopened
            assert (await client.get(route, headers=bearer())).status_code == 200, route
