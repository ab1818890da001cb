"""Calls confined to a customer on a schema distributed by customer: the binding reaches every
worker the statement does (optiinfra_confine, 0030), each shard holds its customer's rows to its
policies on its own node, and wherever the binding or the tenant's login is missing the call fails
closed: it sees and writes nothing, or raises ConfigurationError naming the fix."""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import psycopg
import pytest
from psycopg import sql

from optiinfra_store import Store, distribution, migrations
from optiinfra_store.connection.codecs import init_connection
from optiinfra_store.connection.executor import Executor, reads_only
from optiinfra_store.enums import EventType, WorkflowType
from optiinfra_store.errors import AccessDenied, ConfigurationError, MigrationError, NotFound
from optiinfra_store.queries import load
from optiinfra_store.records import (
    ApprovalCreate,
    EventCreate,
    RecommendationCreate,
    WorkflowExecutionCreate,
    WorkflowStepCreate,
)
from optiinfra_store.repositories import repository_types
from tests.pg import CitusCluster, database_of


@dataclass
class Placed:
    dsn: str
    customers: dict[int, UUID]
    """A customer whose rows live on each worker: {the worker's port: customer id}."""
    agent: UUID


def home(conn: psycopg.Connection, customer: UUID) -> int:
    """The port of the worker holding `customer`'s shard of workflow_executions (and of every
    table co-located with it)."""
    return conn.execute(
        "SELECT nodeport FROM citus_shards WHERE table_name = 'workflow_executions'::regclass "
        "AND shardid = get_shard_id_for_distribution_column('workflow_executions', %s)",
        (customer,),
    ).fetchone()[0]


@pytest.fixture(scope="module")
async def placed(databases, citus: CitusCluster) -> Placed:
    """A database of the module's own, migrated, distributed and with optiinfra_tenant admitted
    to the workers; a customer on each worker, and an agent."""
    dsn = databases.create("optiinfra_confined")
    migrations.apply(dsn)
    distribution.distribute(dsn)
    citus.admit_tenant(dsn)
    customers: dict[int, UUID] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        while len(customers) < len(citus.worker_ports):
            candidate = uuid.uuid4()
            customers.setdefault(home(conn, candidate), candidate)
        for port, customer in customers.items():
            add_customer(conn, customer, f"on {port}")
        agent = conn.execute("INSERT INTO agents (type, name, version) VALUES ('cost', 'cost', '1') RETURNING id")
        return Placed(dsn, customers, agent.fetchone()[0])


def add_customer(conn: psycopg.Connection, customer: UUID, name: str) -> None:
    conn.execute(
        "INSERT INTO customers (id, name, email) VALUES (%s, %s, %s)", (customer, name, f"ops@{customer}.example")
    )


def other(placed: Placed, port: int) -> tuple[int, UUID]:
    (found,) = [(p, c) for p, c in placed.customers.items() if p != port]
    return found


async def new_execution(store: Store, placed: Placed, customer: UUID) -> Any:
    return await store.workflow_executions.create(
        WorkflowExecutionCreate(agent_id=placed.agent, customer_id=customer, workflow_type=WorkflowType.COST_ANALYSIS)
    )


