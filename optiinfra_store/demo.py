"""What `optiinfra-store demo` prints: migrate, seed, then a tour of the data."""

from __future__ import annotations

import asyncpg

from optiinfra_store import migrations, seed

TABLES = (
    "customers", "agents", "events", "recommendations", "approvals", "optimizations",
    "agent_configs", "agent_states", "agent_capabilities", "agent_metrics",
    "workflow_executions", "workflow_steps", "workflow_artifacts",
)


async def run_demo(dsn: str) -> None:
    applied = migrations.apply(dsn)
    print(f"migrations applied: {', '.join(applied) or 'none pending'}")
    seed.load(dsn)
    conn = await asyncpg.connect(dsn)
    try:
        print("\nrows per table")
        for table in TABLES:
            count = await conn.fetchval(f"SELECT count(*) FROM {table}")  # names from TABLES only
            print(f"  {table:<22} {count:>5}")
        print("\nworkflows")
        for row in await conn.fetch(
            "SELECT id, workflow_type, status FROM workflow_executions ORDER BY started_at"
        ):
            print(f"  {row['workflow_type']:<20} {row['status']:<10} {row['id']}")
    finally:
        await conn.close()
