"""The comparison run: every operation on every stack, round-robin per round, on the same data.

Each round runs the operations in order. Within an operation the stacks take turns in chunks
(store, raw, orm, then orm, raw, store, ...; the first stack rotates every round), so a noisy
neighbour on a shared machine slows every stack of a round alike. Rows an operation consumes
(pending executions to start, failed steps to retry, ...) are prepared on the server before the
timed calls and are not timed. Calls are sequential, each one's latency recorded; throughput is
units (calls, rows or workflows) per second of the stack's timed calls. The summary takes the
median of the rounds, and each ratio is the median of the per-round ratios.

Reads (get, get_detail, list page, statistics) see only the generated history; writes (creates,
transitions, retries, the concurrent workflows) go to customers of their own, so the data the
reads see stays the same round after round. Metrics written by record_many are deleted (and the
table vacuumed) after each call, untimed, so every stack writes into the same table.
"""

from __future__ import annotations

import asyncio
import gc
import random
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg

from benchmarks import generate
from benchmarks.stacks import RawStack, StoreStack, metric_points


@dataclass(frozen=True)
class Config:
    rounds: int
    calls: int  # per point operation, stack and round
    query_calls: int  # list page and statistics, per stack and round
    base_executions: int  # history the reads run on (5 steps, 2 artifacts each)
    detail_executions: int  # executions with 5 steps and 3 artifacts, for get_detail
    bulk_rows: int  # metrics per record_many call
    aggregate_rows: int  # points in the series the metric aggregate reads
    aggregate_calls: int
    agents: int = 64
    workflows: int = 20  # per agent
    pool_size: int = 10
    chunks: int = 10  # turns per stack within an operation
    stacks: tuple[str, ...] = ("store", "raw", "orm")
    warm_up: bool = True  # one small untimed pass of every operation first


QUICK = Config(
    rounds=3,
    calls=150,
    query_calls=40,
    base_executions=5_000,
    detail_executions=100,
    bulk_rows=10_000,
    aggregate_rows=100_000,
    aggregate_calls=2,
    workflows=2,
)
FULL = Config(
    rounds=5,
    calls=2_000,
    query_calls=300,
    base_executions=20_000,
    detail_executions=500,
    bulk_rows=100_000,
    aggregate_rows=1_000_000,
    aggregate_calls=3,
    workflows=20,
)
TINY = Config(
    rounds=1,
    calls=3,
    query_calls=2,
    base_executions=300,
    detail_executions=3,
    bulk_rows=200,
    aggregate_rows=2_000,
    aggregate_calls=1,
    agents=4,
    workflows=1,
    pool_size=4,
    warm_up=False,
)
"""For the smoke test: every operation of every stack once, in a few seconds."""


@dataclass(frozen=True)
class Operation:
    name: str
    title: str
    kind: str  # point | query | bulk | concurrency
    unit: str  # what throughput counts: op, row or workflow
    methods: dict[str, str]  # stack name -> method


OPERATIONS = [
    Operation("create_execution", "create execution", "point", "op", {}),
    Operation("get_execution", "get by id", "point", "op", {}),
    Operation(
        "get_confined",
        "get by id, confined (store/raw: vs the unconfined get)",
        "point",
        "op",
        {"store": "get_confined"},
    ),
    Operation("get_detail", "get_detail (5 steps, 3 artifacts)", "point", "op", {}),
    Operation("start_complete", "start + complete", "point", "op", {}),
    Operation("step_retry", "step retry", "point", "op", {}),
    Operation("list_page", "page of 50 (customer + status)", "query", "op", {}),
    Operation("statistics", "statistics, 1 customer, 30 days", "query", "op", {}),
    Operation("record_many", "record_many (COPY; ORM bulk insert)", "bulk", "row", {}),
    Operation(
        "record_many_executemany", "record_many (raw executemany)", "bulk", "row", {"raw": "record_many_executemany"}
    ),
    Operation("metric_aggregate", "metric aggregate, 1h buckets", "query", "op", {}),
    Operation("workflows", "agents x workflows, pool", "concurrency", "workflow", {}),
]


def method_of(op: Operation, stack: str) -> str | None:
    if op.methods:
        return op.methods.get(stack)
    return op.name


@dataclass
class Sample:
    """One timed batch: one operation on one stack in one round."""

    units: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int = 0

    @property
    def throughput(self) -> float:
        return self.units / self.seconds


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _sample(units: int, seconds: float, latencies: list[float], errors: int = 0) -> Sample:
    return Sample(units, seconds, percentile(latencies, 0.5) * 1e3, percentile(latencies, 0.99) * 1e3, errors)


