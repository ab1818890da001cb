"""The package's exceptions, and the one place driver errors are translated into them.

Every error a caller sees derives from StoreError; the driver's exception is chained
(`raise ... from exc`) so nothing is lost for debugging.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import Any, NoReturn

import asyncpg


class StoreError(Exception):
    """Base class of every error raised by optiinfra_store."""


class ConfigurationError(StoreError):
    """The store was given settings it cannot use (no DSN, a malformed DSN, a missing extra)."""


class SchemaNotMigrated(ConfigurationError):
    """The database lacks a table, function or type of the schema: its migrations are not applied
    (apply them with `optiinfra_store.migrations.apply(dsn)` or `optiinfra-store migrate`)."""


class InvalidArgument(StoreError, ValueError):
    """A method argument is out of its range or of the wrong kind (limits, cursors, intervals);
    `argument` names it when the store knows which."""

    def __init__(self, message: str, *, argument: str | None = None) -> None:
        super().__init__(message)
        self.argument = argument


class SecretKeyError(ConfigurationError):
    """A sensitive value cannot be read or written: the store has no secret key, not the one the
    value was encrypted with, or the ciphertext was altered."""


class StoreUnavailable(StoreError):
    """The server cannot be reached, refused the credentials, or dropped the connection; or no
    server a multi-host DSN lists is a primary."""


class OutcomeUnknown(StoreUnavailable):
    """The connection was lost after a write was sent (a statement running on its own, or a
    COMMIT) and before its reply came: the server may or may not have applied it. Read the row
    back before acting on it; retry only a write that is safe to repeat (a create with an
    `idempotency_key`, which the store itself retries, or an update with `expected_version`). A
    read whose connection is lost is plain StoreUnavailable: retrying it is always safe."""


class ReadOnlyServer(StoreError):
    """A write reached a read-only server (a hot standby replica): send writes to the primary."""


class StoreTimeout(StoreError):
    """A statement, or the wait for a pooled connection, took longer than allowed."""


class DocumentTooLarge(InvalidArgument):
    """A JSON document is larger than the store's limit; refused before it is sent."""

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"JSON document of {size} bytes exceeds the limit of {limit} bytes")


class AccessDenied(StoreError):
    """The write would put a row outside the customer this store is confined to, or the database
    role may not do it at all (the application role deleting a shared agent)."""


class MigrationError(StoreError):
    """A migration or seed file failed; its transaction was rolled back."""


class NotFound(StoreError):
    """No row with that id (or key) exists."""

    def __init__(self, entity: str, key: Any) -> None:
        self.entity = entity
        self.key = key
        super().__init__(f"{entity} {key} not found")


class IntegrityError(StoreError):
    """A rule of the schema rejected the write; `constraint` names the rule."""

    def __init__(self, message: str, constraint: str | None = None) -> None:
        self.constraint = constraint
        super().__init__(message)


class AlreadyExists(IntegrityError):
    """A unique constraint rejected the write."""


class MissingReference(IntegrityError):
    """A foreign key points at a row that does not exist (or belongs elsewhere)."""


class ConstraintViolation(IntegrityError):
    """A CHECK or NOT NULL constraint rejected the write."""


class StaleVersion(StoreError):
    """An update named the version it read, and someone else wrote the row since."""

    def __init__(self, entity: str, key: Any, expected_version: int, current_version: int) -> None:
        self.entity = entity
        self.key = key
        self.expected_version = expected_version
        self.current_version = current_version
        super().__init__(
            f"{entity} {key} is at version {current_version}, not {expected_version}: "
            "someone else wrote it first; read it again and retry"
        )


class ConcurrentChange(StoreError):
    """A write gave up because the row kept changing under it; reading again and retrying is safe."""


class InvalidData(StoreError):
    """The server could not store a value as given (out of range, wrong encoding)."""


class InvalidTransition(StoreError):
    """The status change is not allowed from the row's current status."""

    def __init__(
        self,
        entity: str,
        key: Any,
        current_status: str,
        requested_status: str,
        detail: str | None = None,
    ) -> None:
        self.entity = entity
        self.key = key
        self.current_status = current_status
        self.requested_status = requested_status
        message = f"{entity} {key} cannot move from {current_status!s} to {requested_status!s}"
        super().__init__(f"{message}: {detail}" if detail else message)


