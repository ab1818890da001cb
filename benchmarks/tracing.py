"""What OpenTelemetry costs a `get()`: sequential awaited calls of one execution, on five ways,
interleaved round by round in one process on the same row (pools of 4 each):

- `no tracer`: a store opened without a tracer provider, what it is whether opentelemetry is not
  installed or installed with no provider set (the tracer is looked up once, when the store
  opens: None either way, so the two run the same code): the baseline;
- `API, no SDK`: what calling the API on every statement would cost with no SDK behind it (the
  API's proxy tracer, making non-recording spans): the cost the look-up at open time avoids;
- `SDK, in-memory`: the SDK's TracerProvider, a SimpleSpanProcessor and an InMemorySpanExporter
  (emptied between rounds): every span built, ended and handed over;
- `SDK, batch`: the SDK with a BatchSpanProcessor and an exporter that drops what it gets, as a
  service exporting over OTLP would be set up (the export itself on the processor's thread);
- `raw`: asyncpg's `fetchrow` of the same statement building the same record, for scale.

The ways take turns every CHUNK calls (the first of each turn moving on by one), so a load
that comes and goes on a shared machine falls on all of them alike; each way's wall-clock time
and this process's CPU time (all its threads: the batch processor's export thread counts) are
added up per round. Ratios are per round to `no tracer`, then the median.

Then the executor alone, without a database (a pool and a connection that answer at once):
this process's CPU time per `fetchrow` with no tracer, the API's proxy tracer and the SDK's two
set-ups, so what a span costs shows apart from the round trip.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import psycopg

from optiinfra_store import Store
from optiinfra_store.enums import AgentType, WorkflowType
from optiinfra_store.queries import load
from optiinfra_store.records import AgentCreate, CustomerCreate, WorkflowExecution, WorkflowExecutionCreate

WAYS = ("no tracer", "API, no SDK", "SDK, in-memory", "SDK, batch", "raw")
CHUNK = 25


async def interleaved(
    ways: dict[str, Callable[[], Awaitable[Any]]], rounds: int, calls: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Calls per second and CPU microseconds per call of each way, round by round, the ways
    taking turns every CHUNK calls."""
    names = list(ways)
    per_second: dict[str, list[float]] = {name: [] for name in names}
    cpu_us: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        wall = dict.fromkeys(names, 0.0)
        cpu = dict.fromkeys(names, 0.0)
        for turn in range(max(calls // CHUNK, 1)):
            shift = turn % len(names)
            for name in names[shift:] + names[:shift]:
                call = ways[name]
                began, began_cpu = time.perf_counter(), time.process_time()
                for _ in range(CHUNK):
                    await call()
                wall[name] += time.perf_counter() - began
                cpu[name] += time.process_time() - began_cpu
        done = max(calls // CHUNK, 1) * CHUNK
        for name in names:
            per_second[name].append(done / wall[name])
            cpu_us[name].append(cpu[name] / done * 1e6)
    return per_second, cpu_us


class _Connection:
    async def fetchrow(self, sql: str, *args: Any) -> None:
        return None


class _Pool:
    """What PoolExecutor needs of a pool, answering at once."""

    def __init__(self) -> None:
        self.connection = _Connection()

    async def acquire(self) -> _Connection:
        return self.connection

    async def release(self, connection: _Connection) -> None:
        return None

    def get_max_size(self) -> int:
        return 1


async def executor_alone(tracers: dict[str, Any], rounds: int, calls: int) -> dict[str, float]:
    """CPU microseconds per `fetchrow` of a PoolExecutor over `_Pool`, per tracer: the median of
    `rounds` rounds of `calls`, the tracers taking turns round by round."""
    from optiinfra_store.connection.executor import PoolExecutor

    statement = load("workflow_executions").get_by_id
    samples: dict[str, list[float]] = {name: [] for name in tracers}
    for _ in range(rounds):
        for name, tracer in tracers.items():
            executor = PoolExecutor(_Pool(), None, None, tracer)  # type: ignore[arg-type]
            began = time.process_time()
            for _ in range(calls):
                await executor.fetchrow(statement, 1)
            samples[name].append((time.process_time() - began) / calls * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


async def run(dsn: str, *, rounds: int = 5, calls: int = 2_000) -> dict[str, Any]:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    class Dropped(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    load_before = os.getloadavg()[0]
    memory = InMemorySpanExporter()
    in_memory = TracerProvider()
    in_memory.add_span_processor(SimpleSpanProcessor(memory))
    batch = TracerProvider()
    batch.add_span_processor(BatchSpanProcessor(Dropped()))
    pool = {"min_size": 4, "max_size": 4}
    async with (
        Store.connect(dsn, **pool) as plain,
        Store.connect(dsn, **pool) as proxied,
        Store.connect(dsn, tracer_provider=in_memory, **pool) as recorded,
        Store.connect(dsn, tracer_provider=batch, **pool) as batched,
        Store.connect(dsn, **pool) as raw_store,
    ):
        assert plain._executor.tracer is None, "a tracer provider is set in this process: no baseline"
        proxied._executor.tracer = trace.ProxyTracer("optiinfra_store")  # what trace.get_tracer() gives without an SDK
        customer = await plain.customers.create(CustomerCreate(name="Bench", email=f"{uuid.uuid4().hex}@bench.example"))
        agent = await plain.agents.create(AgentCreate(type=AgentType.COST, name="Cost", version="1"))
        execution = await plain.workflow_executions.create(
            WorkflowExecutionCreate(
                agent_id=agent.id, customer_id=customer.id, workflow_type=WorkflowType.COST_ANALYSIS
            )
        )
        statement = load("workflow_executions").get_by_id

        async def raw() -> Any:
            async with raw_store.pool.acquire() as conn:
                row = await conn.fetchrow(statement, execution.id, None)  # one server: no customer
                return WorkflowExecution.from_row(row)

        async def in_memory_get() -> Any:
            got = await recorded.workflow_executions.get(execution.id)
            if len(memory._finished_spans) >= calls:
                memory.clear()
            return got

        ways: dict[str, Callable[[], Awaitable[Any]]] = {
            "no tracer": lambda: plain.workflow_executions.get(execution.id),
            "API, no SDK": lambda: proxied.workflow_executions.get(execution.id),
            "SDK, in-memory": in_memory_get,
            "SDK, batch": lambda: batched.workflow_executions.get(execution.id),
            "raw": raw,
        }
        memory.clear()
        for call in ways.values():  # warm up: connections, prepared statements
            for _ in range(50):
                await call()
        spans_before = len(memory.get_finished_spans())
        await recorded.workflow_executions.get(execution.id)
        made = [s.name for s in memory.get_finished_spans()[spans_before:]]
        per_round, cpu_per_call = await interleaved(ways, rounds, calls)
        alone = await executor_alone(
            {
                "no tracer": None,
                "API, no SDK": proxied._executor.tracer,
                "SDK, in-memory": recorded._executor.tracer,
                "SDK, batch": batched._executor.tracer,
            },
            rounds,
            calls * 5,
        )
        memory.clear()
    in_memory.shutdown()
    batch.shutdown()
    with psycopg.connect(dsn) as conn:
        server = conn.execute("SHOW server_version").fetchone()[0]
    ratios = {
        way: [v / base for v, base in zip(values, per_round["no tracer"], strict=True)]
        for way, values in per_round.items()
    }
    cpu_ratios = {
        way: [v / base for v, base in zip(values, cpu_per_call["no tracer"], strict=True)]
        for way, values in cpu_per_call.items()
    }
    return {
        "server": server,
        "rounds": rounds,
        "calls": calls,
        "span": made,
        "per_second": {way: statistics.median(values) for way, values in per_round.items()},
        "ratio": {way: statistics.median(values) for way, values in ratios.items()},
        "ratios": ratios,
        "cpu_us": {way: statistics.median(values) for way, values in cpu_per_call.items()},
        "cpu_ratio": {way: statistics.median(values) for way, values in cpu_ratios.items()},
        "cpu_ratios": cpu_ratios,
        "executor_alone_us": alone,
        "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1), os.cpu_count()],
    }


def describe(result: dict[str, Any]) -> str:
    lines = [
        f"get() with and without tracing, PostgreSQL {result['server']}, {result['rounds']} rounds x "
        f"{result['calls']} calls; the span of one get: {', '.join(result['span'])}",
        f"{'way':<16} {'calls/s':>9} {'vs none':>8} {'CPU us/call':>12} {'vs none':>8}  per round (calls/s; CPU)",
    ]
    for way in WAYS:
        spread = ", ".join(f"{v:.2f}" for v in result["ratios"][way])
        cpu_spread = ", ".join(f"{v:.2f}" for v in result["cpu_ratios"][way])
        lines.append(
            f"{way:<16} {result['per_second'][way]:>9.0f} {result['ratio'][way]:>7.2f}x "
            f"{result['cpu_us'][way]:>12.1f} {result['cpu_ratio'][way]:>7.2f}x  ({spread}; {cpu_spread})"
        )
    lines.append(
        "the executor alone, no database, CPU us per fetchrow: "
        + ", ".join(f"{way} {us:.2f}" for way, us in result["executor_alone_us"].items())
    )
    return "\n".join(lines)


def markdown(result: dict[str, Any]) -> str:
    rows = "\n".join(
        f"| {way} | {result['per_second'][way]:,.0f} | {result['ratio'][way]:.2f}x | "
        f"{min(result['ratios'][way]):.2f} - {max(result['ratios'][way]):.2f} | "
        f"{result['cpu_us'][way]:.1f} | {result['cpu_ratio'][way]:.2f}x |"
        for way in WAYS
    )
    alone = "\n".join(f"| {way} | {us:.2f} |" for way, us in result["executor_alone_us"].items())
    return f"""## Tracing

`python -m benchmarks tracing`: `get()` of one execution, sequential awaited calls, median of
{result["rounds"]} rounds of {result["calls"]:,} calls per way, the ways taking turns every {CHUNK}
calls, PostgreSQL {result["server"]}, pools of 4. One get makes one span,
`{", ".join(result["span"])}`. Wall-clock calls per second, and this process's CPU time per
call (all its threads), which a load from other processes disturbs less. The machine's load
average was {result["load_average"][0]} at the start and {result["load_average"][1]} at the end
({result["load_average"][2]} cores): read the ratios, not the rates.

| way | calls/s | vs no tracer | per round | CPU µs per call | CPU vs no tracer |
|---|---:|---:|---:|---:|---:|
{rows}

- `no tracer` is what a store runs whether opentelemetry is absent or installed with no tracer
  provider set (FastAPI itself installs opentelemetry-api): the tracer is looked up once, when the
  store opens, and each statement then tests one attribute.
- `API, no SDK` calls the API on every statement with nothing behind it (its proxy tracer, which
  makes non-recording spans): the cost that looking the provider up once avoids.
- `SDK, in-memory` and `SDK, batch` record a span per statement (in-memory: a
  SimpleSpanProcessor handing each span to an InMemorySpanExporter; batch: a BatchSpanProcessor
  and an exporter that drops what it gets, the shape of an OTLP setup, its export off the loop).
- `raw` is asyncpg's `fetchrow` building the same record, for scale.

The executor alone, without a database (a pool and a connection that answer at once), CPU
microseconds per `fetchrow`: what the executor and a span cost apart from the round trip.

| way | CPU µs per fetchrow |
|---|---:|
{alone}
"""
