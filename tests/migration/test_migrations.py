"""The migration chain: apply, roll back, apply again; failures leave the database as it was."""

from __future__ import annotations

import psycopg
import pytest

from optiinfra_store import migrations
from optiinfra_store.errors import MigrationError, StoreUnavailable
from tests.migration.catalog import snapshot

# every migration in the package's folder, by id: a file added there is applied and rolled back here
IDS = migrations.ids()


def test_apply__applies_all_in_order_then_is_a_no_op(scratch_dsn):
    assert len(IDS) >= 12 and IDS == sorted(IDS) and IDS[0] == "0001_core"
    assert migrations.apply(scratch_dsn) == IDS
    first = snapshot(scratch_dsn)
    assert migrations.apply(scratch_dsn) == []
    assert snapshot(scratch_dsn) == first


def test_rollback_all_then_apply__identical_schema(scratch_dsn):
    migrations.apply(scratch_dsn)
    first = snapshot(scratch_dsn)
    assert migrations.rollback(scratch_dsn, count=None) == list(reversed(IDS))
    emptied = snapshot(scratch_dsn)
    assert emptied["tables"] == [] and emptied["enums"] == [] and emptied["functions"] == []
    migrations.apply(scratch_dsn)
    assert snapshot(scratch_dsn) == first


def test_rollback__one_at_a_time(scratch_dsn):
    migrations.apply(scratch_dsn)
    kept = IDS.index("0003_workflow_history")
    assert migrations.rollback(scratch_dsn, count=len(IDS) - kept) == list(reversed(IDS[kept:]))
    states = migrations.status(scratch_dsn)
    assert [(s.id, s.applied) for s in states] == [(i, n < kept) for n, i in enumerate(IDS)]
    assert states[0].applied_at is not None and states[0].applied_at.tzinfo is not None
    tables = {row[0] for row in snapshot(scratch_dsn)["tables"]}
    assert "workflow_executions" not in tables and "agent_states" in tables
    assert migrations.apply(scratch_dsn) == IDS[kept:]


def test_status__all_pending_on_empty_database(scratch_dsn):
    assert [(s.id, s.applied, s.applied_at) for s in migrations.status(scratch_dsn)] == [(i, False, None) for i in IDS]


def test_apply__failed_migration_leaves_database_unchanged(scratch_dsn):
    with psycopg.connect(scratch_dsn, autocommit=True) as conn:
        conn.execute("CREATE TYPE workflow_type AS ENUM ('squatter')")  # 0003 will collide
    with pytest.raises(MigrationError, match="0003_workflow_history"):
        migrations.apply(scratch_dsn)
    tables = {row[0] for row in snapshot(scratch_dsn)["tables"]}
    assert "agent_states" in tables  # 0001 and 0002 committed
    assert "workflow_executions" not in tables
    with psycopg.connect(scratch_dsn) as conn:
        assert (
            conn.execute(
                "SELECT count(*) FROM information_schema.columns WHERE column_name = 'current_workflow_id'"
            ).fetchone()[0]
            == 0
        )
    assert [s.applied for s in migrations.status(scratch_dsn)] == [n < 2 for n in range(len(IDS))]


def test_apply__unreachable_server_is_store_unavailable():
    with pytest.raises(StoreUnavailable, match="cannot connect"):
        migrations.apply("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2")


def test_rollback__count_must_be_positive(scratch_dsn):
    with pytest.raises(Exception, match="at least 1"):
        migrations.rollback(scratch_dsn, count=0)


def test_apply__two_processes_at_once_one_applies_the_other_waits(scratch_dsn):
    import subprocess
    import sys

    command = [sys.executable, "-m", "optiinfra_store.commands.cli", "migrate", "--dsn", scratch_dsn]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(run.wait(timeout=60), run.stdout.read(), run.stderr.read()) for run in runs]
    assert [code for code, _, _ in results] == [0, 0], results
    outputs = sorted(out for _, out, _ in results)
    assert outputs == [f"applied {', '.join(IDS)}\n", "schema is up to date\n"]
    assert all(state.applied for state in migrations.status(scratch_dsn))