@dataclass
class Fixture:
    """The data every stack reads, made once on the server."""

    customers: list[UUID]  # whose history the reads see
    agents: list[UUID]
    writers: list[UUID]  # customers the writes go to
    execution_ids: list[UUID]
    detail_ids: list[UUID]
    metric_agent: UUID
    metric_name: str
    metric_start: datetime
    metric_end: datetime
    bulk_agent: UUID
    rng: random.Random = field(default_factory=lambda: random.Random(42))
    customer_of: dict[UUID, UUID] = field(default_factory=dict)  # execution -> its customer


def build_fixture(dsn: str, config: Config, log: Callable[[str], None]) -> Fixture:
    with generate.connect(dsn) as conn:
        fleet = generate.create_fleet(conn, customers=50, agents=20)
        log(f"  history: {config.base_executions:,} executions (5 steps, 2 artifacts each)")
        generate.generate_history(conn, fleet, config.base_executions, artifacts=2, quiet=True)
        generate.generate_history(conn, fleet, config.detail_executions, artifacts=3, quiet=True)
        customer_of = dict(
            conn.execute("SELECT id, customer_id FROM workflow_executions ORDER BY random() LIMIT 5000").fetchall()
        )
        execution_ids = list(customer_of)
        detail_ids = [
            row[0]
            for row in conn.execute(
                """SELECT e.id FROM workflow_executions e
                WHERE (SELECT count(*) FROM workflow_artifacts a WHERE a.workflow_execution_id = e.id) = 3
                  AND (SELECT count(*) FROM workflow_steps s WHERE s.workflow_execution_id = e.id) = 5"""
            )
        ]
        extra = generate.create_fleet(conn, customers=10, agents=2)
        metric_agent, bulk_agent = extra.agents
        name = generate.METRIC_SERIES[0][0]
        end = datetime.now(UTC)
        days = 30.0
        log(f"  metric series: {config.aggregate_rows:,} points of one agent over {days:.0f} days")
        generate.generate_metrics(
            conn,
            [metric_agent],
            config.aggregate_rows,
            days=days,
            series=generate.METRIC_SERIES[:1],
            now=end,
            quiet=True,
        )
    generate.vacuum_analyze(dsn)
    return Fixture(
        fleet.customers,
        fleet.agents,
        extra.customers,
        execution_ids,
        detail_ids,
        metric_agent,
        name,
        end - timedelta(days=days + 1),
        end,
        bulk_agent,
        customer_of=customer_of,
    )


def _pending_executions(conn: psycopg.Connection, fx: Fixture, n: int) -> list[UUID]:
    rows = conn.execute(
        """INSERT INTO workflow_executions (agent_id, customer_id, workflow_type, input_data)
           SELECT %s, %s, 'cost_analysis', '{"analysis_period": "last_30_days"}' FROM generate_series(1, %s)
           RETURNING id""",
        (fx.rng.choice(fx.agents), fx.rng.choice(fx.writers), n),
    ).fetchall()
    return [row[0] for row in rows]


def _failed_steps(conn: psycopg.Connection, fx: Fixture, n: int) -> list[UUID]:
    rows = conn.execute(
        """WITH e AS (
               INSERT INTO workflow_executions (agent_id, customer_id, workflow_type, status, started_at)
               SELECT %s, %s, 'health_check', 'running', now() FROM generate_series(1, (%s + 4) / 5)
               RETURNING id
           )
           INSERT INTO workflow_steps (workflow_execution_id, step_name, step_order, status, started_at,
                                       completed_at, error_details)
           SELECT e.id, 'probe_' || k, k, 'failed', now(), now(), '{"error_type": "StepError"}'
             FROM e CROSS JOIN generate_series(1, 5) k
           RETURNING id""",
        (fx.rng.choice(fx.agents), fx.rng.choice(fx.writers), n),
    ).fetchall()
    return [row[0] for row in rows][:n]


