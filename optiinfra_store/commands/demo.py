"""What `optiinfra-store demo` prints: migrate, seed, then a tour of the data through the repositories."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from optiinfra_store import migrations, seed
from optiinfra_store.commands.report import print_statistics, seconds
from optiinfra_store.enums import WorkflowStatus
from optiinfra_store.repositories import Repositories, repository_types
from optiinfra_store.repositories.base import Repository
from optiinfra_store.store import Store

STALE_AFTER = timedelta(minutes=2)


async def run_demo(dsn: str) -> None:
    applied = migrations.apply(dsn)
    print(f"migrations applied: {', '.join(applied) or 'none pending'}")
    print(f"seed files loaded: {', '.join(seed.load(dsn))}")
    async with Store.connect(dsn, min_size=1, max_size=2) as store:
        await _print_counts(store)
        await _print_workflows(store)
        await _print_agents(store)
        await print_statistics(store)
        await _print_failed_history(store)


async def _print_counts(store: Repositories) -> None:
    print("\nrows per table")
    for name in repository_types():
        repo: Repository[Any] = getattr(store, name)
        print(f"  {name:<22} {await repo.count():>6}")


async def _print_workflows(store: Repositories) -> None:
    customers = {c.id: c.name for c in await store.customers.list()}
    agents = {a.id: a.name for a in await store.agents.list()}
    page = await store.workflow_executions.list(limit=20)
    print(f"\nworkflows ({len(page.items)} most recent)")
    by_start = sorted(page.items, key=lambda e: (e.started_at is None, e.started_at))
    for execution in by_start:
        detail = await store.workflow_executions.get_detail(execution.id)
        print(
            f"\n  {detail.workflow_type} for {customers[detail.customer_id]} by {agents[detail.agent_id]}: "
            f"{detail.status}, {seconds(detail.duration_seconds)}"
        )
        for step in detail.steps:
            retries = f", {step.retry_count} retries" if step.retry_count else ""
            print(
                f"    {step.step_order}. {step.step_name:<26} {step.status:<10} "
                f"{seconds(step.duration_seconds)}{retries}"
            )
        for artifact in detail.artifacts:
            size = f"{artifact.artifact_size_bytes:,} bytes" if artifact.artifact_size_bytes is not None else "-"
            print(f"    [{artifact.artifact_type}] {artifact.artifact_name} ({size})")
        if detail.error_details:
            print(f"    error: {detail.error_details}")


async def _print_agents(store: Repositories) -> None:
    stale = await store.agents.list_stale(STALE_AFTER)
    print(
        f"\nagents silent for over {seconds(STALE_AFTER.total_seconds())}: "
        + (", ".join(f"{a.name} (last heartbeat {a.last_heartbeat:%H:%M:%S} UTC)" for a in stale) or "none")
    )
    print("\nmetrics per agent (count, avg, min, max)")
    for agent in await store.agents.list():
        print(f"  {agent.name}")
        names = sorted({m.metric_name for m in await store.agent_metrics.list(agent_id=agent.id)})
        for name in names:
            s = await store.agent_metrics.aggregate(agent.id, name)
            print(f"    {name:<34} {s.count:>3}  {s.avg:>10.2f} {s.min:>10.2f} {s.max:>10.2f}")


async def _print_failed_history(store: Repositories) -> None:
    failed = (await store.workflow_executions.list(status=WorkflowStatus.FAILED, limit=1)).items
    if not failed:
        return
    execution = failed[0]
    steps = {s.id: s.step_name for s in await store.workflow_steps.list(execution_id=execution.id)}
    print(f"\ntransition history of the failed {execution.workflow_type} ({execution.id})")
    for t in await store.workflow_executions.history(execution.id):
        subject = f"step {steps.get(t.workflow_step_id, t.workflow_step_id)}" if t.workflow_step_id else "execution"
        change = f"{t.from_status} -> {t.to_status}" if t.from_status else f"created {t.to_status}"
        who = f" by {t.actor}" if t.actor else ""
        print(f"  #{t.id:<4} {t.at:%H:%M:%S} {subject:<32} {change}{who}")
