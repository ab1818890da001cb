"""Through a real pgbouncer in transaction mode (4 server connections, more clients than that):
with pooler="transaction" the lifecycle, races, savepoints, confinement, record_many and live
events (on a direct connection) all work; without it, what the pooler breaks is a
ConfigurationError that says why."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from optiinfra_store import Store
from optiinfra_store.enums import WorkflowStatus, WorkflowType
from optiinfra_store.errors import ConfigurationError, InvalidArgument, InvalidTransition
from optiinfra_store.records import AgentMetricCreate, CustomerCreate, WorkflowExecutionCreate, WorkflowStepCreate
from tests.pg import pgbouncer


@pytest.fixture(scope="module")
def bouncer(migrated_dsn):
    with pgbouncer(migrated_dsn, pool_size=4) as dsn:
        yield dsn


@pytest.fixture
async def pooled(bouncer, clean_dsn):
    async with Store.connect(bouncer, pooler="transaction", min_size=1, max_size=20) as store:
        yield store


async def workflow(store, agent, customer, steps: int = 3) -> None:
    execution = await store.workflow_executions.create(
        WorkflowExecutionCreate(agent_id=agent.id, customer_id=customer.id, workflow_type=WorkflowType.COST_ANALYSIS)
    )
    await store.workflow_steps.create_many(
        [
            WorkflowStepCreate(workflow_execution_id=execution.id, step_name=f"s{i}", step_order=i)
            for i in range(1, steps + 1)
        ]
    )
    await store.workflow_executions.start(execution.id, actor="agent")
    for step in await store.workflow_steps.list(execution.id):
        await store.workflow_steps.start(step.id)
        await store.workflow_steps.complete(step.id, {"ok": True})
    await store.workflow_executions.complete(execution.id, {"done": True})
    await store.workflow_executions.get_detail(execution.id)


async def test_pooler_transaction__many_agents_run_workflows_through_it(pooled, agent, customer):
    await asyncio.gather(*(workflow(pooled, agent, customer) for _ in range(40)))
    stats = await pooled.workflow_executions.statistics()
    assert stats.count_by_status[WorkflowStatus.COMPLETED] == 40


async def test_pooler_transaction__a_race_has_one_winner(pooled, agent, customer):
    execution = await pooled.workflow_executions.create(
        WorkflowExecutionCreate(agent_id=agent.id, customer_id=customer.id, workflow_type=WorkflowType.HEALTH_CHECK)
    )
    await pooled.workflow_executions.start(execution.id)
    outcomes = await asyncio.gather(
        *(pooled.workflow_executions.complete(execution.id) for _ in range(10)), return_exceptions=True
    )
    assert sum(not isinstance(o, BaseException) for o in outcomes) == 1
    assert all(isinstance(o, InvalidTransition) for o in outcomes if isinstance(o, BaseException))


async def test_pooler_transaction__transactions_with_savepoints(pooled, agent, customer):
    async with pooled.transaction() as tx:
        execution = await tx.workflow_executions.create(
            WorkflowExecutionCreate(agent_id=agent.id, customer_id=customer.id, workflow_type=WorkflowType.HEALTH_CHECK)
        )
        with pytest.raises(RuntimeError):
            async with tx.transaction() as inner:
                await inner.workflow_executions.start(execution.id)
                raise RuntimeError("roll the savepoint back")
        await tx.workflow_executions.update(execution.id, {"metadata": {"kept": True}})
    stored = await pooled.workflow_executions.get(execution.id)
    assert stored.status is WorkflowStatus.PENDING and stored.metadata == {"kept": True}


async def test_pooler_transaction__confined_store_and_record_many(pooled, agent, customer):
    confined = pooled.for_customer(customer.id)
    await asyncio.gather(*(workflow(confined, agent, customer, steps=1) for _ in range(10)))
    assert (await confined.workflow_executions.statistics()).total == 10
    now = datetime.now(UTC)
    points = [
        AgentMetricCreate(
            agent_id=agent.id, metric_name="gpu", metric_value=float(i), collection_timestamp=now - timedelta(seconds=i)
        )
        for i in range(2000)
    ]
    assert await pooled.agent_metrics.record_many(points) == 2000
    assert await confined.agent_metrics.count() == 2000


async def test_pooler_transaction__live_events_need_and_use_a_direct_connection(bouncer, clean_dsn, agent, customer):
    async with Store.connect(bouncer, pooler="transaction") as store:
        with pytest.raises(ConfigurationError, match="events_dsn"):
            async with store.workflow_events():
                pass
    async with Store.connect(bouncer, pooler="transaction", events_dsn=clean_dsn) as store:
        execution = await store.workflow_executions.create(
            WorkflowExecutionCreate(agent_id=agent.id, customer_id=customer.id, workflow_type=WorkflowType.HEALTH_CHECK)
        )
        async with store.workflow_events(execution_id=execution.id) as events:
            await store.workflow_executions.start(execution.id)
            event = await asyncio.wait_for(anext(events), 10)
        assert event.to_status == WorkflowStatus.RUNNING


async def test_default_options__what_the_pooler_breaks_is_a_configuration_error(bouncer, clean_dsn, agent, customer):
    errors: list[BaseException] = []
    try:  # fails opening the pool (its codecs' lookups are prepared statements too) or in the calls
        async with Store.connect(bouncer, min_size=10, max_size=10) as store:
            outcomes = await asyncio.gather(
                *(workflow(store, agent, customer, steps=2) for _ in range(30)), return_exceptions=True
            )
        errors = [o for o in outcomes if isinstance(o, BaseException)]
    except ConfigurationError as exc:
        errors = [exc]
    assert errors, "named prepared statements went through a transaction pooler unharmed"
    assert all(isinstance(e, ConfigurationError) and 'pooler="transaction"' in str(e) for e in errors), errors


async def test_a_startup_setting_the_pooler_refuses__is_a_configuration_error(bouncer):
    with pytest.raises(ConfigurationError, match="startup parameter"):
        await Store.connect(bouncer, server_settings={"jit": "off"})


@pytest.mark.parametrize(
    "options",
    [
        {"pooler": "session"},
        {"pooler": "transaction", "statement_timeout": 5},
        {"pooler": "transaction", "server_settings": {"jit": "off"}},
        {"pooler": "transaction", "statement_cache_size": 100},
    ],
)
async def test_pooler_options__what_a_transaction_pooler_cannot_honour_is_refused(options):
    with pytest.raises(InvalidArgument):
        await Store.connect("postgresql://nobody@127.0.0.1:1/none", **options)


async def test_session_pooler__confined_calls_take_a_transaction_each_and_leave_nothing_bound(
    migrated_dsn, clean_dsn, agent, customer
):
    """pgbouncer answers a client's startup itself (its own process id), so the store never binds a
    connection through it for the session, in any pool mode: confined calls take a transaction
    each, even without pooler="transaction"."""
    from optiinfra_store.connection import executor

    with pgbouncer(migrated_dsn, pool_size=1, pool_mode="session", ignore="extra_float_digits, jit") as session_bouncer:
        async with Store.connect(session_bouncer, min_size=1, max_size=1) as store:
            other = await store.customers.create(CustomerCreate(name="Other Corp", email="ops@other.example"))
            mine = await store.workflow_executions.create(
                WorkflowExecutionCreate(
                    agent_id=agent.id, customer_id=customer.id, workflow_type=WorkflowType.COST_ANALYSIS
                )
            )
            acme = store.for_customer(customer.id)
            assert (await acme.workflow_executions.get(mine.id)).id == mine.id
            assert await store.for_customer(other.id).workflow_executions.count() == 0
            async with store.pool.acquire() as conn:
                assert executor._driver_connection(conn) not in executor._direct
                role, bound = await conn.fetchrow("SELECT current_user, current_setting('optiinfra.customer_id', true)")
            assert role != "optiinfra_tenant" and not bound
            # a connection taken for direct by mistake: the binding names another server process
            # than the connection's startup did, and the call is refused
            async with store.pool.acquire() as conn:
                executor._direct.add(executor._driver_connection(conn))
            with pytest.raises(ConfigurationError, match="pooler='transaction'"):
                await acme.workflow_executions.get(mine.id)
            assert (await acme.workflow_executions.get(mine.id)).id == mine.id  # a new connection