def prepare(
    op: Operation, stack: str, fx: Fixture, config: Config, conn: psycopg.Connection, scale: float = 1.0
) -> list[tuple]:
    """The arguments of one timed batch (rows it consumes are created here, untimed)."""
    rng = fx.rng
    calls = max(1, int(config.calls * scale))
    query_calls = max(1, int(config.query_calls * scale))
    match op.name:
        case "create_execution":
            return [(rng.choice(fx.agents), rng.choice(fx.writers)) for _ in range(calls)]
        case "get_execution":
            return [(rng.choice(fx.execution_ids),) for _ in range(calls)]
        case "get_confined":
            ids = [rng.choice(fx.execution_ids) for _ in range(calls)]
            return [(id, fx.customer_of[id]) for id in ids]
        case "get_detail":
            return [(rng.choice(fx.detail_ids),) for _ in range(calls)]
        case "start_complete":
            return [(id,) for id in _pending_executions(conn, fx, calls)]
        case "step_retry":
            return [(id,) for id in _failed_steps(conn, fx, calls)]
        case "list_page":
            return [(rng.choice(fx.customers),) for _ in range(query_calls)]
        case "statistics":
            since = datetime.now(UTC) - timedelta(days=30)
            return [(rng.choice(fx.customers), since) for _ in range(query_calls)]
        case "record_many" | "record_many_executemany":
            rows = max(100, int(config.bulk_rows * scale))
            return [(metric_points(fx.bulk_agent, rows, orm=stack == "orm"),)]
        case "metric_aggregate":
            args = (fx.metric_agent, fx.metric_name, fx.metric_start, fx.metric_end)
            return [args] * max(1, int(config.aggregate_calls * scale))
    raise ValueError(op.name)


async def _call_all(stack: Any, fn: Callable, args: list[tuple], latencies: list[float]) -> float:
    """Call fn once per argument tuple, sequentially; returns the seconds it took."""
    clock = time.perf_counter
    began = clock()
    if stack.is_async:
        for a in args:
            t0 = clock()
            await fn(*a)
            latencies.append(clock() - t0)
    else:
        for a in args:
            t0 = clock()
            fn(*a)
            latencies.append(clock() - t0)
    return clock() - began


def forget_bulk_rows(conn: psycopg.Connection, fx: Fixture) -> None:
    """Delete what record_many wrote and vacuum, so the next stack writes into the same table."""
    conn.execute("DELETE FROM agent_metrics WHERE agent_id = %s", (fx.bulk_agent,))
    conn.execute("VACUUM agent_metrics")


