"""Passwords never appear in a message: every form a DSN can carry one in; the servers a DSN lists,
as messages name them."""

from __future__ import annotations

import pytest

from optiinfra_store.connection.dsn import parameters, redact, servers
from optiinfra_store.connection.primary import writable
from optiinfra_store.errors import ConfigurationError


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


@pytest.mark.parametrize(
    "dsn, listed",
    [
        ("postgresql://u:s3cret@h1:6001,h2:6002/db?target_session_attrs=read-write", ["h1:6001", "h2:6002"]),
        ("postgresql:///db?host=h1,h2&port=6001,6002&password=s3cret", ["h1:6001", "h2:6002"]),
        ("postgresql:///db?host=h1,h2&port=6001", ["h1:6001", "h2:6001"]),  # one port serves every host
        ("postgresql://h1,h2:7/db", ["h1", "h2:7"]),  # no port given: the host alone
        ("postgresql://[::1]:5,h2/db", ["[::1]:5", "h2"]),
        ("postgresql://u@/db?host=/run/pg&port=5433", ["/run/pg/.s.PGSQL.5433"]),
        ("postgresql://u@db.example/db", ["db.example"]),
        ("postgresql:///db", []),  # libpq's default server: none named
        ("postgresql://u:s3cret@h/db?no_such_parameter=1", []),  # libpq cannot read it
    ],
)
def test_servers__both_multi_host_forms_in_order_without_a_password(dsn, listed):
    assert servers(dsn) == listed
    assert "s3cret" not in " ".join(servers(dsn))


@pytest.mark.parametrize(
    "dsn, said",
    [
        ("postgresql://u:s3cret@h/db?no_such_parameter=1", 'invalid URI query parameter: "no_such_parameter"'),
        ("postgresql://u:s3%zzcret@h/db", "percent-encode special characters"),  # libpq would quote it
        # an unencoded @ or / in the password: libpq would read part of it as the host name
        ("postgresql://u:s3@cret@127.0.0.1:1/db", "percent-encode special characters"),
        ("postgresql://u:s3/cret@127.0.0.1:1/db", "percent-encode special characters"),
        ("postgresql://u:s3@cret@h1:1,h2:2/db", "percent-encode special characters"),
    ],
)
def test_parameters__a_dsn_libpq_cannot_read_is_configuration_error_without_its_password(dsn, said):
    with pytest.raises(ConfigurationError, match=said) as refused:
        parameters(dsn)
    assert "cret" not in str(refused.value)


@pytest.mark.parametrize("asked", [None, "any", "prefer-standby", "standby", "read-only", "read-write"])
def test_writable__schema_commands_always_ask_for_the_server_that_takes_writes(asked):
    dsn = "postgresql://u@h1:1,h2:2/db" + (f"?target_session_attrs={asked}" if asked else "")
    assert writable(dsn)["target_session_attrs"] == "read-write"
    assert writable("postgresql://u@h1:1,h2:2/db?target_session_attrs=primary")["target_session_attrs"] == "primary"
