"""Tables, ratios, targets and the JSON document of a comparison run."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.database import server_version
from benchmarks.runner import OPERATIONS, Config, paired_ratio, summarize

POINT_VS_RAW = 0.85
POINT_VS_ORM = 2.5
BULK_VS_ORM = 10.0
BULK_VS_COPY = 0.8
CONFINED_VS_UNCONFINED = 0.7


def machine(dsn: str) -> dict[str, Any]:
    uname = platform.uname()
    versions = {}
    for package in ("asyncpg", "pydantic", "psycopg", "sqlalchemy"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "commit": _commit(),
        "cpus": os.cpu_count(),
        "uname": f"{uname.system} {uname.release} {uname.machine}",
        "python": platform.python_version(),
        "postgresql": server_version(dsn),
        "packages": versions,
    }


def _commit() -> str | None:
    """The checkout's commit, with "+dirty" when the package has uncommitted changes (read only)."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "--no-optional-locks", "status", "--porcelain", "--", "optiinfra_store", "sql"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{head}+dirty" if dirty else head


def build(result: dict[str, Any], config: Config, machine_info: dict[str, Any], wall_seconds: float) -> dict[str, Any]:
    samples = result["samples"]
    operations: dict[str, Any] = {}
    for op in OPERATIONS:
        by_stack = samples.get(op.name)
        if not by_stack:
            continue
        title = op.title
        if op.kind == "concurrency":
            title = f"{config.agents} agents x {config.workflows} workflows, pool {config.pool_size}"
        entry: dict[str, Any] = {
            "title": title,
            "kind": op.kind,
            "unit": op.unit,
            "stacks": {stack: summarize(s) for stack, s in by_stack.items()},
            "ratios": {},
        }
        store = by_stack.get("store")
        for other in ("raw", "orm"):
            ratio = paired_ratio(store or [], by_stack.get(other, []))
            if ratio is not None:
                entry["ratios"][f"store/{other}"] = ratio
        if op.name == "get_confined":  # the store's confined get against its unconfined one, per round
            ratio = paired_ratio(store or [], samples.get("get_execution", {}).get("store", []))
            if ratio is not None:
                entry["ratios"]["confined/unconfined"] = ratio
        if op.name == "record_many":
            ratio = paired_ratio(store or [], samples.get("record_many_executemany", {}).get("raw", []))
            if ratio is not None:
                entry["ratios"]["store/raw_executemany"] = ratio
        operations[op.name] = entry
    return {
        "config": asdict(config),
        "machine": machine_info,
        "wall_seconds": wall_seconds,
        "operations": operations,
        "targets": targets(operations),
    }


def targets(operations: dict[str, Any]) -> list[dict[str, Any]]:
    checks = []

    def check(name: str, op: str, ratio_name: str, threshold: float) -> None:
        ratio = operations.get(op, {}).get("ratios", {}).get(ratio_name)
        if ratio is not None:
            checks.append(
                {
                    "target": name,
                    "operation": op,
                    "ratio": ratio_name,
                    "value": ratio,
                    "threshold": threshold,
                    "holds": ratio >= threshold,
                }
            )

    for name, entry in operations.items():
        if entry["kind"] == "point":
            check(f"{name}: store >= {POINT_VS_RAW}x raw asyncpg", name, "store/raw", POINT_VS_RAW)
            check(f"{name}: store >= {POINT_VS_ORM}x ORM", name, "store/orm", POINT_VS_ORM)
    check(
        f"get_confined: confined get >= {CONFINED_VS_UNCONFINED}x the unconfined get",
        "get_confined",
        "confined/unconfined",
        CONFINED_VS_UNCONFINED,
    )
    check(f"record_many: store >= {BULK_VS_ORM}x ORM bulk insert", "record_many", "store/orm", BULK_VS_ORM)
    check(f"record_many: store >= {BULK_VS_COPY}x raw COPY", "record_many", "store/raw", BULK_VS_COPY)
    return checks


def _throughput(value: float, unit: str) -> str:
    suffix = {"op": "", "row": " rows", "workflow": " wf"}[unit]
    if value >= 100:
        return f"{value:,.0f}{suffix}/s"
    return f"{value:,.1f}{suffix}/s"


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:,.0f}"


def table(document: dict[str, Any]) -> str:
    """The results as a Markdown table: throughput and p50/p99 latency per stack, and the ratios."""
    stacks = ["store", "raw", "orm"]
    header = ["operation"] + [f"{s} (p50 / p99 ms)" for s in stacks] + ["store/raw", "store/orm"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, entry in document["operations"].items():
        cells = [entry["title"]]
        for stack in stacks:
            figures = entry["stacks"].get(stack)
            if figures is None:
                cells.append("—")
                continue
            cell = f"{_throughput(figures['throughput'], entry['unit'])} ({_ms(figures['p50_ms'])} / {_ms(figures['p99_ms'])})"
            if figures["errors"]:
                cell += f" {figures['errors']} errors"
            cells.append(cell)
        for ratio in ("store/raw", "store/orm"):
            value = entry["ratios"].get(ratio)
            if name == "get_confined" and ratio == "store/raw":  # against the store's unconfined get
                value = entry["ratios"].get("confined/unconfined")
            if name == "record_many_executemany" and ratio == "store/raw":  # the store's COPY vs executemany
                value = document["operations"].get("record_many", {}).get("ratios", {}).get("store/raw_executemany")
            cells.append("—" if value is None else f"{value:.2f}x")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets_table(document: dict[str, Any]) -> str:
    lines = ["| target | measured | holds |", "|---|---|---|"]
    for t in document["targets"]:
        lines.append(f"| {t['target']} | {t['value']:.3f}x | {'yes' if t['holds'] else '**no**'} |")
    return "\n".join(lines)


def describe(document: dict[str, Any]) -> str:
    c = document["config"]
    m = document["machine"]
    return (
        f"{m['cpus']} CPUs, {m['uname']}, Python {m['python']}, {m['postgresql'].split(',')[0]}; "
        f"{c['rounds']} rounds (medians), {c['calls']} calls per point operation, {c['query_calls']} per query, "
        f"record_many of {c['bulk_rows']:,} rows, aggregate over {c['aggregate_rows']:,} rows, "
        f"{c['agents']} agents x {c['workflows']} workflows on a pool of {c['pool_size']}; "
        f"wall time {document['wall_seconds']:.0f} s"
    )


def markdown(document: dict[str, Any]) -> str:
    """The RESULTS.md section of a full comparison run."""
    m = document["machine"]
    commit = m.get("commit") or "unknown"
    return "\n".join(
        [
            "## Store vs raw asyncpg vs ORM",
            "",
            f"`python -m benchmarks --dsn ... --json benchmarks/results/compare.json` at `{commit}`. "
            + describe(document)
            + ".",
            "",
            "Throughput is the median over rounds (calls/s; rows/s for record_many; workflows/s for the "
            "concurrency run); latency per call is the median over rounds of each round's p50 / p99, in ms. "
            "A ratio is the median over rounds of store throughput / other throughput (above 1: the store "
            "is faster).",
            "",
            table(document),
            "",
            targets_table(document),
        ]
    )


def write_json(document: dict[str, Any], path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")


def write_section(path: str | Path, name: str, markdown: str) -> None:
    """Replace the part of `path` between `<!-- name:begin -->` and `<!-- name:end -->` (appended
    when missing), so each command rewrites only its own section of RESULTS.md."""
    path = Path(path)
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{markdown.rstrip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")
