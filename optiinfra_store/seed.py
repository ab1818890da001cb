"""Load the demo seed data in sql/seed/ (idempotent: loading twice changes nothing)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import psycopg

from optiinfra_store.dsn import redact, resolve_dsn
from optiinfra_store.errors import MigrationError, SchemaNotMigrated, StoreUnavailable
from optiinfra_store.migrations import YOYO_TABLES
from optiinfra_store.resources import seed_dir

_log = logging.getLogger(__name__)

DEMO_CUSTOMERS = ("c1000000-0000-4000-8000-000000000001", "c1000000-0000-4000-8000-000000000002")
"""The ids of the customers the seed files write (a test checks them against the files)."""


def seed_files() -> list[str]:
    return sorted(p.name for p in seed_dir().glob("*.sql"))


def _connect(dsn: str | None) -> psycopg.Connection:
    resolved = resolve_dsn(dsn)
    try:
        return psycopg.connect(resolved, autocommit=False)
    except psycopg.OperationalError as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StoreUnavailable(f"cannot connect to {redact(resolved)}: {reason}") from exc


def load(dsn: str | None = None, *, on_file: Callable[[str], None] | None = None) -> list[str]:
    """Run every seed file in name order, all in one transaction; return the file names.
    `on_file` is called with each file's name once it has run (for progress).

    Raises StoreUnavailable if the server cannot be reached, SchemaNotMigrated before the
    migrations are applied, MigrationError if a file fails (nothing is loaded then).
    """
    conn = _connect(dsn)
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
                f"({str(exc).strip().splitlines()[0]}): apply the migrations first "
                "(optiinfra_store.migrations.apply, or `optiinfra-store migrate`)"
            ) from exc
        except psycopg.Error as exc:
            conn.rollback()
            raise MigrationError(
                f"seed file {current} failed, nothing was loaded: {str(exc).strip().splitlines()[0]}"
            ) from exc
    return names


def other_data(dsn: str | None = None) -> str | None:
    """What the database holds besides this package's schema and the demo data, in a few words
    (None when nothing): tables of another application, or customers the seed did not write.
    Loading the demo there mixes it into real data."""
    with _connect(dsn) as conn:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
            ).fetchall()
        ]
        if "customers" in tables:
            (customers,) = conn.execute(
                "SELECT count(*) FROM customers WHERE id <> ALL(%s::uuid[])", (list(DEMO_CUSTOMERS),)
            ).fetchone() or (0,)
            if customers:
                return f"{customers} customers that are not the demo's"
        if "agents" not in tables:  # no schema of this package: any table is another application's
            foreign = [t for t in tables if t not in YOYO_TABLES]
            if foreign:
                return f"{len(foreign)} tables of another schema ({', '.join(sorted(foreign)[:3])}...)"
    return None
