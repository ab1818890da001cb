"""agent_configs (to be written)."""

from __future__ import annotations

from optiinfra_store.repositories.base import Repository


class AgentConfigs(Repository):
    table = "agent_configs"
    entity = "agent config"
