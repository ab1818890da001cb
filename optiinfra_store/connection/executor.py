"""The one path a statement takes: an executor gets a connection, runs the statement on it and
translates whatever the driver raises into a StoreError. Three executors, one per way a
connection is bound:

- `PoolExecutor`: each statement on a pooled connection of its own, with a bounded wait for it;
- `ConfinedExecutor`: the same, each statement confined to one customer (its session bound for
  the statement on a direct connection, else a transaction of its own);
- `ConnectionExecutor`: every statement on one connection, inside a transaction.

`transaction()` on any of them opens a transaction (a savepoint on a ConnectionExecutor) and
yields the ConnectionExecutor bound to it. This module is the only one that runs statements on
the store's connections.
"""

from __future__ import annotations

import asyncio
import logging
import re
import select
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from contextvars import ContextVar
from typing import Any, LiteralString, NoReturn, TypeVar
from uuid import UUID

import asyncpg

from optiinfra_store.connection.tracing import failed, start_named, start_statement
from optiinfra_store.errors import (
    ConfigurationError,
    OutcomeUnknown,
    StoreError,
    StoreTimeout,
    StoreUnavailable,
    first_line,
    raise_translated,
    translate,
)

CONFINE = "SELECT optiinfra_confine($1)"
"""Confine the current transaction to one customer: take on `optiinfra_tenant`, whatever role the
connection logged in as, and bind the customer the row-level security policies read (migration
0010). Both are transaction-local, so nothing of it stays on a pooled connection."""

CONFINE_SESSION = "SELECT optiinfra_confine($1, false)"
"""The same for the whole session: a connection of the store's own (workflow_events), and a pooled
connection bound for one confined statement (see `ConfinedExecutor`)."""

BIND_SESSION = "SELECT optiinfra_confine($1, false) WHERE pg_backend_pid() = $2"
"""CONFINE_SESSION for a pooled connection, made only in the server process the connection opened
(`get_server_pid()`, $2): no row back means a pooler sits in between, and nothing was bound."""

UNBIND = "RESET ROLE; RESET optiinfra.customer_id"
"""Undo a session's binding: the role it logged in as, no customer."""

_bound: weakref.WeakSet[asyncpg.Connection] = weakref.WeakSet()
"""Pooled connections that may hold a session binding to a customer: added before the binding is
sent (so a binding cut short counts too), removed only once UNBIND has run."""

_direct: weakref.WeakSet[asyncpg.Connection] = weakref.WeakSet()
"""Pooled connections that talk to one server process, found when each is opened (`note_direct`):
only those may be bound for the session."""

_confining: ContextVar[list[bool] | None] = ContextVar("optiinfra_confining", default=None)
"""Set while a ConfinedExecutor acquires a connection for one statement: it binds the connection to
its own customer (and has that checked) before using it, so the pool need not unbind it first. One
use: the first `unbind_session` of the acquire takes it, so no other acquire (from a user's hook,
another pool) is spared the unbinding."""


def _driver_connection(conn: asyncpg.Connection) -> asyncpg.Connection:
    """The connection under a pool's proxy (the proxy is new on every acquire)."""
    inner = getattr(conn, "_con", None)
    return conn if inner is None else inner


async def unbind_session(conn: asyncpg.Connection) -> None:
    """The pool's `setup`, run on every acquire: a connection that may still be bound to a customer
    is unbound before anyone else gets it (another customer's confined statement binds it anew
    instead). If UNBIND fails, the pool closes the connection and the acquire fails: nobody gets
    a connection that may still be bound."""
    await _unbind(conn, spare=True)


async def unbind_always(conn: asyncpg.Connection) -> None:
    """`unbind_session` for a pool with a setup of the caller's own, which must never run on a
    connection still bound to a customer: no acquire is spared."""
    await _unbind(conn, spare=False)


async def _unbind(conn: asyncpg.Connection, *, spare: bool) -> None:
    """Unbind `conn` if it may be bound, unless `spare` and a confined acquire marked it for itself
    (the mark is taken either way: it spares one acquire at most)."""
    mark = _confining.get()
    marked = bool(mark)
    if mark:
        mark.clear()
    raw = _driver_connection(conn)
    if raw in _bound and not (spare and marked):
        if unread(conn):  # closed by the server while idle: UNBIND would fail on it (see `unread`)
            raise _ClosedWhileIdle()
        await conn.execute(UNBIND)
        _bound.discard(raw)


unbind_session.unbinds_sessions = True  # type: ignore[attr-defined]


async def note_direct(conn: asyncpg.Connection) -> None:
    """The end of the pool's `init`: remember `conn` as direct when the server process answering
    it is the one its startup named, and it runs as the role it logged in as. A pooler answers the
    startup itself (pgbouncer makes up the process id and the cancel key), so a connection through
    one, in any pool mode, is never bound for the session: its confined calls take a transaction
    each. So is one whose `init` took on another role (RESET ROLE would not give it back)."""
    if await conn.fetchval("SELECT pg_backend_pid() = $1 AND current_user = session_user", conn.get_server_pid()):
        _direct.add(_driver_connection(conn))


