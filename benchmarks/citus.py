"""The store on a Citus cluster against one PostgreSQL server, under the same workflow load.

Both on this machine, from the same PostgreSQL binaries (the newest with Citus installed): a plain
server of its own (fsync off, as the cluster's nodes), and a coordinator with two workers
(`tests.pg.citus_cluster`), the schema migrated and distributed by customer
(`distribution.distribute`). The cluster's nodes share the machine's cores, so what this measures
is the cost of routing each statement through the coordinator, and that the load runs correctly,
not a speed-up.

The load: `agents` concurrent asyncio tasks over a few customers, each running `workflows`
workflows a round: create an execution, create 3 steps with `create_many`, start the execution,
start and complete each step, complete the execution, `get_detail`; 11 calls a workflow, each timed.
The two targets take their rounds in turns (ABBA...), each through a store with a pool of its own.

Every statement the store sends is counted by its name in optiinfra_store/queries (a wrapper
around the executor's statement methods, on both targets alike). Each statement the store ran on
the cluster is then EXPLAINed on the coordinator with the arguments of one of its runs: a plan
whose every distributed scan has "Task Count: 1" goes to one shard; one with more crosses shards
(its largest task count is reported). The shares are weighted by how often each statement ran.

After the load, each target is checked: every execution completed, 3 completed steps each, and
the trail holds 3 transitions per execution and 3 per step (created, running, completed).

Then, on the same two targets: a confined get (`confined_get`), and the analytics calls over a
month of history written to both, after the first `store.maintain()` rolled it up (`analytics`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import math
import os
import random
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import psycopg

from benchmarks.runner import percentile
from optiinfra_store import Store, distribution, migrations
from optiinfra_store.connection.codecs import init_connection
from optiinfra_store.connection.executor import Executor
from optiinfra_store.enums import AgentType, WorkflowType
from optiinfra_store.queries import load
from optiinfra_store.records import AgentCreate, CustomerCreate, WorkflowExecutionCreate, WorkflowStepCreate
from tests.pg import CITUS_SETTINGS, citus_cluster, citus_server, free_port

TARGETS = ("one server", "citus")
OPERATIONS = (
    "create execution",
    "create_many 3 steps",
    "start execution",
    "start step",
    "complete step",
    "complete execution",
    "get_detail",
)
STEPS = 3
CALLS_PER_WORKFLOW = 4 + 2 * STEPS + 1
SINGLE_SETTINGS = {k: v for k, v in CITUS_SETTINGS.items() if not k.startswith("citus.")} | {
    "shared_preload_libraries": ""
}
"""The cluster's nodes' settings, without Citus."""


class Unavailable(Exception):
    """Citus is not installed for any PostgreSQL of this machine."""


@contextlib.contextmanager
def single_server(bindir: Path) -> Iterator[str]:
    """A throwaway PostgreSQL of `bindir` on a free port, its `postgres` database migrated."""
    work = Path(tempfile.mkdtemp(prefix="optiinfra-single-"))
    work.chmod(0o777)
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # initdb refuses root
    port = free_port()

    def run(tool: str, *args: str) -> None:
        subprocess.run([*run_as, str(bindir / tool), *args], check=True, capture_output=True, cwd=work)

    data = str(work / "single")
    try:
        run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "--no-sync")
        options = " ".join([f"-p {port}", f"-k {work}", *(f"-c {k}={v}" for k, v in SINGLE_SETTINGS.items() if v)])
        run("pg_ctl", "start", "-w", "-D", data, "-l", str(work / "single.log"), "-o", options)
        dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        migrations.apply(dsn)
        yield dsn
    finally:
        if (work / "single" / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                run("pg_ctl", "stop", "-w", "-m", "immediate", "-D", data)
        shutil.rmtree(work, ignore_errors=True)


class StatementLog:
    """Counts each statement the store sends, by its name, and keeps the arguments of its first
    run: installed over the executor's statement methods while the block of `counting()` runs."""

    METHODS = ("fetch", "fetchrow", "fetchval", "execute", "fetch_planned")

    def __init__(self) -> None:
        # a text some files share (a read of an execution's customer) is named by all of them
        texts: dict[str, list[str]] = {}
        for file in sorted(resources.files("optiinfra_store.queries").iterdir(), key=lambda e: e.name):
            if file.name.endswith(".sql"):
                table = file.name.removesuffix(".sql")
                queries = load(table)
                for name in sorted(queries.names()):
                    texts.setdefault(getattr(queries, name), []).append(f"{table}.{name}")
        self.names = {sql: " / ".join(names) for sql, names in texts.items()}
        self.counts: Counter[str] = Counter()
        self.sample: dict[str, tuple[str, tuple[Any, ...]]] = {}

    @contextlib.contextmanager
    def counting(self) -> Iterator[StatementLog]:
        originals = {name: getattr(Executor, name) for name in self.METHODS}

        def wrap(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            async def counted(executor: Executor, sql: str, *args: Any) -> Any:
                name = self.names.get(sql, "unnamed")
                self.counts[name] += 1
                self.sample.setdefault(name, (sql, args))
                return await method(executor, sql, *args)

            return counted

        for name, method in originals.items():
            setattr(Executor, name, wrap(method))
        try:
            yield self
        finally:
            for name, method in originals.items():
                setattr(Executor, name, method)


async def route(dsn: str, log: StatementLog) -> dict[str, dict[str, Any]]:
    """Each statement of `log`: how often it ran, and its plan on the coordinator of `dsn` with the
    arguments of one of its runs: `tasks` (the largest task count of its distributed scans, 0 when
    it has none) and `single_shard`."""
    routes: dict[str, dict[str, Any]] = {}
    conn = await asyncpg.connect(dsn)
    await init_connection(conn)  # the store's codecs: json and enums as it sends them
    try:
        for name, count in sorted(log.counts.items()):
            sql, args = log.sample[name]
            plan = "\n".join(row[0] for row in await conn.fetch("EXPLAIN " + sql, *args))
            tasks = [int(n) for n in re.findall(r"Task Count: (\d+)", plan)]
            routes[name] = {
                "count": count,
                "tasks": max(tasks, default=0),
                "single_shard": bool(tasks) and max(tasks) == 1,
                "pull_to_coordinator": "pull to coordinator" in plan or "Distributed Subplan" in plan,
            }
    finally:
        await conn.close()
    return routes


async def setup(store: Store, agents: int, customers: int) -> tuple[list[UUID], list[UUID]]:
    tag = uuid.uuid4().hex[:8]
    customer_ids = [
        (await store.customers.create(CustomerCreate(name=f"Bench {i}", email=f"c{i}-{tag}@bench.example"))).id
        for i in range(customers)
    ]
    agent_ids = [
        (await store.agents.create(AgentCreate(type=AgentType.COST, name=f"Agent {i}", version="1"))).id
        for i in range(agents)
    ]
    return agent_ids, customer_ids


async def workload(
    store: Store, agent_ids: list[UUID], customer_ids: list[UUID], workflows: int
) -> tuple[dict[str, list[float]], float, list[str], list[UUID]]:
    """`len(agent_ids)` concurrent agents x `workflows`: the latencies of each operation, the
    seconds the round took, the errors, and the executions made."""
    latencies: dict[str, list[float]] = {op: [] for op in OPERATIONS}
    errors: list[str] = []
    made: list[UUID] = []
    clock = time.perf_counter
    executions, steps = store.workflow_executions, store.workflow_steps

    async def timed(op: str, call: Awaitable[Any]) -> Any:
        began = clock()
        result = await call
        latencies[op].append(clock() - began)
        return result

    async def agent(index: int) -> None:
        agent_id = agent_ids[index]
        for w in range(workflows):
            customer_id = customer_ids[(index + w) % len(customer_ids)]
            try:
                execution = await timed(
                    "create execution",
                    executions.create(
                        WorkflowExecutionCreate(
                            agent_id=agent_id, customer_id=customer_id, workflow_type=WorkflowType.COST_ANALYSIS
                        )
                    ),
                )
                made.append(execution.id)
                created = await timed(
                    "create_many 3 steps",
                    steps.create_many(
                        [
                            WorkflowStepCreate(workflow_execution_id=execution.id, step_name=f"step {n}", step_order=n)
                            for n in range(1, STEPS + 1)
                        ]
                    ),
                )
                await timed("start execution", executions.start(execution.id))
                for step in created:
                    await timed("start step", steps.start(step.id))
                    await timed("complete step", steps.complete(step.id, output_data={"ok": True}))
                await timed("complete execution", executions.complete(execution.id, output_data={"done": True}))
                detail = await timed("get_detail", executions.get_detail(execution.id))
                if len(detail.steps) != STEPS:
                    errors.append(f"get_detail gave {len(detail.steps)} steps")
            except Exception as exc:  # counted, reported; the run goes on
                errors.append(f"{type(exc).__name__}: {exc}")

    gc.collect()
    began = clock()
    await asyncio.gather(*(agent(i) for i in range(len(agent_ids))))
    return latencies, clock() - began, errors, made


def check(dsn: str, executions: list[UUID]) -> dict[str, Any]:
    """What the database holds of `executions`: statuses, completed steps, transitions."""
    with psycopg.connect(dsn) as conn:
        ids = [str(e) for e in executions]
        statuses = dict(
            conn.execute(
                "SELECT status::text, count(*) FROM workflow_executions WHERE id = ANY(%s::uuid[]) GROUP BY 1", (ids,)
            ).fetchall()
        )
        steps = dict(
            conn.execute(
                "SELECT status::text, count(*) FROM workflow_steps WHERE workflow_execution_id = ANY(%s::uuid[]) "
                "GROUP BY 1",
                (ids,),
            ).fetchall()
        )
        execution_transitions, step_transitions = conn.execute(
            "SELECT count(*) FILTER (WHERE workflow_step_id IS NULL), count(*) FILTER (WHERE workflow_step_id IS NOT NULL) "
            "FROM workflow_transitions WHERE workflow_execution_id = ANY(%s::uuid[])",
            (ids,),
        ).fetchone()
    n = len(executions)
    found = {
        "executions": n,
        "completed": statuses.get("completed", 0),
        "steps_completed": steps.get("completed", 0),
        "steps": sum(steps.values()),
        "execution_transitions": execution_transitions,
        "step_transitions": step_transitions,
    }
    expected = {
        "executions": n,
        "completed": n,
        "steps_completed": STEPS * n,
        "steps": STEPS * n,
        "execution_transitions": 3 * n,
        "step_transitions": 3 * STEPS * n,
    }
    return {"found": found, "expected": expected, "ok": found == expected}


def placement(dsn: str, customer_ids: list[UUID]) -> dict[str, int]:
    """How many of the customers' executions' shards each node holds (`port` -> customers)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT s.nodeport, count(*) FROM unnest(%s::uuid[]) AS c(id) JOIN citus_shards s "
            "ON s.shardid = get_shard_id_for_distribution_column('workflow_executions', c.id) "
            "AND s.table_name = 'workflow_executions'::regclass GROUP BY 1 ORDER BY 1",
            ([str(c) for c in customer_ids],),
        ).fetchall()
    return {str(port): count for port, count in rows}


async def run(
    *,
    agents: int = 64,
    customers: int = 4,
    workflows: int = 5,
    rounds: int = 2,
    solo_workflows: int = 20,
    pool_size: int | None = None,
    confined_calls: int = 400,
    analytics_executions: int = 1500,
    analytics_calls: int = 15,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    found = citus_server()
    if isinstance(found, str):
        raise Unavailable(found)
    version, bindir = found
    # one more connection than agents, as in the run RESULTS.md records (made when `create_many` on
    # the cluster needed a second pooled connection inside its transaction; it no longer does)
    pool_size = agents + 1 if pool_size is None else pool_size
    with single_server(bindir) as single_dsn, citus_cluster() as cluster:
        citus_dsn = cluster.create_database("optiinfra_bench")
        migrations.apply(citus_dsn)
        distribution.distribute(citus_dsn)
        cluster.admit_tenant(citus_dsn)  # for confined_get: confined calls reach the workers as optiinfra_tenant
        dsns = {"one server": single_dsn, "citus": citus_dsn}
        with psycopg.connect(citus_dsn) as conn:
            citus_version = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'citus'").fetchone()[0]
            server = conn.execute("SHOW server_version").fetchone()[0]
        stores = {
            t: await Store.connect(dsns[t], min_size=pool_size, max_size=pool_size, slow_statement=None)
            for t in TARGETS
        }
        try:
            if not stores["citus"].by_customer or stores["one server"].by_customer:
                raise RuntimeError("the cluster's store does not route by customer, or the single server's does")
            fixtures = {t: await setup(stores[t], agents, customers) for t in TARGETS}
            for target in TARGETS:  # warm up: connections, prepared statements, plpgsql
                await workload(stores[target], *fixtures[target], 1)
            latencies = {t: {op: [] for op in OPERATIONS} for t in TARGETS}
            seconds: dict[str, list[float]] = {t: [] for t in TARGETS}
            errors: dict[str, list[str]] = {t: [] for t in TARGETS}
            made: dict[str, list[UUID]] = {t: [] for t in TARGETS}
            logs = {t: StatementLog() for t in TARGETS}
            for number in range(rounds):
                for target in TARGETS if number % 2 == 0 else TARGETS[::-1]:
                    log(f"  round {number + 1}/{rounds}: {target}")
                    with logs[target].counting():
                        times, took, failed, executions = await workload(stores[target], *fixtures[target], workflows)
                    for op, values in times.items():
                        latencies[target][op].extend(values)
                    seconds[target].append(took)
                    errors[target].extend(failed)
                    made[target].extend(executions)
            solo: dict[str, dict[str, list[float]]] = {}
            for target in TARGETS:  # one agent alone: the cost of a call, without the others queued
                log(f"  one agent alone: {target}")
                times, _, failed, executions = await workload(
                    stores[target], fixtures[target][0][:1], fixtures[target][1], solo_workflows
                )
                solo[target] = times
                errors[target].extend(failed)
                made[target].extend(executions)
            routes = await route(citus_dsn, logs["citus"])
        finally:
            for store in stores.values():
                await store.close()
        log("  a confined get")
        confined = await confined_get(dsns, calls=confined_calls, warmup=min(50, confined_calls))
        log("  analytics")
        analyzed = await analytics(
            dsns, customers=customers, executions_per_customer=analytics_executions, calls=analytics_calls
        )
        checks = {t: check(dsns[t], made[t]) for t in TARGETS}
        customers_per_node = placement(citus_dsn, fixtures["citus"][1])
        cluster.drop_all()
    return summarize(
        {
            "server": server,
            "citus": citus_version,
            "postgres_major": version,
            "agents": agents,
            "customers": customers,
            "workflows": workflows,
            "rounds": rounds,
            "pool_size": pool_size,
            "latencies": latencies,
            "solo": solo,
            "solo_workflows": solo_workflows,
            "seconds": seconds,
            "errors": {t: errors[t][:5] for t in TARGETS},
            "error_count": {t: len(errors[t]) for t in TARGETS},
            "checks": checks,
            "statements": {t: dict(logs[t].counts) for t in TARGETS},
            "routes": routes,
            "customers_per_node": customers_per_node,
            "confined_get": confined,
            "analytics": analyzed,
        }
    )


def summarize(raw: dict[str, Any]) -> dict[str, Any]:
    workflows_per_round = raw["agents"] * raw["workflows"]
    operations = {}
    for op in OPERATIONS:
        row = {}
        for target in TARGETS:
            values = raw["latencies"][target][op]
            row[target] = {
                "calls": len(values),
                "median_ms": statistics.median(values) * 1e3,
                "p95_ms": percentile(values, 0.95) * 1e3,
            }
        for target in TARGETS:
            row[target]["alone_median_ms"] = statistics.median(raw["solo"][target][op]) * 1e3
        row["ratio_median"] = row["citus"]["median_ms"] / row["one server"]["median_ms"]
        row["ratio_alone"] = row["citus"]["alone_median_ms"] / row["one server"]["alone_median_ms"]
        row["ratio_p95"] = row["citus"]["p95_ms"] / row["one server"]["p95_ms"]
        operations[op] = row
    throughput = {t: statistics.median(workflows_per_round / s for s in raw["seconds"][t]) for t in TARGETS}
    routes = raw["routes"]
    total = sum(r["count"] for r in routes.values())
    single = sum(r["count"] for r in routes.values() if r["single_shard"])
    workflows_run = {t: workflows_per_round * raw["rounds"] for t in TARGETS}
    per_workflow = {t: sum(raw["statements"][t].values()) / workflows_run[t] for t in TARGETS}
    del raw["latencies"], raw["solo"]
    return raw | {
        "operations": operations,
        "workflows_per_second": throughput,
        "throughput_ratio": throughput["citus"] / throughput["one server"],
        "statements_per_workflow": per_workflow,
        "single_shard_share": single / total if total else float("nan"),
        "statements_total": total,
    }


def describe(result: dict[str, Any]) -> str:
    rate = result["workflows_per_second"]
    lines = [
        f"{result['agents']} agents x {result['workflows']} workflows x {result['rounds']} rounds, "
        f"PostgreSQL {result['server']}, Citus {result['citus']}: one server {rate['one server']:.1f} wf/s, "
        f"citus {rate['citus']:.1f} wf/s ({result['throughput_ratio']:.2f}x); errors "
        f"{result['error_count']['one server']} / {result['error_count']['citus']}; checks "
        f"{'ok' if all(c['ok'] for c in result['checks'].values()) else result['checks']}",
        f"statements on one shard: {result['single_shard_share']:.0%} of {result['statements_total']}",
    ]
    for op, row in result["operations"].items():
        lines.append(
            f"  {op:<22} one server {row['one server']['median_ms']:6.2f} / {row['one server']['p95_ms']:6.2f} ms, "
            f"citus {row['citus']['median_ms']:6.2f} / {row['citus']['p95_ms']:6.2f} ms, "
            f"{row['ratio_median']:.2f}x median; alone {row['one server']['alone_median_ms']:.2f} / "
            f"{row['citus']['alone_median_ms']:.2f} ms"
        )
    for name, r in sorted(result["routes"].items(), key=lambda item: -item[1]["count"]):
        lines.append(f"  {name:<45} {r['count']:6d}  tasks {r['tasks']}")
    for target, errors in result["errors"].items():
        for error in errors:
            lines.append(f"  {target} error: {error}")
    lines.append(describe_confined_get(result["confined_get"]))
    lines.append(describe_analytics(result["analytics"]))
    return "\n".join(lines)


def markdown(result: dict[str, Any]) -> str:
    rate = result["workflows_per_second"]
    ops = "\n".join(
        f"| {op} | {row['one server']['alone_median_ms']:.2f} | {row['citus']['alone_median_ms']:.2f} | "
        f"{row['ratio_alone']:.1f}x | {row['one server']['median_ms']:.1f} | {row['one server']['p95_ms']:.1f} | "
        f"{row['citus']['median_ms']:.1f} | {row['citus']['p95_ms']:.1f} | {row['ratio_median']:.1f}x | "
        f"{row['ratio_p95']:.1f}x |"
        for op, row in result["operations"].items()
    )
    routes = sorted(result["routes"].items(), key=lambda item: (item[1]["single_shard"], -item[1]["count"]))
    per_workflow = result["agents"] * result["workflows"] * result["rounds"]
    statements = "\n".join(
        f"| `{name}` | {r['count'] / per_workflow:.1f} | "
        f"{'one shard' if r['single_shard'] else str(r['tasks']) + ' shards'} |"
        for name, r in routes
    )
    crossing = [name for name, r in routes if not r["single_shard"]]
    checks = result["checks"]
    found = checks["citus"]["found"]
    nodes = ", ".join(f"{count}" for count in result["customers_per_node"].values())
    return f"""## On a Citus cluster

`python -m benchmarks citus`: {result["agents"]} concurrent agents over {result["customers"]} customers,
{result["workflows"]} workflows each per round, {result["rounds"]} rounds taken in turns; a
workflow is 11 calls (create an execution, `create_many` of 3 steps, start it, start and complete
each step, complete it, `get_detail`). One PostgreSQL {result["server"]} server against the
coordinator of a Citus {result["citus"]} cluster with two workers (schema distributed by customer,
32 shards a table; the customers' shards per worker: {nodes}), all on this machine, from the same
binaries and settings; each through a store with a pool of {result["pool_size"]}. The three nodes
share the two cores: this is what routing through a coordinator costs, not a speed-up.

The pool has one connection more than there are agents, as in the first runs, so that runs
compare. Those runs found `create_many` reading its execution's customer on a second pooled
connection inside its transaction: with as many agents as connections, every connection could be
held by a transaction waiting for another (StoreTimeout). It reads the customers before its
transaction now, and tests/citus/test_distributed_writes.py runs the store's writes on a pool of
one connection.

Latency in ms: "alone" is the median of one agent running {result["solo_workflows"]} workflows by
itself; median and p95 are under the {result["agents"]} agents' load.

| operation | alone: one server | Citus | ratio | loaded: one server median | p95 | Citus median | p95 | median ratio | p95 ratio |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|
{ops}

Throughput: one server {rate["one server"]:.1f} workflows/s, Citus {rate["citus"]:.1f}
({result["throughput_ratio"]:.2f}x). Statements sent per workflow: one server
{result["statements_per_workflow"]["one server"]:.1f}, Citus {result["statements_per_workflow"]["citus"]:.1f}
(an unconfined store names the customer of the rows it has seen; it reads the customer of any
other row on every shard before a write by id). Errors:
{result["error_count"]["one server"]} and {result["error_count"]["citus"]}. After the load, checks
{"passed" if all(c["ok"] for c in checks.values()) else "FAILED"} on both: on the cluster
{found["completed"]} of {found["executions"]} executions completed, {found["steps_completed"]}
steps completed, {found["execution_transitions"]} execution and {found["step_transitions"]} step
transitions (3 each: created, running, completed).

Routing, measured: each statement the store sent to the cluster, counted by name around the
executor and EXPLAINed on the coordinator with the arguments of one of its runs; "one shard" when
every distributed scan of its plan has one task. **{result["single_shard_share"]:.0%}** of the
{result["statements_total"]:,} statements went to one shard. Crossing shards:
{", ".join(f"`{n}`" for n in crossing) or "none"} (a statement by id alone goes to every shard;
the store's agents make the rows they write, so it knows their customers). A name with slashes
is one text that several files hold.

| statement | per workflow | routed to |
|---|---:|---|
{statements}

{markdown_confined_get(result["confined_get"])}
{markdown_analytics(result["analytics"])}"""


# -- a confined get: one server against the coordinator ------------------------------------------

CONFINED_GET_MODES = ("unconfined", "confined")


async def confined_get(dsns: dict[str, str], *, calls: int = 400, warmup: int = 50) -> dict[str, Any]:
    """Per-call latency of `get` by id, unconfined and through `for_customer`, on each target of
    `dsns` ({"one server": dsn, "citus": dsn}: migrated; the cluster's distributed, with
    optiinfra_tenant admitted to its workers). One caller, a pool of one connection per target (the
    confined calls on the coordinator reuse the worker connections its session opened as
    optiinfra_tenant), the calls taken in turns: unconfined, confined, target after target, the
    targets' order swapped every call. On one server a confined get binds the session (two round
    trips); on the cluster it is a transaction of its own (three), whose binding Citus replays on
    each worker connection it uses. The unconfined store made the execution, so it knows its
    customer and its get goes to one shard too (a get by id of a row the store has not seen reads
    every shard)."""
    stores = {t: await Store.connect(dsns[t], min_size=1, max_size=1, slow_statement=None) for t in TARGETS}
    try:
        reads: dict[str, dict[str, Callable[[], Awaitable[Any]]]] = {}
        for target, store in stores.items():
            customer = await store.customers.create(CustomerCreate(name="Confined", email="confined@bench.example"))
            agent = await store.agents.create(AgentCreate(type=AgentType.COST, name="Confined", version="1"))
            execution = await store.workflow_executions.create(
                WorkflowExecutionCreate(
                    agent_id=agent.id, customer_id=customer.id, workflow_type=WorkflowType.COST_ANALYSIS
                )
            )
            confined = store.for_customer(customer.id)
            reads[target] = {
                "unconfined": lambda store=store, id=execution.id: store.workflow_executions.get(id),
                "confined": lambda confined=confined, id=execution.id: confined.workflow_executions.get(id),
            }
            if (await reads[target]["confined"]()).id != execution.id:
                raise RuntimeError(f"{target}: the confined get did not read its own execution")
        times: dict[str, dict[str, list[float]]] = {t: {m: [] for m in CONFINED_GET_MODES} for t in TARGETS}
        clock = time.perf_counter
        gc.collect()
        for number in range(warmup + calls):
            for target in TARGETS if number % 2 == 0 else TARGETS[::-1]:
                for mode in CONFINED_GET_MODES:
                    began = clock()
                    await reads[target][mode]()
                    if number >= warmup:
                        times[target][mode].append(clock() - began)
    finally:
        for store in stores.values():
            await store.close()
    result: dict[str, Any] = {"calls": calls}
    for target in TARGETS:
        result[target] = {
            mode: {"median_ms": statistics.median(v) * 1e3, "p95_ms": percentile(v, 0.95) * 1e3}
            for mode, v in times[target].items()
        }
        result[target]["confined_cost_ms"] = (
            result[target]["confined"]["median_ms"] - result[target]["unconfined"]["median_ms"]
        )
    result["ratio_confined"] = result["citus"]["confined"]["median_ms"] / result["one server"]["confined"]["median_ms"]
    return result


@contextlib.contextmanager
def targets_of_their_own() -> Iterator[dict[str, str]]:
    """The DSNs of a server and a cluster of their own (the schema migrated and distributed there,
    `optiinfra_tenant` admitted to the workers), for a section run alone."""
    found = citus_server()
    if isinstance(found, str):
        raise Unavailable(found)
    _, bindir = found
    with single_server(bindir) as single_dsn, citus_cluster() as cluster:
        citus_dsn = cluster.create_database("optiinfra_bench")
        migrations.apply(citus_dsn)
        distribution.distribute(citus_dsn)
        cluster.admit_tenant(citus_dsn)
        yield {"one server": single_dsn, "citus": citus_dsn}
        cluster.drop_all()


async def run_confined_get(*, calls: int = 400) -> dict[str, Any]:
    """`confined_get` on a server and a cluster of its own (`python -c "import asyncio;
    from benchmarks import citus; print(citus.describe_confined_get(asyncio.run(citus.run_confined_get())))"`)."""
    with targets_of_their_own() as dsns:
        return await confined_get(dsns, calls=calls)


def describe_confined_get(result: dict[str, Any]) -> str:
    return "\n".join(
        f"  get by id, {target:<10}: "
        + ", ".join(
            f"{mode} {result[target][mode]['median_ms']:.2f} / {result[target][mode]['p95_ms']:.2f} ms"
            for mode in CONFINED_GET_MODES
        )
        + f" (confined costs {result[target]['confined_cost_ms']:+.2f} ms)"
        for target in TARGETS
    )


def markdown_confined_get(result: dict[str, Any]) -> str:
    rows = "\n".join(
        f"| {target} | {result[target]['unconfined']['median_ms']:.2f} | {result[target]['unconfined']['p95_ms']:.2f} | "
        f"{result[target]['confined']['median_ms']:.2f} | {result[target]['confined']['p95_ms']:.2f} | "
        f"{result[target]['confined_cost_ms']:+.2f} |"
        for target in TARGETS
    )
    return f"""### A confined get

`get` of one execution by id, {result["calls"]} calls each, one caller through a pool of one
connection, the calls taken in turns (unconfined, confined; one server, the coordinator). On one
server a confined call binds its session for the statement (two round trips); on the cluster it
is a transaction of its own (three round trips), and Citus replays the transaction's binding on
each worker connection it uses, opened as `optiinfra_tenant`. The unconfined store made the
execution, so it knows the customer and names it: its get goes to one shard as well (a get by id
of a row the store has not seen reads every shard of the table). Latency in ms:

| target | unconfined median | p95 | confined median | p95 | confined minus unconfined (median) |
|---|---:|---:|---:|---:|---:|
{rows}

A confined get on the coordinator takes {result["ratio_confined"]:.1f}x as long as on one server.
"""


# -- analytics: statistics, performance and trend over a month of history ------------------------

ANALYTICS_CALLS = ("statistics", "performance", "trend")
ANALYTICS_SCOPES = ("one customer", "every customer")
_STATUSES = (  # an execution's status, its steps' and how often (per 100)
    ("completed", ("completed", "completed"), 75),
    ("failed", ("completed", "failed"), 10),
    ("timeout", ("completed", "failed"), 3),
    ("cancelled", ("completed", "skipped"), 2),
    ("running", ("completed", "running"), 5),
    ("pending", ("pending", "pending"), 5),
)
_ERRORS = ("GPUUnavailable", "ValidationError", "RateLimited", "ProviderError")
_EXECUTION_COLUMNS = 9
_STEP_COLUMNS = 10
_CHUNK = 500  # executions a statement (their steps: twice as many rows)


def _values(rows: int, columns: int) -> str:
    """`($1, ..., $columns), (...)` for `rows` rows: placeholders only, counted from the rows."""
    return ", ".join("(" + ", ".join(f"${r * columns + c + 1}" for c in range(columns)) + ")" for r in range(rows))


def analytics_history(executions: int, now: datetime, seed: int = 7) -> list[tuple[Any, ...]]:
    """One customer's month of executions (the same for every customer and target): per execution
    (workflow type, status, created, started, completed, error type, the steps' statuses, the
    steps' retries), created over the 30 days before `now` (29.5: still inside the default window of
    30 days when the calls run minutes later), finished ones lasting 1 s to 2 h."""
    rng = random.Random(seed)
    kinds = [(status, steps) for status, steps, weight in _STATUSES for _ in range(weight)]
    types = list(WorkflowType)
    rows = []
    for n in range(executions):
        status, steps = rng.choice(kinds)
        created = now - timedelta(seconds=rng.uniform(60, 29.5 * 86400))
        started = None if status == "pending" else created + timedelta(seconds=rng.uniform(0.1, 5))
        duration = math.exp(rng.uniform(0, math.log(7200)))
        completed = min(started + timedelta(seconds=duration), now) if started and status != "running" else None
        error = rng.choice(_ERRORS) if status in ("failed", "timeout") else None
        retries = (rng.choice((0, 0, 0, 1, 2)), rng.choice((0, 0, 1)))
        rows.append((types[n % len(types)].value, status, created, started, completed, error, steps, retries))
    return rows


async def write_history(
    conn: asyncpg.Connection, agent_id: UUID, customer_id: UUID, history: list[tuple[Any, ...]]
) -> int:
    """`history` as `customer_id`'s executions of `agent_id`, 2 steps each: multi-row INSERTs of
    one customer's rows each (on the cluster: one shard a statement, as the audit trail's trigger
    notifies, which a write to several shards' two-phase commit refuses). Returns the executions."""
    insert_executions = (
        "INSERT INTO workflow_executions (agent_id, customer_id, workflow_type, status, started_at, completed_at, "
        "error_details, created_at, updated_at) VALUES {} RETURNING id"
    )
    insert_steps = (
        "INSERT INTO workflow_steps (workflow_execution_id, customer_id, step_name, step_order, status, started_at, "
        "completed_at, retry_count, created_at, updated_at) VALUES {}"
    )
    for lo in range(0, len(history), _CHUNK):
        chunk = history[lo : lo + _CHUNK]
        args: list[Any] = []
        for kind, status, created, started, completed, error, _, _ in chunk:
            details = None if error is None else json.dumps({"error_type": error, "error_message": "step failed"})
            args += [agent_id, customer_id, kind, status, started, completed, details, created, completed or created]
        ids = [
            row["id"]
            for row in await conn.fetch(insert_executions.format(_values(len(chunk), _EXECUTION_COLUMNS)), *args)
        ]
        args = []
        for execution_id, (_, _, created, started, completed, _, steps, retries) in zip(ids, chunk, strict=True):
            middle = None if started is None else started + ((completed or started) - started) / 2
            windows = ((started, middle), (middle, completed))
            for order, (step_status, retry, (begin, end)) in enumerate(zip(steps, retries, windows, strict=True), 1):
                if step_status in ("pending", "skipped"):
                    begin = end = None
                elif step_status == "running":
                    end = None
                args += [
                    execution_id,
                    customer_id,
                    ("collect", "analyze")[order - 1],
                    order,
                    step_status,
                    begin,
                    end,
                    0 if begin is None else retry,
                    created,
                    end or begin or created,
                ]
        await conn.execute(insert_steps.format(_values(2 * len(chunk), _STEP_COLUMNS)), *args)
    return len(history)


async def analytics(
    dsns: dict[str, str], *, customers: int = 4, executions_per_customer: int = 1500, calls: int = 15, warmup: int = 2
) -> dict[str, Any]:
    """statistics, performance and trend (daily buckets from midnight UTC 30 days ago) for one
    customer and over every customer, on each target of `dsns` (as `confined_get`'s; the cluster's
    distributed). Each target gets the same month of history: `customers` new customers of one new
    agent, `executions_per_customer` executions each with 2 steps; then `store.maintain()` rolls
    up every closed hour (its first run, timed); then `warmup` untimed and `calls` timed calls of
    each kind, one caller through a pool of one connection per target, the targets' order swapped
    every call. Each call is two statements: `rollup_plan` on the coordinator, then the analytics
    statement: with a customer named, one task on the node holding the customer's rows; over every
    customer, the raw rows are read on every node (each call's plan on the coordinator is EXPLAINed
    once: its task count). A check: the one customer's statistics count its executions on both
    targets."""
    now = datetime.now(UTC)
    history = analytics_history(executions_per_customer, now)
    since = (now - timedelta(days=30)).replace(hour=0, minute=0, second=0, microsecond=0)
    stores = {t: await Store.connect(dsns[t], min_size=1, max_size=1, slow_statement=None) for t in TARGETS}
    result: dict[str, Any] = {
        "customers": customers,
        "executions_per_customer": executions_per_customer,
        "calls": calls,
    }
    try:
        one: dict[str, UUID] = {}
        for target, store in stores.items():
            tag = uuid.uuid4().hex[:8]
            agent = await store.agents.create(AgentCreate(type=AgentType.COST, name="Analytics", version="1"))
            ids = [
                (
                    await store.customers.create(CustomerCreate(name=f"History {i}", email=f"h{i}-{tag}@bench.example"))
                ).id
                for i in range(customers)
            ]
            one[target] = ids[0]
            conn = await asyncpg.connect(dsns[target])
            try:
                began = time.perf_counter()
                for customer_id in ids:
                    await write_history(conn, agent.id, customer_id, history)
                written = time.perf_counter() - began
            finally:
                await conn.close()
            began = time.perf_counter()
            report = await store.maintain()
            result[target] = {
                "write_seconds": written,
                "maintain_seconds": time.perf_counter() - began,
                "rollup_hours": report.rollup_hours,
            }
        work: dict[str, dict[tuple[str, str], Callable[[], Awaitable[Any]]]] = {}
        for target, store in stores.items():
            executions = store.workflow_executions
            work[target] = {}
            for scope in ANALYTICS_SCOPES:
                named: dict[str, Any] = {"customer_id": one[target]} if scope == "one customer" else {}
                work[target][("statistics", scope)] = lambda e=executions, k=named: e.statistics(**k)
                work[target][("performance", scope)] = lambda e=executions, k=named: e.performance(**k)
                work[target][("trend", scope)] = lambda e=executions, k=named: e.trend(
                    bucket=timedelta(days=1), since=since, **k
                )
        for target in TARGETS:
            counted = await work[target][("statistics", "one customer")]()
            result[target]["one_customer_total"] = counted.total
            if counted.total != executions_per_customer:
                raise RuntimeError(f"{target}: statistics counted {counted.total} of {executions_per_customer}")
        tasks: dict[tuple[str, str], int] = {}
        for key, call in work["citus"].items():  # the analytics statement's plan: its largest task count
            log = StatementLog()
            with log.counting():
                await call()
            routes = await route(dsns["citus"], log)
            tasks[key] = max(r["tasks"] for name, r in routes.items() if not name.endswith(".rollup_plan"))
        times: dict[str, dict[tuple[str, str], list[float]]] = {t: {k: [] for k in work[t]} for t in TARGETS}
        clock = time.perf_counter
        gc.collect()
        for number in range(warmup + calls):
            for target in TARGETS if number % 2 == 0 else TARGETS[::-1]:
                for key, call in work[target].items():
                    began = clock()
                    await call()
                    if number >= warmup:
                        times[target][key].append(clock() - began)
    finally:
        for store in stores.values():
            await store.close()
    rows = {}
    for call in ANALYTICS_CALLS:
        for scope in ANALYTICS_SCOPES:
            row: dict[str, Any] = {}
            for target in TARGETS:
                values = times[target][(call, scope)]
                row[target] = {"median_ms": statistics.median(values) * 1e3, "p95_ms": percentile(values, 0.95) * 1e3}
            row["ratio_median"] = row["citus"]["median_ms"] / row["one server"]["median_ms"]
            row["citus_tasks"] = tasks[(call, scope)]
            rows[f"{call}, {scope}"] = row
    result["operations"] = rows
    result["maintain_ratio"] = result["citus"]["maintain_seconds"] / result["one server"]["maintain_seconds"]
    return result


async def run_analytics(*, customers: int = 4, executions_per_customer: int = 1500, calls: int = 15) -> dict[str, Any]:
    """`analytics` on a server and a cluster of its own (`python -c "import asyncio;
    from benchmarks import citus; print(citus.describe_analytics(asyncio.run(citus.run_analytics())))"`)."""
    with targets_of_their_own() as dsns:
        return await analytics(dsns, customers=customers, executions_per_customer=executions_per_customer, calls=calls)


def describe_analytics(result: dict[str, Any]) -> str:
    lines = [
        f"  analytics: {result['customers']} customers x {result['executions_per_customer']} executions; "
        + "; ".join(
            f"{t} wrote in {result[t]['write_seconds']:.1f} s, maintain() {result[t]['maintain_seconds']:.2f} s "
            f"({result[t]['rollup_hours']} hours)"
            for t in TARGETS
        )
    ]
    for name, row in result["operations"].items():
        lines.append(
            f"  {name:<28} one server {row['one server']['median_ms']:7.2f} / {row['one server']['p95_ms']:7.2f} ms, "
            f"citus {row['citus']['median_ms']:7.2f} / {row['citus']['p95_ms']:7.2f} ms, {row['ratio_median']:.2f}x; "
            f"tasks {row['citus_tasks']}"
        )
    return "\n".join(lines)


def markdown_analytics(result: dict[str, Any]) -> str:
    rows = "\n".join(
        f"| {name} | {row['one server']['median_ms']:.1f} | {row['one server']['p95_ms']:.1f} | "
        f"{row['citus']['median_ms']:.1f} | {row['citus']['p95_ms']:.1f} | {row['ratio_median']:.1f}x | "
        f"{row['citus_tasks']} |"
        for name, row in result["operations"].items()
    )
    single, citus = result["one server"], result["citus"]
    return f"""### Analytics

The same month of history on each target: {result["customers"]} customers of one agent,
{result["executions_per_customer"]:,} executions each (created over the last 30 days, 8 workflow
types, three quarters completed, the rest failed, timed out, cancelled, running or pending), 2
steps each, written one customer a statement. The first `store.maintain()` then rolls up every
closed hour: {single["rollup_hours"]} hours in {single["maintain_seconds"]:.2f} s on one server,
{citus["rollup_hours"]} in {citus["maintain_seconds"]:.2f} s on the cluster ({result["maintain_ratio"]:.1f}x).

Then `statistics`, `performance` and `trend` (daily buckets from midnight UTC 30 days ago), each
{result["calls"]} times for one customer and over every customer, one caller through a pool of one
connection, the targets taken in turns. Each call is two statements: `rollup_plan` (on the
cluster, on the coordinator), then the analytics statement: for one customer one task on the
node holding the customer's rows, over every customer the raw part of the window read on every
node. Tasks: the largest task count of the analytics statement's distributed scans, from its
plan on the coordinator (EXPLAIN with the arguments of one of its runs). Over every customer the
figures also count what else the database holds. Latency in ms:

| call | one server median | p95 | Citus median | p95 | median ratio | Citus tasks |
|---|---:|---:|---:|---:|---:|---:|
{rows}
"""