class RetriesExhausted(InvalidTransition):
    """A step was asked to retry after using all of its retries."""

    def __init__(self, entity: str, key: Any, current_status: str, retry_count: int, max_retries: int):
        self.retry_count = retry_count
        self.max_retries = max_retries
        super().__init__(
            entity,
            key,
            current_status,
            "retrying",
            detail=f"retries exhausted ({retry_count} of {max_retries} used)",
        )


_INTEGRITY: dict[type[asyncpg.PostgresError], type[IntegrityError]] = {
    asyncpg.UniqueViolationError: AlreadyExists,
    asyncpg.ForeignKeyViolationError: MissingReference,
    asyncpg.CheckViolationError: ConstraintViolation,
    asyncpg.NotNullViolationError: ConstraintViolation,
    asyncpg.ExclusionViolationError: ConstraintViolation,
}

_UNAVAILABLE = (
    asyncpg.PostgresConnectionError,  # connection lost or refused mid-protocol
    asyncpg.TooManyConnectionsError,  # the server's max_connections reached
    asyncpg.InvalidAuthorizationSpecificationError,  # bad user or password
    asyncpg.CannotConnectNowError,  # server starting or shutting down
    asyncpg.AdminShutdownError,  # backend terminated by an administrator
    asyncpg.CrashShutdownError,
    asyncpg.InvalidCatalogNameError,  # database does not exist
    ConnectionError,
    OSError,
)


def _pooler_cause(exc: BaseException) -> str | None:
    """What a connection pooler in front of the server (pgbouncer in transaction mode) makes of a
    store opened without `pooler="transaction"`, or of a setting it does not pass on."""
    if isinstance(exc, asyncpg.InvalidSQLStatementNameError | asyncpg.DuplicatePreparedStatementError):
        return (
            f"{exc} (SQLSTATE {exc.sqlstate}): named prepared statements do not survive a transaction pooler "
            "(pgbouncer in transaction mode) between the store and the server: open the store with "
            'Store.connect(..., pooler="transaction")'
        )
    if isinstance(exc, asyncpg.ProtocolViolationError) and "startup parameter" in str(exc):
        return (
            f"{exc}: the connection pooler refused a session setting the store sends at connection time; "
            'with Store.connect(..., pooler="transaction") none is sent, or list it in the pooler\'s '
            "ignore_startup_parameters"
        )
    return None


_TENANT_AT_WORKER = re.compile(
    r"connection to the remote node optiinfra_tenant@(?P<node>\S+) failed with the following error: (?P<reason>.*)",
    re.DOTALL,
)
_DATABASE_DENIED = re.compile(r'permission denied for database "(?P<database>.+?)"(?=\s|$)')
_AUTHENTICATION = ("pg_hba.conf", "authentication failed", "no password supplied", "password is required")
_CLUSTER_TENANT = 'SCALING.md, "Confined calls on the cluster"'


def _worker_refused_tenant(exc: BaseException) -> str | None:
    """What to do when a Citus worker refused the connection the coordinator opened as
    optiinfra_tenant for a confined statement (Citus connects to the workers as the current role):
    the role may not log in, may not connect to the database there, or is not authenticated from
    the coordinator. None for any other failure (a worker that is down is StoreUnavailable)."""
    if not isinstance(exc, asyncpg.PostgresConnectionError):
        return None
    found = _TENANT_AT_WORKER.search(str(exc))
    if found is None:
        return None
    node, reason = found["node"], " ".join(found["reason"].split())
    where = f"the Citus worker {node} refused optiinfra_tenant ({reason}), so calls confined to a customer cannot run"
    if "is not permitted to log in" in reason:
        return (
            f"{where}: confined statements reach the workers as optiinfra_tenant. As an administrator, in this "
            f"database on the coordinator: ALTER ROLE optiinfra_tenant LOGIN (Citus makes it on every node), with "
            f"the workers admitting it from the coordinator only ({_CLUSTER_TENANT})"
        )
    denied = _DATABASE_DENIED.search(reason)
    if denied is not None:
        database = '"' + denied["database"].replace('"', '""') + '"'
        return (
            f"{where}: on each worker, as an administrator: GRANT CONNECT ON DATABASE {database} TO "
            f"optiinfra_tenant (on the worker itself, not through the coordinator: {_CLUSTER_TENANT})"
        )
    if any(word in reason for word in _AUTHENTICATION):
        return (
            f"{where}: let the workers admit optiinfra_tenant from the coordinator (pg_hba.conf), or give the "
            f"coordinator its credentials in pg_dist_authinfo ({_CLUSTER_TENANT})"
        )
    return None


