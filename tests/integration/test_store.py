"""Store lifecycle: both ways to connect, codecs, configuration and connection errors."""

from __future__ import annotations

from uuid import uuid4

import pytest

from optiinfra_store import Store
from optiinfra_store.connection.dsn import DSN_ENV
from optiinfra_store.enums import WorkflowType
from optiinfra_store.errors import ConfigurationError, InvalidArgument, StoreUnavailable
from optiinfra_store.records import PoolStats, WorkflowExecutionCreate


async def test_connect__awaited_then_closed(clean_dsn):
    store = await Store.connect(clean_dsn, min_size=1, max_size=2)
    try:
        assert await store.customers.count() == 0
        assert not store.by_customer  # a schema on one server (or on a cluster, not distributed)
    finally:
        await store.close()
    assert store.pool.is_closing()


async def test_connect__context_manager_and_environment(clean_dsn, monkeypatch):
    monkeypatch.setenv(DSN_ENV, clean_dsn)
    async with Store.connect(max_size=2) as store:
        assert await store.agents.list() == []
    assert store.pool.is_closing()


async def test_pool_stats__connections_open_in_use_and_idle_and_the_bounds(clean_dsn):
    async with Store.connect(clean_dsn, min_size=2, max_size=5) as store:
        assert store.pool_stats() == PoolStats(size=2, in_use=0, idle=2, min_size=2, max_size=5)
        async with store.transaction() as tx:  # holds one connection until it ends
            await tx.customers.count()
            assert store.pool_stats() == PoolStats(size=2, in_use=1, idle=1, min_size=2, max_size=5)
            async with store.transaction() as other:
                await other.customers.count()
                async with store.transaction() as third:  # beyond min_size: the pool opens one more
                    await third.customers.count()
                    assert store.pool_stats() == PoolStats(size=3, in_use=3, idle=0, min_size=2, max_size=5)
        assert store.pool_stats().in_use == 0
        assert store.for_customer(uuid4()).pool_stats() == store.pool_stats()  # the same pool


async def test_connect__no_dsn_is_configuration_error(monkeypatch):
    monkeypatch.delenv(DSN_ENV, raising=False)
    with pytest.raises(ConfigurationError, match=DSN_ENV):
        Store.connect()


async def test_connect__unreachable_server_is_store_unavailable():
    with pytest.raises(StoreUnavailable):
        await Store.connect("postgresql://nobody@127.0.0.1:1/none", timeout=2)


async def test_jsonb__dicts_and_lists_in_and_out_never_strings(store, agent, customer):
    nested = {"a": [1, 2.5, {"b": None}], "unicode": "naïve ☃", "quote": "'; DROP TABLE x; --"}
    execution = await store.workflow_executions.create(
        WorkflowExecutionCreate(
            agent_id=agent.id,
            customer_id=customer.id,
            workflow_type=WorkflowType.COST_ANALYSIS,
            input_data=nested,
        )
    )
    fetched = await store.workflow_executions.get(execution.id)
    assert fetched.input_data == nested and isinstance(fetched.input_data, dict)
    assert isinstance(fetched.workflow_type, WorkflowType)


async def test_user_init_runs_after_codecs(clean_dsn):
    seen = []

    async def init(conn):
        seen.append(await conn.fetchval("SELECT '{\"x\": 1}'::jsonb"))

    async with Store.connect(clean_dsn, min_size=1, max_size=1, init=init):
        pass
    assert seen == [{"x": 1}]


@pytest.mark.parametrize(
    "option",
    [
        {"command_timeout": 0},
        {"statement_timeout": -1},
        {"acquire_timeout": "5"},
        {"acquire_timeout": True},
        {"statement_timeout": float("inf")},
        {"max_document_bytes": 0},
        {"max_document_bytes": True},
        {"secret_key": ""},
    ],
)
async def test_connect__bad_option_is_invalid_argument_before_connecting(clean_dsn, option):
    with pytest.raises(InvalidArgument, match=next(iter(option))):
        Store.connect(clean_dsn, **option)


async def test_connect__statement_timeout_is_the_servers(clean_dsn):
    async with Store.connect(clean_dsn, statement_timeout=1.5) as store:
        async with store.transaction() as tx:
            assert await tx.connection.fetchval("SHOW statement_timeout") == "1500ms"


async def test_connect__jit_off_unless_asked_for(clean_dsn):
    async with Store.connect(clean_dsn, max_size=1) as store:
        assert await store.pool.fetchval("SHOW jit") == "off"
    async with Store.connect(clean_dsn, max_size=1, server_settings={"jit": "on"}) as store:
        assert await store.pool.fetchval("SHOW jit") == "on"


async def test_connect__on_a_citus_node_catalog_reads_show_the_shards(clean_dsn):
    # asyncpg's type introspection reads pg_class, which Citus filters row by row (codecs.py)
    async with Store.connect(clean_dsn, max_size=1) as store:
        citus = await store.pool.fetchval("SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus')")
        setting = await store.pool.fetchval("SELECT current_setting('citus.override_table_visibility', true)")
    assert setting == "off" if citus else setting in (None, "on")  # "on": a server that preloads citus


async def test_slow_statements_are_logged_without_their_arguments(migrated_dsn, caplog):
    import logging

    from optiinfra_store import Store

    async with Store.connect(migrated_dsn, min_size=1, max_size=1, slow_statement=0.05) as store:
        async with store.transaction() as tx:
            with caplog.at_level(logging.WARNING, logger="optiinfra_store.statements"):
                await tx.connection.fetchval("SELECT 1")
                await tx.connection.fetchval("SELECT pg_sleep($1::float8 / 10) -- napping", 1)
    slow = [r.getMessage() for r in caplog.records if r.name == "optiinfra_store.statements"]
    # the nap, once, by its text ("SELECT 1" may pass the threshold too on a loaded machine)
    napping = [message for message in slow if "napping" in message]
    assert len(napping) == 1 and napping[0].startswith("slow statement (") and "pg_sleep($1" in napping[0]
