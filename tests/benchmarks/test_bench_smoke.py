"""Keeps benchmarks/ from rotting: every operation of every stack once, at tiny sizes.

The store and raw asyncpg stacks need nothing beyond the test extra; the ORM stack needs
sqlalchemy (the `bench` extra) and is skipped without it. Numbers are not checked, only that
each operation ran, without errors, and that the report and the scale measurements render.
"""

from __future__ import annotations

import dataclasses
import os

import psycopg
import pytest

from benchmarks import generate, report, runner, scale
from optiinfra_store import migrations


def _assert_every_operation_ran(result: dict, stacks: tuple[str, ...]) -> None:
    for op in runner.OPERATIONS:
        for stack in stacks:
            if runner.method_of(op, stack) is None:
                continue
            samples = result["samples"][op.name].get(stack)
            assert samples, f"{op.name} did not run on {stack}"
            assert all(s.units > 0 and s.errors == 0 for s in samples), (op.name, stack, samples)


async def _run(dsn: str, stacks: tuple[str, ...]) -> dict:
    config = dataclasses.replace(runner.TINY, stacks=stacks)
    result = await runner.run(dsn, config, log=lambda message: None)
    _assert_every_operation_ran(result, stacks)
    document = report.build(result, config, report.machine(dsn), wall_seconds=0.0)
    assert "get by id" in report.table(document)
    return document


async def test_compare__store_and_raw_run_every_operation(clean_dsn):
    document = await _run(clean_dsn, ("store", "raw"))
    assert "store/raw" in document["operations"]["get_execution"]["ratios"]


async def test_compare__orm_runs_every_operation(clean_dsn):
    pytest.importorskip("sqlalchemy")
    await _run(clean_dsn, ("orm",))


async def test_scale__generated_history_respects_the_schema_and_is_measured(clean_dsn):
    history = scale.load_history(clean_dsn, executions=200, metrics=1_000)
    assert history["rows"]["executions"] == 200
    assert history["rows"]["steps"] == 1_000
    assert history["rows"]["artifacts"] == 400
    with generate.connect(clean_dsn) as conn:  # the transition triggers are on again
        assert (
            conn.execute(
                """SELECT count(*) FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
                WHERE p.proname = 'optiinfra_record_transition' AND t.tgenabled = 'D'"""
            ).fetchone()[0]
            == 0
        )
    measured = await scale.measure(clean_dsn, 200)
    assert set(scale.QUERIES) <= set(measured["timings"])
    assert measured["timings"]["purge_executions"]["executions"] > 0
    assert "Execution Time" in measured["plans"]["statistics"]


async def test_tracing__every_way_runs_and_a_get_makes_one_span(clean_dsn):
    from benchmarks import tracing

    result = await tracing.run(clean_dsn, rounds=1, calls=3)
    assert set(result["per_second"]) == set(tracing.WAYS)
    assert result["span"] == ["workflow_executions.get_by_id"]
    assert result["ratio"]["no tracer"] == 1.0
    assert set(result["executor_alone_us"]) == set(tracing.WAYS) - {"raw"}
    assert "SDK, batch" in tracing.describe(result) and "| SDK, in-memory |" in tracing.markdown(result)


async def test_confinement__every_way_in_runs(databases, clean_dsn):
    from benchmarks import confinement

    result = await confinement.run(clean_dsn, databases.admin_dsn, rounds=1, calls=3)
    assert set(result["per_second"]) == set(confinement.WAYS)
    assert all(value > 0 for value in result["per_second"].values())
    assert "app confined" in confinement.describe(result) and "| app confined |" in confinement.markdown(result)


async def test_partitions__both_tables_take_the_points(databases):
    from benchmarks import partitions

    partitioned, plain = databases.create(), databases.create()
    migrations.apply(partitioned)
    migrations.apply(plain)
    result = await partitions.run(partitioned, plain, rounds=2, count=50)
    assert set(result["per_second"]) == set(partitions.WAYS) and result["ratio"] > 0
    for dsn, kind in ((partitioned, "p"), (plain, "r")):
        with psycopg.connect(dsn) as conn:
            assert (
                conn.execute("SELECT relkind FROM pg_class WHERE oid = 'agent_metrics'::regclass").fetchone()[0] == kind
            )
            assert (
                conn.execute("SELECT count(*) FROM agent_metrics").fetchone()[0] == 50 + 2 * 50
            )  # the warm-up, then two rounds
    assert "| ratio |" in partitions.markdown(result)


async def test_pooler__both_ways_in_run_workflows(clean_dsn):
    from benchmarks import pooler

    result = await pooler.run(clean_dsn, rounds=1, agents=3, workflows=2)
    assert result["errors"] == {"pgbouncer": 0, "direct": 0} and result["ratio"] > 0
    assert "| pgbouncer, transaction mode |" in pooler.markdown(result)


async def test_citus__the_workflows_run_and_are_routed_on_the_cluster():
    from benchmarks import citus

    try:
        result = await citus.run(
            agents=2,
            customers=2,
            workflows=1,
            rounds=1,
            confined_calls=5,
            analytics_executions=20,
            analytics_calls=2,
            log=lambda message: None,
        )
    except citus.Unavailable as exc:  # no Citus for this machine's PostgreSQL
        pytest.skip(str(exc))
    assert result["error_count"] == {"one server": 0, "citus": 0}
    assert all(check["ok"] for check in result["checks"].values()), result["checks"]
    routes = result["routes"]
    # the agents' store made every row it calls by id: it names each row's customer, reads included
    assert routes["workflow_executions.insert"]["single_shard"] and routes["workflow_steps.start"]["single_shard"]
    assert routes["workflow_executions.get_detail"]["single_shard"]
    assert "workflow_executions.customer_of" not in routes and result["single_shard_share"] == 1
    assert "| `workflow_executions.get_detail` |" in citus.markdown(result)
    assert result["confined_get"]["citus"]["confined"]["median_ms"] > 0  # confined calls run on the coordinator
    assert "### A confined get" in citus.markdown(result)
    analytics = result["analytics"]
    assert analytics["one server"]["one_customer_total"] == analytics["citus"]["one_customer_total"] == 20
    assert analytics["operations"]["trend, every customer"]["citus"]["median_ms"] > 0
    assert analytics["operations"]["statistics, one customer"]["citus_tasks"] == 1  # one node's task
    assert analytics["operations"]["statistics, every customer"]["citus_tasks"] > 1
    assert "### Analytics" in citus.markdown(result)


async def test_replicas__reads_and_writes_run_on_both_servers():
    from benchmarks import replicas

    result = await replicas.run(seconds=0.3, batch=200, executions=200)
    assert result["statistics_per_second"]["alone"] > 0 and result["points_per_second"]["during the reads"] > 0
    assert "| statistics() on the replica, calls/s |" in replicas.markdown(result)


async def test_http__every_route_both_ways_and_idle_subscribers(databases, clean_dsn):
    """The HTTP benchmark at a tiny size: a real `serve` process driven by wrk."""
    import shutil

    from benchmarks import http

    if shutil.which("wrk") is None and not os.environ.get("OPTIINFRA_REQUIRE_TOOLS"):
        pytest.skip("wrk is not installed (apt-get install wrk)")
    result = await http.run(
        clean_dsn, databases.admin_dsn, rounds=1, seconds=1.0, customers=2, executions=12, idle_subscribers=10
    )
    assert set(result["medians"]) == set(http.ROUTES)
    assert all(way["per_second"] > 0 for ways in result["medians"].values() for way in ways.values())
    assert result["idle"]["fanout_streams"] == 5
    assert "## HTTP service" in http.markdown(result)