async def test_confined_store__reads_and_writes_its_own_customer_on_either_worker_and_nothing_else(placed):
    async with Store.connect(placed.dsn, min_size=1, max_size=4) as store:
        assert store.by_customer
        made = {}
        for port, customer in placed.customers.items():
            confined = store.for_customer(customer)
            assert not confined._executor._session  # a transaction a call: the binding reaches the workers
            execution = await new_execution(confined, placed, customer)
            steps = await confined.workflow_steps.create_many(
                [
                    WorkflowStepCreate(workflow_execution_id=execution.id, step_name=f"s{n}", step_order=n)
                    for n in (1, 2)
                ]
            )
            await confined.workflow_executions.start(execution.id, actor="agent", reason="go")
            await confined.workflow_steps.start(steps[0].id)
            await confined.workflow_steps.complete(steps[0].id, output_data={"ok": True})
            event = await confined.events.create(
                EventCreate(customer_id=customer, event_type=EventType.COST_ANOMALY, title=f"spike on {port}")
            )
            made[port] = (customer, execution, steps, event)
        for port, (customer, execution, steps, event) in made.items():
            confined = store.for_customer(customer)
            theirs, their_execution, their_steps, their_event = made[other(placed, port)[0]]
            assert (await confined.workflow_executions.get(execution.id)).status == "running"
            detail = await confined.workflow_executions.get_detail(execution.id)
            assert [s.id for s in detail.steps] == [s.id for s in steps]
            history = await confined.workflow_executions.history(execution.id)
            assert [(t.to_status, t.actor) for t in history if t.workflow_step_id is None] == [
                ("pending", None),
                ("running", "agent"),
            ]
            # lists and counts read every shard, on both workers: only this customer's rows
            assert [e.id for e in (await confined.workflow_executions.list()).items] == [execution.id]
            assert await confined.workflow_steps.count() == 2
            assert [e.id for e in await confined.events.list()] == [event.id]
            assert [c.id for c in await confined.customers.list()] == [customer]
            for attempt in (
                confined.workflow_executions.get(their_execution.id),
                confined.workflow_executions.get_detail(their_execution.id),
                confined.workflow_steps.get(their_steps[0].id),
                confined.events.get(their_event.id),
                confined.workflow_executions.cancel(their_execution.id, "not yours"),
                confined.workflow_steps.complete(their_steps[1].id),
            ):
                with pytest.raises(NotFound):
                    await attempt
            with pytest.raises(AccessDenied):
                await confined.events.create(
                    EventCreate(customer_id=theirs, event_type=EventType.AGENT_ERROR, title="x")
                )
            with pytest.raises(AccessDenied):
                await new_execution(confined, placed, theirs)
        # unconfined, the owner sees both customers' rows, untouched by the other
        for customer, execution, steps, event in made.values():
            assert (await store.workflow_executions.get(execution.id)).status == "running"
            assert (await store.workflow_steps.get(steps[1].id)).status == "pending"
            assert (await store.events.list(customer_id=customer))[0].id == event.id


def _customer_reads() -> set[str]:
    """The statements that read a row's (or its parent's) customer before a write names it."""
    texts = set()
    for table in repository_types():
        queries = load(table)
        texts |= {getattr(queries, name) for name in queries.names() if name in ("customer_of", "parent_customer")}
    assert texts, "no statement reads a row's customer: the names are wrong"
    return texts


@contextlib.contextmanager
def statements_sent() -> Iterator[list[tuple[str, tuple[Any, ...]]]]:
    """Every statement the store's executors send while the block runs, with its arguments."""
    sent: list[tuple[str, tuple[Any, ...]]] = []
    originals = {name: getattr(Executor, name) for name in ("fetch", "fetchrow", "fetchval", "execute")}

    def wrap(method: Any) -> Any:
        async def recorded(executor: Executor, text: str, *args: Any) -> Any:
            sent.append((text, args))
            return await method(executor, text, *args)

        return recorded

    for name, method in originals.items():
        setattr(Executor, name, wrap(method))
    try:
        yield sent
    finally:
        for name, method in originals.items():
            setattr(Executor, name, method)


async def test_confined_writes__name_their_customer_without_reading_it_and_go_to_one_shard(placed):
    """A confined store knows its customer: its child inserts and transitions name it without the
    read of the row's customer an unconfined store makes first, and each goes to one shard."""
    port, customer = next(iter(placed.customers.items()))
    async with Store.connect(placed.dsn, min_size=1, max_size=2) as store:
        confined = store.for_customer(customer)
        recommendation = await confined.recommendations.create(
            RecommendationCreate(
                customer_id=customer, agent_id=placed.agent, recommendation_type="cost_reduction", title="spot"
            )
        )
        execution = await new_execution(confined, placed, customer)
        with statements_sent() as sent:
            step = await confined.workflow_steps.create(
                WorkflowStepCreate(workflow_execution_id=execution.id, step_name="plan", step_order=1)
            )
            await confined.workflow_steps.create_many(
                [WorkflowStepCreate(workflow_execution_id=execution.id, step_name="act", step_order=2)]
            )
            await confined.workflow_executions.start(execution.id)
            await confined.workflow_steps.start(step.id)
            await confined.workflow_steps.complete(step.id)
            approval = await confined.approvals.create(ApprovalCreate(recommendation_id=recommendation.id))
            await confined.approvals.approve(approval.id, decided_by="admin")
        with statements_sent() as unconfined:  # for contrast: the platform's store reads the customer first
            await store.workflow_executions.complete(execution.id)
    reads = _customer_reads()
    assert not [text for text, _ in sent if text in reads]
    assert [text for text, _ in unconfined if text in reads]
    writes = [(text, args) for text, args in sent if not reads_only(text)]
    assert len(writes) >= 7
    conn = await asyncpg.connect(placed.dsn)
    await init_connection(conn)
    try:
        for text, args in writes:
            async with conn.transaction():
                await conn.execute("SELECT optiinfra_confine($1)", customer)
                explained = await conn.fetchval("EXPLAIN (FORMAT JSON) " + text, *args)
            plan = explained if isinstance(explained, str) else json.dumps(explained)
            tasks = [int(n) for n in re.findall(r'"Task Count": (\d+)', plan)]
            assert tasks and max(tasks) == 1, (text, tasks)
    finally:
        await conn.close()


