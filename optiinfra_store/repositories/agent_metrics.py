"""agent_metrics (to be written)."""

from __future__ import annotations

from optiinfra_store.repositories.base import Repository


class AgentMetrics(Repository):
    table = "agent_metrics"
    entity = "agent metric"
