"""agent_states (to be written)."""

from __future__ import annotations

from optiinfra_store.repositories.base import Repository


class AgentStates(Repository):
    table = "agent_states"
    entity = "agent state"
