"""Fault injection against a real PostgreSQL: killed connections, a server restart, timeouts, lost
replies to committed creates, and racing writers.

Each test opens a Store of its own with its own application_name, so it can find and kill that
store's backends without touching the session's. A small TCP proxy (WireProxy) sits between some
stores and the server; it decides when the client learns of a connection loss (nothing yet, the
server's FATAL message only, or the message and the socket close) and can drop the reply to a
committed write, which pg_terminate_backend alone cannot do on cue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import pytest

from optiinfra_store import Store
from optiinfra_store.enums import AgentStatus, AgentStatusDetail, AgentType, WorkflowStatus, WorkflowType
from optiinfra_store.errors import (
    InvalidTransition,
    OutcomeUnknown,
    StaleVersion,
    StoreError,
    StoreTimeout,
    StoreUnavailable,
)
from optiinfra_store.records import (
    AgentCreate,
    AgentStateUpsert,
    CustomerCreate,
    WorkflowExecutionCreate,
    WorkflowExecutionUpdate,
    WorkflowStepCreate,
)
from tests.pg import private_embedded_server, start_embedded, stop_embedded

# -- helpers ---------------------------------------------------------------------------------------


def new_execution(agent, customer, **fields: Any) -> WorkflowExecutionCreate:
    return WorkflowExecutionCreate(
        agent_id=agent.id, customer_id=customer.id, workflow_type=WorkflowType.COST_ANALYSIS, **fields
    )


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.02)


LOCK_EXECUTION = "SELECT 1 FROM workflow_executions WHERE id = $1 FOR UPDATE"
LOCK_AGENT = "SELECT 1 FROM agents WHERE id = $1 FOR UPDATE"


@contextlib.asynccontextmanager
async def row_locked(dsn: str, lock: str, id: uuid.UUID) -> AsyncIterator[Callable[[], Awaitable[Any]]]:
    """Another session holds a row lock (`lock`, one of the LOCK_* statements) until the block
    ends or it calls the yielded release()."""
    locker = await asyncpg.connect(dsn)
    try:
        await locker.execute("BEGIN")
        await locker.execute(lock, id)
        yield lambda: locker.execute("ROLLBACK")
    finally:
        await locker.close()


class Backends:
    """Finds, kills and watches the server backends of one application_name, from a connection of
    its own (an asyncpg admin connection: never one of the store's)."""

    def __init__(self, admin: asyncpg.Connection, app: str) -> None:
        self.admin = admin
        self.app = app

    async def pids(self) -> list[int]:
        rows = await self.admin.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1 ORDER BY pid", self.app
        )
        return [row["pid"] for row in rows]

    async def kill(self, pid: int) -> None:
        assert await self.admin.fetchval("SELECT pg_terminate_backend($1::int)", pid), f"backend {pid} not found"
        await eventually(lambda: self._gone(pid), f"backend {pid} exited")

    async def _gone(self, pid: int) -> bool:
        return not await self.admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid)

    async def lock_waiters(self) -> list[int]:
        """This application's backends that are blocked on a lock."""
        rows = await self.admin.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'", self.app
        )
        return [row["pid"] for row in rows]

    async def wait_lock_waiter(self) -> int:
        """The pid of this application's backend once it is blocked on a lock."""
        await eventually(self.lock_waiters, "a statement waits on the lock")
        (pid,) = await self.lock_waiters()
        return pid


class Closures:
    """Counts the pool's connections the client has seen closed (a termination listener on each)."""

    def __init__(self) -> None:
        self.count = 0

    async def init(self, conn: asyncpg.Connection) -> None:
        conn.add_termination_listener(self._closed)

    def _closed(self, conn: asyncpg.Connection) -> None:
        self.count += 1

    async def wait(self, count: int = 1) -> None:
        async def seen() -> bool:
            return self.count >= count

        await eventually(seen, "the client saw the connection close")


@contextlib.asynccontextmanager
async def fault_store(
    dsn: str, admin: asyncpg.Connection, **options: Any
) -> AsyncIterator[tuple[Store, Backends, Closures]]:
    """A small Store with an application_name of its own, its Backends and its Closures."""
    app = f"optiinfra-faults-{uuid.uuid4().hex[:8]}"
    closures = Closures()
    options.setdefault("min_size", 1)
    options.setdefault("max_size", 2)
    settings = {"application_name": app, **options.pop("server_settings", {})}
    async with Store.connect(dsn, server_settings=settings, init=closures.init, **options) as store:
        yield store, Backends(admin, app), closures


async def pool_settled(store: Store, max_size: int) -> None:
    """Every pooled connection is back and the pool holds no more than its maximum."""

    async def settled() -> bool:
        return store.pool.get_idle_size() == store.pool.get_size()

    await eventually(settled, "every pooled connection is released")
    assert 1 <= store.pool.get_size() <= max_size


async def backend_pid(store: Store) -> int:
    """The backend pid of the connection a call through `store` gets now (and its success)."""
    async with store.transaction() as tx:
        return await tx.connection.fetchval("SELECT pg_backend_pid()")


def assert_unavailable(exc: BaseException) -> None:
    """StoreUnavailable, and its message says the connection was lost."""
    assert isinstance(exc, StoreUnavailable), f"{type(exc).__name__}: {exc}"
    message = str(exc)
    assert "database unavailable" in message
    assert any(word in message for word in ("terminat", "closed", "lost")), message


async def marked_executions(admin: asyncpg.Connection, marker: str) -> int:
    """How many executions carry metadata {"m": marker} (read outside the store under test)."""
    return await admin.fetchval("SELECT count(*) FROM workflow_executions WHERE metadata->>'m' = $1", marker)


# -- a proxy that decides what the client sees of a connection loss ---------------------------------


