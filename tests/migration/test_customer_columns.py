"""0022: every customer-owned row carries its customer, filled beside writers and kept equal to its
parent's by the database."""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest

from optiinfra_store import migrations, seed

BEFORE = "0021_idempotency_per_customer"
AFTER = "0022_customer_id_everywhere"  # later migrations add columns after customer_id
CHILDREN = {  # table: (its parent, the column naming the parent)
    "approvals": ("recommendations", "recommendation_id"),
    "optimizations": ("recommendations", "recommendation_id"),
    "workflow_steps": ("workflow_executions", "workflow_execution_id"),
    "workflow_artifacts": ("workflow_executions", "workflow_execution_id"),
    "workflow_transitions": ("workflow_executions", "workflow_execution_id"),
}


def rows(dsn: str, table: str) -> list[tuple]:
    with psycopg.connect(dsn) as c:
        return c.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()  # noqa: S608 - the test's own names


def test_apply__fills_every_row_from_its_parent_and_changes_nothing_else(scratch_dsn):
    migrations.apply(scratch_dsn, to=BEFORE)
    seed.load(scratch_dsn)
    before = {table: rows(scratch_dsn, table) for table in CHILDREN}
    with psycopg.connect(scratch_dsn) as c:
        pending = c.execute("SELECT count(*) FROM workflow_rollup_pending").fetchone()[0]
    assert all(before.values())

    migrations.apply(scratch_dsn, to=AFTER)

    with psycopg.connect(scratch_dsn) as c:
        for table, (parent, column) in CHILDREN.items():
            mismatched = c.execute(
                f"SELECT count(*) FROM {table} t LEFT JOIN {parent} p ON p.id = t.{column} "  # noqa: S608
                "WHERE t.customer_id IS DISTINCT FROM p.customer_id"
            ).fetchone()[0]
            assert mismatched == 0, table
            assert c.execute(
                "SELECT attnotnull FROM pg_attribute WHERE attrelid = %s::regclass AND attname = 'customer_id'",
                (table,),
            ).fetchone()[0]
            # the rest of every row as it was: updated_at included (its trigger was off for the fill)
            assert [row[:-1] for row in rows(scratch_dsn, table)] == before[table], table
        # filling marks no rolled-up hour for rebuilding, and leaves no trigger switched off
        assert c.execute("SELECT count(*) FROM workflow_rollup_pending").fetchone()[0] == pending
        assert (
            c.execute("SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgenabled <> 'O'").fetchone()[0] == 0
        )


def test_apply__beside_writers_of_the_previous_release(scratch_dsn):
    """Code of the previous release keeps writing while the migration runs (executions, steps,
    their transitions, and a purge deleting old executions with their steps and trail, the rows
    the fill reaches first): nothing it does fails or deadlocks, and every row has its customer."""
    migrations.apply(scratch_dsn, to=BEFORE)
    seed.load(scratch_dsn)
    with psycopg.connect(scratch_dsn) as c:
        customer, agent = c.execute("SELECT customer_id, agent_id FROM workflow_executions LIMIT 1").fetchone()
        # enough rows for several batches of every child, and old executions for the purge to take
        c.execute(
            "WITH x AS (INSERT INTO workflow_executions (agent_id, customer_id, workflow_type) "
            "SELECT %s, %s, 'resource_optimization' FROM generate_series(1, 600) RETURNING id) "
            "INSERT INTO workflow_steps (workflow_execution_id, step_name, step_order) "
            "SELECT x.id, 's', n FROM x, generate_series(1, 4) n",
            (agent, customer),
        )
    stop, errors, written = threading.Event(), [], [0, 0]

    def write(worker: int) -> None:
        with psycopg.connect(scratch_dsn, autocommit=True) as c:
            while not stop.is_set():
                try:
                    with c.transaction():
                        execution = c.execute(
                            "INSERT INTO workflow_executions (agent_id, customer_id, workflow_type) "
                            "VALUES (%s, %s, 'cost_analysis') RETURNING id",
                            (agent, customer),
                        ).fetchone()[0]
                        step = c.execute(
                            "INSERT INTO workflow_steps (workflow_execution_id, step_name, step_order) "
                            "VALUES (%s, 's', 1) RETURNING id",
                            (execution,),
                        ).fetchone()[0]
                        c.execute("UPDATE workflow_steps SET status = 'running' WHERE id = %s", (step,))
                    written[worker] += 1
                except psycopg.Error as exc:  # pragma: no cover - the failure this test looks for
                    errors.append(exc)

    def purge() -> None:  # deletes old executions, their steps and trail by cascade, as purge does
        with psycopg.connect(scratch_dsn, autocommit=True) as c:
            while not stop.is_set():
                try:
                    with c.transaction():
                        c.execute(
                            "DELETE FROM workflow_executions WHERE id IN (SELECT id FROM workflow_executions "
                            "WHERE workflow_type = 'resource_optimization' ORDER BY id LIMIT 5 FOR UPDATE SKIP LOCKED)"
                        )
                except psycopg.Error as exc:  # pragma: no cover - the failure this test looks for
                    errors.append(exc)

    writers = [threading.Thread(target=write, args=(n,)) for n in range(2)] + [threading.Thread(target=purge)]
    for writer in writers:
        writer.start()
    try:
        migrations.apply(scratch_dsn)
    finally:
        stop.set()
        for writer in writers:
            writer.join()
    assert errors == [] and all(written)
    with psycopg.connect(scratch_dsn) as c:
        for table in CHILDREN:
            assert c.execute(f"SELECT count(*) FROM {table} WHERE customer_id IS NULL").fetchone()[0] == 0  # noqa: S608


