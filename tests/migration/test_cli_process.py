"""`optiinfra-store` as people and CI run it: a separate process, with and without a terminal.
Prompts are answered through a pseudo-terminal; --json output is checked against the database;
passwords never appear in any message."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pexpect
import psycopg
import pytest

from optiinfra_store import migrations
from optiinfra_store.connection.dsn import DSN_ENV
from optiinfra_store.errors import InvalidArgument

CLI = [sys.executable, "-m", "optiinfra_store.commands.cli"]
SECRET = "s3cr3t-Pa55"
UNREACHABLE = f"postgresql://someone:{SECRET}@127.0.0.1:1/db?connect_timeout=2"


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("OPTIINFRA_")}


def cli(*args: str, check: int | None = 0) -> subprocess.CompletedProcess[str]:
    """Run the command without a terminal (stdin is not a tty)."""
    done = subprocess.run([*CLI, *args], env=env(), stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if check is not None:
        assert done.returncode == check, (args, done.stdout, done.stderr)
    return done


def stdin_closed(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the command with standard input closed (`<&-`: Python then has no sys.stdin at all),
    as cron or a supervisor may start it; /dev/null would be an open, empty stdin."""
    return subprocess.run(["sh", "-c", '"$@" <&-', "sh", *CLI, *args], env=env(), capture_output=True, text=True)


def on_terminal(*args: str, answer: str) -> tuple[int, str]:
    """Run the command on a pseudo-terminal, answer its question; the exit status and output."""
    child = pexpect.spawn(CLI[0], [*CLI[1:], *args], env=env(), encoding="utf-8", timeout=60)
    child.expect(r"\[y/N\] ")
    question = child.before
    child.sendline(answer)
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, question + child.before


def applied(dsn: str) -> list[str]:
    return [s.id for s in migrations.status(dsn) if s.applied]


def test_rollback__asks_on_a_terminal_refuses_without_one_and_never_overshoots(scratch_dsn):
    ids = migrations.ids()
    cli("migrate", "--dsn", scratch_dsn)
    refused = cli("rollback", "--dsn", scratch_dsn, check=1)
    assert "pass --yes" in refused.stderr and refused.stdout == ""
    code, out = on_terminal("rollback", "--dsn", scratch_dsn, answer="n")
    assert code == 1 and "cancelled" in out and ids[-1] in out
    assert applied(scratch_dsn) == ids
    code, out = on_terminal("rollback", "--count", "2", "--dsn", scratch_dsn, answer="y")
    assert code == 0 and f"rolled back {ids[-1]}, {ids[-2]}" in out
    assert applied(scratch_dsn) == ids[:-2]
    beyond = cli("rollback", "--count", "999", "--yes", "--dsn", scratch_dsn, check=1)
    assert f"only {len(ids) - 2} migrations are applied" in beyond.stderr
    assert applied(scratch_dsn) == ids[:-2]


def test_migrate_to_rollback_to_check_mark_unmark(scratch_dsn):
    ids = migrations.ids()
    assert json.loads(cli("migrate", "--to", ids[3], "--json", "--dsn", scratch_dsn).stdout) == {"applied": ids[:4]}
    pending = cli("check", "--dsn", scratch_dsn, check=3)
    assert pending.stdout.startswith("pending migrations: " + ids[4])
    cli("migrate", "--dsn", scratch_dsn)
    assert cli("check", "--dsn", scratch_dsn).stdout == "schema is up to date\n"
    rolled = json.loads(cli("rollback", "--to", ids[-3], "--yes", "--json", "--dsn", scratch_dsn).stdout)
    assert rolled == {"rolled_back": [ids[-1], ids[-2]]}
    cli("rollback", "--to", "0999_nothing", "--yes", "--dsn", scratch_dsn, check=1)
    cli("migrate", "--dsn", scratch_dsn)
    assert cli("unmark", ids[-1], "--dsn", scratch_dsn).stdout == f"marked as not applied: {ids[-1]}\n"
    assert json.loads(cli("check", "--json", "--dsn", scratch_dsn, check=3).stdout) == {
        "current": False,
        "pending": [ids[-1]],
    }
    assert cli("mark", ids[-1], "--dsn", scratch_dsn).stdout == f"marked as applied: {ids[-1]}\n"
    cli("check", "--dsn", scratch_dsn)
    assert "pass --yes" in cli("break-lock", "--dsn", scratch_dsn, check=1).stderr
    assert cli("break-lock", "--yes", "--dsn", scratch_dsn).stdout == "migration lock broken\n"


