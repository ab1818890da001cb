"""Load the demo seed data in sql/seed/ (idempotent: loading twice changes nothing)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import psycopg

from optiinfra_store.connection import primary
from optiinfra_store.connection.dsn import redact, resolve_dsn
from optiinfra_store.errors import MigrationError, SchemaNotMigrated, first_line
from optiinfra_store.migrations import YOYO_TABLES, seed_dir

_log = logging.getLogger(__name__)

DEMO_CUSTOMERS = ("c1000000-0000-4000-8000-000000000001", "c1000000-0000-4000-8000-000000000002")
"""The ids of the customers the seed files write (a test checks them against the files)."""


def seed_files() -> list[str]:
    return sorted(p.name for p in seed_dir().glob("*.sql"))


def load(dsn: str | None = None, *, on_file: Callable[[str], None] | None = None) -> list[str]:
    """Run every seed file in name order, all in one transaction; return the file names.
    `on_file` is called with each file's name once it has run (for progress).

    Raises StoreUnavailable if the server cannot be reached, SchemaNotMigrated before the
    migrations are applied, MigrationError if a file fails (nothing is loaded then).
    """
    conn = primary.connect(resolve_dsn(dsn))
    names = seed_files()
    with conn:
        current = None
        try:
            for current in names:
                # no parameters: psycopg sends the file as one simple query, so several statements run
                conn.execute((seed_dir() / current).read_text(encoding="utf-8"))
                _log.info("loaded seed file %s", current)
                if on_file is not None:
                    on_file(current)
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedObject, psycopg.errors.UndefinedFunction) as exc:
            conn.rollback()
            raise SchemaNotMigrated(
                f"seed file {current} needs the schema, which is missing or out of date "
                f"({first_line(exc)}): apply the migrations first "
                "(optiinfra_store.migrations.apply, or `optiinfra-store migrate`)"
            ) from exc
        except psycopg.Error as exc:
            conn.rollback()
            raise MigrationError(f"seed file {current} failed, nothing was loaded: {first_line(exc)}") from exc
    return names


def other_data(dsn: str | None = None) -> str | None:
    """What the database holds besides this package's schema and the demo data, in a few words
    (None when nothing): tables of another application (in any schema), or customers the seed did
    not write. Loading the demo there mixes it into real data. A database it cannot inspect counts
    as holding other data."""
    try:
        with primary.connect(resolve_dsn(dsn)) as conn:
            tables = conn.execute(
                "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition"
                " AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%'"
            ).fetchall()
            public = {name for schema, name in tables if schema == "public"}
            ours = "agents" in public and "workflow_executions" in public
            foreign = [f"{schema}.{name}" for schema, name in tables if schema != "public"]
            if not ours:
                foreign += [name for name in public if name not in YOYO_TABLES]
            if foreign:
                return f"{len(foreign)} tables of another schema ({', '.join(sorted(foreign)[:3])}...)"
            if ours:
                row = conn.execute(
                    "SELECT count(*) FROM customers WHERE id::text <> ALL(%s::text[])", (list(DEMO_CUSTOMERS),)
                ).fetchone()
                if row and row[0]:
                    return f"{row[0]} customers that are not the demo's"
    except psycopg.Error as exc:
        return f"it could not be inspected: {redact(first_line(exc))}"
    return None
