#!/usr/bin/env python3
"""Soak test: many agents run workflows through one Store while its pool's backends are killed.

    python scripts/soak.py [--dsn DSN] [--duration 120] [--agents 64] [--kill-every 3] [--json PATH]

Without --dsn (or $OPTIINFRA_DATABASE_URL) it runs on an embedded PostgreSQL, as the demo does; the
schema is migrated first either way. Every agent runs workflows in a loop: an idempotent create,
start, five steps created in one transaction, each step started and completed (some fail and are
retried first), then two artifacts and the completion in one transaction. Meanwhile a killer task
terminates random backends of the store's pool (found by application_name). A call that fails with
StoreUnavailable (or StoreTimeout) is retried: a create with the same idempotency key; a transition
or transaction after re-reading the row, continuing if the failed attempt had in fact committed.

Every acknowledged write goes into a ledger. At the end the ledger and the schema's invariants are
checked with SQL and the figures printed (and written as JSON with --json). Exit status 1 when a
write was lost or an invariant violated, 0 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import asyncpg

if __package__ in (None, ""):  # run as a file: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from optiinfra_store import Store, migrations  # noqa: E402
from optiinfra_store.commands import embedded  # noqa: E402
from optiinfra_store.connection.dsn import DSN_ENV, redact  # noqa: E402
from optiinfra_store.enums import AgentStatus, AgentType, ArtifactType, StepStatus, WorkflowStatus, WorkflowType  # noqa: E402
from optiinfra_store.errors import StoreError, StoreTimeout, StoreUnavailable  # noqa: E402
from optiinfra_store.records import (  # noqa: E402
    AgentCreate,
    CustomerCreate,
    WorkflowArtifactCreate,
    WorkflowExecutionCreate,
    WorkflowStepCreate,
)

APPLICATION_NAME = "optiinfra-soak"
STEPS = 5
ARTIFACTS = 2
MAX_RETRIES = 3
FAIL_PROBABILITY = 0.15  # of each step run: fail it, retry it, run it again
MAX_ATTEMPTS = 200  # of one call; reaching it means the store did not recover

T = TypeVar("T")


@dataclass
class SoakReport:
    """The figures of one soak run; `ok` when nothing was lost and no invariant was violated."""

    duration_seconds: float = 0.0
    agents: int = 0
    pool_size: int = 0
    workflows_completed: int = 0
    calls: int = 0
    faults_injected: int = 0
    kill_rounds: int = 0
    errors_surfaced: dict[str, int] = field(default_factory=dict)
    unclassified_errors: int = 0
    """Connection errors that reached the caller as a plain StoreError or a raw driver exception
    instead of StoreUnavailable; retried like it, and failing the run only with --strict."""
    retries: int = 0
    retries_by_call: dict[str, int] = field(default_factory=dict)
    recovered_by_reread: int = 0
    acknowledged_writes: int = 0
    writes_lost: int = 0
    invariant_violations: int = 0
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.writes_lost == 0 and self.invariant_violations == 0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


@dataclass
class StepLedger:
    id: UUID
    writes: int = 1  # acknowledged writes: the insert, then each transition
    retry_count: int = 0
    status: StepStatus = StepStatus.PENDING


@dataclass
class ExecutionLedger:
    id: UUID
    agent_id: UUID
    key: str
    writes: int = 1  # the insert; start and complete add one each (its version counts them)
    status: WorkflowStatus = WorkflowStatus.PENDING
    steps: list[StepLedger] = field(default_factory=list)
    artifacts: dict[UUID, UUID | None] = field(default_factory=dict)  # artifact id -> step id


class Ledger:
    """Every write the store acknowledged (by a reply, or found applied on re-reading)."""

    def __init__(self) -> None:
        self.executions: dict[UUID, ExecutionLedger] = {}

    @property
    def acknowledged_writes(self) -> int:
        total = 0
        for execution in self.executions.values():
            total += execution.writes + len(execution.artifacts) + sum(s.writes for s in execution.steps)
        return total


class Stats:
    def __init__(self) -> None:
        self.calls = 0
        self.retries = 0
        self.retries_by_call: Counter[str] = Counter()
        self.recovered = 0
        self.faults = 0
        self.kill_rounds = 0
        self.workflows_completed = 0
        self.errors: Counter[str] = Counter()
        self.violations: list[str] = []

    def error(self, exc: BaseException) -> None:
        name = type(exc).__name__
        if type(exc) is StoreError and exc.__cause__ is not None:  # the store could not classify it
            name = f"StoreError({type(exc.__cause__).__name__})"
        elif not isinstance(exc, StoreError):  # escaped untranslated
            name = f"raw {name}"
        self.errors[name] += 1


class Violation(Exception):
    """An invariant broke while an agent ran; recorded, and that agent stops."""


_DRIVER_CONNECTION_ERRORS = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)


def transient(exc: BaseException) -> bool:
    """A failure worth retrying: the connection or the server (StoreUnavailable), a timeout, or a
    connection error the store let through unclassified (a plain StoreError wrapping a driver
    connection error, or the driver's exception itself). The last two are counted apart: the store
    promises StoreUnavailable for them."""
    if isinstance(exc, (StoreUnavailable, StoreTimeout)):
        return True
    if type(exc) is StoreError:
        return isinstance(exc.__cause__, _DRIVER_CONNECTION_ERRORS)
    return not isinstance(exc, StoreError) and isinstance(exc, _DRIVER_CONNECTION_ERRORS)


def unclassified(name: str) -> bool:
    """An error class name (as Stats.error records it) the store should have called StoreUnavailable."""
    return name.startswith(("StoreError(", "raw "))


class Agent:
    """One agent task: runs workflows until the deadline, retrying what faults interrupt."""

    def __init__(
        self,
        store: Store,
        index: int,
        agent_id: UUID,
        customer_id: UUID,
        run_id: str,
        ledger: Ledger,
        stats: Stats,
        rng: random.Random,
    ) -> None:
        self.store = store
        self.index = index
        self.agent_id = agent_id
        self.customer_id = customer_id
        self.run_id = run_id
        self.ledger = ledger
        self.stats = stats
        self.rng = rng

    async def run(self, deadline: float) -> None:
        n = 0
        try:
            while time.monotonic() < deadline:
                await self.workflow(n)
                n += 1
        except Violation as exc:
            self.stats.violations.append(str(exc))

    async def call(
        self,
        what: str,
        attempt: Callable[[], Awaitable[T]],
        applied: Callable[[], Awaitable[T | None]] | None = None,
    ) -> T:
        """attempt() until it returns. After a transient failure, `applied()` re-reads the row:
        a result means the failed attempt had committed (its reply was lost) and is used as is."""
        for tries in range(MAX_ATTEMPTS):
            self.stats.calls += 1
            try:
                return await attempt()
            except Exception as exc:
                self.stats.error(exc)
                if not transient(exc):
                    raise Violation(f"agent {self.index}: {what} failed with {type(exc).__name__}: {exc}") from exc
            await asyncio.sleep(min(0.5, 0.01 * 2 ** min(tries, 6)) * self.rng.uniform(0.5, 1.5))
            if applied is not None:
                done = await self.read(f"re-read after {what}", applied)
                if done is not None:
                    self.stats.recovered += 1
                    return done
            self.stats.retries += 1
            self.stats.retries_by_call[what] += 1
        raise Violation(f"agent {self.index}: {what} still failing after {MAX_ATTEMPTS} attempts")

    async def read(self, what: str, read: Callable[[], Awaitable[T]]) -> T:
        return await self.call(what, read)

    async def workflow(self, n: int) -> None:
        key = f"soak-{self.run_id}-{self.index}-{n}"
        request = WorkflowExecutionCreate(
            agent_id=self.agent_id,
            customer_id=self.customer_id,
            workflow_type=WorkflowType.RESOURCE_OPTIMIZATION,
            idempotency_key=key,
            input_data={"agent": self.index, "n": n},
        )
        # a retried create with the same key returns the row the lost attempt made
        execution = await self.call("create execution", lambda: self.store.workflow_executions.create(request))
        if execution.idempotency_key != key or execution.agent_id != self.agent_id:
            raise Violation(f"agent {self.index}: create with key {key} returned {execution.id} of another request")
        entry = self.ledger.executions.get(execution.id)
        if entry is None:
            entry = self.ledger.executions[execution.id] = ExecutionLedger(execution.id, self.agent_id, key)
        executions = self.store.workflow_executions

        async def started() -> Any:
            row = await executions.get(execution.id)
            return row if row.status == WorkflowStatus.RUNNING else None

        await self.call("start execution", lambda: executions.start(execution.id, actor="soak"), started)
        entry.writes += 1
        entry.status = WorkflowStatus.RUNNING

        steps = await self.create_steps(execution.id)
        entry.steps = [StepLedger(step.id) for step in steps]
        for step in entry.steps:
            await self.run_step(step)

        await self.finish(entry, steps)
        self.stats.workflows_completed += 1

    async def create_steps(self, execution_id: UUID) -> list[Any]:
        """The five steps in one transaction: after a failure there are five or none, never some."""

        async def attempt() -> list[Any]:
            async with self.store.transaction() as tx:
                return [
                    await tx.workflow_steps.create(
                        WorkflowStepCreate(
                            workflow_execution_id=execution_id,
                            step_name=f"step_{order}",
                            step_order=order,
                            max_retries=MAX_RETRIES,
                        )
                    )
                    for order in range(1, STEPS + 1)
                ]

        async def applied() -> list[Any] | None:
            steps = await self.store.workflow_steps.list(execution_id)
            if len(steps) not in (0, STEPS):
                raise Violation(f"execution {execution_id}: a failed step transaction left {len(steps)} steps")
            return steps or None

        return await self.call("create steps", attempt, applied)

    async def run_step(self, step: StepLedger) -> None:
        repo = self.store.workflow_steps

        def reached(status: StepStatus, retry_count: int) -> Callable[[], Awaitable[Any]]:
            async def check() -> Any:
                row = await repo.get(step.id)
                return row if (row.status, row.retry_count) == (status, retry_count) else None

            return check

        async def move(what: str, status: StepStatus, action: Callable[[], Awaitable[Any]], retry_count: int) -> None:
            await self.call(what, action, reached(status, retry_count))
            step.writes += 1
            step.status = status
            step.retry_count = retry_count

        await move("start step", StepStatus.RUNNING, lambda: repo.start(step.id), step.retry_count)
        while step.retry_count < MAX_RETRIES - 1 and self.rng.random() < FAIL_PROBABILITY:
            await move(
                "fail step", StepStatus.FAILED, lambda: repo.fail(step.id, {"error": "injected"}), step.retry_count
            )
            await move("retry step", StepStatus.RETRYING, lambda: repo.retry(step.id), step.retry_count + 1)
            await move("restart step", StepStatus.RUNNING, lambda: repo.start(step.id), step.retry_count)
        await move(
            "complete step", StepStatus.COMPLETED, lambda: repo.complete(step.id, {"ok": True}), step.retry_count
        )

    async def finish(self, entry: ExecutionLedger, steps: list[Any]) -> None:
        """Two artifacts and the completion in one transaction: all three, or none."""
        execution_id = entry.id
        wanted = [(steps[2].id, ArtifactType.REPORT), (steps[4].id, ArtifactType.LOG)]

        async def attempt() -> tuple[Any, list[Any]]:
            async with self.store.transaction() as tx:
                artifacts = [
                    await tx.workflow_artifacts.create(
                        WorkflowArtifactCreate(
                            workflow_execution_id=execution_id,
                            workflow_step_id=step_id,
                            artifact_type=kind,
                            artifact_name=f"{kind} of {execution_id}",
                            artifact_path=f"s3://soak/{execution_id}/{kind}",
                            artifact_size_bytes=1024,
                        )
                    )
                    for step_id, kind in wanted
                ]
                done = await tx.workflow_executions.complete(execution_id, {"steps": STEPS}, actor="soak")
                return done, artifacts

        async def applied() -> tuple[Any, list[Any]] | None:
            detail = await self.store.workflow_executions.get_detail(execution_id)
            if detail.status == WorkflowStatus.COMPLETED:
                return detail, detail.artifacts
            if detail.artifacts:
                raise Violation(f"execution {execution_id}: a failed finishing transaction left artifacts")
            return None

        _, artifacts = await self.call("finish execution", attempt, applied)
        entry.writes += 1
        entry.status = WorkflowStatus.COMPLETED
        entry.artifacts = {a.id: a.workflow_step_id for a in artifacts}


async def killer(
    dsn: str, application_name: str, every: float, stats: Stats, rng: random.Random, stop: asyncio.Event
) -> None:
    """Every `every` seconds (jittered), terminate a random half (at least one) of the pool's backends."""
    admin: asyncpg.Connection | None = None
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), every * rng.uniform(0.5, 1.5))
                break
            except TimeoutError:
                pass
            try:
                if admin is None or admin.is_closed():
                    admin = await asyncpg.connect(dsn)
                pids = [
                    r["pid"]
                    for r in await admin.fetch(
                        "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()",
                        application_name,
                    )
                ]
                stats.kill_rounds += 1
                for pid in rng.sample(pids, k=rng.randint(1, max(1, len(pids) // 2))) if pids else []:
                    if await admin.fetchval("SELECT pg_terminate_backend($1)", pid):
                        stats.faults += 1
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                print(f"killer: {type(exc).__name__}: {exc}", file=sys.stderr)
                admin = None
    finally:
        if admin is not None:
            await admin.close()


async def verify(dsn: str, customer_id: UUID, ledger: Ledger) -> tuple[int, list[str]]:
    """(writes lost, violations): the ledger against the rows, and the invariants, in SQL."""
    violations: list[str] = []
    conn = await asyncpg.connect(dsn)
    try:
        executions = {
            r["id"]: r
            for r in await conn.fetch(
                "SELECT e.id, e.agent_id, e.idempotency_key, e.status::text AS status, e.version,"
                "       (SELECT count(*) FROM workflow_transitions t"
                "         WHERE t.workflow_execution_id = e.id AND t.workflow_step_id IS NULL) AS transitions"
                "  FROM workflow_executions e WHERE e.customer_id = $1",
                customer_id,
            )
        }
        steps = {
            r["id"]: r
            for r in await conn.fetch(
                "SELECT s.id, s.workflow_execution_id, s.status::text AS status, s.retry_count, s.max_retries,"
                "       (SELECT count(*) FROM workflow_transitions t WHERE t.workflow_step_id = s.id) AS transitions"
                "  FROM workflow_steps s JOIN workflow_executions e ON e.id = s.workflow_execution_id"
                " WHERE e.customer_id = $1",
                customer_id,
            )
        }
        artifacts = {
            r["id"]: r
            for r in await conn.fetch(
                "SELECT a.id, a.workflow_execution_id, a.workflow_step_id"
                "  FROM workflow_artifacts a JOIN workflow_executions e ON e.id = a.workflow_execution_id"
                " WHERE e.customer_id = $1",
                customer_id,
            )
        }

        # every acknowledged write is present, and none was applied twice
        lost = 0
        for entry in ledger.executions.values():
            row = executions.get(entry.id)
            present = 0 if row is None else row["version"]
            lost += max(0, entry.writes - present)
            if row is not None and row["version"] > entry.writes:
                violations.append(f"execution {entry.id}: version {row['version']}, {entry.writes} writes acknowledged")
            if row is not None and row["transitions"] != entry.writes:
                violations.append(
                    f"execution {entry.id}: {row['transitions']} transitions, {entry.writes} writes acknowledged"
                )
            if row is not None and row["status"] != entry.status:
                violations.append(f"execution {entry.id}: status {row['status']}, acknowledged {entry.status}")
            for step in entry.steps:
                srow = steps.get(step.id)
                present = 0 if srow is None else srow["transitions"]
                lost += max(0, step.writes - present)
                if srow is not None and (srow["transitions"], srow["status"], srow["retry_count"]) != (
                    step.writes,
                    step.status,
                    step.retry_count,
                ):
                    violations.append(
                        f"step {step.id}: {srow['transitions']} transitions, {srow['status']}, retry_count "
                        f"{srow['retry_count']}; acknowledged {step.writes}, {step.status}, {step.retry_count}"
                    )
            for artifact_id, step_id in entry.artifacts.items():
                arow = artifacts.get(artifact_id)
                if arow is None:
                    lost += 1
                elif (arow["workflow_execution_id"], arow["workflow_step_id"]) != (entry.id, step_id):
                    violations.append(f"artifact {artifact_id}: not on execution {entry.id} step {step_id}")

        # rows nobody acknowledged: a retried create or transaction that was applied twice
        for extra in executions.keys() - ledger.executions.keys():
            violations.append(f"execution {extra} (key {executions[extra]['idempotency_key']}) is in no ledger")
        acknowledged_steps = {s.id for e in ledger.executions.values() for s in e.steps}
        for extra in steps.keys() - acknowledged_steps:
            violations.append(f"step {extra} of execution {steps[extra]['workflow_execution_id']} is in no ledger")
        acknowledged_artifacts = {a for e in ledger.executions.values() for a in e.artifacts}
        for extra in artifacts.keys() - acknowledged_artifacts:
            execution_id = artifacts[extra]["workflow_execution_id"]
            violations.append(f"artifact {extra} of execution {execution_id} is in no ledger")

        # the schema's invariants, on the rows themselves
        checks = {
            "completed executions without their 5 completed steps": (
                "SELECT count(*) FROM workflow_executions e WHERE e.customer_id = $1 AND e.status = 'completed'"
                "   AND (SELECT count(*) FROM workflow_steps s WHERE s.workflow_execution_id = e.id"
                "         AND s.status = 'completed') <> 5"
            ),
            "executions with a half-built step set (not 0 or 5 steps)": (
                "SELECT count(*) FROM workflow_executions e WHERE e.customer_id = $1"
                "   AND (SELECT count(*) FROM workflow_steps s WHERE s.workflow_execution_id = e.id) NOT IN (0, 5)"
            ),
            "completed executions without exactly 2 artifacts, or unfinished ones with any": (
                "SELECT count(*) FROM workflow_executions e WHERE e.customer_id = $1"
                "   AND (SELECT count(*) FROM workflow_artifacts a WHERE a.workflow_execution_id = e.id)"
                "       <> CASE WHEN e.status = 'completed' THEN 2 ELSE 0 END"
            ),
            "artifacts whose step belongs to another execution": (
                "SELECT count(*) FROM workflow_artifacts a JOIN workflow_steps s ON s.id = a.workflow_step_id"
                "  JOIN workflow_executions e ON e.id = a.workflow_execution_id"
                " WHERE e.customer_id = $1 AND s.workflow_execution_id <> a.workflow_execution_id"
            ),
            "steps with retry_count out of bounds": (
                "SELECT count(*) FROM workflow_steps s JOIN workflow_executions e ON e.id = s.workflow_execution_id"
                " WHERE e.customer_id = $1 AND NOT (s.retry_count BETWEEN 0 AND s.max_retries)"
            ),
            "executions of this run without an idempotency key, or two with one key": (
                "SELECT (SELECT count(*) FROM workflow_executions WHERE customer_id = $1 AND idempotency_key IS NULL)"
                "     + (SELECT count(*) - count(DISTINCT (agent_id, idempotency_key))"
                "          FROM workflow_executions WHERE customer_id = $1)"
            ),
        }
        for name, sql in checks.items():
            count = await conn.fetchval(sql, customer_id)
            if count:
                violations.append(f"{name}: {count}")
    finally:
        await conn.close()
    return lost, violations


@dataclass
class SoakRun:
    """What the load phase leaves for verification: the figures, the ledger, the run's customer."""

    stats: Stats
    ledger: Ledger
    customer_id: UUID
    elapsed: float
    agents: int
    pool_size: int


async def run_load(
    dsn: str,
    *,
    duration: float = 120.0,
    agents: int = 64,
    kill_every: float = 3.0,
    pool_size: int = 10,
    application_name: str = APPLICATION_NAME,
    seed: int | None = None,
    progress: bool = False,
) -> SoakRun:
    """The load: `agents` agent tasks over one Store (pool of `pool_size`) for `duration` seconds
    while backends of that pool are killed every ~`kill_every` seconds. The run's rows belong to a
    customer of its own, so a database that holds other data can be soaked too."""
    rng = random.Random(seed)
    run_id = uuid.uuid4().hex[:8]
    stats = Stats()
    ledger = Ledger()
    started = time.monotonic()
    async with Store.connect(
        dsn,
        min_size=min(2, pool_size),
        max_size=pool_size,
        acquire_timeout=30,
        command_timeout=60,
        server_settings={"application_name": application_name},
    ) as store:
        customer = await store.customers.create(
            CustomerCreate(name=f"Soak {run_id}", email=f"soak-{run_id}@soak.example")
        )
        kinds = list(AgentType)
        agent_rows = [
            await store.agents.create(
                AgentCreate(
                    type=kinds[i % len(kinds)],
                    name=f"soak-{run_id}-{i}",
                    version="1",
                    status=AgentStatus.ACTIVE,
                )
            )
            for i in range(agents)
        ]
        deadline = time.monotonic() + duration
        stop = asyncio.Event()
        kill_task = asyncio.create_task(
            killer(dsn, application_name, kill_every, stats, random.Random(rng.random()), stop)
        )
        reporter = asyncio.create_task(_progress(stats, deadline)) if progress else None
        workers = [
            Agent(store, i, row.id, customer.id, run_id, ledger, stats, random.Random(rng.random())).run(deadline)
            for i, row in enumerate(agent_rows)
        ]
        try:
            # agents start no workflow after the deadline but finish the one they are in
            await asyncio.gather(*workers)
        finally:
            stop.set()
            await kill_task
            if reporter is not None:
                reporter.cancel()
    return SoakRun(stats, ledger, customer.id, time.monotonic() - started, agents, pool_size)


def make_report(run: SoakRun, lost: int, violations: list[str]) -> SoakReport:
    stats = run.stats
    violations = stats.violations + violations
    return SoakReport(
        duration_seconds=round(run.elapsed, 1),
        agents=run.agents,
        pool_size=run.pool_size,
        workflows_completed=stats.workflows_completed,
        calls=stats.calls,
        faults_injected=stats.faults,
        kill_rounds=stats.kill_rounds,
        errors_surfaced=dict(stats.errors.most_common()),
        unclassified_errors=sum(n for name, n in stats.errors.items() if unclassified(name)),
        retries=stats.retries,
        retries_by_call=dict(stats.retries_by_call.most_common()),
        recovered_by_reread=stats.recovered,
        acknowledged_writes=run.ledger.acknowledged_writes,
        writes_lost=lost,
        invariant_violations=len(violations),
        violations=violations[:50],
    )


async def run_soak(dsn: str, **options: Any) -> SoakReport:
    """The soak on a migrated database: run_load(dsn, **options), then verify; returns the figures."""
    run = await run_load(dsn, **options)
    lost, violations = await verify(dsn, run.customer_id, run.ledger)
    return make_report(run, lost, violations)


async def _progress(stats: Stats, deadline: float) -> None:
    while True:
        await asyncio.sleep(10)
        left = max(0.0, deadline - time.monotonic())
        print(
            f"  ... {stats.workflows_completed} workflows, {stats.calls} calls, {stats.faults} backends killed, "
            f"{sum(stats.errors.values())} errors, {left:.0f} s left",
            flush=True,
        )


def print_report(report: SoakReport) -> None:
    print(f"\nsoak: {report.agents} agents, pool of {report.pool_size}, {report.duration_seconds} s")
    rows = [
        ("workflows completed", report.workflows_completed),
        ("calls made", report.calls),
        ("faults injected (backends killed)", f"{report.faults_injected} in {report.kill_rounds} rounds"),
        ("errors surfaced", sum(report.errors_surfaced.values())),
        *((f"  {name}", count) for name, count in report.errors_surfaced.items()),
        ("  not StoreUnavailable though they should be", report.unclassified_errors),
        ("retries", report.retries),
        *((f"  {name}", count) for name, count in report.retries_by_call.items()),
        ("failed calls found applied on re-read", report.recovered_by_reread),
        ("acknowledged writes", report.acknowledged_writes),
        ("writes lost", report.writes_lost),
        ("invariant violations", report.invariant_violations),
    ]
    for name, value in rows:
        print(f"  {name:<44} {value}")
    for violation in report.violations:
        print(f"  VIOLATION: {violation}")
    print("OK: nothing lost, every invariant holds" if report.ok else "FAILED")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", help=f"PostgreSQL DSN (default ${DSN_ENV}, else an embedded server)")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of load (default 120)")
    parser.add_argument("--agents", type=int, default=64, help="concurrent agent tasks (default 64)")
    parser.add_argument("--kill-every", type=float, default=3.0, help="seconds between kill rounds (default 3)")
    parser.add_argument("--pool-size", type=int, default=10, help="the store's max pool size (default 10)")
    parser.add_argument("--seed", type=int, help="random seed, to repeat a run's choices")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="also fail when a connection error surfaced as anything but StoreUnavailable",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import os

    args = parse_args(argv)
    dsn = args.dsn or os.environ.get(DSN_ENV)

    def soak(dsn: str) -> SoakReport:
        migrations.apply(dsn)
        print(
            f"soaking {redact(dsn)} for {args.duration:g} s with {args.agents} agents, "
            f"killing backends every ~{args.kill_every:g} s",
            flush=True,
        )
        return asyncio.run(
            run_soak(
                dsn,
                duration=args.duration,
                agents=args.agents,
                kill_every=args.kill_every,
                pool_size=args.pool_size,
                seed=args.seed,
                progress=True,
            )
        )

    if dsn:
        report = soak(dsn)
    else:
        if not embedded.available():
            print(embedded.INSTALL_HINT, file=sys.stderr)
            return 2
        print("starting embedded PostgreSQL ...", flush=True)
        with embedded.embedded_server() as embedded_dsn:
            report = soak(embedded_dsn)
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report.to_json(), indent=2) + "\n")
    if args.strict and report.unclassified_errors:
        print(f"FAILED (--strict): {report.unclassified_errors} connection errors were not StoreUnavailable")
        return 1
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
