"""The README's examples run as written, run again on the same database, and run one after another."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def run_example(ending: str, dsn: str, monkeypatch, capsys) -> list[str]:
    """Run the README's python block that contains `ending`; return the lines it printed."""
    example = next(b for b in python_blocks() if ending in b)
    monkeypatch.setenv("OPTIINFRA_DATABASE_URL", dsn)
    # the example calls asyncio.run itself: run it in a thread of its own, away from the test loop
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(exec, compile(example, "README.md", "exec"), {}).result()
    return capsys.readouterr().out.splitlines()


# The examples a reader runs, in the README's order, each by the line that ends it.
MIGRATIONS = "migrations.apply(dsn)  # back to current"
AGENT = "asyncio.run(main())"
FAULTS_AND_TENANTS = "asyncio.run(guarded())"
SECRETS = "asyncio.run(secrets())"
HISTORY = "asyncio.run(report())"
EXAMPLES = [MIGRATIONS, AGENT, FAULTS_AND_TENANTS, SECRETS, HISTORY]


def test_readme__every_python_block_that_runs_is_run_here():
    """The others are fragments: an `await` outside a function, which does not compile."""
    readme = README.read_text()
    assert sorted(EXAMPLES, key=readme.index) == EXAMPLES
    for block in python_blocks():
        if not any(ending in block for ending in EXAMPLES):
            with pytest.raises(SyntaxError, match="'await' outside"):
                compile(block, "README.md", "exec")


def check_migrations(out: list[str]) -> None:
    assert out == ["pending: True"]


def check_agent(out: list[str]) -> None:
    assert out[0] == "completed -> running refused"
    assert out[1].startswith("completed ") and "['collect_metrics', 'analyze_gpu_usage'] 1" in out[1]


def check_faults_and_tenants(out: list[str]) -> None:
    assert out == ["same execution: True", "stale: read version 1 but it is at 2", "Globex cannot see Acme's execution"]


def check_secrets(out: list[str]) -> None:
    assert "sk-live-123" not in out[0] and "***" in out[0]
    assert out[1:] == ["still readable: True", "re-encrypted: 1", "after rotation: True"]


def check_history(out: list[str]) -> None:
    """What it prints whatever the database holds beside the seeds."""
    assert any(line.endswith("None -> failed None None") for line in out)  # the seeded failed workflow
    assert "next event: completed" in out  # the next transition the seeds wrote
    assert out[-1] == "would purge 0 executions, 0 transitions"


def test_readme__agent_example_runs_and_runs_again(clean_dsn, monkeypatch, capsys):
    for _ in range(2):  # on the same database: a reader runs it twice
        check_agent(run_example(AGENT, clean_dsn, monkeypatch, capsys))


def test_readme__history_example_runs_and_runs_again(clean_dsn, monkeypatch, capsys):
    from optiinfra_store import seed

    seed.load(clean_dsn)
    for _ in range(2):
        out = run_example(HISTORY, clean_dsn, monkeypatch, capsys)
        check_history(out)
        assert any(line.startswith("4 0.666") for line in out)  # 4 workflows, 2 of 3 finished completed
        assert "25 hourly buckets" in out or "24 hourly buckets" in out


def test_readme__faults_and_tenants_example_runs_and_runs_again(clean_dsn, monkeypatch, capsys):
    for _ in range(2):
        check_faults_and_tenants(run_example(FAULTS_AND_TENANTS, clean_dsn, monkeypatch, capsys))


def test_readme__secrets_example_runs_and_runs_again(clean_dsn, monkeypatch, capsys):
    monkeypatch.delenv("OPTIINFRA_SECRET_KEY", raising=False)
    for _ in range(2):
        check_secrets(run_example(SECRETS, clean_dsn, monkeypatch, capsys))


def test_readme__migrations_from_python_example_runs_and_runs_again(scratch_dsn, monkeypatch, capsys):
    from optiinfra_store import migrations

    for _ in range(2):
        check_migrations(run_example(MIGRATIONS, scratch_dsn, monkeypatch, capsys))
        assert all(m.applied for m in migrations.status(scratch_dsn))


def test_readme__every_example_one_after_another_on_one_database(scratch_dsn, monkeypatch, capsys):
    """As a reader goes through the README, twice: the first migrates and seeds the database, the
    others run on what those before them left."""
    monkeypatch.delenv("OPTIINFRA_SECRET_KEY", raising=False)
    checks = [check_migrations, check_agent, check_faults_and_tenants, check_secrets, check_history]
    for _ in range(2):
        for ending, check in zip(EXAMPLES, checks, strict=True):
            check(run_example(ending, scratch_dsn, monkeypatch, capsys))


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
