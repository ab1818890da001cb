"""The Store: one asyncpg pool, the repositories bound to it, transactions and confinement."""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal
from urllib.parse import unquote, urlsplit
from uuid import UUID

import asyncpg

from optiinfra_store import queries
from optiinfra_store.connection.codecs import init_connection
from optiinfra_store.connection.dsn import check_readable, parameters, redact, resolve_dsn, server_name
from optiinfra_store.connection.executor import (
    CONFINE_SESSION,
    ConfinedExecutor,
    ConnectionExecutor,
    PoolExecutor,
    ReplicaExecutor,
    raise_confinement_error,
    translated,
)
from optiinfra_store.connection.options import (
    DEFAULT_MAX_DOCUMENT_BYTES,
    DEFAULT_SLOW_STATEMENT,
    PoolOptions,
    connector,
)
from optiinfra_store.connection.routes import Routes
from optiinfra_store.connection.tracing import STATEMENT_NAMES, failed, tracer_of
from optiinfra_store.crypto.secrets import SecretKeys
from optiinfra_store.errors import AccessDenied, ConfigurationError, InvalidArgument, StoreError
from optiinfra_store.records import MaintenanceReport, PoolStats
from optiinfra_store.repositories import Repositories, maintenance
from optiinfra_store.repositories.base import as_optional_uuid, as_uuid
from optiinfra_store.repositories.maintenance import DEFAULT_METRIC_DAYS_AHEAD
from optiinfra_store.workflow_events import EventsHub, WorkflowEvents

# Repositories is defined in optiinfra_store.repositories; tracer_of and failed in connection/tracing.py,
# for the service's request spans too (api/tracing.py: the service's layer reaches the store's only)
__all__ = ["Repositories", "Store", "Transaction", "failed", "tracer_of"]


class Transaction(Repositories):
    """The repositories bound to one connection inside a transaction."""

    _executor: ConnectionExecutor

    @property
    def connection(self) -> asyncpg.Connection:
        """The transaction's asyncpg connection, for statements of your own. Not given out when the
        transaction is confined to a customer: one `RESET ROLE` or `set_config` on it would undo
        the confinement, which holds only for the statements the store issues."""
        if self.customer_id is not None:
            raise AccessDenied(
                f"a transaction confined to customer {self.customer_id} does not give out its connection"
            )
        return self._executor.connection

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """A nested transaction (a savepoint): rolled back alone if its block raises."""
        async with self._executor.transaction():
            yield self


