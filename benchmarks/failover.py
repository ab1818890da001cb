"""Failovers under load: a pg_auto_failover formation of its own (tests/pg.py `formation`: a
monitor, a primary and two standbys from pg_autoctl, each commit waiting for one of them, tuned
for short failovers), 32 agents running workflows (create with an idempotency key, start,
complete) and a live-events subscriber on one Store opened on the formation's multi-host URI. Each round runs the load, then
fails over (planned: `pg_autoctl perform failover`; unplanned: kill -9 of the primary's keeper and
postmaster, the killed node rejoining afterwards, outside the measure), then runs on. The outage is
the longest time without an acknowledged write from the fault to the end of the round; throughput
is acknowledged writes per second in the 2 s before the fault and in the 3 s after the outage."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from optiinfra_store import Store
from tests.pg import Formation, formation
from tests.reliability.failover_load import Load, check, longest_gap, setup

AGENTS = 32


def _rate(times: list[float], start: float, end: float) -> float:
    return sum(1 for t in times if start <= t < end) / (end - start)


async def _round(cluster: Formation, load: Load, kind: str) -> dict[str, Any]:
    load.start()
    await asyncio.sleep(3.0)
    await asyncio.to_thread(cluster.synchronous)  # a fault in wait_primary may lose writes (README)
    fault = time.monotonic()
    if kind == "planned":
        await asyncio.to_thread(cluster.perform_failover)
        killed = None
    else:
        killed = await asyncio.to_thread(cluster.kill_primary)
        await asyncio.to_thread(cluster.wait_new_primary, killed)
    await asyncio.sleep(1.0)
    while time.monotonic() - load.ledger.ack_times[-1] > 0.5:  # until writes flow again
        await asyncio.sleep(0.1)
    await asyncio.sleep(4.0)
    end = time.monotonic()
    await load.stop()
    times = load.ledger.ack_times
    outage = longest_gap(times, fault, end)
    gap_end = fault + longest_gap_end(load, fault)
    report = await check(cluster.uri, load.customer_id, load.ledger, load.subscriber)
    if killed is not None:
        await asyncio.to_thread(cluster.rejoin, killed)
    return {
        "kind": kind,
        "outage_s": outage,
        "before_per_s": _rate(times, fault - 2.0, fault),
        "after_per_s": _rate(times, gap_end + 0.5, gap_end + 3.5),
        "lost": len(report.lost),
        "duplicated": len(report.duplicated),
        "taken_back": len(report.taken_back),
        "missed": len(report.missed),
        "repeated": len(report.repeated),
        "subscriber_error": report.subscriber_error,
    }


def longest_gap_end(load: Load, fault: float) -> float:
    """Seconds from the fault to the end of the longest stretch without an acknowledged write."""
    points = [fault, *sorted(t for t in load.ledger.ack_times if t > fault)]
    gaps = [(b - a, b) for a, b in zip(points, points[1:], strict=False)]
    return max(gaps)[1] - fault if gaps else 0.0


async def run(*, failovers: int = 5) -> dict[str, Any]:
    began = time.monotonic()
    with formation() as cluster:
        created = time.monotonic() - began
        async with Store.connect(cluster.uri, min_size=2, max_size=16) as store:
            customer_id, agent_ids = await setup(store, AGENTS)
            load = Load(store, customer_id, agent_ids)
            await load.subscribe()
            rounds = []
            try:
                for kind in ("planned", "unplanned"):
                    for i in range(failovers):
                        rounds.append(await _round(cluster, load, kind))
                        r = rounds[-1]
                        print(
                            f"{kind} {i + 1}: outage {r['outage_s']:.2f} s, {r['before_per_s']:.0f}/s before, "
                            f"{r['after_per_s']:.0f}/s after",
                            flush=True,
                        )
            finally:
                await load.close()
            ledger = load.ledger
    summary: dict[str, Any] = {}
    for kind in ("planned", "unplanned"):
        mine = [r for r in rounds if r["kind"] == kind]
        outages = [r["outage_s"] for r in mine]
        summary[kind] = {
            "failovers": len(mine),
            "outage_median_s": statistics.median(outages),
            "outage_worst_s": max(outages),
            "before_per_s": statistics.median(r["before_per_s"] for r in mine),
            "after_per_s": statistics.median(r["after_per_s"] for r in mine),
        }
    return {
        "agents": AGENTS,
        "formation_up_s": created,
        "rounds": rounds,
        "summary": summary,
        "acknowledged": ledger.acknowledged,
        "unknown": ledger.unknown,
        "errors": dict(ledger.errors),
        "lost": sum(r["lost"] for r in rounds),
        "duplicated": sum(r["duplicated"] for r in rounds),
        "taken_back": sum(r["taken_back"] for r in rounds),
        "missed": sum(r["missed"] for r in rounds),
        "repeated": sum(r["repeated"] for r in rounds),
        "subscriber_errors": [r["subscriber_error"] for r in rounds if r["subscriber_error"]],
    }


def describe(result: dict[str, Any]) -> str:
    lines = [
        f"{kind}: {s['failovers']} failovers, outage median {s['outage_median_s']:.2f} s, worst "
        f"{s['outage_worst_s']:.2f} s; {s['before_per_s']:.0f} writes/s before, {s['after_per_s']:.0f} after"
        for kind, s in result["summary"].items()
    ]
    lines.append(
        f"{result['acknowledged']:,} acknowledged writes, {result['unknown']} unknown outcomes; lost "
        f"{result['lost']}, duplicated {result['duplicated']}; events taken back {result['taken_back']}, "
        f"missed {result['missed']}, repeated {result['repeated']}"
    )
    return "\n".join(lines)


def markdown(result: dict[str, Any]) -> str:
    def spread(kind: str, key: str) -> str:
        values = [r[key] for r in result["rounds"] if r["kind"] == kind]
        return f"{statistics.median(values):.0f} ({min(values):.0f}-{max(values):.0f})"

    rows = "\n".join(
        f"| {kind} | {s['failovers']} | {s['outage_median_s']:.1f} | {s['outage_worst_s']:.1f} | "
        f"{spread(kind, 'before_per_s')} | {spread(kind, 'after_per_s')} |"
        for kind, s in result["summary"].items()
    )
    return f"""## Failovers

