"""tests/citus: the session's databases are made on a Citus cluster (a coordinator and two workers,
`citus_cluster()` in tests/pg.py), one per pytest-xdist worker, so the fixtures of tests/conftest.py
(`migrated_dsn`, `clean_dsn`, `store`, `customer`, ...) run on the coordinator unchanged. Each
test_integration_<name>.py imports tests/integration/test_<name>.py, whose tests pytest then
collects here. Only `python -m pytest tests/citus` runs them (tests/conftest.py: `collect_ignore`)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.conftest import announce
from tests.pg import CitusCluster, Databases, citus_cluster, citus_server

CITUS_SERVER = citus_server()
"""(major version, bindir) of the PostgreSQL the clusters start from, or why there is none."""


def pytest_report_header(config: pytest.Config) -> str:
    if isinstance(CITUS_SERVER, str):
        return f"PostgreSQL for tests/citus: {CITUS_SERVER}"
    version, bindir = CITUS_SERVER
    return f"PostgreSQL for tests/citus: a Citus cluster per worker, PostgreSQL {version} from {bindir}"


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Where Citus is not installed every test here skips, before its fixtures: raised here, the
    skip has one location, so the summary says it in one line (a fixture's skip is reported at
    each test's own line)."""
    if isinstance(CITUS_SERVER, str):
        pytest.skip(CITUS_SERVER)


class CitusDatabases(Databases):
    """The session's Databases on a Citus cluster: each is made on every node, and its coordinator's
    DSN returned."""

    def __init__(self, cluster: CitusCluster) -> None:
        super().__init__(cluster.admin_dsn)
        self.cluster = cluster

    def create(self, prefix: str = "optiinfra_test") -> str:
        return self.cluster.create_database(prefix)

    def drop_all(self) -> None:
        self.cluster.drop_all()


@pytest.fixture(scope="session")
def citus(request: pytest.FixtureRequest) -> Iterator[CitusCluster]:
    """The worker's Citus cluster."""
    started = time.monotonic()
    with citus_cluster() as cluster:
        announce(
            request.config,
            f"using PostgreSQL from a Citus cluster (a coordinator and two workers, PostgreSQL {cluster.version},"
            f" up in {time.monotonic() - started:.1f} s)",
        )
        yield cluster


@pytest.fixture(scope="session")
def databases(citus: CitusCluster) -> Iterator[Databases]:
    """Factory of fresh databases on the worker's Citus cluster."""
    dbs = CitusDatabases(citus)
    try:
        yield dbs
    finally:
        dbs.drop_all()
