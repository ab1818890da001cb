"""Writes on a distributed schema: the triggers that run on the shards record the trail with who
and why, mark rollup hours by customer, and the keys keep a child with its parent's customer."""

from __future__ import annotations

import psycopg
import pytest

from optiinfra_store import Store, distribution, migrations, seed
from optiinfra_store.errors import MissingReference, NotFound
from optiinfra_store.records import WorkflowExecutionCreate, WorkflowStepCreate

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
    # one pooled connection: no call may need a second while it holds one (create_many did)
    async with Store.connect(distributed, min_size=1, max_size=1, acquire_timeout=5) as store:
        assert store.by_customer
        execution = await store.workflow_executions.create(
            WorkflowExecutionCreate(agent_id=AGENT, customer_id=OTHER, workflow_type="cost_analysis")
        )
        step = await store.workflow_steps.create(
            WorkflowStepCreate(workflow_execution_id=execution.id, step_name="plan", step_order=1)
        )
        more = await store.workflow_steps.create_many(
            [WorkflowStepCreate(workflow_execution_id=execution.id, step_name=f"s{n}", step_order=n) for n in (2, 3)]
        )
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