async def time_operation(
    op: Operation, stacks: list[Any], fx: Fixture, config: Config, conn: psycopg.Connection, scale: float = 1.0
) -> dict[str, Sample]:
    """Every stack's timed calls of one operation, taking turns chunk by chunk."""
    batches = []
    for stack in stacks:
        method = method_of(op, stack.name)
        if method is not None:
            batches.append((stack, getattr(stack, method), prepare(op, stack.name, fx, config, conn, scale)))
    if not batches:
        return {}
    chunks = max(1, min(config.chunks, *(len(args) for _, _, args in batches)))
    seconds = {stack.name: 0.0 for stack, _, _ in batches}
    latencies: dict[str, list[float]] = {stack.name: [] for stack, _, _ in batches}
    gc.collect()
    for chunk in range(chunks):
        for stack, fn, args in batches if chunk % 2 == 0 else batches[::-1]:
            part = args[chunk * len(args) // chunks : (chunk + 1) * len(args) // chunks]
            seconds[stack.name] += await _call_all(stack, fn, part, latencies[stack.name])
            if op.kind == "bulk":
                forget_bulk_rows(conn, fx)
    units = _units(op)
    return {
        stack.name: _sample(sum(units(a) for a in args), seconds[stack.name], latencies[stack.name])
        for stack, _, args in batches
    }


async def run_workflows(
    stack: Any, fx: Fixture, agents: int, workflows: int, threads: ThreadPoolExecutor | None
) -> Sample:
    """`agents` asyncio tasks, each running `workflows` workflows: create, start, 5 steps (each
    created, started, completed), 2 artifacts, complete; 20 calls a workflow. The ORM's calls run
    on `threads` (as many threads as pooled connections) so they overlap as the async stacks' do."""
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    errors = 0
    clock = time.perf_counter

    async def call(method: str, *args: Any) -> Any:
        fn = getattr(stack, method)
        t0 = clock()
        if stack.is_async:
            result = await fn(*args)
        else:
            result = await loop.run_in_executor(threads, fn, *args)
        latencies.append(clock() - t0)
        return result

    async def agent(index: int) -> None:
        nonlocal errors
        agent_id = fx.agents[index % len(fx.agents)]
        for w in range(workflows):
            customer_id = fx.writers[(index * workflows + w) % len(fx.writers)]
            try:
                execution_id = stack.id_of(await call("create_execution", agent_id, customer_id))
                await call("start_execution", execution_id)
                step_ids = []
                for order in range(1, 6):
                    step_id = stack.id_of(await call("create_step", execution_id, order))
                    await call("start_step", step_id)
                    await call("complete_step", step_id)
                    step_ids.append(step_id)
                await call("create_artifact", execution_id, step_ids[1])
                await call("create_artifact", execution_id, step_ids[4])
                await call("complete_execution", execution_id)
            except Exception as exc:  # counted, reported; the run goes on
                errors += 1
                if errors <= 3:
                    print(f"    {stack.name}: workflow failed: {type(exc).__name__}: {exc}")

    gc.collect()
    began = clock()
    await asyncio.gather(*(agent(i) for i in range(agents)))
    seconds = clock() - began
    sample = _sample(agents * workflows - errors, seconds, latencies, errors)
    return sample


async def open_stacks(dsn: str, config: Config) -> list[Any]:
    stacks: list[Any] = []
    for name in config.stacks:
        if name == "store":
            stacks.append(await StoreStack.open(dsn, config.pool_size))
        elif name == "raw":
            stacks.append(await RawStack.open(dsn, config.pool_size))
        elif name == "orm":
            from benchmarks.orm import OrmStack  # needs sqlalchemy (the `bench` extra)

            stacks.append(await OrmStack.open(dsn, config.pool_size))
        else:
            raise ValueError(f"unknown stack {name!r}")
    return stacks


def _units(op: Operation) -> Callable[[tuple], int]:
    if op.unit == "row":  # record_many: one call writes len(points) rows
        return lambda a: len(a[0])
    return lambda a: 1


async def run(
    dsn: str, config: Config, log: Callable[[str], None] = print, operations: list[Operation] | None = None
) -> dict[str, Any]:
    """Run the comparison; returns {operation: {stack: [Sample per round]}} under "samples"."""
    operations = operations or OPERATIONS
    log("preparing data")
    fx = build_fixture(dsn, config, log)
    stacks = await open_stacks(dsn, config)
    threads = ThreadPoolExecutor(config.pool_size, thread_name_prefix="orm") if "orm" in config.stacks else None
    samples: dict[str, dict[str, list[Sample]]] = {op.name: {} for op in operations}
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            if config.warm_up:
                log("warming up")
                for op in operations:
                    await _run_round(op, stacks, fx, config, conn, threads, scale=0.05)
            for round_no in range(config.rounds):
                log(f"round {round_no + 1}/{config.rounds}")
                shift = round_no % len(stacks)
                for op in operations:
                    by_stack = await _run_round(op, stacks[shift:] + stacks[:shift], fx, config, conn, threads)
                    for name, sample in by_stack.items():
                        samples[op.name].setdefault(name, []).append(sample)
    finally:
        for stack in stacks:
            await stack.close()
        if threads is not None:
            threads.shutdown()
    return {"samples": samples, "stacks": [s.name for s in stacks]}


async def _run_round(
    op: Operation,
    stacks: list[Any],
    fx: Fixture,
    config: Config,
    conn: psycopg.Connection,
    threads: ThreadPoolExecutor | None,
    scale: float = 1.0,
) -> dict[str, Sample]:
    if op.kind != "concurrency":
        return await time_operation(op, stacks, fx, config, conn, scale)
    # one stack at a time: each run has the pool (and the machine) to itself
    agents, workflows = (config.agents, config.workflows) if scale == 1 else (min(config.agents, config.pool_size), 1)
    return {stack.name: await run_workflows(stack, fx, agents, workflows, threads) for stack in stacks}


def summarize(samples: list[Sample]) -> dict[str, Any]:
    return {
        "throughput": statistics.median(s.throughput for s in samples),
        "p50_ms": statistics.median(s.p50_ms for s in samples),
        "p99_ms": statistics.median(s.p99_ms for s in samples),
        "errors": sum(s.errors for s in samples),
        "rounds": [asdict(s) | {"throughput": s.throughput} for s in samples],
    }


def paired_ratio(a: list[Sample], b: list[Sample]) -> float | None:
    """Median over rounds of a's throughput / b's (both ran in the same rounds)."""
    if not a or not b:
        return None
    return statistics.median(x.throughput / y.throughput for x, y in zip(a, b, strict=True))
