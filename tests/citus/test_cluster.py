"""The Citus harness: a coordinator with two active workers, where a distributed table's shards
and rows land, the project's schema and store on the coordinator, and tests/integration run here
whole (each of its modules imported by a test_integration_*.py of this directory)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from optiinfra_store import Store, migrations
from optiinfra_store.enums import AgentType, WorkflowType
from optiinfra_store.records import AgentCreate, CustomerCreate, WorkflowExecutionCreate
from tests.pg import CitusCluster


@pytest.fixture(scope="module")
def citus_dsn(databases) -> str:
    """A database of the module's own, for tables the project's schema does not have."""
    return databases.create("optiinfra_citus")


def test_cluster__coordinator_lists_both_workers_active(citus: CitusCluster, citus_dsn: str):
    with psycopg.connect(citus_dsn) as conn:
        active = conn.execute("SELECT node_name, node_port FROM citus_get_active_worker_nodes()").fetchall()
    assert sorted(active) == sorted(("127.0.0.1", port) for port in citus.worker_ports)


def test_distributed_table__shards_on_both_workers_and_a_row_on_exactly_one(citus: CitusCluster, citus_dsn: str):
    with psycopg.connect(citus_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE readings (tenant_id int NOT NULL, value text NOT NULL)")
        conn.execute("SELECT create_distributed_table('readings', 'tenant_id')")
        placements = conn.execute(
            "SELECT shardid, nodeport FROM citus_shards WHERE table_name = 'readings'::regclass"
        ).fetchall()
        conn.execute("INSERT INTO readings VALUES (7, 'seven')")
        assert conn.execute("SELECT tenant_id, value FROM readings").fetchall() == [(7, "seven")]
        (home,) = conn.execute(
            "SELECT nodeport FROM citus_shards WHERE shardid = get_shard_id_for_distribution_column('readings', 7)"
        ).fetchone()
    assert {port for _, port in placements} == set(citus.worker_ports)

    held = {}
    for port, dsn in zip(citus.worker_ports, citus.worker_dsns(citus_dsn), strict=True):
        # the shards themselves: on a worker `readings` is the distributed table again, read
        # through every node
        shards = sql.SQL(" UNION ALL ").join(
            sql.SQL("SELECT value FROM {}").format(sql.Identifier(f"readings_{shardid}"))
            for shardid, shard_port in placements
            if shard_port == port
        )
        with psycopg.connect(dsn) as worker:
            held[port] = [row[0] for row in worker.execute(shards)]
    assert held == {port: ["seven"] if port == home else [] for port in citus.worker_ports}


async def test_schema__migrations_apply_on_the_coordinator_and_the_store_reads_back(migrated_dsn: str, clean_dsn: str):
    assert not [state.id for state in migrations.status(migrated_dsn) if not state.applied]
    async with Store.connect(clean_dsn, min_size=1, max_size=2) as store:
        customer = await store.customers.create(CustomerCreate(name="Acme Corp", email="platform@acme.example"))
        agent = await store.agents.create(AgentCreate(type=AgentType.COST, name="Cost Optimizer", version="1.2.0"))
        execution = await store.workflow_executions.create(
            WorkflowExecutionCreate(
                agent_id=agent.id,
                customer_id=customer.id,
                workflow_type=WorkflowType.COST_ANALYSIS,
                input_data={"region": "eu-west-1"},
            )
        )
        assert await store.customers.get(customer.id) == customer
        assert await store.agents.get(agent.id) == agent
        assert await store.workflow_executions.get(execution.id) == execution


def test_integration_suites__every_module_is_imported_here():
    integration = Path(__file__).parents[1] / "integration"
    imported = {
        path.name.removeprefix("test_integration_") for path in Path(__file__).parent.glob("test_integration_*.py")
    }
    assert imported == {path.name.removeprefix("test_") for path in integration.glob("test_*.py")}