class _Link:
    """One client connection through the proxy and its upstream connection to the server."""

    def __init__(self, proxy: WireProxy, client: asyncio.StreamWriter, server: asyncio.StreamWriter) -> None:
        self.proxy = proxy
        self.client = client
        self.server = server
        self.held = bytearray()  # server bytes not yet passed on (hold mode)
        self.cycle = bytearray()  # server bytes not yet read as whole messages (lose_reply)
        self.completions = bytearray()  # the end of a reply, waiting for its ReadyForQuery
        self.server_closed = False

    async def pump_up(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                if not self.server.is_closing():
                    self.server.write(data)
        self.server.close()

    async def pump_down(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                self.from_server(bytes(data))
        self.server_closed = True
        if self.proxy.mode != "hold":
            self.client.close()

    def from_server(self, data: bytes) -> None:
        mode = self.proxy.mode
        if mode == "hold":
            self.held += data
        elif mode == "lose_reply":
            self._lose_committed_reply(data)
        elif not self.client.is_closing():
            self.client.write(data)

    def _lose_committed_reply(self, data: bytes) -> None:
        """Pass messages on as they come, except the end of a statement's reply: from its
        CommandComplete or PortalSuspended (fetchrow's row limit) to the ReadyForQuery. If that says
        the session is idle (the write is committed), it is dropped and both sockets are cut, so the
        client never learns that its write succeeded."""
        self.cycle += data
        while len(self.cycle) >= 5:
            kind = self.cycle[0:1]
            end = 1 + int.from_bytes(self.cycle[1:5], "big")
            if len(self.cycle) < end:
                return
            message = bytes(self.cycle[:end])
            del self.cycle[:end]
            if kind == b"Z" and self.completions and message[-1:] == b"I":
                self.proxy.replies_lost += 1
                self.proxy.mode = "pass"
                self.client.transport.abort()
                self.server.transport.abort()
                if self.proxy.outage_after_loss is not None:
                    self.proxy.outage(self.proxy.outage_after_loss)
                return
            if kind in (b"C", b"s") or self.completions:
                self.completions += message
            else:
                self.client.write(message)
            if kind == b"Z":
                self.client.write(bytes(self.completions))
                self.completions.clear()

    def release(self, *, close: bool) -> None:
        if self.held and not self.client.is_closing():
            self.client.write(bytes(self.held))
        self.held.clear()
        if close and self.server_closed:
            self.client.close()


class WireProxy:
    """A TCP proxy in front of the server. Modes: "pass" (forward everything), "hold" (keep what the
    server sends, socket close included, until release()), "lose_reply" (drop the reply to the next
    committed write and cut the connection: the write is durable, the client never hears of it)."""

    def __init__(self, target_dsn: str) -> None:
        self.target_dsn = target_dsn
        parts = urlsplit(target_dsn)
        query = dict(parse_qsl(parts.query))
        host = query.get("host") or parts.hostname or "localhost"
        port = int(query.get("port") or parts.port or 5432)
        self._unix_path = f"{host}/.s.PGSQL.{port}" if host.startswith("/") else None
        self._target = (host, port)
        self.mode = "pass"
        self.replies_lost = 0
        self.outage_after_loss: float | None = None
        """With lose_reply: the server looks gone for this many seconds once the reply is lost."""
        self.refusals = 0
        self.links: list[_Link] = []
        self._closed_before_hold = 0
        self._tasks: set[asyncio.Task] = set()

    async def __aenter__(self) -> WireProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = port = self._server.sockets[0].getsockname()[1]
        parts = urlsplit(self.target_dsn)
        userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("host", "port", "sslmode")]
        query.append(("sslmode", "disable"))  # plain bytes, so lose_reply can read the messages
        self.dsn = urlunsplit(parts._replace(netloc=f"{userinfo}127.0.0.1:{port}", query=urlencode(query)))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._server.close()
        for link in self.links:
            link.client.transport.abort()
            link.server.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self._unix_path is not None:
            server_reader, server_writer = await asyncio.open_unix_connection(self._unix_path)
        else:
            server_reader, server_writer = await asyncio.open_connection(*self._target)
        link = _Link(self, client_writer, server_writer)
        self.links.append(link)
        for pump in (link.pump_up(client_reader), link.pump_down(server_reader)):
            task = asyncio.create_task(pump)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def refuse(self) -> None:
        """Stop listening and cut every connection: the server looks gone (connection refused)."""
        self._server.close()
        for link in self.links:
            link.client.transport.abort()
            link.server.transport.abort()

    def outage(self, seconds: float) -> None:
        """refuse(), then listen again on the same port after `seconds` (while the proxy is shut,
        a connection attempt is refused and counted in `refusals`)."""
        self.refuse()

        async def back() -> None:
            await asyncio.sleep(seconds)
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

        task = asyncio.create_task(back())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def hold(self) -> None:
        self.mode = "hold"
        self._closed_before_hold = self._closed_links()

    def _closed_links(self) -> int:
        return sum(link.server_closed for link in self.links)

    def release(self, *, close: bool = True) -> None:
        """Pass on what was held; with close, also the socket close (and go back to "pass")."""
        for link in self.links:
            link.release(close=close)
        if close:
            self.mode = "pass"

    async def wait_server_closed(self) -> None:
        """Until the server has closed one more proxied connection than when hold() was called."""

        async def closed() -> bool:
            return self._closed_links() > self._closed_before_hold

        await eventually(closed, "the server closed a proxied connection")


@pytest.fixture
async def admin(clean_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(clean_dsn)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def proxy(clean_dsn: str) -> AsyncIterator[WireProxy]:
    async with WireProxy(clean_dsn) as wire:
        yield wire


async def client_learns(mode: str, proxy: WireProxy, closures: Closures) -> None:
    """Bring the client to what it knows of the killed backend: "unnoticed" (nothing has reached
    it), "half_noticed" (the server's FATAL message arrived, the socket close not yet) or
    "noticed" (both: the connection is closed on the client too)."""
    if mode == "unnoticed":
        return
    if mode == "half_noticed":
        proxy.release(close=False)
        await asyncio.sleep(0.1)  # the event loop reads the FATAL message
        return
    proxy.release(close=True)
    await closures.wait(1)


LEARNS = ["unnoticed", "half_noticed", "noticed"]


async def release_later(proxy: WireProxy, delay: float = 0.2) -> None:
    await asyncio.sleep(delay)
    proxy.release(close=True)


def kill_unread(dsn: str, pid: int) -> None:
    """Terminate backend `pid` and wait until it has exited, all without letting the event loop run
    (a blocking connection of its own): the server's FATAL message sits in the client's socket,
    unread, as it does for a call made a few ms after the kill."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        assert conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
        deadline = time.monotonic() + 10
        while conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone() != (0,):
            assert time.monotonic() < deadline, f"backend {pid} did not exit"
            time.sleep(0.01)


# -- killed connections ----------------------------------------------------------------------------


async def test_transaction__backend_killed_mid_statement_raises_unavailable_and_rolls_back(
    store, clean_dsn, admin, agent, customer
):
    held = await store.workflow_executions.create(new_execution(agent, customer))
    async with fault_store(clean_dsn, admin) as (faulty, backends, _):
        async with row_locked(clean_dsn, LOCK_EXECUTION, held.id) as release:
            with pytest.raises(StoreError) as info:
                async with faulty.transaction() as tx:
                    mine = await tx.workflow_executions.create(new_execution(agent, customer))
                    await tx.workflow_steps.create(
                        WorkflowStepCreate(workflow_execution_id=mine.id, step_name="collect", step_order=1)
                    )
                    killed = await tx.connection.fetchval("SELECT pg_backend_pid()")

                    async def kill_when_blocked() -> None:
                        assert await backends.wait_lock_waiter() == killed
                        await backends.kill(killed)

                    killer = asyncio.create_task(kill_when_blocked())
                    try:
                        await tx.workflow_executions.start(held.id)  # blocks on the locker's row lock
                    finally:
                        await killer
            assert_unavailable(info.value)
            await release()

            assert await admin.fetchval("SELECT count(*) FROM workflow_executions WHERE id = $1", mine.id) == 0
            assert (
                await admin.fetchval("SELECT count(*) FROM workflow_steps WHERE workflow_execution_id = $1", mine.id)
                == 0
            )
            started = await faulty.workflow_executions.start(held.id)  # no caller action in between
            assert started.status == WorkflowStatus.RUNNING
            assert await backend_pid(faulty) != killed
            await pool_settled(faulty, max_size=2)


@pytest.mark.parametrize("learns", LEARNS)
async def test_transaction__backend_killed_between_statements_raises_unavailable_and_rolls_back(
    proxy, admin, agent, customer, learns
):
    async with fault_store(proxy.dsn, admin, max_size=1) as (faulty, backends, closures):
        marker = uuid.uuid4().hex
        with pytest.raises(StoreError) as info:
            async with faulty.transaction() as tx:
                mine = await tx.workflow_executions.create(new_execution(agent, customer, metadata={"m": marker}))
                killed = await tx.connection.fetchval("SELECT pg_backend_pid()")
                proxy.hold()
                await backends.kill(killed)
                await proxy.wait_server_closed()
                await client_learns(learns, proxy, closures)
                releaser = asyncio.create_task(release_later(proxy))
                try:
                    await tx.workflow_steps.create(
                        WorkflowStepCreate(workflow_execution_id=mine.id, step_name="collect", step_order=1)
                    )
                finally:
                    await releaser
        proxy.release()
        await closures.wait(1)
        assert await marked_executions(admin, marker) == 0
        assert await backend_pid(faulty) != killed
        await pool_settled(faulty, max_size=1)
        assert_unavailable(info.value)


@pytest.mark.parametrize("learns", LEARNS)
async def test_transaction__backend_killed_before_commit_raises_unavailable_and_rolls_back(
    proxy, admin, agent, customer, learns
):
    async with fault_store(proxy.dsn, admin, max_size=1) as (faulty, backends, closures):
        marker = uuid.uuid4().hex
        with pytest.raises(StoreError) as info:
            async with faulty.transaction() as tx:
                await tx.workflow_executions.create(new_execution(agent, customer, metadata={"m": marker}))
                killed = await tx.connection.fetchval("SELECT pg_backend_pid()")
                proxy.hold()
                await backends.kill(killed)
                await proxy.wait_server_closed()
                await client_learns(learns, proxy, closures)
                releaser = asyncio.create_task(release_later(proxy))
            # the COMMIT runs here, on the dead connection
        await releaser
        await closures.wait(1)
        assert await marked_executions(admin, marker) == 0
        assert await backend_pid(faulty) != killed
        await pool_settled(faulty, max_size=1)
        assert_unavailable(info.value)


@pytest.mark.parametrize("learns", LEARNS)
async def test_idle_connection_killed__next_call_succeeds(proxy, admin, agent, customer, learns):
    async with fault_store(proxy.dsn, admin, max_size=1) as (faulty, backends, closures):
        (killed,) = await backends.pids()
        proxy.hold()
        await backends.kill(killed)
        await proxy.wait_server_closed()
        await client_learns(learns, proxy, closures)
        releaser = asyncio.create_task(release_later(proxy))
        try:
            created = await faulty.workflow_executions.create(new_execution(agent, customer))
        finally:
            await releaser
        assert (await faulty.workflow_executions.get(created.id)).id == created.id
        assert await backend_pid(faulty) != killed


@pytest.mark.parametrize("call", ["write", "read", "confined", "unconfined_after_confined"])
async def test_idle_connection_killed_and_its_close_unread__a_prepared_statement_runs_on_a_fresh_connection(
    clean_dsn, admin, agent, customer, call
):
    """The FATAL message is in the client's socket, not yet read: the store sees it before sending
    (one poll of the socket) and runs the call on a fresh connection, once, with nothing lost or
    doubled. The statement is prepared on the killed connection already, so the driver would have
    sent it at once: without the poll, this call fails)."""
    async with fault_store(clean_dsn, admin, max_size=1) as (faulty, backends, _):
        first = await faulty.workflow_executions.create(new_execution(agent, customer))
        assert (await faulty.workflow_executions.get(first.id)).id == first.id  # both statements prepared
        confined = faulty.for_customer(customer.id)
        if call in ("confined", "unconfined_after_confined"):  # bound for its session: unbound before reuse
            assert (await confined.workflow_executions.get(first.id)).id == first.id
        (killed,) = await backends.pids()
        kill_unread(clean_dsn, killed)
        if call == "confined":
            assert (await confined.workflow_executions.get(first.id)).id == first.id
        elif call == "write":
            second = await faulty.workflow_executions.create(new_execution(agent, customer))
            assert await admin.fetchval("SELECT count(*) FROM workflow_executions") == 2
            assert second.id != first.id
        else:
            assert (await faulty.workflow_executions.get(first.id)).id == first.id
        assert await backend_pid(faulty) != killed
        await pool_settled(faulty, max_size=1)


async def test_idle_connection_killed_in_flight__a_sent_write_is_outcome_unknown_a_read_plain_unavailable(
    proxy, admin, agent, customer
):
    """The server's close is still on its way when a prepared statement is sent: the store cannot
    tell that it never ran, so it does not run it again. A write says its outcome is unknown (here
    it did not land: the server was gone); a read is plain StoreUnavailable, safe to retry."""
    async with fault_store(proxy.dsn, admin, max_size=1) as (faulty, backends, closures):
        first = await faulty.workflow_executions.create(new_execution(agent, customer, metadata={"m": "first"}))
        assert (await faulty.workflow_executions.get(first.id)).id == first.id
        for call, killed_count in (("write", 1), ("read", 2)):
            assert (await faulty.workflow_executions.get(first.id)).id == first.id  # prepared on this connection
            (killed,) = await backends.pids()
            proxy.hold()
            await backends.kill(killed)
            await proxy.wait_server_closed()
            releaser = asyncio.create_task(release_later(proxy))
            try:
                with pytest.raises(StoreUnavailable) as info:
                    if call == "write":
                        await faulty.workflow_executions.create(new_execution(agent, customer, metadata={"m": "2nd"}))
                    else:
                        await faulty.workflow_executions.get(first.id)
            finally:
                await releaser
            await closures.wait(killed_count)
            assert_unavailable(info.value)
            if call == "write":
                assert isinstance(info.value, OutcomeUnknown), info.value
                assert "unknown" in str(info.value)
                assert await marked_executions(admin, "2nd") == 0
            else:
                assert type(info.value) is StoreUnavailable, info.value
        assert (await faulty.workflow_executions.get(first.id)).id == first.id


@pytest.mark.parametrize("learns", LEARNS)
async def test_idle_connection_killed__the_call_after_a_failed_one_succeeds(proxy, admin, agent, customer, learns):
    """What the store guarantees today: at most the first call after the kill fails, always with a
    StoreError (never a raw asyncpg exception), and the one after it succeeds with no caller action."""
    async with fault_store(proxy.dsn, admin, max_size=1) as (faulty, backends, closures):
        (killed,) = await backends.pids()
        proxy.hold()
        await backends.kill(killed)
        await proxy.wait_server_closed()
        await client_learns(learns, proxy, closures)
        releaser = asyncio.create_task(release_later(proxy))
        try:
            await faulty.customers.count()
        except StoreError:
            pass
        finally:
            await releaser
        await closures.wait(1)  # the socket close has reached the client, as it does at once without a proxy
        before = await faulty.workflow_executions.count()
        await faulty.workflow_executions.create(new_execution(agent, customer))
        assert await faulty.workflow_executions.count() == before + 1
        assert await backend_pid(faulty) != killed
        await pool_settled(faulty, max_size=1)


async def test_idle_connections_killed_all_at_once__the_pool_refills(clean_dsn, admin, agent, customer):
    async with fault_store(clean_dsn, admin, min_size=3, max_size=3) as (faulty, backends, closures):
        killed = await backends.pids()
        assert len(killed) == 3
        for pid in killed:
            await backends.kill(pid)
        await closures.wait(3)
        rows = await asyncio.gather(
            *(faulty.workflow_executions.create(new_execution(agent, customer)) for _ in range(6))
        )
        assert len({row.id for row in rows}) == 6
        assert not set(await backends.pids()) & set(killed)
        await pool_settled(faulty, max_size=3)


# -- a server restart ------------------------------------------------------------------------------


@pytest.fixture
def private_server() -> Any:
    """An embedded PostgreSQL of this test's own, migrated, that the test may stop and start."""
    with private_embedded_server("optiinfra-restart-") as server:
        yield server
        # pgserver's cleanup only knows the first postmaster's pid: stop a restarted one here
        with contextlib.suppress(Exception):
            stop_server(server)


stop_server = stop_embedded
start_server = start_embedded


async def test_server_restart__calls_fail_unavailable_during_the_outage_then_the_store_works_again(private_server):
    dsn = private_server.get_uri()
    async with Store.connect(dsn, min_size=2, max_size=4, acquire_timeout=10) as store:
        customer = await store.customers.create(CustomerCreate(name="Restart Co", email="ops@restart.example"))
        agent = await store.agents.create(
            AgentCreate(
                type=AgentType.COST,
                name="Cost",
                version="1",
                status=AgentStatus.ACTIVE,
            )
        )
        before = await store.workflow_executions.create(new_execution(agent, customer))

        # a transaction open when the server shuts down: its commit fails, its writes are gone
        marker = uuid.uuid4().hex
        with pytest.raises(StoreError) as info:
            async with store.transaction() as tx:
                await tx.workflow_executions.create(new_execution(agent, customer, metadata={"m": marker}))
                await tx.workflow_executions.start(before.id)
                await asyncio.to_thread(stop_server, private_server)
        assert_unavailable(info.value)

        for call in (
            lambda: store.workflow_executions.get(before.id),
            lambda: store.workflow_executions.create(new_execution(agent, customer)),
            lambda: store.customers.count(),
        ):
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                await call()
            assert time.monotonic() - started < 5, "an outage is reported, not waited out"
        with pytest.raises(StoreUnavailable):
            async with store.transaction() as tx:
                await tx.customers.count()

        await asyncio.to_thread(start_server, private_server)
        # the same Store, never reopened: the first call after the restart succeeds
        again = await store.workflow_executions.get(before.id)
        assert again.status == WorkflowStatus.PENDING  # the interrupted transaction left nothing
        assert (await store.workflow_executions.list()).items == [again]
        after = await store.workflow_executions.create(new_execution(agent, customer))
        await store.workflow_executions.start(after.id)
        async with store.transaction() as tx:
            await tx.workflow_executions.start(before.id)
        assert {e.id for e in (await store.workflow_executions.list()).items} == {before.id, after.id}
        assert all(e.metadata.get("m") != marker for e in (await store.workflow_executions.list()).items)
        await pool_settled(store, max_size=4)


# -- a commit whose wait for the synchronous standby was cut short ----------------------------------


async def _cut_short(admin: asyncpg.Connection, call: Awaitable[Any], statement: str) -> BaseException:
    """Run `call` (a write) until its commit waits for the synchronous standby, then terminate its
    backend (the one whose statement starts with `statement`): PostgreSQL has committed it locally
    and shows it, and a failover would take it back. Returns what the call raised."""
    waiting = "SELECT pid, query FROM pg_stat_activity WHERE wait_event = 'SyncRep'"

    async def none_waiting() -> bool:  # a call cancelled before may still be leaving its wait
        return not await admin.fetch(waiting)

    await eventually(none_waiting, "no commit waits for the standby")
    task = asyncio.ensure_future(call)
    pids: list[int] = []

    async def ours_waiting() -> bool:
        pids[:] = [row["pid"] for row in await admin.fetch(waiting) if row["query"].lstrip().startswith(statement)]
        return bool(pids)

    await eventually(ours_waiting, "the commit waits for the standby")
    await admin.execute("SELECT pg_terminate_backend($1::int)", pids[0])
    with pytest.raises(StoreError) as info:
        await task
    return info.value


async def test_sync_standby_wait_cut_short__a_retry_is_not_acknowledged_until_the_standby_has_it(private_server):
    """A keyed create whose first commit was cut off while it waited for the synchronous standby is
    not returned as created, nor a transition's refusal or a versioned update's StaleVersion given,
    from a row the standby lacks: their reads wait for the standby too; once it has the row (here:
    once none is required), they answer."""
    dsn = private_server.get_uri()
    async with Store.connect(dsn, command_timeout=1, acquire_timeout=3) as store:
        customer = await store.customers.create(CustomerCreate(name="Sync Co", email="ops@sync.example"))
        agent = await store.agents.create(AgentCreate(type=AgentType.COST, name="Cost", version="1"))
        admin = await asyncpg.connect(dsn)
        try:
            await admin.execute("ALTER SYSTEM SET synchronous_standby_names = 'optiinfra_no_such_standby'")
            await admin.execute("SELECT pg_reload_conf()")
            request = new_execution(agent, customer, idempotency_key="sync-1")

            # the store retries the keyed create on fresh connections; the row it finds is never durable
            cut = await _cut_short(admin, store.workflow_executions.create(request), "INSERT")
            assert isinstance(cut, OutcomeUnknown)
            row = await admin.fetchrow(
                "SELECT id, status::text, version FROM workflow_executions WHERE idempotency_key = 'sync-1'"
            )
            assert row is not None and row["status"] == "pending"  # committed on this server alone

            # a transition cut short the same way; repeating it is neither applied nor refused
            cut = await _cut_short(admin, store.workflow_executions.start(row["id"]), "UPDATE")
            assert isinstance(cut, OutcomeUnknown)
            with pytest.raises(StoreTimeout):
                await store.workflow_executions.start(row["id"])
            # and a versioned update: repeating it is not told StaleVersion
            versioned = WorkflowExecutionUpdate(metadata={"attempt": 1})
            version = row["version"] + 1  # after the start
            cut = await _cut_short(
                admin, store.workflow_executions.update(row["id"], versioned, expected_version=version), "UPDATE"
            )
            assert isinstance(cut, OutcomeUnknown)
            with pytest.raises(StoreTimeout):
                await store.workflow_executions.update(row["id"], versioned, expected_version=version)
        finally:
            await admin.execute("ALTER SYSTEM RESET synchronous_standby_names")
            await admin.execute("SELECT pg_reload_conf()")
            await admin.close()

        created = await store.workflow_executions.create(request)
        assert (created.id, created.status) == (row["id"], WorkflowStatus.RUNNING)
        with pytest.raises(InvalidTransition) as refused:
            await store.workflow_executions.start(row["id"])
        assert refused.value.current_status == WorkflowStatus.RUNNING
        with pytest.raises(StaleVersion) as stale:
            await store.workflow_executions.update(row["id"], versioned, expected_version=version)
        assert stale.value.current_version == version + 1


# An application that configured no logging: Python prints a WARNING record, traceback and all, on
# stderr. The store's pool stays open through a stopped server, and its calls fail.
OUTAGE_CHILD = """
import asyncio, sys
from optiinfra_store import Store
from optiinfra_store.errors import StoreUnavailable

async def main(dsn):
    async with Store.connect(dsn, min_size=2, max_size=2) as store:
        await store.customers.count()
        print("ready", flush=True)
        sys.stdin.readline()  # the server is stopped now
        try:
            await store.customers.count()
        except StoreUnavailable:
            print("unavailable", flush=True)
        await asyncio.sleep(2.5)  # the pool retries restoring its min_size connections: at once, after 1 s, 2 s

asyncio.run(main(sys.argv[1]))
"""


async def test_server_stopped__the_pool_says_so_in_one_line_never_a_traceback(private_server, caplog):
    dsn = private_server.get_uri()
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        OUTAGE_CHILD,
        dsn,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert child.stdin is not None and child.stdout is not None
    assert await asyncio.wait_for(child.stdout.readline(), 30) == b"ready\n"
    async with Store.connect(dsn, min_size=2, max_size=2) as store:
        await store.customers.count()
        with caplog.at_level(logging.WARNING):
            await asyncio.to_thread(stop_server, private_server)
            child.stdin.write(b"stopped\n")
            with pytest.raises(StoreUnavailable):
                await store.customers.count()

            async def pool_logged() -> bool:
                return any(r.name == "optiinfra_store.pool" for r in caplog.records)

            await eventually(pool_logged, "the pool logs that it cannot restore its connections", timeout=5)
        out, err = await asyncio.wait_for(child.communicate(), 30)

    # an application that configured logging: one line on the store's logger, no traceback, and
    # nothing of asyncpg's about this pool
    pool = [r for r in caplog.records if r.name == "optiinfra_store.pool"]
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in pool)
    assert "Failed to restore the pool connection floor; retrying: cannot connect to" in pool[0].getMessage()
    assert not [r for r in caplog.records if r.name.startswith("asyncpg")]
    # one that configured none: the same lines on stderr, and no traceback
    assert child.returncode == 0 and out.decode().split() == ["unavailable"], err.decode()
    lines = err.decode().splitlines()
    assert lines and all(line.startswith("Failed to restore the pool connection floor; retrying: ") for line in lines)
    assert "Traceback" not in err.decode()


