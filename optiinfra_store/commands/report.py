"""Plain-text reports of workflow history, shared by `optiinfra-store stats` and the demo."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from optiinfra_store.repositories import Repositories


def seconds(value: float | None) -> str:
    """A duration as 1h02m, 3m05s or 42s ('-' for None)."""
    if value is None:
        return "-"
    minutes, secs = divmod(int(round(value)), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def count(n: int, noun: str, plural: str | None = None) -> str:
    """'1 run', '3 runs'."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def percent(value: float | None) -> str:
    """A ratio as a percentage to one decimal, as the tips print it: 79.5%, 80%."""
    return "-" if value is None else f"{value * 100:.1f}".removesuffix(".0") + "%"


async def print_statistics(
    store: Repositories, *, customer_id: UUID | None = None, since: datetime | None = None
) -> None:
    """Totals, success rate and durations, overall and per workflow type; then the performance
    findings (error patterns, slowest steps, retry hotspots, tips)."""
    stats = await store.workflow_executions.statistics(customer_id=customer_id, since=since)
    print(f"\nworkflow statistics, {stats.since:%Y-%m-%d %H:%M} to {stats.until:%Y-%m-%d %H:%M} UTC")
    print(f"  {'type':<22} {'total':>5} {'success':>8} {'avg':>7} {'p50':>7} {'p95':>7} {'max':>7}")
    rows = [("all", stats), *sorted(stats.by_type.items())]
    for name, s in rows:
        print(
            f"  {name:<22} {s.total:>5} {percent(s.success_rate):>8} {seconds(s.avg_duration_seconds):>7} "
            f"{seconds(s.p50_duration_seconds):>7} {seconds(s.p95_duration_seconds):>7} "
            f"{seconds(s.max_duration_seconds):>7}"
        )
    counts = ", ".join(f"{status} {n}" for status, n in stats.count_by_status.items() if n)
    print(f"  by status: {counts or 'none'}")

    perf = await store.workflow_executions.performance(customer_id=customer_id, since=since)
    print("\nperformance")
    print("  durations: " + ", ".join(f"{b.label} {b.count}" for b in perf.duration_buckets))
    for pattern in perf.error_patterns:
        print(
            f"  error {pattern.source} {pattern.error_type}: {pattern.count}x, last "
            f"{pattern.last_seen:%Y-%m-%d %H:%M}, e.g. {pattern.sample_message or '-'}"
        )
    for step in perf.slowest_steps[:5]:
        print(
            f"  slow step {step.step_name}: {count(step.count, 'run')}, avg {seconds(step.avg_seconds)}, "
            f"p95 {seconds(step.p95_seconds)}"
        )
    for hotspot in perf.retry_hotspots[:5]:
        print(
            f"  retries in {hotspot.step_name}: {count(hotspot.total_retries, 'retry', 'retries')} over "
            f"{count(hotspot.steps, 'run')} "
            f"({percent(hotspot.share_retried)} retried)"
        )
    for tip in perf.tips:
        print(f"  tip: {tip}")
