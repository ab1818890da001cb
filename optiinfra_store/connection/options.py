"""The options of `Store.connect`, checked before anything connects, and what they make of the
asyncpg pool's options."""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from optiinfra_store.connection.codecs import DEFAULT_MAX_DOCUMENT_BYTES, init_connection, keep_session
from optiinfra_store.connection.dsn import redact, servers
from optiinfra_store.connection.executor import note_direct, unbind_always, unbind_session
from optiinfra_store.errors import InvalidArgument, StoreError, translate_connect

__all__ = ["DEFAULT_MAX_DOCUMENT_BYTES", "DEFAULT_SLOW_STATEMENT", "PoolOptions", "connector"]

DEFAULT_SLOW_STATEMENT = 1.0


def _seconds(name: str, value: Any) -> float | None:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if value is not None and not (number and 0 < value < math.inf):
        raise InvalidArgument(f"{name} must be a positive, finite number of seconds or None, got {value!r}")
    return None if value is None else float(value)


@dataclass(frozen=True)
class PoolOptions:
    """What `Store.connect` was given, checked; `pool_kwargs()` is what asyncpg.create_pool gets."""

    min_size: int
    max_size: int
    command_timeout: float | None
    statement_timeout: float | None
    acquire_timeout: float | None
    max_document_bytes: int
    extra: dict[str, Any]
    """Other options for asyncpg.create_pool (server_settings, init, reset, ...)."""
    pooler: str | None = None
    """"transaction": a transaction pooler (pgbouncer in transaction mode) is in front of the server."""
    slow_statement: float | None = DEFAULT_SLOW_STATEMENT
    """Statements taking at least this many seconds are logged (None: none is). The store's
    executors time their statements (see connection/executor.py), not the pool's connections."""

    def __post_init__(self) -> None:
        if self.pooler not in (None, "transaction"):
            raise InvalidArgument(f'pooler must be None or "transaction", got {self.pooler!r}')
        if self.pooler is not None:
            if self.extra.get("server_settings"):
                raise InvalidArgument(
                    "server_settings cannot be sent through a transaction pooler: it keeps no session for them"
                )
            if self.extra.get("statement_cache_size"):
                raise InvalidArgument("a transaction pooler keeps no prepared statements: leave statement_cache_size")
            if self.statement_timeout is not None:
                raise InvalidArgument(
                    "statement_timeout is a session setting, which a transaction pooler does not keep: set it on "
                    "the database role (ALTER ROLE ... SET statement_timeout) or use command_timeout"
                )
        _seconds("command_timeout", self.command_timeout)
        _seconds("statement_timeout", self.statement_timeout)
        _seconds("acquire_timeout", self.acquire_timeout)
        _seconds("slow_statement", self.slow_statement)
        size = self.max_document_bytes
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise InvalidArgument(f"max_document_bytes must be a positive integer, got {size!r}")

    @property
    def server_settings(self) -> dict[str, str]:
        """The session settings every connection starts with (the pool's and workflow_events');
        none through a transaction pooler. JIT compilation is off unless asked for: the store's
        statements are short, and compiling one (which PostgreSQL does above a cost estimate,
        easily reached by the analytics over millions of rows) takes longer than running it."""
        settings = dict(self.extra.get("server_settings") or {})
        if self.pooler is None:
            settings.setdefault("jit", "off")
        if self.statement_timeout is not None:
            settings["statement_timeout"] = str(max(1, round(self.statement_timeout * 1000)))
        return settings

    def pool_kwargs(self, dsn: str) -> dict[str, Any]:
        """asyncpg.create_pool's options for a pool on `dsn`."""
        extra = dict(self.extra)
        extra["connect"] = connector(dsn, extra.get("connect"))
        user_init: Callable[[asyncpg.Connection], Awaitable[None]] | None = extra.pop("init", None)
        limit = self.max_document_bytes
        session = self.pooler is None

        async def init(conn: asyncpg.Connection) -> None:
            await init_connection(conn, max_document_bytes=limit, session=session)
            if user_init is not None:
                await user_init(conn)
            await note_direct(conn)  # after the caller's init: the role it leaves counts

        user_setup: Callable[[asyncpg.Connection], Awaitable[None]] | None = extra.pop("setup", None)
        setup: Callable[[asyncpg.Connection], Awaitable[None]] = unbind_session
        if user_setup is not None:

            async def setup(conn: asyncpg.Connection) -> None:
                await unbind_always(conn)  # the caller's setup never sees a customer's binding
                await user_setup(conn)

            setup.unbinds_sessions = True  # type: ignore[attr-defined]

        extra.setdefault("reset", keep_session)
        extra["server_settings"] = self.server_settings
        if self.pooler == "transaction":
            extra["statement_cache_size"] = 0  # unnamed statements only: each lives within one transaction
        return {
            **extra,
            "min_size": self.min_size,
            "max_size": self.max_size,
            "command_timeout": self.command_timeout,
            "init": init,
            "setup": setup,
        }


Connect = Callable[..., Awaitable[asyncpg.Connection]]


def connector(dsn: str, connect: Connect | None = None) -> Connect:
    """What opens every connection on `dsn` (a pool's `connect=`, the live events' listener):
    `connect` (asyncpg.connect by default) with its failure translated by `translate_connect`,
    which names every server the DSN lists. Also quiets asyncpg's tracebacks about such failures
    (see `_PoolFailures`)."""
    named = servers(dsn) or [redact(dsn)]
    opener = connect or asyncpg.connect
    _asyncpg_pool_log.addFilter(_POOL_FAILURES)  # once: a filter added again is not added twice

    async def open_connection(*args: Any, **kwargs: Any) -> asyncpg.Connection:
        try:
            return await opener(*args, **kwargs)
        except Exception as exc:
            error = translate_connect(exc, named)
            if error is exc:
                raise
            raise error from exc

    return open_connection


_asyncpg_pool_log = logging.getLogger("asyncpg.pool")
_pool_log = logging.getLogger("optiinfra_store.pool")


class _PoolFailures(logging.Filter):
    """asyncpg's pool logs each failed attempt to restore its `min_size` connections ("Failed to
    restore the pool connection floor; retrying", asyncpg/pool.py `_maintain_min_size`) at WARNING
    with a traceback, retrying all through an outage; in an application that configured no logging,
    Python prints every one whole on stderr. A record whose error is a StoreError came from the
    store's `connector`: it becomes one line, at its level, on `optiinfra_store.pool`, without the
    traceback. Other pools' records pass unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, StoreError):
            return True
        _pool_log.log(record.levelno, "%s: %s", record.getMessage(), error)
        return False


_POOL_FAILURES = _PoolFailures()
