"""The Store: one asyncpg pool, the repositories bound to it, and transactions."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any
from uuid import UUID

import asyncpg

from optiinfra_store.dsn import resolve_dsn
from optiinfra_store.enums import DATABASE_ENUMS
from optiinfra_store.errors import AccessDenied, ConfigurationError, DocumentTooLarge, InvalidArgument, translate
from optiinfra_store.events import WorkflowEvents
from optiinfra_store.executor import (
    CONFINE,
    CONFINE_SESSION,
    CustomerExecutor,
    PoolExecutor,
    raise_confinement_error,
)
from optiinfra_store.repositories import (
    AgentCapabilities,
    AgentConfigs,
    AgentMetrics,
    Agents,
    AgentStates,
    Approvals,
    Customers,
    Events,
    Optimizations,
    Recommendations,
    WorkflowArtifacts,
    WorkflowExecutions,
    WorkflowSteps,
)
from optiinfra_store.repositories.base import Executor, as_optional_uuid, as_uuid
from optiinfra_store.secrets import SecretKeys

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
_loads = json.JSONDecoder().decode  # the server sends UTF-8 text: json.loads' sniffing is not needed


DEFAULT_MAX_DOCUMENT_BYTES = 1 << 20
"""The default limit on one JSON document (1 MiB), checked as it is encoded, before it is sent."""


def _jsonb_encoder(limit: int) -> Callable[[Any], bytes]:
    def encode(value: Any) -> bytes:
        text = _dumps(value).encode("utf-8")
        if len(text) > limit:
            raise DocumentTooLarge(len(text), limit)
        # binary jsonb is a version byte (1) followed by the JSON text
        return b"\x01" + text

    return encode


def _decode_jsonb(data: bytes) -> Any:
    # binary jsonb is a version byte (1) followed by the JSON text
    return _loads(str(data[1:], "utf-8"))


def _encode_label(value: Any) -> bytes:
    return str(value).encode("utf-8")


def _label_decoder(enum: type) -> Callable[[bytes], Any]:
    members = {member.value.encode("utf-8"): member for member in enum}
    return members.__getitem__


async def init_connection(conn: asyncpg.Connection, *, max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES) -> None:
    """Register the codecs every connection needs: JSONB <-> dict/list (binary, so COPY works
    too; documents over `max_document_bytes` are refused) and the 15 enum types <-> their StrEnums."""
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        encoder=_jsonb_encoder(max_document_bytes),
        decoder=_decode_jsonb,
        format="binary",
    )
    await conn.set_type_codec("json", schema="pg_catalog", encoder=_dumps, decoder=_loads, format="text")
    try:
        await _register_enum_codecs(conn)
    except ValueError as exc:  # asyncpg: "unknown type: public.customer_status"
        raise ConfigurationError(
            f"the database has no optiinfra schema ({exc}): run `optiinfra-store migrate` first"
        ) from exc


async def _register_enum_codecs(conn: asyncpg.Connection) -> None:
    for type_name, enum in DATABASE_ENUMS.items():
        # binary (an enum's wire form is its label) so COPY can write enum columns too
        await conn.set_type_codec(
            type_name, schema="public", encoder=_encode_label, decoder=_label_decoder(enum), format="binary"
        )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool reset: nothing to undo. The pool has already rolled back any open transaction, and the
    repositories change no session state (no SET, LISTEN, cursors or advisory locks; the audit
    settings are transaction-local), so asyncpg's default reset query would only cost every call a
    second round trip. Pass `reset=` to Store.connect to restore a full reset."""


class Repositories:
    """The 13 repositories, bound to one executor (the pool, or one connection in a transaction),
    optionally confined to one customer."""

    def __init__(
        self, executor: Executor, secret_keys: SecretKeys | None = None, customer_id: UUID | None = None
    ) -> None:
        self._secret_keys = secret_keys
        self.customer_id = customer_id
        """The customer these repositories are confined to (None: not confined)."""
        self.customers = Customers(executor, customer_id)
        self.agents = Agents(executor, customer_id)
        self.events = Events(executor, customer_id)
        self.recommendations = Recommendations(executor, customer_id)
        self.approvals = Approvals(executor, customer_id)
        self.optimizations = Optimizations(executor, customer_id)
        self.agent_configs = AgentConfigs(executor, customer_id, secret_keys)
        self.agent_states = AgentStates(executor, customer_id)
        self.agent_capabilities = AgentCapabilities(executor, customer_id)
        self.agent_metrics = AgentMetrics(executor, customer_id)
        self.workflow_executions = WorkflowExecutions(executor, customer_id)
        self.workflow_steps = WorkflowSteps(executor, customer_id)
        self.workflow_artifacts = WorkflowArtifacts(executor, customer_id)


