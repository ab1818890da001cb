"""Which statements the store takes for reads when their connection is lost (a plain
StoreUnavailable) and which for writes (OutcomeUnknown): checked against the server itself. Every
named statement runs in a READ ONLY transaction, where PostgreSQL refuses any statement that
would change a table before it touches a row; the functions a read may call are checked in the
catalog (a stable or immutable function cannot write either)."""

from __future__ import annotations

from importlib import resources

import asyncpg
import pytest

from optiinfra_store.connection.executor import READ_ONLY_FUNCTIONS, reads_only
from optiinfra_store.queries import load

# run with psycopg's %s placeholders by distribution.py, never through an executor
SKIPPED_FILES = {"distribution"}


def named_statements() -> list[tuple[str, str]]:
    files = sorted(
        entry.name.removesuffix(".sql")
        for entry in resources.files("optiinfra_store.queries").iterdir()
        if entry.name.endswith(".sql")
    )
    return [
        (f"{table}.{name}", getattr(load(table), name))
        for table in files
        if table not in SKIPPED_FILES
        for name in sorted(load(table).names())
    ]


STATEMENTS = named_statements()


async def refused_as_a_write(conn: asyncpg.Connection, sql: str) -> bool:
    """Whether the server refuses `sql` (every parameter null) in a READ ONLY transaction as a
    write; any other error (a null where a value must be) is not the question here."""
    async with conn.transaction(readonly=True):
        try:
            async with conn.transaction():  # a savepoint: an error leaves the transaction usable
                params = (await conn.prepare(sql)).get_parameters()
                await conn.fetch(sql, *([None] * len(params)))
        except asyncpg.ReadOnlySQLTransactionError:
            return True
        except asyncpg.PostgresError:
            return False
    return False


async def test_statements__what_the_store_takes_for_a_read_the_server_runs_read_only(migrated_dsn):
    assert len(STATEMENTS) > 100
    conn = await asyncpg.connect(migrated_dsn)
    try:
        misread = []
        writes = []
        for name, sql in STATEMENTS:
            if await refused_as_a_write(conn, sql):
                writes.append(name)
                if reads_only(sql):
                    misread.append(name)
    finally:
        await conn.close()
    assert not misread, f"taken for reads, refused as writes: {misread}"
    assert len(writes) > 40  # the check reaches the writes (inserts, updates, deletes)


def test_statements__each_kind_classified():
    kinds = {name: reads_only(sql) for name, sql in STATEMENTS}
    for read in (
        "workflow_executions.get_by_id",
        "workflow_executions.list",
        "customers.count",
        "workflow_transitions.events_since",
        "workflow_transitions.durable_at",
    ):
        assert kinds[read], read
    for write in (
        "workflow_executions.insert",
        "workflow_executions.finish",
        "workflow_executions.update",
        "workflow_executions.delete_by_id",
        "workflow_executions.start",
        "maintenance.roll_up",
    ):
        assert not kinds[write], write
    # what it cannot tell counts as a write: a row lock, a function not listed, a COPY
    assert not reads_only("SELECT 1 FROM agents WHERE id = $1 FOR UPDATE")
    assert not reads_only("SELECT optiinfra_roll_up($1)")
    assert not reads_only("SELECT optiinfra_not_yet_written()")
    assert not reads_only("COPY")
    assert not reads_only("COMMIT")
    assert reads_only("SELECT (SELECT status FROM t WHERE id = $1) FROM (SELECT optiinfra_audit(NULL, NULL)) s")


async def test_read_only_functions__none_can_write(migrated_dsn):
    conn = await asyncpg.connect(migrated_dsn)
    try:
        rows = await conn.fetch(
            "SELECT proname, provolatile, prosrc FROM pg_proc WHERE proname = any($1::text[])",
            sorted(READ_ONLY_FUNCTIONS),
        )
    finally:
        await conn.close()
    assert {row["proname"] for row in rows} == READ_ONLY_FUNCTIONS
    for row in rows:
        if row["provolatile"] == "v":  # optiinfra_audit: sets transaction-local settings, nothing more
            body = row["prosrc"].lower()
            assert "set_config" in body, row["proname"]
            for word in ("insert", "update", "delete", "perform", "execute"):
                assert word not in body, (row["proname"], word)


@pytest.mark.parametrize("statement", ["BEGIN", "COMMIT", "ROLLBACK"])
def test_transaction_control__never_a_read(statement):
    assert not reads_only(statement)