def _schema_missing(exc: BaseException) -> bool:
    """A table, function or type of the schema does not exist (not: an operator or a setting
    that does not exist, which share the SQLSTATEs of the last two)."""
    if isinstance(exc, asyncpg.UndefinedTableError):
        return True
    if isinstance(exc, asyncpg.UndefinedFunctionError):
        return str(exc).startswith("function ")
    if isinstance(exc, asyncpg.UndefinedObjectError):
        return str(exc).startswith(("type ", "role "))
    return False


def _connection_lost(exc: BaseException) -> bool:
    """asyncpg's ways of saying a connection died under an operation: closed, released back to the
    pool when it was lost, or left by the dying protocol mid-operation."""
    if isinstance(exc, asyncpg.InternalClientError):
        return "another operation" in str(exc) or "cannot switch to state" in str(exc)
    if isinstance(exc, asyncpg.InterfaceError):
        message = str(exc)
        return ("connection" in message and "closed" in message) or "released back to the pool" in message
    return False


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type when it has none), for one-line errors."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


_STANDBY_WANTED = ("standby", "read-only")


def no_primary(servers: Sequence[str], wanted: str = "read-write") -> StoreUnavailable:
    """Every server listed answered and none is what `target_session_attrs=wanted` asks for: a
    primary (read-write, primary), or a standby (standby, read-only). `servers` as the DSN lists
    them (connection/dsn.py `servers`), never a password."""
    standby = wanted in _STANDBY_WANTED
    role, found = ("a standby", "takes writes") if standby else ("a primary", "is a standby or read-only")
    if not servers:
        return StoreUnavailable(f"no listed server is {role} (target_session_attrs={wanted})")
    which = "it" if len(servers) == 1 else "each"
    return StoreUnavailable(
        f"no listed server is {role}: {', '.join(servers)} answered, but {which} {found} (target_session_attrs={wanted})"
    )


def _any_of(servers: Sequence[str]) -> str:
    return servers[0] if len(servers) == 1 else f"any of {', '.join(servers)}"


def cannot_connect(servers: Sequence[str], reason: str) -> StoreUnavailable:
    """No connection could be opened to any of `servers` (every one is named); `reason` is the
    driver's, for the last one tried."""
    return StoreUnavailable(f"cannot connect to {_any_of(servers)}: {reason}")


def cannot_connect_each(reasons: Sequence[tuple[str, str]]) -> StoreUnavailable:
    """`cannot_connect` where the driver said why for each server it tried: (server, reason)."""
    return StoreUnavailable(f"cannot connect to any listed server: {'; '.join(f'{s} ({r})' for s, r in reasons)}")


def _wanted(exc: BaseException) -> str:
    """The target_session_attrs asyncpg's TargetServerAttributeNotMatched names (`<...: 'read-write'>`)."""
    match = re.search(r"'([a-z-]+)'>?\s*$", str(exc))
    return match[1] if match else "read-write"


def translate_connect(exc: BaseException, servers: Sequence[str]) -> BaseException:
    """`translate` for a failure to open a connection to `servers` (all a DSN lists, or the DSN
    redacted when it lists none): the message names every one tried, not only the last (asyncpg's
    error is the last host's); every server answering and none a primary is StoreUnavailable too."""
    if isinstance(exc, asyncpg.TargetServerAttributeNotMatched):
        return no_primary(servers, _wanted(exc))
    if isinstance(exc, TimeoutError):
        return StoreTimeout(f"timed out connecting to {_any_of(servers)}")
    if isinstance(exc, _UNAVAILABLE) and _pooler_cause(exc) is None:
        return cannot_connect(servers, first_line(exc))
    return translate(exc)


