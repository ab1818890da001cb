"""The hot path in one run: the store against raw asyncpg building the same records, and a confined
get against an unconfined one.

1. get, create, start + complete, a page of 50 and get_detail through the store and through
   `RecordStack` (raw asyncpg, same statements, codecs, reset and pool size, each row made into
   the store's record), interleaved chunk by chunk as in the comparison (benchmarks/runner.py);
   a ratio per round, then the median and the spread.
2. `get()` of one execution, sequential awaited calls: the owner's store unconfined (the
   baseline), `for_customer()` of the owner's store, `for_customer()` of a store logged in as an
   application login role (a member of optiinfra_app and of the database's connect role), and
   raw asyncpg building the record; interleaved round by round.
"""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from benchmarks import runner
from benchmarks.confinement import interleaved_rounds
from benchmarks.stacks import RecordStack, StoreStack
from optiinfra_store import Store
from optiinfra_store.enums import AgentType, WorkflowType
from optiinfra_store.queries import load
from optiinfra_store.records import AgentCreate, CustomerCreate, WorkflowExecution, WorkflowExecutionCreate
from tests.pg import app_login

APP_LOGIN = "optiinfra_bench_agent"
POINT_OPERATIONS = ("get_execution", "create_execution", "start_complete", "list_page", "get_detail")
WAYS = ("owner", "owner confined", "app confined", "raw+record")


def config(quick: bool) -> runner.Config:
    return runner.Config(
        rounds=3,
        calls=300 if quick else 2_000,
        query_calls=60 if quick else 400,
        base_executions=2_000 if quick else 5_000,
        detail_executions=50 if quick else 200,
        bulk_rows=100,
        aggregate_rows=1_000,
        aggregate_calls=1,
        pool_size=4,
        stacks=("store", "raw+record"),
    )


