"""Workflow statistics, performance analysis and trend: figures equal values computed in Python
from the same rows; filters, windows, empty buckets, tips; EXPLAIN shows the indexes are usable."""

from __future__ import annotations

import json
import math
import re
import statistics as pystats
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from optiinfra_store.enums import AgentStatus, AgentType, StepStatus, WorkflowStatus, WorkflowType
from optiinfra_store.errors import InvalidArgument
from optiinfra_store.queries import load
from optiinfra_store.records import AgentCreate, CustomerCreate, WorkflowExecutionCreate, WorkflowStepCreate
from optiinfra_store.rules.tips import performance_tips

FINISHED = {WorkflowStatus.COMPLETED, WorkflowStatus.FAILED, WorkflowStatus.CANCELLED, WorkflowStatus.TIMEOUT}
NOW = datetime.now(UTC).replace(microsecond=0)


def ranked(values: list[float], q: float) -> float | None:
    """The nearest-rank q-quantile: the sample at rank ceil(q * n) (1-based, at least 1)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(round(q * len(ordered), 9))) - 1]


def near(value: float | None):
    """Exact: these samples hold at most sketch.EXACT_UP_TO durations."""
    return pytest.approx(value, rel=1e-12, abs=1e-9)


def expected_figures(rows: list[dict]) -> dict:
    counts = {s: sum(1 for r in rows if r["status"] is s) for s in WorkflowStatus}
    ended = sum(counts[s] for s in FINISHED)
    durations = [r["duration"] for r in rows if r["status"] in FINISHED and r["duration"] is not None]
    return {
        "total": len(rows),
        "count_by_status": counts,
        "success_rate": counts[WorkflowStatus.COMPLETED] / ended if ended else None,
        "avg_duration_seconds": pystats.fmean(durations) if durations else None,
        "p50_duration_seconds": ranked(durations, 0.5),
        "p95_duration_seconds": ranked(durations, 0.95),
        "max_duration_seconds": max(durations) if durations else None,
    }


def assert_figures(actual, expected: dict) -> None:
    assert actual.total == expected["total"]
    assert actual.count_by_status == expected["count_by_status"]
    assert set(actual.count_by_status) == set(WorkflowStatus)
    for name in (
        "success_rate",
        "avg_duration_seconds",
        "p50_duration_seconds",
        "p95_duration_seconds",
        "max_duration_seconds",
    ):
        if expected[name] is None:
            assert getattr(actual, name) is None, name
        elif name.startswith(("p50", "p95")):
            assert getattr(actual, name) == near(expected[name]), name
        else:
            assert getattr(actual, name) == pytest.approx(expected[name], rel=1e-12), name


async def add_execution(
    store, agent, customer, status, duration=None, workflow_type=WorkflowType.HEALTH_CHECK, **extra
):
    """An imported execution that started an hour ago and, if finished, ran `duration` seconds."""
    times = {}
    if status is not WorkflowStatus.PENDING:
        times["started_at"] = NOW - timedelta(hours=1)
    if status in FINISHED and duration is not None:
        times["completed_at"] = times["started_at"] + timedelta(seconds=duration)
    execution = await store.workflow_executions.create(
        WorkflowExecutionCreate(
            agent_id=agent.id,
            customer_id=customer.id,
            workflow_type=workflow_type,
            status=status,
            **times,
            **extra,
        )
    )
    return {
        "id": execution.id,
        "status": status,
        "workflow_type": workflow_type,
        "customer_id": customer.id,
        "agent_id": agent.id,
        "duration": duration if "completed_at" in times else None,
    }


async def set_created_at(store, row: dict[str, Any], at: datetime) -> None:
    """Move an execution (a row of `create`) to `at`; by customer and id, one shard on a cluster."""
    await store.pool.execute(
        "UPDATE workflow_executions SET created_at = $3 WHERE customer_id = $1 AND id = $2",
        row["customer_id"],
        row["id"],
        at,
    )


@pytest.fixture
async def other_agent(store):
    return await store.agents.create(
        AgentCreate(
            type=AgentType.PERFORMANCE,
            name="Perf Tuner",
            version="2.0.0",
            status=AgentStatus.ACTIVE,
            endpoint="http://perf-agent:8002",
            capabilities=["latency"],
        )
    )


@pytest.fixture
async def other_customer(store):
    return await store.customers.create(CustomerCreate(name="Globex", email="ops@globex.example"))


DURATIONS = [5, 30, 59.5, 60, 120, 299, 300, 600, 899, 900, 1800, 3599, 3600, 7200, 42, 17, 250, 1000]
STATUSES = [
    WorkflowStatus.COMPLETED,
    WorkflowStatus.COMPLETED,
    WorkflowStatus.FAILED,
    WorkflowStatus.COMPLETED,
    WorkflowStatus.CANCELLED,
    WorkflowStatus.TIMEOUT,
]
TYPES = [WorkflowType.HEALTH_CHECK, WorkflowType.COST_ANALYSIS, WorkflowType.SCALING_DECISION]


@pytest.fixture
async def population(store, agent, customer, other_agent, other_customer):
    """36 executions: every status, three types, two agents, two customers, known durations."""
    rows = []
    for i in range(30):
        status = STATUSES[i % len(STATUSES)]
        rows.append(
            await add_execution(
                store,
                agent if i % 4 else other_agent,
                customer if i % 5 else other_customer,
                status,
                DURATIONS[i % len(DURATIONS)],
                TYPES[i % len(TYPES)],
            )
        )
    rows.append(await add_execution(store, agent, customer, WorkflowStatus.PENDING, workflow_type=TYPES[0]))
    rows.append(await add_execution(store, agent, customer, WorkflowStatus.PENDING, workflow_type=TYPES[1]))
    rows.append(await add_execution(store, agent, customer, WorkflowStatus.RUNNING, workflow_type=TYPES[0]))
    rows.append(await add_execution(store, agent, other_customer, WorkflowStatus.RUNNING, workflow_type=TYPES[2]))
    # finished without a start (imported cancellation of a never-started run): counted, no duration
    rows.append(await add_execution(store, agent, customer, WorkflowStatus.CANCELLED, workflow_type=TYPES[1]))
    rows.append(await add_execution(store, agent, customer, WorkflowStatus.COMPLETED, 0, TYPES[2]))
    return rows


# -- statistics --------------------------------------------------------------------------------------


async def test_statistics__match_python_overall_and_per_type(store, population):
    stats = await store.workflow_executions.statistics()
    assert_figures(stats, expected_figures(population))
    assert set(stats.by_type) == set(TYPES)
    for workflow_type, figures in stats.by_type.items():
        assert_figures(figures, expected_figures([r for r in population if r["workflow_type"] is workflow_type]))
    assert stats.until - stats.since == timedelta(days=30)
    assert stats.until >= NOW


@pytest.mark.parametrize("field", ["customer_id", "agent_id", "workflow_type"])
async def test_statistics__filters_narrow_the_rows(store, population, other_customer, other_agent, field):
    value = {
        "customer_id": other_customer.id,
        "agent_id": other_agent.id,
        "workflow_type": WorkflowType.SCALING_DECISION,
    }[field]
    stats = await store.workflow_executions.statistics(**{field: value})
    chosen = [r for r in population if r[field] == value]
    assert 0 < len(chosen) < len(population)
    assert_figures(stats, expected_figures(chosen))


async def test_statistics__filters_combine(store, population, customer, agent):
    stats = await store.workflow_executions.statistics(
        customer_id=str(customer.id), agent_id=agent.id, workflow_type="cost_analysis"
    )
    chosen = [
        r
        for r in population
        if r["customer_id"] == customer.id
        and r["agent_id"] == agent.id
        and r["workflow_type"] is WorkflowType.COST_ANALYSIS
    ]
    assert_figures(stats, expected_figures(chosen))
    assert set(stats.by_type) == {WorkflowType.COST_ANALYSIS}


async def test_statistics__window_on_created_at(store, population):
    old = population[:7]
    for r in old:
        await set_created_at(store, r, NOW - timedelta(days=40))
    recent = await store.workflow_executions.statistics()
    assert_figures(recent, expected_figures(population[7:]))
    earlier = await store.workflow_executions.statistics(since=NOW - timedelta(days=41), until=NOW - timedelta(days=39))
    assert_figures(earlier, expected_figures(old))


async def test_statistics__empty_window(store, population):
    stats = await store.workflow_executions.statistics(since=NOW - timedelta(days=400), until=NOW - timedelta(days=399))
    assert stats.total == 0 and stats.success_rate is None and stats.by_type == {}
    assert stats.count_by_status == {s: 0 for s in WorkflowStatus}
    assert stats.avg_duration_seconds is None and stats.p95_duration_seconds is None


async def test_statistics__nothing_finished_has_no_success_rate(store, agent, customer):
    await add_execution(store, agent, customer, WorkflowStatus.RUNNING)
    stats = await store.workflow_executions.statistics()
    assert stats.total == 1 and stats.success_rate is None and stats.max_duration_seconds is None
    assert stats.by_type[WorkflowType.HEALTH_CHECK].count_by_status[WorkflowStatus.RUNNING] == 1


async def test_statistics__bad_arguments(store):
    repo = store.workflow_executions
    with pytest.raises(InvalidArgument, match="since"):
        await repo.statistics(since=datetime(2026, 1, 1))
    with pytest.raises(InvalidArgument, match="before since"):
        await repo.statistics(since=NOW, until=NOW - timedelta(days=1))
    with pytest.raises(InvalidArgument, match="workflow_type"):
        await repo.statistics(workflow_type="nonsense")
    with pytest.raises(InvalidArgument, match="workflow_type"):
        await repo.performance(workflow_type="nonsense")
    with pytest.raises(Exception, match="customer_id"):
        await repo.statistics(customer_id="not-a-uuid")


# -- trend -------------------------------------------------------------------------------------------


async def test_trend__buckets_with_empty_ones(store, agent, customer, other_customer):
    origin = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
    placed = {
        0: [(WorkflowStatus.COMPLETED, 60), (WorkflowStatus.FAILED, 120)],
        1: [(WorkflowStatus.PENDING, None)],
        3: [(WorkflowStatus.COMPLETED, 30), (WorkflowStatus.COMPLETED, 90), (WorkflowStatus.TIMEOUT, 600)],
        5: [(WorkflowStatus.RUNNING, None)],
    }
    for hour, items in placed.items():
        for minute, (status, duration) in enumerate(items):
            row = await add_execution(store, agent, customer, status, duration)
            await set_created_at(store, row, origin + timedelta(hours=hour, minutes=10 * minute))
    # another customer's execution in bucket 2: seen without the filter only
    stray = await add_execution(store, agent, other_customer, WorkflowStatus.COMPLETED, 10)
    await set_created_at(store, stray, origin + timedelta(hours=2, minutes=59))
    # outside the window
    late = await add_execution(store, agent, customer, WorkflowStatus.COMPLETED, 10)
    await set_created_at(store, late, origin + timedelta(hours=6))

    buckets = await store.workflow_executions.trend(
        bucket=timedelta(hours=1), since=origin, until=origin + timedelta(hours=6), customer_id=customer.id
    )
    assert [b.start for b in buckets] == [origin + timedelta(hours=h) for h in range(6)]
    assert all(b.end - b.start == timedelta(hours=1) for b in buckets)
    for hour, bucket in enumerate(buckets):
        items = placed.get(hour, [])
        assert bucket.total == len(items)
        assert bucket.count_by_status == {s: sum(1 for st, _ in items if st is s) for s in WorkflowStatus}
        durations = [d for st, d in items if st in FINISHED]
        if durations:
            assert bucket.avg_duration_seconds == pytest.approx(pystats.fmean(durations))
        else:
            assert bucket.avg_duration_seconds is None
    assert [b.total for b in buckets] == [2, 1, 0, 3, 0, 1]

    unfiltered = await store.workflow_executions.trend(
        bucket=timedelta(hours=1), since=origin, until=origin + timedelta(hours=6)
    )
    assert [b.total for b in unfiltered] == [2, 1, 1, 3, 0, 1]


async def test_trend__origin_is_since_and_last_bucket_partial(store, agent, customer):
    origin = datetime(2026, 3, 1, 0, 7, tzinfo=UTC)
    row = await add_execution(store, agent, customer, WorkflowStatus.COMPLETED, 5)
    await set_created_at(store, row, origin + timedelta(minutes=44))
    buckets = await store.workflow_executions.trend(
        bucket=timedelta(minutes=30), since=origin, until=origin + timedelta(minutes=75)
    )
    assert [(b.start - origin, b.total) for b in buckets] == [
        (timedelta(0), 0),
        (timedelta(minutes=30), 1),
        (timedelta(minutes=60), 0),
    ]


async def test_trend__until_defaults_to_now(store, agent, customer):
    await add_execution(store, agent, customer, WorkflowStatus.COMPLETED, 5)
    buckets = await store.workflow_executions.trend(bucket=timedelta(days=1), since=NOW - timedelta(days=3))
    assert len(buckets) in (3, 4)
    assert sum(b.total for b in buckets) == 1 and buckets[-1].total == 1


async def test_trend__refuses_bad_buckets(store):
    repo = store.workflow_executions
    for bucket in (timedelta(0), timedelta(seconds=-1)):
        with pytest.raises(InvalidArgument, match="positive"):
            await repo.trend(bucket=bucket, since=NOW - timedelta(days=1), until=NOW)
    with pytest.raises(InvalidArgument, match="10,000"):
        await repo.trend(bucket=timedelta(seconds=1), since=NOW - timedelta(days=1), until=NOW)
    assert (
        len(await repo.trend(bucket=timedelta(minutes=1), since=NOW - timedelta(minutes=10_000), until=NOW)) == 10_000
    )
    with pytest.raises(InvalidArgument, match="since"):
        await repo.trend(bucket=timedelta(hours=1), since=datetime(2026, 1, 1))
    assert await repo.trend(bucket=timedelta(hours=1), since=NOW, until=NOW) == []


# -- performance -------------------------------------------------------------------------------------


async def add_step(store, execution, name, order, status, duration=None, retry_count=0, error_details=None):
    times = {}
    if status in (StepStatus.RUNNING, StepStatus.COMPLETED, StepStatus.FAILED):
        times["started_at"] = NOW - timedelta(minutes=30)
        if duration is not None:
            times["completed_at"] = times["started_at"] + timedelta(seconds=duration)
    return await store.workflow_steps.create(
        WorkflowStepCreate(
            workflow_execution_id=execution["id"],
            step_name=name,
            step_order=order,
            status=status,
            retry_count=retry_count,
            max_retries=max(3, retry_count),
            error_details=error_details,
            **times,
        )
    )


async def troubled_population(store, agent, customer):
    """Success rate 50%, a long duration tail, 'fetch' failing 3 of 10, retries mostly in 'deploy'."""
    executions = []
    durations = [10, 12, 14, 16, 18, 20, 22, 24, 3000, 4000]
    for i, duration in enumerate(durations):
        status = WorkflowStatus.COMPLETED if i % 2 == 0 else WorkflowStatus.FAILED
        details = None
        if status is WorkflowStatus.FAILED:
            details = (
                {"error_type": "Timeout", "error_message": f"took too long #{i}"} if i < 6 else {"error": f"boom #{i}"}
            )
        executions.append(await add_execution(store, agent, customer, status, duration, error_details=details))
    steps = []
    for i, execution in enumerate(executions):
        fetch_failed = i in (1, 3, 5)
        steps.append(
            (
                "fetch",
                StepStatus.FAILED if fetch_failed else StepStatus.COMPLETED,
                2 + i,
                0,
                {"error_type": "ConnectionError", "error_message": "refused"}
                if fetch_failed and i < 5
                else ({} if fetch_failed else None),
            )
        )
        steps.append(("deploy", StepStatus.COMPLETED, 100 + 10 * i, 2 if i < 3 else 0, None))
        steps.append(("report", StepStatus.COMPLETED, 1, 1 if i == 0 else 0, None))
        for order, (name, status, duration, retries, details) in enumerate(steps[-3:], start=1):
            await add_step(store, execution, name, order, status, duration, retries, details)
    return executions, steps


async def test_performance__figures_match_python(store, agent, customer):
    executions, steps = await troubled_population(store, agent, customer)
    perf = await store.workflow_executions.performance(customer_id=customer.id)

    durations = [e["duration"] for e in executions]
    bounds = [(0, 60), (60, 300), (300, 900), (900, 3600), (3600, math.inf)]
    assert [(b.label, b.count) for b in perf.duration_buckets] == [
        (label, sum(1 for d in durations if lo <= d < hi))
        for label, (lo, hi) in zip(["under 1 min", "1-5 min", "5-15 min", "15-60 min", "over 1 h"], bounds, strict=True)
    ]
    assert perf.duration_buckets[-1].max_seconds is None and perf.duration_buckets[0].min_seconds == 0
    assert perf.finished == 10 and perf.success_rate == 0.5
    assert perf.p50_duration_seconds == near(ranked(durations, 0.5))
    assert perf.p95_duration_seconds == near(ranked(durations, 0.95))

    patterns = {(p.source, p.error_type): p for p in perf.error_patterns}
    assert {k: p.count for k, p in patterns.items()} == {
        ("execution", "Timeout"): 3,
        ("execution", "unspecified"): 2,
        ("step", "ConnectionError"): 2,
        ("step", "unspecified"): 1,
    }
    assert patterns[("execution", "Timeout")].sample_message.startswith("took too long")
    assert patterns[("execution", "unspecified")].sample_message.startswith("boom")
    assert patterns[("step", "ConnectionError")].sample_message == "refused"
    assert patterns[("step", "unspecified")].sample_message is None
    assert all(p.last_seen.tzinfo is not None for p in perf.error_patterns)
    assert perf.error_patterns[0].count == 3  # most frequent first

    by_name: dict[str, list[float]] = {}
    for name, _, duration, _, _ in steps:
        by_name.setdefault(name, []).append(duration)
    expected = sorted(((ranked(v, 0.95), name, v) for name, v in by_name.items()), reverse=True)
    assert [(t.step_name, t.count) for t in perf.slowest_steps] == [(name, len(v)) for _, name, v in expected]
    for timing, (p95, _, values) in zip(perf.slowest_steps, expected, strict=True):
        assert timing.p95_seconds == near(p95)
        assert timing.avg_seconds == pytest.approx(pystats.fmean(values), rel=1e-12)

    assert [(h.step_name, h.steps, h.total_retries) for h in perf.retry_hotspots] == [
        ("deploy", 10, 6),
        ("report", 10, 1),
    ]
    assert perf.retry_hotspots[0].share_retried == pytest.approx(0.3)
    assert perf.retry_hotspots[1].share_retried == pytest.approx(0.1)


async def test_performance__tips_fire_for_each_rule(store, agent, customer):
    await troubled_population(store, agent, customer)
    tips = (await store.workflow_executions.performance(customer_id=customer.id)).tips
    assert len(tips) == 4, tips
    text = "\n".join(tips)
    assert "'fetch' failed in 3 of 10 runs (30%)" in text
    assert "'deploy' accounts for 6 of 7 retries (85.7%)" in text
    assert "p95 execution duration" in text and re.search(r"x the median \(1[89] s\)", text)
    assert "Success rate is 50% (5 of 10" in text


async def test_performance__healthy_runs_give_no_tips(store, agent, customer):
    for i in range(10):
        status = WorkflowStatus.FAILED if i == 0 else WorkflowStatus.COMPLETED
        execution = await add_execution(store, agent, customer, status, 100 + i)
        await add_step(
            store,
            execution,
            "fetch",
            1,
            StepStatus.FAILED if i < 2 else StepStatus.COMPLETED,
            5,
            error_details={"error_type": "ConnectionError"} if i < 2 else None,
        )
        await add_step(store, execution, "deploy", 2, StepStatus.COMPLETED, 50, retry_count=1 if i < 2 else 0)
        await add_step(store, execution, "report", 3, StepStatus.COMPLETED, 2, retry_count=1 if i < 2 else 0)
    perf = await store.workflow_executions.performance()
    assert perf.success_rate == 0.9
    assert perf.tips == []  # fetch fails 20% (not over), retries split 50/50, p95 close to the median


async def test_performance__empty_window(store, agent, customer):
    await troubled_population(store, agent, customer)
    perf = await store.workflow_executions.performance(until=NOW - timedelta(days=1), since=NOW - timedelta(days=2))
    assert perf.finished == 0 and perf.success_rate is None and perf.p50_duration_seconds is None
    assert [b.count for b in perf.duration_buckets] == [0] * 5
    assert perf.error_patterns == [] and perf.slowest_steps == [] and perf.retry_hotspots == []
    assert perf.tips == []


async def test_performance__filters_narrow_the_rows(store, agent, customer, other_customer):
    await troubled_population(store, agent, customer)
    await add_execution(store, agent, other_customer, WorkflowStatus.COMPLETED, 5)
    perf = await store.workflow_executions.performance(customer_id=other_customer.id)
    assert perf.finished == 1 and perf.success_rate == 1.0 and perf.error_patterns == []
    assert [b.count for b in perf.duration_buckets] == [1, 0, 0, 0, 0]
    everything = await store.workflow_executions.performance()
    assert everything.finished == 11


def test_performance_tips__thresholds_are_strict():
    base = dict(
        success_rate=0.8,
        completed=8,
        ended=10,
        p50=10.0,
        p95=30.0,
        step_failures=[{"step_name": "a", "runs": 5, "failed": 1}],
        hotspots=[],
        total_retries=0,
    )
    assert performance_tips(**base) == []
    assert len(performance_tips(**{**base, "p95": 31.0})) == 1
    assert performance_tips(**{**base, "p95": 30.4}) == []  # 3.04x prints as 3.0x: not over 3x
    assert len(performance_tips(**{**base, "success_rate": 0.79})) == 1
    assert len(performance_tips(**{**base, "step_failures": [{"step_name": "a", "runs": 5, "failed": 2}]})) == 1
    assert performance_tips(**{**base, "p50": 0.0}) == []


# -- indexes -----------------------------------------------------------------------------------------


INDEX_SCANS = {"Index Scan", "Index Only Scan", "Bitmap Heap Scan"}


def plan_nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


async def explain(conn, sql: str, *args) -> list[dict]:
    raw = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
    plan = json.loads(raw) if isinstance(raw, str) else raw
    return list(plan_nodes(plan[0]["Plan"]))


async def test_explain__statistics_and_list_for_one_customer_use_an_index(store, agent):
    customers = [
        await store.customers.create(CustomerCreate(name=f"Customer {i}", email=f"c{i}@example.com")) for i in range(20)
    ]
    await store.pool.execute(
        """
        INSERT INTO workflow_executions (agent_id, customer_id, workflow_type, status, started_at, completed_at,
                                         created_at)
        SELECT $1, ($2::uuid[])[1 + g % 20], 'health_check', 'completed',
               now() - g * interval '10 minutes', now() - g * interval '10 minutes' + interval '1 minute',
               now() - g * interval '10 minutes'
          FROM generate_series(1, 2000) AS g
        """,
        agent.id,
        [c.id for c in customers],
    )
    await store.pool.execute("ANALYZE workflow_executions")
    q = load("workflow_executions")
    one = customers[3].id
    plan = await store.pool.fetchrow(q.rollup_plan, None, None, False, True, one)  # the last 30 days
    statements = {
        "statistics": (q.statistics, [one, None, None, *plan[2:]]),
        "list": (q.list, [one, None, None, None, None, None, None, None, 51]),
    }
    async with store.pool.acquire() as conn:
        for name, (sql, args) in statements.items():
            nodes = await explain(conn, sql, *args)
            scans = [n for n in nodes if n.get("Relation Name") == "workflow_executions"]
            assert scans, name
            if any(n["Node Type"] == "Seq Scan" for n in scans):
                # a 2000-row table may be cheaper to read whole; the index must still be usable
                async with conn.transaction():
                    await conn.execute("SET LOCAL enable_seqscan = off")
                    nodes = await explain(conn, sql, *args)
                scans = [n for n in nodes if n.get("Relation Name") == "workflow_executions"]
            assert scans and all(n["Node Type"] in INDEX_SCANS for n in scans), (name, scans)
            used = [n["Index Name"] for n in nodes if "Index Name" in n]
            # the rollups are read by their key (nothing to read before maintain() runs)
            prefixes = ("workflow_executions_customer_id", "workflow_rollups_key")
            assert used and all(i.startswith(prefixes) for i in used), (name, used)
