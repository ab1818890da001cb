"""Where the store's time goes on its hot path, beside raw asyncpg running the same SQL.

1. Per-call cost of get, get_detail, a page of 50, create and record_many through the store and
   through raw asyncpg (same statements, codecs, pool), interleaved in chunks; medians.
2. cProfile of `calls` store.workflow_executions.get() calls, by own time.
3. The pieces, timed alone: record construction (Record.from_row), JSONB decoding, enum labels,
   id checks (as_uuid), statement look-up, pool acquire (with its timeout), input validation and
   error mapping.

Writes results/profile.txt (the cProfile listing) and the "profile" section of RESULTS.md.
"""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import re
import statistics
import time
import timeit
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from benchmarks import generate
from benchmarks.report import write_section
from benchmarks.stacks import RawStack, StoreStack, metric_points

RESULTS = Path(__file__).parent / "results"
RESULTS_MD = Path(__file__).parent / "RESULTS.md"


async def _per_call(fn: Callable[[], Awaitable[Any]], calls: int) -> float:
    began = time.perf_counter()
    for _ in range(calls):
        await fn()
    return (time.perf_counter() - began) / calls * 1e6


async def compare_calls(
    store: StoreStack, raw: RawStack, ops: dict[str, tuple[Callable, Callable, int]], chunks: int = 10
) -> dict[str, dict[str, float]]:
    """Median µs per call of each op on both stacks, alternating chunks (store, raw, raw, store...)."""
    result = {}
    for name, (store_call, raw_call, calls) in ops.items():
        per_chunk = max(1, calls // chunks)
        times: dict[str, list[float]] = {"store": [], "raw": []}
        for chunk in range(chunks):
            order = [("store", store_call), ("raw", raw_call)]
            for label, fn in order if chunk % 2 == 0 else order[::-1]:
                times[label].append(await _per_call(fn, per_chunk))
        s, r = statistics.median(times["store"]), statistics.median(times["raw"])
        result[name] = {"store_us": s, "raw_us": r, "overhead_us": s - r, "store/raw": r / s}
    return result


def _micro(fn: Callable[[], Any], number: int = 20_000) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


async def components(store: StoreStack, raw: RawStack, ids: list, detail_id: Any) -> dict[str, float]:
    from optiinfra_store.connection.codecs import _decode_jsonb, _label_decoder
    from optiinfra_store.enums import WorkflowStatus
    from optiinfra_store.errors import translate
    from optiinfra_store.queries import load
    from optiinfra_store.records import AgentMetricCreate, WorkflowExecution, WorkflowExecutionCreate
    from optiinfra_store.repositories.base import as_uuid
    from optiinfra_store.repositories.workflow_executions import _ARTIFACTS, _STEPS, _children

    pool = raw.pool
    q = load("workflow_executions")
    row = await pool.fetchrow(q.get_by_id, ids[0], None)  # no customer: one server
    detail = await pool.fetchrow(q.get_detail, detail_id, None)
    doc = b"\x01" + json.dumps(row["input_data"]).encode()
    label = _label_decoder(WorkflowStatus)
    text_id = str(ids[0])
    point = metric_points(ids[0], 1)[0]
    agent, customer = row["agent_id"], row["customer_id"]
    try:
        await pool.execute("INSERT INTO customers (name, email) VALUES ('x', 'not an email')")
    except Exception as exc:  # a CHECK violation, as the error path sees it
        check_violation = exc
    executor = store.store._executor if hasattr(store.store, "_executor") else None

    async def acquire_store() -> None:
        conn = await executor.acquire()
        await pool_of_store.release(conn)

    async def acquire_pool() -> None:
        conn = await pool.acquire()
        await pool.release(conn)

    pool_of_store = store.store.pool
    out = {
        f"record construction: WorkflowExecution.from_row(row), {len(row)} columns (the store's)": _micro(
            lambda: WorkflowExecution.from_row(row)
        ),
        "record construction: WorkflowExecution.model_construct(**row), for comparison": _micro(
            lambda: WorkflowExecution.model_construct(**row)
        ),
        "record construction: dict(row) alone": _micro(lambda: dict(row)),
        "JSONB decode of one small document (a row has 4 jsonb columns)": _micro(lambda: _decode_jsonb(doc)),
        "enum label decode": _micro(lambda: label(b"completed")),
        "as_uuid(UUID)": _micro(lambda: as_uuid(ids[0])),
        "as_uuid(str) (pydantic validation)": _micro(lambda: as_uuid(text_id)),
        "statement look-up (queries attribute)": _micro(lambda: q.get_by_id),
        "queries.load(table) (cached)": _micro(lambda: load("workflow_executions")),
        "error mapping: translate(CheckViolationError)": _micro(lambda: translate(check_violation)),
        "input validation: WorkflowExecutionCreate(...)": _micro(
            lambda: WorkflowExecutionCreate(
                agent_id=agent,
                customer_id=customer,
                workflow_type="cost_analysis",
                input_data={"analysis_period": "last_30_days"},
            ),
            5_000,
        ),
        "input validation: AgentMetricCreate (one record_many point)": _micro(
            lambda: AgentMetricCreate.model_validate(point), 5_000
        ),
        "get_detail: parse and validate 5 steps + 3 artifacts from JSON text": _micro(
            lambda: (_children(_STEPS, detail["steps"]), _children(_ARTIFACTS, detail["artifacts"])), 2_000
        ),
    }
    if executor is not None:
        pool_calls = await _per_call(acquire_pool, 20_000)
        store_calls = await _per_call(acquire_store, 20_000)
        out["pool acquire + release: store's executor (asyncio.timeout) minus plain pool"] = store_calls - pool_calls
        out["pool acquire + release: plain asyncpg pool"] = pool_calls
    return out


async def run(dsn: str, calls: int = 20_000, write: bool = True) -> dict[str, Any]:
    with generate.connect(dsn) as conn:
        fleet = generate.create_fleet(conn, customers=20, agents=5)
        generate.generate_history(conn, fleet, 2_000, artifacts=3, quiet=True)
        ids = [r[0] for r in conn.execute("SELECT id FROM workflow_executions ORDER BY random() LIMIT 200")]
        detail_id = conn.execute(
            """SELECT e.id FROM workflow_executions e WHERE
               (SELECT count(*) FROM workflow_artifacts a WHERE a.workflow_execution_id = e.id) = 3"""
        ).fetchone()[0]
    generate.vacuum_analyze(dsn)
    store = await StoreStack.open(dsn, 10)
    raw = await RawStack.open(dsn, 10)
    try:
        n = iter(range(10**9))
        customer = fleet.customers[0]
        agent = fleet.agents[0]
        points = {"store": metric_points(agent, 10_000), "raw": metric_points(agent, 10_000)}
        ops = {
            "get": (
                lambda: store.get_execution(ids[next(n) % 200]),
                lambda: raw.get_execution(ids[next(n) % 200]),
                4_000,
            ),
            "get_detail": (lambda: store.get_detail(detail_id), lambda: raw.get_detail(detail_id), 2_000),
            "list page of 50": (lambda: store.list_page(customer), lambda: raw.list_page(customer), 1_000),
            "create": (
                lambda: store.create_execution(agent, customer),
                lambda: raw.create_execution(agent, customer),
                1_000,
            ),
            "record_many, 10k points": (
                lambda: store.record_many(points["store"]),
                lambda: raw.record_many(points["raw"]),
                20,
            ),
        }
        print("warming up", flush=True)
        await compare_calls(store, raw, {k: (a, b, max(2, c // 20)) for k, (a, b, c) in ops.items()}, chunks=2)
        print("store vs raw asyncpg, same SQL", flush=True)
        per_call = await compare_calls(store, raw, ops)
        for name, r in per_call.items():
            print(
                f"  {name:<26} store {r['store_us']:9.1f} us   raw {r['raw_us']:9.1f} us   "
                f"overhead {r['overhead_us']:8.1f} us   store/raw {r['store/raw']:.2f}x"
            )

        print(f"cProfile of {calls:,} get() calls", flush=True)
        repo = store.store.workflow_executions
        profiler = cProfile.Profile()
        began = time.perf_counter()
        profiler.enable()
        for i in range(calls):
            await repo.get(ids[i % 200])
        profiler.disable()
        profiled_seconds = time.perf_counter() - began
        listing = io.StringIO()
        stats = pstats.Stats(profiler, stream=listing)
        stats.sort_stats("tottime").print_stats(30)
        top = _top_functions(stats, 15)

        print("pieces of the hot path, timed alone", flush=True)
        pieces = await components(store, raw, ids, detail_id)
        for name, us in pieces.items():
            print(f"  {us:8.2f} us  {name}")
    finally:
        await store.close()
        await raw.close()
    document = {
        "per_call": per_call,
        "profile_top": top,
        "profiled_seconds": profiled_seconds,
        "calls": calls,
        "pieces_us": pieces,
    }
    if write:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "profile.txt").write_text(listing.getvalue(), encoding="utf-8")
        (RESULTS / "profile.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        write_section(RESULTS_MD, "profile", markdown(document))
        print(f"wrote {RESULTS / 'profile.txt'} and the profile section of {RESULTS_MD}")
    return document


def _top_functions(stats: pstats.Stats, count: int) -> list[dict[str, Any]]:
    rows = []
    for (filename, line, name), (_, nc, tt, ct, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append({"function": f"{_short(filename)}:{line}({name})", "calls": nc, "tottime_s": tt, "cumtime_s": ct})
    rows.sort(key=lambda r: r["tottime_s"], reverse=True)
    return rows[:count]


def _short(filename: str) -> str:
    """A path from its package or standard-library directory on (site-packages/x.py, asyncio/x.py)."""
    match = re.search(r"^.*(?:site-packages|lib/python\d+\.\d+)/(.+)$", filename)
    if match:
        return match.group(1)
    root = str(Path(__file__).resolve().parent.parent) + "/"
    return filename.removeprefix(root)


def markdown(document: dict[str, Any]) -> str:
    lines = [
        "## Hot path profile",
        "",
        "`python -m benchmarks profile`: the store and raw asyncpg with the same SQL, codecs and pool, "
        "alternating chunks of sequential calls (median µs per call).",
        "",
        "| call | store µs | raw µs | store overhead µs | store/raw |",
        "|---|---|---|---|---|",
    ]
    for name, r in document["per_call"].items():
        lines.append(
            f"| {name} | {r['store_us']:.1f} | {r['raw_us']:.1f} | {r['overhead_us']:.1f} | {r['store/raw']:.2f}x |"
        )
    lines += ["", "The pieces, timed alone (µs per call):", "", "| piece | µs |", "|---|---|"]
    for name, us in document["pieces_us"].items():
        lines.append(f"| {name} | {us:.2f} |")
    lines += [
        "",
        f"cProfile of {document['calls']:,} `get()` calls (own time; profiling inflates Python-level costs), "
        "full listing in `results/profile.txt`:",
        "",
        "| function | calls | own s | cumulative s |",
        "|---|---|---|---|",
    ]
    for row in document["profile_top"]:
        lines.append(f"| `{row['function']}` | {row['calls']:,} | {row['tottime_s']:.3f} | {row['cumtime_s']:.3f} |")
    return "\n".join(lines)
