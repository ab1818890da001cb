"""Guarded transitions, races, transactions, pagination and bad input for the workflow repositories."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pydantic
import pytest

from optiinfra_store.enums import ArtifactType, StepStatus, WorkflowStatus, WorkflowType
from optiinfra_store.errors import (
    AlreadyExists,
    InvalidArgument,
    InvalidTransition,
    MissingReference,
    NotFound,
    RetriesExhausted,
    StoreError,
)
from optiinfra_store.records import (
    WorkflowArtifactCreate,
    WorkflowExecutionCreate,
    WorkflowExecutionUpdate,
    WorkflowStepCreate,
)

EXECUTION_TRANSITIONS = {
    # method: (allowed from, resulting status)
    "start": ({WorkflowStatus.PENDING}, WorkflowStatus.RUNNING),
    "complete": ({WorkflowStatus.RUNNING}, WorkflowStatus.COMPLETED),
    "fail": ({WorkflowStatus.RUNNING}, WorkflowStatus.FAILED),
    "cancel": ({WorkflowStatus.PENDING, WorkflowStatus.RUNNING}, WorkflowStatus.CANCELLED),
    "time_out": ({WorkflowStatus.RUNNING}, WorkflowStatus.TIMEOUT),
}

STEP_TRANSITIONS = {
    "start": ({StepStatus.PENDING, StepStatus.RETRYING}, StepStatus.RUNNING),
    "complete": ({StepStatus.RUNNING}, StepStatus.COMPLETED),
    "fail": ({StepStatus.RUNNING}, StepStatus.FAILED),
    "skip": ({StepStatus.PENDING}, StepStatus.SKIPPED),
    "retry": ({StepStatus.FAILED, StepStatus.RUNNING}, StepStatus.RETRYING),
}


async def new_execution(store, agent, customer, status=WorkflowStatus.PENDING, **extra):
    times = {}
    if status is not WorkflowStatus.PENDING:
        times["started_at"] = datetime.now(UTC) - timedelta(minutes=1)
    if status not in (WorkflowStatus.PENDING, WorkflowStatus.RUNNING):
        times["completed_at"] = datetime.now(UTC)
    return await store.workflow_executions.create(
        WorkflowExecutionCreate(
            agent_id=agent.id,
            customer_id=customer.id,
            workflow_type=WorkflowType.HEALTH_CHECK,
            status=status,
            **times,
            **extra,
        )
    )


async def new_step(store, execution, status=StepStatus.PENDING, order=1, **extra):
    return await store.workflow_steps.create(
        WorkflowStepCreate(
            workflow_execution_id=execution.id,
            step_name=f"step_{order}",
            step_order=order,
            status=status,
            **extra,
        )
    )


@pytest.mark.parametrize("method", sorted(EXECUTION_TRANSITIONS))
@pytest.mark.parametrize("current", list(WorkflowStatus))
async def test_execution_transition__allowed_or_refused(store, agent, customer, method, current):
    allowed, target = EXECUTION_TRANSITIONS[method]
    execution = await new_execution(store, agent, customer, current)
    call = getattr(store.workflow_executions, method)
    if current in allowed:
        moved = await call(execution.id)
        assert moved.status is target
        if target is WorkflowStatus.RUNNING:
            assert moved.started_at is not None and moved.completed_at is None
        else:
            assert moved.completed_at is not None
        assert moved.updated_at >= execution.updated_at
    else:
        with pytest.raises(InvalidTransition) as info:
            await call(execution.id)
        assert info.value.current_status == current
        assert info.value.requested_status == target
        assert str(current) in str(info.value) and str(target) in str(info.value)
        assert (await store.workflow_executions.get(execution.id)) == execution


@pytest.mark.parametrize("method", sorted(STEP_TRANSITIONS))
@pytest.mark.parametrize("current", list(StepStatus))
async def test_step_transition__allowed_or_refused(store, agent, customer, method, current):
    allowed, target = STEP_TRANSITIONS[method]
    execution = await new_execution(store, agent, customer, WorkflowStatus.RUNNING)
    started = datetime.now(UTC) - timedelta(seconds=5) if current is not StepStatus.PENDING else None
    step = await new_step(store, execution, current, started_at=started)
    call = getattr(store.workflow_steps, method)
    if current in allowed:
        moved = await call(step.id)
        assert moved.status is target
        if method == "retry":
            assert moved.retry_count == step.retry_count + 1
    else:
        with pytest.raises(InvalidTransition) as info:
            await call(step.id)
        assert (info.value.current_status, info.value.requested_status) == (current, target)
        assert (await store.workflow_steps.get(step.id)) == step


async def test_transitions__missing_id_is_not_found(store):
    missing = uuid.uuid4()
    for method in EXECUTION_TRANSITIONS:
        with pytest.raises(NotFound, match=str(missing)):
            await getattr(store.workflow_executions, method)(missing)
    for method in STEP_TRANSITIONS:
        with pytest.raises(NotFound):
            await getattr(store.workflow_steps, method)(missing)


async def test_execution_complete__two_agents_at_once_exactly_one_wins(store, agent, customer):
    execution = await new_execution(store, agent, customer, WorkflowStatus.RUNNING)
    results = await asyncio.gather(
        *(store.workflow_executions.complete(execution.id, output_data={"by": i}) for i in range(2)),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, Exception)]
    assert len(winners) == 1 and len(losers) == 1
    assert isinstance(losers[0], InvalidTransition)
    assert losers[0].current_status == WorkflowStatus.COMPLETED
    stored = await store.workflow_executions.get(execution.id)
    assert stored.output_data == winners[0].output_data


async def test_step_retry__twenty_concurrent_calls_never_overspend(store, agent, customer):
    execution = await new_execution(store, agent, customer, WorkflowStatus.RUNNING)
    step = await new_step(store, execution, StepStatus.PENDING, max_retries=5)
    await store.workflow_steps.start(step.id)

    async def agent_loop() -> int:
        """Each worker keeps trying: retry, run again, fail again. Returns the retries it won."""
        won = 0
        for _ in range(10):
            try:
                await store.workflow_steps.retry(step.id)
                won += 1
                await store.workflow_steps.start(step.id)
                await store.workflow_steps.fail(step.id, error_details={"attempt": won})
            except RetriesExhausted:
                return won
            except InvalidTransition:
                await asyncio.sleep(0)
        return won

    won = await asyncio.gather(*(agent_loop() for _ in range(20)))
    final = await store.workflow_steps.get(step.id)
    assert final.retry_count == 5 == sum(won)  # every granted retry counted once, none past the budget
    with pytest.raises(RetriesExhausted) as info:
        await store.workflow_steps.retry(step.id)
    assert (info.value.retry_count, info.value.max_retries) == (5, 5)
    assert info.value.requested_status == StepStatus.RETRYING


async def test_step_start__keeps_first_started_at_across_retries(store, agent, customer):
    execution = await new_execution(store, agent, customer, WorkflowStatus.RUNNING)
    step = await new_step(store, execution)
    first = (await store.workflow_steps.start(step.id)).started_at
    await store.workflow_steps.fail(step.id)
    retried = await store.workflow_steps.retry(step.id)
    assert retried.completed_at is None and retried.retry_count == 1
    again = await store.workflow_steps.start(step.id)
    assert again.started_at == first


async def test_transaction__rolls_back_everything_on_error(store, agent, customer):
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            execution = await new_execution(tx, agent, customer)
            await new_step(tx, execution)
            raise RuntimeError("agent crashed")
    assert (await store.workflow_executions.list()).items == []


async def test_transaction__commits_and_nests_savepoints(store, agent, customer):
    async with store.transaction() as tx:
        execution = await new_execution(tx, agent, customer)
        with pytest.raises(AlreadyExists):
            async with tx.transaction() as inner:
                await new_step(inner, execution, order=1)
                await new_step(inner, execution, order=1)  # duplicate order: inner block rolls back
        await new_step(tx, execution, order=2)
    steps = await store.workflow_steps.list(execution_id=execution.id)
    assert [s.step_order for s in steps] == [2]


async def test_transaction__sees_its_own_writes_others_do_not(store, agent, customer):
    async with store.transaction() as tx:
        execution = await new_execution(tx, agent, customer)
        assert (await tx.workflow_executions.get(execution.id)).id == execution.id
        with pytest.raises(NotFound):
            await store.workflow_executions.get(execution.id)
    assert (await store.workflow_executions.get(execution.id)).id == execution.id


async def test_list__pagination_over_hundreds_of_rows(store, agent, customer):
    async with store.transaction() as tx:
        created = [await new_execution(tx, agent, customer) for _ in range(230)]
    seen = []
    cursor = None
    pages = 0
    while True:
        page = await store.workflow_executions.list(customer_id=customer.id, limit=50, cursor=cursor)
        seen.extend(page.items)
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == 5 and [len(seen)] == [230]
    assert len({e.id for e in seen}) == 230 == len({e.id for e in created})
    keys = [(e.created_at, e.id) for e in seen]
    assert keys == sorted(keys, reverse=True)  # newest first, stable


async def test_list__filters(store, agent, customer):
    pending = await new_execution(store, agent, customer)
    running = await new_execution(store, agent, customer, WorkflowStatus.RUNNING)
    failed = await new_execution(store, agent, customer, WorkflowStatus.FAILED)
    ids = lambda page: {e.id for e in page.items}  # noqa: E731
    assert ids(await store.workflow_executions.list(status=[WorkflowStatus.RUNNING, "failed"])) == {
        running.id,
        failed.id,
    }
    assert ids(await store.workflow_executions.list(status="pending")) == {pending.id}
    assert ids(await store.workflow_executions.list(workflow_type=WorkflowType.COST_ANALYSIS)) == set()
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    assert ids(await store.workflow_executions.list(started_after=hour_ago)) == {running.id, failed.id}
    assert ids(await store.workflow_executions.list(started_before=hour_ago)) == set()
    assert [e.id for e in await store.workflow_executions.list_active()] == [pending.id, running.id]


async def test_list__bad_arguments(store):
    with pytest.raises(InvalidArgument):
        await store.workflow_executions.list(limit=0)
    with pytest.raises(InvalidArgument):
        await store.workflow_executions.list(cursor="not-a-cursor")
    with pytest.raises(InvalidArgument):
        await store.workflow_executions.list(started_after=datetime(2025, 1, 1))  # naive
    with pytest.raises(InvalidArgument, match="status must be one of pending, running"):
        await store.workflow_executions.list(status="exploded")
    with pytest.raises(InvalidArgument, match="workflow_type"):
        await store.workflow_executions.list(workflow_type="teleport")
    with pytest.raises(InvalidArgument, match="artifact_type"):
        await store.workflow_artifacts.list(artifact_type="hologram")
    with pytest.raises(InvalidArgument, match="status"):
        await store.workflow_steps.list(execution_id=uuid.uuid4(), status=["running", "exploded"])


async def test_update__writes_only_given_fields(store, agent, customer):
    execution = await new_execution(store, agent, customer, input_data={"a": 1}, metadata={"m": 1})
    updated = await store.workflow_executions.update(execution.id, WorkflowExecutionUpdate(output_data={"done": True}))
    assert updated.output_data == {"done": True}
    assert updated.input_data == {"a": 1} and updated.metadata == {"m": 1}
    assert updated.status is WorkflowStatus.PENDING
    with pytest.raises(pydantic.ValidationError):
        WorkflowExecutionUpdate(status="running")  # status changes only through transitions
    with pytest.raises(NotFound):
        await store.workflow_executions.update(uuid.uuid4(), WorkflowExecutionUpdate(metadata={}))


async def test_get_detail__one_round_trip_with_steps_and_artifacts(store, agent, customer):
    execution = await new_execution(store, agent, customer, WorkflowStatus.RUNNING)
    payload = {"model": "llama-3-70b ✓", "ratio": 0.1, "big": 2**62, "nested": [{"a": None}, True]}
    steps = await store.workflow_steps.create_many(
        [
            WorkflowStepCreate(
                workflow_execution_id=execution.id,
                step_name=f"s{i}",
                step_order=i,
                input_data=payload,
                metadata={"i": i},
            )
            for i in (2, 1)
        ]
    )
    await store.workflow_steps.start(steps[1].id)
    artifact = await store.workflow_artifacts.create(
        WorkflowArtifactCreate(
            workflow_execution_id=execution.id,
            workflow_step_id=steps[1].id,
            artifact_type=ArtifactType.LOG,
            artifact_name="log",
            artifact_path="s3://log",
            artifact_size_bytes=10,
            metadata=payload,
        )
    )
    detail = await store.workflow_executions.get_detail(execution.id)
    assert detail.id == execution.id
    assert detail.model_dump(exclude={"steps", "artifacts"}) == execution.model_dump()
    # the steps by step_order, each equal to the step read alone (types, timestamps, JSON)
    assert detail.steps == [await store.workflow_steps.get(s.id) for s in reversed(steps)]
    assert detail.steps[0].status is StepStatus.RUNNING and detail.steps[0].input_data == payload
    assert detail.artifacts == [artifact]
    assert detail.artifacts[0].workflow_step_id == steps[1].id
    assert detail.artifacts[0].artifact_type is ArtifactType.LOG
    with pytest.raises(NotFound):
        await store.workflow_executions.get_detail(uuid.uuid4())


async def test_ids__time_ordered_version_7(store, agent, customer):
    # ids of the tables that grow sort in creation order, so rows written together sit together
    # in every index on their ids (see migration 0009)
    executions = [await new_execution(store, agent, customer) for _ in range(5)]
    steps = await store.workflow_steps.create_many(
        [
            WorkflowStepCreate(workflow_execution_id=executions[0].id, step_name=f"s{i}", step_order=i)
            for i in range(1, 4)
        ]
    )
    for rows in (executions, steps):
        assert all(r.id.version == 7 and r.id.variant == uuid.RFC_4122 for r in rows)
        # the first 48 bits are the creation time in ms (rows of the same ms order at random)
        millis = [r.id.int >> 80 for r in rows]
        assert millis == sorted(millis)
        for row, ms in zip(rows, millis, strict=True):
            assert abs(datetime.fromtimestamp(ms / 1000, UTC) - row.created_at) < timedelta(seconds=5)
    assert len({r.id for r in executions + steps}) == 8


async def test_artifact__step_of_another_execution_refused(store, agent, customer):
    first = await new_execution(store, agent, customer)
    second = await new_execution(store, agent, customer)
    other_step = await new_step(store, second)
    with pytest.raises(MissingReference) as info:
        await store.workflow_artifacts.create(
            WorkflowArtifactCreate(
                workflow_execution_id=first.id,
                workflow_step_id=other_step.id,
                artifact_type=ArtifactType.LOG,
                artifact_name="x",
                artifact_path="s3://x",
            )
        )
    assert info.value.constraint == "workflow_artifacts_workflow_step_id_fkey"
    assert await store.workflow_artifacts.list(execution_id=first.id) == []


async def test_create__unknown_agent_is_missing_reference(store, customer):
    with pytest.raises(MissingReference) as info:
        await store.workflow_executions.create(
            WorkflowExecutionCreate(
                agent_id=uuid.uuid4(),
                customer_id=customer.id,
                workflow_type=WorkflowType.HEALTH_CHECK,
            )
        )
    assert info.value.constraint == "workflow_executions_agent_id_fkey"
    assert isinstance(info.value.__cause__, Exception) and "asyncpg" in type(info.value.__cause__).__module__


async def test_create_many__atomic(store, agent, customer):
    execution = await new_execution(store, agent, customer)
    with pytest.raises(AlreadyExists) as info:
        await store.workflow_steps.create_many(
            [
                WorkflowStepCreate(workflow_execution_id=execution.id, step_name="a", step_order=1),
                WorkflowStepCreate(workflow_execution_id=execution.id, step_name="b", step_order=1),
            ]
        )
    assert info.value.constraint == "workflow_steps_execution_id_step_order_key"
    assert await store.workflow_steps.list(execution_id=execution.id) == []
    assert await store.workflow_steps.create_many([]) == []


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"workflow_type": "teleport"}, "workflow_type"),
        ({"agent_id": "not-a-uuid"}, "agent_id"),
        ({"started_at": datetime(2025, 1, 1)}, "started_at"),  # naive
        ({"started_at": datetime.now(UTC), "completed_at": datetime.now(UTC) - timedelta(hours=1)}, "completed_at"),
        ({"input_data": ["not", "an", "object"]}, "input_data"),
        ({"surprise": 1}, "surprise"),
    ],
)
async def test_create__bad_execution_input_writes_nothing(store, agent, customer, bad, field):
    values = {"agent_id": agent.id, "customer_id": customer.id, "workflow_type": "health_check", **bad}
    with pytest.raises(pydantic.ValidationError) as info:
        await store.workflow_executions.create(values)  # validated by the repository, before SQL
    assert info.value.errors()[0]["loc"] == (field,)
    assert (await store.workflow_executions.list()).items == []


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"step_name": ""}, "step_name"),
        ({"step_name": "   "}, "step_name"),
        ({"step_name": "x" * 256}, "step_name"),
        ({"step_order": 0}, "step_order"),
        ({"retry_count": -1}, "retry_count"),
        ({"retry_count": 4, "max_retries": 3}, "max_retries"),  # the message names retry_count too
        ({"max_retries": 2**31}, "max_retries"),
        ({"status": "exploded"}, "status"),
    ],
)
async def test_create__bad_step_input_writes_nothing(store, agent, customer, bad, field):
    execution = await new_execution(store, agent, customer)
    values = {"workflow_execution_id": execution.id, "step_name": "ok", "step_order": 1, **bad}
    with pytest.raises(pydantic.ValidationError) as info:
        await store.workflow_steps.create(values)
    assert info.value.errors()[0]["loc"] == (field,)
    assert await store.workflow_steps.list(execution_id=execution.id) == []


async def test_get__non_uuid_id_is_a_validation_error_naming_the_field(store):
    with pytest.raises(pydantic.ValidationError) as info:
        await store.workflow_executions.get("42; DROP TABLE workflow_executions")
    assert info.value.errors()[0]["loc"] == ("id",)
    with pytest.raises(pydantic.ValidationError) as info:
        await store.workflow_steps.list(execution_id="nope")
    assert info.value.errors()[0]["loc"] == ("execution_id",)


async def test_errors__all_are_store_errors():
    for cls in (NotFound, AlreadyExists, MissingReference, InvalidTransition, RetriesExhausted, InvalidArgument):
        assert issubclass(cls, StoreError)
    assert issubclass(RetriesExhausted, InvalidTransition)


async def test_delete__missing_is_not_found(store):
    for repo in (store.workflow_executions, store.workflow_steps, store.workflow_artifacts):
        with pytest.raises(NotFound):
            await repo.delete(uuid.uuid4())


async def test_command_timeout__is_store_timeout_and_the_pool_recovers(clean_dsn):
    from optiinfra_store import Store
    from optiinfra_store.errors import StoreTimeout

    async with Store.connect(clean_dsn, min_size=1, max_size=1, command_timeout=0.2) as store:
        repo = store.workflow_executions
        with pytest.raises(StoreTimeout):
            await repo._db.fetchval("SELECT pg_sleep(2)")  # any statement slower than command_timeout
        assert await store.customers.count() == 0  # the connection was replaced, the next call works


async def test_connect__unmigrated_database_says_to_migrate(scratch_dsn):
    from optiinfra_store import Store
    from optiinfra_store.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="optiinfra-store migrate"):
        await Store.connect(scratch_dsn, min_size=1, max_size=1)


async def test_connect__database_behind_the_code_connects_and_says_what_is_pending(scratch_dsn):
    """The code is deployed before its migrations run: enum types of later migrations are not
    there yet, and the store still connects, reads what exists and names what is pending."""
    from optiinfra_store import Store, migrations

    migrations.apply(scratch_dsn, to="0002_agent_state")  # without 0003's workflow enum types
    async with Store.connect(scratch_dsn, min_size=1, max_size=1) as store:
        assert await store.customers.count() == 0
        pending = await store.pending_migrations()
        assert pending[0] == "0003_workflow_history" and pending[-1] == migrations.ids()[-1]
