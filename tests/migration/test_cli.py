"""The `optiinfra-store` command, end to end against a real server."""

from __future__ import annotations

import asyncio
import json
import re
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from optiinfra_store import Store, migrations
from optiinfra_store.commands import cli, embedded
from optiinfra_store.connection.dsn import DSN_ENV
from optiinfra_store.crypto.secrets import SECRET_KEY_ENV, SecretKeys
from optiinfra_store.enums import AgentType
from optiinfra_store.records import AgentCreate
from tests.migration.test_migrations import IDS
from tests.migration.test_schema import counts, seeded_counts


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli__migrate_status_rollback_migrate_seed_twice(scratch_dsn, capsys):
    assert run(capsys, "migrate", "--dsn", scratch_dsn)[:2] == (0, f"applied {', '.join(IDS)}\n")
    code, out, _ = run(capsys, "status", "--dsn", scratch_dsn)
    assert code == 0 and out.count("applied 20") == len(IDS)
    assert out.splitlines()[-1] == f"{len(IDS)} applied, 0 pending"
    assert run(capsys, "rollback", "--dsn", scratch_dsn, "--yes")[:2] == (0, f"rolled back {IDS[-1]}\n")
    code, out, _ = run(capsys, "status", "--dsn", scratch_dsn)
    assert out.splitlines()[-2].split() == [IDS[-1], "pending"]
    assert out.splitlines()[-1] == f"{len(IDS) - 1} applied, 1 pending"
    assert run(capsys, "migrate", "--dsn", scratch_dsn)[:2] == (0, f"applied {IDS[-1]}\n")
    assert run(capsys, "migrate", "--dsn", scratch_dsn)[:2] == (0, "schema is up to date\n")
    for _ in range(2):
        code, out, _ = run(capsys, "seed", "--dsn", scratch_dsn)
        assert code == 0 and out.startswith("loaded 3 seed files")
    assert counts(scratch_dsn) == seeded_counts()


def test_cli__dsn_from_environment(scratch_dsn, capsys, monkeypatch):
    monkeypatch.setenv(DSN_ENV, scratch_dsn)
    assert run(capsys, "migrate")[0] == 0
    assert run(capsys, "rollback", "--all", "--yes")[:2] == (0, f"rolled back {', '.join(reversed(IDS))}\n")


def test_cli__no_dsn_is_a_one_line_error(capsys, monkeypatch):
    monkeypatch.delenv(DSN_ENV, raising=False)
    code, out, err = run(capsys, "migrate")
    assert code == 1 and out == ""
    assert err == f"optiinfra-store migrate: error: no database given: pass --dsn or set {DSN_ENV}\n"


def test_cli__unreachable_server_is_a_one_line_error(capsys):
    code, _, err = run(capsys, "status", "--dsn", "postgresql://u:secret@127.0.0.1:1/db?connect_timeout=2")
    assert code == 1
    assert err.startswith("optiinfra-store status: error: cannot connect to 127.0.0.1:1: Connection refused")
    assert err.count("\n") == 1 and "secret" not in err


