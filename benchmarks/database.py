"""The benchmark's own database: created fresh on a server, migrated, dropped at the end.

Server, in this order: `--dsn` (a server we may create databases on), else $OPTIINFRA_TEST_DSN,
else an embedded pgserver in a temporary directory (the `embedded` extra). The database is named
`optiinfra_bench_<random>` and dropped (WITH FORCE) when the block ends, even on error.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import psycopg

from optiinfra_store import migrations
from tests.pg import TEST_DSN_ENV, Databases


@contextlib.contextmanager
def admin_server(dsn: str | None) -> Iterator[tuple[str, str]]:
    """Yield (admin DSN, where it came from)."""
    if dsn:
        yield dsn, "--dsn"
        return
    if os.environ.get(TEST_DSN_ENV):
        yield os.environ[TEST_DSN_ENV], f"${TEST_DSN_ENV}"
        return
    from optiinfra_store.commands.embedded import embedded_server

    with embedded_server() as embedded_dsn:
        yield embedded_dsn, "embedded pgserver"


@contextlib.contextmanager
def fresh_database(admin_dsn: str, prefix: str = "optiinfra_bench") -> Iterator[str]:
    """A new migrated database on the server of `admin_dsn`; dropped when the block ends."""
    databases = Databases(admin_dsn)
    dsn = databases.create(prefix)
    try:
        migrations.apply(dsn)
        yield dsn
    finally:
        databases.drop_all()


def server_version(dsn: str) -> str:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT version()").fetchone()[0]
