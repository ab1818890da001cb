from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import psycopg
import pytest

from optiinfra_store import migrations
from optiinfra_store.migrations import YOYO_TABLES
from tests.pg import Databases, pgbouncer, session_server, sources

# Modules marked `slow`: they start processes or servers of their own (a replica, pgbouncer,
# `serve`, Chromium, the CLI), migrate databases from scratch, or sweep hundreds of hostile inputs.
# `python -m pytest -m "not slow"` runs the rest, the quick loop while changing the code.
SLOW_MODULES = {
    "tests/api/test_browser.py",
    "tests/api/test_limits.py",
    "tests/api/test_outage.py",
    "tests/api/test_serve.py",
    "tests/benchmarks/test_bench_smoke.py",
    "tests/integration/test_metric_partitions.py",
    "tests/integration/test_multi_host.py",
    "tests/integration/test_pgbouncer.py",
    "tests/integration/test_readme.py",
    "tests/integration/test_replicas.py",
    "tests/migration/test_cli.py",
    "tests/migration/test_cli_process.py",
    "tests/migration/test_customer_columns.py",
    "tests/migration/test_migrations.py",
    "tests/migration/test_multi_host.py",
    "tests/reliability/test_failover.py",
    "tests/reliability/test_faults.py",
    "tests/reliability/test_hostile_input.py",
    "tests/reliability/test_injection.py",
    "tests/reliability/test_lifecycle_races.py",
    "tests/reliability/test_server_logs.py",
    "tests/reliability/test_soak.py",
}

# tests/citus runs the suites on a Citus cluster, which needs the citus extension built by hand
# (DEVELOPERS.md): only `python -m pytest tests/citus` collects it, as pytest never ignores a path
# given on its command line (nor the directories above one).
collect_ignore = ["citus"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = config.rootpath
    for item in items:
        if item.path.relative_to(root).as_posix() in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


def pytest_report_header(config: pytest.Config) -> str:
    return f"PostgreSQL for tests: {sources()}"


def announce(config: pytest.Config, line: str) -> None:
    """Print `line` past pytest's capture: which server a run used is part of its result. A
    pytest-xdist worker's output goes nowhere: it hands the line to the controller, which prints
    it in the summary."""
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput.setdefault("announcements", []).append(line)
        return
    capture = config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print(f"\n{line}")


_from_workers: list[str] = []


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    for line in getattr(node, "workeroutput", {}).get("announcements", []):
        if line not in _from_workers:
            _from_workers.append(line)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in _from_workers:
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def databases(request: pytest.FixtureRequest) -> Iterator[Databases]:
    """Factory of fresh databases on the session's PostgreSQL server."""
    with session_server(say=lambda line: announce(request.config, line)) as (admin_dsn, origin):
        announce(request.config, f"using PostgreSQL from {origin}")
        dbs = Databases(admin_dsn)
        try:
            yield dbs
        finally:
            dbs.drop_all()


@pytest.fixture(scope="session")
def migrated_dsn(databases: Databases) -> str:
    """DSN of the session's database, migrated through the same code as the CLI."""
    dsn = databases.create()
    migrations.apply(dsn)
    return dsn


# Above this many rows in a table, emptying the tables truncates them (cheaper than deleting).
RESET_DELETE_MAX_ROWS = 5000


@pytest.fixture(scope="session")
def _reset_sql(migrated_dsn: str) -> str:
    """One statement that empties the schema's tables and restarts their sequences.

    A test writes to a few tables; TRUNCATE of all of them makes new files for every table and
    index (about 60 ms a test). So the statement deletes from the tables that hold rows, with
    triggers and foreign-key checks off for its transaction (`session_replication_role`, the
    tests' superuser), and truncates everything when a table holds many rows (or the tests log
    in as a role that is not a superuser)."""
    with psycopg.connect(migrated_dsn) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                # partitions come and go with the days; emptying their table empties them
                "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
                " AND relkind IN ('r', 'p') AND NOT relispartition ORDER BY relname"
            )
            # the live events' key is made by its migration, once
            if row[0] not in YOYO_TABLES and row[0] != "optiinfra_notify_key"
        ]
        sequences = conn.execute(
            "SELECT t.relname, s.relname FROM pg_depend d"
            " JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'"
            " JOIN pg_class t ON t.oid = d.refobjid AND t.relnamespace = 'public'::regnamespace"
            " ORDER BY 1, 2"
        ).fetchall()
    assert tables, "the migrated database has no tables"
    large = " OR ".join(
        f"(SELECT count(*) FROM (SELECT FROM {t} LIMIT {RESET_DELETE_MAX_ROWS + 1}) s) > {RESET_DELETE_MAX_ROWS}"
        for t in tables
    )
    deletes = "\n".join(f"    IF EXISTS (SELECT FROM {t}) THEN DELETE FROM {t}; END IF;" for t in tables)
    restarts = "\n".join(f"  PERFORM setval('{s}', 1, false);" for _, s in sequences)
    return f"""DO $reset$
BEGIN
  -- as TRUNCATE would: wait for a transaction still open on them (a test's leftover), so none of
  -- its rows, committed after the deletes, reaches the next test
  LOCK TABLE {", ".join(tables)} IN ACCESS EXCLUSIVE MODE;
  IF current_setting('is_superuser') <> 'on' OR {large} THEN
    TRUNCATE {", ".join(tables)} RESTART IDENTITY CASCADE;
  ELSE
    SET LOCAL session_replication_role = replica;
{deletes}
  END IF;
{restarts}
END
$reset$"""


