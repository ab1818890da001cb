"""Reads from a real streaming replica (a throwaway primary and a `pg_basebackup -R` copy): lists
and analytics are served by the replica (shown by pausing its replay: they miss the newest write),
writes, `get` and transactions by the primary, `store.primary()` reads its own writes, a stopped
replica sends reads to the primary, and a write that reaches a replica is ReadOnlyServer."""

from __future__ import annotations

import logging
import uuid

import pytest

from optiinfra_store import Store
from optiinfra_store.enums import WorkflowType
from optiinfra_store.errors import InvalidArgument, NotFound, ReadOnlyServer
from optiinfra_store.records import AgentCreate, CustomerCreate, WorkflowExecutionCreate
from tests.pg import replicated_cluster


@pytest.fixture(scope="module")
def cluster():
    with replicated_cluster() as made:
        yield made


async def execution(store, customer, agent):
    return await store.workflow_executions.create(
        WorkflowExecutionCreate(agent_id=agent.id, customer_id=customer.id, workflow_type=WorkflowType.HEALTH_CHECK)
    )


async def test_reads_go_to_the_replica_writes_and_gets_to_the_primary(cluster):
    async with Store.connect(cluster.primary_dsn, read_dsn=cluster.replica_dsn) as store:
        customer = await store.customers.create(CustomerCreate(name="Replicated", email="r@replica.example"))
        agent = await store.agents.create(AgentCreate(type="cost", name="replicated", version="1"))
        first = await execution(store, customer, agent)
        cluster.caught_up()
        cluster.replay(paused=True)
        try:
            second = await execution(store, customer, agent)  # on the primary only, for now
            assert (await store.workflow_executions.get(second.id)).id == second.id  # get: the primary
            listed = {e.id for e in await store.workflow_executions.list(customer_id=customer.id)}
            assert listed == {first.id}  # the replica has not replayed the second yet
            assert (await store.workflow_executions.statistics(customer_id=customer.id)).total == 1
            confined = store.for_customer(customer.id)
            assert {e.id for e in await confined.workflow_executions.list()} == {first.id}
            own = {e.id for e in await store.primary().workflow_executions.list(customer_id=customer.id)}
            assert own == {first.id, second.id}  # read-your-writes
            async with store.transaction() as tx:  # a transaction is on the primary, reads included
                assert len(await tx.workflow_executions.list(customer_id=customer.id)) == 2
        finally:
            cluster.replay(paused=False)
        cluster.caught_up()
        assert len(await store.workflow_executions.list(customer_id=customer.id)) == 2


async def test_a_stopped_replica_sends_reads_to_the_primary(cluster, caplog):
    async with Store.connect(cluster.primary_dsn, read_dsn=[cluster.replica_dsn]) as store:
        customer = await store.customers.create(CustomerCreate(name="Fallback", email="f@replica.example"))
        agent = await store.agents.create(AgentCreate(type="cost", name="fallback", version="1"))
        made = await execution(store, customer, agent)
        cluster.stop("replica")
        try:
            with caplog.at_level(logging.WARNING, logger="optiinfra_store"):
                listed = await store.workflow_executions.list(customer_id=customer.id)
                assert [e.id for e in listed] == [made.id]
                assert (await store.workflow_executions.statistics(customer_id=customer.id)).total == 1
            assert "read replica 0 unavailable" in caplog.text
        finally:
            cluster.start("replica", cluster.replica_port)
        cluster.caught_up()


async def test_history__on_the_replica_an_unknown_execution_is_not_found(cluster):
    """history() reads on a replica, its existence check included (a plain read: nothing in it may
    write, which a replica refuses)."""
    async with Store.connect(cluster.primary_dsn, read_dsn=cluster.replica_dsn) as store:
        customer = await store.customers.create(CustomerCreate(name="History", email="h@replica.example"))
        agent = await store.agents.create(AgentCreate(type="cost", name="history", version="1"))
        made = await execution(store, customer, agent)
        cluster.caught_up()
        assert [t.to_status for t in await store.workflow_executions.history(made.id)] == ["pending"]
        with pytest.raises(NotFound):
            await store.workflow_executions.history(uuid.uuid4())


async def test_a_write_sent_to_a_replica_is_read_only_server(cluster):
    async with Store.connect(cluster.replica_dsn) as replica:
        with pytest.raises(ReadOnlyServer):
            await replica.customers.create(CustomerCreate(name="Nope", email="n@replica.example"))


@pytest.mark.parametrize("read_dsn", [[], [""], ["postgresql://a@b/c", 5]])
async def test_read_dsn__must_name_replicas(read_dsn):
    with pytest.raises(InvalidArgument):
        await Store.connect("postgresql://nobody@127.0.0.1:1/none", read_dsn=read_dsn)


async def test_analytics__plan_and_reads_on_one_replica_when_replicas_differ(cluster):
    """A plan read on a server that has rolled up a day, and the reads it plans on one that has not
    (a replica further behind), would leave out that day's executions: both go to one server."""
    from datetime import UTC, datetime, timedelta

    async with Store.connect(cluster.primary_dsn) as primary:
        customer = await primary.customers.create(CustomerCreate(name="Planned", email="p@replica.example"))
        agent = await primary.agents.create(AgentCreate(type="cost", name="planned", version="1"))
        days_ago = datetime.now(UTC) - timedelta(days=3)
        for _ in range(3):
            made = await execution(primary, customer, agent)
            await primary.pool.execute(
                "UPDATE workflow_executions SET created_at = $3 WHERE customer_id = $1 AND id = $2",
                customer.id,
                made.id,
                days_ago,
            )
        cluster.caught_up()
        cluster.replay(paused=True)
        try:
            assert (await primary.maintain()).rollup_hours > 0  # the replica has not replayed the rollups
            # two read servers that differ: the primary itself, and the paused replica
            async with Store.connect(cluster.primary_dsn, read_dsn=[cluster.primary_dsn, cluster.replica_dsn]) as store:
                for _ in range(4):  # the servers taken in turns
                    assert (await store.workflow_executions.statistics(customer_id=customer.id)).total == 3
                    trend = await store.workflow_executions.trend(
                        bucket=timedelta(days=1), since=days_ago - timedelta(days=1), customer_id=customer.id
                    )
                    assert sum(b.total for b in trend) == 3
                    assert (await store.workflow_executions.performance(customer_id=customer.id)).finished == 0
        finally:
            cluster.replay(paused=False)