class Transaction(Repositories):
    """The repositories bound to one connection inside a transaction."""

    def __init__(
        self, connection: asyncpg.Connection, secret_keys: SecretKeys | None = None, customer_id: UUID | None = None
    ) -> None:
        super().__init__(connection, secret_keys, customer_id)
        self._connection = connection

    @property
    def connection(self) -> asyncpg.Connection:
        """The transaction's asyncpg connection, for statements of your own. Not given out when the
        transaction is confined to a customer: one `RESET ROLE` or `set_config` on it would undo
        the confinement, which holds only for the statements the store issues."""
        if self.customer_id is not None:
            raise AccessDenied(
                f"a transaction confined to customer {self.customer_id} does not give out its connection"
            )
        return self._connection

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """A nested transaction (a savepoint): rolled back alone if its block raises."""
        try:
            savepoint = self._connection.transaction()
            await savepoint.start()
        except Exception as exc:
            raise translate(exc) from exc
        try:
            yield self
        except BaseException:
            with suppress(Exception):  # a broken connection: the caller's error matters more
                await savepoint.rollback()
            raise
        else:
            try:
                await savepoint.commit()
            except Exception as exc:
                raise translate(exc) from exc


class Store(Repositories):
    """Entry point: `async with Store.connect(dsn) as store:` or `store = await Store.connect(dsn)`.

    Repositories are attributes named after their tables (`store.workflow_executions`, ...);
    each call takes a pooled connection for one statement. `store.transaction()` binds the
    same repositories to one connection; `store.for_customer(id)` confines them to one customer.
    """

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
    ) -> None:
        executor = (
            PoolExecutor(pool, acquire_timeout)
            if customer_id is None
            else CustomerExecutor(pool, acquire_timeout, customer_id)
        )
        super().__init__(executor, secret_keys, customer_id)
        self.pool = pool
        self._executor = executor
        self._dsn = dsn
        self._owns_pool = owns_pool
        self._server_settings = dict(server_settings or {})  # the pool's, for workflow_events' connection

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
        **pool_options: Any,
    ) -> _Connecting:
        """Open a pool on `dsn` (default `$OPTIINFRA_DATABASE_URL`); await it or use `async with`.

        Timeouts are in seconds (None: wait forever) and raise StoreTimeout: `command_timeout` for
        each call (the client cancels the statement), `statement_timeout` the same enforced by the
        server, `acquire_timeout` for the wait for a free pooled connection. JSON documents larger
        than `max_document_bytes` are refused with DocumentTooLarge before they are sent.
        With `secret_key` (a string, or a list newest first; default `$OPTIINFRA_SECRET_KEY`),
        sensitive agent configs are encrypted and decrypted in the client: the server never sees
        a key or a plaintext.
        Other `pool_options` go to `asyncpg.create_pool` (server_settings, ...).
        Raises ConfigurationError without a DSN, StoreUnavailable if the server cannot be reached.
        """
        resolved = resolve_dsn(dsn)
        secret_keys = SecretKeys.from_option(secret_key)
        for name, value in (
            ("command_timeout", command_timeout),
            ("statement_timeout", statement_timeout),
            ("acquire_timeout", acquire_timeout),
        ):
            if value is not None and not (isinstance(value, (int, float)) and value > 0):
                raise InvalidArgument(f"{name} must be a positive number of seconds or None, got {value!r}")
        if not isinstance(max_document_bytes, int) or max_document_bytes < 1:
            raise InvalidArgument(f"max_document_bytes must be a positive integer, got {max_document_bytes!r}")
        user_init = pool_options.pop("init", None)
        pool_options.setdefault("reset", _keep_session)
        if statement_timeout is not None:
            settings = dict(pool_options.pop("server_settings", None) or {})
            settings["statement_timeout"] = str(max(1, round(statement_timeout * 1000)))
            pool_options["server_settings"] = settings

        async def init(conn: asyncpg.Connection) -> None:
            await init_connection(conn, max_document_bytes=max_document_bytes)
            if user_init is not None:
                await user_init(conn)

        async def open_store() -> Store:
            try:
                pool = await asyncpg.create_pool(
                    resolved,
                    min_size=min_size,
                    max_size=max_size,
                    init=init,
                    command_timeout=command_timeout,
                    **pool_options,
                )
            except Exception as exc:
                raise translate(exc) from exc
            return cls(
                pool,
                resolved,
                acquire_timeout=acquire_timeout,
                server_settings=pool_options.get("server_settings"),
                secret_keys=secret_keys,
            )

        return _Connecting(open_store)

    def for_customer(self, customer_id: UUID | str) -> Store:
        """The same repositories, confined to one customer by the database: every call runs in a
        transaction that takes on the role `optiinfra_tenant` and binds `customer_id`, whatever
        role the pool logs in as, and row-level security shows only that customer's rows. Another
        customer's row reads as NotFound; writing one raises AccessDenied, and so does a change to
        what every customer shares (see the README's table). If the pool's role cannot take on
        `optiinfra_tenant`, the first call raises ConfigurationError: it never runs unconfined.
        Shares this store's pool: closing it does nothing."""
        return type(self)(
            self.pool,
            self._dsn,
            acquire_timeout=self._executor.acquire_timeout,
            customer_id=as_uuid(customer_id, "customer_id"),
            owns_pool=False,
            server_settings=self._server_settings,
            secret_keys=self._secret_keys,
        )

    async def close(self) -> None:
        """Close the pool, waiting for connections in use to be released."""
        if self._owns_pool:
            await self.pool.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """Run the block in one transaction on one connection; roll it all back if it raises.

        Yields the repositories bound to that connection; `tx.transaction()` nests a savepoint.
        """
        try:
            connection = await self._executor.acquire()
        except Exception as exc:
            raise translate(exc) from exc
        try:
            transaction = connection.transaction()
            try:
                await transaction.start()
            except Exception as exc:
                with suppress(Exception):
                    await transaction.rollback()
                raise translate(exc) from exc
            if self.customer_id is not None:
                try:
                    await connection.execute(CONFINE, self.customer_id)
                except Exception as exc:
                    with suppress(Exception):
                        await transaction.rollback()
                    try:
                        raise_confinement_error(exc, connection)
                    except ConfigurationError:
                        raise
                    except Exception as error:
                        raise translate(error) from error
            try:
                yield Transaction(connection, self._secret_keys, self.customer_id)
            except BaseException:
                with suppress(Exception):  # a broken connection: the caller's error matters more
                    await transaction.rollback()
                raise
            else:
                try:
                    await transaction.commit()
                except Exception as exc:
                    raise translate(exc) from exc
        finally:
            await self.pool.release(connection)

    @asynccontextmanager
    async def workflow_events(
        self,
        *,
        customer_id: UUID | str | None = None,
        execution_id: UUID | str | None = None,
        after: int | None = None,
        poll_interval: float = 1.0,
    ) -> AsyncIterator[WorkflowEvents]:
        """Subscribe to workflow transitions as they are committed (LISTEN/NOTIFY on a connection of
        its own, not the pool's). Yields an async iterator of WorkflowTransition, optionally only of
        one customer or execution. With `after` (a transition id) it first delivers everything since.
        A dropped connection is re-opened and nothing is lost or repeated. A store confined to a
        customer delivers only that customer's transitions.
        Raises NotFound for an unknown `after`, StoreUnavailable if the server cannot be reached."""
        if self._dsn is None:
            raise ConfigurationError("workflow_events needs a Store opened with Store.connect()")
        dsn = self._dsn
        settings = {**self._server_settings, "application_name": "optiinfra-events"}
        customer = as_optional_uuid(customer_id, "customer_id")
        if self.customer_id is not None:
            if customer not in (None, self.customer_id):
                raise InvalidArgument(f"this store is confined to customer {self.customer_id}")
            customer = self.customer_id
        confined_to = self.customer_id

        async def connect() -> asyncpg.Connection:
            conn = await asyncpg.connect(dsn, server_settings=settings)
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

        stream = WorkflowEvents(
            connect,
            customer_id=customer,
            execution_id=as_optional_uuid(execution_id, "execution_id"),
            after=after,
            poll_interval=poll_interval,
        )
        try:
            await stream.open()
            yield stream
        finally:
            await stream.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


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
