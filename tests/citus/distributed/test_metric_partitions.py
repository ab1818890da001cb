from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql

from tests.integration.test_metric_partitions import *  # noqa: F403

# These convert a plain agent_metrics (0013) on a database that is never distributed, one server's
# path: a cluster's schema is migrated before `distribute` places the table 0013 made, and
# tests/citus/test_integration_metric_partitions.py runs them on the coordinator.
del test_migration__a_table_holding_points_becomes_the_first_partition_without_a_copy  # noqa: F821
del test_migration__purge_drops_the_old_table_whole_once_its_range_is_past  # noqa: F821
del test_migration__rollback_puts_every_point_back_in_one_table  # noqa: F821


@pytest.fixture
async def fresh(store, clean_dsn):
    """In place of the module's: the distributed database, with its partitions as the migrations
    left them (today to a week ahead, and the default). A database of the test's own would be
    migrated and distributed for each test, a minute on a cluster."""
    today = datetime.now(UTC).date()
    keep = {f"agent_metrics_p{today + timedelta(days=n):%Y%m%d}" for n in range(8)} | {"agent_metrics_default"}
    with psycopg.connect(clean_dsn, autocommit=True) as conn:
        made = [row[0] for row in conn.execute("SELECT partition::text FROM optiinfra_metric_partitions()")]
        for name in sorted(set(made) - keep):
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
        conn.execute("SELECT optiinfra_maintain_metric_partitions(7)")
    return store, clean_dsn
