"""performance() over every customer for the last 30 days on an untidy history, at two sizes.

An untidy history: a tenth of the executions never finish (pending or running since they were
created, at any age) and the rest finish over the last 60 days. Each size gets a fresh database
(generated, VACUUM ANALYZE, `store.maintain()` to catch the rollups up, VACUUM ANALYZE again),
then two untimed calls and the median of `calls` timed ones; the plan of the statement is kept
(EXPLAIN (ANALYZE, BUFFERS)) in results/analytics_<size>.txt. The target: at most 2x from the
smaller size to the 10x larger one.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks import generate
from benchmarks.database import fresh_database, server_version
from optiinfra_store import Store
from optiinfra_store.queries import load

RESULTS = Path(__file__).parent / "results"
DAYS = 60.0
UNFINISHED = 0.1


async def _maintain(dsn: str) -> Any:
    async with Store.connect(dsn, min_size=1, max_size=1) as store:
        return await store.maintain()


async def _measure(dsn: str, calls: int) -> dict[str, Any]:
    async with Store.connect(dsn, min_size=1, max_size=2) as store:
        for _ in range(2):
            await store.workflow_executions.performance()
        times = []
        for _ in range(calls):
            began = time.perf_counter()
            await store.workflow_executions.performance()
            times.append((time.perf_counter() - began) * 1e3)
        async with store.pool.acquire() as conn:
            q = load("workflow_executions")
            planned = await conn.fetchrow(q.rollup_plan, None, None, True, True, None)  # as performance() plans
            rows = await conn.fetch(
                f"EXPLAIN (ANALYZE, BUFFERS) {q.performance}",  # noqa: S608 - the store's own statement
                None,
                None,
                None,
                *planned[2:],
            )
            plan = "\n".join(row[0] for row in rows)
    return {"times_ms": times, "median_ms": statistics.median(times), "plan": plan}


def measure_size(admin_dsn: str, size: int, calls: int = 9) -> dict[str, Any]:
    with fresh_database(admin_dsn) as dsn:
        began = time.perf_counter()
        with generate.connect(dsn) as conn:
            fleet = generate.create_fleet(conn, customers=50, agents=20)
            generate.generate_history(conn, fleet, size, days=DAYS, unfinished=UNFINISHED, quiet=True)
        generate.vacuum_analyze(dsn)
        generated = time.perf_counter() - began
        with ThreadPoolExecutor(1) as thread:  # callers may be inside an event loop
            maintained = time.perf_counter()
            thread.submit(asyncio.run, _maintain(dsn)).result()
            maintain_seconds = time.perf_counter() - maintained
            generate.vacuum_analyze(dsn)
            result = thread.submit(asyncio.run, _measure(dsn, calls)).result()
        server = server_version(dsn)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"analytics_{size}.txt").write_text(result.pop("plan") + "\n")
    return {
        "size": size,
        "generate_seconds": generated,
        "maintain_seconds": maintain_seconds,
        "server": server,
        **result,
    }


def run(admin_dsn: str, sizes: tuple[int, ...] = (20_000, 200_000), calls: int = 9) -> dict[str, Any]:
    by_size = [measure_size(admin_dsn, size, calls) for size in sizes]
    return {
        "sizes": by_size,
        "growth": by_size[-1]["median_ms"] / by_size[0]["median_ms"],
        "calls": calls,
    }


def describe(result: dict[str, Any]) -> str:
    lines = [f"performance(), every customer, 30 days, untidy history (median of {result['calls']})"]
    for r in result["sizes"]:
        spread = ", ".join(f"{t:.1f}" for t in r["times_ms"])
        lines.append(f"{r['size']:>9,} executions: {r['median_ms']:7.2f} ms  ({spread})")
    lines.append(f"growth: {result['growth']:.2f}x")
    return "\n".join(lines)


def markdown(result: dict[str, Any]) -> str:
    rows = "\n".join(
        f"| {r['size']:,} | {r['median_ms']:.1f} | {min(r['times_ms']):.1f} - {max(r['times_ms']):.1f} | "
        f"{r['maintain_seconds']:.0f} s |"
        for r in result["sizes"]
    )
    first, last = result["sizes"][0], result["sizes"][-1]
    return f"""## Analytics on an untidy history

`python -m benchmarks analytics`: `performance()` over every customer for the last 30 days, on a
history where a tenth of the executions never finish (pending or running since they were created)
and the rest finish over {DAYS:.0f} days; fresh database per size, rollups caught up with
`maintain()`, median of {result["calls"]} calls after two untimed ones, {first["server"].split(" on ")[0]}.
Plans: `results/analytics_<size>.txt`. Target: at most 2x for 10x the history.

| executions | median ms | range ms | first maintain() |
|---|---:|---:|---:|
{rows}

Growth from {first["size"]:,} to {last["size"]:,}: **{result["growth"]:.2f}x**.
"""
