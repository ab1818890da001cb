"""tests/citus/distributed: integration modules run on a schema distributed by customer
(`optiinfra-store distribute` after the migrations), through a store that names the customer in
every write. Each test_<name>.py here imports tests/integration/test_<name>.py, for the suites the
store passes on the distributed schema so far (SCALING.md says what does not run there yet)."""

from __future__ import annotations

import psycopg
import pytest

from optiinfra_store import distribution, migrations
from optiinfra_store.migrations import YOYO_TABLES
from tests.pg import Databases


@pytest.fixture(scope="session")
def migrated_dsn(databases: Databases) -> str:
    """The session's database, migrated and distributed."""
    dsn = databases.create()
    migrations.apply(dsn)
    distribution.distribute(dsn)
    return dsn


@pytest.fixture(scope="session")
def _reset_sql(migrated_dsn: str) -> str:
    """Empties the tables between tests: TRUNCATE of every table, which Citus runs on every shard
    (the single server's cheaper deletes use queries Citus does not plan on distributed tables)."""
    with psycopg.connect(migrated_dsn) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
                " AND relkind IN ('r', 'p') AND NOT relispartition ORDER BY relname"
            )
            if row[0] not in YOYO_TABLES and row[0] != "optiinfra_notify_key"
        ]
    return f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"
