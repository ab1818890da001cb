"""Analytics from rollups: statistics(), performance() and trend() answer the same whether they read
the rollups maintain() keeps or the raw tables alone, on randomised histories and after late
changes (a late completion, a retry, an imported execution, a purge); window boundaries are exact;
a writer in flight holds maintain() back; a confined store reads the rollups through row-level
security."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from optiinfra_store.enums import StepStatus, WorkflowStatus, WorkflowType
from optiinfra_store.records import AgentCreate, CustomerCreate, WorkflowExecutionCreate, WorkflowStepCreate

FINISHED = [WorkflowStatus.COMPLETED, WorkflowStatus.FAILED, WorkflowStatus.CANCELLED, WorkflowStatus.TIMEOUT]
TYPES = [WorkflowType.COST_ANALYSIS, WorkflowType.HEALTH_CHECK, WorkflowType.PERFORMANCE_TUNING]
STEPS = ["fetch", "analyze", "apply", "report"]
ERRORS = [None, {"error_type": "Timeout", "error_message": "took too long"}, {"error_type": "OOM"}, {"error": "x"}]


def hour(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


NOW = datetime.now(UTC)
UNTIL = NOW  # analytics windows end here: every earlier closed hour can be rolled up
SINCE = NOW - timedelta(hours=75, minutes=17)  # not on an hour: raw edge, hours, days, hours, raw edge


async def create_at(store, at: datetime, **fields: Any):
    execution = await store.workflow_executions.create(WorkflowExecutionCreate(**fields))
    await store.pool.execute(
        "UPDATE workflow_executions SET created_at = $3 WHERE customer_id = $1 AND id = $2",
        execution.customer_id,
        execution.id,
        at,
    )
    return execution


async def random_history(store, rng: random.Random, customers, agents, count: int) -> None:
    """`count` executions created over the last ~80 hours, in every status (cancelled ones with and
    without a start), with steps in every status, retries and error details."""
    for _ in range(count):
        created = NOW - timedelta(seconds=rng.uniform(0, 80 * 3600))
        status = rng.choice([WorkflowStatus.PENDING, WorkflowStatus.RUNNING, *FINISHED, *FINISHED])
        started = created + timedelta(seconds=rng.uniform(0, 60))
        times: dict[str, Any] = {}
        if status is not WorkflowStatus.PENDING and not (status is WorkflowStatus.CANCELLED and rng.random() < 0.4):
            times["started_at"] = started
            if status in FINISHED:
                duration = rng.choice([0.0, rng.uniform(0.001, 5), rng.uniform(5, 4000), rng.uniform(3000, 9000)])
                times["completed_at"] = started + timedelta(seconds=duration)
        error = rng.choice(ERRORS) if status is WorkflowStatus.FAILED else None
        execution = await create_at(
            store,
            created,
            agent_id=rng.choice(agents).id,
            customer_id=rng.choice(customers).id,
            workflow_type=rng.choice(TYPES),
            status=status,
            error_details=error,
            **times,
        )
        for order, name in enumerate(rng.sample(STEPS, rng.randint(0, len(STEPS))), start=1):
            step_status = rng.choice(list(StepStatus))
            step_times: dict[str, Any] = {}
            if step_status not in (StepStatus.PENDING, StepStatus.SKIPPED) or rng.random() < 0.3:
                step_times["started_at"] = started + timedelta(seconds=order)
                if step_status in (StepStatus.COMPLETED, StepStatus.FAILED):
                    step_times["completed_at"] = step_times["started_at"] + timedelta(seconds=rng.uniform(0, 900))
            retries = rng.choice([0, 0, 1, 3])
            await store.workflow_steps.create(
                WorkflowStepCreate(
                    workflow_execution_id=execution.id,
                    step_name=name,
                    step_order=order,
                    status=step_status,
                    retry_count=retries,
                    max_retries=3,
                    error_details=rng.choice(ERRORS) if step_status is StepStatus.FAILED else None,
                    **step_times,
                )
            )


async def answers(store, customer, agent) -> dict[str, Any]:
    """Every analytics call the rollups serve, with and without filters, for one fixed window."""
    repo = store.workflow_executions
    window = {"since": SINCE, "until": UNTIL}
    midnight = hour(NOW - timedelta(days=3)).replace(hour=0)
    return {
        "statistics": await repo.statistics(**window),
        "statistics by customer": await repo.statistics(customer_id=customer.id, **window),
        "statistics by agent": await repo.statistics(agent_id=agent.id, **window),
        "statistics by type": await repo.statistics(workflow_type=TYPES[0], **window),
        "performance": await repo.performance(**window),
        "performance by customer": await repo.performance(customer_id=customer.id, **window),
        "performance by agent": await repo.performance(agent_id=agent.id, **window),
        "trend hourly": await repo.trend(bucket=timedelta(hours=1), since=hour(SINCE), until=UNTIL),
        "trend daily": await repo.trend(bucket=timedelta(days=1), since=midnight, until=UNTIL),
        "trend daily by customer": await repo.trend(
            bucket=timedelta(days=1), since=midnight, until=UNTIL, customer_id=customer.id
        ),
        "trend 90 min": await repo.trend(bucket=timedelta(minutes=90), since=SINCE, until=UNTIL),
    }


async def raw_answers(store, customer, agent) -> dict[str, Any]:
    """The same calls with no rollups at all: everything from the raw tables."""
    await store.pool.execute(
        "TRUNCATE workflow_rollups, workflow_step_rollups, workflow_error_rollups, workflow_rollup_pending;"
        " UPDATE workflow_rollup_state SET rolled_up_to = NULL"
    )
    return await answers(store, customer, agent)


async def rolled_up_rows(store) -> int:
    return await store.pool.fetchval("SELECT count(*) FROM workflow_rollups")


async def pending_hours(store) -> int:
    """Hours rolled up and marked since: what the next maintain() rolls up again. (A Citus cluster
    also keeps the marks of hours not rolled up yet: a writer's lock is on its worker, where
    maintain() cannot see it, so every write marks its hour, and those marks change nothing.)"""
    return await store.pool.fetchval(
        "SELECT count(DISTINCT p.hour) FROM workflow_rollup_pending p, workflow_rollup_state s"
        " WHERE p.hour < s.rolled_up_to"
    )


@pytest.fixture
async def fleet(store):
    customers = [
        await store.customers.create(CustomerCreate(name=f"C{i}", email=f"c{i}@rollups.example")) for i in range(3)
    ]
    agents = [await store.agents.create(AgentCreate(type="cost", name=f"A{i}", version="1")) for i in range(3)]
    return customers, agents


def assert_same(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    assert actual.keys() == expected.keys()
    for name in expected:
        assert actual[name] == expected[name], name


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_rollups__answer_exactly_as_the_raw_tables_before_and_after_late_changes(store, fleet, seed):
    rng = random.Random(seed)
    customers, agents = fleet
    await random_history(store, rng, customers, agents, 60)

    report = await store.maintain()
    assert report.rollup_hours >= 75 and await rolled_up_rows(store) > 0 and await pending_hours(store) == 0
    rolled = await answers(store, customers[0], agents[0])
    assert rolled["statistics"].total > 0
    assert_same(rolled, await raw_answers(store, customers[0], agents[0]))

    await store.maintain()
    # late changes to hours already rolled up
    repo = store.workflow_executions
    running = await store.pool.fetch("SELECT id FROM workflow_executions WHERE status = 'running' LIMIT 2")
    for row in running:
        await repo.complete(row["id"], {"late": True})
    failed_step = await store.pool.fetchval("SELECT id FROM workflow_steps WHERE status = 'failed' AND retry_count < 3")
    if failed_step is not None:
        await store.workflow_steps.retry(failed_step)
    await create_at(
        store,
        NOW - timedelta(hours=50),
        agent_id=agents[1].id,
        customer_id=customers[0].id,
        workflow_type=TYPES[1],
        status=WorkflowStatus.FAILED,
        started_at=NOW - timedelta(hours=50),
        completed_at=NOW - timedelta(hours=49),
        error_details={"error_type": "Imported", "error_message": "from the old system"},
    )
    await repo.purge(finished_before=NOW - timedelta(hours=60))
    assert await pending_hours(store) > 0

    marked = await answers(store, customers[0], agents[0])  # the marked hours from the raw tables
    assert (await store.maintain()).rollup_hours > 0 and await pending_hours(store) == 0
    refreshed = await answers(store, customers[0], agents[0])
    raw = await raw_answers(store, customers[0], agents[0])
    assert_same(marked, raw)
    assert_same(refreshed, raw)


async def add(store, fleet, at: datetime, status=WorkflowStatus.COMPLETED, seconds: float = 10.0, **extra: Any):
    customers, agents = fleet
    times: dict[str, Any] = {}
    if status is not WorkflowStatus.PENDING:
        times = {"started_at": at, "completed_at": at + timedelta(seconds=seconds)} if status in FINISHED else {}
        if status is WorkflowStatus.RUNNING:
            times = {"started_at": at}
    fields = {"agent_id": agents[0].id, "customer_id": customers[0].id, "workflow_type": TYPES[0]}
    return await create_at(store, at, status=status, **{**fields, **times, **extra})


@pytest.mark.parametrize("rolled_up", [False, True], ids=["raw", "rolled up"])
@pytest.mark.parametrize("on_the_hour", [True, False], ids=["on the hour", "mid-hour"])
async def test_windows__include_since_and_exclude_until_exactly(store, fleet, rolled_up, on_the_hour):
    since = hour(NOW - timedelta(hours=30)) + (timedelta() if on_the_hour else timedelta(minutes=23, microseconds=7))
    until = hour(NOW - timedelta(hours=3)) + (timedelta() if on_the_hour else timedelta(minutes=41, microseconds=3))
    tick = timedelta(microseconds=1)
    for at in (since - tick, since, since + tick, until - tick, until, until + tick):
        await add(store, fleet, at)
    if rolled_up:
        await store.maintain()
        assert await rolled_up_rows(store) > 0
    repo = store.workflow_executions
    assert (await repo.statistics(since=since, until=until)).total == 3  # since, since + 1 µs, until - 1 µs
    assert (await repo.performance(since=since, until=until)).finished == 3
    width = until - since
    (only,) = await repo.trend(bucket=width, since=since, until=until)
    assert only.total == 3


async def test_purge__an_execution_finished_exactly_at_the_cutoff_stays(store, fleet):
    cutoff = hour(NOW - timedelta(hours=10)) + timedelta(minutes=5)
    tick = timedelta(microseconds=1)
    before = await add(store, fleet, cutoff - timedelta(seconds=10) - tick)  # finished 1 µs before the cutoff
    exact = await add(store, fleet, cutoff - timedelta(seconds=10))  # finished exactly at it
    await store.maintain()
    report = await store.workflow_executions.purge(finished_before=cutoff)
    assert report.executions == 1
    left = {row["id"] for row in await store.pool.fetch("SELECT id FROM workflow_executions")}
    assert left == {exact.id} and before.id not in left
    await store.maintain()
    stats = await store.workflow_executions.statistics(since=cutoff - timedelta(hours=1), until=UNTIL)
    assert stats.total == 1  # the purged one is gone from the rollups too


@pytest.mark.parametrize("rolled_up", [False, True], ids=["raw", "rolled up"])
async def test_performance__an_execution_cancelled_before_it_started_ends_but_has_no_duration(store, fleet, rolled_up):
    at = hour(NOW - timedelta(hours=20)) + timedelta(minutes=10)
    await add(store, fleet, at, WorkflowStatus.COMPLETED, seconds=30)
    await add(store, fleet, at + timedelta(minutes=1), WorkflowStatus.CANCELLED, started_at=None, completed_at=None)
    if rolled_up:
        await store.maintain()
    perf = await store.workflow_executions.performance(since=at - timedelta(hours=30), until=UNTIL)
    assert perf.finished == 1  # with a duration
    assert perf.success_rate == 0.5  # 1 completed of 2 ended
    stats = await store.workflow_executions.statistics(since=at - timedelta(hours=30), until=UNTIL)
    assert stats.count_by_status[WorkflowStatus.CANCELLED] == 1 and stats.avg_duration_seconds == 30.0


async def test_maintain__concurrent_runs_roll_each_hour_up_once_and_agree(store, fleet, session_store):
    rng = random.Random(7)
    customers, agents = fleet
    await random_history(store, rng, customers, agents, 20)
    oldest = await store.pool.fetchval("SELECT min(created_at) FROM workflow_executions")
    reports = await asyncio.gather(*(s.maintain() for s in (store, session_store, store, session_store)))
    closed = hour(datetime.now(UTC))
    assert sum(r.rollup_hours for r in reports) == (closed - hour(oldest)) // timedelta(hours=1)  # each once
    assert await store.pool.fetchval(
        "SELECT count(*) = count(DISTINCT (width, customer_id, agent_id, bucket, workflow_type)) FROM workflow_rollups"
    )
    assert_same(await answers(store, customers[0], agents[0]), await raw_answers(store, customers[0], agents[0]))


async def test_maintain__leaves_an_hour_with_a_writer_in_flight_for_the_next_run(store, fleet):
    customers, agents = fleet
    await store.maintain()
    closed = hour(datetime.now(UTC)) - timedelta(hours=1)
    await store.pool.execute("UPDATE workflow_rollup_state SET rolled_up_to = $1", closed)  # the last hour is open
    window = {"since": closed, "until": closed + timedelta(hours=1)}
    async with store.pool.acquire() as writer:
        tx = writer.transaction()
        await tx.start()
        # a write into the hour maintain() would roll up next, not committed yet
        await writer.execute(
            "INSERT INTO workflow_executions (agent_id, customer_id, workflow_type, status, created_at)"
            " VALUES ($1, $2, 'health_check', 'pending', $3)",
            agents[0].id,
            customers[0].id,
            closed + timedelta(minutes=30),
        )
        assert (await asyncio.wait_for(store.maintain(), 5)).rollup_hours == 0  # not waiting for it either
        assert await store.pool.fetchval("SELECT rolled_up_to FROM workflow_rollup_state") == closed
        await tx.commit()
    assert (await store.workflow_executions.statistics(**window)).total == 1  # from the raw table meanwhile
    assert (await store.maintain()).rollup_hours == 1
    assert (await store.workflow_executions.statistics(**window)).total == 1
    hourly = "SELECT sum(total) FROM workflow_rollups WHERE width = 'hour' AND workflow_type IS NULL"
    assert await store.pool.fetchval(hourly) == 1


async def test_truncating_the_executions__empties_the_rollups(store, fleet):
    customers, agents = fleet
    await random_history(store, random.Random(5), customers, agents, 5)
    await store.maintain()
    assert await rolled_up_rows(store) > 0
    await store.pool.execute("TRUNCATE workflow_executions CASCADE")
    assert await rolled_up_rows(store) == 0
    assert await store.pool.fetchval("SELECT rolled_up_to FROM workflow_rollup_state") is None
    assert (await store.workflow_executions.statistics(since=SINCE, until=UNTIL)).total == 0


async def test_confined_store__reads_its_customers_rollups_only(store, fleet):
    rng = random.Random(11)
    customers, agents = fleet
    await random_history(store, rng, customers, agents, 30)
    await store.maintain()
    confined = store.for_customer(customers[0].id)
    window = {"since": SINCE, "until": UNTIL}
    mine = await store.workflow_executions.statistics(customer_id=customers[0].id, **window)
    assert await confined.workflow_executions.statistics(**window) == mine
    assert await confined.workflow_executions.performance(**window) == await store.workflow_executions.performance(
        customer_id=customers[0].id, **window
    )
    # another customer's figures: nothing, as from the raw tables
    theirs = await confined.workflow_executions.statistics(customer_id=customers[1].id, **window)
    assert theirs.total == 0
    async with store.pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT optiinfra_confine($1)", customers[0].id)
        for table in ("workflow_rollups", "workflow_step_rollups", "workflow_error_rollups"):
            seen = {row[0] for row in await conn.fetch(f"SELECT DISTINCT customer_id FROM {table}")}
            assert seen == {customers[0].id}, table  # not the others', not the all-customer rows


async def test_rollup_plan__a_confined_transaction_reads_its_own_customers_marks_whoever_it_asks_for(store, fleet):
    customers, agents = fleet
    mine, theirs = customers[0].id, customers[1].id
    day = hour(NOW).replace(hour=0) - timedelta(days=2)
    await create_at(store, day + timedelta(hours=3), agent_id=agents[0].id, customer_id=mine, workflow_type=TYPES[0])
    await store.maintain()
    # another customer's late change in that day (as a Citus cluster marks it: for that customer)
    await store.pool.execute(
        "INSERT INTO workflow_rollup_pending (customer_id, hour) VALUES ($1, $2)", theirs, day + timedelta(hours=5)
    )
    query = "SELECT array_agg(lo) FILTER (WHERE kind = 'day') FROM optiinfra_rollup_plan($1, $2, false, true, $3)"
    window = (day - timedelta(days=1), day + timedelta(days=2))
    assert day not in await store.pool.fetchval(query, *window, theirs)  # their day is read raw
    assert day in await store.pool.fetchval(query, *window, mine)
    async with store.pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT optiinfra_confine($1)", mine)
        assert day in await conn.fetchval(query, *window, theirs)  # its own plan: nothing of theirs shows
        assert day in await conn.fetchval(query, *window, None)
