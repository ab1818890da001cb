"""agent_metrics: time series of agent measurements, written one at a time or in bulk by COPY."""

from __future__ import annotations

import builtins
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sized
from datetime import UTC, datetime, timedelta
from typing import Any, overload
from uuid import UUID

from optiinfra_store.enums import MetricType
from optiinfra_store.errors import InvalidArgument
from optiinfra_store.records import AgentMetric, AgentMetricCreate, MetricBucket, MetricSummary, Page
from optiinfra_store.repositories.base import (
    Repository,
    as_optional_uuid,
    as_uuid,
    check_int,
    check_limit,
    enum_value,
    keyword_filters,
    optional_aware,
    optional_text,
    platform,
    text,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_COPY_COLUMNS = [
    "agent_id",
    "metric_name",
    "metric_type",
    "metric_value",
    "metric_unit",
    "collection_timestamp",
    "metadata",
]


class AgentMetrics(Repository[AgentMetric], table="agent_metrics"):
    delete = platform(Repository.delete)

    async def create(self, data: AgentMetricCreate) -> AgentMetric:
        """Insert one metric point (collection_timestamp defaults to the database's now).
        Raises MissingReference for an unknown agent."""
        return await self._insert(AgentMetricCreate.model_validate(data))

    async def record(self, data: AgentMetricCreate) -> AgentMetric:
        """Deprecated, to be removed in 0.3: the same as `create`."""
        warnings.warn("agent_metrics.record is deprecated: use create", DeprecationWarning, stacklevel=2)
        return await self.create(data)

    async def record_many(self, metrics: Iterable[AgentMetricCreate | Mapping[str, Any]]) -> int:
        """Write many points with one binary COPY, all or none; returns how many were written.

        Each point is validated as the COPY streams it (the server inserts while the client checks
        the next points); an invalid point raises pydantic's ValidationError and aborts the COPY,
        so nothing is written. A missing collection_timestamp is the client's now (one value for
        the batch). Takes any iterable, so a generator streams without a list in memory; but a
        generator is used up by a failed call, so pass a list if you retry (after StoreUnavailable,
        say). Raises MissingReference if any agent is unknown."""
        if isinstance(metrics, Sized) and not len(metrics):
            return 0
        now = datetime.now(UTC)
        validate = AgentMetricCreate.model_validate

        def rows() -> Iterator[tuple[Any, ...]]:
            for point in metrics:
                m = validate(point)
                yield (
                    m.agent_id,
                    m.metric_name,
                    m.metric_type,
                    m.metric_value,
                    m.metric_unit,
                    m.collection_timestamp or now,
                    m.metadata,
                )

        status = await self._db.copy_records("agent_metrics", rows(), _COPY_COLUMNS)
        return int(status.split()[-1])

    @keyword_filters("agent_id", "metric_name", "metric_type", "start", "end", "limit")
    async def list(
        self,
        *,
        agent_id: UUID | str | None = None,
        metric_name: str | None = None,
        metric_type: MetricType | str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 1000,
        cursor: str | None = None,
    ) -> Page[AgentMetric]:
        """Points in time order (collection_timestamp, then id), within [start, end] when given.
        One page: pass its `next_cursor` back as `cursor` for the next."""
        return await self._page(
            self._q.list,
            [
                as_optional_uuid(agent_id, "agent_id"),
                optional_text(metric_name, "metric_name"),
                enum_value(metric_type, MetricType, "metric_type"),
                optional_aware(start, "start"),
                optional_aware(end, "end"),
            ],
            limit,
            cursor,
            "collection_timestamp",
        )

    @overload
    async def aggregate(
        self,
        agent_id: UUID | str,
        metric_name: str,
        start: datetime | None = None,
        end: datetime | None = None,
        bucket: None = None,
    ) -> MetricSummary: ...

    @overload
    async def aggregate(
        self,
        agent_id: UUID | str,
        metric_name: str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        bucket: timedelta,
    ) -> builtins.list[MetricBucket]: ...

    async def aggregate(
        self,
        agent_id: UUID | str,
        metric_name: str,
        start: datetime | None = None,
        end: datetime | None = None,
        bucket: timedelta | None = None,
    ) -> MetricSummary | builtins.list[MetricBucket]:
        """count, avg, min and max of one agent's metric within [start, end] (None floats if empty).

        With a `bucket` width, the series instead: one MetricBucket (count, avg, min, max, p95) per
        bucket that holds data, in time order. Buckets are PostgreSQL's date_bin, aligned on
        `start` (or the Unix epoch when start is None). Raises InvalidArgument."""
        args = (
            as_uuid(agent_id, "agent_id"),
            text(metric_name, "metric_name"),
            optional_aware(start, "start"),
            optional_aware(end, "end"),
        )
        if bucket is not None:
            if not isinstance(bucket, timedelta) or bucket <= timedelta(0):
                raise InvalidArgument(f"bucket must be a positive timedelta, got {bucket!r}")
            rows = await self._reads.fetch(self._q.aggregate_buckets, *args, bucket, start or _EPOCH)
            return [MetricBucket.from_row(row) for row in rows]
        row = await self._reads.fetchrow(self._q.aggregate, *args)
        assert row is not None  # an aggregate without GROUP BY returns one row
        return MetricSummary.from_row(row)

    async def latest(self, agent_id: UUID | str) -> dict[str, AgentMetric]:
        """The newest point of each of the agent's metric names, by name ({} if it has none)."""
        rows = await self._db.fetch(self._q.latest, as_uuid(agent_id, "agent_id"))
        return {row["metric_name"]: self._one(row) for row in reversed(rows)}

    @platform
    async def purge(self, before: datetime, *, batch_size: int = 10_000, dry_run: bool = False) -> int:
        """Delete the points collected before `before`; returns how many were deleted (with
        `dry_run`, how many would be, deleting nothing). Raises InvalidArgument.

        Whole days go by dropping their partitions; the rest (the day holding `before`, points the
        default partition caught) in batches of `batch_size`, oldest first, each batch one short
        statement, its own transaction on a pool."""
        if before is None:
            raise InvalidArgument("before must be a timezone-aware datetime, got None")
        cutoff = optional_aware(before, "before")
        check_int(batch_size, "batch_size", 1, 100_000)
        if dry_run:
            would: int = await self._db.fetchval(self._q.purge_count, cutoff)
            return would
        total: int = await self._db.fetchval(self._q.drop_partitions, cutoff)
        while deleted := await self._db.fetchval(self._q.purge_batch, cutoff, batch_size):
            total += deleted
        return total

    async def search(
        self, metadata: dict[str, Any], agent_id: UUID | str | None = None, limit: int = 1000
    ) -> builtins.list[AgentMetric]:
        """Points whose metadata contains `metadata` (jsonb @>, served by the GIN index), in time order."""
        if not isinstance(metadata, dict):
            raise InvalidArgument(f"metadata must be a dict, got {type(metadata).__name__}")
        return self._many(
            await self._reads.fetch(
                self._q.search, metadata, as_optional_uuid(agent_id, "agent_id"), check_limit(limit)
            )
        )
