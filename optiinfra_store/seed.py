"""Load the demo seed data in sql/seed/ (idempotent: loading twice changes nothing)."""

from __future__ import annotations

import psycopg

from optiinfra_store.dsn import redact, resolve_dsn
from optiinfra_store.errors import MigrationError, StoreUnavailable
from optiinfra_store.resources import seed_dir


def seed_files() -> list[str]:
    return sorted(p.name for p in seed_dir().glob("*.sql"))


def load(dsn: str | None = None) -> list[str]:
    """Run every seed file in name order, all in one transaction; return the file names.

    Raises StoreUnavailable if the server cannot be reached, MigrationError if a file fails
    (nothing is loaded then).
    """
    resolved = resolve_dsn(dsn)
    try:
        conn = psycopg.connect(resolved, autocommit=False)
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(f"cannot connect to {redact(resolved)}: {str(exc).strip()}") from exc
    names = seed_files()
    with conn:
        current = None
        try:
            for current in names:
                # no parameters: psycopg sends the file as one simple query, so several statements run
                conn.execute((seed_dir() / current).read_text(encoding="utf-8"))
        except psycopg.Error as exc:
            conn.rollback()
            raise MigrationError(
                f"seed file {current} failed, nothing was loaded: {str(exc).strip().splitlines()[0]}"
            ) from exc
    return names