def unbinds_sessions(pool: asyncpg.Pool) -> bool:
    """Whether every acquire from `pool` runs `unbind_session` (a pool `Store.connect` opened)."""
    return bool(getattr(getattr(pool, "_setup", None), "unbinds_sessions", False))


def begin_confined(customer_id: UUID) -> str:
    """BEGIN and CONFINE in one round trip (a simple-protocol query, which takes no parameters).
    The customer is written as the 32 hexadecimal digits of a UUID made anew from its 16 bytes, so
    nothing a caller passes can reach the statement's text."""
    digits = UUID(bytes=customer_id.bytes).hex
    return "BEGIN; SELECT optiinfra_confine('" + digits + "')"


# -- a pooled connection the server closed while it was idle -------------------------------------

_POLL_READABLE = select.POLLIN | select.POLLPRI


def unread(conn: asyncpg.Connection) -> bool:
    """Whether an idle connection has bytes (or the close) from the server that the client has
    not read yet. The server sends nothing on a connection nobody is using, except when it ends the
    session: its FATAL message (pg_terminate_backend, a shutdown, idle_session_timeout) and the
    close. Until the event loop reads them the driver takes the connection for alive, and a call
    made in that window (a few ms after the kill) would fail; one non-blocking poll of the socket
    (no round trip) tells before anything is sent on it."""
    try:
        fd = _driver_connection(conn)._transport.get_extra_info("socket").fileno()
    except AttributeError:  # no transport (closed), or one without a socket
        return False
    if fd < 0:
        return True
    poller = select.poll()
    poller.register(fd, _POLL_READABLE)
    return bool(poller.poll(0))


class _ClosedWhileIdle(StoreUnavailable):
    """Raised by the pool's setup for a bound connection `unread` found closed by the server: the
    pool closes it, and `PoolExecutor.acquire` takes another (one who acquires from the pool
    directly sees it as StoreUnavailable)."""

    def __init__(self) -> None:
        super().__init__("database unavailable: the server closed this pooled connection while it was idle")


def _mark(conn: asyncpg.Connection) -> tuple[Any, int]:
    """Where the connection stands before a statement: its protocol and how many statements the
    driver has handed to its socket so far (asyncpg counts each bind-execute and each simple query
    as it writes it, not a preparation, which runs nothing); -1 where the driver does not say. Taken
    while the connection is held: one lost later is detached from its pool proxy."""
    protocol = getattr(_driver_connection(conn), "_protocol", None)
    count = getattr(protocol, "queries_count", None)
    return protocol, count if isinstance(count, int) else -1


def _unsent(exc: BaseException, mark: tuple[Any, int]) -> bool:
    """The call failed because its connection was lost, and the statement was never written to
    it (`mark` taken before it): the driver refused before writing (it had read the server's FATAL
    message already), or only the statement's preparation went out. Running it again on another
    connection is safe."""
    protocol, before = mark
    if before < 0 or not isinstance(exc, Exception) or isinstance(exc, StoreError):
        return False
    return getattr(protocol, "queries_count", None) == before and isinstance(translate(exc), StoreUnavailable)


_WRITE_WORDS = re.compile(
    r"\b(insert|update|delete|merge|truncate|copy|create|drop|alter|grant|revoke|lock|call|do|notify|"
    r"nextval|setval|set_config|pg_notify|pg_advisory\w*|pg_try_advisory\w*)\b",
    re.IGNORECASE,
)
_OUR_FUNCTIONS = re.compile(r"\b(?:pg_temp\.)?(optiinfra_\w+)\s*\(", re.IGNORECASE)
READ_ONLY_FUNCTIONS = frozenset(
    {
        "optiinfra_everyone",
        "optiinfra_sketch_key",
        "optiinfra_rollup_plan",
        "optiinfra_executions_in",
        "optiinfra_notify_key",
        "optiinfra_audit",  # transaction-local settings the audit trigger reads, nothing stored
        "optiinfra_durable_lsn",  # how far commits are durable (live events), nothing stored
    }
)
"""The schema's functions a read may call: they store nothing (stable or immutable, which
PostgreSQL holds to that; optiinfra_audit only sets transaction-local settings).
tests/reliability/test_outcomes.py checks it against the catalog."""
_READ_STARTS = ("select", "with", "values", "table", "show")
_reads: dict[str, bool] = {}


def reads_only(sql: str) -> bool:
    """Whether `sql` only reads: a SELECT (or WITH, VALUES, ...) naming no data-changing command
    and calling none of the schema's functions but READ_ONLY_FUNCTIONS. Conservative: what it cannot
    tell (a SELECT ... FOR UPDATE, a function not listed) counts as a write. Decided once per text,
    and only when a call has failed."""
    known = _reads.get(sql)
    if known is None:
        text = sql.lstrip().lower()
        known = (
            text.startswith(_READ_STARTS)
            and _WRITE_WORDS.search(text) is None
            and all(name.lower() in READ_ONLY_FUNCTIONS for name in _OUR_FUNCTIONS.findall(text))
        )
        _reads[sql] = known
    return known