async def compare(dsn: str, cfg: runner.Config, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Store against raw asyncpg building the records, per operation: the per-round ratios."""
    fx = runner.build_fixture(dsn, cfg, log)
    stacks = [await StoreStack.open(dsn, cfg.pool_size), await RecordStack.open(dsn, cfg.pool_size)]
    operations = [op for op in runner.OPERATIONS if op.name in POINT_OPERATIONS]
    ratios: dict[str, list[float]] = {op.name: [] for op in operations}
    rates: dict[str, dict[str, list[float]]] = {op.name: {"store": [], "raw+record": []} for op in operations}
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for op in operations:  # warm up
                await runner.time_operation(op, stacks, fx, cfg, conn, scale=0.1)
            for number in range(cfg.rounds):
                log(f"  round {number + 1}/{cfg.rounds}")
                order = stacks if number % 2 == 0 else stacks[::-1]
                for op in operations:
                    samples = await runner.time_operation(op, order, fx, cfg, conn)
                    store, raw = samples["store"], samples["raw+record"]
                    ratios[op.name].append(store.throughput / raw.throughput)
                    rates[op.name]["store"].append(store.throughput)
                    rates[op.name]["raw+record"].append(raw.throughput)
    finally:
        for stack in stacks:
            await stack.close()
    return {
        op: {
            "ratio": statistics.median(values),
            "ratios": values,
            "store": statistics.median(rates[op]["store"]),
            "raw+record": statistics.median(rates[op]["raw+record"]),
        }
        for op, values in ratios.items()
    }


async def confined(dsn: str, admin_dsn: str, *, rounds: int = 5, calls: int = 2_000) -> dict[str, Any]:
    """get() of one execution, four ways in; ratios to the owner's unconfined get, per round."""
    async with (
        Store.connect(dsn, min_size=4, max_size=4) as owner,
        Store.connect(app_login(admin_dsn, dsn, APP_LOGIN), min_size=4, max_size=4) as app,
    ):
        customer = await owner.customers.create(CustomerCreate(name="Bench", email=f"{uuid.uuid4().hex}@bench.example"))
        agent = await owner.agents.create(AgentCreate(type=AgentType.COST, name="Cost", version="1"))
        execution = await owner.workflow_executions.create(
            WorkflowExecutionCreate(
                agent_id=agent.id, customer_id=customer.id, workflow_type=WorkflowType.COST_ANALYSIS
            )
        )
        statement = load("workflow_executions").get_by_id
        raw = await RecordStack.open(dsn, 4)
        owner_confined = owner.for_customer(customer.id)

        async def raw_get() -> Any:
            async with raw.pool.acquire() as conn:
                row = await conn.fetchrow(statement, execution.id, None)  # one server: no customer
                return WorkflowExecution.from_row(row)

        ways: dict[str, Callable[[], Awaitable[Any]]] = {
            "owner": lambda: owner.workflow_executions.get(execution.id),
            "owner confined": lambda: owner_confined.workflow_executions.get(execution.id),
            # a confined store per call, as the service makes one per request
            "app confined": lambda: app.for_customer(customer.id).workflow_executions.get(execution.id),
            "raw+record": raw_get,
        }
        try:
            for call in ways.values():  # warm up: connections, prepared statements, plpgsql
                for _ in range(100):
                    await call()
            per_round = await interleaved_rounds(ways, rounds, calls)
        finally:
            await raw.close()
    ratios = {
        way: [v / o for v, o in zip(values, per_round["owner"], strict=True)] for way, values in per_round.items()
    }
    return {
        "rounds": rounds,
        "calls": calls,
        "per_second": {way: statistics.median(values) for way, values in per_round.items()},
        "ratio_to_owner": {way: statistics.median(values) for way, values in ratios.items()},
        "ratios": ratios,
    }


async def run(dsn: str, admin_dsn: str, *, quick: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    cfg = config(quick)
    log("store against raw asyncpg building the records")
    points = await compare(dsn, cfg, log)
    log("confined get against unconfined")
    confinement = await confined(dsn, admin_dsn, rounds=3 if quick else 5, calls=300 if quick else 2_000)
    with psycopg.connect(dsn) as conn:
        server = conn.execute("SHOW server_version").fetchone()[0]
    return {"server": server, "rounds": cfg.rounds, "calls": cfg.calls, "points": points, "confined": confinement}


TITLES = {
    "get_execution": "get",
    "create_execution": "create",
    "start_complete": "start + complete",
    "list_page": "page of 50",
    "get_detail": "get_detail (5 steps, 3 artifacts)",
}


def describe(result: dict[str, Any]) -> str:
    lines = [f"store / raw asyncpg building the records, PostgreSQL {result['server']}, {result['rounds']} rounds"]
    for op, r in result["points"].items():
        spread = ", ".join(f"{v:.2f}" for v in r["ratios"])
        lines.append(f"  {TITLES[op]:<36} {r['store']:>8.0f}/s {r['raw+record']:>8.0f}/s  {r['ratio']:.2f}x ({spread})")
    c = result["confined"]
    lines.append(f"get, {c['rounds']} rounds x {c['calls']} calls, ratio to the owner's unconfined get")
    for way in WAYS:
        spread = ", ".join(f"{v:.2f}" for v in c["ratios"][way])
        lines.append(f"  {way:<16} {c['per_second'][way]:>8.0f}/s {c['ratio_to_owner'][way]:.2f}x ({spread})")
    return "\n".join(lines)


def markdown(result: dict[str, Any]) -> str:
    points = "\n".join(
        f"| {TITLES[op]} | {r['store']:,.0f} | {r['raw+record']:,.0f} | {r['ratio']:.2f}x | "
        f"{min(r['ratios']):.2f} - {max(r['ratios']):.2f} |"
        for op, r in result["points"].items()
    )
    c = result["confined"]
    ways = "\n".join(
        f"| {way} | {c['per_second'][way]:,.0f} | {c['ratio_to_owner'][way]:.2f}x | "
        f"{min(c['ratios'][way]):.2f} - {max(c['ratios'][way]):.2f} |"
        for way in WAYS
    )
    return f"""## Hot path

`python -m benchmarks hotpath`: sequential awaited calls, PostgreSQL {result["server"]}, pools of 4.
The store against raw asyncpg running the same statements on a pool with the same codecs and
reset and building the same records (`benchmarks/stacks.py`, `RecordStack`), {result["rounds"]}
rounds of {result["calls"]:,} calls (400 for the page), the two interleaved chunk by chunk; a
ratio per round, then the median. Target: 0.9x or more.

| operation | store calls/s | raw + record calls/s | store / raw + record | per round |
|---|---:|---:|---:|---:|
{points}

`get()` of one execution, {c["rounds"]} interleaved rounds of {c["calls"]:,} calls; "app" is an
application login role (a member of optiinfra_app and of the database's connect role), the owner
the role that ran the migrations. Target: app confined at 0.7x or more of the unconfined get.

| way in | calls/s | vs owner, unconfined | per round |
|---|---:|---:|---:|
{ways}
"""