def test_status_json_is_what_the_database_holds(scratch_dsn):
    cli("migrate", "--to", migrations.ids()[5], "--dsn", scratch_dsn)
    status = json.loads(cli("status", "--json", "--dsn", scratch_dsn).stdout)
    with psycopg.connect(scratch_dsn) as conn:
        rows = dict(conn.execute("SELECT migration_id, applied_at_utc FROM _yoyo_migration").fetchall())
    assert {m["id"] for m in status["migrations"] if m["applied"]} == set(rows)
    assert status["applied"] == 6 and status["pending"] == len(migrations.ids()) - 6
    text = cli("status", "--dsn", scratch_dsn).stdout.splitlines()
    assert text[-1] == f"6 applied, {len(migrations.ids()) - 6} pending"


def test_stats_and_purge_json_match_the_database(scratch_dsn):
    cli("migrate", "--dsn", scratch_dsn)
    cli("seed", "--dsn", scratch_dsn)
    cli("seed", "--dsn", scratch_dsn)  # only the demo's own data there: nothing to ask (seed.DEMO_CUSTOMERS)
    stats = json.loads(cli("stats", "--json", "--dsn", scratch_dsn).stdout)
    with psycopg.connect(scratch_dsn) as conn:
        total, failed = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = 'failed') FROM workflow_executions"
            " WHERE created_at >= now() - interval '30 days'"
        ).fetchone()
    assert stats["statistics"]["total"] == total and stats["statistics"]["count_by_status"]["failed"] == failed
    assert stats["performance"]["tips"]
    acme = json.loads(cli("stats", "--json", "--customer", "platform@acme.example", "--dsn", scratch_dsn).stdout)
    assert acme["statistics"]["total"] == 2 and acme["customer_id"] == "c1000000-0000-4000-8000-000000000001"
    purge = json.loads(cli("purge", "--older-than", "30m", "--dry-run", "--json", "--dsn", scratch_dsn).stdout)
    with psycopg.connect(scratch_dsn) as conn:
        (finished,) = conn.execute(
            "SELECT count(*) FROM workflow_executions WHERE status NOT IN ('pending', 'running')"
            " AND completed_at < now() - interval '30 minutes'"
        ).fetchone()
    assert purge["dry_run"] is True and purge["executions"] == finished > 0
    assert "pass --yes" in cli("purge", "--older-than", "30m", "--dsn", scratch_dsn, check=1).stderr
    code, out = on_terminal("purge", "--older-than", "30m", "--dsn", scratch_dsn, answer="y")
    assert code == 0 and f"purged {finished} workflow executions" in out
    again = json.loads(cli("purge", "--older-than", "30m", "--dry-run", "--json", "--dsn", scratch_dsn).stdout)
    assert again["executions"] == 0


def test_unknown_customers_are_not_found_either_way(scratch_dsn):
    cli("migrate", "--dsn", scratch_dsn)
    for customer in ("00000000-0000-4000-8000-00000000abcd", "nobody@example.com"):
        done = cli("stats", "--customer", customer, "--dsn", scratch_dsn, check=1)
        assert "not found" in done.stderr and customer in done.stderr and done.stdout == ""


def test_seed_before_migrate_says_migrate(scratch_dsn):
    done = cli("seed", "--dsn", scratch_dsn, check=1)
    assert "optiinfra-store migrate" in done.stderr and done.stderr.count("\n") == 1


def test_seed_and_demo_ask_before_mixing_into_other_data(scratch_dsn):
    cli("migrate", "--dsn", scratch_dsn)
    with psycopg.connect(scratch_dsn) as conn:
        conn.execute("INSERT INTO customers (name, email) VALUES ('Real Co', 'ops@real.example')")
    for command in ("seed", "demo"):
        done = cli(command, "--dsn", scratch_dsn, check=1)
        assert "1 customers that are not the demo's" in done.stderr and "pass --yes" in done.stderr
    with psycopg.connect(scratch_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM customers").fetchone()[0] == 1
    cli("seed", "--yes", "--dsn", scratch_dsn)
    cli("seed", "--dsn", scratch_dsn, check=1)  # still other data there: still asks


def test_global_options_before_or_after_the_command_and_logs(scratch_dsn):
    assert cli("--dsn", scratch_dsn, "migrate").stdout.startswith("applied ")
    assert cli("status", "--dsn", scratch_dsn).returncode == 0
    assert cli("--dsn", scratch_dsn, "-q", "status").returncode == 0
    cli("rollback", "--yes", "--dsn", scratch_dsn)
    done = cli("--log-format", "json", "migrate", "-v", "--dsn", scratch_dsn)
    logs = [json.loads(line) for line in done.stderr.splitlines()]
    assert {
        "level": "info",
        "logger": "optiinfra_store.migrations",
        "message": f"applied {migrations.ids()[-1]}",
    }.items() <= logs[0].items()
    assert cli("--version").stdout.startswith("optiinfra-store 0.")


COMMANDS = [
    ("migrate",),
    ("status",),
    ("check",),
    ("seed", "--yes"),
    ("stats",),
    ("purge", "--older-than", "90d", "--dry-run"),
    ("purge", "--older-than", "90d", "--yes"),
    ("maintain",),
    ("rollback", "--yes"),
    ("mark", "0001_core"),
    ("demo", "--yes"),
    ("rotate-key", "--dry-run"),
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a))
def test_an_unreachable_server_is_named_with_its_password_masked(args):
    done = cli(*args, "--dsn", UNREACHABLE, check=1)
    assert SECRET not in done.stderr + done.stdout
    assert f"{args[0]}: error: cannot connect to 127.0.0.1:1: " in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1