def outcome_unknown(exc: BaseException, what: str) -> OutcomeUnknown:
    """The connection was lost after `what` (a write, or a COMMIT) was sent, before its reply."""
    return OutcomeUnknown(
        f"database unavailable: the connection was lost after {what} was sent and before its reply, so whether "
        f"it was applied is unknown ({exc}); read it back, or retry it only if it is safe to repeat"
    )


def _raise_failure(exc: BaseException, sql: str, *, committing: bool = False) -> NoReturn:
    """Raise what a statement's failure means once it may have reached the server: OutcomeUnknown
    for a write (or the COMMIT of one) whose connection was lost, else the translated error."""
    error = translate(exc) if isinstance(exc, Exception) else exc
    if type(error) is StoreUnavailable and not reads_only(sql):
        error = outcome_unknown(exc, "the COMMIT of a write" if committing else "a write")
    if error is exc:
        raise exc
    raise error from exc


def _raise_translated(exc: BaseException | None) -> None:
    """Raise the StoreError to raise instead of `exc`, the driver's exception chained; return when
    `exc` may go as it is (none, one already, or not an error of the driver's kind: a
    cancellation, a KeyboardInterrupt)."""
    if isinstance(exc, Exception):
        error = translate(exc)
        if error is not exc:
            raise error from exc


_log = logging.getLogger("optiinfra_store")
_statements = logging.getLogger("optiinfra_store.statements")
_clock = time.monotonic


def log_slow(sql: str, elapsed: float) -> None:
    """Log a slow statement: its first line and its time, never its arguments."""
    text = sql.strip()
    first = text.splitlines()[0] if text else "?"
    _statements.warning("slow statement (%.0f ms): %s", elapsed * 1000, first[:200])


def slow_statement_logger(threshold: float) -> Callable[[Any], None]:
    """A query logger (asyncpg's) that logs statements taking `threshold` seconds or more. Given
    to a connection while a transaction holds it (what is run on `tx.connection` included); the
    executors time their own statements, which costs a statement far less than asyncpg's
    logging (a context manager, a record and a callback scheduled on the loop for every query)."""

    def log(query: Any) -> None:
        if query.elapsed >= threshold:
            log_slow(query.query, query.elapsed)

    return log


class _Translated:
    """`async with translated():` raises what the driver raises in the block as the StoreError a
    caller should see, the driver's exception chained."""

    __slots__ = ()

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, kind: object, exc: BaseException | None, traceback: object) -> bool:
        _raise_translated(exc)
        return False


_TRANSLATED = _Translated()


def translated() -> _Translated:
    return _TRANSLATED


class _Scope:
    """Where one statement runs: a connection from the executor's `_connection()`, with the
    driver's errors translated on the way in and out."""

    __slots__ = ("_inner",)

    def __init__(self, inner: AbstractAsyncContextManager[asyncpg.Connection]) -> None:
        self._inner = inner

    async def __aenter__(self) -> asyncpg.Connection:
        async with _TRANSLATED:
            return await self._inner.__aenter__()

    async def __aexit__(self, kind: Any, exc: BaseException | None, traceback: Any) -> bool:
        async with _TRANSLATED:
            suppressed = bool(await self._inner.__aexit__(kind, exc, traceback))
        if not suppressed:
            _raise_translated(exc)
        return suppressed


def raise_confinement_error(exc: Exception, conn: asyncpg.Connection) -> NoReturn:
    """Raise what a refused confinement means: a ConfigurationError naming the fix, else the
    StoreError the driver's error translates to."""
    role = getattr(conn.get_settings(), "session_authorization", None)
    sqlstate = getattr(exc, "sqlstate", None)
    who = f"the role the pool logs in as ({role})" if role else "the role the pool logs in as"
    if sqlstate == "42501" and "optiinfra_tenant" in str(exc):
        raise ConfigurationError(
            f"{who} cannot take on optiinfra_tenant, so calls confined to a customer cannot run: "
            f"GRANT optiinfra_tenant TO {role or '<that role>'} (as an administrator). ({exc})"
        ) from exc
    if sqlstate in ("OI001", "OI002"):  # row-level security would not hold; a session on a Citus cluster
        detail = getattr(exc, "detail", None)
        raise ConfigurationError(
            f"confinement cannot hold: {exc}{f': {detail}' if detail else ''} ({getattr(exc, 'hint', '')})"
        ) from exc
    if sqlstate in ("42883", "22023"):  # no optiinfra_confine(), no optiinfra_tenant role
        raise ConfigurationError(
            f"this database cannot confine calls to a customer ({exc}): apply the migrations "
            "(optiinfra_store.migrations.apply(dsn), or `optiinfra-store migrate`)"
        ) from exc
    raise_translated(exc)


