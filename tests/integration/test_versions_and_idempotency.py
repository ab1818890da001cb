"""Optimistic concurrency (`version`, `expected_version` -> StaleVersion) and idempotent creates."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from optiinfra_store.enums import AgentStatus, AgentStatusDetail, AgentType, WorkflowType
from optiinfra_store.errors import AlreadyExists, InvalidArgument, NotFound, StaleVersion
from optiinfra_store.records import AgentCreate, AgentStateUpsert, WorkflowExecutionCreate, WorkflowExecutionUpdate


def new_execution(agent, customer, **fields) -> WorkflowExecutionCreate:
    return WorkflowExecutionCreate(
        agent_id=agent.id, customer_id=customer.id, workflow_type=WorkflowType.COST_ANALYSIS, **fields
    )


async def test_version__every_write_counts_raw_sql_too(store, agent, customer):
    execution = await store.workflow_executions.create(new_execution(agent, customer))
    assert execution.version == 1
    started = await store.workflow_executions.start(execution.id)
    assert started.version == 2
    updated = await store.workflow_executions.update(execution.id, WorkflowExecutionUpdate(metadata={"a": 1}))
    assert updated.version == 3
    async with store.transaction() as tx:
        await tx.connection.execute("UPDATE workflow_executions SET version = 1 WHERE id = $1", execution.id)
    assert (await store.workflow_executions.get(execution.id)).version == 4


async def test_update__expected_version_wins_once_and_the_loser_changes_nothing(store, agent, customer):
    execution = await store.workflow_executions.create(new_execution(agent, customer))
    mine = WorkflowExecutionUpdate(metadata={"writer": "first"})
    theirs = WorkflowExecutionUpdate(metadata={"writer": "second"})
    won = await store.workflow_executions.update(execution.id, mine, expected_version=1)
    assert won.version == 2 and won.metadata == {"writer": "first"}
    with pytest.raises(StaleVersion) as info:
        await store.workflow_executions.update(execution.id, theirs, expected_version=1)
    assert (info.value.expected_version, info.value.current_version) == (1, 2)
    assert "version 2, not 1" in str(info.value)
    assert await store.workflow_executions.get(execution.id) == won


async def test_update__concurrent_writers_with_the_same_version_exactly_one_wins(store, agent, customer):
    execution = await store.workflow_executions.create(new_execution(agent, customer))
    results = await asyncio.gather(
        *(
            store.workflow_executions.update(
                execution.id, WorkflowExecutionUpdate(metadata={"writer": n}), expected_version=1
            )
            for n in range(8)
        ),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, StaleVersion) for r in results if r is not winners[0])
    assert await store.workflow_executions.get(execution.id) == winners[0]


async def test_update__expected_version_of_a_missing_row_or_a_bad_value(store, agent, customer):
    with pytest.raises(NotFound):
        await store.workflow_executions.update(uuid.uuid4(), WorkflowExecutionUpdate(metadata={}), expected_version=1)
    execution = await store.workflow_executions.create(new_execution(agent, customer))
    for bad in (0, -1, True, "1", 1.0):
        with pytest.raises(InvalidArgument, match="expected_version"):
            await store.workflow_executions.update(
                execution.id, WorkflowExecutionUpdate(metadata={}), expected_version=bad
            )
    assert (await store.workflow_executions.get(execution.id)).version == 1


async def test_agent_state__upsert_with_expected_version(store, agent):
    state = await store.agent_states.upsert(AgentStateUpsert(agent_id=agent.id))
    assert state.version == 1
    beat = await store.agent_states.heartbeat(agent.id)
    assert beat.version == 2
    with pytest.raises(StaleVersion) as info:
        await store.agent_states.upsert(
            AgentStateUpsert(agent_id=agent.id, status=AgentStatusDetail.BUSY), expected_version=1
        )
    assert info.value.current_version == 2
    assert await store.agent_states.get_for_agent(agent.id) == beat
    busy = await store.agent_states.upsert(
        AgentStateUpsert(agent_id=agent.id, status=AgentStatusDetail.BUSY), expected_version=2
    )
    assert (busy.status, busy.version) == (AgentStatusDetail.BUSY, 3)


async def test_agent_state__expected_version_never_inserts(store):
    other = await store.agents.create(
        AgentCreate(
            type=AgentType.RESOURCE,
            name="Resource",
            version="1",
            status=AgentStatus.ACTIVE,
        )
    )
    with pytest.raises(NotFound):
        await store.agent_states.upsert(AgentStateUpsert(agent_id=other.id), expected_version=1)
    assert await store.agent_states.count() == 0


async def test_create__same_idempotency_key_returns_the_first_row(store, agent, customer):
    first = await store.workflow_executions.create(new_execution(agent, customer, idempotency_key="run-42"))
    again = await store.workflow_executions.create(new_execution(agent, customer, idempotency_key="run-42"))
    assert again == first
    assert await store.workflow_executions.count() == 1


async def test_create__concurrent_retries_make_one_row(store, agent, customer):
    rows = await asyncio.gather(
        *(store.workflow_executions.create(new_execution(agent, customer, idempotency_key="burst")) for _ in range(10))
    )
    assert len({row.id for row in rows}) == 1
    assert await store.workflow_executions.count() == 1


async def test_create__key_is_per_agent_and_optional(store, agent, customer):
    other = await store.agents.create(
        AgentCreate(
            type=AgentType.PERFORMANCE,
            name="Perf",
            version="1",
            status=AgentStatus.ACTIVE,
        )
    )
    mine = await store.workflow_executions.create(new_execution(agent, customer, idempotency_key="k"))
    theirs = await store.workflow_executions.create(new_execution(other, customer, idempotency_key="k"))
    assert mine.id != theirs.id
    unkeyed = [await store.workflow_executions.create(new_execution(agent, customer)) for _ in range(2)]
    assert unkeyed[0].id != unkeyed[1].id and unkeyed[0].idempotency_key is None
    assert await store.workflow_executions.count() == 4


async def test_create__key_reused_for_another_request_is_refused(store, agent, customer):
    first = await store.workflow_executions.create(new_execution(agent, customer, idempotency_key="k"))
    with pytest.raises(AlreadyExists, match=str(first.id)) as info:
        await store.workflow_executions.create(
            WorkflowExecutionCreate(
                agent_id=agent.id,
                customer_id=customer.id,
                workflow_type=WorkflowType.PERFORMANCE_TUNING,
                idempotency_key="k",
            )
        )
    assert info.value.constraint == "workflow_executions_customer_id_agent_id_idempotency_key_key"
    assert await store.workflow_executions.count() == 1


async def test_create__this_code_before_and_after_keys_became_per_customer(scratch_dsn):
    """The code is deployed before 0021 runs: on the key per agent it answers as it did, on the key
    per customer each customer's keys are its own."""
    from optiinfra_store import Store, migrations
    from optiinfra_store.records import CustomerCreate

    migrations.apply(scratch_dsn, to="0020_database_connect")
    async with Store.connect(scratch_dsn, min_size=1, max_size=2) as store:
        agent = await store.agents.create(AgentCreate(type=AgentType.COST, name="Cost", version="1"))
        acme, globex = [
            await store.customers.create(CustomerCreate(name=n, email=f"ops@{n}.example")) for n in ("acme", "globex")
        ]
        first = await store.workflow_executions.create(new_execution(agent, acme, idempotency_key="k"))
        assert await store.workflow_executions.create(new_execution(agent, acme, idempotency_key="k")) == first
        with pytest.raises(AlreadyExists, match="another customer"):
            await store.workflow_executions.create(new_execution(agent, globex, idempotency_key="k"))
        migrations.apply(scratch_dsn)
        theirs = await store.workflow_executions.create(new_execution(agent, globex, idempotency_key="k"))
        assert theirs.id != first.id and theirs.customer_id == globex.id
        assert await store.workflow_executions.create(new_execution(agent, acme, idempotency_key="k")) == first
