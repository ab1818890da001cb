"""The audit trail: every status change of an execution or step, written by the database."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from optiinfra_store.enums import WorkflowType
from optiinfra_store.errors import InvalidArgument, InvalidTransition, NotFound
from optiinfra_store.records import WorkflowExecutionCreate, WorkflowStepCreate


async def run_workflow(store, agent, customer):
    execution = await store.workflow_executions.create(
        WorkflowExecutionCreate(
            agent_id=agent.id,
            customer_id=customer.id,
            workflow_type=WorkflowType.QUALITY_CHECK,
        )
    )
    await store.workflow_executions.start(execution.id, actor="scheduler", reason={"trigger": "cron"})
    step = await store.workflow_steps.create(
        WorkflowStepCreate(
            workflow_execution_id=execution.id,
            step_name="quality_validation",
            step_order=1,
        )
    )
    await store.workflow_steps.start(step.id, actor="app-agent-1")
    await store.workflow_steps.fail(
        step.id, error_details={"score": 0.78}, actor="app-agent-1", reason={"threshold": 0.85}
    )
    await store.workflow_steps.retry(step.id, actor="app-agent-1")
    await store.workflow_executions.cancel(execution.id, "operator stopped it", actor="jane@acme.example")
    return execution, step


async def test_history__every_change_oldest_first_with_actor_and_reason(store, agent, customer):
    execution, step = await run_workflow(store, agent, customer)
    history = await store.workflow_executions.history(execution.id)
    assert [(t.workflow_step_id, t.from_status, t.to_status, t.actor) for t in history] == [
        (None, None, "pending", None),
        (None, "pending", "running", "scheduler"),
        (step.id, None, "pending", None),
        (step.id, "pending", "running", "app-agent-1"),
        (step.id, "running", "failed", "app-agent-1"),
        (step.id, "failed", "retrying", "app-agent-1"),
        (None, "running", "cancelled", "jane@acme.example"),
    ]
    assert history[1].reason == {"trigger": "cron"}
    assert history[4].reason == {"threshold": 0.85}
    assert history[6].reason == {"reason": "operator stopped it"}
    assert [t.id for t in history] == sorted(t.id for t in history)
    assert all(t.at.tzinfo is not None for t in history)
    cancelled = await store.workflow_executions.get(execution.id)
    assert cancelled.error_details == {"error_type": "Cancelled", "reason": "operator stopped it"}


async def test_history__a_string_reason_is_recorded_as_a_message(store, agent, customer):
    execution = await store.workflow_executions.create(
        WorkflowExecutionCreate(agent_id=agent.id, customer_id=customer.id, workflow_type=WorkflowType.HEALTH_CHECK)
    )
    step = await store.workflow_steps.create(
        WorkflowStepCreate(workflow_execution_id=execution.id, step_name="probe", step_order=1)
    )
    await store.workflow_executions.start(execution.id, reason="nightly run")
    await store.workflow_steps.start(step.id, reason="")
    await store.workflow_steps.fail(step.id, reason={"threshold": 0.85})  # a dict as before
    await store.workflow_steps.retry(step.id, reason="transient: 503 from the metrics API")
    await store.workflow_executions.time_out(execution.id, reason="no heartbeat for 10m")
    assert [t.reason for t in await store.workflow_executions.history(execution.id)] == [
        None,  # created, the execution and its step
        None,
        {"message": "nightly run"},
        {"message": ""},
        {"threshold": 0.85},
        {"message": "transient: 503 from the metrics API"},
        {"message": "no heartbeat for 10m"},
    ]


async def test_history__refused_transition_records_nothing(store, agent, customer):
    execution, _ = await run_workflow(store, agent, customer)
    before = await store.workflow_executions.history(execution.id)
    with pytest.raises(InvalidTransition):
        await store.workflow_executions.start(execution.id, actor="late")
    assert await store.workflow_executions.history(execution.id) == before


async def test_history__raw_sql_changes_are_recorded_too(store, clean_dsn, agent, customer):
    execution, _ = await run_workflow(store, agent, customer)
    conn = await asyncpg.connect(clean_dsn)
    try:
        await conn.execute("UPDATE workflow_executions SET status = 'failed' WHERE id = $1", execution.id)
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE workflow_transitions SET actor = 'forger'")
    finally:
        await conn.close()
    last = (await store.workflow_executions.history(execution.id))[-1]
    assert (last.from_status, last.to_status, last.actor, last.reason) == ("cancelled", "failed", None, None)


async def test_history__actor_does_not_leak_into_the_next_change(store, agent, customer):
    execution = await store.workflow_executions.create(
        WorkflowExecutionCreate(
            agent_id=agent.id,
            customer_id=customer.id,
            workflow_type=WorkflowType.HEALTH_CHECK,
        )
    )
    async with store.transaction() as tx:
        await tx.workflow_executions.start(execution.id, actor="first")
        await tx.workflow_executions.complete(execution.id)
    actors = [t.actor for t in await store.workflow_executions.history(execution.id)]
    assert actors == [None, "first", None]


async def test_history__deleted_with_the_execution(store, clean_dsn, agent, customer):
    execution, _ = await run_workflow(store, agent, customer)
    await store.workflow_executions.delete(execution.id)
    conn = await asyncpg.connect(clean_dsn)
    try:
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM workflow_transitions WHERE workflow_execution_id = $1", execution.id
            )
            == 0
        )
    finally:
        await conn.close()
    with pytest.raises(NotFound):
        await store.workflow_executions.history(execution.id)


async def test_history__bad_actor_or_reason_refused_before_sql(store, agent, customer):
    execution = await store.workflow_executions.create(
        WorkflowExecutionCreate(
            agent_id=agent.id,
            customer_id=customer.id,
            workflow_type=WorkflowType.HEALTH_CHECK,
        )
    )
    with pytest.raises(InvalidArgument, match="actor"):
        await store.workflow_executions.start(execution.id, actor="x" * 256)
    for reason in (["not", "a", "dict"], b"bytes", 7):
        with pytest.raises(InvalidArgument, match=f"reason must be a string or a dict, got {type(reason).__name__}"):
            await store.workflow_executions.start(execution.id, reason=reason)
    with pytest.raises(InvalidArgument, match="reason"):
        await store.workflow_executions.start(execution.id, reason="nul \x00 inside")
    assert len(await store.workflow_executions.history(execution.id)) == 1
    with pytest.raises(NotFound):
        await store.workflow_executions.history(uuid.uuid4())


async def test_history__actor_not_inherited_by_later_inserts_in_a_transaction(store, agent, customer):
    first = await store.workflow_executions.create(
        WorkflowExecutionCreate(
            agent_id=agent.id,
            customer_id=customer.id,
            workflow_type=WorkflowType.HEALTH_CHECK,
        )
    )
    async with store.transaction() as tx:
        await tx.workflow_executions.cancel(first.id, "operator said so", actor="alice")
        second = await tx.workflow_executions.create(
            WorkflowExecutionCreate(
                agent_id=agent.id,
                customer_id=customer.id,
                workflow_type=WorkflowType.HEALTH_CHECK,
            )
        )
    created = (await store.workflow_executions.history(second.id))[0]
    assert (created.actor, created.reason) == (None, None)


async def test_transitions__direct_delete_refused(store, clean_dsn, agent, customer):
    execution, _ = await run_workflow(store, agent, customer)
    conn = await asyncpg.connect(clean_dsn)
    try:
        with pytest.raises(asyncpg.CheckViolationError, match="append-only"):
            await conn.execute("DELETE FROM workflow_transitions WHERE workflow_execution_id = $1", execution.id)
    finally:
        await conn.close()
    assert len(await store.workflow_executions.history(execution.id)) == 7


async def test_history__refused_transition_leaves_no_actor_behind(store, agent, customer):
    from optiinfra_store.errors import InvalidTransition

    pending = await store.workflow_executions.create(
        WorkflowExecutionCreate(
            agent_id=agent.id,
            customer_id=customer.id,
            workflow_type=WorkflowType.HEALTH_CHECK,
        )
    )
    async with store.transaction() as tx:
        with pytest.raises(InvalidTransition):
            await tx.workflow_executions.complete(pending.id, actor="mallory", reason={"why": "refused"})
        with pytest.raises(InvalidTransition):
            await tx.workflow_steps.retry(
                (
                    await tx.workflow_steps.create(
                        WorkflowStepCreate(workflow_execution_id=pending.id, step_name="s", step_order=1)
                    )
                ).id,
                actor="mallory",
            )
        later = await tx.workflow_executions.create(
            WorkflowExecutionCreate(
                agent_id=agent.id,
                customer_id=customer.id,
                workflow_type=WorkflowType.HEALTH_CHECK,
            )
        )
    created = (await store.workflow_executions.history(later.id))[0]
    assert (created.actor, created.reason) == (None, None)