_Call = Callable[[asyncpg.Connection, str, tuple[Any, ...]], Awaitable[Any]]
_T = TypeVar("_T")
RETRY_WINDOW = 30.0
"""How long a write that is safe to repeat is retried when its outcome is unknown, for a store
that waits for its pooled connections forever (acquire_timeout=None)."""


def _fetch(conn: asyncpg.Connection, sql: str, args: tuple[Any, ...]) -> Awaitable[Any]:
    return conn.fetch(sql, *args)  # type: ignore[no-any-return]


def _fetchrow(conn: asyncpg.Connection, sql: str, args: tuple[Any, ...]) -> Awaitable[Any]:
    return conn.fetchrow(sql, *args)  # type: ignore[no-any-return]


def _fetchval(conn: asyncpg.Connection, sql: str, args: tuple[Any, ...]) -> Awaitable[Any]:
    return conn.fetchval(sql, *args)  # type: ignore[no-any-return]


def _execute(conn: asyncpg.Connection, sql: str, args: tuple[Any, ...]) -> Awaitable[Any]:
    return conn.execute(sql, *args)  # type: ignore[no-any-return]


async def _fetch_planned(conn: asyncpg.Connection, sql: str, args: tuple[Any, ...]) -> Any:
    if _driver_connection(conn) in _direct:
        statement = await conn.prepare(sql)
        return await statement.fetch(*args)
    return await conn.fetch(sql, *args)