async def test_server_unreachable__transaction_raises_unavailable(proxy, admin):
    async with fault_store(proxy.dsn, admin, max_size=1) as (faulty, backends, closures):
        proxy.refuse()  # the server's address stops answering
        await closures.wait(1)
        with pytest.raises(StoreUnavailable):  # a repository call says so
            await faulty.customers.count()
        with pytest.raises(StoreUnavailable):
            async with faulty.transaction() as tx:
                await tx.customers.count()


# -- timeouts --------------------------------------------------------------------------------------

TIMEOUTS = [
    pytest.param({"statement_timeout": 0.2}, id="statement_timeout"),
    pytest.param({"command_timeout": 0.2}, id="command_timeout"),
]


@pytest.mark.parametrize("timeout", TIMEOUTS)
async def test_timeout__a_call_blocked_on_a_row_lock_raises_store_timeout_and_changes_nothing(
    store, clean_dsn, admin, agent, customer, timeout
):
    execution = await store.workflow_executions.create(new_execution(agent, customer))
    async with fault_store(clean_dsn, admin, max_size=2, **timeout) as (faulty, backends, _):
        async with row_locked(clean_dsn, LOCK_EXECUTION, execution.id) as release:
            for _ in range(5):  # repeatedly, to show nothing piles up
                started = time.monotonic()
                with pytest.raises(StoreTimeout):
                    await faulty.workflow_executions.start(execution.id)
                assert time.monotonic() - started < 2
            # the server-side statement was cancelled too: nothing of ours still waits on the lock
            await eventually(lambda: _no_lock_waiters(backends), "the cancelled statements left the server")
            await release()
            await asyncio.sleep(0.2)
            assert (await store.workflow_executions.get(execution.id)).status == WorkflowStatus.PENDING

            started = await faulty.workflow_executions.start(execution.id)
            assert started.status == WorkflowStatus.RUNNING
            await pool_settled(faulty, max_size=2)
            assert len(await backends.pids()) <= 2


