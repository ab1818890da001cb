"""errors.translate: the driver's and the server's errors become StoreErrors; a programming error
is not disguised as one. A failure to connect names every server the DSN lists."""

from __future__ import annotations

import logging

import asyncpg
import pytest

from optiinfra_store.connection.executor import translated
from optiinfra_store.connection.options import connector
from optiinfra_store.errors import (
    AlreadyExists,
    ConfigurationError,
    InvalidData,
    StoreError,
    StoreTimeout,
    StoreUnavailable,
    translate,
    translate_connect,
)
from tests.pg import free_port


@pytest.mark.parametrize("error", [TypeError("bad call"), AttributeError("no such"), KeyError("k"), ValueError("v")])
async def test_translated__a_programming_error_goes_through_as_it_is(error):
    with pytest.raises(type(error)) as raised:
        async with translated():
            raise error
    assert raised.value is error and not isinstance(raised.value, StoreError)
    assert translate(error) is error


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (asyncpg.UniqueViolationError("duplicate key"), AlreadyExists),
        (asyncpg.SyntaxOrAccessError("syntax error"), StoreError),
        (asyncpg.InterfaceError("connection is closed"), StoreUnavailable),
        (
            asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress"),
            StoreUnavailable,
        ),
        (ConnectionResetError("reset by peer"), StoreUnavailable),
        (TimeoutError(), StoreTimeout),
        (OverflowError("date value out of range"), InvalidData),  # decoding a date beyond Python's
    ],
)
async def test_translated__the_drivers_errors_become_store_errors_with_the_original_chained(error, expected):
    with pytest.raises(expected) as raised:
        async with translated():
            raise error
    assert raised.value.__cause__ is error


@pytest.mark.parametrize("option", ["dsn", "read_dsn", "events_dsn"])
async def test_connect__a_dsn_the_driver_cannot_read_is_configuration_error_without_its_password(option):
    from optiinfra_store import Store
    from optiinfra_store.errors import ConfigurationError

    unreadable = "postgresql://agent:s3c#ret@db.example/optiinfra"  # '#' ends the host part early
    options = {"dsn": "postgresql://agent@127.0.0.1:1/optiinfra", option: unreadable}
    with pytest.raises(ConfigurationError, match="cannot read the DSN") as refused:
        await Store.connect(**options)
    assert "s3c" not in str(refused.value) and refused.value.__cause__ is None


def test_enum_decoder__a_label_this_version_does_not_know_is_invalid_data():
    from optiinfra_store.connection.codecs import _label_decoder
    from optiinfra_store.enums import WorkflowStatus
    from optiinfra_store.errors import InvalidData

    decode = _label_decoder(WorkflowStatus)
    assert decode(b"running") is WorkflowStatus.RUNNING
    with pytest.raises(InvalidData, match="'paused'") as refused:
        decode(b"paused")
    assert refused.value.__context__ is None


def test_translate__no_server_matching_target_session_attrs_is_store_unavailable():
    error = asyncpg.TargetServerAttributeNotMatched(
        "None of the hosts match the target attribute requirement <SessionAttribute.read_write: 'read-write'>"
    )
    assert type(translate(error)) is StoreUnavailable
    assert str(translate(error)) == "no listed server is a primary (target_session_attrs=read-write)"
    assert str(translate_connect(error, ["h1:6001", "h2:6002"])) == (
        "no listed server is a primary: h1:6001, h2:6002 answered, but each is a standby or read-only "
        "(target_session_attrs=read-write)"
    )


async def test_connect__no_listed_server_answers_names_every_one_without_the_password():
    from optiinfra_store import Store, migrations

    first, second = free_port(), free_port()  # nothing listens there
    dsn = f"postgresql://agent:s3cret@127.0.0.1:{first},127.0.0.1:{second}/optiinfra?target_session_attrs=read-write"
    with pytest.raises(StoreUnavailable) as by_asyncpg:
        await Store.connect(dsn, timeout=5)
    with pytest.raises(StoreUnavailable) as by_psycopg:
        migrations.status(f"{dsn}&connect_timeout=5")
    for refused in (by_asyncpg.value, by_psycopg.value):
        message = str(refused)
        assert f"127.0.0.1:{first}" in message and f"127.0.0.1:{second}" in message, message
        assert "s3cret" not in message


