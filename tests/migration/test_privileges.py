"""Who may do what, read from the catalog: functions that run as the schema's owner, the tables
row-level security guards, the database's CONNECT privilege, and the live events' payloads."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import asyncpg
import psycopg
import pytest

from optiinfra_store import Store
from optiinfra_store.enums import AgentType, WorkflowType
from optiinfra_store.errors import ConfigurationError
from optiinfra_store.records import AgentCreate, CustomerCreate, WorkflowExecutionCreate
from optiinfra_store.workflow_events import CHANNEL, customer_tag
from tests.pg import app_login, connect_role, database_of, ensure_role, may_connect, with_user

# SECURITY DEFINER functions that a role with no grants (PUBLIC) or a confined transaction
# (optiinfra_tenant) may run, and why each is safe to.
OWNER_FUNCTIONS_ANYONE_MAY_RUN: dict[str, str] = {}
OWNER_FUNCTIONS_A_CONFINED_TRANSACTION_MAY_RUN = {
    "optiinfra_rollup_plan(timestamp with time zone,timestamp with time zone,boolean,boolean)": (
        "every analytics call asks it which hours are rolled up; it reads the rollup watermark and the"
        " pending hours, nothing of any customer, and writes nothing"
    ),
    "optiinfra_rollup_plan(timestamp with time zone,timestamp with time zone,boolean,boolean,uuid)": (
        "every analytics call asks it where to read each part of its window; it reads the rollup watermark"
        " and the hours marked pending for every customer and the one asked for (in a confined transaction"
        " always the bound one, whichever is asked for), and writes nothing"
    ),
    "optiinfra_durable_lsn()": (
        "a confined subscriber's own connection asks it how far commits are durable on the synchronous"
        " standby before delivering events; it returns one WAL position, nothing of any customer"
    ),
}

NOBODY = "optiinfra_test_nobody"
"""A login role with no grants at all, but CONNECT to the session's database."""


@pytest.fixture(scope="module")
def nobody_dsn(databases, migrated_dsn) -> str:
    ensure_role(databases.admin_dsn, NOBODY, "LOGIN")
    return may_connect(databases.admin_dsn, migrated_dsn, NOBODY)


def owner_functions(dsn: str, grantee: str) -> set[str]:
    """The schema's SECURITY DEFINER functions `grantee` may execute (PUBLIC: every role may)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            """
            SELECT p.oid::regprocedure::text,
                   p.proacl IS NULL  -- the default: EXECUTE for PUBLIC
                   OR EXISTS (SELECT FROM aclexplode(p.proacl) a WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'),
                   has_function_privilege('optiinfra_tenant', p.oid, 'EXECUTE')
              FROM pg_proc p
             WHERE p.pronamespace = 'public'::regnamespace AND p.prosecdef
            """
        ).fetchall()
    assert rows, "no SECURITY DEFINER function found: the query is wrong"
    return {name for name, public, tenant in rows if (public if grantee == "PUBLIC" else tenant)}


def test_owner_functions__none_runs_for_everyone(migrated_dsn):
    assert owner_functions(migrated_dsn, "PUBLIC") == set(OWNER_FUNCTIONS_ANYONE_MAY_RUN)


def test_owner_functions__a_confined_transaction_runs_only_the_allowed(migrated_dsn):
    assert owner_functions(migrated_dsn, "optiinfra_tenant") == set(OWNER_FUNCTIONS_A_CONFINED_TRANSACTION_MAY_RUN)


@pytest.mark.parametrize(
    "call",
    [
        "SELECT optiinfra_roll_up(24)",
        "SELECT optiinfra_rollup_touch(ARRAY[now()])",
        "SELECT optiinfra_notify_key()",
        "SELECT optiinfra_notify_tag(gen_random_uuid())",
        "SELECT optiinfra_drop_metric_partitions(now())",
    ],
)
@pytest.mark.parametrize("who", ["a role with no grants", "a confined transaction"])
def test_owner_functions__refused_and_nothing_written(who, call, nobody_dsn, migrated_dsn, clean_dsn):
    dsn = nobody_dsn if who == "a role with no grants" else migrated_dsn
    with psycopg.connect(dsn) as conn:
        if who == "a confined transaction":
            conn.execute("SELECT optiinfra_confine(%s)", (uuid.uuid4(),))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(call)
    with psycopg.connect(migrated_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM workflow_rollup_pending").fetchone()[0] == 0


def test_tables__each_guarded_by_row_level_security_or_declared_shared_or_internal(migrated_dsn):
    """A table a confined transaction can reach is guarded by row-level security (enabled, with a
    policy for optiinfra_tenant) or declared shared; a table declared internal is out of its reach.
    Declarations are the tables' comments (`shared: why` / `internal: why`)."""
    with psycopg.connect(migrated_dsn) as conn:
        tables = conn.execute(
            """
            SELECT c.relname, c.relrowsecurity,
                   EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid
                             AND (p.polroles = '{0}' OR 'optiinfra_tenant'::regrole = ANY (p.polroles))),
                   coalesce(obj_description(c.oid, 'pg_class'), ''),
                   has_table_privilege('optiinfra_tenant', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE')
              FROM pg_class c
             WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
               AND NOT c.relispartition AND c.relname NOT LIKE '%yoyo%'
            """
        ).fetchall()
    assert len(tables) >= 19
    wrong = []
    for name, secured, tenant_policy, comment, reachable in tables:
        guarded = secured and tenant_policy
        shared = comment.startswith("shared: ") and len(comment) > 20
        internal = comment.startswith("internal: ") and len(comment) > 20
        if [guarded, shared, internal].count(True) != 1 or (internal and reachable):
            wrong.append((name, f"guarded={guarded} comment={comment!r} reachable when confined={reachable}"))
    assert wrong == []


def test_database__only_its_connect_role_may_connect(migrated_dsn):
    with psycopg.connect(migrated_dsn) as conn:
        grantees = conn.execute(
            """
            SELECT coalesce(a.grantee::regrole::text, 'PUBLIC')
              FROM pg_database d, aclexplode(d.datacl) a
             WHERE d.datname = current_database() AND a.privilege_type = 'CONNECT' AND a.grantee <> d.datdba
            """
        ).fetchall()
    assert [g for (g,) in grantees] == [connect_role(database_of(migrated_dsn))]


async def test_two_databases_on_one_server__a_login_of_one_cannot_reach_the_other(databases, migrated_dsn):
    from optiinfra_store import migrations

    other = databases.create("optiinfra_staging")
    migrations.apply(other)
    async with Store.connect(other) as owner:
        await owner.customers.create(CustomerCreate(name="Staging", email="ops@staging.example"))
    login = app_login(databases.admin_dsn, migrated_dsn, "optiinfra_test_agent")  # the session database's
    async with Store.connect(login, min_size=1, max_size=1) as own:
        assert await own.customers.count() >= 0
    with pytest.raises(ConfigurationError, match=f"GRANT {connect_role(database_of(other))} TO optiinfra_test_agent"):
        await Store.connect(with_user(other, "optiinfra_test_agent"), min_size=1, max_size=1)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):  # and not through the driver either
        await asyncpg.connect(with_user(other, "optiinfra_test_agent"))