def test_statement_reaching_a_worker_without_the_binding__sees_and_writes_nothing(placed, citus):
    """Bound on the coordinator alone (set_config, which Citus sends to no worker), a statement
    runs on the workers as optiinfra_tenant with no customer: the shards' policies show it no row
    and take none, though the coordinator's setting names the customer."""
    port, customer = next(iter(placed.customers.items()))
    with psycopg.connect(placed.dsn, autocommit=True) as owner:
        owner.execute(
            "INSERT INTO events (customer_id, event_type, title) VALUES (%s, 'cost_anomaly', 'unbound probe')",
            (customer,),
        )
        held = owner.execute("SELECT count(*) FROM events WHERE customer_id = %s", (customer,)).fetchone()[0]
        assert held >= 1
        with owner.transaction():
            owner.execute(
                "SELECT set_config('role', 'optiinfra_tenant', true), set_config('optiinfra.customer_id', %s, true)",
                (str(customer),),
            )
            assert owner.execute("SELECT current_user, optiinfra_customer_id()").fetchone() == (
                "optiinfra_tenant",
                customer,
            )
            assert owner.execute("SELECT count(*) FROM events WHERE customer_id = %s", (customer,)).fetchone() == (0,)
            assert owner.execute("SELECT count(*) FROM events").fetchone() == (0,)
            assert (
                owner.execute("UPDATE events SET title = 'changed' WHERE customer_id = %s", (customer,)).rowcount == 0
            )
            assert owner.execute("DELETE FROM events WHERE customer_id = %s", (customer,)).rowcount == 0
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
                with owner.transaction():
                    owner.execute(
                        "INSERT INTO events (customer_id, event_type, title) VALUES (%s, 'cost_anomaly', 'x')",
                        (customer,),
                    )
        assert owner.execute(
            "SELECT count(*) FROM events WHERE customer_id = %s AND title = 'unbound probe'", (customer,)
        ).fetchone() == (1,)
    # on the worker itself, logged in as optiinfra_tenant: the shard's own policies
    shard = f"events_{_shard_of(placed.dsn, 'events', customer)}"
    worker = citus.dsn(port, database_of(placed.dsn))
    with psycopg.connect(worker, user="optiinfra_tenant") as tenant:
        read = sql.SQL("SELECT count(*) FROM {} WHERE customer_id = %s").format(sql.Identifier(shard))
        assert tenant.execute(read, (customer,)).fetchone() == (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            tenant.execute(
                sql.SQL("INSERT INTO {} (customer_id, event_type, title) VALUES (%s, 'cost_anomaly', 'x')").format(
                    sql.Identifier(shard)
                ),
                (customer,),
            )
        tenant.rollback()
        tenant.execute("SELECT set_config('optiinfra.customer_id', %s, true)", (str(customer),))
        assert tenant.execute(read, (customer,)).fetchone() == (held,)


def _shard_of(dsn: str, table: str, customer: UUID) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT get_shard_id_for_distribution_column(%s, %s)", (table, customer)).fetchone()[0]


def guarded_tables(dsn: str) -> dict[str, int]:
    """{table with a row-level security policy: its number of policies}, as the coordinator has them."""
    with psycopg.connect(dsn) as conn:
        return dict(
            conn.execute(
                "SELECT c.relname, count(*) FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid"
                " JOIN pg_dist_partition d ON d.logicalrelid = c.oid GROUP BY 1"
            ).fetchall()
        )


def test_every_shard_of_a_guarded_table__row_level_security_on_its_worker(placed, citus):
    tables = guarded_tables(placed.dsn)
    assert {"workflow_executions", "workflow_steps", "events", "customers", "agent_states"} <= set(tables)
    with psycopg.connect(placed.dsn) as conn:
        placements = conn.execute(
            "SELECT table_name::text, shard_name, nodeport FROM citus_shards WHERE table_name::text = ANY(%s)",
            (list(tables),),
        ).fetchall()
        assert distribution.unguarded_placements(conn) == []
    by_worker: dict[int, set[tuple[str, str]]] = {port: set() for port in citus.worker_ports}
    for table, shard, port in placements:
        if port in by_worker:
            by_worker[port].add((table, shard))
    assert all(by_worker.values())
    for port, shards in by_worker.items():
        with psycopg.connect(citus.dsn(port, database_of(placed.dsn))) as worker:
            worker.execute("SET citus.override_table_visibility = off")  # shards are hidden otherwise
            found = {
                name: (enabled, policies)
                for name, enabled, policies in worker.execute(
                    "SELECT c.relname, c.relrowsecurity, (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid)"
                    " FROM pg_class c WHERE c.relname = ANY(%s)",
                    ([shard for _, shard in shards],),
                )
            }
        assert {shard: found.get(shard) for _, shard in shards} == {shard: (True, tables[t]) for t, shard in shards}


def test_distribute__refuses_a_placement_where_row_level_security_does_not_hold(placed, citus):
    port, customer = next(iter(placed.customers.items()))
    shard = f"workflow_steps_{_shard_of(placed.dsn, 'workflow_steps', customer)}"
    worker = citus.dsn(port, database_of(placed.dsn))
    with psycopg.connect(worker, autocommit=True) as conn:  # on the worker, behind the coordinator's back
        conn.execute(sql.SQL("ALTER TABLE {} DISABLE ROW LEVEL SECURITY").format(sql.Identifier(shard)))
        try:
            with pytest.raises(
                MigrationError, match=rf"workflow_steps \(shard \d+ on 127\.0\.0\.1:{port}\)"
            ) as refused:
                distribution.distribute(placed.dsn)
            assert "not in force" in str(refused.value)
        finally:
            conn.execute(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(sql.Identifier(shard)))
    assert distribution.distribute(placed.dsn) == []


async def _confined_calls_refused(dsn: str, customer: UUID, agent: UUID, match: str) -> None:
    """Every way a confined call runs raises ConfigurationError matching `match`, and nothing is
    written. A store of its own: the coordinator's sessions of another store may hold worker
    connections opened before."""
    with psycopg.connect(dsn) as conn:
        before = conn.execute("SELECT count(*) FROM workflow_executions").fetchone()[0]
    async with Store.connect(dsn, min_size=1, max_size=2) as store:
        confined = store.for_customer(customer)
        with pytest.raises(ConfigurationError, match=match) as refused:
            await confined.workflow_executions.list()
        assert isinstance(refused.value.__cause__, asyncpg.PostgresConnectionError)
        with pytest.raises(ConfigurationError, match=match):  # a write: refused, not OutcomeUnknown
            await confined.workflow_executions.create(
                WorkflowExecutionCreate(agent_id=agent, customer_id=customer, workflow_type=WorkflowType.COST_ANALYSIS)
            )
        with pytest.raises(ConfigurationError, match=match):
            async with confined.transaction() as tx:
                await tx.events.list()
        assert (await store.customers.get(customer)).id == customer  # unconfined, the store still works
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM workflow_executions").fetchone()[0] == before


async def test_tenant_that_may_not_log_in__configuration_error_naming_the_fix(placed):
    port, customer = next(iter(placed.customers.items()))
    with psycopg.connect(placed.dsn, autocommit=True) as admin:
        admin.execute("ALTER ROLE optiinfra_tenant NOLOGIN")  # through the coordinator: on every node
        try:
            await _confined_calls_refused(
                placed.dsn, customer, placed.agent, r"not permitted to log in.*ALTER ROLE optiinfra_tenant LOGIN"
            )
        finally:
            admin.execute("ALTER ROLE optiinfra_tenant LOGIN")


async def test_tenant_that_a_worker_does_not_admit__configuration_error_naming_the_fix(placed, citus):
    """The worker's pg_hba.conf refuses optiinfra_tenant (from the coordinator's address)."""
    port, customer = next(iter(placed.customers.items()))
    hba = citus.work / f"worker{citus.worker_ports.index(port) + 1}" / "pg_hba.conf"
    original = hba.read_text()
    hba.write_text("host all optiinfra_tenant 127.0.0.1/32 reject\n" + original)
    try:
        with psycopg.connect(citus.dsn(port), autocommit=True) as worker:
            worker.execute("SELECT pg_reload_conf()")
        await _confined_calls_refused(placed.dsn, customer, placed.agent, r"pg_hba\.conf.*pg_dist_authinfo")
    finally:
        hba.write_text(original)
        with psycopg.connect(citus.dsn(port), autocommit=True) as worker:
            worker.execute("SELECT pg_reload_conf()")


async def test_tenant_that_may_not_connect_on_the_workers__configuration_error_naming_the_grant(databases):
    """A distributed database whose workers were not told to let optiinfra_tenant connect (it may
    log in: roles are the cluster's, and another database admitted it)."""
    dsn = databases.create("optiinfra_unadmitted")
    migrations.apply(dsn)
    distribution.distribute(dsn)
    customer = uuid.uuid4()
    with psycopg.connect(dsn, autocommit=True) as conn:
        add_customer(conn, customer, "a")
        agent = conn.execute("INSERT INTO agents (type, name, version) VALUES ('cost', 'cost', '1') RETURNING id")
        agent_id = agent.fetchone()[0]
    database = database_of(dsn)
    await _confined_calls_refused(
        dsn, customer, agent_id, rf'GRANT CONNECT ON DATABASE "{database}" TO optiinfra_tenant'
    )


async def test_session_binding__refused_on_the_coordinator_made_on_a_worker(placed):
    """A session's binding reaches no worker: the coordinator refuses it. On a worker it binds that
    node's session (what a confined subscription to live events does on each node, reading the
    node's own shards: tests/citus/distributed/test_workflow_events.py checks what it hears)."""
    port, customer = next(iter(placed.customers.items()))
    with psycopg.connect(placed.dsn) as conn:
        with pytest.raises(psycopg.Error, match="a session cannot be confined") as refused:
            conn.execute("SELECT optiinfra_confine(%s, false)", (customer,))
        assert refused.value.sqlstate == "OI002"
    async with Store.connect(placed.dsn, min_size=1, max_size=2) as store:
        async with store.for_customer(customer).workflow_events() as events:
            assert events is not None


async def test_confined_agent_state_write__needs_reference_writes_through_the_coordinator(placed, citus):
    """agent_states is a reference table that references agents and customers: Citus serializes a
    write to it with a lock on those on the first worker, which needs write privileges on them that
    optiinfra_tenant does not have. With writes to reference tables through the coordinator only,
    which serializes them itself, the lock is not taken there and the confined write runs."""
    port, customer = next(iter(placed.customers.items()))
    _, theirs = other(placed, port)
    with psycopg.connect(placed.dsn, autocommit=True) as owner:
        owner.execute("INSERT INTO agent_states (agent_id) VALUES (%s)", (placed.agent,))
    try:
        async with Store.connect(placed.dsn, min_size=1, max_size=2) as store:
            with pytest.raises(AccessDenied, match="permission denied for table (agents|customers)"):
                await store.for_customer(customer).agent_states.record_error(placed.agent, {"msg": "login failed"})
            assert (await store.agent_states.get_for_agent(placed.agent)).last_error is None
        citus.reference_writes_through_the_coordinator(placed.dsn)
        async with Store.connect(placed.dsn, min_size=1, max_size=2) as store:
            state = await store.for_customer(customer).agent_states.record_error(placed.agent, {"msg": "login failed"})
            assert (state.customer_id, state.last_error) == (customer, {"msg": "login failed"})
            with pytest.raises(NotFound):
                await store.for_customer(theirs).agent_states.get_for_agent(placed.agent)
            with pytest.raises(NotFound):
                await store.for_customer(theirs).agent_states.heartbeat(placed.agent)
    finally:
        citus.reference_writes_through_the_coordinator(placed.dsn, on=False)
        with psycopg.connect(placed.dsn, autocommit=True) as owner:
            owner.execute("DELETE FROM agent_states WHERE agent_id = %s", (placed.agent,))
