"""`distribute`: every table of the schema distributed or a reference table, its rows and keys kept."""

from __future__ import annotations

import psycopg
import pytest

from optiinfra_store import distribution, migrations, seed
from optiinfra_store.commands.cli import main
from optiinfra_store.errors import MigrationError, SchemaNotMigrated

OWNED_BY_CUSTOMER = {
    "events", "recommendations", "approvals", "optimizations", "workflow_executions", "workflow_steps",
    "workflow_artifacts", "workflow_transitions", "workflow_rollups", "workflow_step_rollups",
    "workflow_error_rollups", "workflow_rollup_pending",
}  # fmt: skip


def placements(dsn: str) -> dict[str, tuple[str, str | None, int]]:
    """{table: (h for distributed / n for reference, distribution column, co-location group)}."""
    with psycopg.connect(dsn) as c:
        rows = c.execute(
            "SELECT logicalrelid::regclass::text, partmethod::text, column_to_column_name(logicalrelid, partkey), "
            "colocationid FROM pg_dist_partition p JOIN pg_class r ON r.oid = p.logicalrelid WHERE NOT r.relispartition"
        ).fetchall()
    return {table: (method, column or None, group) for table, method, column, group in rows}


def contents(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as c:
        tables = [t for (t,) in c.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        return {
            t: c.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]  # noqa: S608 - the catalog's names
            for t in tables
            if t not in migrations.YOYO_TABLES
        }


def foreign_keys(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as c:
        return {
            name
            for (name,) in c.execute(
                "SELECT conname FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace "
                "AND conrelid IN (SELECT oid FROM pg_class WHERE NOT relispartition)"
            )
        }


def test_distribute__every_table_placed_rows_and_keys_kept(scratch_dsn):
    migrations.apply(scratch_dsn)
    seed.load(scratch_dsn)
    rows, keys = contents(scratch_dsn), foreign_keys(scratch_dsn)

    done = distribution.distribute(scratch_dsn)

    placed = placements(scratch_dsn)
    tables = {t for t in rows if not t.startswith("agent_metrics_")}  # partitions follow their table
    assert set(placed) == tables
    by_customer = {t for t, (method, column, _) in placed.items() if method == "h" and column == "customer_id"}
    assert by_customer == OWNED_BY_CUSTOMER
    assert len({placed[t][2] for t in by_customer}) == 1  # co-located: a customer's rows on one node
    assert placed["agent_metrics"][:2] == ("h", "agent_id")
    assert {t for t, (method, _, _) in placed.items() if method == "n"} == tables - by_customer - {"agent_metrics"}
    # no row lost or doubled (a copied step writes no second transition)
    assert contents(scratch_dsn) == rows
    assert foreign_keys(scratch_dsn) == keys - {"agent_states_current_workflow_id_fkey"}
    assert "agent_states: agent_states_current_workflow_id_fkey not kept" in "\n".join(done)
    with psycopg.connect(scratch_dsn) as c:  # every trigger of the coordinator's tables on again
        assert (
            c.execute("SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgenabled <> 'O'").fetchone()[0] == 0
        )

    assert distribution.distribute(scratch_dsn) == []


def test_distribute__with_migrations_pending_refused_and_nothing_changed(scratch_dsn):
    migrations.apply(scratch_dsn, to="0021_idempotency_per_customer")
    with pytest.raises(SchemaNotMigrated, match="0022_customer_id_everywhere, .* pending"):
        distribution.distribute(scratch_dsn)
    assert placements(scratch_dsn) == {}


def test_cli__distribute_says_what_it_did_then_that_it_is_done(scratch_dsn, capsys):
    migrations.apply(scratch_dsn)
    assert main(["distribute", "--dsn", scratch_dsn]) == 0
    assert "workflow_steps: by customer_id" in capsys.readouterr().out
    assert main(["distribute", "--dsn", scratch_dsn]) == 0
    assert capsys.readouterr().out.strip() == "the schema is distributed already"


def test_transition_trigger__on_a_shard_records_the_steps_execution(scratch_dsn):
    """On a shard the trigger's table name is the shard's (workflow_steps_102008): the trail's
    trigger tells a step from an execution by its argument, so a step's transition names its
    execution and the step."""
    migrations.apply(scratch_dsn)
    seed.load(scratch_dsn)
    distribution.distribute(scratch_dsn)
    with psycopg.connect(scratch_dsn) as c:
        execution, customer = c.execute(
            "SELECT id, customer_id FROM workflow_executions ORDER BY id LIMIT 1"
        ).fetchone()
        step = c.execute(
            "INSERT INTO workflow_steps (workflow_execution_id, customer_id, step_name, step_order) "
            "VALUES (%s, %s, 'on a shard', 99) RETURNING id",
            (execution, customer),
        ).fetchone()[0]
        trail = c.execute(
            "SELECT workflow_execution_id, workflow_step_id, customer_id, to_status FROM workflow_transitions "
            "WHERE workflow_step_id = %s AND customer_id = %s",
            (step, customer),
        ).fetchall()
        c.rollback()
    assert trail == [(execution, step, customer, "pending")]


def test_distribute__again_after_a_later_table_places_it_and_keeps_trigger_modes(scratch_dsn):
    migrations.apply(scratch_dsn)
    with psycopg.connect(scratch_dsn, autocommit=True) as c:  # a trigger an operator set to fire always
        c.execute("ALTER TABLE events ENABLE ALWAYS TRIGGER events_set_updated_at")
    distribution.distribute(scratch_dsn)
    with psycopg.connect(scratch_dsn, autocommit=True) as c:
        assert c.execute("SELECT tgenabled FROM pg_trigger WHERE tgname = 'events_set_updated_at'").fetchone() == ("A",)
        # a later table of customers' rows; pointing at a reference table, Citus keeps it on the
        # coordinator by itself until it is distributed
        c.execute(
            "CREATE TABLE later_notes (id uuid PRIMARY KEY DEFAULT optiinfra_uuid7(), "
            "customer_id uuid NOT NULL REFERENCES customers (id) ON DELETE CASCADE)"
        )
    keys = foreign_keys(scratch_dsn)
    assert distribution.distribute(scratch_dsn) == [
        "later_notes: later_notes_pkey now over (id, customer_id)",
        "later_notes: by customer_id",
    ]
    assert placements(scratch_dsn)["later_notes"][:2] == ("h", "customer_id")
    assert foreign_keys(scratch_dsn) == keys


def test_distribute__refused_by_citus_changes_nothing(scratch_dsn):
    migrations.apply(scratch_dsn)
    with psycopg.connect(scratch_dsn, autocommit=True) as c:  # a customer column Citus cannot co-locate
        c.execute("CREATE TABLE odd_notes (id text PRIMARY KEY, customer_id text NOT NULL)")
    with pytest.raises(MigrationError, match="distributing failed, nothing was changed"):
        distribution.distribute(scratch_dsn)
    assert placements(scratch_dsn) == {}


def test_distribute__again_where_an_earlier_release_distributed_puts_the_rollup_marks_right(scratch_dsn):
    """A cluster distributed before 0025: the rollups' statement triggers on the distributed tables
    (they cannot run on a shard) and the marks a reference table. `distribute` again swaps the one
    and places the other by customer."""
    migrations.apply(scratch_dsn)
    seed.load(scratch_dsn)
    distribution.distribute(scratch_dsn)
    with psycopg.connect(scratch_dsn, autocommit=True) as c:  # as the earlier release left it
        c.execute("SET citus.enable_unsafe_triggers = on")
        c.execute("DROP TRIGGER workflow_executions_rollup_mark ON workflow_executions")
        c.execute(
            "CREATE TRIGGER workflow_executions_rollup_insert AFTER INSERT ON workflow_executions"
            " FOR EACH STATEMENT EXECUTE FUNCTION optiinfra_rollup_touch_executions()"
        )
        c.execute("SELECT undistribute_table('workflow_rollup_pending')")
        c.execute("SELECT create_reference_table('workflow_rollup_pending')")

    done = distribution.distribute(scratch_dsn)

    assert done == [
        "workflow_rollup_pending: no longer a reference table",
        "workflow_executions: rollup marks by row",
        "workflow_rollup_pending: by customer_id",
    ]
    assert placements(scratch_dsn)["workflow_rollup_pending"][:2] == ("h", "customer_id")
    with psycopg.connect(scratch_dsn) as c:
        triggers = {
            name
            for (name,) in c.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = 'workflow_executions'::regclass AND tgname LIKE '%rollup%'"
            )
        }
    assert triggers == {"workflow_executions_rollup_mark", "workflow_executions_rollup_truncate"}
    assert distribution.distribute(scratch_dsn) == []