class Store(Repositories):
    """Entry point: `async with Store.connect(dsn) as store:` or `store = await Store.connect(dsn)`.

    Repositories are attributes named after their tables (`store.workflow_executions`, ...);
    each call takes a pooled connection for one statement. `store.transaction()` binds the
    same repositories to one connection; `store.for_customer(id)` confines them to one customer.
    """

    _executor: PoolExecutor

    def __init__(
        self,
        pool: asyncpg.Pool,
        dsn: str | None = None,
        *,
        acquire_timeout: float | None = None,
        customer_id: UUID | None = None,
        owns_pool: bool = True,
        server_settings: dict[str, str] | None = None,
        secret_keys: SecretKeys | None = None,
        pooler: str | None = None,
        events_dsn: str | None = None,
        read_pools: Sequence[asyncpg.Pool] = (),
        slow_statement: float | None = None,
        tracer: Any = None,
        by_customer: bool = False,
        routes: Routes | None = None,
    ) -> None:

        def executor_of(pool: asyncpg.Pool) -> PoolExecutor:
            if customer_id is None:
                return PoolExecutor(pool, acquire_timeout, slow_statement, tracer)
            # bound for the session on a direct connection; behind a transaction pooler, and on a
            # Citus cluster (whose workers never see a session's binding), per transaction
            return ConfinedExecutor(
                pool,
                acquire_timeout,
                customer_id,
                slow_statement,
                session=pooler is None and not by_customer,
                tracer=tracer,
            )

        executor = executor_of(pool)
        executor.wants_primary = dsn is not None and _wants_primary(dsn)
        reads = ReplicaExecutor([executor_of(p) for p in read_pools], executor) if read_pools else None
        # the customers of the rows seen, shared by the stores and transactions made from this one
        routes = Routes() if by_customer and routes is None else routes
        super().__init__(executor, secret_keys, customer_id, reads, by_customer, routes)
        self.pool = pool
        self.read_pools = tuple(read_pools)
        """The replicas' pools (empty: every call goes to `pool`)."""
        self._dsn = dsn
        self._owns_pool = owns_pool
        self._server_settings = dict(server_settings or {})  # the pool's, for workflow_events' connection
        self._pooler = pooler
        self._events_dsn = events_dsn

    @classmethod
    def connect(
        cls,
        dsn: str | None = None,
        *,
        min_size: int = 1,
        max_size: int = 10,
        command_timeout: float | None = 60.0,
        statement_timeout: float | None = None,
        acquire_timeout: float | None = 30.0,
        max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
        secret_key: str | Sequence[str] | None = None,
        pooler: Literal["transaction"] | None = None,
        events_dsn: str | None = None,
        read_dsn: str | Sequence[str] | None = None,
        slow_statement: float | None = DEFAULT_SLOW_STATEMENT,
        tracer_provider: Any = None,
        **pool_options: Any,
    ) -> _Connecting:
        """Open a pool on `dsn` (default `$OPTIINFRA_DATABASE_URL`); await it or use `async with`.

        Timeouts are in seconds (None: wait forever) and raise StoreTimeout: `command_timeout` for
        each call (the client cancels the statement), `statement_timeout` the same enforced by the
        server, `acquire_timeout` for the wait for a free pooled connection (and for the server, when
        a `workflow_executions.create` with an idempotency key is retried after its connection was
        lost: see OutcomeUnknown in errors.py). JSON documents larger
        than `max_document_bytes` are refused with DocumentTooLarge before they are sent.
        With `secret_key` (a string, or a list newest first; default `$OPTIINFRA_SECRET_KEY`),
        sensitive agent configs are encrypted and decrypted in the client: the server never sees
        a key or a plaintext.
        With `pooler="transaction"` the store works through a transaction pooler such as pgbouncer
        in transaction mode: no named prepared statements and no session settings on any
        connection it opens. LISTEN needs a session, so `workflow_events` then needs `events_dsn`,
        a direct connection to the server (it is also used without a pooler, when given).
        With `read_dsn` (a replica, or a list of them) the reads that can lag a little go to the
        replicas in turn: `list`, `get_detail`, `history`, `statistics`, `performance`, `trend`,
        and metric `aggregate` and `search`. Every write, `get`, and every `transaction()` stays on
        the primary; `store.primary()` reads from the primary too (to read your own writes). A
        replica that cannot be reached is skipped for a few seconds, and the read goes to the
        primary. A write sent to a replica raises ReadOnlyServer.
        Statements that take `slow_statement` seconds or more are logged (logger
        `optiinfra_store.statements`, WARNING: the statement's first line and its time, never its
        arguments); None logs none.
        With opentelemetry-api installed (the `otel` extra) and a tracer provider set, globally
        (`opentelemetry.trace.set_tracer_provider`) before the store opens or given as
        `tracer_provider`, each statement is a span named by its statement
        (`workflow_executions.get_by_id`), with no argument in it; without one, no span is made.
        A DSN may list several servers (`postgresql://h1:p1,h2:p2/db`, or
        `postgresql:///db?host=h1,h2&port=p1,p2`); with `target_session_attrs=read-write` every
        connection goes to the one that takes writes, tried in the order listed.
        Other `pool_options` go to `asyncpg.create_pool` (server_settings, ...).
        Raises ConfigurationError without a DSN, StoreUnavailable naming every listed server if
        none can be reached or none is a primary, InvalidArgument for options a transaction
        pooler cannot honour.
        """
        resolved = resolve_dsn(dsn)
        secret_keys = SecretKeys.from_option(secret_key)
        tracer = tracer_of(tracer_provider)
        if tracer is not None and not STATEMENT_NAMES:
            STATEMENT_NAMES.update(queries.named())
        options = PoolOptions(
            min_size=min_size,
            max_size=max_size,
            command_timeout=command_timeout,
            statement_timeout=statement_timeout,
            acquire_timeout=acquire_timeout,
            max_document_bytes=max_document_bytes,
            extra=pool_options,
            pooler=pooler,
            slow_statement=slow_statement,
        )
        direct = None if events_dsn is None else resolve_dsn(events_dsn)
        replicas = _replica_dsns(read_dsn)
        for each in (resolved, direct, *replicas):
            check_readable(each)

        pool_kwargs = options.pool_kwargs(resolved)

        def replica_kwargs(replica: str) -> dict[str, Any]:
            # replicas connect when first used (a replica that is down does not stop the store
            # opening) and give up on a connection attempt quickly, so that the read goes to the primary
            return {**options.pool_kwargs(replica), "min_size": 0, "timeout": pool_kwargs.get("timeout", 5.0)}

        async def open_store() -> Store:
            try:  # a failure to connect names the servers of the DSN (options.connector)
                async with translated():
                    pool = await asyncpg.create_pool(resolved, **pool_kwargs)
            except AccessDenied as exc:
                raise _connect_refused(resolved, exc) from exc.__cause__
            async with translated():
                read_pools = [await asyncpg.create_pool(r, **replica_kwargs(r)) for r in replicas]
            try:
                by_customer = await maintenance.distributed_by_customer(PoolExecutor(pool, acquire_timeout))
            except BaseException:
                for each in (*read_pools, pool):
                    await each.close()
                raise
            return cls(
                pool,
                resolved,
                acquire_timeout=acquire_timeout,
                server_settings=options.server_settings,
                secret_keys=secret_keys,
                pooler=pooler,
                events_dsn=direct,
                read_pools=read_pools,
                slow_statement=options.slow_statement,
                tracer=tracer,
                by_customer=by_customer,
            )

        return _Connecting(open_store)

    def for_customer(self, customer_id: UUID | str) -> Store:
        """The same repositories, confined to one customer by the database: every call takes on
        the role `optiinfra_tenant` and binds `customer_id` first (for its statement on a direct
        connection, which the pool unbinds before anyone else gets it; in a transaction of its own
        through a pooler and on a Citus cluster, where the binding reaches the workers too),
        whatever role the pool logs in as, and row-level security shows only that customer's rows.
        Another customer's row reads as NotFound; writing one raises AccessDenied, and so does a
        change to what every customer shares (see the README's table). If the pool's role cannot
        take on `optiinfra_tenant`, or (on a Citus cluster) `optiinfra_tenant` cannot log in to
        the workers, the first call raises ConfigurationError naming the fix: it never runs
        unconfined. Shares this store's pool: closing it does nothing.

        A confined store stays confined: its `for_customer` of its own customer is itself, of
        another customer AccessDenied."""
        customer = as_uuid(customer_id, "customer_id")
        if self.customer_id is not None:
            if customer != self.customer_id:
                raise AccessDenied(
                    f"this store is confined to customer {self.customer_id}: it cannot act for another customer"
                )
            return self
        return type(self)(
            self.pool,
            self._dsn,
            acquire_timeout=self._executor.acquire_timeout,
            slow_statement=self._executor.slow_statement,
            tracer=self._executor.tracer,
            customer_id=customer,
            owns_pool=False,
            server_settings=self._server_settings,
            secret_keys=self._secret_keys,
            pooler=self._pooler,
            events_dsn=self._events_dsn,
            by_customer=self.by_customer,
            routes=self._routes,
            read_pools=self.read_pools,
        )

    def primary(self) -> Store:
        """The same store with its reads on the primary too: for a read that must see a write just
        made (a replica replays the primary's changes with a lag, milliseconds usually, more under
        a heavy write load). Shares this store's pools: closing it does nothing."""
        return type(self)(
            self.pool,
            self._dsn,
            acquire_timeout=self._executor.acquire_timeout,
            slow_statement=self._executor.slow_statement,
            tracer=self._executor.tracer,
            customer_id=self.customer_id,
            owns_pool=False,
            server_settings=self._server_settings,
            secret_keys=self._secret_keys,
            pooler=self._pooler,
            events_dsn=self._events_dsn,
            by_customer=self.by_customer,
            routes=self._routes,
        )

    def pool_stats(self) -> PoolStats:
        """The connections of the store's pool (the primary's) now: open, in use, idle, and the
        pool's bounds. Reads the pool's counters: no round trip."""
        size = self.pool.get_size()
        idle = self.pool.get_idle_size()
        return PoolStats(
            size=size,
            in_use=size - idle,
            idle=idle,
            min_size=self.pool.get_min_size(),
            max_size=self.pool.get_max_size(),
        )

    async def close(self) -> None:
        """Close the pools, waiting for connections in use to be released."""
        if self._owns_pool:
            for pool in (*self.read_pools, self.pool):
                await pool.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """Run the block in one transaction on one connection; roll it all back if it raises.

        Yields the repositories bound to that connection; `tx.transaction()` nests a savepoint.
        """
        async with self._executor.transaction() as executor:
            yield Transaction(
                executor, self._secret_keys, self.customer_id, by_customer=self.by_customer, routes=self._routes
            )

    async def maintain(self, *, metric_days_ahead: int = DEFAULT_METRIC_DAYS_AHEAD) -> MaintenanceReport:
        """Run the periodic upkeep once: agent_metrics partitions from today to `metric_days_ahead`
        days ahead, points the default partition caught moved into partitions of their own, and the
        workflow analytics rollups caught up. Idempotent, and safe from several processes at once;
        run it hourly (analytics read every hour not yet rolled up from the raw tables, so they are
        right either way, only slower). Platform work: a store confined to a customer raises
        AccessDenied."""
        self._refuse_if_confined("maintain()")
        return await maintenance.maintain(
            self._executor, metric_days_ahead=metric_days_ahead, by_customer=self.by_customer
        )

    async def pending_migrations(self) -> list[str]:
        """The ids of the package's migrations this database has not applied, in order: empty when
        the schema is current (a readiness check). Raises StoreUnavailable if the server cannot be
        reached."""
        self._refuse_if_confined("pending_migrations()")
        return await maintenance.pending_migrations(self._executor)

    @asynccontextmanager
    async def workflow_events(
        self,
        *,
        customer_id: UUID | str | None = None,
        execution_id: UUID | str | None = None,
        after: int | None = None,
        poll_interval: float = 1.0,
        hub: EventsHub | None = None,
        resume: str | None = None,
    ) -> AsyncIterator[WorkflowEvents]:
        """Subscribe to workflow transitions as they are committed (LISTEN/NOTIFY on a connection of
        its own, not the pool's). Yields an async iterator of WorkflowTransition, optionally only of
        one customer or execution. With `after` (a transition id) it first delivers everything since.
        A dropped connection is re-opened and nothing is lost or repeated. A store confined to a
        customer delivers only that customer's transitions. `resume` takes the `position` of an
        earlier subscription (with the same filters) and continues exactly where it stopped.

        With `hub` (from `events_hub()`) it opens no connection: the hub's wakes it, and it reads
        through this store's pool, holding a connection only while it reads.

        On a schema distributed on a Citus cluster (`by_customer`) it listens and reads on each
        node holding shards of the trail, on connections of its own (with a hub too), and its
        position names each node's; `after` is refused there (InvalidArgument: ids are not ordered
        across nodes), as is a position of one server.
        Raises NotFound for an unknown `after`, StoreUnavailable if the server cannot be reached."""
        customer = as_optional_uuid(customer_id, "customer_id")
        if self.customer_id is not None:
            if customer not in (None, self.customer_id):
                raise InvalidArgument(f"this store is confined to customer {self.customer_id}")
            customer = self.customer_id
        if after is not None and resume is not None:
            raise InvalidArgument("pass after= or resume=, not both")
        stream = WorkflowEvents(
            None
            if hub is not None or self.by_customer
            else self._listener_factory("workflow_events", self.customer_id),
            customer_id=customer,
            execution_id=as_optional_uuid(execution_id, "execution_id"),
            after=after,
            poll_interval=poll_interval,
            hub=hub,
            reader=self._executor,
            resume=resume,
            # on a Citus cluster: a connection of its own to each node, hub or not (module docstring)
            connect_node=self._events_connector("workflow_events", self.customer_id) if self.by_customer else None,
        )
        try:
            await stream.open()
            yield stream
        finally:
            await stream.close()

    @asynccontextmanager
    async def events_hub(self) -> AsyncIterator[EventsHub]:
        """One listening connection to share among many `workflow_events(hub=...)` subscriptions
        (of this store and of the stores `for_customer` makes from it): for a server process that
        streams events to many clients. Platform work: refused in a confined store."""
        self._refuse_if_confined("events_hub()")
        hub = EventsHub(self._listener_factory("events_hub", None))
        await hub.open()
        try:
            yield hub
        finally:
            await hub.close()

    def _refuse_if_confined(self, what: str) -> None:
        """Platform work reaches past one customer: AccessDenied in a confined store."""
        if self.customer_id is not None:
            raise AccessDenied(f"{what} is platform work: refused in a store confined to customer {self.customer_id}")

    def _listener_factory(self, caller: str, confined_to: UUID | None) -> Callable[[], Awaitable[asyncpg.Connection]]:
        """Opens a connection of its own for LISTEN (not through a transaction pooler: a
        notification there can reach any client or none), confined for its whole session if asked."""
        open_events = self._events_connector(caller, confined_to)

        async def connect() -> asyncpg.Connection:
            return await open_events(None, None)

        return connect

    def _events_connector(
        self, caller: str, confined_to: UUID | None
    ) -> Callable[[str | None, int | None], Awaitable[asyncpg.Connection]]:
        """`_listener_factory`'s connection, to the server of the DSN, or (host, port given) to
        that node of a Citus cluster with the same credentials and settings."""
        if self._dsn is None:
            raise ConfigurationError(f"{caller} needs a Store opened with Store.connect()")
        if self._pooler is not None and self._events_dsn is None:
            raise ConfigurationError(
                f"{caller} listens (LISTEN/NOTIFY), which needs a session of its own: through a "
                "transaction pooler a notification can reach any client or none. Open the store with "
                "events_dsn=<a direct connection to the server>"
            )
        dsn = self._events_dsn or self._dsn
        settings = {**self._server_settings, "application_name": "optiinfra-events"}
        open_connection = connector(dsn)

        async def connect(host: str | None, port: int | None) -> asyncpg.Connection:
            if host is None:
                conn = await open_connection(dsn, server_settings=settings)
            else:  # errors name the node, not the DSN's server
                conn = await connector(f"postgresql://{server_name(host, port)}")(
                    dsn, host=host, port=port, server_settings=settings
                )
            try:
                await init_connection(conn)
                if confined_to is not None:  # a connection of its own: confined for its session
                    try:
                        await conn.execute(CONFINE_SESSION, confined_to)
                    except Exception as exc:
                        raise_confinement_error(exc, conn)
            except BaseException:
                await conn.close()
                raise
            return conn

        return connect

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _connect_refused(dsn: str, exc: AccessDenied) -> StoreError:
    """A login the database does not let connect (0020: only members of `<database>_connect` may)
    is a deployment's mistake: ConfigurationError naming the grant; any other refusal unchanged."""
    match = re.search(r'permission denied for database "(.+)"', str(exc))
    if match is None:
        return exc
    database = match[1]
    login = unquote(urlsplit(dsn).username or "") or "<the login role>"
    return ConfigurationError(
        f"cannot connect to {redact(dsn)}: the login role may not connect to database {database}; "
        f"GRANT {_quote_ident(database + '_connect')} TO {_quote_ident(login)} (as an administrator)"
    )


