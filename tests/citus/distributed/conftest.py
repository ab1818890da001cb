"""tests/citus/distributed: integration modules run on a schema distributed by customer
(`optiinfra-store distribute` after the migrations), through a store that names the customer in
every write. Each test_<name>.py here named after a module of tests/integration imports it, for the
suites the store passes on the distributed schema so far (SCALING.md says what does not run there
yet); the others test what only the cluster has (purge by shard, maintain() and its marks on both
workers, pgbouncer in front of the coordinator)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import psycopg
import pytest

from optiinfra_store import distribution, migrations
from optiinfra_store.migrations import YOYO_TABLES
from tests.conftest import TEST_SECRET_KEY

if TYPE_CHECKING:
    from tests.citus.conftest import CitusDatabases


@pytest.fixture(scope="session")
def migrated_dsn(databases: CitusDatabases) -> str:
    """The session's database, migrated and distributed, with `optiinfra_tenant` admitted to the
    workers as SCALING.md has an operator do (confined calls connect to them as it)."""
    dsn = databases.create()
    migrations.apply(dsn)
    distribution.distribute(dsn)
    databases.cluster.admit_tenant(dsn)
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


@pytest.fixture(scope="session")
async def session_store(distributed_store):
    """tests/conftest.py's name for the session's store (the modules imported here take it)."""
    return distributed_store


@pytest.fixture(scope="session")
async def session_keyed_store(migrated_dsn: str):
    """A store with a secret key on this directory's database (tests/conftest.py's, for this one)."""
    from optiinfra_store import Store

    async with Store.connect(migrated_dsn, min_size=1, max_size=4, secret_key=TEST_SECRET_KEY) as store:
        yield store


@pytest.fixture
async def store(distributed_store, clean_dsn):
    """The store over empty tables, on the distributed schema (asserted: what these tests are for)."""
    assert distributed_store.by_customer
    return distributed_store


@pytest.fixture(scope="session")
async def distributed_keyed_store(migrated_dsn: str):
    """`distributed_store` holding the tests' secret key (as tests/conftest.py's keyed store)."""
    from optiinfra_store import Store

    async with Store.connect(migrated_dsn, min_size=1, max_size=4, secret_key=TEST_SECRET_KEY) as store:
        yield store


@pytest.fixture
async def keyed_store(distributed_keyed_store, clean_dsn):
    """The keyed store over empty tables, on the distributed schema."""
    assert distributed_keyed_store.by_customer
    return distributed_keyed_store
