"""Writes on a distributed schema: the triggers that run on the shards record the trail with who
and why, mark rollup hours by customer, and the keys keep a child with its parent's customer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from optiinfra_store import Store, distribution, migrations, seed
from optiinfra_store.connection.executor import ConnectionExecutor
from optiinfra_store.errors import InvalidTransition, MissingReference, NotFound, StaleVersion, StoreError
from optiinfra_store.records import (
    ApprovalCreate,
    EventCreate,
    OptimizationCreate,
    RecommendationCreate,
    RecommendationUpdate,
    WorkflowArtifactCreate,
    WorkflowExecutionCreate,
    WorkflowExecutionUpdate,
    WorkflowStepCreate,
)
from optiinfra_store.repositories import Repositories, repository_types

CUSTOMER = "c1000000-0000-4000-8000-000000000001"
OTHER = "c1000000-0000-4000-8000-000000000002"
AGENT = "a1000000-0000-4000-8000-000000000001"


@pytest.fixture
def distributed(scratch_dsn: str) -> str:
    migrations.apply(scratch_dsn)
    seed.load(scratch_dsn)
    distribution.distribute(scratch_dsn)
    return scratch_dsn


def new_execution(c: psycopg.Connection, customer: str = CUSTOMER) -> str:
    return str(
        c.execute(
            "INSERT INTO workflow_executions (agent_id, customer_id, workflow_type) "
            "VALUES (%s, %s, 'cost_analysis') RETURNING id",
            (AGENT, customer),
        ).fetchone()[0]
    )


def test_transition__routed_to_its_shard_records_who_and_why_and_stores_neither(distributed):
    with psycopg.connect(distributed, autocommit=True) as c:
        execution = new_execution(c)
        c.execute(
            "UPDATE workflow_executions SET status = 'running', started_at = now(), audit_actor = 'planner', "
            'audit_reason = \'{"message": "go"}\' WHERE id = %s AND customer_id = %s',
            (execution, CUSTOMER),
        )
        trail = c.execute(
            "SELECT from_status, to_status, actor, reason, customer_id::text FROM workflow_transitions "
            "WHERE customer_id = %s AND workflow_execution_id = %s ORDER BY id",
            (CUSTOMER, execution),
        ).fetchall()
        stored = c.execute(
            "SELECT audit_actor, audit_reason FROM workflow_executions WHERE customer_id = %s AND id = %s",
            (CUSTOMER, execution),
        ).fetchone()
    assert trail == [
        (None, "pending", None, None, CUSTOMER),
        ("pending", "running", "planner", {"message": "go"}, CUSTOMER),
    ]
    assert stored == (None, None)


def test_rollup_marks__each_write_marks_its_hour_for_its_customer(distributed):
    with psycopg.connect(distributed, autocommit=True) as c:
        c.execute("DELETE FROM workflow_rollup_pending")
        execution = new_execution(c, OTHER)
        c.execute(
            "INSERT INTO workflow_steps (workflow_execution_id, customer_id, step_name, step_order) "
            "VALUES (%s, %s, 'plan', 1)",
            (execution, OTHER),
        )
        marks = c.execute(
            "SELECT DISTINCT customer_id::text, hour = date_trunc('hour', e.created_at, 'UTC') "
            "FROM workflow_rollup_pending JOIN workflow_executions e USING (customer_id) WHERE e.id = %s",
            (execution,),
        ).fetchall()
        triggers = {
            name
            for (name,) in c.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid IN ('workflow_executions'::regclass, "
                "'workflow_steps'::regclass) AND tgname LIKE '%%rollup%%'"
            )
        }
    assert marks == [(OTHER, True)]
    assert triggers == {
        "workflow_executions_rollup_mark", "workflow_executions_rollup_truncate",
        "workflow_steps_rollup_mark", "workflow_steps_rollup_truncate",
    }  # fmt: skip


def test_child__with_another_customer_than_its_parent_refused_by_the_key(distributed):
    with psycopg.connect(distributed, autocommit=True) as c:
        execution = new_execution(c)
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            c.execute(
                "INSERT INTO workflow_steps (workflow_execution_id, customer_id, step_name, step_order) "
                "VALUES (%s, %s, 'plan', 1)",
                (execution, OTHER),
            )
        assert c.execute(
            "SELECT count(*) FROM workflow_steps WHERE workflow_execution_id = %s", (execution,)
        ).fetchone() == (0,)


async def test_store__names_the_customer_in_every_write_so_each_goes_to_one_shard(distributed):
    """The store tells a distributed schema on connecting, and its child inserts and transitions
    name the customer: a write by id alone would reach every shard and commit on both workers,
    which PostgreSQL refuses after the trail's NOTIFY."""
    with psycopg.connect(distributed, autocommit=True) as c:  # made elsewhere: the store reads its customer
        execution_id = UUID(new_execution(c, OTHER))
    # one pooled connection: no call may need a second while it holds one (create_many did)
    async with Store.connect(distributed, min_size=1, max_size=1, acquire_timeout=5) as store:
        assert store.by_customer
        more = await store.workflow_steps.create_many(
            [WorkflowStepCreate(workflow_execution_id=execution_id, step_name=f"s{n}", step_order=n) for n in (2, 3)]
        )
        step = await store.workflow_steps.create(
            WorkflowStepCreate(workflow_execution_id=execution_id, step_name="plan", step_order=1)
        )
        execution = await store.workflow_executions.get(execution_id)
        await store.workflow_executions.start(execution.id, actor="planner", reason="go")
        await store.workflow_steps.start(step.id)
        await store.workflow_steps.complete(step.id, actor="worker")
        trail = await store.workflow_executions.history(execution.id)
        with pytest.raises(MissingReference) as missing:
            await store.workflow_steps.create(
                WorkflowStepCreate(workflow_execution_id=CUSTOMER, step_name="orphan", step_order=1)
            )
        with pytest.raises(NotFound):
            await store.workflow_steps.start(CUSTOMER)
    assert {s.customer_id for s in (step, *more)} == {execution.customer_id}
    assert [(t.workflow_step_id, t.to_status, t.actor, t.reason) for t in trail if t.from_status is not None] == [
        (None, "running", "planner", {"message": "go"}),
        (step.id, "running", None, None),
        (step.id, "completed", "worker", None),
    ]
    assert missing.value.constraint == "workflow_steps_workflow_execution_id_fkey"


