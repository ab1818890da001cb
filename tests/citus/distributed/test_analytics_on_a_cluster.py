"""Analytics on a schema distributed by customer: a customer's call is two statements, the plan on
the coordinator and the answer in one task on the node holding that customer's rows and rollups;
over every customer the answer adds up the customers' on both workers, from the rollups and from
the raw rows alike."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import psycopg

from optiinfra_store.enums import WorkflowStatus
from optiinfra_store.queries import load
from tests.citus.distributed.test_purge_by_shard import placed_customers
from tests.integration.test_workflow_rollups import create_at

NOW = datetime.now(UTC)
WINDOW = {"since": NOW - timedelta(days=3), "until": NOW}
_q = load("workflow_executions")


def node_of(dsn: str, customer: uuid.UUID) -> int:
    """The port of the worker holding the customer's executions."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            "SELECT nodeport FROM citus_shards"
            " WHERE shardid = get_shard_id_for_distribution_column('workflow_executions', %s::uuid)",
            (customer,),
        ).fetchone()[0]


async def history(store, agent, customers: list[uuid.UUID]) -> None:
    """Finished executions of each customer over the window's three days, and one of this hour."""
    for n, customer in enumerate(customers):
        for hours_ago in (60, 40, 20, 2, 0):
            started = NOW - timedelta(hours=hours_ago, minutes=5 + n)
            await create_at(
                store,
                started,
                agent_id=agent.id,
                customer_id=customer,
                workflow_type="cost_analysis",
                status=WorkflowStatus.COMPLETED,
                started_at=started,
                completed_at=started + timedelta(seconds=30 * (n + 1)),
            )


async def test_one_customer__each_statement_is_one_task_on_the_node_of_its_rows(store, clean_dsn, agent):
    customers = placed_customers(clean_dsn)
    await history(store, agent, customers)
    await store.maintain()
    customer = customers[2]
    conn = await asyncpg.connect(clean_dsn)
    try:
        plan = await conn.fetchrow(_q.rollup_plan, WINDOW["since"], WINDOW["until"], False, True, customer)
        assert plan["days"] and plan["raw_los"]  # both sources read
        width = timedelta(hours=6) // timedelta(microseconds=1)
        for name, sql, args in [
            ("statistics", _q.statistics, (customer, None, None, *plan[2:])),
            ("performance", _q.performance, (customer, None, None, *plan[2:])),
            ("trend", _q.trend, (customer, None, None, plan["since"], plan["until"], width, *plan[2:])),
        ]:
            [explained] = json.loads(await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args))
            distributed = explained["Plan"]["Distributed Query"]
            assert "Subplans" not in distributed, name  # nothing read first elsewhere
            [task] = distributed["Job"]["Tasks"]
            assert f"port={node_of(clean_dsn, customer)} " in task["Node"], (name, task["Node"])
    finally:
        await conn.close()


async def test_every_customer__adds_up_each_customers_answer_from_both_workers(store, clean_dsn, agent):
    customers = placed_customers(clean_dsn)
    await history(store, agent, customers)
    for rolled_up in (False, True):
        if rolled_up:
            assert (await store.maintain()).rollup_hours > 0
        overall = await store.workflow_executions.statistics(**WINDOW)
        each = [await store.workflow_executions.statistics(customer_id=c, **WINDOW) for c in customers]
        assert overall.total == sum(s.total for s in each) == 15, rolled_up
        assert overall.max_duration_seconds == max(s.max_duration_seconds for s in each) == 90.0
        trend = await store.workflow_executions.trend(bucket=timedelta(days=1), **WINDOW)
        assert sum(b.total for b in trend) == 15
        performance = await store.workflow_executions.performance(**WINDOW)
        assert performance.finished == 15 and performance.success_rate == 1.0
