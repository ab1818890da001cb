"""Reads from a real streaming replica (a throwaway primary and a `pg_basebackup -R` copy): lists
and analytics are served by the replica (shown by pausing its replay: they miss the newest write),
writes, `get` and transactions by the primary, `store.primary()` reads its own writes, a stopped
replica sends reads to the primary, and a write that reaches a replica is ReadOnlyServer."""

from __future__ import annotations

import logging

import pytest

from optiinfra_store import Store
from optiinfra_store.enums import WorkflowType
from optiinfra_store.errors import InvalidArgument, ReadOnlyServer
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


async def test_a_write_sent_to_a_replica_is_read_only_server(cluster):
    async with Store.connect(cluster.replica_dsn) as replica:
        with pytest.raises(ReadOnlyServer):
            await replica.customers.create(CustomerCreate(name="Nope", email="n@replica.example"))


@pytest.mark.parametrize("read_dsn", [[], [""], ["postgresql://a@b/c", 5]])
async def test_read_dsn__must_name_replicas(read_dsn):
    with pytest.raises(InvalidArgument):
        await Store.connect("postgresql://nobody@127.0.0.1:1/none", read_dsn=read_dsn)
