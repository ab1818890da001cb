"""Multi-host DSNs on a real primary and its streaming replica (a throwaway pair), the replica
listed first: with target_session_attrs=read-write the store's connections land on the primary in
both forms; a DSN listing only the standby, or servers none of which answers, is StoreUnavailable
naming every server, never its password; after the standby is promoted, the same store writes
to it. Live events wait for the synchronous standby."""

from __future__ import annotations

import asyncio

import asyncpg
import psycopg
import pytest

from optiinfra_store import Store
from optiinfra_store.enums import WorkflowType
from optiinfra_store.errors import AccessDenied, StoreUnavailable
from optiinfra_store.records import AgentCreate, CustomerCreate, WorkflowExecutionCreate
from tests.pg import free_port, replicated_cluster

FORMS = ["uri", "host-list"]
READ_WRITE = {"target_session_attrs": "read-write"}


@pytest.fixture(scope="module")
def cluster():
    with replicated_cluster() as made:
        yield made


async def server_of(conn: asyncpg.Connection) -> tuple[int, bool]:
    """(port, in recovery) of the server `conn` talks to."""
    row = await conn.fetchrow("SELECT inet_server_port() AS port, pg_is_in_recovery() AS standby")
    assert row is not None
    return row["port"], row["standby"]


@pytest.mark.parametrize("form", FORMS)
async def test_connect__read_write_lands_on_the_primary_listed_second(cluster, form):
    dsn = cluster.listing(cluster.replica_port, cluster.primary_port, form=form, **READ_WRITE)
    async with Store.connect(dsn, min_size=2, max_size=2, read_dsn=cluster.replica_dsn) as store:
        async with store.pool.acquire() as first, store.pool.acquire() as second:
            assert [await server_of(first), await server_of(second)] == [(cluster.primary_port, False)] * 2
        customer = await store.customers.create(CustomerCreate(name="Listed second", email=f"{form}@multi.example"))
        async with store.transaction() as tx:
            assert await server_of(tx.connection) == (cluster.primary_port, False)
            assert (await tx.customers.get(customer.id)).id == customer.id
        async with store.read_pools[0].acquire() as replica:  # read_dsn names the standby itself
            assert await server_of(replica) == (cluster.replica_port, True)


@pytest.mark.parametrize("form", FORMS)
async def test_connect__only_the_standby_listed_is_store_unavailable_naming_it(cluster, form):
    dsn = cluster.listing(cluster.replica_port, form=form, password="s3cret", **READ_WRITE)
    with pytest.raises(StoreUnavailable) as refused:
        await Store.connect(dsn)
    message = str(refused.value)
    assert message.startswith(f"no listed server is a primary: 127.0.0.1:{cluster.replica_port} answered"), message
    assert "s3cret" not in message
    assert isinstance(refused.value.__cause__, asyncpg.TargetServerAttributeNotMatched)


@pytest.mark.parametrize("down_first", [True, False], ids=["down_first", "standby_first"])
async def test_connect__one_listed_server_down_the_other_a_standby_names_both(cluster, down_first):
    """asyncpg reports the last failure it met (the server that refused), not the standby it passed
    over: the error names every server listed all the same."""
    nowhere = free_port()
    ports = (nowhere, cluster.replica_port) if down_first else (cluster.replica_port, nowhere)
    dsn = cluster.listing(*ports, form="uri", password="s3cret", **READ_WRITE)
    with pytest.raises(StoreUnavailable) as refused:
        await Store.connect(dsn)
    message = str(refused.value)
    assert message.startswith(f"cannot connect to any of 127.0.0.1:{ports[0]}, 127.0.0.1:{ports[1]}: "), message
    assert "s3cret" not in message


async def test_calls__no_listed_server_answering_names_every_one_then_the_store_recovers(cluster):
    nowhere = free_port()
    dsn = cluster.listing(nowhere, cluster.primary_port, form="host-list", password="s3cret", **READ_WRITE)
    async with Store.connect(dsn, min_size=1, max_size=1) as store:
        await store.customers.count()
        cluster.stop("primary")
        try:
            messages = []
            for _ in range(3):  # the first call may find its pooled connection lost; the next reconnects
                with pytest.raises(StoreUnavailable) as refused:
                    await store.customers.count()
                messages.append(str(refused.value))
                if messages[-1].startswith("cannot connect"):
                    break
            message = messages[-1]
            assert message.startswith(
                f"cannot connect to any of 127.0.0.1:{nowhere}, 127.0.0.1:{cluster.primary_port}:"
            )
            assert "s3cret" not in message
        finally:
            cluster.start("primary", cluster.primary_port)
        for attempt in range(50):  # the same store works once the primary is back
            try:
                await store.customers.count()
                break
            except StoreUnavailable:
                if attempt == 49:
                    raise
                await asyncio.sleep(0.1)


