"""Retention on a schema distributed by customer: purge's batches go shard by shard (Citus locks
rows only in a statement that goes to one shard), over customers on both workers, each batch with
its children, skipping what another transaction holds, and all or nothing inside a transaction
that spans both workers."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import asyncpg
import psycopg
import pytest

from optiinfra_store.enums import WorkflowStatus
from optiinfra_store.records import PurgeReport
from tests.integration.test_retention import CUTOFF, NOW, OLD, TABLES, as_report, make_execution, table_counts


def placed_customers(dsn: str) -> list[uuid.UUID]:
    """Three customers made with ids chosen for where their rows go: the first two share a shard,
    the third is on the other worker."""
    with psycopg.connect(dsn, autocommit=True) as conn:

        def home(customer: uuid.UUID) -> tuple[int, int]:
            return conn.execute(
                "SELECT s.shardid, s.nodeport FROM citus_shards s WHERE s.shardid ="
                " get_shard_id_for_distribution_column('workflow_executions', %s::uuid)",
                (customer,),
            ).fetchone()

        first = uuid.uuid4()
        shard, port = home(first)
        twin = other = None
        while twin is None or other is None:
            candidate = uuid.uuid4()
            candidate_shard, candidate_port = home(candidate)
            if twin is None and candidate_shard == shard:
                twin = candidate
            elif other is None and candidate_port != port:
                other = candidate
        chosen = [first, twin, other]
        for n, customer in enumerate(chosen):
            conn.execute(
                "INSERT INTO customers (id, name, email) VALUES (%s, %s, %s)",
                (customer, f"Customer {n}", f"ops{n}@customer{n}.example"),
            )
    return chosen


@pytest.fixture
async def spread(store, clean_dsn, agent):
    """For each of three customers on both workers: two long-finished executions (with steps,
    artifacts and transitions), a recent one and an old running one. Returns {customer id:
    {name: execution}}."""
    customers = placed_customers(clean_dsn)
    made = {}
    for customer_id in customers:
        customer = await store.customers.get(customer_id)
        made[customer_id] = {
            "old_completed": await make_execution(store, agent, customer, WorkflowStatus.COMPLETED, at=OLD),
            "old_failed": await make_execution(store, agent, customer, WorkflowStatus.FAILED, at=OLD, steps=1),
            "recent": await make_execution(
                store, agent, customer, WorkflowStatus.COMPLETED, at=NOW - timedelta(days=1), steps=0
            ),
            "old_running": await make_execution(store, agent, customer, WorkflowStatus.RUNNING, at=OLD, steps=1),
        }
    return made


def doomed_ids(spread) -> list:
    return [made[name].id for made in spread.values() for name in ("old_completed", "old_failed")]


async def test_purge__goes_shard_by_shard_over_both_workers_with_every_child(store, clean_dsn, spread):
    expected = await table_counts(clean_dsn, doomed_ids(spread))
    before = await table_counts(clean_dsn)
    assert store.by_customer
    assert await store.workflow_executions.purge(finished_before=CUTOFF, dry_run=True) == as_report(expected)

    batches: list[PurgeReport] = []
    report = await store.workflow_executions.purge(finished_before=CUTOFF, on_batch=batches.append)

    assert report == as_report(expected) and report.executions == 6
    assert len(batches) == 2  # one batch a shard: the two customers sharing one are deleted together
    assert await table_counts(clean_dsn, doomed_ids(spread)) == dict.fromkeys(TABLES, 0)
    assert await table_counts(clean_dsn) == {table: before[table] - expected[table] for table in TABLES}
    assert await store.workflow_executions.purge(finished_before=CUTOFF) == PurgeReport()


async def test_purge__small_batches_on_every_shard_give_the_same_result(store, clean_dsn, spread):
    expected = await store.workflow_executions.purge(finished_before=CUTOFF, dry_run=True)
    batches: list[PurgeReport] = []
    assert await store.workflow_executions.purge(finished_before=CUTOFF, batch_size=1, on_batch=batches.append) == (
        expected
    )
    assert [b.executions for b in batches] == list(range(1, 7))
    conn = await asyncpg.connect(clean_dsn)
    try:
        left = {row["id"] for row in await conn.fetch("SELECT id FROM workflow_executions")}
    finally:
        await conn.close()
    assert left == {made[name].id for made in spread.values() for name in ("recent", "old_running")}


async def test_purge__a_row_another_transaction_holds_is_skipped_not_waited_for(store, clean_dsn, spread):
    held = next(iter(spread.values()))["old_completed"]
    conn = await asyncpg.connect(clean_dsn)
    try:
        async with conn.transaction():
            # routed by customer: Citus locks rows in a statement that goes to one shard only
            await conn.execute(
                "SELECT 1 FROM workflow_executions WHERE customer_id = $1 AND id = $2 FOR UPDATE",
                held.customer_id,
                held.id,
            )
            report = await asyncio.wait_for(
                store.workflow_executions.purge(finished_before=CUTOFF, batch_size=1), timeout=30
            )
            assert report.executions == 5
    finally:
        await conn.close()
    assert (await store.workflow_executions.purge(finished_before=CUTOFF)).executions == 1
    assert await table_counts(clean_dsn, doomed_ids(spread)) == dict.fromkeys(TABLES, 0)


async def test_purge__in_a_transaction_over_both_workers_is_all_or_nothing(store, clean_dsn, spread):
    before = await table_counts(clean_dsn)

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        async with store.transaction() as tx:
            assert (await tx.workflow_executions.purge(finished_before=CUTOFF, batch_size=1)).executions == 6
            raise Abort
    assert await table_counts(clean_dsn) == before

    async with store.transaction() as tx:  # commits on both workers (two-phase commit: no NOTIFY in a purge)
        assert (await tx.workflow_executions.purge(finished_before=CUTOFF)).executions == 6
    assert await table_counts(clean_dsn, doomed_ids(spread)) == dict.fromkeys(TABLES, 0)