def test_customer_owned__the_repositories_of_the_tables_distributed_by_customer(distributed):
    """What routes by customer is what `distribute` placed by customer: a table distributed by it
    whose repository does not say so would send its writes by id to every shard."""
    with psycopg.connect(distributed, autocommit=True) as c:
        by_customer = {
            table
            for (table,) in c.execute(
                "SELECT logicalrelid::text FROM pg_dist_partition "
                "WHERE partmethod = 'h' AND column_to_column_name(logicalrelid, partkey) = 'customer_id'"
            )
        }
    repositories = repository_types().values()
    assert {r.table for r in repositories if r.customer_owned} == by_customer & {r.table for r in repositories}


async def _world(db: Repositories) -> dict[str, Any]:
    """A customer's rows of every customer-owned table, made through `db`."""
    recommendation = await db.recommendations.create(
        RecommendationCreate(customer_id=CUSTOMER, agent_id=AGENT, recommendation_type="cost_reduction", title="spot")
    )
    approval = await db.approvals.create(ApprovalCreate(recommendation_id=recommendation.id))
    approval = await db.approvals.approve(approval.id)
    optimization = await db.optimizations.create(
        OptimizationCreate(recommendation_id=recommendation.id, approval_id=approval.id)
    )
    event = await db.events.create(EventCreate(customer_id=CUSTOMER, event_type="cost_anomaly", title="spike"))
    execution = await db.workflow_executions.create(
        WorkflowExecutionCreate(agent_id=AGENT, customer_id=CUSTOMER, workflow_type="cost_analysis")
    )
    step = await db.workflow_steps.create(
        WorkflowStepCreate(workflow_execution_id=execution.id, step_name="plan", step_order=1)
    )
    artifact = await db.workflow_artifacts.create(
        WorkflowArtifactCreate(
            workflow_execution_id=execution.id, artifact_type="report", artifact_name="r", artifact_path="s3://r"
        )
    )
    return {
        "recommendation": recommendation,
        "approval": approval,
        "optimization": optimization,
        "event": event,
        "execution": execution,
        "step": step,
        "artifact": artifact,
    }


