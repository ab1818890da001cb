"""What confining a call to one customer costs: `get()` of one execution, sequential awaited calls,
on four ways in, interleaved round by round in one process on the same rows:

- `owner`: the owner's pool (the role that ran the migrations), unconfined: the baseline;
- `owner confined`: the same pool, `for_customer(...)` (the transaction takes on optiinfra_tenant);
- `app confined`: a pool logged in as an application login role (IN ROLE optiinfra_app), confined;
- `raw`: asyncpg's `fetchrow` of the same statement on the owner's pool, no records built.

A confined call on a direct connection is two round trips (the session bound to the customer,
checked by the database, then the statement); an unconfined one is one. Ratios are per round, then the median.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from optiinfra_store import Store
from optiinfra_store.enums import AgentType, WorkflowType
from optiinfra_store.queries import load
from optiinfra_store.records import AgentCreate, CustomerCreate, WorkflowExecutionCreate
from tests.pg import app_login

APP_LOGIN = "optiinfra_bench_agent"
WAYS = ("owner", "owner confined", "app confined", "raw")


async def interleaved_rounds(
    ways: dict[str, Callable[[], Awaitable[Any]]], rounds: int, calls: int
) -> dict[str, list[float]]:
    """Calls per second of each way, round by round: `calls` calls of one way after another, each
    round starting one way further on, so no way always runs first (or last) on a warm host."""
    names = list(ways)
    per_round: dict[str, list[float]] = {name: [] for name in names}
    for number in range(rounds):
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            began = time.perf_counter()
            for _ in range(calls):
                await ways[name]()
            per_round[name].append(calls / (time.perf_counter() - began))
    return per_round


async def run(dsn: str, admin_dsn: str, *, rounds: int = 5, calls: int = 2_000) -> dict[str, Any]:
    async with (
        Store.connect(dsn, min_size=4, max_size=4) as owner,
        Store.connect(app_login(admin_dsn, dsn, APP_LOGIN), min_size=4, max_size=4) as app,
    ):
        customer = await owner.customers.create(CustomerCreate(name="Bench", email=f"{uuid.uuid4().hex}@bench.example"))
        agent = await owner.agents.create(AgentCreate(type=AgentType.COST, name="Cost", version="1"))
        execution = await owner.workflow_executions.create(
            WorkflowExecutionCreate(
                agent_id=agent.id,
                customer_id=customer.id,
                workflow_type=WorkflowType.COST_ANALYSIS,
            )
        )
        statement = load("workflow_executions").get_by_id
        owner_confined = owner.for_customer(customer.id)
        app_confined = app.for_customer(customer.id)

        async def raw() -> Any:
            async with owner.pool.acquire() as conn:
                return await conn.fetchrow(statement, execution.id, None)  # no customer: one server

        ways: dict[str, Callable[[], Awaitable[Any]]] = {
            "owner": lambda: owner.workflow_executions.get(execution.id),
            "owner confined": lambda: owner_confined.workflow_executions.get(execution.id),
            "app confined": lambda: app_confined.workflow_executions.get(execution.id),
            "raw": raw,
        }
        for call in ways.values():  # warm up: connections, prepared statements, plpgsql
            for _ in range(50):
                await call()
        per_round = await interleaved_rounds(ways, rounds, calls)
    with psycopg.connect(dsn) as conn:
        server = conn.execute("SHOW server_version").fetchone()[0]
    return {
        "server": server,
        "rounds": rounds,
        "calls": calls,
        "per_second": {way: statistics.median(values) for way, values in per_round.items()},
        "ratio_to_owner": {
            way: statistics.median(v / o for v, o in zip(values, per_round["owner"], strict=True))
            for way, values in per_round.items()
        },
    }


def describe(result: dict[str, Any]) -> str:
    lines = [
        f"confined get(), PostgreSQL {result['server']}, {result['rounds']} rounds x {result['calls']} calls",
        f"{'way in':<16} {'calls/s':>9} {'vs owner':>9}",
    ]
    for way in WAYS:
        lines.append(f"{way:<16} {result['per_second'][way]:>9.0f} {result['ratio_to_owner'][way]:>8.2f}x")
    return "\n".join(lines)


def markdown(result: dict[str, Any]) -> str:
    rows = "\n".join(
        f"| {way} | {result['per_second'][way]:,.0f} | {result['ratio_to_owner'][way]:.2f}x |" for way in WAYS
    )
    return f"""## Confinement

`python -m benchmarks confinement`: `get()` of one execution, sequential awaited calls, median of
{result["rounds"]} interleaved rounds of {result["calls"]:,} calls, PostgreSQL {result["server"]}.
Target: a confined get at 0.7x or more of an unconfined one (application role against owner).

| way in | calls/s | vs owner, unconfined |
|---|---:|---:|
{rows}

A confined call on a direct connection is two round trips (`optiinfra_confine(customer, false)`,
which binds the session and checks that row-level security holds, then the statement) where an
unconfined one is one (behind a transaction pooler: three, BEGIN with the confinement, the
statement, COMMIT). A round trip costs about 0.1 ms on this machine, which is what the gap is
made of. The 0.7x target would need one round trip, i.e. the check to travel with the statement,
which asyncpg cannot pipeline; skipping the check on a connection already bound would let a
role change (BYPASSRLS, a table's row-level security turned off) go unnoticed.
"""