def _quote_ident(name: str) -> str:
    """`name` as an SQL identifier, quoted unless it is a plain lower-case one."""
    return name if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) else '"' + name.replace('"', '""') + '"'


def _replica_dsns(read_dsn: str | Sequence[str] | None) -> list[str]:
    if read_dsn is None:
        return []
    dsns = [read_dsn] if isinstance(read_dsn, str) else list(read_dsn)
    if not dsns or not all(isinstance(d, str) and d.strip() for d in dsns):
        raise InvalidArgument(f"read_dsn must be a DSN or a non-empty list of them, got {read_dsn!r}")
    return [resolve_dsn(d) for d in dsns]


class _Connecting:
    """What `Store.connect()` returns: awaitable, and an async context manager."""

    def __init__(self, opener: Callable[[], Awaitable[Store]]) -> None:
        self._opener = opener
        self._store: Store | None = None

    def __await__(self) -> Generator[Any, None, Store]:
        return self._opener().__await__()

    async def __aenter__(self) -> Store:
        self._store = await self._opener()
        return self._store

    async def __aexit__(self, *exc_info: object) -> None:
        if self._store is not None:
            await self._store.close()


@functools.lru_cache(maxsize=64)
def _wants_primary(dsn: str) -> bool:
    """Whether `dsn` asks for a server that takes writes (`target_session_attrs` read-write or
    primary): a server refusing a write as read-only is then one that stopped being the primary."""
    return parameters(dsn).get("target_session_attrs") in ("read-write", "primary")