`python -m benchmarks failover`: a pg_auto_failover formation on this machine (monitor, primary and
two standbys from `pg_autoctl` with `number-sync-standbys 1`, PostgreSQL 15, the settings of `tests/pg.py`: README,
"Against a pg_auto_failover formation"), {result["agents"]} agents running workflows (create with an
idempotency key, start, complete) and a live-events subscriber on one Store opened on the
formation's multi-host URI. Planned: `pg_autoctl perform failover`; unplanned: kill -9 of the
primary's keeper and postmaster (the killed node rejoins between rounds, outside the measure).
Outage: the longest time without an acknowledged write from the fault on; writes per second
(acknowledged: each create, start and complete) in the 2 s before the fault and 3 s after the outage.

| failover | rounds | outage median, s | outage worst, s | writes/s before: median (range) | writes/s after |
|---|---:|---:|---:|---:|---:|
{rows}

Over all rounds: {result["acknowledged"]:,} acknowledged writes, {result["unknown"]} write attempts
that failed with an unknown outcome (`StoreUnavailable`: counted, never acknowledged, and retried:
a create with its key, a transition after reading it back); lost **{result["lost"]}**, applied twice **{result["duplicated"]}**; the subscriber:
transitions taken back by a failover **{result["taken_back"]}**, missed **{result["missed"]}**,
delivered twice **{result["repeated"]}**. After an unplanned failover the new primary has one standby until
the killed node rejoins (between rounds); its outage includes the monitor's election, in which
both standbys report their WAL position before one is promoted. The formation's four servers, the
monitor's probes and the load share the machine's 2 cores: the outages are the figures to compare.
"""
