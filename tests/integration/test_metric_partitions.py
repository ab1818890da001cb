"""agent_metrics partitioned by day: partitions kept ahead by maintain(), a default partition that
catches every other point (filed into a partition of its own by the next maintain()), retention
that drops whole days, and the migration that converts a table already holding points."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta

import psycopg
import pytest
from psycopg import sql

from optiinfra_store import migrations
from optiinfra_store.commands import cli
from optiinfra_store.errors import AccessDenied, InvalidArgument
from optiinfra_store.records import AgentCreate, AgentMetricCreate
from optiinfra_store.store import Store

TODAY = datetime.now(UTC).date()


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def partitions(dsn: str) -> dict[str, tuple[datetime | None, datetime | None]]:
    """{partition: (lower bound, upper bound)}; the default partition as (None, None)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT partition::text, lower_bound, upper_bound FROM optiinfra_metric_partitions()")
        return {name: (lower, upper) for name, lower, upper in rows}


def placement(dsn: str) -> dict[str, str]:
    """{metric name: the partition holding its point}, each partition read by name (on a Citus
    cluster a row's tableoid is its shard's, on a worker)."""
    with psycopg.connect(dsn) as conn:
        names = [row[0] for row in conn.execute("SELECT partition::text FROM optiinfra_metric_partitions()")]
        return {
            metric: name
            for name in names
            for (metric,) in conn.execute(sql.SQL("SELECT metric_name FROM {}").format(sql.Identifier(name)))
        }


def day_partition(day: date) -> str:
    return f"agent_metrics_p{day:%Y%m%d}"


@pytest.fixture
async def fresh(scratch_dsn):
    """A store on a database of its own: these tests create and drop partitions."""
    migrations.apply(scratch_dsn)
    async with Store.connect(scratch_dsn) as store:
        yield store, scratch_dsn


async def make_agent(store):
    return await store.agents.create(AgentCreate(type="cost", name="partitioned", version="1"))


async def record(store, agent, **points: datetime) -> None:
    await store.agent_metrics.record_many(
        [
            AgentMetricCreate(agent_id=agent.id, metric_name=name, metric_value=1.0, collection_timestamp=at)
            for name, at in points.items()
        ]
    )


async def test_migration__partitions_from_today_to_a_week_ahead_and_a_default(fresh):
    _, dsn = fresh
    found = partitions(dsn)
    assert found.pop("agent_metrics_default") == (None, None)
    assert found == {
        day_partition(TODAY + timedelta(days=n)): (
            midnight(TODAY + timedelta(days=n)),
            midnight(TODAY + timedelta(days=n + 1)),
        )
        for n in range(8)
    }


async def test_maintain__creates_partitions_ahead_once(fresh):
    store, dsn = fresh
    assert (await store.maintain(metric_days_ahead=10)).metric_partitions_created == 3
    assert (await store.maintain(metric_days_ahead=10)).metric_partitions_created == 0
    assert day_partition(TODAY + timedelta(days=10)) in partitions(dsn)
    assert day_partition(TODAY + timedelta(days=11)) not in partitions(dsn)


async def test_maintain__concurrent_runs_create_each_partition_once(fresh):
    store, dsn = fresh
    async with Store.connect(dsn) as other:
        reports = await asyncio.gather(*(s.maintain(metric_days_ahead=30) for s in (store, other) * 3))
    assert sum(r.metric_partitions_created for r in reports) == 23
    assert len(partitions(dsn)) == 1 + 31


async def test_a_point_outside_every_partition__lands_in_the_default_and_maintain_files_it(fresh):
    store, dsn = fresh
    agent = await make_agent(store)
    future = midnight(TODAY + timedelta(days=40)) + timedelta(hours=5)
    past = datetime(2020, 2, 29, 23, 59, 59, 999999, tzinfo=UTC)
    await record(store, agent, future=future, past=past, now=datetime.now(UTC))
    assert placement(dsn) == {
        "future": "agent_metrics_default",
        "past": "agent_metrics_default",
        "now": day_partition(datetime.now(UTC).date()),
    }
    before = {p.id for p in await store.agent_metrics.list(agent_id=agent.id)}

    assert (await store.maintain()).metric_partitions_created == 2
    assert placement(dsn) == {
        "future": day_partition(future.date()),
        "past": day_partition(date(2020, 2, 29)),
        "now": day_partition(datetime.now(UTC).date()),
    }
    assert {p.id for p in await store.agent_metrics.list(agent_id=agent.id)} == before
    assert partitions(dsn)[day_partition(date(2020, 2, 29))] == (
        midnight(date(2020, 2, 29)),
        midnight(date(2020, 3, 1)),
    )


async def test_purge__drops_whole_days_and_deletes_only_inside_the_boundary_day(fresh):
    store, dsn = fresh
    agent = await make_agent(store)
    days = [TODAY - timedelta(days=n) for n in (5, 4, 3)]
    points = {}
    for day in days:
        start = midnight(day)
        points |= {
            f"{day}-start": start,
            f"{day}-noon": start + timedelta(hours=12),
            f"{day}-last": start + timedelta(days=1, microseconds=-1),
        }
    await record(store, agent, **points)
    await store.maintain()  # files the three days into partitions of their own
    cutoff = midnight(days[2]) + timedelta(hours=12)  # noon of the third day

    assert await store.agent_metrics.purge(cutoff, dry_run=True) == 7
    assert await store.agent_metrics.purge(cutoff, batch_size=1) == 7
    left = placement(dsn)
    assert set(left) == {f"{days[2]}-noon", f"{days[2]}-last"}  # a point exactly at the cutoff stays
    assert day_partition(days[0]) not in partitions(dsn) and day_partition(days[1]) not in partitions(dsn)
    assert day_partition(days[2]) in partitions(dsn)  # the boundary day is kept, with what it still holds
    assert await store.agent_metrics.purge(cutoff) == 0