@pytest.fixture
def conn(scratch_dsn):
    migrations.apply(scratch_dsn)
    seed.load(scratch_dsn)
    with psycopg.connect(scratch_dsn) as connection:
        yield connection
        connection.rollback()


def test_insert__without_a_customer_takes_the_parents(conn):
    execution, customer = conn.execute("SELECT id, customer_id FROM workflow_executions LIMIT 1").fetchone()
    step = conn.execute(
        "INSERT INTO workflow_steps (workflow_execution_id, step_name, step_order) VALUES (%s, 's', 999) "
        "RETURNING customer_id",
        (execution,),
    ).fetchone()
    assert step == (customer,)
    trail = conn.execute(
        "SELECT DISTINCT customer_id FROM workflow_transitions WHERE workflow_execution_id = %s", (execution,)
    ).fetchall()
    assert trail == [(customer,)]


@pytest.mark.parametrize(
    "insert, constraint",
    [
        (
            "INSERT INTO workflow_steps (workflow_execution_id, customer_id, step_name, step_order) "
            "SELECT id, %s, 's', 999 FROM workflow_executions LIMIT 1",
            "workflow_steps_workflow_execution_id_fkey",
        ),
        (
            "INSERT INTO approvals (recommendation_id, customer_id) SELECT id, %s FROM recommendations LIMIT 1",
            "approvals_recommendation_id_fkey",
        ),
    ],
)
def test_insert__naming_another_customer_than_the_parents_is_refused(conn, insert, constraint):
    other = conn.execute(
        "INSERT INTO customers (name, email) VALUES ('Other', 'other@x.example') RETURNING id"
    ).fetchone()[0]
    with pytest.raises(psycopg.errors.ForeignKeyViolation) as caught:
        conn.execute(insert, (other,))
    assert caught.value.diag.constraint_name == constraint


@pytest.mark.parametrize("table, column", [(t, c) for t, (_, c) in CHILDREN.items() if t != "workflow_transitions"])
def test_insert__with_no_parent_names_the_key_it_breaks(conn, table, column):
    with pytest.raises(psycopg.errors.ForeignKeyViolation) as caught:
        conn.execute(f"INSERT INTO {table} ({column}) VALUES (%s)", (uuid.uuid4(),))  # noqa: S608
    assert caught.value.diag.constraint_name == f"{table}_{column}_fkey"


def test_rollback__keeps_every_row(scratch_dsn):
    migrations.apply(scratch_dsn, to=AFTER)
    seed.load(scratch_dsn)
    before = {table: [row[:-1] for row in rows(scratch_dsn, table)] for table in CHILDREN}
    assert migrations.rollback(scratch_dsn, count=1) == ["0022_customer_id_everywhere"]
    assert {table: rows(scratch_dsn, table) for table in CHILDREN} == before
