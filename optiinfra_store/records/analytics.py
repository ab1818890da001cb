"""Records returned by the history analytics, retention and metric time series."""

from __future__ import annotations

__all__: list[str] = []


# -- retention and metric time series ---------------------------------------------------------------

from datetime import datetime  # noqa: E402

from optiinfra_store.records._base import Record  # noqa: E402

__all__ += ["PurgeReport", "MetricBucket"]


class PurgeReport(Record):
    """What a retention purge removed (or, in a dry run, would remove): the executions and the
    steps, artifacts and transitions that went with them."""

    executions: int = 0
    steps: int = 0
    artifacts: int = 0
    transitions: int = 0


class MetricBucket(Record):
    """One time bucket of a metric series (only buckets with data): count, avg, min, max and p95
    (percentile_cont, interpolated) of the values collected in [bucket_start, bucket_start + bucket)."""

    bucket_start: datetime
    count: int
    avg: float
    min: float
    max: float
    p95: float


# -- workflow statistics, performance analysis and trend (workflow_executions.statistics / performance / trend)

from datetime import datetime as _datetime  # noqa: E402

from optiinfra_store.enums import WorkflowStatus as _WorkflowStatus, WorkflowType as _WorkflowType  # noqa: E402
from optiinfra_store.records._base import Record as _Record  # noqa: E402

__all__ += [
    "TypeStatistics", "WorkflowStatistics", "DurationBucket", "ErrorPattern", "StepTiming", "RetryHotspot",
    "WorkflowPerformance", "TrendBucket",
]


class TypeStatistics(_Record):
    """Counts and durations of the executions in a window. Durations (seconds) are over finished
    executions (completed, failed, cancelled, timeout) that have both timestamps; None when there are none."""

    total: int
    count_by_status: dict[_WorkflowStatus, int]
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

    since: _datetime
    until: _datetime
    by_type: dict[_WorkflowType, TypeStatistics]


class DurationBucket(_Record):
    """Finished executions whose duration falls in [min_seconds, max_seconds) (max None: no bound)."""

    label: str
    min_seconds: float
    max_seconds: float | None
    count: int


class ErrorPattern(_Record):
    """Failed executions (source "execution") or failed steps (source "step") sharing an
    error_details error_type ("unspecified" when absent)."""

    source: str
    error_type: str
    count: int
    last_seen: _datetime
    sample_message: str | None


class StepTiming(_Record):
    """Durations (seconds) of the runs of one step name that have both timestamps."""

    step_name: str
    count: int
    avg_seconds: float
    p95_seconds: float


class RetryHotspot(_Record):
    """Retries of one step name: total retry_count, and the share of its steps retried at least once."""

    step_name: str
    steps: int
    total_retries: int
    share_retried: float


class WorkflowPerformance(_Record):
    """Where time goes and what fails, for the executions created in [since, until)."""

    since: _datetime
    until: _datetime
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


class TrendBucket(_Record):
    """Executions created in [start, end): counts per status (every status) and average duration
    (seconds) of the finished ones with both timestamps."""

    start: _datetime
    end: _datetime
    total: int
    count_by_status: dict[_WorkflowStatus, int]
    avg_duration_seconds: float | None
