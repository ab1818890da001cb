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
one: `agent_states.current_workflow_id`) is reported, and its trigger still checks it.

All of it is one transaction: it ends distributed, or as it was. Running it again changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import psycopg
from psycopg import sql

from optiinfra_store import migrations
from optiinfra_store.connection.dsn import resolve_dsn
from optiinfra_store.connection.primary import connect as connect_to_primary
from optiinfra_store.errors import ConfigurationError, MigrationError, SchemaNotMigrated, first_line

ANCHOR = "workflow_executions"
"""The table the customer-distributed tables are co-located with."""
BY_AGENT = {"agent_metrics": "agent_id"}
"""Tables distributed by their agent, not their customer."""


@dataclass(frozen=True)
class Placement:
    """Where a table goes: copied to every node, or split by `column`."""

    table: str
    kind: Literal["reference", "distributed"]
    column: str | None = None

    def describe(self) -> str:
        return f"{self.table}: reference table" if self.column is None else f"{self.table}: by {self.column}"


def plan(conn: psycopg.Connection) -> list[Placement]:
    """Every table of the store's schema and where it goes, the anchor first."""
    rows = conn.execute(
        """
        SELECT c.relname,
               EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'customer_id'
                                                  AND a.attnotnull AND NOT a.attisdropped)
          FROM pg_class c
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
           AND c.relname <> ALL (%s)
         ORDER BY c.relname <> %s, c.relname
        """,
        (sorted(migrations.YOYO_TABLES), ANCHOR),
    ).fetchall()
    placements = []
    for table, owned in rows:
        if table in BY_AGENT:
            placements.append(Placement(table, "distributed", BY_AGENT[table]))
        elif owned:
            placements.append(Placement(table, "distributed", "customer_id"))
        else:
            placements.append(Placement(table, "reference"))
    return placements


def _placed(conn: psycopg.Connection) -> dict[str, str | None]:
    """The tables Citus already manages: {table: distribution column, None for a reference table}."""
    rows = conn.execute(
        "SELECT logicalrelid::regclass::text, column_to_column_name(logicalrelid, partkey) FROM pg_dist_partition"
    ).fetchall()
    return {table: column or None for table, column in rows}


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


def _fix_keys(conn: psycopg.Connection, placement: Placement) -> list[str]:
    """Every primary and unique key of a table to distribute includes its distribution column."""
    done = []
    keys = conn.execute(
        """
        SELECT con.conname, con.contype = 'p',
               array(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k (n, i)
                       JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i),
               pg_get_constraintdef(con.oid) LIKE '%%NULLS NOT DISTINCT%%'
          FROM pg_constraint con
         WHERE con.conrelid = %s::regclass AND con.contype IN ('p', 'u')
         ORDER BY con.contype = 'p' DESC, con.conname
        """,
        (placement.table,),
    ).fetchall()
    column = placement.column
    assert column is not None
    for name, primary, columns, _ in keys:
        if column in columns:
            continue
        wanted = [*columns, column]
        twin = next(
            (n for n, p, c, nulls in keys if not p and not nulls and sorted(c) == sorted(wanted)),
            None,
        )
        table = sql.Identifier(placement.table)
        # a unique key over the same columns gives way to the primary key
        conn.execute(
            sql.SQL("ALTER TABLE {} {}DROP CONSTRAINT {}, ADD CONSTRAINT {} {} ({})").format(
                table,
                sql.SQL("")
                if twin is None or not primary
                else sql.SQL("DROP CONSTRAINT {}, ").format(sql.Identifier(twin)),
                sql.Identifier(name),
                sql.Identifier(name),
                sql.SQL("PRIMARY KEY" if primary else "UNIQUE"),
                sql.SQL(", ").join(map(sql.Identifier, wanted)),
            )
        )
        done.append(f"{placement.table}: {name} now over ({', '.join(wanted)})")
    return done


def distribute(dsn: str | None = None) -> list[str]:
    """Distribute the schema on the Citus coordinator at `dsn` (default $OPTIINFRA_DATABASE_URL);
    return what was done, a line each (nothing when it was done already).

    Raises ConfigurationError where the database has no citus extension, SchemaNotMigrated with
    migrations pending, MigrationError if Citus refuses (nothing is changed then).
    """
    resolved = resolve_dsn(dsn)
    with connect_to_primary(resolved) as conn:
        _check(conn, resolved)
        placements = plan(conn)
        todo = [p for p in placements if p.table not in _placed(conn)]
        if not todo:
            return []
        try:
            return _distribute(conn, placements, todo)
        except psycopg.Error as exc:
            conn.rollback()
            raise MigrationError(f"distributing failed, nothing was changed: {first_line(exc)}") from exc


def _distribute(conn: psycopg.Connection, placements: list[Placement], todo: list[Placement]) -> list[str]:
    done: list[str] = []
    # the store's triggers run on the shards (SCALING.md says what that takes); one transaction
    conn.execute("SET LOCAL citus.enable_unsafe_triggers = on")
    conn.execute("SET LOCAL citus.multi_shard_modify_mode = 'sequential'")
    kinds = {p.table: p.kind for p in placements}
    # dropped for the conversion, added back after it: their definitions as the catalog prints them
    foreign_keys = conn.execute(
        """
        SELECT con.conrelid::regclass::text, con.confrelid::regclass::text, con.conname,
               pg_get_constraintdef(con.oid)
          FROM pg_constraint con
         WHERE con.contype = 'f' AND con.conrelid::regclass::text = ANY (%s)
         ORDER BY con.conrelid::regclass::text, con.conname
        """,
        (list(kinds),),
    ).fetchall()
    for table, _, name, _ in foreign_keys:
        conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.Identifier(table), sql.Identifier(name)))
    # off while the rows are copied into the shards (a step copied must not write its trail again)
    triggers = conn.execute(
        """
        SELECT t.tgrelid::regclass::text, t.tgname FROM pg_trigger t
         WHERE NOT t.tgisinternal AND t.tgenabled = 'O' AND t.tgparentid = 0
           AND t.tgrelid::regclass::text = ANY (%s)
         ORDER BY 1, 2
        """,
        ([p.table for p in todo],),
    ).fetchall()
    for table in sorted({table for table, _ in triggers}):
        conn.execute(sql.SQL("ALTER TABLE {} DISABLE TRIGGER USER").format(sql.Identifier(table)))
    for placement in todo:
        if placement.kind == "distributed":
            done += _fix_keys(conn, placement)
    for placement in todo:
        if placement.kind == "reference":
            conn.execute("SELECT create_reference_table(%s)", (placement.table,))
        else:
            colocate = ANCHOR if placement.column == "customer_id" and placement.table != ANCHOR else "none"
            conn.execute(
                "SELECT create_distributed_table(%s, %s, colocate_with => %s)",
                (placement.table, placement.column, colocate),
            )
        done.append(placement.describe())
    for table, name in triggers:
        conn.execute(sql.SQL("ALTER TABLE {} ENABLE TRIGGER {}").format(sql.Identifier(table), sql.Identifier(name)))
    for table, parent, name, definition in foreign_keys:
        if kinds[table] == "reference" and kinds.get(parent) == "distributed":
            done.append(f"{table}: {name} not kept (a reference table cannot point into a distributed one)")
            continue
        conn.execute(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                sql.Identifier(table),
                sql.Identifier(name),
                sql.SQL(definition),  # the catalog's own text
            )
        )
    conn.commit()
    return done
