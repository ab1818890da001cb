"""Retention: purging old finished workflow executions (with everything that hangs off them) and old
metric points, in batches, from the API and the `optiinfra-store purge` command."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from optiinfra_store.commands import cli
from optiinfra_store.enums import ArtifactType, StepStatus, WorkflowStatus, WorkflowType
from optiinfra_store.errors import InvalidArgument
from optiinfra_store.records import (
    AgentMetricCreate,
    PurgeReport,
    WorkflowArtifactCreate,
    WorkflowExecutionCreate,
    WorkflowStepCreate,
)

NOW = datetime.now(UTC)
CUTOFF = NOW - timedelta(days=30)
OLD = NOW - timedelta(days=100)
TABLES = ("workflow_executions", "workflow_steps", "workflow_artifacts", "workflow_transitions")


async def make_execution(store, agent, customer, status: WorkflowStatus, *, at: datetime, steps: int = 2):
    """An imported execution started at `at` (finished an hour later unless pending or running), with
    `steps` steps (one of them run through start/complete for extra transitions), an artifact of the
    execution and one of its first step."""
    finished = status not in (WorkflowStatus.PENDING, WorkflowStatus.RUNNING)
    execution = await store.workflow_executions.create(
        WorkflowExecutionCreate(
            agent_id=agent.id,
            customer_id=customer.id,
            workflow_type=WorkflowType.COST_ANALYSIS,
            status=status,
            started_at=at,
            completed_at=at + timedelta(hours=1) if finished else None,
        )
    )
    step_ids = []
    for order in range(1, steps + 1):
        step = await store.workflow_steps.create(
            WorkflowStepCreate(
                workflow_execution_id=execution.id,
                step_name=f"step_{order}",
                step_order=order,
                status=StepStatus.COMPLETED if order > 1 else StepStatus.PENDING,
                started_at=at if order > 1 else None,
                completed_at=at if order > 1 else None,
            )
        )
        step_ids.append(step.id)
    if step_ids:
        await store.workflow_steps.start(step_ids[0])
        await store.workflow_steps.complete(step_ids[0])
    await store.workflow_artifacts.create(
        WorkflowArtifactCreate(
            workflow_execution_id=execution.id,
            artifact_type=ArtifactType.REPORT,
            artifact_name="report",
            artifact_path="s3://bucket/report.json",
        )
    )
    if step_ids:
        await store.workflow_artifacts.create(
            WorkflowArtifactCreate(
                workflow_execution_id=execution.id,
                workflow_step_id=step_ids[0],
                artifact_type=ArtifactType.LOG,
                artifact_name="log",
                artifact_path="s3://bucket/step.log",
            )
        )
    return execution


async def table_counts(dsn: str, execution_ids=None) -> dict[str, int]:
    """Rows per table, optionally only those of the given executions (counted with plain SQL)."""
    conn = await asyncpg.connect(dsn)
    try:
        result = {}
        for table in TABLES:
            column = "id" if table == "workflow_executions" else "workflow_execution_id"
            if execution_ids is None:
                result[table] = await conn.fetchval(f"SELECT count(*) FROM {table}")
            else:
                result[table] = await conn.fetchval(
                    f"SELECT count(*) FROM {table} WHERE {column} = ANY($1::uuid[])", list(execution_ids)
                )
        return result
    finally:
        await conn.close()


def as_report(counts: dict[str, int]) -> PurgeReport:
    return PurgeReport(
        executions=counts["workflow_executions"],
        steps=counts["workflow_steps"],
        artifacts=counts["workflow_artifacts"],
        transitions=counts["workflow_transitions"],
    )


async def remaining_ids(dsn: str) -> set:
    conn = await asyncpg.connect(dsn)
    try:
        return {row["id"] for row in await conn.fetch("SELECT id FROM workflow_executions")}
    finally:
        await conn.close()


@pytest.fixture
async def history(store, agent, customer):
    """One execution per finished status, long finished; a recent one; and old pending and running ones."""
    made = {}
    for status in (WorkflowStatus.COMPLETED, WorkflowStatus.FAILED, WorkflowStatus.CANCELLED, WorkflowStatus.TIMEOUT):
        made[f"old_{status.value}"] = await make_execution(store, agent, customer, status, at=OLD)
    made["recent_completed"] = await make_execution(
        store, agent, customer, WorkflowStatus.COMPLETED, at=NOW - timedelta(days=2)
    )
    made["just_before_cutoff"] = await make_execution(
        store, agent, customer, WorkflowStatus.COMPLETED, at=CUTOFF - timedelta(hours=1, seconds=1), steps=0
    )
    # finished an hour after the cutoff: inside the CLI's "30d" window for the first hour of the session
    made["just_after_cutoff"] = await make_execution(
        store, agent, customer, WorkflowStatus.COMPLETED, at=CUTOFF, steps=0
    )
    made["old_pending"] = await make_execution(store, agent, customer, WorkflowStatus.PENDING, at=OLD)
    made["old_running"] = await make_execution(store, agent, customer, WorkflowStatus.RUNNING, at=OLD)
    return made


async def test_purge__removes_old_finished_executions_with_steps_artifacts_and_transitions(store, clean_dsn, history):
    doomed = ["old_completed", "old_failed", "old_cancelled", "old_timeout", "just_before_cutoff"]
    expected = await table_counts(clean_dsn, [history[name].id for name in doomed])
    before = await table_counts(clean_dsn)
    assert expected["workflow_steps"] == 8 and expected["workflow_artifacts"] == 9
    assert expected["workflow_transitions"] == 4 * (1 + 2 + 2) + 1  # insert of each row + one step's run

    report = await store.workflow_executions.purge(finished_before=CUTOFF)

    assert report == as_report(expected)
    after = await table_counts(clean_dsn)
    assert after == {table: before[table] - expected[table] for table in TABLES}
    assert await remaining_ids(clean_dsn) == {
        history[name].id for name in ("recent_completed", "just_after_cutoff", "old_pending", "old_running")
    }
    assert await table_counts(clean_dsn, [history[name].id for name in doomed]) == dict.fromkeys(TABLES, 0)
    # nothing left to do
    assert await store.workflow_executions.purge(finished_before=CUTOFF) == PurgeReport()


async def test_purge__never_touches_pending_or_running_however_old(store, clean_dsn, history):
    await store.workflow_executions.purge(finished_before=NOW + timedelta(days=1))
    remaining = await remaining_ids(clean_dsn)
    assert remaining == {history["old_pending"].id, history["old_running"].id}
    # a running execution left with a stale completed_at (raw SQL) is still not finished
    conn = await asyncpg.connect(clean_dsn)
    try:
        await conn.execute("UPDATE workflow_executions SET completed_at = started_at WHERE status = 'running'")
    finally:
        await conn.close()
    assert await store.workflow_executions.purge(finished_before=NOW + timedelta(days=1)) == PurgeReport()
    assert await remaining_ids(clean_dsn) == remaining


async def test_purge__keep_failed_keeps_failed_and_timed_out(store, clean_dsn, history):
    report = await store.workflow_executions.purge(finished_before=CUTOFF, keep_failed=True)
    assert report.executions == 3  # completed, cancelled, just_before_cutoff
    remaining = await remaining_ids(clean_dsn)
    assert {history["old_failed"].id, history["old_timeout"].id} <= remaining
    assert history["old_completed"].id not in remaining and history["old_cancelled"].id not in remaining


async def test_purge__dry_run_changes_nothing_and_predicts_the_real_run(store, clean_dsn, history):
    before = await table_counts(clean_dsn)
    for keep_failed in (True, False):
        predicted = await store.workflow_executions.purge(finished_before=CUTOFF, keep_failed=keep_failed, dry_run=True)
        assert await table_counts(clean_dsn) == before
        assert predicted.executions == (3 if keep_failed else 2)  # then the failed and timed out
        assert predicted.transitions > predicted.executions
        removed = await store.workflow_executions.purge(finished_before=CUTOFF, keep_failed=keep_failed)
        assert removed == predicted
        before = await table_counts(clean_dsn)


async def test_purge__small_batches_give_the_same_result(store, clean_dsn, agent, customer):
    for i in range(7):
        await make_execution(store, agent, customer, WorkflowStatus.COMPLETED, at=OLD + timedelta(minutes=i))
    keep = await make_execution(store, agent, customer, WorkflowStatus.RUNNING, at=OLD)
    expected = await store.workflow_executions.purge(finished_before=CUTOFF, dry_run=True)
    assert expected == PurgeReport(executions=7, steps=14, artifacts=14, transitions=7 * 5)

    assert await store.workflow_executions.purge(finished_before=CUTOFF, batch_size=2) == expected
    assert await remaining_ids(clean_dsn) == {keep.id}
    assert await table_counts(clean_dsn) == {
        "workflow_executions": 1,
        "workflow_steps": 2,
        "workflow_artifacts": 2,
        "workflow_transitions": 5,
    }


async def test_purge__inside_a_transaction_shares_it(store, clean_dsn, history):
    before = await table_counts(clean_dsn)

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        async with store.transaction() as tx:
            report = await tx.workflow_executions.purge(finished_before=CUTOFF, batch_size=2)
            assert report.executions == 5
            raise Abort
    assert await table_counts(clean_dsn) == before  # rolled back with the transaction

    async with store.transaction() as tx:
        report = await tx.workflow_executions.purge(finished_before=CUTOFF, batch_size=2)
    assert report.executions == 5
    assert (await table_counts(clean_dsn))["workflow_executions"] == before["workflow_executions"] - 5


@pytest.mark.parametrize(
    "kwargs",
    [
        {"finished_before": datetime(2024, 1, 1)},  # naive
        {"finished_before": None},
        {"finished_before": "2024-01-01T00:00:00Z"},
        {"finished_before": CUTOFF, "batch_size": 0},
        {"finished_before": CUTOFF, "batch_size": 100_001},
        {"finished_before": CUTOFF, "batch_size": True},
        {"finished_before": CUTOFF, "batch_size": 1.5},
    ],
)
async def test_purge__bad_arguments_are_refused(store, kwargs):
    with pytest.raises(InvalidArgument):
        await store.workflow_executions.purge(**kwargs)


async def test_purge__rows_another_transaction_holds_are_skipped_not_waited_for(store, clean_dsn, history):
    conn = await asyncpg.connect(clean_dsn)
    try:
        async with conn.transaction():
            await conn.execute(
                "SELECT 1 FROM workflow_executions WHERE id = $1 FOR UPDATE", history["old_completed"].id
            )
            report = await asyncio.wait_for(store.workflow_executions.purge(finished_before=CUTOFF), timeout=10)
            assert report.executions == 4
    finally:
        await conn.close()
    assert (await store.workflow_executions.purge(finished_before=CUTOFF)).executions == 1


# -- agent metrics ---------------------------------------------------------------------------------


async def test_metrics_purge__deletes_points_before_the_cutoff_in_batches(store, clean_dsn, agent):
    points = [
        AgentMetricCreate(
            agent_id=agent.id, metric_name=name, metric_value=float(i), collection_timestamp=NOW - timedelta(hours=i)
        )
        for i in range(50)
        for name in ("cpu", "memory")
    ]
    await store.agent_metrics.record_many(points)
    cutoff = NOW - timedelta(hours=19, minutes=30)  # points of hours 20..49 are older
    assert await store.agent_metrics.purge(cutoff, dry_run=True) == 60
    assert await store.agent_metrics.count() == 100
    assert await store.agent_metrics.purge(cutoff, batch_size=7) == 60
    conn = await asyncpg.connect(clean_dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM agent_metrics") == 40
        assert await conn.fetchval("SELECT min(collection_timestamp) FROM agent_metrics") >= cutoff
    finally:
        await conn.close()
    assert await store.agent_metrics.purge(cutoff) == 0
    assert await store.agent_metrics.purge(NOW + timedelta(seconds=1)) == 40
    with pytest.raises(InvalidArgument):
        await store.agent_metrics.purge(datetime(2024, 1, 1))
    with pytest.raises(InvalidArgument):
        await store.agent_metrics.purge(NOW, batch_size=0)


# -- the command -----------------------------------------------------------------------------------


async def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    # the command runs its own event loop (asyncio.run), so it gets a thread of its own
    code = await asyncio.to_thread(cli.main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def test_cli_purge__dry_run_then_real_run(store, clean_dsn, history, agent, capsys):
    await store.agent_metrics.record_many(
        [
            AgentMetricCreate(agent_id=agent.id, metric_name="cpu", metric_value=1.0, collection_timestamp=at)
            for at in (OLD, OLD, NOW - timedelta(days=1))
        ]
    )
    expected = await store.workflow_executions.purge(finished_before=CUTOFF, dry_run=True)
    before = await table_counts(clean_dsn)
    code, out, err = await run_cli(capsys, "purge", "--older-than", "30d", "--dry-run", "--dsn", clean_dsn)
    assert (code, err) == (0, "")
    assert out.startswith(
        f"would purge {expected.executions} workflow executions ({expected.steps} steps, "
        f"{expected.artifacts} artifacts, {expected.transitions} transitions) and 2 metric points from before "
    )
    assert out.endswith(" UTC\n") and out.count("\n") == 1
    assert await table_counts(clean_dsn) == before

    code, out, err = await run_cli(capsys, "purge", "--older-than", "30d", "--keep-failed", "--dsn", clean_dsn, "--yes")
    assert (code, err) == (0, "3 of 3 executions\n")  # progress: plain lines without a terminal
    assert out.startswith("purged 3 workflow executions (") and " and 2 metric points " in out
    assert await store.agent_metrics.count() == 1
    remaining = await remaining_ids(clean_dsn)
    assert {history["old_failed"].id, history["old_timeout"].id, history["old_pending"].id} <= remaining

    # 4 weeks: the failed and timed-out ones, and the one that finished just after the 30-day cutoff
    code, out, err = await run_cli(capsys, "purge", "--older-than", "4w", "--dsn", clean_dsn)
    assert code == 1 and out == "" and "pass --yes" in err  # no terminal to ask on: refused
    assert len(await remaining_ids(clean_dsn)) == 6
    # -q: neither progress nor the line saying what was purged
    assert await run_cli(capsys, "purge", "--older-than", "4w", "--dsn", clean_dsn, "-q", "--yes") == (0, "", "")
    assert await remaining_ids(clean_dsn) == {
        history[name].id for name in ("recent_completed", "old_pending", "old_running")
    }


@pytest.mark.parametrize("age", ["90", "90x", "d", "-5d", "0d", "1.5h", "99999999w"])
def test_cli_purge__bad_duration_is_a_one_line_error(clean_dsn, capsys, age):
    code = cli.main(["purge", f"--older-than={age}", "--dsn", clean_dsn])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.startswith(f"optiinfra-store purge: error: invalid duration {age!r}") and err.count("\n") == 1


@pytest.mark.parametrize(
    "age, expected",
    [
        ("30m", timedelta(minutes=30)),
        ("12h", timedelta(hours=12)),
        ("90d", timedelta(days=90)),
        ("2w", timedelta(weeks=2)),
    ],
)
def test_cli_purge__durations(age, expected):
    assert cli.parse_duration(age) == expected