async def test_purge__also_reaches_points_the_default_partition_holds(fresh):
    store, dsn = fresh
    agent = await make_agent(store)
    await record(store, agent, old=datetime(2021, 5, 1, tzinfo=UTC), older=datetime(2021, 4, 1, tzinfo=UTC))
    assert await store.agent_metrics.purge(datetime(2021, 4, 15, tzinfo=UTC)) == 1
    assert placement(dsn) == {"old": "agent_metrics_default"}


async def test_maintain__platform_work_with_checked_arguments(
    fresh,
):
    store, _ = fresh
    with pytest.raises(AccessDenied):
        await store.for_customer("00000000-0000-4000-8000-000000000001").maintain()
    for bad in (-1, 367, 1.5, True, None):
        with pytest.raises(InvalidArgument):
            await store.maintain(metric_days_ahead=bad)


async def test_cli_maintain(fresh, capsys):
    _, dsn = fresh
    code = await asyncio.to_thread(cli.main, ["maintain", "--dsn", dsn])
    assert code == 0 and capsys.readouterr().out == (
        "maintained: 0 metric partitions created, 0 hours of workflow history rolled up\n"
    )


# -- the migration ---------------------------------------------------------------------------------


def plain_table_with_points(dsn: str, points: int) -> list[tuple]:
    """Roll the conversion back and fill the plain table: points one minute apart up to now, and one
    ten days ahead. Returns every row."""
    migrations.apply(dsn)
    while migrations.rollback(dsn) != ["0013_partitioned_metrics"]:  # and whatever came after it
        pass
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT relkind FROM pg_class WHERE oid = 'agent_metrics'::regclass").fetchone()[0] == "r"
        agent = conn.execute(
            "INSERT INTO agents (type, name, version) VALUES ('cost', 'a', '1') RETURNING id"
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO agent_metrics (agent_id, metric_name, metric_value, collection_timestamp)"
            " SELECT %s, 'm' || g, g, now() - g * interval '1 minute' FROM generate_series(1, %s) g",
            (agent, points),
        )
        conn.execute(
            "INSERT INTO agent_metrics (agent_id, metric_name, metric_value, collection_timestamp)"
            " VALUES (%s, 'ahead', 0, now() + interval '10 days')",
            (agent,),
        )
        return rows(conn)


def rows(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT id, agent_id, metric_name, metric_value, collection_timestamp, metadata, created_at"
        " FROM agent_metrics ORDER BY id"
    ).fetchall()


def test_migration__a_table_holding_points_becomes_the_first_partition_without_a_copy(scratch_dsn):
    before = plain_table_with_points(scratch_dsn, 5000)
    with psycopg.connect(scratch_dsn) as conn:
        old_table = conn.execute("SELECT relfilenode FROM pg_class WHERE relname = 'agent_metrics'").fetchone()[0]

    assert migrations.apply(scratch_dsn)[0] == "0013_partitioned_metrics"
    with psycopg.connect(scratch_dsn) as conn:
        assert rows(conn) == before
        legacy = conn.execute("SELECT relfilenode FROM pg_class WHERE relname = 'agent_metrics_legacy'").fetchone()[0]
        assert legacy == old_table  # the same file: attached, not rewritten
        held = dict(conn.execute("SELECT tableoid::regclass::text, count(*) FROM agent_metrics GROUP BY 1").fetchall())
    assert held == {"agent_metrics_legacy": 5001}
    found = partitions(scratch_dsn)
    lower, upper = found.pop("agent_metrics_legacy")
    ahead = TODAY + timedelta(days=10)
    assert lower is None and upper == midnight(ahead + timedelta(days=2))  # past the newest point's day
    assert found.pop("agent_metrics_default") == (None, None)
    assert found == {}  # the week ahead lies inside the old table's range


async def test_migration__purge_drops_the_old_table_whole_once_its_range_is_past(scratch_dsn):
    plain_table_with_points(scratch_dsn, 100)
    migrations.apply(scratch_dsn)
    _, upper = partitions(scratch_dsn)["agent_metrics_legacy"]
    async with Store.connect(scratch_dsn) as store:
        assert await store.agent_metrics.purge(upper) == 101
    assert "agent_metrics_legacy" not in partitions(scratch_dsn)


def test_migration__rollback_puts_every_point_back_in_one_table(scratch_dsn):
    before = plain_table_with_points(scratch_dsn, 300)
    migrations.apply(scratch_dsn)
    with psycopg.connect(scratch_dsn) as conn:
        agent = before[0][1]
        conn.execute(
            "INSERT INTO agent_metrics (agent_id, metric_name, metric_value, collection_timestamp)"
            " VALUES (%s, 'default', 0, '2001-01-01'), (%s, 'later', 0, now() + interval '13 days')",
            (agent, agent),
        )
        conn.commit()
        after = rows(conn)
    assert len(after) == len(before) + 2
    while migrations.rollback(scratch_dsn) != ["0013_partitioned_metrics"]:
        pass
    with psycopg.connect(scratch_dsn) as conn:
        assert rows(conn) == after
        assert conn.execute("SELECT relkind FROM pg_class WHERE oid = 'agent_metrics'::regclass").fetchone()[0] == "r"
