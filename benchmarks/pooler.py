"""What a transaction pooler costs: 64 concurrent agents x 20 workflows (20 calls each: create,
start, 5 steps created, started and completed, 2 artifacts, complete) through Debian's pgbouncer in
transaction mode with 10 server connections (the store opened with `pooler="transaction"`, 64
client connections), against a store connected directly with a pool of 10, interleaved round by
round in one process. Ratios are per round, then the median."""

from __future__ import annotations

import statistics
from dataclasses import replace
from typing import Any

import psycopg

from benchmarks import runner
from benchmarks.stacks import StoreStack
from optiinfra_store import Store
from tests.pg import pgbouncer

WAYS = ("pgbouncer", "direct")


async def run(dsn: str, *, rounds: int = 3, agents: int = 64, workflows: int = 20) -> dict[str, Any]:
    config = replace(runner.QUICK, base_executions=1_000, detail_executions=50)
    fixture = runner.build_fixture(dsn, config, lambda message: None)
    per_round: dict[str, list[float]] = {way: [] for way in WAYS}
    errors: dict[str, int] = dict.fromkeys(WAYS, 0)
    with pgbouncer(dsn, pool_size=10) as bouncer:
        stores = {
            "pgbouncer": await Store.connect(bouncer, pooler="transaction", min_size=agents, max_size=agents),
            "direct": await Store.connect(dsn, min_size=10, max_size=10),
        }
        try:
            for number in range(rounds):
                for way in WAYS if number % 2 == 0 else tuple(reversed(WAYS)):
                    sample = await runner.run_workflows(StoreStack(stores[way]), fixture, agents, workflows, None)
                    per_round[way].append(sample.throughput)
                    errors[way] += sample.errors
        finally:
            for store in stores.values():
                await store.close()
    with psycopg.connect(dsn) as conn:
        server = conn.execute("SHOW server_version").fetchone()[0]
    return {
        "server": server,
        "rounds": rounds,
        "agents": agents,
        "workflows": workflows,
        "workflows_per_second": {way: statistics.median(values) for way, values in per_round.items()},
        "errors": errors,
        "ratio": statistics.median(p / d for p, d in zip(per_round["pgbouncer"], per_round["direct"], strict=True)),
    }


def describe(result: dict[str, Any]) -> str:
    rate = result["workflows_per_second"]
    return (
        f"{result['agents']} agents x {result['workflows']} workflows, PostgreSQL {result['server']}, "
        f"{result['rounds']} rounds: pgbouncer {rate['pgbouncer']:.1f} wf/s ({result['errors']['pgbouncer']} errors), "
        f"direct {rate['direct']:.1f} wf/s ({result['errors']['direct']} errors), ratio {result['ratio']:.2f}x"
    )


def markdown(result: dict[str, Any]) -> str:
    rate = result["workflows_per_second"]
    return f"""## Behind pgbouncer

`python -m benchmarks pooler`: {result["agents"]} concurrent agents x {result["workflows"]} workflows
(20 calls each), through Debian's pgbouncer in transaction mode with 10 server connections (the
store with `pooler="transaction"` and 64 client connections) against a direct pool of 10; median of
{result["rounds"]} interleaved rounds, PostgreSQL {result["server"]}. Target: at least 0.8x the
direct throughput, no errors.

| way in | workflows/s | errors |
|---|---:|---:|
| pgbouncer, transaction mode | {rate["pgbouncer"]:.1f} | {result["errors"]["pgbouncer"]} |
| direct | {rate["direct"]:.1f} | {result["errors"]["direct"]} |
| ratio | {result["ratio"]:.2f}x | |
"""
