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
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
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

The pool has one connection more than there are agents: on the cluster, `create_many` holds a
transaction's connection while it reads the execution's customer on a second one from the pool,
so with as many agents as connections every connection can end up held by a transaction waiting
for another, and each such call fails with StoreTimeout (a pool of 16 under this load: most
workflows failed so; a pool of 1: every `create_many`).

Latency in ms: "alone" is the median of one agent running {result["solo_workflows"]} workflows by
itself; median and p95 are under the {result["agents"]} agents' load.

| operation | alone: one server | Citus | ratio | loaded: one server median | p95 | Citus median | p95 | median ratio | p95 ratio |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|
{ops}

Throughput: one server {rate["one server"]:.1f} workflows/s, Citus {rate["citus"]:.1f}
({result["throughput_ratio"]:.2f}x). Statements sent per workflow: one server
{result["statements_per_workflow"]["one server"]:.1f}, Citus {result["statements_per_workflow"]["citus"]:.1f}
(the cluster's store reads a row's customer before each write naming it). Errors:
{result["error_count"]["one server"]} and {result["error_count"]["citus"]}. After the load, checks
{"passed" if all(c["ok"] for c in checks.values()) else "FAILED"} on both: on the cluster
{found["completed"]} of {found["executions"]} executions completed, {found["steps_completed"]}
steps completed, {found["execution_transitions"]} execution and {found["step_transitions"]} step
transitions (3 each: created, running, completed).

Routing, measured: each statement the store sent to the cluster, counted by name around the
executor and EXPLAINed on the coordinator with the arguments of one of its runs; "one shard" when
every distributed scan of its plan has one task. **{result["single_shard_share"]:.0%}** of the
{result["statements_total"]:,} statements went to one shard. The rest read a row by its id alone,
so they go to every shard: {", ".join(f"`{n}`" for n in crossing) or "none"} (a transition's
read of its row's customer, `create_many`'s read of its execution's customer, and `get_detail`).
A name with slashes is one text that several files hold.

| statement | per workflow | routed to |
|---|---:|---|
{statements}
"""