async def _no_lock_waiters(backends: Backends) -> bool:
    return not await backends.lock_waiters()


@pytest.mark.parametrize("timeout", TIMEOUTS)
async def test_timeout__inside_a_transaction_rolls_the_transaction_back(
    store, clean_dsn, admin, agent, customer, timeout
):
    execution = await store.workflow_executions.create(new_execution(agent, customer))
    async with fault_store(clean_dsn, admin, max_size=1, **timeout) as (faulty, _, _):
        async with row_locked(clean_dsn, LOCK_EXECUTION, execution.id) as release:
            marker = uuid.uuid4().hex
            with pytest.raises(StoreTimeout):
                async with faulty.transaction() as tx:
                    await tx.workflow_executions.create(new_execution(agent, customer, metadata={"m": marker}))
                    await tx.workflow_executions.start(execution.id)
            await release()
            assert await marked_executions(admin, marker) == 0
            assert (await faulty.workflow_executions.start(execution.id)).status == WorkflowStatus.RUNNING
            await pool_settled(faulty, max_size=1)


async def test_acquire_timeout__pool_exhausted_raises_store_timeout_then_recovers(admin, clean_dsn, agent, customer):
    async with fault_store(clean_dsn, admin, min_size=1, max_size=1, acquire_timeout=0.2) as (faulty, backends, _):
        async with faulty.transaction() as tx:  # holds the pool's only connection
            await tx.workflow_executions.create(new_execution(agent, customer))
            started = time.monotonic()
            results = await asyncio.gather(
                *(faulty.workflow_executions.count() for _ in range(5)), return_exceptions=True
            )
            assert time.monotonic() - started < 2
            assert all(isinstance(r, StoreTimeout) for r in results), results
            assert "no pooled connection" in str(results[0])
            with pytest.raises(StoreTimeout):
                async with faulty.transaction():
                    pass
        assert await faulty.workflow_executions.count() == 1
        await pool_settled(faulty, max_size=1)
        assert len(await backends.pids()) == 1