async def test_live_events__the_payload_names_no_customer(nobody_dsn, migrated_dsn, store):
    """LISTEN needs no privilege: a role with no grants, and a confined transaction, hear the
    channel. What they hear must not say which customer, nor let them test a guess."""
    customer = await store.customers.create(CustomerCreate(name="Acme", email="ops@acme.example"))
    agent = await store.agents.create(AgentCreate(type=AgentType.COST, name="Cost", version="1"))
    heard: list[str] = []
    nobody = await asyncpg.connect(nobody_dsn)
    confined = await asyncpg.connect(migrated_dsn)
    try:
        await confined.execute("SELECT optiinfra_confine($1, false)", uuid.uuid4())
        for listener in (nobody, confined):
            await listener.add_listener(CHANNEL, lambda *args: heard.append(args[-1]))
        execution = await store.workflow_executions.create(
            WorkflowExecutionCreate(
                agent_id=agent.id, customer_id=customer.id, workflow_type=WorkflowType.COST_ANALYSIS
            )
        )
        await store.workflow_executions.start(execution.id)
        for _ in range(100):
            if len(heard) == 4:
                break
            await asyncio.sleep(0.02)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await nobody.fetchval("SELECT optiinfra_notify_tag($1)", customer.id)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await confined.fetchval("SELECT optiinfra_notify_key()")
    finally:
        for conn in (nobody, confined):
            with contextlib.suppress(Exception):
                await conn.close()
    assert len(heard) == 4
    identities = {str(customer.id), customer.id.hex, str(agent.id), str(execution.id)}
    assert not [p for p in heard if any(i in p.lower() for i in identities)]
    # what the store computes with the key it alone may read
    with psycopg.connect(migrated_dsn) as conn:
        key = conn.execute("SELECT optiinfra_notify_key()").fetchone()[0]
    assert {p.partition(":")[2] for p in heard} == {customer_tag(key, customer.id)}


async def test_live_events__tags_differ_between_databases(databases, migrated_dsn):
    """Each database draws its own key: one customer id tags differently in another deployment."""
    from optiinfra_store import migrations

    other = databases.create("optiinfra_keyed")
    migrations.apply(other)
    keys = []
    for dsn in (migrated_dsn, other):
        with psycopg.connect(dsn) as conn:
            keys.append(conn.execute("SELECT optiinfra_notify_key()").fetchone()[0])
    assert len(keys[0]) == 32 and keys[0] != keys[1]


async def test_confinement__a_policy_on_a_table_outside_the_schema_does_not_stop_it(nobody_dsn, store):
    """Any role that may connect can make a temporary table with a policy and row-level security
    off; confinement checks the schema's tables, so it goes on for everyone else."""
    customer = await store.customers.create(CustomerCreate(name="Acme", email="ops@acme.example"))
    with psycopg.connect(nobody_dsn) as nobody:
        nobody.execute("CREATE TEMP TABLE decoy (customer_id uuid); CREATE POLICY decoy_everyone ON decoy USING (true)")
        nobody.commit()
        assert [c.id for c in await store.for_customer(customer.id).customers.list()] == [customer.id]
