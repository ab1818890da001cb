"""maintain() on a schema distributed by customer: every write marks its hour for its customer on
the worker holding the row (0025), and maintain() on the coordinator consumes the marks of both
workers, misses no hour (a writer committing while it runs included), and leaves none behind; and a
daily metric partition it makes is distributed with agent_metrics, its points on the workers."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

import asyncpg
import psycopg
from psycopg import sql

from optiinfra_store.records import AgentMetricCreate
from tests.citus.distributed.test_purge_by_shard import placed_customers
from tests.pg import CitusCluster

HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
"""A closed hour, the executions' hour of creation."""


async def running_in(conn: asyncpg.Connection, agent, customer_id: uuid.UUID) -> uuid.UUID:
    """A running execution of the customer created in HOUR (raw SQL, routed by customer)."""
    return await conn.fetchval(
        "INSERT INTO workflow_executions (agent_id, customer_id, workflow_type, status, started_at, created_at)"
        " VALUES ($1, $2, 'cost_analysis', 'running', $3, $3) RETURNING id",
        agent.id,
        customer_id,
        HOUR + timedelta(minutes=5),
    )


async def hour_figures(conn: asyncpg.Connection) -> tuple[int, int] | None:
    """(total, completed) of HOUR's rollup over every customer, agent and type; None if not rolled up."""
    row = await conn.fetchrow(
        "SELECT total, completed FROM workflow_rollups WHERE width = 'hour' AND bucket = $1"
        " AND customer_id = optiinfra_everyone() AND agent_id = optiinfra_everyone() AND workflow_type IS NULL",
        HOUR,
    )
    return None if row is None else (row["total"], row["completed"])


async def marks_by_node(conn: asyncpg.Connection) -> dict[int, int]:
    """How many marks of closed hours each worker holds."""
    rows = await conn.fetch(
        "SELECT s.nodeport, count(*) FROM workflow_rollup_pending p"
        " JOIN citus_shards s ON s.shardid = get_shard_id_for_distribution_column('workflow_rollup_pending', p.customer_id)"
        " WHERE p.hour < date_trunc('hour', now()) GROUP BY 1"
    )
    return dict(rows)


async def test_maintain__consumes_the_marks_of_both_workers_and_rolls_every_hour_up(
    store, clean_dsn, agent, citus: CitusCluster
):
    customers = placed_customers(clean_dsn)
    conn = await asyncpg.connect(clean_dsn)
    try:
        executions = [await running_in(conn, agent, customer) for customer in customers]
        report = await store.maintain()
        assert report.rollup_hours >= 1 and await hour_figures(conn) == (3, 0)
        assert await marks_by_node(conn) == {}

        for execution in executions:  # changes to a rolled-up hour, on both workers
            await store.workflow_executions.complete(execution)
        assert set(await marks_by_node(conn)) == set(citus.worker_ports)
        assert await hour_figures(conn) == (3, 0)  # stale until maintain(); readers take the hour raw

        assert (await store.maintain()).rollup_hours >= 1  # the hour marked (and one that closed since, if any)
        assert await marks_by_node(conn) == {}
        assert await hour_figures(conn) == (3, 3)
        assert (await store.maintain()).rollup_hours == 0
    finally:
        await conn.close()


async def test_maintain__a_writer_committing_while_it_runs_is_rolled_up_by_the_next(store, clean_dsn, agent):
    customer = placed_customers(clean_dsn)[2]
    conn = await asyncpg.connect(clean_dsn)
    writer = await asyncpg.connect(clean_dsn)
    try:
        execution = await running_in(conn, agent, customer)
        await store.maintain()
        async with writer.transaction():  # its change, and its mark, commit after maintain() read the hour
            await writer.execute(
                "UPDATE workflow_executions SET status = 'completed', completed_at = now()"
                " WHERE customer_id = $1 AND id = $2",
                customer,
                execution,
            )
            assert (await store.maintain()).rollup_hours == 0  # nothing of it to see yet, nothing waited for
        assert await hour_figures(conn) == (1, 0)
        assert await conn.fetchval(
            "SELECT count(*) FROM workflow_rollup_pending WHERE customer_id = $1 AND hour = $2", customer, HOUR
        ) >= 1  # fmt: skip
        assert (await store.maintain()).rollup_hours == 1
        assert await hour_figures(conn) == (1, 1)
        assert await marks_by_node(conn) == {}
    finally:
        await writer.close()
        await conn.close()


async def test_maintain__a_partition_it_makes_is_distributed_and_its_points_are_on_the_workers(
    store, clean_dsn, agent, citus: CitusCluster
):
    day = date(2021, 6, 1)
    name = f"agent_metrics_p{day:%Y%m%d}"
    at = datetime.combine(day, time(12), UTC)
    await store.agent_metrics.record_many(
        [AgentMetricCreate(agent_id=agent.id, metric_name="gpu", metric_value=float(i), collection_timestamp=at) for i in range(50)]
    )  # fmt: skip
    try:
        assert (await store.maintain()).metric_partitions_created >= 1  # the day the default partition caught
        with psycopg.connect(clean_dsn, autocommit=True) as conn:
            colocated = conn.execute(
                "SELECT p.colocationid = (SELECT colocationid FROM pg_dist_partition"
                " WHERE logicalrelid = 'agent_metrics'::regclass)"
                " FROM pg_dist_partition p WHERE p.logicalrelid = %s::regclass",
                (name,),
            ).fetchone()
            nodes = {
                port
                for (port,) in conn.execute(
                    "SELECT nodeport FROM citus_shards WHERE table_name = %s::regclass", (name,)
                )
            }
            points = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))).fetchone()[0]
            # the coordinator's own copy of the partition, which the points passed through: emptied
            local = conn.execute("SELECT pg_relation_size(%s::regclass)", (name,)).fetchone()[0]
            left = conn.execute("SELECT count(*) FROM agent_metrics_default").fetchone()[0]
        assert colocated == (True,)
        assert nodes == set(citus.worker_ports)
        assert (points, local, left) == (50, 0, 0)
        assert await store.agent_metrics.purge(at + timedelta(days=1)) == 50  # the day's partition dropped whole
    finally:
        with psycopg.connect(clean_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))
