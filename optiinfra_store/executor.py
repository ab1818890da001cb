"""What the repositories run their statements on outside a transaction: the pool, one connection
per statement, with a bounded wait for a free connection, optionally confined to one customer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any, NoReturn
from uuid import UUID

import asyncpg

from optiinfra_store.errors import ConfigurationError, StoreTimeout

CONFINE = "SELECT optiinfra_confine($1)"
"""Confine the current transaction to one customer: take on `optiinfra_tenant`, whatever role the
connection logged in as, and bind the customer the row-level security policies read (migration
0010). Both are transaction-local, so nothing of it stays on a pooled connection."""

CONFINE_SESSION = "SELECT optiinfra_confine($1, false)"
"""The same for the whole session of a connection of the store's own (workflow_events)."""


def begin_confined(customer_id: UUID) -> str:
    """BEGIN and CONFINE in one round trip (a simple-protocol query, which takes no parameters).
    The customer is written as the 32 hexadecimal digits of a UUID made anew from its 16 bytes, so
    nothing a caller passes can reach the statement's text."""
    digits = UUID(bytes=customer_id.bytes).hex
    return "BEGIN; SELECT optiinfra_confine('" + digits + "')"


def raise_confinement_error(exc: Exception, conn: asyncpg.Connection) -> NoReturn:
    """Raise what a refused confinement means: a ConfigurationError naming the fix, else `exc`."""
    role = getattr(conn.get_settings(), "session_authorization", None)
    error = _confinement_error(exc, role)
    if error is exc:
        raise exc
    raise error from exc


def _confinement_error(exc: Exception, role: str | None) -> Exception:
    sqlstate = getattr(exc, "sqlstate", None)
    who = f"the role the pool logs in as ({role})" if role else "the role the pool logs in as"
    if sqlstate == "42501" and "optiinfra_tenant" in str(exc):
        return ConfigurationError(
            f"{who} cannot take on optiinfra_tenant, so calls confined to a customer cannot run: "
            f"GRANT optiinfra_tenant TO {role or '<that role>'} (as an administrator). ({exc})"
        )
    if sqlstate == "OI001":
        return ConfigurationError(f"confinement cannot hold: {exc} ({getattr(exc, 'hint', '')})")
    if sqlstate in ("42883", "22023"):  # no optiinfra_confine(), no optiinfra_tenant role
        return ConfigurationError(
            f"this database cannot confine calls to a customer ({exc}): run `optiinfra-store migrate`"
        )
    return exc


async def _roll_back(conn: asyncpg.Connection) -> None:
    """End a failed confined transaction; a broken connection is left to the pool to replace."""
    with suppress(Exception):
        if conn.is_in_transaction():
            await conn.execute("ROLLBACK")


class PoolExecutor:
    """Each call takes a pooled connection for one statement and gives it back."""

    __slots__ = ("pool", "acquire_timeout")

    def __init__(self, pool: asyncpg.Pool, acquire_timeout: float | None) -> None:
        self.pool = pool
        self.acquire_timeout = acquire_timeout

    async def acquire(self) -> asyncpg.Connection:
        """A connection from the pool; StoreTimeout if none is free within `acquire_timeout`."""
        if self.acquire_timeout is None:
            return await self.pool.acquire()
        try:
            async with asyncio.timeout(self.acquire_timeout):
                return await self.pool.acquire()
        except TimeoutError:
            raise StoreTimeout(
                f"no pooled connection came free within {self.acquire_timeout} s "
                f"(all {self.pool.get_max_size()} in use)"
            ) from None

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        conn = await self.acquire()
        try:
            return await conn.fetchrow(sql, *args)
        finally:
            await self.pool.release(conn)

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await self.acquire()
        try:
            return await conn.fetch(sql, *args)
        finally:
            await self.pool.release(conn)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        conn = await self.acquire()
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await self.pool.release(conn)

    async def copy_records_to_table(self, table: str, *, records: Iterable[Sequence[Any]], columns: list[str]) -> str:
        conn = await self.acquire()
        try:
            return await conn.copy_records_to_table(table, records=records, columns=columns)
        finally:
            await self.pool.release(conn)


class CustomerExecutor(PoolExecutor):
    """Like PoolExecutor, but each statement runs in a transaction confined to one customer
    (`optiinfra_tenant` and the customer, see CONFINE), so the database shows and accepts only that
    customer's rows, whatever role the pool logs in as. Three round trips: BEGIN with the
    confinement, the statement, COMMIT."""

    __slots__ = ("customer_id", "_begin")

    def __init__(self, pool: asyncpg.Pool, acquire_timeout: float | None, customer_id: UUID) -> None:
        super().__init__(pool, acquire_timeout)
        self.customer_id = customer_id
        self._begin = begin_confined(customer_id)

    @asynccontextmanager
    async def _confined(self) -> AsyncIterator[asyncpg.Connection]:
        conn = await self.acquire()
        try:
            try:
                await conn.execute(self._begin)
            except Exception as exc:
                await _roll_back(conn)
                raise_confinement_error(exc, conn)
            try:
                yield conn
            except BaseException:
                await _roll_back(conn)
                raise
            await conn.execute("COMMIT")
        finally:
            await self.pool.release(conn)

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        async with self._confined() as conn:
            return await conn.fetchrow(sql, *args)

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async with self._confined() as conn:
            return await conn.fetch(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        async with self._confined() as conn:
            return await conn.fetchval(sql, *args)

    async def copy_records_to_table(self, table: str, *, records: Iterable[Sequence[Any]], columns: list[str]) -> str:
        async with self._confined() as conn:
            return await conn.copy_records_to_table(table, records=records, columns=columns)
