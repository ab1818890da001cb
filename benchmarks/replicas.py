"""Reads from a streaming replica while the primary takes a bulk load: a throwaway primary and its
`pg_basebackup -R` replica (the machine's PostgreSQL binaries), 20,000 executions of history rolled
up, then for `seconds` each: `statistics()` alone (served by the replica), `record_many` of
20,000-point batches alone (on the primary), and both at once; the replica's lag behind the primary
is sampled every 50 ms meanwhile (bytes of WAL not yet replayed)."""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from benchmarks import generate
from optiinfra_store import Store
from optiinfra_store.records import AgentMetricCreate
from tests.pg import replicated_cluster


async def _loop(seconds: float, call: Any, units: int) -> float:
    """Units per second of `call` repeated for `seconds`."""
    done, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        await call()
        done += units
    return done / (time.perf_counter() - began)


async def _lag(primary: str, replica: str, stop: asyncio.Event, samples: list[int]) -> None:
    with psycopg.connect(primary, autocommit=True) as p, psycopg.connect(replica, autocommit=True) as r:
        while not stop.is_set():
            written = p.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
            samples.append(
                int(r.execute("SELECT pg_wal_lsn_diff(%s, pg_last_wal_replay_lsn())", (written,)).fetchone()[0])
            )
            await asyncio.sleep(0.05)


async def run(*, seconds: float = 15.0, batch: int = 20_000, executions: int = 20_000) -> dict[str, Any]:
    with replicated_cluster() as cluster:
        with generate.connect(cluster.primary_dsn) as conn:
            fleet = generate.create_fleet(conn, customers=50, agents=20)
            generate.generate_history(conn, fleet, executions, days=30, quiet=True)
        rng = random.Random(3)
        async with Store.connect(cluster.primary_dsn, read_dsn=cluster.replica_dsn, max_size=4) as store:
            await store.maintain()
            cluster.caught_up(timeout=120)
            customers = [c.id for c in await store.customers.list()]
            agent = fleet.agents[0]
            now = datetime.now(UTC)
            points = [
                AgentMetricCreate(
                    agent_id=agent,
                    metric_name=f"m{i % 10}",
                    metric_value=rng.random(),
                    collection_timestamp=now - timedelta(seconds=i),
                )
                for i in range(batch)
            ]

            async def read() -> None:
                await store.workflow_executions.statistics(customer_id=rng.choice(customers))

            async def write() -> None:
                await store.agent_metrics.record_many(points)

            reads_alone = await _loop(seconds, read, 1)
            writes_alone = await _loop(seconds, write, batch)
            stop, lag = asyncio.Event(), []
            sampler = asyncio.ensure_future(_lag(cluster.primary_dsn, cluster.replica_dsn, stop, lag))
            reads_loaded, writes_loaded = await asyncio.gather(_loop(seconds, read, 1), _loop(seconds, write, batch))
            stop.set()
            await sampler
        with psycopg.connect(cluster.primary_dsn) as conn:
            server = conn.execute("SHOW server_version").fetchone()[0]
    ordered = sorted(lag)
    return {
        "server": server,
        "seconds": seconds,
        "batch": batch,
        "statistics_per_second": {"alone": reads_alone, "during the load": reads_loaded},
        "points_per_second": {"alone": writes_alone, "during the reads": writes_loaded},
        "lag_bytes": {"p50": statistics.median(ordered) if ordered else 0, "max": ordered[-1] if ordered else 0},
    }


def describe(result: dict[str, Any]) -> str:
    r, w, lag = result["statistics_per_second"], result["points_per_second"], result["lag_bytes"]
    return (
        f"replica statistics {r['alone']:.0f}/s alone, {r['during the load']:.0f}/s during record_many; "
        f"primary record_many {w['alone']:,.0f} points/s alone, {w['during the reads']:,.0f} during the reads; "
        f"lag p50 {lag['p50'] / 2**20:.1f} MiB, max {lag['max'] / 2**20:.1f} MiB"
    )


def markdown(result: dict[str, Any]) -> str:
    r, w, lag = result["statistics_per_second"], result["points_per_second"], result["lag_bytes"]
    return f"""## Reads from a replica

`python -m benchmarks replicas`: a throwaway primary and its streaming replica (`pg_basebackup -R`)
on this machine, PostgreSQL {result["server"]}, 20,000 executions rolled up; {result["seconds"]:.0f} s
of each: `statistics()` for one customer from the replica (`read_dsn`), `record_many` of
{result["batch"]:,}-point batches on the primary, then both at once.

| | alone | both at once |
|---|---:|---:|
| statistics() on the replica, calls/s | {r["alone"]:,.0f} | {r["during the load"]:,.0f} |
| record_many on the primary, points/s | {w["alone"]:,.0f} | {w["during the reads"]:,.0f} |

The replica's lag during the load (WAL written but not replayed, sampled every 50 ms): median
{lag["p50"] / 2**20:.1f} MiB, max {lag["max"] / 2**20:.1f} MiB.
"""
