"""Distribute the schema over a Citus cluster: `distribute(dsn)`, or `optiinfra-store distribute`.

Run it on the coordinator's database once the migrations are applied there. Every table the
store writes becomes one of:
- distributed by `customer_id`, all co-located with workflow_executions (a customer's rows of
  every table live on one node): each table whose `customer_id` is NOT NULL;
- distributed by `agent_id`, with its daily partitions: agent_metrics (the volume is per agent,
  and metrics are no customer's);
- a reference table, copied whole to every node: the rest (customers, agents and what describes
  them, the rollups' bookkeeping and the notification key).

Keys come first: Citus needs every primary and unique key of a distributed table to include its
distribution column, so a key without it is replaced by the same key with the column added (a
primary key over `id` becomes one over `(id, customer_id)`: ids stay unique across the cluster
because the database makes them, time-ordered and random). The foreign keys are dropped for the
conversion and added back; one Citus cannot keep (a reference table pointing into a distributed
one: `agent_states.current_workflow_id`) is reported. The work itself is SQL
(`queries/distribution.sql`), reading the catalog.

All of it is one transaction: it ends distributed, or as it was. Running it again changes nothing.

Then each node is asked whether row-level security holds for `optiinfra_tenant` on every
placement of every table with a policy (a confined statement reaches the shards as that role):
Citus copies a table's row-level security and policies to its shards, and a placement where it
does not hold would show every customer's rows there. One is refused with MigrationError naming
it (on a cluster distributed already too: running distribute again checks again). The check runs
once the placement is committed: no other connection sees the shards before.
"""

from __future__ import annotations

import contextlib

import psycopg

from optiinfra_store import migrations
from optiinfra_store.connection.dsn import redact, resolve_dsn
from optiinfra_store.connection.primary import connect as connect_to_primary
from optiinfra_store.errors import ConfigurationError, MigrationError, SchemaNotMigrated, StoreUnavailable, first_line
from optiinfra_store.queries import load

ANCHOR = "workflow_executions"
"""The table the customer-distributed tables are co-located with."""
BY_AGENT = ("agent_metrics",)
"""Tables distributed by their agent, not their customer."""

_q = load("distribution")


def _check(conn: psycopg.Connection, dsn: str) -> None:
    if conn.execute("SELECT FROM pg_extension WHERE extname = 'citus'").fetchone() is None:
        raise ConfigurationError(
            "this database has no citus extension: distribute runs on a Citus coordinator "
            "(citus in shared_preload_libraries, then CREATE EXTENSION citus and the workers added); "
            "on one PostgreSQL server the schema needs no distributing"
        )
    pending = [s.id for s in migrations.status(dsn) if not s.applied]
    if pending:
        raise SchemaNotMigrated(f"apply the migrations before distributing: {', '.join(pending)} pending")


def distribute(dsn: str | None = None) -> list[str]:
    """Distribute the schema on the Citus coordinator at `dsn` (default $OPTIINFRA_DATABASE_URL);
    return what was done, a line each (nothing when it was done already).

    Raises StoreUnavailable if the server cannot be reached, ConfigurationError where the database
    has no citus extension, SchemaNotMigrated with migrations pending, MigrationError if Citus
    refuses (nothing is changed then), or if row-level security is not confirmed for
    optiinfra_tenant on every placement of a guarded table (the tables are placed by then).
    """
    resolved = resolve_dsn(dsn)
    with contextlib.closing(connect_to_primary(resolved)) as conn:  # closing: whatever is left open rolls back
        try:
            _check(conn, resolved)
            conn.execute(_q.define)
            rows = conn.execute(_q.distribute, (sorted(migrations.YOYO_TABLES), ANCHOR, list(BY_AGENT))).fetchall()
        except psycopg.Error as exc:
            with contextlib.suppress(psycopg.Error):  # on a lost connection the server rolled back itself
                conn.rollback()
            if isinstance(exc, psycopg.OperationalError):
                raise StoreUnavailable(f"distributing stopped, nothing was changed: {redact(first_line(exc))}") from exc
            raise MigrationError(f"distributing failed, nothing was changed: {first_line(exc)}") from exc
        try:
            conn.commit()
        except psycopg.Error as exc:
            raise StoreUnavailable(
                "the connection failed while committing, so whether the schema was distributed is not known "
                f"({redact(first_line(exc))}): run distribute again, it finishes what is not done"
            ) from exc
        unguarded = unguarded_placements(conn)
    if unguarded:
        raise MigrationError(
            "row-level security is not confirmed for optiinfra_tenant on every placement of the guarded tables, so "
            "calls confined to a customer could see other customers' rows there: "
            + "; ".join(unguarded)
            + ". Enable it on the table on the coordinator (ALTER TABLE ... ENABLE ROW LEVEL SECURITY, which Citus "
            "passes to every shard; optiinfra_tenant must not own, or bypass row-level security on, any shard), then "
            "run distribute again; until then, open no store confined to a customer on this cluster"
        )
    return [line for (line,) in rows]


def unguarded_placements(conn: psycopg.Connection) -> list[str]:
    """The placements of the tables with a row-level security policy where that security does
    not hold for optiinfra_tenant, or cannot be confirmed, a line each (each node asked over a
    connection of its own; a node that cannot be reached is named with its error). Raises
    StoreUnavailable if the coordinator cannot be asked, MigrationError if it refuses."""
    try:
        lines = [line for (line,) in conn.execute(_q.unguarded_placements)]
        conn.rollback()  # read only: nothing of it stays open
    except psycopg.Error as exc:
        with contextlib.suppress(psycopg.Error):
            conn.rollback()
        what = f"could not ask the nodes whether row-level security holds on every shard: {redact(first_line(exc))}"
        if isinstance(exc, psycopg.OperationalError):
            raise StoreUnavailable(what) from exc
        raise MigrationError(what) from exc
    return lines
