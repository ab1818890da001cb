"""Apply, roll back and inspect the schema migrations (yoyo over psycopg 3).

The same functions back the CLI and the test fixtures, so CI and people run one code path.
Each migration runs in its own transaction: a failing one leaves the database as it was.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from yoyo import read_migrations
from yoyo.backends import PostgresqlPsycopgBackend
from yoyo.backends.base import DatabaseBackend
from yoyo.connections import DatabaseURI
from yoyo.exceptions import LockTimeout
from yoyo.migrations import MigrationList, default_migration_table

from optiinfra_store.connection import primary
from optiinfra_store.connection.dsn import redact, resolve_dsn
from optiinfra_store.errors import InvalidArgument, MigrationError, StoreTimeout, StoreUnavailable, first_line

_PACKAGE_DIR = Path(__file__).resolve().parent


def sql_dir() -> Path:
    """The `sql/` tree that ships with the package: inside an installed wheel, else beside the
    package in a checkout."""
    for candidate in (_PACKAGE_DIR / "sql", _PACKAGE_DIR.parent / "sql"):
        if (candidate / "migrations").is_dir():
            return candidate
    raise FileNotFoundError(f"no sql/ directory found near {_PACKAGE_DIR}")


def migrations_dir() -> Path:
    return sql_dir() / "migrations"


def seed_dir() -> Path:
    return sql_dir() / "seed"


_log = logging.getLogger(__name__)

# yoyo's bookkeeping tables; not part of the application schema
YOYO_TABLES = frozenset({"_yoyo_migration", "_yoyo_log", "_yoyo_version", "yoyo_lock"})


@dataclass(frozen=True)
class MigrationState:
    id: str
    applied: bool
    applied_at: datetime | None


@contextlib.contextmanager
def _backend(dsn: str | None) -> Iterator[DatabaseBackend]:
    """yoyo's backend on the primary among the servers `dsn` lists. yoyo reads a DSN with urllib,
    which takes neither multi-host form, and opens a connection of its own for each migration: so
    the primary is found first (connection/primary.py), and yoyo is given libpq's parameters pinned
    to that server, never a DSN to parse."""
    resolved = resolve_dsn(dsn)
    with primary.connect(resolved) as found:
        params = primary.pinned(resolved, found)
    uri = DatabaseURI(
        scheme="postgresql+psycopg",  # yoyo's backend over psycopg 3
        username=None,
        password=None,
        hostname=None,
        port=None,
        database=params.pop("dbname", None),
        args=params,  # yoyo passes them to psycopg.connect as they are
    )
    for attempt in range(3):
        try:
            backend = PostgresqlPsycopgBackend(uri, default_migration_table)
            backend.init_database()
            break
        except psycopg.OperationalError as exc:
            raise primary.connect_failed(exc, resolved) from exc
        except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable) as exc:
            # another process created yoyo's bookkeeping tables at the same moment: they exist now
            if attempt == 2:
                raise MigrationError(f"{redact(resolved)}: {first_line(exc)}") from exc
        except psycopg.Error as exc:
            raise MigrationError(f"{redact(resolved)}: {first_line(exc)}") from exc
    try:
        yield backend
    except LockTimeout as exc:
        raise StoreTimeout(f"another migration holds the lock on {redact(resolved)}: {exc}") from exc
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(f"{redact(resolved)}: {first_line(exc)}") from exc
    except psycopg.Error as exc:
        raise MigrationError(f"{redact(resolved)}: {first_line(exc)}") from exc
    finally:
        with contextlib.suppress(Exception):
            backend.connection.close()


def _migrations() -> MigrationList:
    return read_migrations(str(migrations_dir()))


def ids() -> list[str]:
    """The ids of the package's migrations, in the order they apply."""
    return [migration.id for migration in _migrations()]


def _run(action: str, backend: DatabaseBackend, migrations: MigrationList) -> list[str]:
    done: list[str] = []
    for migration in migrations:
        try:
            if action == "apply":
                backend.apply_one(migration)
            else:
                backend.rollback_one(migration)
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"{action} {migration.id}: {first_line(exc)}") from exc
        except psycopg.Error as exc:
            raise MigrationError(
                f"{action} of {migration.id} failed, its changes were rolled back: {first_line(exc)}"
            ) from exc
        _log.info("%s %s", "applied" if action == "apply" else "rolled back", migration.id)
        done.append(migration.id)
    return done


def _known(id_: str) -> str:
    known = ids()
    if id_ not in known:
        raise InvalidArgument(f"no migration {id_!r}; the migrations are {', '.join(known)}")
    return id_


