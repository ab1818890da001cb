"""tests/citus/distributed: integration modules run on a schema distributed by customer
(`optiinfra-store distribute` after the migrations), through a store that names the customer in
every write. Each test_<name>.py here imports tests/integration/test_<name>.py, for the suites the
store passes on the distributed schema so far (SCALING.md says what does not run there yet)."""

from __future__ import annotations

from collections.abc import Iterator

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


@pytest.fixture(scope="session")
def _reset_connection(migrated_dsn: str) -> Iterator[list[psycopg.Connection]]:
    """This directory's own connection for emptying its tables: the session's other tests empty
    another database on theirs (tests/conftest.py)."""
    held: list[psycopg.Connection] = []
    yield held
    for conn in held:
        conn.close()


@pytest.fixture(scope="session")
async def distributed_store(migrated_dsn: str):
    """The store on this directory's database. A fixture of its own name: a session fixture of
    tests/conftest.py is made once per session, for whichever database its first test asked for."""
    from optiinfra_store import Store

    async with Store.connect(migrated_dsn, min_size=2, max_size=24) as store:
        yield store


@pytest.fixture
async def store(distributed_store, clean_dsn):
    """The store over empty tables, on the distributed schema (asserted: what these tests are for)."""
    assert distributed_store.by_customer
    return distributed_store