@pytest.fixture(scope="session")
def _reset_connection(migrated_dsn: str) -> Iterator[list[psycopg.Connection]]:
    """The worker's connection for emptying the tables between tests (made again if a test
    terminated it)."""
    held: list[psycopg.Connection] = []
    yield held
    for conn in held:
        conn.close()


@pytest.fixture
def clean_dsn(migrated_dsn: str, _reset_sql: str, _reset_connection: list[psycopg.Connection]) -> Iterator[str]:
    """The session database, emptied after the test (isolation by emptying every table)."""
    yield migrated_dsn
    for attempt in (1, 2):
        if not _reset_connection or _reset_connection[0].closed:
            _reset_connection[:] = [psycopg.connect(migrated_dsn, autocommit=True)]
        try:
            _reset_connection[0].execute(_reset_sql)
            return
        except psycopg.OperationalError:
            _reset_connection[0].close()
            if attempt == 2:
                raise


@pytest.fixture
def scratch_dsn(databases: Databases) -> str:
    """An empty, unmigrated database of the test's own (for migration and CLI tests)."""
    return databases.create("optiinfra_scratch")


POOLER_ENV = "OPTIINFRA_TEST_POOLER"
"""Set to `pgbouncer`: the session's store goes through pgbouncer in transaction mode."""


@pytest.fixture(scope="session")
async def session_store(migrated_dsn: str):
    from optiinfra_store import Store

    if os.environ.get(POOLER_ENV) == "pgbouncer":
        with pgbouncer(migrated_dsn, pool_size=4) as bouncer:
            async with Store.connect(
                bouncer, pooler="transaction", events_dsn=migrated_dsn, min_size=2, max_size=24
            ) as store:
                yield store
        return
    async with Store.connect(migrated_dsn, min_size=2, max_size=24) as store:
        yield store


TEST_SECRET_KEY = "test-secret-key"


@pytest.fixture(scope="session")
async def session_keyed_store(migrated_dsn: str):
    from optiinfra_store import Store

    async with Store.connect(migrated_dsn, min_size=1, max_size=4, secret_key=TEST_SECRET_KEY) as store:
        yield store


@pytest.fixture
async def keyed_store(session_keyed_store, clean_dsn):
    """The session's database through a store holding a secret key: it can write sensitive configs."""
    return session_keyed_store


@pytest.fixture
async def store(session_store, clean_dsn):
    """The session's Store over empty tables (emptied again after the test)."""
    return session_store


@pytest.fixture
async def customer(store):
    from optiinfra_store.records import CustomerCreate

    return await store.customers.create(CustomerCreate(name="Acme Corp", email="platform@acme.example"))


@pytest.fixture
async def agent(store):
    from optiinfra_store.enums import AgentStatus, AgentType
    from optiinfra_store.records import AgentCreate

    return await store.agents.create(
        AgentCreate(
            type=AgentType.COST,
            name="Cost Optimizer",
            version="1.2.0",
            status=AgentStatus.ACTIVE,
            endpoint="http://cost-agent:8001",
            capabilities=["gpu_cost_analysis"],
        )
    )
