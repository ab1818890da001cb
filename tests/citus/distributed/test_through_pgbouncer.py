"""pgbouncer (transaction mode, 4 server connections) in front of the Citus coordinator, the store
opened through it with pooler="transaction" on the distributed schema: the workflow path of agents
of customers on both workers, a race, a transaction with a savepoint, purge and maintain."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from optiinfra_store import Store
from optiinfra_store.enums import WorkflowStatus, WorkflowType
from optiinfra_store.errors import InvalidTransition
from optiinfra_store.records import WorkflowExecutionCreate, WorkflowStepCreate
from tests.citus.distributed.test_purge_by_shard import placed_customers
from tests.integration.test_pgbouncer import workflow
from tests.integration.test_retention import CUTOFF, OLD, make_execution
from tests.pg import pgbouncer


@pytest.fixture(scope="module")
def bouncer(migrated_dsn):
    """pgbouncer in front of the coordinator's distributed database."""
    with pgbouncer(migrated_dsn, pool_size=4) as dsn:
        yield dsn


@pytest.fixture
async def pooled(bouncer, clean_dsn):
    async with Store.connect(bouncer, pooler="transaction", min_size=1, max_size=20) as store:
        assert store.by_customer  # told through pgbouncer too
        yield store


@pytest.fixture
async def customers(store, clean_dsn):
    """Three customers, on both workers."""
    return [await store.customers.get(c) for c in placed_customers(clean_dsn)]


async def test_workflow_path__agents_of_customers_on_both_workers(pooled, clean_dsn, agent, customers):
    await asyncio.gather(*(workflow(pooled, agent, customer) for customer in customers for _ in range(10)))
    conn = await asyncpg.connect(clean_dsn)
    try:
        executions = dict(
            await conn.fetch(
                "SELECT customer_id, count(*) FROM workflow_executions WHERE status = 'completed' GROUP BY 1"
            )
        )
        steps = await conn.fetchval("SELECT count(*) FROM workflow_steps WHERE status = 'completed'")
        # each workflow: the execution's insert, start and completion, each of 3 steps' insert, start, completion
        transitions = dict(await conn.fetch("SELECT customer_id, count(*) FROM workflow_transitions GROUP BY 1"))
    finally:
        await conn.close()
    assert executions == {customer.id: 10 for customer in customers}
    assert steps == 90
    assert transitions == {customer.id: 10 * 12 for customer in customers}


async def test_race__one_winner(pooled, agent, customers):
    execution = await pooled.workflow_executions.create(
        WorkflowExecutionCreate(agent_id=agent.id, customer_id=customers[2].id, workflow_type=WorkflowType.HEALTH_CHECK)
    )
    await pooled.workflow_executions.start(execution.id)
    outcomes = await asyncio.gather(
        *(pooled.workflow_executions.complete(execution.id) for _ in range(10)), return_exceptions=True
    )
    assert sum(not isinstance(o, BaseException) for o in outcomes) == 1
    assert all(isinstance(o, InvalidTransition) for o in outcomes if isinstance(o, BaseException))


async def test_transaction__a_savepoint_rolled_back_and_the_rest_committed(pooled, agent, customers):
    async with pooled.transaction() as tx:
        execution = await tx.workflow_executions.create(
            WorkflowExecutionCreate(
                agent_id=agent.id, customer_id=customers[0].id, workflow_type=WorkflowType.HEALTH_CHECK
            )
        )
        with pytest.raises(RuntimeError):
            async with tx.transaction() as inner:
                await inner.workflow_executions.start(execution.id)
                raise RuntimeError("roll the savepoint back")
        await tx.workflow_steps.create(
            WorkflowStepCreate(workflow_execution_id=execution.id, step_name="kept", step_order=1)
        )
    detail = await pooled.workflow_executions.get_detail(execution.id)
    assert detail.status is WorkflowStatus.PENDING and [s.step_name for s in detail.steps] == ["kept"]


async def test_purge_and_maintain(pooled, store, clean_dsn, agent, customers):
    for customer in customers:
        await make_execution(store, agent, customer, WorkflowStatus.COMPLETED, at=OLD)
        await make_execution(store, agent, customer, WorkflowStatus.RUNNING, at=OLD)
    report = await pooled.workflow_executions.purge(finished_before=CUTOFF, batch_size=1)
    assert (report.executions, report.steps, report.artifacts) == (3, 6, 6)
    assert {e.status for e in await store.workflow_executions.list()} == {WorkflowStatus.RUNNING}
    await pooled.maintain(metric_days_ahead=8)
    ahead = f"agent_metrics_p{(datetime.now(UTC) + timedelta(days=8)).date():%Y%m%d}"
    conn = await asyncpg.connect(clean_dsn)
    try:
        made = {row[0] for row in await conn.fetch("SELECT partition::text FROM optiinfra_metric_partitions()")}
    finally:
        await conn.close()
    assert ahead in made


async def test_connections__leave_no_session_setting_on_the_servers_pgbouncer_shares(pooled):
    # the catalog setting a direct connection makes for itself (codecs.py) would stay on a server
    # connection pgbouncer hands to other clients: none is made through it
    async with pooled.pool.acquire() as conn:
        settings = {await conn.fetchval("SELECT current_setting('citus.override_table_visibility')") for _ in range(20)}
    assert settings == {"on"}
