"""Passwords never appear in a message: every form a DSN can carry one in."""

from __future__ import annotations

import pytest

from optiinfra_store.connection.dsn import redact


@pytest.mark.parametrize(
    "dsn, shown",
    [
        ("postgresql://u:s3cret@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgres://u:s3cret@h/db", "postgres://u:***@h/db"),
        ("POSTGRESQL://u:s3cret@h/db", "POSTGRESQL://u:***@h/db"),
        ("postgresql://:s3cret@h/db", "postgresql://:***@h/db"),
        ("postgresql://u:p@s3cret@h/db", "postgresql://u:***@h/db"),  # an unencoded @
        ("postgresql://u:pa#s3cret@/db?host=/tmp", "postgresql://u:***@/db?host=/tmp"),  # an unencoded #
        ("postgresql://u:pa/s3cret@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u@h/db?password=s3cret&sslmode=require", "postgresql://u@h/db?password=***&sslmode=require"),
        ("postgresql://u@h/db?sslmode=require&PASSWORD=s3cret", "postgresql://u@h/db?sslmode=require&PASSWORD=***"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
    ],
)
def test_redact__hides_the_password_wherever_it_is(dsn, shown):
    assert redact(dsn) == shown
    assert "s3cret" not in redact(f"error: cannot connect to {dsn}: refused")
