"""agent_metrics: time series of agent measurements, written one at a time or in bulk by COPY."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID


from optiinfra_store.enums import MetricType
from optiinfra_store.errors import InvalidArgument, translate
from optiinfra_store.records import AgentMetric, AgentMetricCreate, MetricSummary
from optiinfra_store.repositories.base import (
    Repository,
    as_optional_uuid,
    as_uuid,
    check_limit,
    optional_aware,
    optional_text,
)

_COPY_COLUMNS = [
    "agent_id", "metric_name", "metric_type", "metric_value", "metric_unit",
    "collection_timestamp", "metadata",
]


class AgentMetrics(Repository[AgentMetric]):
    table = "agent_metrics"
    entity = "agent metric"
    record_type = AgentMetric

    async def create(self, data: AgentMetricCreate) -> AgentMetric:
        """Insert one metric point (collection_timestamp defaults to the database's now).
        Raises MissingReference for an unknown agent."""
        return await self._insert(AgentMetricCreate.model_validate(data))

    async def record(self, data: AgentMetricCreate) -> AgentMetric:
        """Record one metric point: the same as `create`."""
        return await self.create(data)

    async def record_many(self, metrics: Sequence[AgentMetricCreate]) -> int:
        """Write many points with one binary COPY, all or none; returns how many were written.

        Every input is validated before anything is sent; a missing collection_timestamp is the
        client's now (one value for the batch). Raises MissingReference if any agent is unknown."""
        validated = [AgentMetricCreate.model_validate(m) for m in metrics]
        if not validated:
            return 0
        now = datetime.now(UTC)
        records = [
            (m.agent_id, m.metric_name, m.metric_type.value, m.metric_value, m.metric_unit,
             m.collection_timestamp or now, m.metadata)
            for m in validated
        ]
        try:
            status = await self._db.copy_records_to_table(
                "agent_metrics", records=records, columns=_COPY_COLUMNS
            )
        except Exception as exc:
            raise translate(exc) from exc
        return int(status.split()[-1])

    async def list(
        self,
        *,
        agent_id: UUID | str | None = None,
        metric_name: str | None = None,
        metric_type: MetricType | str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 1000,
    ) -> list[AgentMetric]:
        """Points in time order (collection_timestamp, then id), within [start, end] when given."""
        return self._many(await self._fetch(
            self._q.list,
            as_optional_uuid(agent_id, "agent_id"),
            optional_text(metric_name, "metric_name"),
            None if metric_type is None else MetricType(metric_type).value,
            optional_aware(start, "start"),
            optional_aware(end, "end"),
            check_limit(limit),
        ))

    async def aggregate(
        self,
        agent_id: UUID | str,
        metric_name: str,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> MetricSummary:
        """count, avg, min and max of one agent's metric within [start, end] (None floats if empty)."""
        if not isinstance(metric_name, str):
            raise InvalidArgument(f"metric_name must be a string, got {type(metric_name).__name__}")
        row = await self._fetchrow(
            self._q.aggregate, as_uuid(agent_id, "agent_id"), metric_name,
            optional_aware(start, "start"), optional_aware(end, "end"),
        )
        assert row is not None  # an aggregate without GROUP BY returns one row
        return MetricSummary.model_construct(**row)

    async def search(
        self, metadata: dict[str, Any], agent_id: UUID | str | None = None, limit: int = 1000
    ) -> list[AgentMetric]:
        """Points whose metadata contains `metadata` (jsonb @>, served by the GIN index), in time order."""
        if not isinstance(metadata, dict):
            raise InvalidArgument(f"metadata must be a dict, got {type(metadata).__name__}")
        return self._many(await self._fetch(
            self._q.search, metadata, as_optional_uuid(agent_id, "agent_id"), check_limit(limit)
        ))