WRITES_BY_ID: dict[str, Callable[[Repositories, dict[str, Any]], Awaitable[Any]]] = {
    "recommendations.update": lambda db, w: db.recommendations.update(
        w["recommendation"].id, RecommendationUpdate(title="on demand")
    ),
    "workflow_executions.update": lambda db, w: db.workflow_executions.update(
        w["execution"].id, WorkflowExecutionUpdate(metadata={"k": 1}), expected_version=w["execution"].version
    ),
    "workflow_artifacts.delete": lambda db, w: db.workflow_artifacts.delete(w["artifact"].id),
    "workflow_steps.delete": lambda db, w: db.workflow_steps.delete(w["step"].id),
    "workflow_executions.delete": lambda db, w: db.workflow_executions.delete(w["execution"].id),
    "events.delete": lambda db, w: db.events.delete(w["event"].id),
    "optimizations.delete": lambda db, w: db.optimizations.delete(w["optimization"].id),
    "approvals.delete": lambda db, w: db.approvals.delete(w["approval"].id),
    "recommendations.delete": lambda db, w: db.recommendations.delete(w["recommendation"].id),
}
"""Every write by id of a customer-owned table but the transitions (tested above), in an order
in which each row is still there when its write comes."""


async def test_writes_by_id__each_goes_to_its_rows_shard_so_a_customers_transaction_commits_after_notify(
    distributed,
):
    """An unconfined store names the row's customer (as it saw the row, or read first on every
    shard) in a write by id: the write goes to the one shard holding the row. A customer's transaction that made an execution (the
    trail's NOTIFY, on the worker holding it) and then writes another of its rows by id commits on
    that worker alone; the same write by id alone reaches both workers, and the two-phase commit
    it needs is refused after the NOTIFY."""
    async with (
        Store.connect(distributed, min_size=1, max_size=2) as store,
        Store.connect(distributed, min_size=1, max_size=2) as writer,  # has seen none of the rows
    ):
        assert store.by_customer
        world = await _world(store)
        written, failed = {}, {}
        for name, write in WRITES_BY_ID.items():
            try:
                async with writer.transaction() as tx:
                    await tx.workflow_executions.create(
                        WorkflowExecutionCreate(agent_id=AGENT, customer_id=CUSTOMER, workflow_type="cost_analysis")
                    )
                    written[name] = await write(tx, world)
            except Exception as exc:  # noqa: BLE001 - every write is tried, the failures listed
                failed[name] = repr(exc)
        assert failed == {}
        assert written["recommendations.update"].title == "on demand"
        assert (written["workflow_executions.update"].metadata, written["workflow_executions.update"].version) == (
            {"k": 1},
            2,
        )
        for kind in ("artifact", "step", "execution", "event", "optimization", "approval", "recommendation"):
            with pytest.raises(NotFound):
                await getattr(store, TABLE_OF[kind]).get(world[kind].id)
        with pytest.raises(StoreError, match="cannot PREPARE a transaction that has executed LISTEN"):
            async with store.transaction() as tx:
                await tx.workflow_executions.create(
                    WorkflowExecutionCreate(agent_id=AGENT, customer_id=CUSTOMER, workflow_type="cost_analysis")
                )
                await tx.connection.execute("UPDATE events SET title = 'by id alone' WHERE id = $1", uuid4())


async def _every_call_by_id(db: Repositories, world: dict[str, Any]) -> None:
    """Every call by id on `world`'s rows through `db`: reads, transitions, refusals and writes, the
    rows deleted at the end; then a missing row is NotFound."""
    for kind, row in world.items():
        assert await getattr(db, TABLE_OF[kind]).get(row.id) == row
    detail = await db.workflow_executions.get_detail(world["execution"].id)
    assert ([s.id for s in detail.steps], [a.id for a in detail.artifacts]) == (
        [world["step"].id],
        [world["artifact"].id],
    )
    world["execution"] = await db.workflow_executions.start(world["execution"].id, actor="planner")
    await db.workflow_steps.start(world["step"].id)
    await db.workflow_steps.retry(world["step"].id)
    await db.optimizations.start(world["optimization"].id)
    with pytest.raises(InvalidTransition):
        await db.approvals.reject(world["approval"].id)
    assert [t.to_status for t in await db.workflow_executions.history(world["execution"].id)] == [
        "pending", "pending", "running", "running", "retrying",
    ]  # fmt: skip
    with pytest.raises(StaleVersion):
        await db.workflow_executions.update(
            world["execution"].id, WorkflowExecutionUpdate(metadata={}), expected_version=1
        )
    for write in WRITES_BY_ID.values():
        await write(db, world)
    for kind, repository in TABLE_OF.items():
        with pytest.raises(NotFound):
            await getattr(db, repository).get(world[kind].id)
        with pytest.raises(NotFound):
            await getattr(db, repository).delete(world[kind].id)


