"""Failovers of a pg_auto_failover formation under load (tests/pg.py `formation`): 32 agents and a
live-events subscriber on one Store opened on the formation's multi-host URI, through a planned
failover and a kill -9 of the primary's keeper and postmaster. After each: every acknowledged write
is on the new primary, none twice, failures counted as unknown outcomes, and the subscriber saw
every transition once and none that the failover took back."""

from __future__ import annotations

import asyncio

import pytest

from optiinfra_store import Store
from tests.pg import formation
from tests.reliability.failover_load import Load, check, setup

pytestmark = pytest.mark.slow

AGENTS = 32


@pytest.fixture(scope="module")
def cluster():
    with formation() as created:
        yield created


async def _through(load: Load, fault) -> None:  # type: ignore[no-untyped-def]
    load.start()
    await asyncio.sleep(2)
    await asyncio.to_thread(fault)
    await asyncio.sleep(3)  # writes go on against the new primary
    await load.stop()


async def test_failover__planned_and_kill_9__no_acknowledged_write_lost_and_no_event_taken_back(cluster):
    async with Store.connect(cluster.uri, min_size=2, max_size=16) as store:
        customer_id, agent_ids = await setup(store, AGENTS)
        load = Load(store, customer_id, agent_ids)
        await load.subscribe()
        try:
            faults = {
                "planned failover": cluster.perform_failover,
                "kill -9 of the primary": lambda: cluster.wait_states(
                    {cluster.other(cluster.kill_primary()): "wait_primary"}
                ),
            }
            for name, fault in faults.items():
                before = load.ledger.acknowledged
                await _through(load, fault)
                report = await check(cluster.uri, customer_id, load.ledger, load.subscriber)
                assert load.ledger.acknowledged > before, f"{name}: no write was acknowledged"
                assert report.ok, f"{name}: {report}"
                assert report.missed == [] and report.taken_back == []
            # the faults did reach the clients: writes failed (unknown outcomes) and were retried
            assert load.ledger.unknown > 0, load.ledger.errors
            assert load.subscriber.error is None
        finally:
            await load.close()