def test_passwords_are_masked_in_usage_errors_and_logs(monkeypatch):
    for args in (("--dsn", UNREACHABLE, "no-such-command"), ("status", "--dsn", UNREACHABLE, "--bogus")):
        done = cli(*args, check=2)
        assert SECRET not in done.stderr + done.stdout
    done = subprocess.run([*CLI, "-vv", "status"], env={**env(), DSN_ENV: UNREACHABLE}, capture_output=True, text=True)
    assert done.returncode == 1 and SECRET not in done.stderr and "cannot connect to 127.0.0.1:1" in done.stderr


def test_rollback__refuses_when_what_was_confirmed_is_no_longer_what_it_would_do(scratch_dsn):
    ids = migrations.ids()
    migrations.apply(scratch_dsn, to=ids[-2])
    confirmed = migrations.to_roll_back(scratch_dsn, count=1)
    assert confirmed == [ids[-2]]
    migrations.apply(scratch_dsn)  # another process migrates meanwhile
    with pytest.raises(InvalidArgument, match="changed since the rollback was confirmed"):
        migrations.rollback(scratch_dsn, count=1, expected=confirmed)
    assert applied(scratch_dsn) == ids


def test_confirmation__end_of_input_refuses_and_the_question_goes_to_stderr(scratch_dsn):
    cli("migrate", "--dsn", scratch_dsn)
    child = pexpect.spawn(CLI[0], [*CLI[1:], "rollback", "--json", "--dsn", scratch_dsn], env=env(), encoding="utf-8")
    child.expect(r"\[y/N\] ")
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1 and "cancelled" in child.before
    assert applied(scratch_dsn) == migrations.ids()
    # without a terminal the question lands on stderr, never in the --json on stdout
    done = cli("rollback", "--json", "--dsn", scratch_dsn, check=1)
    assert done.stdout == "" and "Roll back" in done.stderr


def test_destructive_commands__stdin_closed_refuse_in_one_line_and_change_nothing(scratch_dsn):
    cli("migrate", "--dsn", scratch_dsn)
    cli("seed", "--dsn", scratch_dsn)
    with psycopg.connect(scratch_dsn) as conn:  # a lock as a migrating process that died leaves it
        conn.execute("INSERT INTO yoyo_lock (locked, ctime, pid) VALUES (1, now(), 999999)")

    def state() -> tuple:
        with psycopg.connect(scratch_dsn) as conn:
            counts = conn.execute(
                "SELECT (SELECT count(*) FROM yoyo_lock), (SELECT count(*) FROM workflow_executions),"
                " (SELECT count(*) FROM agent_metrics)"
            ).fetchone()
        return applied(scratch_dsn), counts

    before = state()
    assert before[1][1] > 0  # the purge below has executions to delete
    for command in (["rollback"], ["rollback", "--all"], ["break-lock"], ["purge", "--older-than", "30m"]):
        done = stdin_closed(*command, "--dsn", scratch_dsn)
        assert done.returncode == 1, (command, done.stderr)
        assert done.stderr.count("\n") == 1 and "Refusing without a terminal" in done.stderr, (command, done.stderr)
        assert done.stderr.startswith(f"optiinfra-store {command[0]}: error: ") and done.stdout == ""
    assert state() == before


def test_other_data_is_recognised_in_any_schema_and_shape(scratch_dsn):
    from optiinfra_store import seed

    with psycopg.connect(scratch_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE customers (id integer PRIMARY KEY, name text)")  # another application's
        conn.execute("INSERT INTO customers VALUES (1, 'x')")
    assert "tables of another schema (customers" in seed.other_data(scratch_dsn)
    with psycopg.connect(scratch_dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE customers")
        conn.execute("CREATE SCHEMA billing")
        conn.execute("CREATE TABLE billing.invoices (id integer)")
    migrations.apply(scratch_dsn)
    assert "billing.invoices" in seed.other_data(scratch_dsn)
    assert "billing.invoices" in cli("seed", "--dsn", scratch_dsn, check=1).stderr


def test_stats_days_out_of_range_is_a_clean_error(scratch_dsn):
    cli("migrate", "--dsn", scratch_dsn)
    done = cli("stats", "--days", "3000000", "--dsn", scratch_dsn, check=1)
    assert "--days must be from 1 to 36500" in done.stderr and "Traceback" not in done.stderr
