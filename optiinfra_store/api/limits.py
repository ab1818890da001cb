"""What one customer can take of a server process: event streams counted against two caps, and
analytics computed once for identical requests in flight and a few at a time per customer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from optiinfra_store.api.problems import Problem


class StreamCaps:
    """Event streams open, per customer and per process: 429 beyond either cap."""

    def __init__(self, per_process: int, per_customer: int) -> None:
        self.per_process = per_process
        self.per_customer = per_customer
        self._open = 0
        self._of: dict[UUID, int] = {}
        self.refused = {"process": 0, "customer": 0}  # streams refused, by the cap that was full

    @property
    def total(self) -> int:
        """Streams open in the process."""
        return self._open

    def open(self, customer_id: UUID) -> None:
        """Count a stream in, or refuse it (429)."""
        full = (
            "process"
            if self._open >= self.per_process
            else "customer"
            if self._of.get(customer_id, 0) >= self.per_customer
            else None
        )
        if full is not None:
            self.refused[full] += 1
            raise Problem(
                429, "Too many requests", "too many event streams open; close one or retry later", retry_after="30"
            )
        self._of[customer_id] = self._of.get(customer_id, 0) + 1
        self._open += 1

    def close(self, customer_id: UUID) -> None:
        self._open -= 1
        left = self._of.get(customer_id, 1) - 1
        if left:
            self._of[customer_id] = left
        else:
            self._of.pop(customer_id, None)


class SharedAnalytics:
    """Statistics and performance figures: computed once for identical requests in flight (a burst
    of revalidations costs one query), at most `per_customer` at once for one customer and
    `queued_per_customer` different ones waiting or running (429 beyond), so one customer cannot
    take the pool from the others. Nothing is kept once answered: never stale."""

    def __init__(self, per_customer: int, queued_per_customer: int) -> None:
        self.per_customer = per_customer
        self.queued_per_customer = queued_per_customer
        self._computing: dict[tuple[Any, ...], asyncio.Future[Any]] = {}
        self._slots: dict[UUID, tuple[asyncio.Semaphore, int]] = {}  # and its users
        self.refused = 0  # requests refused (429)

    @property
    def in_flight(self) -> int:
        """Computations running or waiting for a slot (identical requests share one)."""
        return len(self._computing)

    async def compute(self, key: tuple[Any, ...], compute: Callable[[], Awaitable[Any]]) -> Any:
        """The figures of `compute`, shared with the requests in flight of the same `key`, whose
        first member is the customer's id."""
        running = self._computing.get(key)
        if running is None:
            if sum(1 for k in self._computing if k[0] == key[0]) >= self.queued_per_customer:
                self.refused += 1
                raise Problem(
                    429, "Too many requests", "too many analytics requests of this customer at once", retry_after="5"
                )
            running = self._computing[key] = asyncio.ensure_future(self._limited(key[0], compute))
            running.add_done_callback(lambda _: self._computing.pop(key, None))
            running.add_done_callback(retrieve)  # every waiter may have left
        return await asyncio.shield(running)

    async def _limited(self, customer_id: UUID, compute: Callable[[], Awaitable[Any]]) -> Any:
        slots, users = self._slots.get(customer_id) or (asyncio.Semaphore(self.per_customer), 0)
        self._slots[customer_id] = (slots, users + 1)
        try:
            async with slots:
                return await compute()
        finally:
            slots, users = self._slots[customer_id]
            if users == 1:
                del self._slots[customer_id]
            else:
                self._slots[customer_id] = (slots, users - 1)


def retrieve(task: asyncio.Future[Any]) -> None:
    """Mark a task's exception as retrieved: its end, unwatched, is not an unhandled error."""
    if not task.cancelled():
        task.exception()