async def test_calls_by_id__of_a_store_that_knows_its_customer_never_cross_shards(distributed):
    """A confined store names its own customer in every statement by id, its reads too, and reads
    no row's customer first. Here the repositories are given the customer as a confined store's
    are, on a connection of their own (the confinement itself, a role the workers do not let in
    yet, is not what this tests), with Citus told to refuse any statement of more than one task:
    every call by id runs, a missing row is NotFound, a refused transition InvalidTransition."""
    async with Store.connect(distributed, min_size=1, max_size=1) as store:
        world = await _world(store)
        async with store.transaction() as tx:
            await tx.connection.execute("SET LOCAL citus.multi_task_query_log_level = 'error'")
            db = Repositories(ConnectionExecutor(tx.connection), customer_id=UUID(CUSTOMER), by_customer=True)
            await _every_call_by_id(db, world)
            with pytest.raises(StoreError, match="multi-task query"):  # the refusal holds
                async with tx.transaction():
                    await db.events.count()


async def test_calls_by_id__of_rows_an_unconfined_store_has_seen_never_cross_shards(distributed):
    """An unconfined store keeps the customer of each row it has written or read by id, and names
    it in its later statements by id, reads included; its transactions share what it knows. With
    Citus told to refuse any statement of more than one task: every call by id on a row the store
    made runs, a child's insert under a known parent too. A row it has not seen is read once on
    every shard (a get_detail gives its steps' customer too), then known; a deleted row is
    NotFound."""
    async with Store.connect(distributed, min_size=1, max_size=2) as store:
        world = await _world(store)
        async with store.transaction() as tx:
            await tx.connection.execute("SET LOCAL citus.multi_task_query_log_level = 'error'")
            await _every_call_by_id(tx, world)
            execution = await tx.workflow_executions.create(
                WorkflowExecutionCreate(agent_id=AGENT, customer_id=CUSTOMER, workflow_type="cost_analysis")
            )
            step = await tx.workflow_steps.create(
                WorkflowStepCreate(workflow_execution_id=execution.id, step_name="apply", step_order=1)
            )
            await tx.workflow_steps.start(step.id)
            with pytest.raises(StoreError, match="multi-task query"):  # the refusal holds
                async with tx.transaction():
                    await tx.events.count()

    with psycopg.connect(distributed, autocommit=True) as c:
        unseen = new_execution(c)
        unseen_step = c.execute(
            "INSERT INTO workflow_steps (workflow_execution_id, customer_id, step_name, step_order)"
            " VALUES (%s, %s, 'plan', 1) RETURNING id",
            (unseen, CUSTOMER),
        ).fetchone()[0]
        other = new_execution(c)
    async with Store.connect(distributed, min_size=1, max_size=1) as fresh:
        detail = await fresh.workflow_executions.get_detail(unseen)  # on every shard: not seen yet
        assert [s.id for s in detail.steps] == [unseen_step]
        await fresh.workflow_executions.start(other)  # its customer read on every shard first
        async with fresh.transaction() as tx:
            await tx.connection.execute("SET LOCAL citus.multi_task_query_log_level = 'error'")
            await tx.workflow_executions.start(unseen)  # get_detail gave the execution's customer
            await tx.workflow_steps.start(unseen_step)  # and its steps'
            completed = await tx.workflow_executions.complete(other)
            assert (await tx.workflow_executions.get(other)).status == completed.status == "completed"


TABLE_OF = {
    "recommendation": "recommendations",
    "approval": "approvals",
    "optimization": "optimizations",
    "event": "events",
    "execution": "workflow_executions",
    "step": "workflow_steps",
    "artifact": "workflow_artifacts",
}
