"""agent_capabilities (to be written)."""

from __future__ import annotations

from optiinfra_store.repositories.base import Repository


class AgentCapabilities(Repository):
    table = "agent_capabilities"
    entity = "agent capability"
