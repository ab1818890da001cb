"""agents: the cost, performance, resource and application agents."""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from datetime import timedelta
from uuid import UUID

from optiinfra_store.enums import AgentStatus, AgentType
from optiinfra_store.errors import InvalidArgument
from optiinfra_store.records import Agent, AgentCreate, AgentUpdate
from optiinfra_store.repositories.base import Repository, as_uuid, check_limit, enum_value, platform


class Agents(Repository[Agent], table="agents"):
    delete = platform(Repository.delete)

    @platform
    async def create(self, data: AgentCreate) -> Agent:
        """Register an agent."""
        return await self._insert(AgentCreate.model_validate(data))

    @platform
    async def update(self, id: UUID | str, data: AgentUpdate) -> Agent:
        """Write the fields set in `data`. Raises NotFound."""
        return await self._update(id, AgentUpdate.model_validate(data))

    async def list(
        self,
        *,
        type: AgentType | str | None = None,
        status: AgentStatus | str | None = None,
        limit: int = 1000,
    ) -> builtins.list[Agent]:
        """Agents, oldest first, optionally of one type and status."""
        return self._many(
            await self._db.fetch(
                self._q.list,
                enum_value(type, AgentType, "type"),
                enum_value(status, AgentStatus, "status"),
                check_limit(limit),
            )
        )

    async def names(self, ids: Iterable[UUID | str]) -> dict[UUID, str]:
        """The name of each agent of `ids` that exists, by id, in one statement (an id of no agent
        is left out). Agents are shared: a store confined to a customer reads every agent's."""
        keys = sorted({as_uuid(id, "ids") for id in ids})
        if not keys:
            return {}
        return {row["id"]: row["name"] for row in await self._reads.fetch(self._q.names_by_id, keys)}

    @platform
    async def heartbeat(self, id: UUID | str) -> Agent:
        """Set last_heartbeat to the database's now. Raises NotFound."""
        key = as_uuid(id)
        return self._found(await self._db.fetchrow(self._q.heartbeat, key), key)

    async def list_stale(self, older_than: timedelta) -> builtins.list[Agent]:
        """Agents whose last heartbeat is older than `older_than`, or who never sent one."""
        if not isinstance(older_than, timedelta) or older_than <= timedelta(0):
            raise InvalidArgument(f"older_than must be a positive timedelta, got {older_than!r}")
        return self._many(await self._db.fetch(self._q.list_stale, older_than))

    async def list_with_active_workflow(self) -> builtins.list[Agent]:
        """Agents whose state is active and names a current workflow."""
        return self._many(await self._db.fetch(self._q.list_with_active_workflow))
