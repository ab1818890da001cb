"""What the repositories run their statements on outside a transaction: the pool, one connection
per statement, with a bounded wait for a free connection, optionally confined to one customer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import asyncpg

from optiinfra_store.errors import StoreTimeout

BIND_CUSTOMER = "SELECT set_config('optiinfra.customer_id', $1::text, true)"
"""Confine the current transaction to one customer: the row-level security policies read it."""


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

    async def copy_records_to_table(
        self, table: str, *, records: Iterable[Sequence[Any]], columns: list[str]
    ) -> str:
        conn = await self.acquire()
        try:
            return await conn.copy_records_to_table(table, records=records, columns=columns)
        finally:
            await self.pool.release(conn)


class CustomerExecutor(PoolExecutor):
    """Like PoolExecutor, but each statement runs in a transaction bound to one customer, so the
    database's row-level security shows and accepts only that customer's rows."""

    __slots__ = ("customer_id",)

    def __init__(self, pool: asyncpg.Pool, acquire_timeout: float | None, customer_id: UUID) -> None:
        super().__init__(pool, acquire_timeout)
        self.customer_id = customer_id

    @asynccontextmanager
    async def _confined(self) -> AsyncIterator[asyncpg.Connection]:
        conn = await self.acquire()
        try:
            async with conn.transaction():
                await conn.execute(BIND_CUSTOMER, str(self.customer_id))
                yield conn
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

    async def copy_records_to_table(
        self, table: str, *, records: Iterable[Sequence[Any]], columns: list[str]
    ) -> str:
        async with self._confined() as conn:
            return await conn.copy_records_to_table(table, records=records, columns=columns)
