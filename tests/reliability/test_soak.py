"""scripts/soak.py in a short mode, against the session's database: faults are injected, and yet
no acknowledged write is lost and every invariant holds. And the soak's checks can fail."""

from __future__ import annotations

import importlib.util
import sys
import uuid
from pathlib import Path

import asyncpg

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "soak.py"


def load_soak():
    if "optiinfra_soak" in sys.modules:
        return sys.modules["optiinfra_soak"]
    spec = importlib.util.spec_from_file_location("optiinfra_soak", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["optiinfra_soak"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def application_name() -> str:
    # its own name, so the killer only ever hits this run's pool
    return f"optiinfra-soak-test-{uuid.uuid4().hex[:8]}"


async def test_soak__short_run_loses_nothing_under_killed_connections(clean_dsn):
    soak = load_soak()
    report = await soak.run_soak(
        clean_dsn,
        duration=10,
        agents=16,
        kill_every=1,
        pool_size=6,
        application_name=application_name(),
        seed=7,
    )
    soak.print_report(report)
    assert report.faults_injected > 0
    assert sum(report.errors_surfaced.values()) > 0  # the faults reached the agents
    assert report.workflows_completed > 0 and report.acknowledged_writes > 0
    assert report.writes_lost == 0
    assert report.invariant_violations == 0, report.violations
    assert report.ok


async def test_soak__verify_catches_a_lost_write_and_a_phantom_row(clean_dsn):
    soak = load_soak()
    run = await soak.run_load(
        clean_dsn,
        duration=1,
        agents=3,
        kill_every=60,
        application_name=application_name(),
        seed=1,
    )
    assert await soak.verify(clean_dsn, run.customer_id, run.ledger) == (0, [])

    conn = await asyncpg.connect(clean_dsn)
    try:
        # an acknowledged artifact vanishes; a second execution appears under an acknowledged key's agent
        await conn.execute(
            "DELETE FROM workflow_artifacts WHERE id = (SELECT a.id FROM workflow_artifacts a"
            " JOIN workflow_executions e ON e.id = a.workflow_execution_id WHERE e.customer_id = $1 LIMIT 1)",
            run.customer_id,
        )
        await conn.execute(
            "INSERT INTO workflow_executions (agent_id, customer_id, workflow_type)"
            " SELECT agent_id, customer_id, workflow_type FROM workflow_executions WHERE customer_id = $1 LIMIT 1",
            run.customer_id,
        )
    finally:
        await conn.close()
    lost, violations = await soak.verify(clean_dsn, run.customer_id, run.ledger)
    assert lost == 1
    assert any("is in no ledger" in v for v in violations), violations
    assert any("without an idempotency key" in v for v in violations), violations
    assert any("without exactly 2 artifacts" in v for v in violations), violations
    assert not soak.make_report(run, lost, violations).ok
