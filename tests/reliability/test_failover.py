"""Failovers of a pg_auto_failover formation under load (tests/pg.py `formation`: a primary and two
standbys, each commit waiting for one of them): 32 agents and two live-events subscribers (one on
a connection of its own, one through an events hub) on one Store opened on the formation's
multi-host URI, through a planned failover and a kill -9 of the primary's keeper and postmaster.
After each: every acknowledged write is on the new primary, none twice, failures counted as
unknown outcomes, and each subscriber saw every transition once and none that the failover took
back; a failure shows the monitor's events."""

from __future__ import annotations

import asyncio
import time

import pytest

from optiinfra_store import Store
from tests.pg import Formation, formation
from tests.reliability.failover_load import Load, check, setup

pytestmark = pytest.mark.slow

AGENTS = 32


@pytest.fixture(scope="module")
def cluster():
    with formation() as created:
        yield created


async def _through(cluster: Formation, load: Load, fault) -> None:  # type: ignore[no-untyped-def]
    began = time.time()
    try:
        load.start()
        await asyncio.sleep(2)
        # a fault while replication is asynchronous (wait_primary) may take back acknowledged writes,
        # as README says: each fault here comes once the standbys are synchronous and have the WAL
        await asyncio.to_thread(cluster.synchronous)
        await asyncio.to_thread(fault)
        await asyncio.sleep(3)  # writes go on against the new primary
        await load.stop()
    except Exception as exc:
        exc.add_note(await _events(cluster, began))
        raise


async def _events(cluster: Formation, since: float) -> str:
    """The monitor's events since `since`, for a failure's message (never an error of its own)."""
    try:
        events = await asyncio.to_thread(cluster.events, since)
    except Exception as exc:  # the failure matters more than the monitor's story of it
        return f"the monitor's events could not be read: {exc!r}"
    return "the monitor's events:\n" + "\n".join(events)


async def test_failover__planned_and_kill_9__no_acknowledged_write_lost_and_no_event_taken_back(cluster):
    async with Store.connect(cluster.uri, min_size=2, max_size=16) as store, store.events_hub() as hub:
        customer_id, agent_ids = await setup(store, AGENTS)
        load = Load(store, customer_id, agent_ids)
        await load.subscribe()  # on a connection of its own
        await load.subscribe(hub)  # through the hub, reading through the store's pool
        try:
            faults = {
                "planned failover": cluster.perform_failover,
                "kill -9 of the primary": lambda: cluster.wait_new_primary(cluster.kill_primary()),
            }
            for name, fault in faults.items():
                before, began = load.ledger.acknowledged, time.time()
                await _through(cluster, load, fault)
                assert load.ledger.acknowledged > before, f"{name}: no write was acknowledged"
                for kind, subscriber in zip(("own connection", "hub"), load.subscribers, strict=True):
                    report = await check(cluster.uri, customer_id, load.ledger, subscriber)
                    if not report.ok:
                        pytest.fail(f"{name}, subscriber on its {kind}: {report}\n{await _events(cluster, began)}")
            # the faults did reach the clients: writes failed (unknown outcomes) and were retried
            assert load.ledger.unknown > 0, load.ledger.errors
            assert [s.error for s in load.subscribers] == [None, None]
            assert hub.reconnects >= 2  # the hub's listening connection followed the primary too
        finally:
            await load.close()
