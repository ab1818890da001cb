"""Command line: `python -m benchmarks [compare|scale|profile] [options]` (see --help)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import report, runner
from benchmarks.database import admin_server, fresh_database


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="optiinfra_store vs raw asyncpg (same SQL) vs the SQLAlchemy ORM, on a database of its own.",
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="compare",
        choices=[
            "compare",
            "scale",
            "profile",
            "hotpath",
            "confinement",
            "analytics",
            "partitions",
            "pooler",
            "replicas",
            "http",
            "tracing",
            "failover",
            "citus",
        ],
        help="compare the stacks (default); scale: history at 10k/100k/1M executions; "
        "profile: where the store's time goes on get(); hotpath: the store against raw asyncpg building "
        "the same records, and a confined get against an unconfined one; analytics: performance() on "
        "an untidy history at 20k and 200k executions; confinement: what "
        "for_customer() costs a get(); partitions: record_many into the partitioned metrics table "
        "against the plain one; pooler: concurrent workflows through pgbouncer against direct; "
        "replicas: statistics from a replica while the primary takes a bulk load; http: the "
        "workflow-history service's routes beside the same store calls, and idle event streams; tracing: "
        "get() with no tracer, the OpenTelemetry API alone, and the SDK recording spans; failover: "
        "planned and unplanned failovers of a pg_auto_failover formation under load (outage, writes/s); citus: the workflow load on one "
        "server against a Citus coordinator with two workers (latency, throughput, statements by shard, a confined get, analytics)",
    )
    parser.add_argument(
        "--dsn",
        help="a server to create the benchmark database on (default: $OPTIINFRA_TEST_DSN, else an embedded server)",
    )
    parser.add_argument("--quick", action="store_true", help="compare: fewer rounds and smaller sizes (about a minute)")
    parser.add_argument("--rounds", type=int, help="compare: rounds (default 5, quick 3)")
    parser.add_argument("--json", metavar="PATH", help="compare / scale: also write the results as JSON")
    parser.add_argument("--no-orm", action="store_true", help="compare: skip the ORM stack")
    parser.add_argument(
        "--sizes",
        default="10000,100000,1000000",
        help="scale: execution counts, comma-separated (default 10000,100000,1000000)",
    )
    parser.add_argument(
        "--metrics-per-execution",
        type=int,
        default=10,
        help="scale: metric points generated per execution (default 10: 10M at 1M)",
    )
    parser.add_argument(
        "--no-write",
        action="store_true",
        help="full compare, scale, profile: do not rewrite benchmarks/RESULTS.md and results/",
    )
    parser.add_argument("--calls", type=int, default=20_000, help="profile: get() calls (default 20000)")
    return parser


def _report(args: argparse.Namespace, module: Any, name: str, result: dict[str, Any]) -> int:
    """Print a one-section benchmark's result; write it to --json, and its section of RESULTS.md
    on a full run (not --quick, --no-write or --rounds)."""
    print(module.describe(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    if not args.quick and not args.no_write and args.rounds is None:
        report.write_section(Path(__file__).parent / "RESULTS.md", name, module.markdown(result))
        print(f"wrote the {name} section of RESULTS.md")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    began = time.perf_counter()
    if args.command == "replicas":  # servers of its own
        from benchmarks import replicas

        return _report(args, replicas, "replicas", asyncio.run(replicas.run(seconds=5.0 if args.quick else 15.0)))
    if args.command == "failover":  # a formation of its own
        from benchmarks import failover

        return _report(args, failover, "failover", asyncio.run(failover.run(failovers=1 if args.quick else 5)))
    if args.command == "citus":  # a server and a cluster of its own
        from benchmarks import citus

        options: dict[str, Any] = (
            {"agents": 8, "workflows": 2, "rounds": 1, "analytics_executions": 300, "analytics_calls": 5}
            if args.quick
            else {}
        )
        try:
            result = asyncio.run(citus.run(**options))
        except citus.Unavailable as exc:
            print(f"citus: {exc}")
            return 1
        return _report(args, citus, "citus", result)
    with admin_server(args.dsn) as (admin_dsn, origin):
        print(f"PostgreSQL from {origin}", flush=True)
        rounds = args.rounds or (3 if args.quick else 5)
        if args.command == "scale":
            from benchmarks import scale

            sizes = [int(s.replace("_", "")) for s in args.sizes.split(",")]
            scale.run(
                admin_dsn,
                sizes,
                metrics_per_execution=args.metrics_per_execution,
                json_path=args.json,
                write=not args.no_write,
            )
            return 0
        if args.command == "analytics":
            from benchmarks import analytics

            sizes = (2_000, 20_000) if args.quick else (20_000, 200_000)
            return _report(args, analytics, "analytics", analytics.run(admin_dsn, sizes))
        if args.command == "partitions":
            from benchmarks import partitions

            with fresh_database(admin_dsn) as partitioned_dsn, fresh_database(admin_dsn) as plain_dsn:
                result = asyncio.run(partitions.run(partitioned_dsn, plain_dsn, rounds=rounds))
            return _report(args, partitions, "partitions", result)
        with fresh_database(admin_dsn) as dsn:
            if args.command == "pooler":
                from benchmarks import pooler

                result = asyncio.run(pooler.run(dsn, rounds=args.rounds or (2 if args.quick else 3)))
                return _report(args, pooler, "pooler", result)
            if args.command == "http":
                from benchmarks import http

                options = {"rounds": 1, "seconds": 2.0, "customers": 3, "executions": 100} if args.quick else {}
                result = asyncio.run(http.run(dsn, admin_dsn, **options))
                return _report(args, http, "http", result)
            if args.command == "hotpath":
                from benchmarks import hotpath

                result = asyncio.run(hotpath.run(dsn, admin_dsn, quick=args.quick))
                return _report(args, hotpath, "hotpath", result)
            if args.command == "tracing":
                from benchmarks import tracing

                calls = 500 if args.quick else 2_000
                result = asyncio.run(tracing.run(dsn, rounds=rounds, calls=calls))
                return _report(args, tracing, "tracing", result)
            if args.command == "confinement":
                from benchmarks import confinement

                calls = 500 if args.quick else 2_000
                result = asyncio.run(confinement.run(dsn, admin_dsn, rounds=rounds, calls=calls))
                return _report(args, confinement, "confinement", result)
            if args.command == "profile":
                from benchmarks import profile

                asyncio.run(profile.run(dsn, args.calls, write=not args.no_write))
                return 0
            return _compare(args, dsn, began)


def _compare(args: argparse.Namespace, dsn: str, began: float) -> int:
    config = runner.QUICK if args.quick else runner.FULL
    if args.rounds:
        config = dataclasses.replace(config, rounds=args.rounds)
    if args.no_orm or importlib.util.find_spec("sqlalchemy") is None:
        if not args.no_orm:
            print("sqlalchemy is not installed (pip install '.[bench]'): running without the ORM stack")
        config = dataclasses.replace(config, stacks=("store", "raw"))

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - began:5.0f} s] {message}", flush=True)

    machine = report.machine(dsn)  # before the run: the commit whose code is loaded
    result = asyncio.run(runner.run(dsn, config, log=log))
    document = report.build(result, config, machine, time.perf_counter() - began)
    print()
    print(report.describe(document))
    print()
    print(report.table(document))
    print()
    print(report.targets_table(document))
    if args.json:
        report.write_json(document, args.json)
        print(f"\nwrote {args.json}")
    if not args.quick and not args.no_write and args.rounds is None and config.stacks == runner.FULL.stacks:
        results = Path(__file__).parent / "results"
        report.write_json(document, results / "compare.json")
        report.write_section(Path(__file__).parent / "RESULTS.md", "compare", report.markdown(document))
        print(f"wrote {results / 'compare.json'} and the compare section of RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