def apply(dsn: str | None = None, *, to: str | None = None) -> list[str]:
    """Apply every pending migration, in order, or those up to and including `to`; return the ids
    applied (empty when up to date).

    Raises InvalidArgument for an unknown `to`, StoreUnavailable if the server cannot be reached,
    MigrationError if a migration fails (it is rolled back; those before it stay applied).
    """
    migrations = _migrations()
    if to is not None:
        _known(to)
        order = [m.id for m in migrations]
        migrations = MigrationList([m for m in migrations if order.index(m.id) <= order.index(to)])
    with _backend(dsn) as backend, backend.lock():
        return _run("apply", backend, backend.to_apply(migrations))


def to_roll_back(dsn: str | None = None, *, count: int | None = 1, to: str | None = None) -> list[str]:
    """The ids `rollback` would roll back, newest first, without changing anything: the last
    `count` applied (all of them when count is None), or every one applied after `to`.
    Raises InvalidArgument for a count beyond what is applied or an unknown or unapplied `to`."""
    with _backend(dsn) as backend:
        return [m.id for m in _targets(backend, count, to)]


def _targets(backend: DatabaseBackend, count: int | None, to: str | None) -> list[Any]:
    applied = list(backend.to_rollback(_migrations()))  # newest first
    if to is not None:
        _known(to)
        ids_ = [m.id for m in applied]
        if to not in ids_:
            raise InvalidArgument(f"{to} is not applied: nothing to roll back to")
        return applied[: ids_.index(to)]
    if count is None:
        return applied
    if count < 1:
        raise InvalidArgument(f"count must be at least 1, got {count}")
    if count > len(applied):
        raise InvalidArgument(f"only {len(applied)} migrations are applied: cannot roll back {count}")
    return applied[:count]


def rollback(
    dsn: str | None = None, count: int | None = 1, *, to: str | None = None, expected: Sequence[str] | None = None
) -> list[str]:
    """Roll back the last `count` applied migrations (all of them when count is None), or every
    one applied after `to` (which stays applied); return their ids, newest first. With `expected`
    (the ids `to_roll_back` gave, which someone confirmed) nothing happens unless those are still
    the ones, checked under the migration lock.
    Raises InvalidArgument, changing nothing, for a count beyond what is applied, an unknown or
    unapplied `to`, or targets other than `expected`."""
    if count is not None and count < 1:
        raise InvalidArgument(f"count must be at least 1, got {count}")
    with _backend(dsn) as backend, backend.lock():
        targets = _targets(backend, count, to)
        if expected is not None and [m.id for m in targets] != list(expected):
            raise InvalidArgument(
                "the applied migrations changed since the rollback was confirmed "
                f"(now it would roll back {', '.join(m.id for m in targets) or 'nothing'}): nothing was rolled back"
            )
        return _run("rollback", backend, MigrationList(targets))


def mark(dsn: str | None, migration_ids: Sequence[str]) -> list[str]:
    """Record migrations as applied without running them (their changes were made by hand);
    return the ids newly marked."""
    return _record(dsn, migration_ids, applied=True)


def unmark(dsn: str | None, migration_ids: Sequence[str]) -> list[str]:
    """Forget that migrations were applied, without rolling them back; return the ids unmarked."""
    return _record(dsn, migration_ids, applied=False)


def _record(dsn: str | None, migration_ids: Sequence[str], *, applied: bool) -> list[str]:
    wanted = {_known(i) for i in migration_ids}
    with _backend(dsn) as backend, backend.lock():
        candidates = backend.to_apply(_migrations()) if applied else backend.to_rollback(_migrations())
        todo = MigrationList([m for m in candidates if m.id in wanted])
        (backend.mark_migrations if applied else backend.unmark_migrations)(todo)
    done = [m.id for m in todo]
    _log.info("marked as %s: %s", "applied" if applied else "not applied", ", ".join(done) or "none")
    return done


def break_lock(dsn: str | None = None) -> None:
    """Remove the migration lock left by a process that died while migrating (make sure none is
    running: two migrating at once is what the lock prevents)."""
    with _backend(dsn) as backend:
        backend.break_lock()
    _log.warning("migration lock broken")


def status(dsn: str | None = None) -> list[MigrationState]:
    """Every known migration in order, with whether and when it was applied."""
    with _backend(dsn) as backend:
        backend.ensure_internal_schema_updated()
        cursor = backend.execute(
            backend.format_sql("SELECT migration_id, applied_at_utc FROM {0.migration_table_quoted}")
        )
        applied = {row[0]: row[1] for row in cursor.fetchall()}
        return [
            MigrationState(
                id=m.id,
                applied=m.id in applied,
                applied_at=applied[m.id].replace(tzinfo=UTC) if m.id in applied else None,
            )
            for m in _migrations()
        ]
