"""The README's example runs as written."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def run_example(ending: str, dsn: str, monkeypatch, capsys) -> list[str]:
    """Run the README's python block that contains `ending`; return the lines it printed."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    example = next(b for b in blocks if ending in b)
    monkeypatch.setenv("OPTIINFRA_DATABASE_URL", dsn)
    # the example calls asyncio.run itself: run it in a thread of its own, away from the test loop
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(exec, compile(example, "README.md", "exec"), {}).result()
    return capsys.readouterr().out.splitlines()


def test_readme__agent_example_runs(clean_dsn, monkeypatch, capsys):
    out = run_example("asyncio.run(main())", clean_dsn, monkeypatch, capsys)
    assert out[0] == "completed -> running refused"
    assert out[1].startswith("completed ") and "['collect_metrics', 'analyze_gpu_usage'] 1" in out[1]


def test_readme__history_example_runs(clean_dsn, monkeypatch, capsys):
    from optiinfra_store import seed

    seed.load(clean_dsn)
    out = run_example("asyncio.run(report())", clean_dsn, monkeypatch, capsys)
    assert any(line.endswith("None -> failed None None") for line in out)  # the seeded failed workflow
    assert "next event: completed" in out  # the next transition the seeds wrote
    assert any(line.startswith("4 0.666") for line in out)  # 4 workflows, 2 of 3 finished completed
    assert "25 hourly buckets" in out or "24 hourly buckets" in out
    assert out[-1] == "would purge 0 executions, 0 transitions"


def test_readme__faults_and_tenants_example_runs(clean_dsn, monkeypatch, capsys):
    assert run_example("asyncio.run(guarded())", clean_dsn, monkeypatch, capsys) == [
        "same execution: True",
        "stale: read version 1 but it is at 2",
        "Globex cannot see Acme's execution",
    ]


def test_readme__secrets_example_runs(clean_dsn, monkeypatch, capsys):
    monkeypatch.delenv("OPTIINFRA_SECRET_KEY", raising=False)
    out = run_example("asyncio.run(secrets())", clean_dsn, monkeypatch, capsys)
    assert "sk-live-123" not in out[0] and "***" in out[0]
    assert out[1:] == ["still readable: True", "re-encrypted: 1", "after rotation: True"]


def test_readme__migrations_from_python_example_runs(scratch_dsn, monkeypatch, capsys):
    out = run_example("migrations.apply(dsn)  # back to current", scratch_dsn, monkeypatch, capsys)
    assert out == ["pending: True"]
    from optiinfra_store import migrations

    assert all(m.applied for m in migrations.status(scratch_dsn))


def test_readme__set_up_without_createrole():
    """The README's set-up for a migrating role without CREATEROLE, on a server of the test's own
    (it makes the roles every database of a server shares): an administrator creates the roles and
    grants the tenant role; the owner then migrates, and confined calls work."""
    import asyncio

    import psycopg
    from psycopg import sql

    from optiinfra_store import Store, migrations
    from optiinfra_store.connection.dsn import with_database
    from tests.pg import ensure_role, private_embedded_server, with_user

    owner = "optiinfra_readme_owner"
    with private_embedded_server("optiinfra-readme-", migrated=False) as server:
        admin_dsn = server.get_uri()
        ensure_role(admin_dsn, owner, "LOGIN NOCREATEROLE")
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE optiinfra OWNER {}").format(sql.Identifier(owner)))
            for role in ("optiinfra_app", "optiinfra_tenant", "optiinfra_connect"):
                ensure_role(admin_dsn, role, "NOLOGIN")
            admin.execute(sql.SQL("GRANT optiinfra_tenant TO optiinfra_app, {}").format(sql.Identifier(owner)))
        owner_dsn = with_user(with_database(admin_dsn, "optiinfra"), owner)
        assert migrations.apply(owner_dsn) == migrations.ids()

        async def confined_count() -> int:
            async with Store.connect(owner_dsn, min_size=1, max_size=1) as store:
                return await store.for_customer("c1000000-0000-4000-8000-000000000001").customers.count()

        assert asyncio.run(confined_count()) == 0