# -- idempotent creates ----------------------------------------------------------------------------


async def test_create__backend_killed_in_flight_with_the_key_is_retried_by_the_store_and_makes_one_row(
    store, clean_dsn, admin, agent, customer
):
    async with fault_store(clean_dsn, admin) as (faulty, backends, _):
        # the insert's foreign-key check needs a share lock on the agent row: hold it back there
        async with row_locked(clean_dsn, LOCK_AGENT, agent.id) as release:
            attempt = asyncio.create_task(
                faulty.workflow_executions.create(new_execution(agent, customer, idempotency_key="run-1"))
            )
            killed = await backends.wait_lock_waiter()
            await backends.kill(killed)

            async def retried() -> bool:  # the store sent it again, on another connection
                return bool(set(await backends.lock_waiters()) - {killed})

            await eventually(retried, "the store retries the create")
            assert await store.workflow_executions.count() == 0  # the killed insert was rolled back
            await release()
            first = await attempt
            assert await store.workflow_executions.count() == 1

            again = await faulty.workflow_executions.create(new_execution(agent, customer, idempotency_key="run-1"))
            assert again.id == first.id
            assert await store.workflow_executions.count() == 1


async def test_create__backend_killed_in_flight_without_a_key_is_outcome_unknown(
    store, clean_dsn, admin, agent, customer
):
    async with fault_store(clean_dsn, admin) as (faulty, backends, _):
        async with row_locked(clean_dsn, LOCK_AGENT, agent.id) as release:
            attempt = asyncio.create_task(faulty.workflow_executions.create(new_execution(agent, customer)))
            await backends.kill(await backends.wait_lock_waiter())
            with pytest.raises(OutcomeUnknown) as info:
                await attempt
            assert_unavailable(info.value)
            await release()
            assert await store.workflow_executions.count() == 0  # not applied, but the store could not know


