"""The README's example runs as written."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme__agent_example_runs(clean_dsn, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    example = next(b for b in blocks if "asyncio.run(main())" in b)
    monkeypatch.setenv("OPTIINFRA_DATABASE_URL", clean_dsn)
    # the example calls asyncio.run itself: run it in a thread of its own, away from the test loop
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(exec, compile(example, "README.md", "exec"), {}).result()
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "completed -> running refused"
    assert out[1].startswith("completed ") and "['collect_metrics', 'analyze_gpu_usage'] 1" in out[1]


def test_readme__history_example_runs(clean_dsn, monkeypatch, capsys):
    from optiinfra_store import seed

    seed.load(clean_dsn)
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    example = next(b for b in blocks if "asyncio.run(report())" in b)
    monkeypatch.setenv("OPTIINFRA_DATABASE_URL", clean_dsn)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(exec, compile(example, "README.md", "exec"), {}).result()
    out = capsys.readouterr().out.splitlines()
    assert any(line.endswith("None -> failed None None") for line in out)  # the seeded failed workflow
    assert "next event: completed" in out  # the next transition the seeds wrote
    assert any(line.startswith("4 0.666") for line in out)  # 4 workflows, 2 of 3 finished completed
    assert "25 hourly buckets" in out or "24 hourly buckets" in out
    assert out[-1] == "would purge 0 executions, 0 transitions"


def test_readme__faults_and_tenants_example_runs(clean_dsn, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    example = next(b for b in blocks if "asyncio.run(guarded())" in b)
    monkeypatch.setenv("OPTIINFRA_DATABASE_URL", clean_dsn)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(exec, compile(example, "README.md", "exec"), {}).result()
    assert capsys.readouterr().out.splitlines() == [
        "same execution: True",
        "stale: read version 1 but it is at 2",
        "Globex cannot see Acme's execution",
    ]
