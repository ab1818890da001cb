"""How the store's reads and retention behave as history grows: 10k, 100k and 1M executions.

`python -m benchmarks scale` (options --sizes, --metrics-per-execution, --no-write); rewrites
results/scale.png, results/scale.json, results/explain_<size>.txt and the "scale" section of
RESULTS.md. `python -m benchmarks.scale` re-renders the plot and the section from scale.json.

For each size, a fresh database is filled by benchmarks/generate.py (5 steps and 2 artifacts per
execution, 50 customers, 20 agents, created_at spread over 180 days; `metrics_per_execution`
metric points per execution: 100k / 1M / 10M by default), vacuumed and analysed, then measured
through the store (two untimed calls, then the timed ones with random keys; median and p95):

- list page: 50 completed executions of one customer, newest first;
- get_detail: one execution with its steps and artifacts;
- statistics: one customer over the last 30 days;
- performance(): the default analysis (every customer, last 30 days);
- metric aggregate: one agent's metric by hour over one day;
- purge of the oldest 10%: finished executions (with steps, artifacts, trail) and metric points.

Each query's plan is saved with EXPLAIN (ANALYZE, BUFFERS) in results/explain_<size>.txt (the
purge's first batch inside a transaction that is rolled back). The database is dropped afterwards.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import psycopg

from benchmarks import generate
from benchmarks.database import fresh_database
from benchmarks.report import machine, write_json, write_section
from optiinfra_store import Store
from optiinfra_store.connection.codecs import init_connection
from optiinfra_store.queries import load

RESULTS = Path(__file__).parent / "results"
RESULTS_MD = Path(__file__).parent / "RESULTS.md"

QUERIES = ["list_page", "get_detail", "statistics", "performance", "metric_aggregate"]
LABELS = {
    "list_page": "list page (50, customer + status)",
    "get_detail": "get_detail",
    "statistics": "statistics (1 customer, 30 days)",
    "performance": "performance() (all, 30 days)",
    "metric_aggregate": "metric aggregate (1 day by hour)",
    "purge_executions": "purge oldest 10% of executions",
    "purge_metrics": "purge oldest 10% of metrics",
}


def run(
    admin_dsn: str,
    sizes: list[int],
    *,
    metrics_per_execution: int = 10,
    json_path: str | None = None,
    write: bool = True,
) -> dict[str, Any]:
    results = []
    machine_info: dict[str, Any] = {}
    for size in sizes:
        with fresh_database(admin_dsn) as dsn:
            if not machine_info:
                machine_info = machine(dsn)
            print(f"\n== {size:,} executions ==", flush=True)
            result = {"executions": size, **load_history(dsn, size, size * metrics_per_execution)}
            result.update(asyncio.run(measure(dsn, size)))
            results.append(result)
            RESULTS.mkdir(exist_ok=True)
            (RESULTS / f"explain_{_size_label(size)}.txt").write_text(
                "\n\n".join(f"-- {name} at {size:,} executions\n{plan}" for name, plan in result["plans"].items())
                + "\n",
                encoding="utf-8",
            )
            _print_size(result)
    document = {"machine": machine_info, "metrics_per_execution": metrics_per_execution, "sizes": results}
    if json_path:
        write_json(document, json_path)
    if write:
        RESULTS.mkdir(exist_ok=True)
        write_json(document, RESULTS / "scale.json")
        plot(document, RESULTS / "scale.png")
        write_section(RESULTS_MD, "scale", markdown(document))
        print(f"wrote {RESULTS / 'scale.png'}, {RESULTS / 'scale.json'} and {RESULTS_MD}")
    return document


def load_history(dsn: str, executions: int, metrics: int) -> dict[str, Any]:
    began = time.perf_counter()
    with generate.connect(dsn) as conn:
        fleet = generate.create_fleet(conn, customers=50, agents=20)
        counts = generate.generate_history(conn, fleet, executions, artifacts=2)
        generate.generate_metrics(conn, fleet.agents, metrics)
    generated = time.perf_counter() - began
    generate.vacuum_analyze(dsn)
    vacuumed = time.perf_counter() - began - generated
    maintained = time.perf_counter()
    with ThreadPoolExecutor(1) as thread:  # (callers may be inside an event loop)
        report = thread.submit(asyncio.run, _maintain(dsn)).result()  # the whole history's rollups, once
    maintain_seconds = time.perf_counter() - maintained
    generate.vacuum_analyze(dsn)
    with psycopg.connect(dsn) as conn:
        sizes = {name: _table_bytes(conn, name) for name in TABLES}
        database_bytes = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    return {
        "rows": {**counts, "metrics": metrics},
        "generate_seconds": generated,
        "vacuum_seconds": vacuumed,
        "maintain_seconds": maintain_seconds,
        "rollup_hours": report.rollup_hours,
        "table_bytes": sizes,
        "database_bytes": database_bytes,
    }


TABLES = (
    "workflow_executions",
    "workflow_steps",
    "workflow_artifacts",
    "workflow_transitions",
    "agent_metrics",
    "workflow_rollups",
    "workflow_step_rollups",
    "workflow_error_rollups",
)


def _table_bytes(conn: psycopg.Connection, table: str) -> int:
    """On disk, with indexes and TOAST, and every partition of a partitioned table."""
    row = conn.execute(
        "SELECT coalesce((SELECT sum(pg_total_relation_size(relid))::bigint FROM pg_partition_tree(%s::regclass)"
        " WHERE level > 0), pg_total_relation_size(%s::regclass))",
        (table, table),
    ).fetchone()
    return int(row[0] or 0)


async def _maintain(dsn: str) -> Any:
    async with Store.connect(dsn, min_size=1, max_size=1) as store:
        return await store.maintain()


async def _wal_lsn(store: Store) -> int:
    return int(await store.pool.fetchval("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"))


async def _timed(fn: Callable[[], Awaitable[Any]], calls: int) -> dict[str, Any]:
    for _ in range(2):
        await fn()
    latencies = []
    for _ in range(calls):
        t0 = time.perf_counter()
        await fn()
        latencies.append((time.perf_counter() - t0) * 1e3)
    ordered = sorted(latencies)
    return {
        "median_ms": statistics.median(ordered),
        "p95_ms": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
        "calls": calls,
    }


async def _explain(conn: asyncpg.Connection, sql: str, *args: Any) -> str:
    rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *args)
    return "\n".join(row[0] for row in rows)


async def measure(dsn: str, size: int) -> dict[str, Any]:
    rng = random.Random(size)
    q_exec = load("workflow_executions")
    q_metrics = load("agent_metrics")
    timings: dict[str, Any] = {}
    plans: dict[str, str] = {}
    async with Store.connect(dsn, min_size=2, max_size=4) as store:
        customers = [r["id"] for r in await store.pool.fetch("SELECT id FROM customers")]
        agents = [r["id"] for r in await store.pool.fetch("SELECT id FROM agents")]
        sample = [
            r["id"]
            for r in await store.pool.fetch("SELECT id FROM workflow_executions TABLESAMPLE SYSTEM (1) LIMIT 1000")
        ] or [r["id"] for r in await store.pool.fetch("SELECT id FROM workflow_executions LIMIT 1000")]
        (newest,) = await store.pool.fetchrow("SELECT max(collection_timestamp) FROM agent_metrics")
        names = [s[0] for s in generate.METRIC_SERIES]
        since = datetime.now(UTC) - timedelta(days=30)

        def metric_day() -> tuple[UUID, str, datetime, datetime]:
            start = newest - timedelta(days=rng.randint(1, 170))
            return rng.choice(agents), rng.choice(names), start, start + timedelta(days=1)

        print("  measuring", flush=True)
        timings["list_page"] = await _timed(
            lambda: store.workflow_executions.list(customer_id=rng.choice(customers), status="completed", limit=50), 30
        )
        timings["get_detail"] = await _timed(lambda: store.workflow_executions.get_detail(rng.choice(sample)), 50)
        timings["statistics"] = await _timed(
            lambda: store.workflow_executions.statistics(customer_id=rng.choice(customers), since=since), 30
        )
        timings["performance"] = await _timed(lambda: store.workflow_executions.performance(), 5)

        async def aggregate() -> Any:
            agent, name, start, end = metric_day()
            return await store.agent_metrics.aggregate(agent, name, start, end, bucket=timedelta(hours=1))

        timings["metric_aggregate"] = await _timed(aggregate, 30)

        conn = await asyncpg.connect(dsn)
        try:
            await init_connection(conn)
            customer = customers[0]
            agent, name, start, end = metric_day()
            plans["list_page"] = await _explain(
                conn, q_exec.list, customer, None, None, ["completed"], None, None, None, None, 51
            )
            plans["get_detail"] = await _explain(conn, q_exec.get_detail, sample[0], None)
            planned = await conn.fetchrow(q_exec.rollup_plan, since, None, False, True, customer)
            plans["statistics"] = await _explain(conn, q_exec.statistics, customer, None, None, *planned[2:])
            planned = await conn.fetchrow(q_exec.rollup_plan, None, None, True, True, None)
            plans["performance"] = await _explain(conn, q_exec.performance, None, None, None, *planned[2:])
            plans["metric_aggregate"] = await _explain(
                conn, q_metrics.aggregate_buckets, agent, name, start, end, timedelta(hours=1), start
            )
            cutoff_executions, cutoff_metrics = await _purge_cutoffs(conn)
            finished = ["completed", "cancelled", "failed", "timeout"]
            explained = conn.transaction()  # EXPLAIN ANALYZE deletes: rolled back for the timed purge
            await explained.start()
            try:
                plans["purge_executions (one batch)"] = await _explain(
                    conn, q_exec.purge_batch, cutoff_executions, finished, 1000
                )
                plans["purge_metrics (one batch)"] = await _explain(conn, q_metrics.purge_batch, cutoff_metrics, 10_000)
            finally:
                await explained.rollback()
        finally:
            await conn.close()

        print("  purging the oldest 10%", flush=True)
        wal = await _wal_lsn(store)
        t0 = time.perf_counter()
        report = await store.workflow_executions.purge(finished_before=cutoff_executions)
        timings["purge_executions"] = {
            "seconds": time.perf_counter() - t0,
            "wal_bytes": await _wal_lsn(store) - wal,
            "executions": report.executions,
            "steps": report.steps,
            "artifacts": report.artifacts,
            "transitions": report.transitions,
        }
        with psycopg.connect(dsn) as sync:
            metrics_before = _table_bytes(sync, "agent_metrics")
        wal = await _wal_lsn(store)
        t0 = time.perf_counter()
        deleted = await store.agent_metrics.purge(cutoff_metrics)
        timings["purge_metrics"] = {
            "seconds": time.perf_counter() - t0,
            "wal_bytes": await _wal_lsn(store) - wal,
            "metrics": deleted,
        }
        with psycopg.connect(dsn) as sync:
            timings["purge_metrics"]["table_bytes"] = [metrics_before, _table_bytes(sync, "agent_metrics")]

    return {"timings": timings, "plans": plans}


async def _purge_cutoffs(conn: asyncpg.Connection) -> tuple[datetime, datetime]:
    """The completed_at below which 10% of the finished executions lie, and the same for metrics."""
    executions = await conn.fetchval(
        """SELECT percentile_disc(0.1) WITHIN GROUP (ORDER BY completed_at)
             FROM workflow_executions WHERE completed_at IS NOT NULL"""
    )
    metrics = await conn.fetchval(
        "SELECT percentile_disc(0.1) WITHIN GROUP (ORDER BY collection_timestamp) FROM agent_metrics"
    )
    return executions, metrics


def _size_label(size: int) -> str:
    for unit, suffix in ((1_000_000, "M"), (1_000, "k")):
        if size >= unit and size % unit == 0:
            return f"{size // unit}{suffix}"
    return str(size)


def _print_size(result: dict[str, Any]) -> None:
    t = result["timings"]
    for name in QUERIES:
        print(f"  {LABELS[name]:<36} median {t[name]['median_ms']:9.2f} ms   p95 {t[name]['p95_ms']:9.2f} ms")
    for name in ("purge_executions", "purge_metrics"):
        print(f"  {LABELS[name]:<36} {t[name]['seconds']:9.2f} s  {t[name]['wal_bytes'] / 2**20:9.1f} MiB WAL")


BEFORE = RESULTS / "scale_before.json"
"""The scale run before time-ordered ids (migration 0009), drawn dashed in the purge plot."""


def plot(
    document: dict[str, Any], path: Path, before_path: Path = BEFORE, before_label: str = "random ids (before 0009)"
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    before = json.loads(before_path.read_text(encoding="utf-8")) if before_path.exists() else None
    sizes = [r["executions"] for r in document["sizes"]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    for name in QUERIES:
        left.plot(sizes, [r["timings"][name]["median_ms"] for r in document["sizes"]], marker="o", label=LABELS[name])
    left.set(
        xscale="log",
        yscale="log",
        xlabel="executions (5 steps, 2 artifacts each)",
        ylabel="median latency (ms)",
        title="Reads through the store",
    )
    left.axhline(100, color="grey", linestyle=":", linewidth=1)
    left.legend(fontsize=8)
    left.grid(True, which="both", alpha=0.3)
    for name in ("purge_executions", "purge_metrics"):
        (line,) = right.plot(
            sizes, [r["timings"][name]["seconds"] for r in document["sizes"]], marker="o", label=LABELS[name]
        )
        if before is not None:  # an earlier run kept for comparison, dashed in the same colour
            right.plot(
                [r["executions"] for r in before["sizes"]],
                [r["timings"][name]["seconds"] for r in before["sizes"]],
                marker="x",
                linestyle="--",
                color=line.get_color(),
                label=f"{LABELS[name]}, {before_label}",
            )
    right.set(
        xscale="log", yscale="log", xlabel="executions", ylabel="seconds", title="Retention: purge the oldest 10%"
    )
    right.legend(fontsize=8)
    right.grid(True, which="both", alpha=0.3)
    fig.suptitle(
        f"optiinfra_store at scale ({document['machine']['cpus']} CPUs, "
        f"{document['machine']['postgresql'].split(' on ')[0]})",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(document: dict[str, Any]) -> str:
    m = document["machine"]
    rows = document["sizes"]
    lines = [
        "## Scale",
        "",
        f"`python -m benchmarks scale --dsn ...` on {m['cpus']} CPUs, `{m['uname']}`, {m['postgresql']}, "
        f"Python {m['python']}. Fresh database per size (generated, then VACUUM ANALYZE), default server "
        f"settings (shared_buffers 128MB); {document['metrics_per_execution']} metric points per execution. "
        "Each query: two untimed calls, then median (p95) over 30 calls with random keys (get_detail 50, "
        "performance 5); the purges run once, last.",
        "",
        "![latency vs executions](results/scale.png)",
        "",
        "| | " + " | ".join(f"{r['executions']:,} executions" for r in rows) + " |",
        "|---|" + "---|" * len(rows),
        "| rows (steps / artifacts / transitions / metrics) | "
        + " | ".join(
            f"{r['rows']['steps']:,} / {r['rows']['artifacts']:,} / {r['rows']['transitions']:,} / {r['rows']['metrics']:,}"
            for r in rows
        )
        + " |",
        "| database size | " + " | ".join(f"{r['database_bytes'] / 2**30:.2f} GiB" for r in rows) + " |",
        "| generate + vacuum | "
        + " | ".join(f"{r['generate_seconds']:.0f} s + {r['vacuum_seconds']:.0f} s" for r in rows)
        + " |",
        "| first maintain() (rollups of the whole history) | "
        + " | ".join(f"{r.get('maintain_seconds', 0):.0f} s ({r.get('rollup_hours', 0):,} hours)" for r in rows)
        + " |",
        "| rollup rows (executions / steps / errors) on disk | "
        + " | ".join(
            " / ".join(
                f"{r['table_bytes'].get(t, 0) / 2**20:.0f} MiB"
                for t in ("workflow_rollups", "workflow_step_rollups", "workflow_error_rollups")
            )
            for r in rows
        )
        + " |",
    ]
    for name in QUERIES:
        lines.append(
            f"| {LABELS[name]} | "
            + " | ".join(f"{r['timings'][name]['median_ms']:.2f} ms ({r['timings'][name]['p95_ms']:.2f})" for r in rows)
            + " |"
        )
    for name, unit in (("purge_executions", "executions"), ("purge_metrics", "metrics")):
        lines.append(
            f"| {LABELS[name]} | "
            + " | ".join(
                f"{r['timings'][name]['seconds']:.2f} s, {r['timings'][name].get('wal_bytes', 0) / 2**20:.1f} MiB WAL "
                f"({r['timings'][name][unit]:,} {unit})"
                for r in rows
            )
            + " |"
        )
    lines.append(
        "| agent_metrics on disk before / after the purge | "
        + " | ".join(
            " / ".join(f"{b / 2**20:.0f} MiB" for b in r["timings"]["purge_metrics"].get("table_bytes", [0, 0]))
            for r in rows
        )
        + " |"
    )
    lines += ["", "Plans: `benchmarks/results/explain_<size>.txt` (EXPLAIN (ANALYZE, BUFFERS) of each statement)."]
    return "\n".join(lines)


if __name__ == "__main__":  # re-render RESULTS.md and the plot from results/scale.json
    doc = json.loads((RESULTS / "scale.json").read_text())
    plot(doc, RESULTS / "scale.png")
    write_section(RESULTS_MD, "scale", markdown(doc))
