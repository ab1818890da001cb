"""Records returned by the workflow history analytics and retention, the upkeep, and the pool's statistics."""

from __future__ import annotations

from datetime import datetime

from optiinfra_store.enums import WorkflowStatus, WorkflowType
from optiinfra_store.records._base import Record

__all__ = [
    "MaintenanceReport",
    "PoolStats",
    "PurgeReport",
    "TypeStatistics",
    "WorkflowStatistics",
    "DurationBucket",
    "ErrorPattern",
    "StepTiming",
    "RetryHotspot",
    "WorkflowPerformance",
    "TrendBucket",
]

# -- retention ---------------------------------------------------------------------------------------


class PurgeReport(Record):
    """What a retention purge removed (or, in a dry run, would remove): the executions and the
    steps, artifacts and transitions that went with them."""

    executions: int = 0
    steps: int = 0
    artifacts: int = 0
    transitions: int = 0


class MaintenanceReport(Record):
    """What one run of `Store.maintain()` did."""

    metric_partitions_created: int = 0
    """Daily agent_metrics partitions created (ahead of time, or for points the default partition caught)."""
    rollup_hours: int = 0
    """Hours of workflow history rolled up (newly closed, or changed since they were rolled up)."""


class PoolStats(Record):
    """The connections of a store's pool at one moment (`Store.pool_stats()`)."""

    size: int
    """Connections open: in use and idle."""
    in_use: int
    """Held by a call, a transaction or an event stream's read."""
    idle: int
    """Open and free."""
    min_size: int
    """The pool keeps at least this many open."""
    max_size: int
    """It opens at most this many; a call waits (up to `acquire_timeout`) when all are in use."""


# -- workflow statistics, performance analysis and trend (workflow_executions.statistics / performance / trend)


class TypeStatistics(Record):
    """Counts and durations of the executions in a window. Durations (seconds) are over finished
    executions (completed, failed, cancelled, timeout) that have both timestamps; None when there are none."""

    total: int
    count_by_status: dict[WorkflowStatus, int]
    """Every status, zeros included."""
    success_rate: float | None
    """completed / (completed + failed + cancelled + timeout); None when nothing finished."""
    avg_duration_seconds: float | None
    p50_duration_seconds: float | None
    p95_duration_seconds: float | None
    max_duration_seconds: float | None


class WorkflowStatistics(TypeStatistics):
    """The figures of TypeStatistics over the whole window [since, until), and per workflow type
    (only the types present)."""

    since: datetime
    until: datetime
    by_type: dict[WorkflowType, TypeStatistics]


class DurationBucket(Record):
    """Finished executions whose duration falls in [min_seconds, max_seconds) (max None: no bound)."""

    label: str
    min_seconds: float
    max_seconds: float | None
    count: int


class ErrorPattern(Record):
    """Failed executions (source "execution") or failed steps (source "step") sharing an
    error_details error_type ("unspecified" when absent)."""

    source: str
    error_type: str
    count: int
    last_seen: datetime
    sample_message: str | None


class StepTiming(Record):
    """Durations (seconds) of the runs of one step name that have both timestamps."""

    step_name: str
    count: int
    avg_seconds: float
    p95_seconds: float


class RetryHotspot(Record):
    """Retries of one step name: total retry_count, and the share of its steps retried at least once."""

    step_name: str
    steps: int
    total_retries: int
    share_retried: float


class WorkflowPerformance(Record):
    """Where time goes and what fails, for the executions created in [since, until)."""

    since: datetime
    until: datetime
    finished: int
    success_rate: float | None
    p50_duration_seconds: float | None
    p95_duration_seconds: float | None
    duration_buckets: list[DurationBucket]
    error_patterns: list[ErrorPattern]
    slowest_steps: list[StepTiming]
    retry_hotspots: list[RetryHotspot]
    tips: list[str]
    """Plain-English findings from explicit rules over the figures above; each names its figure."""


class TrendBucket(Record):
    """Executions created in [start, end): counts per status (every status) and average duration
    (seconds) of the finished ones with both timestamps."""

    start: datetime
    end: datetime
    total: int
    count_by_status: dict[WorkflowStatus, int]
    avg_duration_seconds: float | None
