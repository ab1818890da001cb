"""Agents' names for the executions the service answers with.

Agents are shared by every customer (a confined store reads any agent) and are renamed seldom,
so a process keeps each name it read for a while and asks the database, in one statement through
the caller's confined store, only for the ids it lacks: a page of the history costs no second
statement once its agents are known. A rename shows within `ttl` seconds."""

from __future__ import annotations

import time
from collections.abc import Iterable
from uuid import UUID

from optiinfra_store.store import Store


class AgentNames:
    def __init__(self, ttl: float = 60.0, size: int = 10_000) -> None:
        self._ttl = ttl
        self._size = size
        self._names: dict[UUID, tuple[str, float]] = {}  # id -> (name, when it expires)

    async def of(self, store: Store, ids: Iterable[UUID]) -> dict[UUID, str]:
        """The name of each agent of `ids` that exists, by id."""
        now = time.monotonic()
        names: dict[UUID, str] = {}
        missing: list[UUID] = []
        for id in set(ids):
            cached = self._names.get(id)
            if cached is not None and cached[1] > now:
                names[id] = cached[0]
            else:
                missing.append(id)
        if missing:
            found = await store.agents.names(missing)
            if len(self._names) + len(found) > self._size:
                self._names.clear()  # a bound, not an eviction policy: there are few agents
            expires = now + self._ttl
            self._names.update((id, (name, expires)) for id, name in found.items())
            names.update(found)
        return names
