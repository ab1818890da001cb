"""The event stream over a real HTTP server: the caller's transitions only, resumed with
Last-Event-ID with nothing lost or repeated, one listening connection for every subscriber."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import httpx
import pytest

from optiinfra_store.enums import WorkflowType
from optiinfra_store.records import WorkflowExecutionCreate
from tests.api.conftest import ACME, TECHSTART, bearer, frames, live_server

SEED_AGENT = "a1000000-0000-4000-8000-000000000001"
EVENTS = "/api/workflows/events"


async def run_workflow(store, customer: str) -> list[int]:
    """Create, start and complete an execution; the ids of its transitions."""
    execution = await store.workflow_executions.create(
        WorkflowExecutionCreate(agent_id=SEED_AGENT, customer_id=customer, workflow_type=WorkflowType.HEALTH_CHECK)
    )
    await store.workflow_executions.start(execution.id, actor="worker")
    await store.workflow_executions.complete(execution.id, actor="worker")
    return [t.id for t in await store.workflow_executions.history(execution.id)]


async def take(stream, n: int, timeout: float = 10.0) -> list:
    async def collect() -> list:
        return [await anext(stream) for _ in range(n)]

    return await asyncio.wait_for(collect(), timeout)


@contextlib.asynccontextmanager
async def subscribed(client: httpx.AsyncClient, customer: str, last_event_id: str | int | None = None):
    headers = bearer(customer)
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    async with client.stream("GET", EVENTS, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        yield frames(response)


async def test_events__only_the_callers_transitions_as_they_commit(api_store, seeded, store):
    async with live_server(api_store) as (url, _), httpx.AsyncClient(base_url=url, timeout=10) as client:
        async with subscribed(client, TECHSTART) as stream:
            await run_workflow(store, ACME)  # not this customer's
            mine = await run_workflow(store, TECHSTART)
            received = await take(stream, 3)
            assert [f.id for f in received] == mine
            assert {f.event for f in received} == {"transition"}
            assert [f.data["to_status"] for f in received] == ["pending", "running", "completed"]
            assert received[1].data["actor"] == "worker" and received[0].data["id"] == mine[0]
            later = await run_workflow(store, ACME)
            with contextlib.suppress(TimeoutError):
                extra = await take(stream, 1, timeout=1.0)
                raise AssertionError(f"another customer's transition reached the stream: {extra} of {later}")


async def test_events__last_event_id_resumes_across_a_dropped_connection(api_store, seeded, store):
    async with live_server(api_store) as (url, _), httpx.AsyncClient(base_url=url, timeout=10) as client:
        async with subscribed(client, ACME) as stream:
            first = await run_workflow(store, ACME)
            seen = await take(stream, 2)  # then the connection drops with one transition unread
        missed = first[2:] + await run_workflow(store, ACME) + await run_workflow(store, ACME)
        async with subscribed(client, ACME, last_event_id=seen[-1].last_event_id) as stream:
            resumed = await take(stream, len(missed))
            tail = await run_workflow(store, ACME)
            resumed += await take(stream, 3)
        delivered = [f.id for f in seen + resumed]
        assert delivered == first + missed[1:] + tail
        assert len(delivered) == len(set(delivered))


async def test_events__an_unknown_or_foreign_last_event_id_is_not_found(api_store, seeded, store):
    theirs = (await run_workflow(store, ACME))[-1]
    async with live_server(api_store) as (url, _), httpx.AsyncClient(base_url=url, timeout=10) as client:
        foreign = await client.get(EVENTS, headers={**bearer(TECHSTART), "Last-Event-ID": str(theirs)})
        unknown = await client.get(EVENTS, headers={**bearer(TECHSTART), "Last-Event-ID": str(10**15)})
        assert foreign.status_code == unknown.status_code == 404
        assert foreign.json()["title"] == unknown.json()["title"]
        assert str(theirs) in foreign.json()["detail"] and str(10**15) in unknown.json()["detail"]
        for bad in ("abc", "-1", "1; DROP TABLE workflow_transitions", str(2**64), "5@x:1", "null", "5@1:2,"):
            response = await client.get(EVENTS, headers={**bearer(TECHSTART), "Last-Event-ID": bad})
            assert response.status_code == 422 and response.json()["detail"].startswith("last-event-id"), bad
        # of an event id's form, but no event can carry them: not found, as an unknown id
        # ... and a cluster's position, which names its nodes: none of this server's
        for impossible in (str(2**63), "5@1:3-2", "5@1:1-999999999", f"5@{2**63}:", "5@1.7421:;2.7422:"):
            response = await client.get(EVENTS, headers={**bearer(TECHSTART), "Last-Event-ID": impossible})
            assert response.status_code == 404 and response.json()["detail"].startswith("last-event-id"), impossible


async def test_events__one_listening_connection_and_no_pooled_connection_while_idle(api_store, seeded, store):
    async def listening() -> int:
        async with store.transaction() as tx:
            return await tx.connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name = 'optiinfra-events'"
            )

    async with live_server(api_store) as (url, app), httpx.AsyncClient(base_url=url, timeout=10) as client:
        async with contextlib.AsyncExitStack() as stack:
            streams = {
                customer: [await stack.enter_async_context(subscribed(client, customer)) for _ in range(10)]
                for customer in (ACME, TECHSTART)
            }
            assert app.state.service.hub.subscribers == 20
            assert await listening() == 1
            await asyncio.sleep(0.2)
            assert api_store.pool.get_size() - api_store.pool.get_idle_size() == 0
            woken = app.state.service.hub.woken
            mine = await run_workflow(store, TECHSTART)
            for stream in streams[TECHSTART]:
                assert [f.id for f in await take(stream, 3)] == mine
            # each notification names its customer: only TechStart's ten streams were woken
            assert app.state.service.hub.woken - woken == 10 * len(mine)
            for stream in streams[ACME]:
                with contextlib.suppress(TimeoutError):
                    await take(stream, 1, timeout=0.3)
                    raise AssertionError("a TechStart transition reached an Acme stream")
        await asyncio.sleep(0.1)
        assert app.state.service.hub.subscribers == 0  # closed streams leave the hub


async def create(store, customer: str) -> int:
    """An execution created (one transition, its id)."""
    execution = await store.workflow_executions.create(
        WorkflowExecutionCreate(agent_id=SEED_AGENT, customer_id=customer, workflow_type=WorkflowType.HEALTH_CHECK)
    )
    return (await store.workflow_executions.history(execution.id))[0].id


async def test_events__resume_is_exact_when_transactions_overlap(api_store, seeded, store):
    """A lower transition id can commit after a higher one: resuming from the higher one must
    still deliver the lower (no loss), and resuming after both must deliver neither (no repeat)."""
    async with live_server(api_store) as (url, _), httpx.AsyncClient(base_url=url, timeout=10) as client:
        # loss: 'late' is written first and committed last; the stream drops in between
        async with subscribed(client, ACME) as stream:
            async with store.transaction() as tx:
                late = await create(tx, ACME)
                early = await create(store, ACME)
                assert late < early
                (first,) = await take(stream, 1)
                assert first.id == early
        async with subscribed(client, ACME, last_event_id=first.last_event_id) as stream:
            (resumed,) = await take(stream, 1)
            assert resumed.id == late
            after = await create(store, ACME)
            assert [f.id for f in await take(stream, 1)] == [after]

        # repeat: both delivered (the higher first), the stream drops after the lower one
        async with subscribed(client, ACME) as stream:
            async with store.transaction() as tx:
                late = await create(tx, ACME)
                early = await create(store, ACME)
                assert [f.id for f in await take(stream, 1)] == [early]
            (last,) = await take(stream, 1)
            assert last.id == late
        async with subscribed(client, ACME, last_event_id=last.last_event_id) as stream:
            newer = await create(store, ACME)
            assert [f.id for f in await take(stream, 1)] == [newer]  # not 'early' again


async def test_events__the_hub_listens_again_after_its_connection_is_killed(api_store, seeded, store):
    async with live_server(api_store) as (url, app), httpx.AsyncClient(base_url=url, timeout=10) as client:
        hub = app.state.service.hub
        async with subscribed(client, ACME) as stream:
            async with store.transaction() as tx:
                await tx.connection.execute("SELECT pg_terminate_backend($1::int)", hub.backend_pid)
            for _ in range(100):
                if hub.reconnects:
                    break
                await asyncio.sleep(0.05)
            assert hub.reconnects == 1 and hub.listening
            mine = await run_workflow(store, ACME)
            assert [f.id for f in await take(stream, 3, timeout=5)] == mine  # woken, not polled (30 s)
        assert (await client.get("/readyz")).json()["events"] == "listening"


async def test_events__a_client_gone_before_the_first_byte_leaves_nothing_behind(api_store, seeded):
    async with live_server(api_store) as (url, app):
        hub = app.state.service.hub
        for _ in range(5):
            reader, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
            token = bearer(ACME)["Authorization"]
            writer.write(f"GET {EVENTS} HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n\r\n".encode())
            await writer.drain()
            writer.close()
        for _ in range(100):
            if hub.subscribers == 0 and not app.state.service.streams:
                break
            await asyncio.sleep(0.05)
        assert hub.subscribers == 0 and not list(app.state.service.streams)


@pytest.mark.parametrize("horizon", ["current", "held back by a transaction open elsewhere"])
async def test_events__a_resume_from_too_far_back_is_refused_not_loaded(
    api_store, api_dsn, seeded, store, monkeypatch, horizon
):
    from optiinfra_store import workflow_events

    monkeypatch.setattr(workflow_events, "MAX_REPLAY", 10)
    async with contextlib.AsyncExitStack() as stack:
        if horizon != "current":  # what counts is what a resume hands out again, not how far back it reads
            other = await asyncpg.connect(api_dsn)
            stack.push_async_callback(other.close)
            await stack.enter_async_context(other.transaction())
            await other.fetchval("SELECT pg_current_xact_id()")
            for _ in range(2):  # committed before the subscription, above the held horizon: seen, not new
                await run_workflow(store, ACME)
        await _resume_from_too_far_back(api_store, store, client_timeout=10)


async def _resume_from_too_far_back(api_store, store, client_timeout: float) -> None:
    async with live_server(api_store) as (url, _), httpx.AsyncClient(base_url=url, timeout=client_timeout) as client:
        async with subscribed(client, ACME) as stream:
            first = await run_workflow(store, ACME)
            (seen,) = await take(stream, 1)
        await run_workflow(store, ACME)  # 6 transitions since the first: it still resumes
        async with subscribed(client, ACME, last_event_id=seen.last_event_id) as stream:
            assert len(await take(stream, 5)) == 5
        await run_workflow(store, ACME)
        await run_workflow(store, ACME)  # 12 since: too far back
        for last in (seen.last_event_id, str(first[0]), "1@1:"):
            too_far = await client.get(EVENTS, headers={**bearer(ACME), "Last-Event-ID": last})
            assert too_far.status_code == 404 and "transitions back" in too_far.json()["detail"], last


async def test_events__streams_are_capped_per_customer(api_store, seeded):
    from optiinfra_store.api.settings import Settings

    capped = Settings(max_customer_streams=2)
    async with (
        live_server(api_store, settings=capped) as (url, _),
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        async with subscribed(client, ACME), subscribed(client, ACME):
            refused = await client.get(EVENTS, headers=bearer(ACME))
            assert refused.status_code == 429 and refused.headers["retry-after"]
            async with subscribed(client, TECHSTART):  # another customer's are counted apart
                pass
        async with subscribed(client, ACME):  # closed ones no longer count
            pass


async def test_events__a_stream_ends_when_its_token_expires(api_store, seeded):
    import time

    expires = int(time.time()) + 2
    async with live_server(api_store) as (url, _), httpx.AsyncClient(base_url=url, timeout=10) as client:
        headers = bearer(ACME, ttl_seconds=expires - int(time.time()))
        began = time.monotonic()
        async with client.stream("GET", EVENTS, headers=headers) as response:
            assert response.status_code == 200
            await asyncio.wait_for(response.aread(), 10)  # the server ends it
        assert time.monotonic() - began < 5
