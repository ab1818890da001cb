"""The schema commands with multi-host DSNs, on a real primary and its streaming replica (a
throwaway pair), the replica listed first: `migrations.*`, `seed.*`, `distribution.*` and every
CLI command take both forms and run on the primary; a DSN listing only the standby is a one-line
error naming it."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import sql

from optiinfra_store import distribution, migrations, seed
from optiinfra_store.commands import cli
from optiinfra_store.connection import primary
from optiinfra_store.connection.dsn import with_database
from optiinfra_store.errors import ConfigurationError
from tests.migration.test_schema import counts, seeded_counts
from tests.pg import replicated_cluster

FORMS = ["uri", "host-list"]
READ_WRITE = {"target_session_attrs": "read-write"}


@pytest.fixture(scope="module")
def cluster():
    with replicated_cluster() as made:
        yield made


@pytest.fixture
def database(cluster) -> str:
    """A new, empty database made on the primary (the replica replays it): its name."""
    name = f"optiinfra_multi_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(cluster.primary_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    cluster.caught_up()
    return name


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def applied_on_the_primary(cluster, database: str) -> list[str]:
    return [s.id for s in migrations.status(with_database(cluster.primary_dsn, database)) if s.applied]


@pytest.mark.parametrize("form", FORMS)
def test_migrations_seed_distribution__take_each_form_and_run_on_the_primary_listed_second(cluster, database, form):
    dsn = cluster.listing(cluster.replica_port, cluster.primary_port, database=database, form=form, **READ_WRITE)
    ids = migrations.ids()
    assert migrations.apply(dsn) == ids
    assert applied_on_the_primary(cluster, database) == ids
    assert migrations.rollback(dsn) == [ids[-1]]
    assert migrations.to_roll_back(dsn, count=1) == [ids[-2]]
    assert migrations.unmark(dsn, [ids[-2]]) == [ids[-2]]
    assert migrations.mark(dsn, [ids[-2]]) == [ids[-2]]
    assert migrations.apply(dsn) == [ids[-1]]
    assert [s.id for s in migrations.status(dsn) if s.applied] == ids
    migrations.break_lock(dsn)
    assert seed.other_data(dsn) is None
    assert seed.load(dsn) == seed.seed_files()
    assert counts(with_database(cluster.primary_dsn, database)) == seeded_counts()
    with pytest.raises(ConfigurationError, match="no citus extension"):  # it reached the primary, which has none
        distribution.distribute(dsn)


@pytest.mark.parametrize("form", FORMS)
def test_cli__every_command_takes_each_form(cluster, database, form, capsys):
    dsn = cluster.listing(cluster.replica_port, cluster.primary_port, database=database, form=form, **READ_WRITE)
    ids = migrations.ids()
    for argv, said in [
        (["migrate"], f"applied {', '.join(ids)}"),
        (["status"], f"{len(ids)} applied, 0 pending"),
        (["check"], ""),
        (["mark", ids[-1]], ""),
        (["unmark", ids[-1]], ""),
        (["migrate"], f"applied {ids[-1]}"),
        (["break-lock", "--yes"], "migration lock broken"),
        (["seed", "--yes"], "loaded 3 seed files"),
        (["stats"], ""),
        (["maintain"], ""),
        (["purge", "--older-than", "90d", "--dry-run"], ""),
        (["rollback", "--yes"], f"rolled back {ids[-1]}"),
        (["demo", "--yes"], "transition history of the failed quality_check"),
    ]:
        code, out, err = run(capsys, *argv, "--dsn", dsn)
        assert code == 0 and said in out + err, (argv, out, err)
    assert applied_on_the_primary(cluster, database) == ids  # demo migrated it again
    code, _, err = run(capsys, "distribute", "--dsn", dsn)
    assert code == 1 and "no citus extension" in err


def test_migrate__without_target_session_attrs_still_finds_the_primary(cluster, database):
    dsn = cluster.listing(cluster.replica_port, cluster.primary_port, database=database, form="uri")
    assert migrations.apply(dsn) == migrations.ids()
    with primary.connect(dsn) as conn:
        assert primary.pinned(dsn, conn) | {"dbname": database} == {
            "dbname": database,
            "user": "postgres",
            "host": "127.0.0.1",
            "hostaddr": "127.0.0.1",
            "port": str(cluster.primary_port),  # every connection of a migration run goes there
            "target_session_attrs": "read-write",
        }


@pytest.mark.parametrize("command", [["migrate"], ["status"], ["seed", "--yes"], ["stats"], ["maintain"]])
def test_cli__only_the_standby_listed_is_a_one_line_error_naming_it(cluster, command, capsys):
    dsn = cluster.listing(cluster.replica_port, form="uri", password="s3cret", **READ_WRITE)
    code, out, err = run(capsys, *command, "--dsn", dsn)
    assert code == 1 and out == "" and err.count("\n") == 1, err
    assert err.startswith(
        f"optiinfra-store {command[0]}: error: no listed server is a primary: 127.0.0.1:{cluster.replica_port} answered"
    )
    assert "s3cret" not in err
