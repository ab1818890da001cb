"""Periodic upkeep, all of it in one idempotent call (`Store.maintain`, `optiinfra-store maintain`):
agent_metrics partitions created ahead, points the default partition caught filed into partitions
of their own, and the workflow analytics rollups caught up (the closed hours since the last run,
and the hours changed since they were rolled up), a week of hours per short transaction. Safe to
run from several processes at once: the database serializes it."""

from __future__ import annotations

from optiinfra_store import migrations
from optiinfra_store.connection.executor import Executor
from optiinfra_store.errors import SchemaNotMigrated
from optiinfra_store.queries import load
from optiinfra_store.records import MaintenanceReport
from optiinfra_store.repositories.base import check_int

DEFAULT_METRIC_DAYS_AHEAD = 7
"""How many days ahead of today maintain() keeps agent_metrics partitions."""

ROLL_UP_HOURS = 24 * 7
"""Hours rolled up per transaction."""

MAX_ROLL_UPS = 10_000
"""Transactions one maintain() spends on rollups at most (ten thousand weeks of history; more
than that, or writers changing old hours faster than they are rolled up, waits for the next run)."""

_q = load("maintenance")


async def maintain(
    executor: Executor, *, metric_days_ahead: int = DEFAULT_METRIC_DAYS_AHEAD, by_customer: bool = False
) -> MaintenanceReport:
    """Run every upkeep task once; see the module's docstring. `by_customer`: the schema is
    distributed (a Citus cluster), where each metric partition is made in a transaction of its
    own: every write of points waits while one is being made (Citus locks each partition for it,
    and attaching one locks the default partition), so a write waits for one partition at most."""
    check_int(metric_days_ahead, "metric_days_ahead", 0, 366)
    if by_customer:
        created = 0
        for row in await executor.fetch(_q.metric_days_wanted, metric_days_ahead):
            created += await executor.fetchval(_q.create_metric_partition, row["day"])
    else:
        created = await executor.fetchval(_q.metric_partitions, metric_days_ahead)
    hours = 0
    for _ in range(MAX_ROLL_UPS):
        rolled: int = await executor.fetchval(_q.roll_up, ROLL_UP_HOURS)
        if rolled == 0:
            break
        hours += rolled
    return MaintenanceReport(metric_partitions_created=created, rollup_hours=hours)


async def pending_migrations(executor: Executor) -> list[str]:
    """The package's migrations the database has not applied, in order (all of them on an empty
    database)."""
    try:
        applied = {row["migration_id"] for row in await executor.fetch(_q.applied_migrations)}
    except SchemaNotMigrated:  # yoyo has never run here
        applied = set()
    return [id_ for id_ in migrations.ids() if id_ not in applied]


async def distributed_by_customer(executor: Executor) -> bool:
    """Whether the schema is distributed by customer (a Citus cluster after `distribute`)."""
    if not await executor.fetchval(_q.citus_installed):
        return False
    return bool(await executor.fetchval(_q.distributed_by_customer))