async def test_create__reply_lost_after_commit_with_the_key_is_retried_by_the_store_and_lands_once(
    store, proxy, admin, agent, customer
):
    other_agent = await store.agents.create(
        AgentCreate(
            type=AgentType.PERFORMANCE,
            name="Perf",
            version="1",
            status=AgentStatus.ACTIVE,
        )
    )
    async with fault_store(proxy.dsn, admin, max_size=1) as (faulty, _, _):
        request = new_execution(agent, customer, idempotency_key="run-7")
        proxy.mode = "lose_reply"
        created = await faulty.workflow_executions.create(request)  # the store retried it
        assert proxy.replies_lost == 1
        committed = await admin.fetch(
            "SELECT id FROM workflow_executions WHERE agent_id = $1 AND idempotency_key = 'run-7'", agent.id
        )
        assert [row["id"] for row in committed] == [created.id]
        assert created.idempotency_key == "run-7" and created.version == 1

        again = await faulty.workflow_executions.create(request)
        assert again.id == created.id
        assert await store.workflow_executions.count() == 1

        theirs = await faulty.workflow_executions.create(new_execution(other_agent, customer, idempotency_key="run-7"))
        assert theirs.id != created.id
        assert await store.workflow_executions.count() == 2


async def test_create__reply_lost_in_a_transaction_is_outcome_unknown_then_retried_with_the_key_returns_that_row(
    store, proxy, admin, agent, customer
):
    async with fault_store(proxy.dsn, admin, max_size=1) as (faulty, _, _):
        request = new_execution(agent, customer, idempotency_key="run-7")
        proxy.mode = "lose_reply"
        with pytest.raises(OutcomeUnknown) as info:  # the COMMIT's reply was lost: the transaction is gone
            async with faulty.transaction() as tx:
                await tx.workflow_executions.create(request)
        assert_unavailable(info.value)
        assert "COMMIT" in str(info.value)
        assert proxy.replies_lost == 1
        committed = await admin.fetch("SELECT id FROM workflow_executions WHERE idempotency_key = 'run-7'")
        assert len(committed) == 1  # durable although the caller never heard of it

        retried = await faulty.workflow_executions.create(request)
        assert retried.id == committed[0]["id"]
        assert await store.workflow_executions.count() == 1