async def test_failover__the_same_store_writes_to_the_promoted_standby():
    with replicated_cluster() as pair:  # its own: the promotion leaves no replica behind
        dsn = pair.listing(pair.primary_port, pair.replica_port, form="uri", **READ_WRITE)
        async with Store.connect(dsn, min_size=1, max_size=2) as store:
            before = await store.customers.create(CustomerCreate(name="Before", email="before@failover.example"))
            pair.caught_up()
            pair.stop("primary")
            pair.promote()
            for attempt in range(50):  # calls in flight fail; a new connection finds the new primary
                try:
                    after = await store.customers.create(CustomerCreate(name="After", email="after@failover.example"))
                    break
                except StoreUnavailable:
                    if attempt == 49:
                        raise
                    await asyncio.sleep(0.1)
            async with store.transaction() as tx:
                assert await server_of(tx.connection) == (pair.replica_port, False)
                assert {c.id for c in await tx.customers.list()} >= {before.id, after.id}


async def test_events__a_commit_the_synchronous_standby_has_not_flushed_is_held_back():
    """A commit the primary shows before its synchronous standby has it (here synchronous_commit =
    local while the standby is down; in a failover, a wait for the standby cut short) reaches no
    subscriber until the standby has flushed it; with no synchronous standby configured, at once."""
    with replicated_cluster() as pair:  # its own: its settings change and its replica stops
        with psycopg.connect(pair.primary_dsn, autocommit=True) as admin:
            admin.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
            admin.execute("SELECT pg_reload_conf()")
        local = {"synchronous_commit": "local"}  # commits without waiting for the standby
        async with (
            Store.connect(pair.primary_dsn) as store,
            Store.connect(pair.primary_dsn, server_settings=local) as writer,
        ):
            agent = await store.agents.create(AgentCreate(type="cost", name="sync", version="1"))
            customer = await store.customers.create(CustomerCreate(name="Sync Corp", email="ops@sync.example"))
            async with store.workflow_events(customer_id=customer.id, poll_interval=0.05) as events:
                pair.stop("replica")
                execution = await writer.workflow_executions.create(
                    WorkflowExecutionCreate(
                        agent_id=agent.id, customer_id=customer.id, workflow_type=WorkflowType.HEALTH_CHECK
                    )
                )
                assert len(await store.workflow_executions.history(execution.id)) == 1  # committed, visible
                with pytest.raises(TimeoutError):  # but not on the standby: held back
                    await asyncio.wait_for(anext(events), 1.5)
                pair.start("replica", pair.replica_port)
                delivered = await asyncio.wait_for(anext(events), 30)
                assert delivered.workflow_execution_id == execution.id
                # an owner that may not read the standbys' positions: refused, naming the grant
                with psycopg.connect(pair.primary_dsn, autocommit=True) as admin:
                    admin.execute("CREATE ROLE optiinfra_test_plain_owner")
                    admin.execute("ALTER FUNCTION optiinfra_durable_lsn() OWNER TO optiinfra_test_plain_owner")
                await writer.workflow_executions.start(execution.id)
                with pytest.raises(AccessDenied, match="GRANT pg_monitor TO optiinfra_test_plain_owner"):
                    await asyncio.wait_for(anext(events), 10)
            with psycopg.connect(pair.primary_dsn, autocommit=True) as admin:
                admin.execute("ALTER FUNCTION optiinfra_durable_lsn() OWNER TO postgres")
                admin.execute("ALTER SYSTEM RESET synchronous_standby_names")
                admin.execute("SELECT pg_reload_conf()")
            async with store.workflow_events(customer_id=customer.id, after=delivered.id, poll_interval=0.05) as events:
                pair.stop("replica")  # no synchronous standby configured: committed is durable
                started = await asyncio.wait_for(anext(events), 10)  # the transition written above
                assert (started.workflow_execution_id, started.to_status) == (execution.id, "running")
                await store.workflow_executions.complete(execution.id)
                completed = await asyncio.wait_for(anext(events), 10)
                assert (completed.workflow_execution_id, completed.to_status) == (execution.id, "completed")
