"""agent_states: the one runtime state row of each agent."""

from __future__ import annotations

import builtins
from typing import Any
from uuid import UUID

from optiinfra_store.enums import AgentStatusDetail
from optiinfra_store.errors import AccessDenied, AlreadyExists, InvalidArgument, MissingReference, NotFound
from optiinfra_store.records import AgentState, AgentStateCreate, AgentStateUpsert
from optiinfra_store.repositories.base import (
    Repository,
    as_optional_uuid,
    as_uuid,
    check_limit,
    check_version,
    enum_value,
    optional_object,
    platform,
)


class AgentStates(Repository[AgentState], table="agent_states"):
    delete = platform(Repository.delete)

    async def create(self, data: AgentStateCreate) -> AgentState:
        """Insert an agent's state. Raises MissingReference for an unknown agent or workflow,
        AlreadyExists (agent_states_agent_id_key) if the agent has one: use `upsert`. In a store
        confined to a customer, a state that describes another customer's work raises AccessDenied,
        as `upsert` does (which customer's it is, and what it holds, stay hidden)."""
        data = AgentStateCreate.model_validate(data)
        row = await self._db.fetchrow(self._q.insert, *self._q.args("insert", data))
        if row is not None:
            return self._one(row)
        seen = await self._db.fetchval(self._q.get_version, data.agent_id)
        if seen is None and self._customer_id is not None:  # there, but not this customer's to see
            raise AccessDenied(f"not this customer's to write: the state of agent {data.agent_id} describes other work")
        raise AlreadyExists(
            f"agent {data.agent_id} has a state already: use upsert", constraint="agent_states_agent_id_key"
        )

    async def upsert(self, data: AgentStateUpsert, *, expected_version: int | None = None) -> AgentState:
        """Insert the agent's state, or update the fields set in `data` on the existing row (the
        others, error_count and last_error included, are kept). last_heartbeat is always refreshed:
        to `data.last_heartbeat`, or the database's now.

        With `expected_version` (the `version` you read) it only updates, and only if nobody wrote
        since: raises StaleVersion if someone did, NotFound if the agent has no state."""
        data = AgentStateUpsert.model_validate(data)
        expected = check_version(expected_version)
        given = sorted(data.model_fields_set)
        if expected is None:
            row = await self._db.fetchrow(self._q.upsert, *self._q.args("upsert", data, given=given))
        else:
            args = self._q.args("update_versioned", data, given=given, expected_version=expected)
            row = await self._db.fetchrow(self._q.update_versioned, *args)
        if row is not None:
            return self._one(row)
        return await self._stale(data.agent_id, expected)

    async def get_for_agent(self, agent_id: UUID | str) -> AgentState:
        """The agent's state. Raises NotFound."""
        key = as_uuid(agent_id, "agent_id")
        return self._found(await self._db.fetchrow(self._q.get_for_agent, key), key)

    async def heartbeat(self, agent_id: UUID | str) -> AgentState:
        """Set last_heartbeat to the database's now. Raises NotFound."""
        key = as_uuid(agent_id, "agent_id")
        return self._found(await self._db.fetchrow(self._q.heartbeat, key), key)

    async def record_error(self, agent_id: UUID | str, error: dict[str, Any]) -> AgentState:
        """Add one to error_count and store `error` as last_error, in one statement (concurrent
        calls each count). Raises NotFound."""
        key = as_uuid(agent_id, "agent_id")
        if error is None:
            raise InvalidArgument("error must be a dict, got NoneType")
        return self._found(await self._db.fetchrow(self._q.record_error, key, optional_object(error, "error")), key)

    async def set_current_workflow(self, agent_id: UUID | str, execution_id: UUID | str | None) -> AgentState:
        """Point current_workflow_id at an execution (None clears it). Raises NotFound for an
        unknown agent state, and for an execution this store cannot see: one that does not
        exist, or, in a store confined to a customer, another customer's."""
        key = as_uuid(agent_id, "agent_id")
        execution = as_optional_uuid(execution_id, "execution_id")
        try:
            row = await self._db.fetchrow(self._q.set_current_workflow, key, execution)
        except MissingReference as exc:
            if exc.constraint != "agent_states_current_workflow_id_fkey":
                raise
            raise NotFound("workflow execution", execution) from None
        return self._found(row, key)

    @platform
    async def release(self, agent_id: UUID | str) -> AgentState:
        """Give the agent's state back from the customer whose work it describes: clear that
        customer and what the state held of the work (current workflow, workflow_data, resource
        locks, last error). A store confined to another customer can then use it. Raises NotFound."""
        key = as_uuid(agent_id, "agent_id")
        return self._found(await self._db.fetchrow(self._q.release, key), key)

    async def list(
        self, *, status: AgentStatusDetail | str | None = None, limit: int = 1000
    ) -> builtins.list[AgentState]:
        """State rows, oldest first, optionally of one status."""
        return self._many(
            await self._db.fetch(
                self._q.list,
                enum_value(status, AgentStatusDetail, "status"),
                check_limit(limit),
            )
        )