_DRIVER_ERRORS = (
    asyncpg.PostgresError,  # the server's (every SQLSTATE)
    asyncpg.InterfaceError,  # the driver's: closed connection, argument it cannot encode, bad option
    asyncpg.InternalClientError,  # the driver's protocol state
    OSError,  # sockets
    TimeoutError,  # asyncio's too
)


_CONSTRAINT_IN_MESSAGE = re.compile(r'constraint "([^"]+)"')
_SHARD_COPY = re.compile(r"(_(?:pkey|key|fkey|check|excl))_[0-9]+$")


def _constraint_of(exc: BaseException) -> str | None:
    """The name of the constraint a write broke, as the schema names it. On a Citus cluster the
    error comes from the worker holding the shard, without the field, and names the shard's copy
    (`workflow_steps_execution_id_step_order_key_102680`): read from the message, suffix dropped."""
    name: str | None = getattr(exc, "constraint_name", None)
    if name is None and (found := _CONSTRAINT_IN_MESSAGE.search(str(exc))):
        name = _SHARD_COPY.sub(r"\1", found.group(1))
    return name


def translate(exc: BaseException) -> BaseException:
    """Map a driver (or socket) exception to the StoreError a caller should see. Anything else,
    a programming error (TypeError, AttributeError, ...) or a cancellation, is returned as it is:
    it is not the database's."""
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc.__cause__, StoreError):  # raised by one of our codecs while encoding an argument
        return exc.__cause__
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        cls = _INTEGRITY.get(type(exc), ConstraintViolation)
        constraint = _constraint_of(exc)
        table = getattr(exc, "table_name", None)
        where = f" on {table}" if table else ""
        rule = f" ({constraint})" if constraint else ""
        detail = getattr(exc, "detail", None)
        message = f"{exc.args[0] if exc.args else exc}{where}{rule}"
        if detail:
            message = f"{message}: {detail}"
        return cls(message, constraint=constraint)
    if isinstance(exc, asyncpg.InsufficientPrivilegeError):
        if "row-level security" in str(exc):
            return AccessDenied(f"not this customer's to write: {exc}")
        return AccessDenied(f"this database role may not do that: {exc}")
    if isinstance(exc, asyncpg.ReadOnlySQLTransactionError):
        return ReadOnlyServer(
            f"{exc}: this server takes no writes (a replica, or a read-only transaction); writes go to the primary"
        )
    pooler = _pooler_cause(exc)
    if pooler is not None:
        return ConfigurationError(pooler)
    if isinstance(exc, asyncpg.TargetServerAttributeNotMatched):
        return no_primary((), _wanted(exc))
    if isinstance(exc, asyncpg.QueryCanceledError):
        return StoreTimeout(f"statement cancelled: {exc}")
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return StoreTimeout("timed out waiting for the database")
    if isinstance(exc, _UNAVAILABLE):
        tenant = _worker_refused_tenant(exc)
        if tenant is not None:
            return ConfigurationError(tenant)
        return StoreUnavailable(f"database unavailable: {exc}")
    if _schema_missing(exc):
        return SchemaNotMigrated(
            f"{exc}: the database schema is missing or out of date; apply the migrations "
            "(optiinfra_store.migrations.apply, or `optiinfra-store migrate`)"
        )
    if isinstance(exc, asyncpg.DataError):
        if exc.__cause__ is not None:  # refused while encoding, before anything was sent
            return InvalidData(f"value cannot be stored: {exc}")
        return InvalidData(f"value rejected by the database: {exc}")
    if _connection_lost(exc):
        return StoreUnavailable(f"database unavailable: the connection was lost ({exc})")
    if isinstance(exc, OverflowError):  # the driver decoding a value beyond Python's range (a date)
        return InvalidData(f"a value the database returned cannot be read here: {exc}")
    if isinstance(exc, _DRIVER_ERRORS):
        return StoreError(f"{type(exc).__name__}: {exc}")
    return exc


def raise_translated(exc: BaseException) -> NoReturn:
    """Raise what `translate` makes of `exc`: a StoreError with `exc` chained, or `exc` itself."""
    error = translate(exc)
    if error is exc:
        raise exc
    raise error from exc