class Executor:
    """Runs statements; subclasses say how a statement gets its connection (`_connection`) and
    how a transaction is opened (`transaction`). Statements are typed `LiteralString`: a type
    checker that enforces it (pyright) refuses one built at run time; tests/unit/test_sql_sources.py
    proves the same for this package with mypy, which does not."""

    __slots__ = ()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        raise NotImplementedError
        yield

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[ConnectionExecutor]:
        """A transaction (a savepoint inside one) committed when the block ends, rolled back if it
        raises; yields the executor bound to its connection. What the block raises reaches the
        caller as it is; what the driver raises, translated."""
        raise NotImplementedError
        yield

    def _scope(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        return _Scope(self._connection())

    slow_statement: float | None = None
    """Statements taking at least this many seconds are logged (None: none is)."""

    tracer: Any = None
    """An OpenTelemetry tracer (connection/tracing.py): each statement is a span; None: no spans."""

    # Each statement method tests `tracer` once: untraced, the hot path (a get) pays no extra frame.

    async def fetch(self, sql: LiteralString, *args: Any) -> list[asyncpg.Record]:
        if self.tracer is not None:
            return await self._traced(_fetch, sql, args)  # type: ignore[no-any-return]
        rows: list[asyncpg.Record] = await self._run(_fetch, sql, args)
        return rows

    async def fetchrow(self, sql: LiteralString, *args: Any) -> asyncpg.Record | None:
        if self.tracer is not None:
            return await self._traced(_fetchrow, sql, args)
        row: asyncpg.Record | None = await self._run(_fetchrow, sql, args)
        return row

    async def fetchval(self, sql: LiteralString, *args: Any) -> Any:
        if self.tracer is not None:
            return await self._traced(_fetchval, sql, args)
        return await self._run(_fetchval, sql, args)

    async def execute(self, sql: LiteralString, *args: Any) -> str:
        if self.tracer is not None:
            return await self._traced(_execute, sql, args)  # type: ignore[no-any-return]
        status: str = await self._run(_execute, sql, args)
        return status

    async def _traced(self, call: _Call, sql: LiteralString, args: tuple[Any, ...]) -> Any:
        """`_run` inside a span named by the statement (connection/tracing.py)."""
        span = start_statement(self.tracer, sql)
        try:
            return await self._run(call, sql, args)
        except BaseException as exc:
            failed(span, exc)
            raise
        finally:
            span.end()

    async def fetch_planned(self, sql: LiteralString, *args: Any) -> list[asyncpg.Record]:
        """`fetch`, planned for these arguments every time. A statement the driver keeps prepared
        gets PostgreSQL's generic plan from its sixth run on; for the analytics, whose best plan
        depends on the window and the filters, that plan ran 3-4x slower on a large history. So on
        a direct connection the statement is prepared afresh (one round trip more); through a
        pooler it goes unnamed, which PostgreSQL plans for its arguments anyway."""
        if self.tracer is not None:
            return await self._traced(_fetch_planned, sql, args)  # type: ignore[no-any-return]
        rows: list[asyncpg.Record] = await self._run(_fetch_planned, sql, args)
        return rows

    async def fetchrow_planned(self, sql: LiteralString, *args: Any) -> asyncpg.Record | None:
        """`fetchrow`, planned for these arguments every time (see `fetch_planned`)."""
        rows = await self.fetch_planned(sql, *args)
        return rows[0] if rows else None

    async def _run(self, call: _Call, sql: LiteralString, args: tuple[Any, ...]) -> Any:
        """Run one statement (`call` on a connection of `_scope()`), timed."""
        async with self._scope() as conn:
            began = _clock()
            try:
                return await call(conn, sql, args)
            finally:
                self._timed(sql, began)

    async def retrying(self, attempt: Callable[[], Awaitable[_T]]) -> _T:
        """Run `attempt`, a write that is safe to repeat (it lands once however often it runs).
        Inside a transaction it runs once: the transaction cannot outlive its connection."""
        return await attempt()

    async def on_one_server(self, reads: Callable[[Executor], Awaitable[_T]]) -> _T:
        """Run `reads` (reads through the executor it is given) on one server: statements whose
        answers must agree, such as a plan and the reads it plans (a replica further behind than
        the one that planned would lack what the plan names). Here: this executor's server."""
        return await reads(self)

    def _timed(self, sql: str, began: float) -> None:
        elapsed = _clock() - began
        if self.slow_statement is not None and elapsed >= self.slow_statement:
            log_slow(sql, elapsed)

    async def copy_records(self, table: str, records: Iterable[Sequence[Any]], columns: Sequence[str]) -> str:
        """COPY `records`, which may validate as they are iterated: whatever iterating them raises
        (a ValidationError, the caller's own error) reaches the caller as it is, and nothing is
        written. The COPY runs in a transaction; when iterating raises, the COPY is ended there
        and the transaction rolled back (not aborted mid-stream: the driver then also sends a
        cancel request, which through a transaction pooler can reach the server connection after
        another client has been given it)."""
        raised: list[BaseException] = []

        def rows() -> Iterator[Sequence[Any]]:
            iterator = iter(records)
            while True:
                try:
                    row = next(iterator)
                except StopIteration:
                    return
                except BaseException as exc:
                    raised.append(exc)
                    return
                yield row

        span = None if self.tracer is None else start_named(self.tracer, f"{table}.copy")
        copied = False
        try:
            async with self._copy_connection() as conn:
                status: str = await conn.copy_records_to_table(table, records=rows(), columns=list(columns))
                if raised:
                    raise raised[0]  # inside the transaction: rolled back
                copied = True
                return status
        except BaseException as exc:
            if span is not None:
                failed(span, exc)
            if not (raised and exc is raised[0]):
                if copied and self._copy_commits:  # the COMMIT of its own transaction was in flight
                    _raise_failure(exc, "COPY", committing=True)
                _raise_translated(exc)
            raise
        finally:
            if span is not None:
                span.end()

    _copy_commits = False
    """Whether `copy_records` commits a transaction of its own (not a savepoint in the caller's)."""

    def _copy_connection(self) -> Any:
        """A connection in a transaction for `copy_records`."""
        return self._connection()


class _Again(Exception):
    """An attempt's connection was lost before its statement was sent: run it once more."""


class PoolExecutor(Executor):
    """Each statement on a pooled connection of its own, given back after it.

    A connection the server closed while it sat idle in the pool is never used: the one found so
    before anything is sent (`unread`) is closed and another taken, and a statement whose
    connection turns out lost before the statement was written (`_unsent`) runs once more on
    another connection, invisibly. Past that point a lost connection is StoreUnavailable for a
    read and OutcomeUnknown for a write (`reads_only`), never retried here.

    With `wants_primary` (the DSN asks for a server that takes writes), a statement a server
    refuses as read-only met a primary that stopped taking writes (a failover under way: a
    draining primary turns read-only before it is demoted): nothing of it was applied, so its
    connection is closed and it runs once more on another; refused again, it is StoreUnavailable,
    as when no listed server is a primary."""

    __slots__ = ("pool", "acquire_timeout", "slow_statement", "tracer", "wants_primary")

    def __init__(
        self,
        pool: asyncpg.Pool,
        acquire_timeout: float | None,
        slow_statement: float | None = None,
        tracer: Any = None,
    ) -> None:
        self.pool = pool
        self.acquire_timeout = acquire_timeout
        self.slow_statement = slow_statement
        self.tracer = tracer
        self.wants_primary = False

    async def acquire(self) -> asyncpg.Connection:
        """A live connection from the pool; StoreTimeout if none is free within `acquire_timeout`."""
        if self.acquire_timeout is None:
            return await self._live()
        try:
            async with asyncio.timeout(self.acquire_timeout):
                return await self._live()
        except TimeoutError:
            raise StoreTimeout(
                f"no pooled connection came free within {self.acquire_timeout} s "
                f"(all {self.pool.get_max_size()} in use)"
            ) from None

    async def _live(self) -> asyncpg.Connection:
        """A pooled connection the server has not closed while it was idle, as far as one poll of its
        socket tells: each one found closed is closed here too, and its place in the pool connects
        anew when next taken."""
        for _ in range(self.pool.get_max_size()):
            try:
                conn: asyncpg.Connection = await self.pool.acquire()
            except _ClosedWhileIdle:  # the pool's setup found it (a bound connection) and closed it
                continue
            if not unread(conn):
                return conn
            conn.terminate()
            await self.pool.release(conn)
        return await self.pool.acquire()  # a fresh connection by now, or the pool's error

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        conn = await self.acquire()
        try:
            yield conn
        finally:
            await self.pool.release(conn)

    async def _run(self, call: _Call, sql: LiteralString, args: tuple[Any, ...]) -> Any:
        async with _TRANSLATED:  # _attempt(last=False), written out: the hot path
            conn = await self.acquire()
        try:
            return await self._statement(conn, call, sql, args, last=False)
        except _Again:
            return await self._attempt(call, sql, args, last=True)

    async def _attempt(self, call: _Call, sql: LiteralString, args: tuple[Any, ...], *, last: bool) -> Any:
        async with _TRANSLATED:
            conn = await self.acquire()
        return await self._statement(conn, call, sql, args, last=last)

    async def _statement(
        self, conn: asyncpg.Connection, call: _Call, sql: LiteralString, args: tuple[Any, ...], *, last: bool
    ) -> Any:
        """Run the statement on `conn`, which it releases; raises _Again (unless `last`) when the
        connection was lost before the statement was written to it."""
        before = _mark(conn)
        began = _clock()
        try:
            result = await call(conn, sql, args)
        except BaseException as exc:
            unsent = _unsent(exc, before)
            demoted = self.wants_primary and isinstance(exc, asyncpg.ReadOnlySQLTransactionError)
            if demoted:
                conn.terminate()  # the pool connects anew, to whichever server is the primary now
            await self.pool.release(conn)
            self._timed(sql, began)
            if unsent or demoted:
                if not last:
                    raise _Again from None
                if demoted:
                    raise StoreUnavailable(
                        f"the server stopped taking writes (a failover under way?): {first_line(exc)}"
                    ) from None
                raise_translated(exc)  # never sent: not applied, whatever it was
            _raise_failure(exc, sql)
        await self.pool.release(conn)
        self._timed(sql, began)
        return result

    async def retrying(self, attempt: Callable[[], Awaitable[_T]]) -> _T:
        """Run `attempt`, a write that is safe to repeat. When its outcome is unknown (the
        connection was lost after it was sent) it runs again on a fresh connection, and again while
        the server cannot be reached (a restart, a failover), pausing a little longer each time, for
        up to `acquire_timeout` seconds (RETRY_WINDOW without one); past that, OutcomeUnknown."""
        try:
            return await attempt()
        except OutcomeUnknown as exc:
            unknown = exc
        window = RETRY_WINDOW if self.acquire_timeout is None else self.acquire_timeout
        deadline = _clock() + window
        pause = 0.05
        while True:
            try:
                return await attempt()
            except (StoreUnavailable, StoreTimeout) as exc:  # still unknown: the server not reached
                if _clock() + pause > deadline:
                    raise OutcomeUnknown(
                        f"{unknown}; retried for {window:g} s without an answer: {first_line(exc)}"
                    ) from exc
                _log.warning("retrying a write whose outcome is unknown: %s", first_line(exc))
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[ConnectionExecutor]:
        conn, transaction = await self._start()
        logger = None if self.slow_statement is None else slow_statement_logger(self.slow_statement)
        try:
            if logger is not None:  # every statement of the transaction, its own included
                conn.add_query_logger(logger)
            try:
                await self._bind(conn)
                yield ConnectionExecutor(conn, self.tracer)
            except BaseException:
                with suppress(Exception):  # a broken connection: the caller's error matters more
                    await transaction.rollback()
                raise
            before = _mark(conn)
            try:
                await transaction.commit()
            except Exception as exc:
                if _unsent(exc, before):  # never sent: rolled back with the session
                    raise_translated(exc)
                _raise_failure(exc, "COMMIT", committing=True)
        finally:
            if logger is not None:
                # a connection closed underneath is detached from its proxy already: nothing to remove
                with suppress(asyncpg.InterfaceError):
                    conn.remove_query_logger(logger)
            await self.pool.release(conn)

    async def _start(self) -> tuple[asyncpg.Connection, Any]:
        """A pooled connection with a transaction started on it. A connection lost during the BEGIN
        is replaced once: nothing of the caller's was sent on it."""
        for attempt in (1, 2):
            async with _TRANSLATED:
                conn = await self.acquire()
            transaction = conn.transaction()
            try:
                await transaction.start()
            except Exception as exc:
                await self.pool.release(conn)
                if attempt == 1 and isinstance(translate(exc), StoreUnavailable):
                    continue
                raise_translated(exc)
            except BaseException:
                await self.pool.release(conn)
                raise
            return conn, transaction
        raise AssertionError("unreachable")

    async def _bind(self, conn: asyncpg.Connection) -> None:
        """What a transaction does first (nothing, unconfined)."""

    @asynccontextmanager
    async def _copy_connection(self) -> AsyncIterator[asyncpg.Connection]:
        async with self._connection() as conn, conn.transaction():
            yield conn

    _copy_commits = True


class ConfinedExecutor(PoolExecutor):
    """Like PoolExecutor, but each statement runs confined to one customer (`optiinfra_tenant` and
    the customer, see CONFINE), so the database shows and accepts only that customer's rows,
    whatever role the pool logs in as.

    Two ways, both checked by the database on every call (optiinfra_confine refuses when
    row-level security would not hold):

    - `session` (a direct connection, on a pool that runs `unbind_session` on every acquire):
      two round trips, the binding for the session (`BIND_SESSION`), then the statement. A
      connection is direct when the server process that answers it is the one its startup named
      (`note_direct`; a pooler makes up its own), and every binding checks that again. The
      binding is made anew for every statement, never taken on trust from an earlier call; the
      connection stays bound when it goes back to the pool, and the pool unbinds it before any
      other caller gets it (an unconfined one, a transaction, the pool's own users).
    - otherwise (behind a transaction pooler, which may hand each transaction another server
      connection, on a pool of the caller's own, or on a schema distributed by customer): three
      round trips, a transaction with the confinement in it (BEGIN with CONFINE), the statement,
      COMMIT. Nothing stays on the connection. On a Citus coordinator the confinement binds the
      customer for the transaction's worker connections too (migration 0030: a SET LOCAL that
      Citus replays on each of them, opened as optiinfra_tenant); a session's binding would reach
      no worker, and the database refuses it there.

    Transactions and COPY always take the second way. A connection lost during the binding or the
    BEGIN is replaced once, as one lost before the statement was sent (see PoolExecutor)."""

    __slots__ = ("customer_id", "_begin", "_session")

    def __init__(
        self,
        pool: asyncpg.Pool,
        acquire_timeout: float | None,
        customer_id: UUID,
        slow_statement: float | None = None,
        *,
        session: bool = False,
        tracer: Any = None,
    ) -> None:
        super().__init__(pool, acquire_timeout, slow_statement, tracer)
        self.customer_id = customer_id
        self._begin = begin_confined(customer_id)
        self._session = session and unbinds_sessions(pool)

    async def _run(self, call: _Call, sql: LiteralString, args: tuple[Any, ...]) -> Any:
        try:
            return await self._attempt(call, sql, args, last=False)
        except _Again:
            return await self._attempt(call, sql, args, last=True)

    async def _attempt(self, call: _Call, sql: LiteralString, args: tuple[Any, ...], *, last: bool) -> Any:
        if self._session:
            conn = await self._acquire_bound(last=last)
            if conn is not None:
                return await self._statement(conn, call, sql, args, last=last)
        return await self._in_transaction(call, sql, args, last=last)

    async def _acquire_bound(self, *, last: bool) -> asyncpg.Connection | None:
        """A direct pooled connection bound to the customer for its session (checked by the
        database); None through a pooler (the statement then takes a transaction of its own)."""
        token = _confining.set([True])
        try:
            async with _TRANSLATED:
                conn = await self.acquire()
        finally:
            _confining.reset(token)
        raw = _driver_connection(conn)
        if raw not in _direct:  # through a pooler: a transaction of its own, as pooler="transaction"
            await self.pool.release(conn)
            return None
        _bound.add(raw)  # from here on the pool unbinds it for anyone else
        try:
            bound = await conn.fetchrow(BIND_SESSION, self.customer_id, conn.get_server_pid())
        except Exception as exc:
            # lost while binding: only the session, which died with it, was changed
            again = not last and isinstance(translate(exc), StoreUnavailable)
            try:
                if not again:
                    raise_confinement_error(exc, conn)
            finally:
                await self.pool.release(conn)
            raise _Again from None
        except BaseException:
            _drop(conn)  # cut short: what the session holds is unknown
            await self.pool.release(conn)
            raise
        if bound is None:
            _drop(conn)
            await self.pool.release(conn)
            raise ConfigurationError(
                "a confined call's binding ran in another server process than its connection's: "
                "a pooler sits between the store and the server; open the store with pooler='transaction'"
            )
        return conn

    async def _in_transaction(self, call: _Call, sql: LiteralString, args: tuple[Any, ...], *, last: bool) -> Any:
        """BEGIN with CONFINE, the statement, COMMIT (see the class). A statement whose connection
        is lost before its COMMIT was sent was not applied; after, a write's outcome is unknown."""
        async with _TRANSLATED:
            conn = await self.acquire()
        try:
            try:
                await conn.execute(self._begin)
            except Exception as exc:
                await _roll_back(conn)
                if not last and isinstance(translate(exc), StoreUnavailable):
                    raise _Again from None
                raise_confinement_error(exc, conn)
            except BaseException:
                _drop(conn)
                raise
            before = _mark(conn)
            began = _clock()
            try:
                result = await call(conn, sql, args)
            except BaseException as exc:
                unsent = _unsent(exc, before)
                await _roll_back(conn)
                if unsent and not last:
                    raise _Again from None
                _raise_translated(exc)  # in its transaction, never committed
                raise
            finally:
                self._timed(sql, began)
            before = _mark(conn)
            try:
                await conn.execute("COMMIT")
            except asyncio.CancelledError:
                _drop(conn)
                raise
            except Exception as exc:
                if _unsent(exc, before):
                    raise_translated(exc)
                _raise_failure(exc, sql, committing=True)
            return result
        finally:
            await self.pool.release(conn)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        conn = await self.acquire()
        try:
            try:
                await conn.execute(self._begin)
            except Exception as exc:
                await _roll_back(conn)
                raise_confinement_error(exc, conn)
            except BaseException:
                _drop(conn)
                raise
            try:
                yield conn
            except BaseException:
                await _roll_back(conn)
                raise
            try:
                await conn.execute("COMMIT")
            except asyncio.CancelledError:
                _drop(conn)
                raise
        finally:
            await self.pool.release(conn)

    def _copy_connection(self) -> Any:
        return self._connection()  # in its confined transaction already

    async def _bind(self, conn: asyncpg.Connection) -> None:
        try:
            await conn.execute(CONFINE, self.customer_id)
        except Exception as exc:
            raise_confinement_error(exc, conn)


class ConnectionExecutor(Executor):
    """Every statement on one connection, inside the transaction its creator opened."""

    __slots__ = ("connection", "tracer")

    def __init__(self, connection: asyncpg.Connection, tracer: Any = None) -> None:
        self.connection = connection
        self.tracer = tracer

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        yield self.connection

    @asynccontextmanager
    async def _copy_connection(self) -> AsyncIterator[asyncpg.Connection]:
        # under a savepoint: a failed COPY leaves the transaction usable, as if refused before any SQL
        async with self.connection.transaction():
            yield self.connection

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[ConnectionExecutor]:
        savepoint = self.connection.transaction()
        async with translated():
            await savepoint.start()
        try:
            yield self
        except BaseException:
            with suppress(Exception):
                await savepoint.rollback()
            raise
        async with translated():
            await savepoint.commit()


def _drop(conn: asyncpg.Connection) -> None:
    """A round trip that opens or closes a transaction was cancelled half way: the transaction's
    state is unknown, so the connection is closed (the pool opens another) rather than reused."""
    conn.terminate()


async def _roll_back(conn: asyncpg.Connection) -> None:
    """End a failed confined transaction; a broken connection is left to the pool to replace."""
    with suppress(Exception):
        if conn.is_in_transaction():
            await conn.execute("ROLLBACK")


class ReplicaExecutor(Executor):
    """Read-only statements on a replica's pool (the next of several in turn), and on the primary's
    executor when no replica can be reached: a replica that refuses or drops the connection is
    skipped for `retry_after` seconds (and logged), so a read never fails that the primary could
    serve. Errors of the statement itself (bad input, a timeout) are not retried elsewhere."""

    __slots__ = ("replicas", "primary", "retry_after", "_down_until", "_next")

    def __init__(self, replicas: Sequence[Executor], primary: Executor, retry_after: float = 5.0) -> None:
        self.replicas = list(replicas)
        self.primary = primary
        self.retry_after = retry_after
        self._down_until = [0.0] * len(self.replicas)
        self._next = 0

    def _candidates(self) -> list[tuple[int, Executor]]:
        now = time.monotonic()
        count = len(self.replicas)
        start, self._next = self._next, (self._next + 1) % max(count, 1)
        order = [(start + i) % count for i in range(count)]
        return [(i, self.replicas[i]) for i in order if self._down_until[i] <= now]

    async def _read(self, method: str, sql: LiteralString, args: tuple[Any, ...]) -> Any:
        for index, replica in self._candidates():
            try:
                return await getattr(replica, method)(sql, *args)
            except StoreUnavailable as exc:
                self._down_until[index] = time.monotonic() + self.retry_after
                _log.warning("read replica %d unavailable, reading from the primary: %s", index, exc)
        return await getattr(self.primary, method)(sql, *args)

    async def on_one_server(self, reads: Callable[[Executor], Awaitable[_T]]) -> _T:
        """`reads` on one replica (the next in turn), or all of them on the primary when none can
        be reached: never some on one replica and some on another."""
        for index, replica in self._candidates():
            try:
                return await reads(replica)
            except StoreUnavailable as exc:
                self._down_until[index] = time.monotonic() + self.retry_after
                _log.warning("read replica %d unavailable, reading from the primary: %s", index, exc)
        return await reads(self.primary)

    async def fetch(self, sql: LiteralString, *args: Any) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self._read("fetch", sql, args)
        return rows

    async def fetchrow(self, sql: LiteralString, *args: Any) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self._read("fetchrow", sql, args)
        return row

    async def fetchval(self, sql: LiteralString, *args: Any) -> Any:
        return await self._read("fetchval", sql, args)

    async def fetch_planned(self, sql: LiteralString, *args: Any) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self._read("fetch_planned", sql, args)
        return rows

    async def fetchrow_planned(self, sql: LiteralString, *args: Any) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self._read("fetchrow_planned", sql, args)
        return row

    async def execute(self, sql: LiteralString, *args: Any) -> str:
        raise TypeError("a replica executor runs reads only: writes go to the primary's executor")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[ConnectionExecutor]:
        raise TypeError("transactions run on the primary")
        yield