async def test_create__reply_lost_with_the_key_waits_for_the_server_then_lands_once(
    store, proxy, admin, agent, customer
):
    """The server looks gone for a moment after the reply is lost (a restart, a failover): the
    retries are refused until it is back, then the create lands once."""
    async with fault_store(proxy.dsn, admin, max_size=1, acquire_timeout=10) as (faulty, _, _):
        request = new_execution(agent, customer, idempotency_key="run-8")
        proxy.mode = "lose_reply"
        proxy.outage_after_loss = 0.5
        created = await faulty.workflow_executions.create(request)
        assert proxy.replies_lost == 1
        rows = await admin.fetch("SELECT id FROM workflow_executions WHERE idempotency_key = 'run-8'")
        assert [row["id"] for row in rows] == [created.id]
        assert await store.workflow_executions.count() == 1


async def test_create__reply_lost_with_the_key_and_no_server_within_the_window_is_outcome_unknown(
    store, proxy, admin, agent, customer
):
    async with fault_store(proxy.dsn, admin, max_size=1, acquire_timeout=1) as (faulty, _, _):
        proxy.mode = "lose_reply"
        proxy.outage_after_loss = 30
        with pytest.raises(OutcomeUnknown) as info:
            await faulty.workflow_executions.create(new_execution(agent, customer, idempotency_key="run-9"))
        assert "retried for 1 s" in str(info.value)
        assert await admin.fetchval("SELECT count(*) FROM workflow_executions WHERE idempotency_key = 'run-9'") == 1


@pytest.mark.parametrize("write", ["complete", "create_without_key", "update"])
async def test_write__reply_lost_after_commit_is_outcome_unknown_and_was_applied(
    store, proxy, admin, agent, customer, write
):
    """The write was applied, and the caller is told it cannot know: OutcomeUnknown (a
    StoreUnavailable), never a plain StoreUnavailable that a caller could take for "not applied"."""
    running = await store.workflow_executions.create(new_execution(agent, customer))
    await store.workflow_executions.start(running.id)
    async with fault_store(proxy.dsn, admin, max_size=1) as (faulty, _, _):
        proxy.mode = "lose_reply"
        with pytest.raises(OutcomeUnknown) as info:
            if write == "complete":
                await faulty.workflow_executions.complete(running.id, {"ok": True})
            elif write == "create_without_key":
                await faulty.workflow_executions.create(new_execution(agent, customer, metadata={"m": "lost"}))
            else:
                await faulty.workflow_executions.update(running.id, WorkflowExecutionUpdate(metadata={"m": "lost"}))
        assert proxy.replies_lost == 1
        assert_unavailable(info.value)
        if write == "complete":
            assert await admin.fetchval("SELECT status::text FROM workflow_executions WHERE id = $1", running.id) == (
                "completed"
            )
        else:
            assert await marked_executions(admin, "lost") == 1
        # the same store goes on: the outcome read back
        assert (await faulty.workflow_executions.get(running.id)).id == running.id


@pytest.mark.parametrize("first_ends", ["commit", "rollback"])
async def test_create__retry_while_the_first_attempt_is_uncommitted_waits_for_it(
    store, clean_dsn, admin, agent, customer, first_ends
):
    async with fault_store(clean_dsn, admin, max_size=2) as (faulty, backends, _):
        request = new_execution(agent, customer, idempotency_key="slow")
        tx_context = faulty.transaction()
        tx = await tx_context.__aenter__()
        first = await tx.workflow_executions.create(request)
        retry = asyncio.create_task(faulty.workflow_executions.create(request))
        await backends.wait_lock_waiter()  # the retry waits on the first attempt's key
        if first_ends == "commit":
            await tx_context.__aexit__(None, None, None)
        else:
            with contextlib.suppress(RuntimeError):
                await tx_context.__aexit__(RuntimeError, RuntimeError("abandon"), None)
        retried = await retry
        assert (retried.id == first.id) is (first_ends == "commit")
        rows = await admin.fetch("SELECT id FROM workflow_executions WHERE idempotency_key = 'slow'")
        assert [row["id"] for row in rows] == [retried.id]


# -- optimistic concurrency ------------------------------------------------------------------------


async def _race_two_writers(
    faulty: Store,
    backends: Backends,
    read_version: Callable[[Any], Awaitable[int]],
    write: Callable[[Any, str, int], Awaitable[Any]],
    first_ends: str,
) -> tuple[Any, BaseException | None]:
    """Writers A and B each read version n in a transaction of their own; A writes first and holds
    the row, B writes while A is open (and waits on A's row lock), then A commits, rolls back or
    has its connection killed. Returns B's result and B's exception."""
    a_context, b_context = faulty.transaction(), faulty.transaction()
    a, b = await a_context.__aenter__(), await b_context.__aenter__()
    n = await read_version(a)
    assert await read_version(b) == n
    await write(a, "A", n)
    b_write = asyncio.create_task(write(b, "B", n))
    await backends.wait_lock_waiter()
    if first_ends == "commit":
        await a_context.__aexit__(None, None, None)
    elif first_ends == "rollback":
        with contextlib.suppress(RuntimeError):
            await a_context.__aexit__(RuntimeError, RuntimeError("abandon"), None)
    else:
        a_pid = await a.connection.fetchval("SELECT pg_backend_pid()")
        await backends.kill(a_pid)
        with contextlib.suppress(StoreError, RuntimeError):
            await a_context.__aexit__(RuntimeError, RuntimeError("killed"), None)
    try:
        result = await b_write
    except StoreError as exc:
        with contextlib.suppress(StoreError):
            await b_context.__aexit__(type(exc), exc, None)
        return None, exc
    await b_context.__aexit__(None, None, None)
    return result, None