def test_pool_failure_logs__the_stores_become_one_line_on_its_logger_others_pass(caplog):
    pool_log = logging.getLogger("asyncpg.pool")
    connector("postgresql://agent@127.0.0.1:1/optiinfra")  # installs the filter, as every store pool does

    def floor_failure(error: Exception) -> None:
        try:
            raise error
        except Exception:
            pool_log.warning("Failed to restore the pool connection floor; retrying", exc_info=True)

    with caplog.at_level(logging.WARNING):
        floor_failure(StoreUnavailable("cannot connect to 127.0.0.1:1: refused"))
        floor_failure(ConnectionRefusedError("a pool of someone else's"))
    ours, theirs = caplog.records
    assert (ours.name, ours.levelno, ours.exc_info) == ("optiinfra_store.pool", logging.WARNING, None)
    assert (
        ours.getMessage()
        == "Failed to restore the pool connection floor; retrying: cannot connect to 127.0.0.1:1: refused"
    )
    assert theirs.name == "asyncpg.pool" and theirs.exc_info is not None


@pytest.mark.parametrize(
    "message, expected",
    [
        ('duplicate key value violates unique constraint "workflow_steps_execution_id_step_order_key_102680"',
         "workflow_steps_execution_id_step_order_key"),
        ('insert or update on table "workflow_artifacts_102505" violates foreign key constraint '
         '"workflow_artifacts_workflow_step_id_fkey_102505"', "workflow_artifacts_workflow_step_id_fkey"),
        ('new row violates check constraint "workflow_steps_step_order_check"', "workflow_steps_step_order_check"),
    ],
)  # fmt: skip
def test_translate__a_shards_constraint_named_as_the_schema_names_it(message, expected):
    """On a Citus cluster the worker's error names the shard's copy and carries no constraint field."""
    error = translate(asyncpg.IntegrityConstraintViolationError(message))
    assert error.constraint == expected


REFUSED_AT = "connection to the remote node optiinfra_tenant@10.0.0.2:5432 failed with the following error: "


@pytest.mark.parametrize(
    "reason, fix",
    [
        ('FATAL:  role "optiinfra_tenant" is not permitted to log in', "ALTER ROLE optiinfra_tenant LOGIN"),
        ('FATAL:  permission denied for database "opti"infra"\nDETAIL:  User does not have CONNECT privilege.',
         'GRANT CONNECT ON DATABASE "opti""infra" TO optiinfra_tenant'),  # the name quoted as an identifier
        ('FATAL:  pg_hba.conf rejects connection for host "10.0.0.1", user "optiinfra_tenant", database "o"',
         "pg_dist_authinfo"),
        ('FATAL:  password authentication failed for user "optiinfra_tenant"', "pg_hba.conf"),
        ("fe_sendauth: no password supplied", "pg_dist_authinfo"),
    ],
)  # fmt: skip
def test_translate__a_worker_refusing_the_tenant_is_configuration_error_naming_the_fix(reason, fix):
    """On a Citus cluster the coordinator connects to the workers as optiinfra_tenant for a confined
    statement (tests/citus/test_distributed_confinement.py has the real ones)."""
    error = translate(asyncpg.ConnectionFailureError(REFUSED_AT + reason))
    assert isinstance(error, ConfigurationError)
    assert "10.0.0.2:5432" in str(error) and fix in str(error)


@pytest.mark.parametrize(
    "message",
    [
        REFUSED_AT + "could not connect to server: Connection refused",  # a worker that is down
        "connection to the remote node optiinfra_app_login@10.0.0.2:5432 failed with the following error: "
        'FATAL:  role "optiinfra_app_login" is not permitted to log in',  # not the tenant: not ours to explain
    ],
)
def test_translate__other_worker_connection_failures_stay_store_unavailable(message):
    assert type(translate(asyncpg.ConnectionFailureError(message))) is StoreUnavailable
