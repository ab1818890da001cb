"""Figures on small samples, as users reported them wrong: percentiles are nearest-rank and exact up
to sketch.EXACT_UP_TO durations, from the raw tables and from the rollups alike; above it the
sketch's estimate stays between the minimum and maximum; rollups made before 0026 still answer;
the tips' words agree with the figures they print; one run is "1 run"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from optiinfra_store.commands.report import print_statistics
from optiinfra_store.enums import StepStatus, WorkflowType
from optiinfra_store.records import WorkflowStepCreate
from optiinfra_store.rules import sketch

NOW = datetime.now(UTC).replace(microsecond=0)
# two days ago: a whole day, hours and raw edges once maintain() has run; raw tables before
AT = (NOW - timedelta(days=2)).replace(hour=10, minute=0, second=0)
WINDOW = {"since": NOW - timedelta(days=5), "until": NOW}
SOURCES = pytest.mark.parametrize("rolled_up", [False, True], ids=["raw", "rolled up"])


async def add_executions(store, agent, customer, durations: list[float], statuses: list[str] | None = None):
    """Executions created at AT that ran `durations` seconds (completed unless `statuses` says), in one
    statement (its rows of one customer: one shard on a cluster)."""
    rows = list(zip(durations, statuses or ["completed"] * len(durations), strict=True))
    values = ", ".join(
        f"($1, $2, 'scaling_decision', ${4 + 2 * i}::workflow_status, $3::timestamptz,"
        f" $3::timestamptz + ${5 + 2 * i}::float8 * interval '1 second', $3::timestamptz)"
        for i in range(len(rows))
    )
    return await store.pool.fetch(
        "INSERT INTO workflow_executions (agent_id, customer_id, workflow_type, status, started_at, completed_at,"
        f" created_at) VALUES {values} RETURNING id",
        agent.id,
        customer.id,
        AT,
        *(value for d, status in rows for value in (status, d)),
    )


async def read_from(store, rolled_up: bool) -> None:
    """Roll the history up (and check the window will read rollups), or leave it to the raw tables."""
    if rolled_up:
        assert (await store.maintain()).rollup_hours > 0
        assert await store.pool.fetchval("SELECT count(*) FROM workflow_rollups WHERE width = 'day'") > 0
    else:
        assert await store.pool.fetchval("SELECT count(*) FROM workflow_rollups") == 0


@SOURCES
async def test_three_runs__p50_and_p95_are_the_runs_at_their_nearest_rank(store, agent, customer, rolled_up):
    # reported: runs of 5, 15 and 20 min showed p50 15m02s and p95 15m02s
    await add_executions(store, agent, customer, [300.0, 900.0, 1200.0])
    await read_from(store, rolled_up)
    stats = await store.workflow_executions.statistics(**WINDOW)
    for figures in (stats, stats.by_type[WorkflowType.SCALING_DECISION]):
        assert (figures.p50_duration_seconds, figures.p95_duration_seconds) == (900.0, 1200.0)
        assert figures.max_duration_seconds == 1200.0
    perf = await store.workflow_executions.performance(**WINDOW)
    assert (perf.p50_duration_seconds, perf.p95_duration_seconds) == (900.0, 1200.0)
    by_customer = await store.workflow_executions.statistics(customer_id=customer.id, agent_id=agent.id, **WINDOW)
    assert (by_customer.p50_duration_seconds, by_customer.p95_duration_seconds) == (900.0, 1200.0)


@SOURCES
async def test_one_run__every_percentile_is_that_run(store, agent, customer, rolled_up):
    # reported: one run of 20m00s showed p50 = p95 = 19m47s
    await add_executions(store, agent, customer, [1200.0])
    await read_from(store, rolled_up)
    stats = await store.workflow_executions.statistics(**WINDOW)
    assert stats.p50_duration_seconds == stats.p95_duration_seconds == stats.max_duration_seconds == 1200.0
    assert stats.avg_duration_seconds == 1200.0
    perf = await store.workflow_executions.performance(customer_id=customer.id, **WINDOW)
    assert perf.p50_duration_seconds == perf.p95_duration_seconds == 1200.0


@SOURCES
async def test_one_step_run__its_p95_is_its_duration_and_the_report_says_1_run(
    store, agent, customer, rolled_up, capsys
):
    # reported: "slow step execute_scaling: 1 runs, avg 13m00s, p95 12m51s"
    [execution] = await add_executions(store, agent, customer, [900.0])
    await store.workflow_steps.create(
        WorkflowStepCreate(
            workflow_execution_id=execution["id"],
            step_name="execute_scaling",
            step_order=1,
            status=StepStatus.COMPLETED,
            started_at=AT,
            completed_at=AT + timedelta(minutes=13),
        )
    )
    await read_from(store, rolled_up)
    for scope in ({}, {"customer_id": customer.id}, {"agent_id": agent.id}):
        [timing] = (await store.workflow_executions.performance(**scope, **WINDOW)).slowest_steps
        assert (timing.step_name, timing.count, timing.avg_seconds, timing.p95_seconds) == (
            "execute_scaling",
            1,
            780.0,
            780.0,
        )
    await print_statistics(store, since=WINDOW["since"])
    assert "slow step execute_scaling: 1 run, avg 13m00s, p95 13m00s" in capsys.readouterr().out


@SOURCES
@pytest.mark.parametrize(
    ("completed", "failed", "tip"),
    [
        (159, 41, "Success rate is 79.5% (159 of 200 finished executions completed), below 80%."),
        (160, 40, None),
        (1, 1, "Success rate is 50% (1 of 2 finished executions completed), below 80%."),
        (0, 1, "Success rate is 0% (0 of 1 finished execution completed), below 80%."),
    ],
)
async def test_success_rate_tip__says_the_rate_it_compares(store, agent, customer, rolled_up, completed, failed, tip):
    # reported: "Success rate is 80% ... below 80%" at 79.5%
    await add_executions(
        store, agent, customer, [60.0] * (completed + failed), ["completed"] * completed + ["failed"] * failed
    )
    await read_from(store, rolled_up)
    tips = (await store.workflow_executions.performance(**WINDOW)).tips
    assert [t for t in tips if t.startswith("Success rate")] == ([tip] if tip else [])


@SOURCES
async def test_exact_up_to_the_threshold__then_the_sketch_between_min_and_max(store, agent, customer, rolled_up):
    durations = [float(10 + 7 * i) for i in range(sketch.EXACT_UP_TO)]
    rows = await add_executions(store, agent, customer, durations)
    await read_from(store, rolled_up)
    stats = await store.workflow_executions.statistics(**WINDOW)
    # nearest rank: p50 the 50th of 100, p95 the 95th
    assert (stats.p50_duration_seconds, stats.p95_duration_seconds) == (durations[49], durations[94])

    # one more: the sketch takes over, within its error and never beyond the extremes
    await store.pool.execute(
        "DELETE FROM workflow_executions WHERE customer_id = $1 AND id = $2", customer.id, rows[0]["id"]
    )
    await add_executions(store, agent, customer, [1234.5] * 2)
    if rolled_up:
        await store.maintain()
    stats = await store.workflow_executions.statistics(**WINDOW)
    values = sorted([*durations[1:], 1234.5, 1234.5])
    assert len(values) == sketch.EXACT_UP_TO + 1
    assert stats.p50_duration_seconds == pytest.approx(values[50], rel=sketch.RELATIVE_ERROR * 1.0001)
    assert stats.p95_duration_seconds == pytest.approx(values[95], rel=sketch.RELATIVE_ERROR * 1.0001)
    assert stats.p50_duration_seconds != values[50] or stats.p95_duration_seconds != values[95]  # estimated
    perf = await store.workflow_executions.performance(**WINDOW)
    assert (perf.p50_duration_seconds, perf.p95_duration_seconds) == (
        stats.p50_duration_seconds,
        stats.p95_duration_seconds,
    )


@SOURCES
async def test_above_the_threshold__a_sample_of_one_value_reads_that_value(store, agent, customer, rolled_up):
    # a sketch bucket's middle is not its values: clamped to min and max, 101 runs of 1200 s read 1200 s
    [execution, *_] = await add_executions(store, agent, customer, [1200.0] * (sketch.EXACT_UP_TO + 1))
    for order in range(sketch.EXACT_UP_TO + 1):
        await store.pool.execute(
            """INSERT INTO workflow_steps (customer_id, workflow_execution_id, step_name, step_order, status, started_at,
                                          completed_at)
               VALUES ($4, $1, 'execute_scaling', $2, 'completed', $3::timestamptz, $3::timestamptz + interval '13 minutes')""",
            execution["id"],
            order + 1,
            AT,
            customer.id,
        )
    await read_from(store, rolled_up)
    if rolled_up:
        assert await store.pool.fetchval("SELECT count(duration_sample) FROM workflow_rollups WHERE width = 'day'") == 0
    stats = await store.workflow_executions.statistics(**WINDOW)
    assert stats.p50_duration_seconds == stats.p95_duration_seconds == 1200.0
    perf = await store.workflow_executions.performance(**WINDOW)
    assert perf.p50_duration_seconds == perf.p95_duration_seconds == 1200.0
    assert [(t.count, t.p95_seconds) for t in perf.slowest_steps] == [(sketch.EXACT_UP_TO + 1, 780.0)]


async def test_rollups_made_before_0026__still_answer_from_the_sketch(store, agent, customer):
    durations = [300.0, 900.0, 1200.0]
    [execution, *_] = await add_executions(store, agent, customer, durations)
    await store.workflow_steps.create(
        WorkflowStepCreate(
            workflow_execution_id=execution["id"],
            step_name="execute_scaling",
            step_order=1,
            status=StepStatus.COMPLETED,
            started_at=AT,
            completed_at=AT + timedelta(minutes=13),
        )
    )
    await read_from(store, rolled_up=True)
    # and a shorter run of the step in the current hour, from the raw tables
    [recent] = await store.pool.fetch(
        """INSERT INTO workflow_executions (agent_id, customer_id, workflow_type, status) VALUES ($1, $2, 'scaling_decision', 'pending')
           RETURNING id""",
        agent.id,
        customer.id,
    )
    await store.workflow_steps.create(
        WorkflowStepCreate(
            workflow_execution_id=recent["id"],
            step_name="execute_scaling",
            step_order=1,
            status=StepStatus.COMPLETED,
            started_at=NOW,
            completed_at=NOW + timedelta(minutes=1),
        )
    )
    # what 0014's function wrote: no minimum, no sample (nor a step maximum)
    await store.pool.execute("UPDATE workflow_rollups SET duration_min = NULL, duration_sample = NULL")
    await store.pool.execute(
        "UPDATE workflow_step_rollups SET duration_min = NULL, duration_max = NULL, duration_sample = NULL"
    )
    window = {**WINDOW, "until": datetime.now(UTC) + timedelta(minutes=5)}  # the recent one included
    stats = await store.workflow_executions.statistics(**window)
    assert stats.p50_duration_seconds == pytest.approx(900.0, rel=sketch.RELATIVE_ERROR * 1.0001)
    assert stats.p95_duration_seconds == pytest.approx(1200.0, rel=sketch.RELATIVE_ERROR * 1.0001)
    assert stats.p95_duration_seconds <= stats.max_duration_seconds == 1200.0  # kept under the exact maximum
    perf = await store.workflow_executions.performance(**window)
    assert perf.p95_duration_seconds == pytest.approx(1200.0, rel=sketch.RELATIVE_ERROR * 1.0001)
    [timing] = perf.slowest_steps
    # p95 of 13 min and 1 min: 13 min (the 1 min run is not the maximum of the step)
    assert timing.count == 2 and timing.p95_seconds == pytest.approx(780.0, rel=sketch.RELATIVE_ERROR * 1.0001)

    # rolled up again, they are exact again
    await store.pool.execute("INSERT INTO workflow_rollup_pending (hour) VALUES ($1)", AT)
    await store.maintain()
    stats = await store.workflow_executions.statistics(**WINDOW)
    assert (stats.p50_duration_seconds, stats.p95_duration_seconds) == (900.0, 1200.0)
