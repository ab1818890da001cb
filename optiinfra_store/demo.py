"""What `optiinfra-store demo` prints: migrate, seed, then a tour of the data through the repositories."""

from __future__ import annotations

from datetime import timedelta

from optiinfra_store import migrations, seed
from optiinfra_store.store import Repositories, Store

STALE_AFTER = timedelta(minutes=2)


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    minutes, seconds = divmod(int(value), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


async def run_demo(dsn: str) -> None:
    applied = migrations.apply(dsn)
    print(f"migrations applied: {', '.join(applied) or 'none pending'}")
    print(f"seed files loaded: {', '.join(seed.load(dsn))}")
    async with Store.connect(dsn, min_size=1, max_size=2) as store:
        await _print_counts(store)
        await _print_workflows(store)
        await _print_agents(store)


async def _print_counts(store: Repositories) -> None:
    print("\nrows per table")
    for name, repo in vars(store).items():
        if hasattr(repo, "count"):
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
            f"{detail.status}, {_seconds(detail.duration_seconds)}"
        )
        for step in detail.steps:
            retries = f", {step.retry_count} retries" if step.retry_count else ""
            print(f"    {step.step_order}. {step.step_name:<26} {step.status:<10} "
                  f"{_seconds(step.duration_seconds)}{retries}")
        for artifact in detail.artifacts:
            size = f"{artifact.artifact_size_bytes:,} bytes" if artifact.artifact_size_bytes is not None else "-"
            print(f"    [{artifact.artifact_type}] {artifact.artifact_name} ({size})")
        if detail.error_details:
            print(f"    error: {detail.error_details}")


async def _print_agents(store: Repositories) -> None:
    stale = await store.agents.list_stale(STALE_AFTER)
    print(f"\nagents silent for over {_seconds(STALE_AFTER.total_seconds())}: "
          + (", ".join(f"{a.name} (last heartbeat {a.last_heartbeat:%H:%M:%S} UTC)" for a in stale) or "none"))
    print("\nmetrics per agent (count, avg, min, max)")
    for agent in await store.agents.list():
        print(f"  {agent.name}")
        names = sorted({m.metric_name for m in await store.agent_metrics.list(agent_id=agent.id)})
        for name in names:
            s = await store.agent_metrics.aggregate(agent.id, name)
            print(f"    {name:<34} {s.count:>3}  {s.avg:>10.2f} {s.min:>10.2f} {s.max:>10.2f}")
