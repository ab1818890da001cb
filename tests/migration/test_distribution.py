"""`distribute` on one PostgreSQL server: refused, nothing changed (tests/citus has the cluster's side)."""

from __future__ import annotations

import pytest

from optiinfra_store import distribution, migrations
from optiinfra_store.commands.cli import main
from optiinfra_store.errors import ConfigurationError
from tests.migration.catalog import snapshot


def test_distribute__without_citus_refused_and_nothing_changed(scratch_dsn, capsys):
    migrations.apply(scratch_dsn)
    before = snapshot(scratch_dsn)
    with pytest.raises(ConfigurationError, match="this database has no citus extension"):
        distribution.distribute(scratch_dsn)
    assert main(["distribute", "--dsn", scratch_dsn]) == 1
    assert "has no citus extension" in capsys.readouterr().err
    assert snapshot(scratch_dsn) == before
