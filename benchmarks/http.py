"""The workflow-history service over HTTP beside the same store call without it, in one run.

The service runs as `optiinfra-store serve` in a process of its own, under an application login
role, every request confined to the token's customer; `wrk` (Debian's package) drives it with 1
and 32 connections. The store side is the same call on a confined store of the same role, from
1 and 32 concurrent tasks in this process. Rounds interleave the two. Then: the server's
connections and resident memory with 0 and with 500 idle event-stream subscribers, and how long
one transition takes to reach all 500.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from optiinfra_store import Store
from optiinfra_store.api import issue_token
from optiinfra_store.enums import AgentType, StepStatus, WorkflowStatus, WorkflowType
from optiinfra_store.records import AgentCreate, CustomerCreate, WorkflowExecutionCreate, WorkflowStepCreate
from tests.pg import app_login, free_port

APP_LOGIN = "optiinfra_bench_service"
SECRET = "benchmark-secret-of-at-least-32-bytes"
ROUTES = ("history", "details", "statistics", "performance", "type history")
CLIENTS = (1, 32)
SUBSCRIBERS = 500
POOL_SIZE = 20


async def load(owner: Store, customers: int, executions: int) -> list[tuple[uuid.UUID, list[uuid.UUID]]]:
    """`customers` customers with `executions` finished executions each (4 steps, one retried)."""
    agent = await owner.agents.create(AgentCreate(type=AgentType.PERFORMANCE, name="bench", version="1"))
    now = datetime.now(UTC)
    made = []
    for c in range(customers):
        customer = await owner.customers.create(
            CustomerCreate(name=f"Bench {c}", email=f"{uuid.uuid4().hex}@bench.example")
        )

        async def one(i: int, customer_id: uuid.UUID = customer.id) -> uuid.UUID:
            started = now - timedelta(minutes=5 * i + 3)
            failed = i % 10 == 0
            execution = await owner.workflow_executions.create(
                WorkflowExecutionCreate(
                    agent_id=agent.id,
                    customer_id=customer_id,
                    workflow_type=list(WorkflowType)[i % len(WorkflowType)],
                    status=WorkflowStatus.FAILED if failed else WorkflowStatus.COMPLETED,
                    started_at=started,
                    completed_at=started + timedelta(seconds=30 + i % 90),
                    error_details={"error_type": "Timeout", "error_message": "upstream timed out"} if failed else None,
                )
            )
            await owner.workflow_steps.create_many(
                [
                    WorkflowStepCreate(
                        workflow_execution_id=execution.id,
                        step_name=f"step_{s}",
                        step_order=s,
                        status=StepStatus.COMPLETED,
                        started_at=started + timedelta(seconds=7 * s),
                        completed_at=started + timedelta(seconds=7 * s + 6),
                        retry_count=1 if s == 2 and i % 3 == 0 else 0,
                    )
                    for s in range(1, 5)
                ]
            )
            return execution.id

        ids = []
        for batch in range(0, executions, 50):
            ids += await asyncio.gather(*(one(i) for i in range(batch, min(batch + 50, executions))))
        made.append((customer.id, ids))
    await owner.maintain()
    return made


async def store_rate(call: Callable[[], Awaitable[Any]], clients: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "per_second": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
    }


_WRK_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk_rate(url: str, token: str, clients: int, seconds: float) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            f"-t{min(clients, 2)}",
            f"-c{clients}",
            f"-d{seconds:.0f}s",
            "--latency",
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def latency(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()  # type: ignore[union-attr]
        return float(value) * _WRK_UNITS[unit]

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        raise RuntimeError(f"{url}: {non_2xx.group(1)} error responses")
    return {
        "per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": latency("50%"),
        "p99_ms": latency("99%"),
    }


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def server_connections(owner: Store) -> int:
    async with owner.transaction() as tx:
        count: int = await tx.connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND datname = current_database()"
            " AND application_name <> 'optiinfra-bench'",
            APP_LOGIN,
        )
        return count


async def open_subscriber(port: int, token: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /api/workflows/events HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head[:80]
    return reader, writer


async def subscribers(
    port: int, pid: int, owner: Store, tokens: list[str], customer: uuid.UUID, count: int
) -> dict[str, Any]:
    """Connections and memory with 0 and `count` idle streams, then one transition's fan-out."""

    async def settled_rss() -> int:
        await asyncio.sleep(2.0)
        return rss_kib(pid)

    before = {"connections": await server_connections(owner), "rss_kib": await settled_rss()}
    streams = [await open_subscriber(port, tokens[i % len(tokens)]) for i in range(count)]
    for reader, _ in streams:  # the first frame (retry:) of each
        await reader.readuntil(b"\n\n")
    after = {"connections": await server_connections(owner), "rss_kib": await settled_rss()}
    # one transition of the first customer: how long until every one of its streams has it
    mine = [s for i, s in enumerate(streams) if i % len(tokens) == 0]
    agent = (await owner.agents.list(limit=1))[0]
    began = time.perf_counter()
    await owner.workflow_executions.create(
        WorkflowExecutionCreate(agent_id=agent.id, customer_id=customer, workflow_type=WorkflowType.HEALTH_CHECK)
    )

    async def delivered(reader: asyncio.StreamReader) -> float:
        while b"event: transition" not in await reader.readuntil(b"\n\n"):
            pass
        return time.perf_counter() - began

    arrivals = sorted(await asyncio.wait_for(asyncio.gather(*(delivered(r) for r, _ in mine)), 60))
    for _, writer in streams:
        writer.close()
    return {
        "subscribers": count,
        "before": before,
        "after": after,
        "kib_per_subscriber": (after["rss_kib"] - before["rss_kib"]) / count,
        "fanout_streams": len(mine),
        "fanout_p50_ms": arrivals[len(arrivals) // 2] * 1000,
        "fanout_max_ms": arrivals[-1] * 1000,
    }


def start_server(dsn: str, port: int) -> subprocess.Popen[str]:
    env = {**os.environ, "OPTIINFRA_JWT_SECRET": SECRET}
    env.pop("OPTIINFRA_DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "optiinfra_store.commands.cli", "serve", "--dsn", dsn, "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("serve did not start")
        time.sleep(0.1)


async def run(
    dsn: str,
    admin_dsn: str,
    *,
    rounds: int = 3,
    seconds: float = 4.0,
    customers: int = 10,
    executions: int = 300,
    idle_subscribers: int = SUBSCRIBERS,
) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise RuntimeError("the http benchmark drives the service with wrk: apt-get install wrk")
    app_dsn = app_login(admin_dsn, dsn, APP_LOGIN)
    port = free_port()
    async with (
        Store.connect(dsn, min_size=1, max_size=4) as owner,
        Store.connect(
            app_dsn, min_size=POOL_SIZE, max_size=POOL_SIZE, server_settings={"application_name": "optiinfra-bench"}
        ) as app,
    ):
        made = await load(owner, customers, executions)
        customer, ids = made[0]
        confined = app.for_customer(customer)
        token = issue_token(SECRET, subject="bench", customer_id=customer, ttl_seconds=3600)
        base = f"http://127.0.0.1:{port}"
        kind = WorkflowType.COST_ANALYSIS

        def detail_call() -> Awaitable[Any]:
            async def both() -> Any:
                async with confined.transaction() as tx:
                    await tx.workflow_executions.get_detail(ids[7])
                    return await tx.workflow_executions.history(ids[7])

            return both()

        calls: dict[str, tuple[Callable[[], Awaitable[Any]], str]] = {
            "history": (lambda: confined.workflow_executions.list(limit=50), f"{base}/api/workflows/history"),
            "details": (detail_call, f"{base}/api/workflows/{ids[7]}/details"),
            "statistics": (lambda: confined.workflow_executions.statistics(), f"{base}/api/workflows/statistics"),
            "performance": (
                lambda: confined.workflow_executions.performance(),
                f"{base}/api/workflows/performance-metrics",
            ),
            "type history": (
                lambda: confined.workflow_executions.list(workflow_type=kind, limit=50),
                f"{base}/api/workflows/{kind}/history",
            ),
        }
        server = start_server(app_dsn, port)
        try:
            for call, url in calls.values():  # warm up both sides
                for _ in range(20):
                    await call()
                await asyncio.to_thread(wrk_rate, url, token, 4, 1)
            samples: dict[str, dict[str, list[dict[str, float]]]] = {
                route: {f"{side} x{n}": [] for side in ("store", "http") for n in CLIENTS} for route in ROUTES
            }
            for _ in range(rounds):
                for route, (call, url) in calls.items():
                    for n in CLIENTS:
                        samples[route][f"store x{n}"].append(await store_rate(call, n, seconds))
                        samples[route][f"http x{n}"].append(await asyncio.to_thread(wrk_rate, url, token, n, seconds))
            tokens = [issue_token(SECRET, subject="bench", customer_id=c, ttl_seconds=3600) for c, _ in made]
            idle = await subscribers(port, server.pid, owner, tokens, customer, idle_subscribers)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
    medians = {
        route: {
            way: {key: statistics.median(s[key] for s in runs) for key in ("per_second", "p50_ms", "p99_ms")}
            for way, runs in ways.items()
        }
        for route, ways in samples.items()
    }
    ratios = {
        route: {
            f"x{n}": statistics.median(
                h["per_second"] / s["per_second"]
                for h, s in zip(samples[route][f"http x{n}"], samples[route][f"store x{n}"], strict=True)
            )
            for n in CLIENTS
        }
        for route in ROUTES
    }
    return {
        "rounds": rounds,
        "seconds": seconds,
        "rows": {"customers": customers, "executions_per_customer": executions},
        "pool": POOL_SIZE,
        "medians": medians,
        "ratios": ratios,
        "idle": idle,
    }


def describe(result: dict[str, Any]) -> str:
    lines = [f"{'route':<14} {'way':<10} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'http/store':>10}"]
    for route in ROUTES:
        for way, figures in result["medians"][route].items():
            ratio = f"{result['ratios'][route][way.split()[1]]:.2f}x" if way.startswith("http") else ""
            lines.append(
                f"{route:<14} {way:<10} {figures['per_second']:>8.0f} {figures['p50_ms']:>8.2f} "
                f"{figures['p99_ms']:>8.2f} {ratio:>10}"
            )
    idle = result["idle"]
    lines.append(
        f"{idle['subscribers']} idle subscribers: server connections {idle['before']['connections']} -> "
        f"{idle['after']['connections']}, RSS {idle['before']['rss_kib']} -> {idle['after']['rss_kib']} KiB "
        f"({idle['kib_per_subscriber']:.1f} KiB each); one transition reached {idle['fanout_streams']} streams "
        f"in {idle['fanout_p50_ms']:.0f} ms (median), {idle['fanout_max_ms']:.0f} ms (last)"
    )
    return "\n".join(lines)


def markdown(result: dict[str, Any]) -> str:
    rows = []
    for route in ROUTES:
        m = result["medians"][route]
        cells = []
        for n in CLIENTS:
            s, h = m[f"store x{n}"], m[f"http x{n}"]
            cells.append(
                f"{s['per_second']:,.0f} / {h['per_second']:,.0f} | {result['ratios'][route][f'x{n}']:.2f}x | "
                f"{s['p50_ms']:.2f} / {h['p50_ms']:.2f} | {s['p99_ms']:.2f} / {h['p99_ms']:.2f}"
            )
        rows.append(f"| {route} | {' | '.join(cells)} |")
    idle = result["idle"]
    table = "\n".join(rows)
    return f"""## HTTP service

`python -m benchmarks http`: each route through `optiinfra-store serve` (one uvicorn process,
application login role, every request confined to the token's customer; driven by `wrk`) beside
the same store call on a confined store of the same role (asyncio tasks in one process), both on a
pool of {result["pool"]}; median of {result["rounds"]} interleaved rounds of {result["seconds"]:.0f} s,
{result["rows"]["customers"]} customers x {result["rows"]["executions_per_customer"]} executions
(4 steps each), rollups caught up. Cells are store / HTTP. Target: history and details through
HTTP at 0.5x or more of the store call's throughput at 32 clients.

| route | 1 client: req/s | HTTP/store | p50 ms | p99 ms | 32 clients: req/s | HTTP/store | p50 ms | p99 ms |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
{table}

Statistics and performance at 32 clients are faster through HTTP than the bare call: the
service computes identical requests in flight once and gives every one of them the answer (the
benchmark's clients all ask the same question), where the store call runs each.

Idle event streams: with 0 and with {idle["subscribers"]} subscribers the server held
{idle["before"]["connections"]} and {idle["after"]["connections"]} database connections; its resident
memory went from {idle["before"]["rss_kib"]:,} to {idle["after"]["rss_kib"]:,} KiB,
**{idle["kib_per_subscriber"]:.1f} KiB per subscriber** (target: connections unchanged, under 50 KiB).
One transition reached the {idle["fanout_streams"]} streams of its customer in
{idle["fanout_p50_ms"]:.0f} ms (median) and {idle["fanout_max_ms"]:.0f} ms (last), each stream reading
through its own confined store.
"""