def test_cli__bad_credentials_is_a_one_line_error(scratch_dsn, capsys):
    with psycopg.connect(scratch_dsn, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS optiinfra_cli_test")
    parts = urlsplit(scratch_dsn)
    host = parts.netloc.rsplit("@", 1)[-1]
    bad = urlunsplit(parts._replace(netloc=f"optiinfra_cli_test:pw@{host}"))  # a role that does not exist
    code, _, err = run(capsys, "migrate", "--dsn", bad)
    assert code == 1 and err.count("\n") == 1
    assert "cannot connect" in err and "optiinfra_cli_test" in err


def test_cli__failed_migration_exits_non_zero_and_names_it(scratch_dsn, capsys):
    with psycopg.connect(scratch_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE customers (id int)")  # 0001 will collide
    code, _, err = run(capsys, "migrate", "--dsn", scratch_dsn)
    assert code == 1 and err.count("\n") == 1
    assert "0001_core failed, its changes were rolled back" in err
    with psycopg.connect(scratch_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM pg_type WHERE typname = 'agent_type'").fetchone()[0] == 0


def test_cli__rejects_non_postgres_dsn(capsys):
    code, _, err = run(capsys, "migrate", "--dsn", "mysql://root@localhost/x")
    assert code == 1 and "expected a postgresql:// DSN" in err


def test_cli__demo_against_given_server(scratch_dsn, capsys):
    code, out, err = run(capsys, "demo", "--dsn", scratch_dsn)
    assert code == 0, err
    assert "  workflow_steps             15" in out.splitlines()
    assert "transition history of the failed quality_check" in out
    assert counts(scratch_dsn) == seeded_counts()


def test_cli__demo_without_embedded_extra_says_how_to_get_one(capsys, monkeypatch):
    monkeypatch.delenv(DSN_ENV, raising=False)
    monkeypatch.setattr(embedded, "available", lambda: False)
    code, out, err = run(capsys, "demo")
    assert code == 1 and out == ""
    assert err.count("\n") == 1
    assert "pip install 'optiinfra-store[embedded]'" in err and "--dsn" in err


def test_cli__demo_on_embedded_server(capsys, monkeypatch):
    if not embedded.available():
        pytest.skip("embedded extra not installed")
    monkeypatch.delenv(DSN_ENV, raising=False)
    code, out, err = run(capsys, "demo")
    assert code == 0, err
    assert "starting embedded PostgreSQL" in out and "performance_tuning" in out


def test_cli__stats_for_all_and_for_one_customer(scratch_dsn, capsys):
    assert run(capsys, "migrate", "--dsn", scratch_dsn)[0] == 0
    assert run(capsys, "seed", "--dsn", scratch_dsn)[0] == 0
    code, out, err = run(capsys, "stats", "--dsn", scratch_dsn)
    assert code == 0, err
    overall = next(line for line in out.splitlines() if line.strip().startswith("all "))
    assert overall.split()[1:3] == ["4", "66.7%"]  # 2 of 3 finished seed workflows completed
    assert "tip: Success rate is 66.7%" in out
    code, out, _ = run(capsys, "stats", "--dsn", scratch_dsn, "--customer", "platform@acme.example", "--days", "7")
    overall = next(line for line in out.splitlines() if line.strip().startswith("all "))
    assert code == 0 and overall.split()[1:3] == ["2", "100%"]
    code, out, err = run(capsys, "stats", "--dsn", scratch_dsn, "--customer", "nobody@example.com")
    assert code == 1 and out == "" and err.count("\n") == 1 and "nobody@example.com" in err


def test_cli__rotate_key_moves_every_sensitive_config_to_the_newest_key(scratch_dsn, capsys, monkeypatch):
    assert run(capsys, "migrate", "--dsn", scratch_dsn)[0] == 0

    async def write_under_old_key() -> None:
        async with Store.connect(scratch_dsn, secret_key="old") as store:
            agent = await store.agents.create(AgentCreate(type=AgentType.COST, name="Cost", version="1"))
            for i in range(3):
                await store.agent_configs.set(agent.id, f"key{i}", f"secret{i}", is_sensitive=True)

    asyncio.run(write_under_old_key())
    monkeypatch.delenv(SECRET_KEY_ENV, raising=False)
    code, out, err = run(capsys, "rotate-key", "--dsn", scratch_dsn)
    assert code == 1 and out == "" and SECRET_KEY_ENV in err and err.count("\n") == 1
    monkeypatch.setenv(SECRET_KEY_ENV, "new,old")
    assert run(capsys, "rotate-key", "--dsn", scratch_dsn, "--dry-run")[:2] == (
        0,
        "3 sensitive configs are not yet encrypted under the newest key\n",
    )
    code, _, err = run(capsys, "rotate-key", "--dsn", scratch_dsn, "--batch-size", "0")
    assert code == 1 and "batch_size" in err
    assert run(capsys, "rotate-key", "--dsn", scratch_dsn, "--batch-size", "2")[:2] == (
        0,
        "re-encrypted 3 sensitive configs under the newest key; 0 left\n",
    )
    assert run(capsys, "rotate-key", "--dsn", scratch_dsn)[:2] == (
        0,
        "re-encrypted 0 sensitive configs under the newest key; 0 left\n",
    )
    with psycopg.connect(scratch_dsn) as conn:
        assert conn.execute("SELECT DISTINCT secret_key_id FROM agent_configs").fetchall() == [
            (SecretKeys(["new"]).newest_id,)
        ]


def test_cli__current_says_the_newest_applied_migration_and_history_is_status(scratch_dsn, capsys):
    assert run(capsys, "current", "--dsn", scratch_dsn)[:2] == (0, f"none ({len(IDS)} pending)\n")
    assert json.loads(run(capsys, "current", "--json", "--dsn", scratch_dsn)[1]) == {
        "migration": None,
        "applied_at": None,
        "current": False,
        "pending": IDS,
    }
    run(capsys, "migrate", "--to", IDS[3], "--dsn", scratch_dsn)
    assert run(capsys, "current", "--dsn", scratch_dsn)[1] == f"{IDS[3]} ({len(IDS) - 4} pending)\n"
    run(capsys, "migrate", "--dsn", scratch_dsn)
    assert run(capsys, "current", "--dsn", scratch_dsn)[1] == f"{IDS[-1]} (up to date)\n"
    current = json.loads(run(capsys, "current", "--json", "--dsn", scratch_dsn)[1])
    assert (current["migration"], current["current"], current["pending"]) == (IDS[-1], True, [])
    assert current["applied_at"] == str(migrations.status(scratch_dsn)[-1].applied_at)
    assert run(capsys, "history", "--dsn", scratch_dsn) == run(capsys, "status", "--dsn", scratch_dsn)


def test_cli__quiet_prints_errors_and_what_was_asked_for_only(scratch_dsn, capsys, monkeypatch):
    def quiet(*argv: str) -> tuple[int, str, str]:
        return run(capsys, *argv, "-q", "--dsn", scratch_dsn)

    # what was done: nothing on either stream
    for argv in (
        ("migrate",),
        ("seed",),
        ("maintain",),
        ("purge", "--older-than", "90d", "--yes"),
        ("rollback", "--yes"),
        ("unmark", IDS[-1]),
        ("mark", IDS[-1]),
        ("break-lock", "--yes"),
    ):
        assert quiet(*argv) == (0, "", ""), argv
    assert quiet("check") == (0, "", "")  # its exit status says it
    run(capsys, "rollback", "--yes", "--dsn", scratch_dsn)
    assert quiet("check") == (cli.EXIT_PENDING, "", "")
    run(capsys, "migrate", "--dsn", scratch_dsn)
    # --json is asked for
    assert json.loads(quiet("migrate", "--json")[1]) == {"applied": []}
    # the answers asked for
    for argv in (("status",), ("current",), ("stats",), ("purge", "--older-than", "90d", "--dry-run")):
        code, out, err = quiet(*argv)
        # purge names its cutoff, to the second, of each run's own clock
        same = [
            re.sub(r"\d\d:\d\d:\d\d", "hh:mm:ss", text) for text in (out, run(capsys, *argv, "--dsn", scratch_dsn)[1])
        ]
        assert code == 0 and err == "" and same[0] == same[1] != "", argv
    monkeypatch.setenv(SECRET_KEY_ENV, "new")
    assert quiet("rotate-key", "--dry-run") == (
        0,
        "0 sensitive configs are not yet encrypted under the newest key\n",
        "",
    )
    assert quiet("rotate-key") == (0, "", "")
    monkeypatch.setenv("OPTIINFRA_JWT_SECRET", "s" * 32)
    code, token, _ = quiet("token", "--customer", "c1000000-0000-4000-8000-000000000001")
    assert code == 0 and token.count(".") == 2
    # errors
    code, out, err = quiet("rollback")  # no terminal to ask on, no --yes
    assert code == 1 and out == "" and "pass --yes" in err
