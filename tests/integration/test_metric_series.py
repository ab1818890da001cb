"""Metric time series: bucketed aggregates (date_bin) and the newest value of each metric."""

from __future__ import annotations

import math
import random
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from optiinfra_store.enums import AgentStatus, AgentType
from optiinfra_store.errors import InvalidArgument
from optiinfra_store.queries import load
from optiinfra_store.records import AgentCreate, AgentMetricCreate, MetricBucket, MetricSummary

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BASE = datetime(2025, 3, 9, 22, 0, tzinfo=UTC)


def percentile_cont(values: list[float], fraction: float) -> float:
    """PostgreSQL's percentile_cont: linear interpolation between the closest ranks."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def expected_buckets(points, bucket: timedelta, origin: datetime) -> list[tuple]:
    groups: dict[datetime, list[float]] = defaultdict(list)
    for at, value in points:
        groups[origin + ((at - origin) // bucket) * bucket].append(value)
    return [
        (start, len(vs), sum(vs) / len(vs), min(vs), max(vs), percentile_cont(vs, 0.95))
        for start, vs in sorted(groups.items())
    ]


def as_tuples(buckets: list[MetricBucket]) -> list[tuple]:
    return [(b.bucket_start, b.count, b.avg, b.min, b.max, b.p95) for b in buckets]


def assert_same(actual: list[tuple], expected: list[tuple]) -> None:
    assert [row[:2] for row in actual] == [row[:2] for row in expected]
    for got, want in zip(actual, expected, strict=True):
        assert got[2:] == pytest.approx(want[2:], rel=1e-12, abs=1e-9)


@pytest.fixture
async def series(store, agent):
    """~300 latency points over two days at irregular times, with a six-hour gap, plus noise
    (another metric name) that must never be counted."""
    rng = random.Random(4)
    points = []
    at = BASE
    while at < BASE + timedelta(days=2):
        if not BASE + timedelta(hours=10) <= at < BASE + timedelta(hours=16):
            points.append((at, round(rng.lognormvariate(3, 0.8), 3)))
        at += timedelta(seconds=rng.randint(60, 900))
    await store.agent_metrics.record_many(
        [
            AgentMetricCreate(agent_id=agent.id, metric_name="latency_ms", metric_value=v, collection_timestamp=t)
            for t, v in points
        ]
        + [
            AgentMetricCreate(agent_id=agent.id, metric_name="cpu", metric_value=1e6, collection_timestamp=t)
            for t, _ in points[::5]
        ]
    )
    return points


async def test_aggregate__hourly_buckets_match_python(store, agent, series):
    buckets = await store.agent_metrics.aggregate(agent.id, "latency_ms", bucket=timedelta(hours=1))
    assert all(isinstance(b, MetricBucket) for b in buckets)
    assert_same(as_tuples(buckets), expected_buckets(series, timedelta(hours=1), EPOCH))
    assert sum(b.count for b in buckets) == len(series)
    # only buckets with data: the six-hour gap leaves no empty buckets behind
    starts = [b.bucket_start for b in buckets]
    assert starts == sorted(starts) and BASE + timedelta(hours=12) not in starts
    assert all(b.bucket_start.tzinfo is not None for b in buckets)


async def test_aggregate__buckets_aligned_on_start_within_the_window(store, agent, series):
    start = BASE + timedelta(hours=3, minutes=7, seconds=30)
    end = BASE + timedelta(days=1, hours=5)
    bucket = timedelta(minutes=45)
    buckets = await store.agent_metrics.aggregate(agent.id, "latency_ms", start, end, bucket=bucket)
    inside = [(t, v) for t, v in series if start <= t <= end]
    assert_same(as_tuples(buckets), expected_buckets(inside, bucket, start))
    assert buckets[0].bucket_start >= start
    assert all((b.bucket_start - start) % bucket == timedelta(0) for b in buckets)


async def test_aggregate__odd_bucket_widths_match_python(store, agent, series):
    for bucket in (timedelta(days=1), timedelta(hours=25), timedelta(minutes=7, seconds=13)):
        buckets = await store.agent_metrics.aggregate(agent.id, "latency_ms", bucket=bucket)
        assert_same(as_tuples(buckets), expected_buckets(series, bucket, EPOCH))


async def test_aggregate__without_bucket_is_one_summary_as_before(store, agent, series):
    values = [v for _, v in series]
    summary = await store.agent_metrics.aggregate(agent.id, "latency_ms")
    assert isinstance(summary, MetricSummary)
    assert summary.count == len(values)
    assert (summary.avg, summary.min, summary.max) == pytest.approx(
        (sum(values) / len(values), min(values), max(values))
    )
    positional = await store.agent_metrics.aggregate(agent.id, "latency_ms", BASE, BASE + timedelta(hours=1))
    assert positional.count == sum(1 for t, _ in series if BASE <= t <= BASE + timedelta(hours=1))


async def test_aggregate__no_points_no_buckets(store, agent):
    assert await store.agent_metrics.aggregate(agent.id, "nothing", bucket=timedelta(minutes=5)) == []
    assert (await store.agent_metrics.aggregate(agent.id, "nothing")).count == 0


async def test_aggregate__single_point_bucket(store, agent):
    await store.agent_metrics.create(
        AgentMetricCreate(
            agent_id=agent.id, metric_name="gpu", metric_value=42.5, collection_timestamp=BASE + timedelta(minutes=5)
        )
    )
    [only] = await store.agent_metrics.aggregate(agent.id, "gpu", bucket=timedelta(minutes=15))
    assert only == MetricBucket(bucket_start=BASE, count=1, avg=42.5, min=42.5, max=42.5, p95=42.5)


@pytest.mark.parametrize("bucket", [timedelta(0), timedelta(seconds=-60), 60, "1 hour"])
async def test_aggregate__bad_bucket_refused(store, agent, bucket):
    with pytest.raises(InvalidArgument, match="bucket"):
        await store.agent_metrics.aggregate(agent.id, "latency_ms", bucket=bucket)


async def test_aggregate__naive_start_refused_with_bucket(store, agent):
    with pytest.raises(InvalidArgument, match="start"):
        await store.agent_metrics.aggregate(agent.id, "x", datetime(2025, 1, 1), bucket=timedelta(hours=1))


# -- latest ----------------------------------------------------------------------------------------


async def test_latest__newest_point_of_each_name(store, agent):
    other = await store.agents.create(
        AgentCreate(
            type=AgentType.PERFORMANCE,
            name="Perf",
            version="1.0.0",
            status=AgentStatus.ACTIVE,
            endpoint="http://perf-agent:8002",
        )
    )
    points = []
    rng = random.Random(7)
    for name in ("cpu", "memory", "latency_ms"):
        times = [BASE + timedelta(minutes=rng.randint(0, 10_000)) for _ in range(40)]
        for t in times:
            points.append(
                AgentMetricCreate(
                    agent_id=agent.id,
                    metric_name=name,
                    metric_value=rng.random(),
                    collection_timestamp=t,
                    metric_unit="u",
                )
            )
    # the other agent's points are newer than everything, and carry a name of its own
    for name in ("cpu", "disk"):
        points.append(
            AgentMetricCreate(
                agent_id=other.id, metric_name=name, metric_value=-1.0, collection_timestamp=BASE + timedelta(days=30)
            )
        )
    rng.shuffle(points)
    await store.agent_metrics.record_many(points)

    latest = await store.agent_metrics.latest(agent.id)
    assert set(latest) == {"cpu", "memory", "latency_ms"}
    for name, metric in latest.items():
        mine = [p for p in points if p.agent_id == agent.id and p.metric_name == name]
        newest = max(mine, key=lambda p: p.collection_timestamp)
        assert metric.metric_name == name and metric.agent_id == agent.id
        assert (metric.collection_timestamp, metric.metric_value) == (newest.collection_timestamp, newest.metric_value)
        assert metric.metric_unit == "u"
    assert {n: m.metric_value for n, m in (await store.agent_metrics.latest(other.id)).items()} == {
        "cpu": -1.0,
        "disk": -1.0,
    }


async def test_latest__an_agent_without_metrics(store, agent):
    assert await store.agent_metrics.latest(agent.id) == {}


async def test_latest__can_use_the_agent_name_timestamp_index(store, clean_dsn, agent):
    conn = await asyncpg.connect(clean_dsn)
    try:
        await conn.execute("SET enable_seqscan = off")
        plan = "\n".join(row[0] for row in await conn.fetch("EXPLAIN " + load("agent_metrics").latest, agent.id))
    finally:
        await conn.close()
    # each partition's copy of the agent/name/timestamp index, probed per name: no sort of the points
    assert "_agent_id_metric_name_collection" in plan and "Seq Scan" not in plan
    # no sort below the last one (of one row per name): the partitions' index order is merged
    assert not re.search(r"->\s+(Incremental )?Sort\s+\(", plan), plan


async def test_list__the_range_holds_both_its_ends_exactly(store, agent):
    start = datetime(2026, 3, 1, 12, tzinfo=UTC)
    end = start + timedelta(hours=1)
    tick = timedelta(microseconds=1)
    at = {
        "before": start - tick,
        "start": start,
        "inside": start + timedelta(minutes=30),
        "end": end,
        "after": end + tick,
    }
    await store.agent_metrics.record_many(
        [
            AgentMetricCreate(agent_id=agent.id, metric_name=name, metric_value=1.0, collection_timestamp=when)
            for name, when in at.items()
        ]
    )
    page = await store.agent_metrics.list(agent_id=agent.id, start=start, end=end)
    assert [p.metric_name for p in page] == ["start", "inside", "end"]
