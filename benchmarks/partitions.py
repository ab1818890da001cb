"""What partitioning agent_metrics by day costs a write: `record_many` (binary COPY) of the same
points into the partitioned table and into the plain table it replaced (a second database with
migration 0013 rolled back), interleaved round by round in one process. The points fall in today's
partition; ratios are per round, then the median."""

from __future__ import annotations

import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from optiinfra_store import Store, migrations
from optiinfra_store.records import AgentCreate, AgentMetricCreate

WAYS = ("partitioned", "plain")


def unpartition(dsn: str) -> None:
    """Roll the database back to before 0013: agent_metrics as one plain table."""
    while migrations.rollback(dsn) != ["0013_partitioned_metrics"]:
        pass


def points(agent_id: Any, count: int, rng: random.Random) -> list[AgentMetricCreate]:
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    span = max((datetime.now(UTC) - start).total_seconds(), 60.0)
    return [
        AgentMetricCreate(
            agent_id=agent_id,
            metric_name=f"series_{i % 10}",
            metric_value=rng.uniform(0, 100),
            metric_unit="percent",
            collection_timestamp=start + timedelta(seconds=rng.uniform(0, span)),
            metadata={"gpu": i % 8},
        )
        for i in range(count)
    ]


async def run(partitioned_dsn: str, plain_dsn: str, *, rounds: int = 5, count: int = 100_000) -> dict[str, Any]:
    unpartition(plain_dsn)
    rng = random.Random(13)
    async with (
        Store.connect(partitioned_dsn, min_size=1, max_size=2) as partitioned,
        Store.connect(plain_dsn, min_size=1, max_size=2) as plain,
    ):
        stores = {"partitioned": partitioned, "plain": plain}
        agents = {
            way: (await store.agents.create(AgentCreate(type="cost", name="bench", version="1"))).id
            for way, store in stores.items()
        }
        batches = {way: points(agents[way], count, rng) for way in WAYS}
        for way in WAYS:  # warm up: connections, codecs, the COPY path
            await stores[way].agent_metrics.record_many(batches[way][:1000])
        per_round: dict[str, list[float]] = {way: [] for way in WAYS}
        for number in range(rounds):
            for way in WAYS if number % 2 == 0 else tuple(reversed(WAYS)):
                began = time.perf_counter()
                await stores[way].agent_metrics.record_many(batches[way])
                per_round[way].append(count / (time.perf_counter() - began))
    with psycopg.connect(partitioned_dsn) as conn:
        server = conn.execute("SHOW server_version").fetchone()[0]
    return {
        "server": server,
        "rounds": rounds,
        "points": count,
        "per_second": {way: statistics.median(values) for way, values in per_round.items()},
        "ratio": statistics.median(p / q for p, q in zip(per_round["partitioned"], per_round["plain"], strict=True)),
    }


def describe(result: dict[str, Any]) -> str:
    return (
        f"record_many of {result['points']:,} points, PostgreSQL {result['server']}, {result['rounds']} rounds: "
        f"partitioned {result['per_second']['partitioned']:,.0f} points/s, "
        f"plain {result['per_second']['plain']:,.0f} points/s, ratio {result['ratio']:.2f}x"
    )


def markdown(result: dict[str, Any]) -> str:
    return f"""## Partitioned metrics

`python -m benchmarks partitions`: `record_many` (binary COPY) of {result["points"]:,} points, into
the partitioned `agent_metrics` and into the plain table of before migration 0013 (a second
database, rolled back), median of {result["rounds"]} interleaved rounds, PostgreSQL {result["server"]}.
Target: at least 0.9x the plain table's throughput.

| table | points/s |
|---|---:|
| partitioned by day | {result["per_second"]["partitioned"]:,.0f} |
| plain | {result["per_second"]["plain"]:,.0f} |
| ratio | {result["ratio"]:.2f}x |
"""