@pytest.mark.parametrize("first_ends", ["commit", "rollback", "killed"])
async def test_execution_update__two_writers_of_one_version_exactly_one_wins(
    store, clean_dsn, admin, agent, customer, first_ends
):
    execution = await store.workflow_executions.create(new_execution(agent, customer))
    n = execution.version

    async def read_version(tx) -> int:
        return (await tx.workflow_executions.get(execution.id)).version

    async def write(tx, writer: str, version: int):
        return await tx.workflow_executions.update(
            execution.id, WorkflowExecutionUpdate(metadata={"writer": writer}), expected_version=version
        )

    async with fault_store(clean_dsn, admin, max_size=2) as (faulty, backends, _):
        b_result, b_error = await _race_two_writers(faulty, backends, read_version, write, first_ends)
    final = await store.workflow_executions.get(execution.id)
    assert final.version == n + 1
    if first_ends == "commit":
        assert isinstance(b_error, StaleVersion), b_error
        assert (b_error.expected_version, b_error.current_version) == (n, n + 1)
        assert final.metadata == {"writer": "A"}  # B changed nothing
    else:
        assert b_error is None and b_result.version == n + 1
        assert final.metadata == {"writer": "B"}


@pytest.mark.parametrize("first_ends", ["commit", "rollback", "killed"])
async def test_agent_state_upsert__two_writers_of_one_version_exactly_one_wins(
    store, clean_dsn, admin, agent, first_ends
):
    state = await store.agent_states.upsert(AgentStateUpsert(agent_id=agent.id, workflow_data={"writer": None}))
    n = state.version

    async def read_version(tx) -> int:
        return (await tx.agent_states.get_for_agent(agent.id)).version

    async def write(tx, writer: str, version: int):
        return await tx.agent_states.upsert(
            AgentStateUpsert(agent_id=agent.id, status=AgentStatusDetail.BUSY, workflow_data={"writer": writer}),
            expected_version=version,
        )

    async with fault_store(clean_dsn, admin, max_size=2) as (faulty, backends, _):
        b_result, b_error = await _race_two_writers(faulty, backends, read_version, write, first_ends)
    final = await store.agent_states.get_for_agent(agent.id)
    assert final.version == n + 1
    if first_ends == "commit":
        assert isinstance(b_error, StaleVersion), b_error
        assert (b_error.expected_version, b_error.current_version) == (n, n + 1)
        assert final.workflow_data == {"writer": "A"}
    else:
        assert b_error is None and b_result.version == n + 1
        assert final.workflow_data == {"writer": "B"}


# -- a confined call cancelled between its round trips ----------------------------------------------


async def test_confined_call_cancelled_during_its_begin__connection_comes_back_clean(scratch_dsn, caplog):
    import logging

    import psycopg

    from optiinfra_store import migrations

    migrations.apply(scratch_dsn)
    with psycopg.connect(scratch_dsn, autocommit=True) as conn:  # a confinement that takes its time
        conn.execute("ALTER FUNCTION optiinfra_confine(uuid, boolean) RENAME TO optiinfra_confine_now")
        conn.execute(
            "CREATE FUNCTION optiinfra_confine(customer uuid, local boolean DEFAULT true) RETURNS void "
            "LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.3); PERFORM optiinfra_confine_now(customer, local); END $$"
        )
    caplog.set_level(logging.WARNING, logger="asyncio")
    async with Store.connect(scratch_dsn, min_size=1, max_size=1) as store:
        customer = await store.customers.create(CustomerCreate(name="Slow", email="ops@slow.example"))
        confined = store.for_customer(customer.id)
        for _ in range(3):
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.1):
                    await confined.workflow_executions.list()
            async with store.transaction() as tx:  # the one pooled connection, after the cancellation
                role, bound = await tx.connection.fetchrow(
                    "SELECT current_user, current_setting('optiinfra.customer_id', true)"
                )
                assert role != "optiinfra_tenant" and not bound
        assert (await confined.customers.get(customer.id)).id == customer.id
    assert not [r for r in caplog.records if "active transaction" in r.getMessage()]


# -- a primary that stops taking writes ------------------------------------------------------------


async def test_primary_turned_read_only__writes_unavailable_while_it_is_then_written_again(private_server):
    """A draining primary (pg_auto_failover's planned failover) turns read-only before it is
    demoted. A store whose DSN asks for a server that takes writes tells that from a write sent to
    a replica: StoreUnavailable, as when no listed server is a primary, and nothing written."""
    from optiinfra_store.errors import ReadOnlyServer

    dsn = private_server.get_uri()
    wants_primary = f"{dsn}{'&' if '?' in dsn else '?'}target_session_attrs=read-write"
    admin = await asyncpg.connect(dsn)

    async def read_only(on: bool) -> None:
        await admin.execute(f"ALTER SYSTEM SET default_transaction_read_only = {'on' if on else 'off'}")
        await admin.execute("SELECT pg_reload_conf()")
        while await admin.fetchval("SHOW default_transaction_read_only") != ("on" if on else "off"):
            await asyncio.sleep(0.02)

    try:
        async with (
            Store.connect(wants_primary, min_size=2, max_size=2) as store,
            Store.connect(dsn, min_size=1, max_size=1) as as_given,
        ):
            await store.customers.create(CustomerCreate(name="Before", email="before@draining.example"))
            await read_only(True)
            with pytest.raises(StoreUnavailable, match="stopped taking writes|no listed server is a primary"):
                await store.customers.create(CustomerCreate(name="During", email="during@draining.example"))
            with pytest.raises(ReadOnlyServer):  # no target_session_attrs: a read-only server, as given
                await as_given.customers.create(CustomerCreate(name="During", email="during@draining.example"))
            await read_only(False)
            await store.customers.create(CustomerCreate(name="After", email="after@draining.example"))
            names = {c.name for c in await store.customers.list()}
            assert names == {"Before", "After"}
    finally:
        with contextlib.suppress(Exception):
            await read_only(False)
        await admin.close()
