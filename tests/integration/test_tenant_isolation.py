"""Tenant isolation: `store.for_customer(id)` under the `optiinfra_app` role, enforced by row-level
security. Another customer's rows read as NotFound, cannot be changed, and never appear in lists."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import asyncpg
import psycopg
import pytest
from psycopg import sql

from optiinfra_store import Store, migrations
from optiinfra_store.enums import (
    AgentType,
    ArtifactType,
    EventSeverity,
    EventType,
    MetricType,
    RecommendationType,
    WorkflowType,
)
from optiinfra_store.errors import (
    AccessDenied,
    AlreadyExists,
    ConfigurationError,
    InvalidArgument,
    MissingReference,
    NotFound,
)
from optiinfra_store.records import (
    AgentCapabilityCreate,
    AgentCapabilityUpdate,
    AgentConfigCreate,
    AgentCreate,
    AgentMetricCreate,
    AgentStateCreate,
    AgentStateUpsert,
    AgentUpdate,
    ApprovalCreate,
    CustomerCreate,
    CustomerUpdate,
    EventCreate,
    OptimizationCreate,
    RecommendationCreate,
    RecommendationUpdate,
    WorkflowArtifactCreate,
    WorkflowExecutionCreate,
    WorkflowExecutionUpdate,
    WorkflowStepCreate,
)
from optiinfra_store.repositories import repository_types
from tests.pg import app_login, ensure_role, private_embedded_server, with_user


@dataclass
class Tenant:
    customer: Any
    execution: Any
    step: Any
    artifact: Any
    event: Any
    recommendation: Any
    approval: Any
    optimization: Any
    rows: dict[str, Any]
    """{table: this customer's row}, one for every table of customers' rows (a table with a policy
    `<table>_customer_isolation`): the checks below that take every table take them from here."""


async def make_tenant(store: Store, name: str, agent) -> Tenant:
    customer = await store.customers.create(CustomerCreate(name=name, email=f"ops@{name}.example"))
    execution = await store.workflow_executions.create(
        WorkflowExecutionCreate(
            agent_id=agent.id,
            customer_id=customer.id,
            workflow_type=WorkflowType.COST_ANALYSIS,
        )
    )
    step = await store.workflow_steps.create(
        WorkflowStepCreate(
            workflow_execution_id=execution.id,
            step_name="collect",
            step_order=1,
        )
    )
    artifact = await store.workflow_artifacts.create(
        WorkflowArtifactCreate(
            workflow_execution_id=execution.id,
            workflow_step_id=step.id,
            artifact_type=ArtifactType.REPORT,
            artifact_name="report",
            artifact_path=f"s3://{name}/report.json",
        )
    )
    event = await store.events.create(
        EventCreate(
            customer_id=customer.id,
            agent_id=agent.id,
            event_type=EventType.COST_ANOMALY,
            severity=EventSeverity.HIGH,
            title=f"{name} spend spike",
        )
    )
    recommendation = await store.recommendations.create(
        RecommendationCreate(
            customer_id=customer.id,
            agent_id=agent.id,
            recommendation_type=RecommendationType.COST_REDUCTION,
            title=f"{name}: move to spot",
        )
    )
    approval = await store.approvals.create(ApprovalCreate(recommendation_id=recommendation.id))
    approval = await store.approvals.approve(approval.id, decided_by="admin")
    optimization = await store.optimizations.create(
        OptimizationCreate(
            recommendation_id=recommendation.id,
            approval_id=approval.id,
        )
    )
    rows = {
        "customers": customer,
        "workflow_executions": execution,
        "workflow_steps": step,
        "workflow_artifacts": artifact,
        "events": event,
        "recommendations": recommendation,
        "approvals": approval,
        "optimizations": optimization,
    }
    return Tenant(customer, execution, step, artifact, event, recommendation, approval, optimization, rows)


APP_LOGIN = "optiinfra_test_agent"
"""A login role of the kind the README tells agents to use: a member of optiinfra_app."""


@pytest.fixture(scope="session")
def app_login_dsn(databases, migrated_dsn) -> str:
    return app_login(databases.admin_dsn, migrated_dsn, APP_LOGIN)


@pytest.fixture(scope="session")
async def app_store(app_login_dsn):
    """A pool logged in as an application login role (no startup parameter, so poolers accept it)."""
    async with Store.connect(app_login_dsn) as app:
        yield app


@pytest.fixture(params=["owner", "application role"])
def pool(request, session_store, app_store) -> Store:
    """The suite runs once on the owner's pool (the superuser that ran the migrations) and once on
    an application login role's: confinement must hold on both."""
    return session_store if request.param == "owner" else app_store


@pytest.fixture
async def tenants(store, agent):
    return await make_tenant(store, "acme", agent), await make_tenant(store, "globex", agent)


def customer_isolated_tables(dsn: str) -> set[str]:
    """The tables of customers' rows, as the catalog has them: a policy `<table>_customer_isolation`."""
    with psycopg.connect(dsn) as conn:
        return {
            row[0]
            for row in conn.execute(
                "SELECT c.relname FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid"
                " WHERE c.relnamespace = 'public'::regnamespace AND c.relrowsecurity"
                " AND p.polname = c.relname || '_customer_isolation'"
            )
        }


async def test_tenant__has_a_row_in_every_table_of_customers_rows(migrated_dsn, tenants):
    tables = customer_isolated_tables(migrated_dsn) & set(repository_types())
    assert len(tables) >= 8
    for tenant in tenants:
        assert set(tenant.rows) == tables
        assert all(getattr(row, "id", None) for row in tenant.rows.values())


async def test_every_table_of_customers_rows__only_its_own_rows_reached(pool, store, tenants):
    """In every table of customers' rows a confined store gets and counts its own rows; another
    customer's row reads as NotFound and cannot be deleted (NotFound, or AccessDenied where
    deleting is platform work), and is still there."""
    mine, theirs = tenants
    acme = pool.for_customer(mine.customer.id)
    for table, row in theirs.rows.items():
        repository = getattr(acme, table)
        assert await repository.get(mine.rows[table].id) == mine.rows[table], table
        assert await repository.count() == 1, table
        with pytest.raises(NotFound):
            await repository.get(row.id)
        platform = getattr(type(repository).delete, "platform", False)
        with pytest.raises(AccessDenied if platform else NotFound):
            await repository.delete(row.id)
        assert await getattr(store, table).get(row.id) == row, table


async def test_own_rows__every_repository_reads_and_writes_them(pool, tenants):
    mine, _ = tenants
    acme = pool.for_customer(mine.customer.id)
    assert await acme.customers.get(mine.customer.id) == mine.customer
    detail = await acme.workflow_executions.get_detail(mine.execution.id)
    assert [s.id for s in detail.steps] == [mine.step.id] and [a.id for a in detail.artifacts] == [mine.artifact.id]
    started = await acme.workflow_executions.start(mine.execution.id, actor="agent")
    assert started.version == 2
    assert await acme.workflow_steps.start(mine.step.id)
    assert await acme.events.get(mine.event.id) == mine.event
    assert await acme.approvals.get(mine.approval.id) == mine.approval
    assert (await acme.optimizations.start(mine.optimization.id)).status == "in_progress"
    history = await acme.workflow_executions.history(mine.execution.id)
    assert [(t.from_status, t.to_status) for t in history][-1:] == [("pending", "running")]
    created = await acme.workflow_executions.create(
        WorkflowExecutionCreate(
            agent_id=mine.execution.agent_id,
            customer_id=mine.customer.id,
            workflow_type=WorkflowType.SCALING_DECISION,
        )
    )
    assert (await acme.workflow_executions.get(created.id)).customer_id == mine.customer.id
    stats = await acme.workflow_executions.statistics()
    assert stats.total == 2


async def test_other_customers_rows__read_as_not_found(pool, tenants):
    mine, theirs = tenants
    acme = pool.for_customer(mine.customer.id)
    for table, row in theirs.rows.items():
        with pytest.raises(NotFound):
            await getattr(acme, table).get(row.id)
    with pytest.raises(NotFound):
        await acme.workflow_executions.get_detail(theirs.execution.id)
    with pytest.raises(NotFound):
        await acme.workflow_executions.history(theirs.execution.id)


async def test_other_customers_rows__cannot_be_changed_or_deleted(pool, store, tenants):
    mine, theirs = tenants
    acme = pool.for_customer(mine.customer.id)
    attempts = [
        acme.workflow_executions.update(theirs.execution.id, WorkflowExecutionUpdate(metadata={"x": 1})),
        acme.workflow_executions.update(
            theirs.execution.id, WorkflowExecutionUpdate(metadata={"x": 1}), expected_version=1
        ),
        acme.workflow_executions.start(theirs.execution.id),
        acme.workflow_executions.cancel(theirs.execution.id, "not yours"),
        acme.workflow_steps.start(theirs.step.id),
        acme.workflow_steps.skip(theirs.step.id),
        acme.recommendations.update(theirs.recommendation.id, RecommendationUpdate(title="stolen")),
        acme.approvals.reject(theirs.approval.id, decided_by="mallory"),
        acme.optimizations.start(theirs.optimization.id),
        acme.workflow_artifacts.delete(theirs.artifact.id),
        acme.workflow_steps.delete(theirs.step.id),
        acme.workflow_executions.delete(theirs.execution.id),
        acme.events.delete(theirs.event.id),
        acme.optimizations.delete(theirs.optimization.id),
        acme.approvals.delete(theirs.approval.id),
        acme.recommendations.delete(theirs.recommendation.id),
    ]
    for attempt in attempts:
        with pytest.raises(NotFound):
            await attempt
    # as the owner sees it, nothing of theirs moved
    assert await store.customers.get(theirs.customer.id) == theirs.customer
    assert await store.workflow_executions.get(theirs.execution.id) == theirs.execution
    assert await store.workflow_steps.get(theirs.step.id) == theirs.step
    assert await store.workflow_artifacts.get(theirs.artifact.id) == theirs.artifact
    assert await store.events.get(theirs.event.id) == theirs.event
    assert await store.recommendations.get(theirs.recommendation.id) == theirs.recommendation
    assert await store.approvals.get(theirs.approval.id) == theirs.approval
    assert await store.optimizations.get(theirs.optimization.id) == theirs.optimization


async def test_writing_into_another_customer__access_denied(pool, store, tenants):
    mine, theirs = tenants
    acme = pool.for_customer(mine.customer.id)
    counts = {name: await getattr(store, name).count() for name in ("workflow_executions", "workflow_steps", "events")}
    with pytest.raises(AccessDenied):
        await acme.workflow_executions.create(
            WorkflowExecutionCreate(
                agent_id=theirs.execution.agent_id,
                customer_id=theirs.customer.id,
                workflow_type=WorkflowType.COST_ANALYSIS,
            )
        )
    with pytest.raises(AccessDenied):
        await acme.workflow_steps.create(
            WorkflowStepCreate(
                workflow_execution_id=theirs.execution.id,
                step_name="sneak",
                step_order=2,
            )
        )
    with pytest.raises(AccessDenied):
        await acme.events.create(
            EventCreate(
                customer_id=theirs.customer.id,
                event_type=EventType.AGENT_ERROR,
                title="forged",
            )
        )
    for name, count in counts.items():
        assert await getattr(store, name).count() == count


async def test_writing_under_a_parent__another_customers_answers_as_one_that_does_not_exist(pool, tenants):
    """A child row under another customer's parent is refused exactly as one under a parent that
    does not exist: the refusal tells a confined caller nothing about the other customer's ids."""
    mine, theirs = tenants
    acme = pool.for_customer(mine.customer.id)
    for parent in (theirs.execution.id, uuid4()):
        with pytest.raises(AccessDenied) as refused:
            await acme.workflow_steps.create(
                WorkflowStepCreate(workflow_execution_id=parent, step_name="probe", step_order=1)
            )
        assert str(parent) not in str(refused.value)
    for parent in (theirs.recommendation.id, uuid4()):
        with pytest.raises(AccessDenied):
            await acme.approvals.create(ApprovalCreate(recommendation_id=parent))


async def test_shared_agent__cannot_be_deleted_by_the_application_role(pool, app_store, store, tenants):
    # a deletion would cascade into every customer's executions, past row-level security
    mine, theirs = tenants
    acme = pool.for_customer(mine.customer.id)
    with pytest.raises(AccessDenied, match="agents"):
        await acme.agents.delete(theirs.execution.agent_id)
    with pytest.raises(AccessDenied):
        await app_store.agents.delete(theirs.execution.agent_id)
    assert await store.workflow_executions.get(theirs.execution.id) == theirs.execution
    assert await store.recommendations.get(theirs.recommendation.id) == theirs.recommendation


async def test_idempotency_key__another_customers_use_of_it_changes_nothing(pool, store, tenants):
    """Keys are each customer's own: the answer is the same whether another customer used the key
    or not, and another customer's uncommitted create under it makes nobody wait."""
    mine, theirs = tenants
    keyed = WorkflowExecutionCreate(
        agent_id=theirs.execution.agent_id,
        customer_id=theirs.customer.id,
        workflow_type=WorkflowType.COST_ANALYSIS,
        idempotency_key="run-7",
    )
    first = await store.workflow_executions.create(keyed)
    acme = pool.for_customer(mine.customer.id)
    async with pool.for_customer(theirs.customer.id).transaction() as open_create:  # holds "run-8" uncommitted
        await open_create.workflow_executions.create(keyed.model_copy(update={"idempotency_key": "run-8"}))
        for key in ("run-7", "run-8", "run-9"):  # used and committed, used and open, never used
            mine_now = await asyncio.wait_for(
                acme.workflow_executions.create(
                    keyed.model_copy(update={"customer_id": mine.customer.id, "idempotency_key": key})
                ),
                timeout=5,
            )
            assert (mine_now.customer_id, mine_now.idempotency_key) == (mine.customer.id, key)
            again = keyed.model_copy(update={"customer_id": mine.customer.id, "idempotency_key": key})
            assert await acme.workflow_executions.create(again) == mine_now  # a retry: the same row
    assert (await store.workflow_executions.get(first.id)).customer_id == theirs.customer.id
    assert await store.workflow_executions.count() == 2 + 1 + 1 + 3  # tenants', theirs x2, mine x3


async def test_lists__never_include_other_customers(pool, tenants):
    mine, theirs = tenants
    acme = pool.for_customer(mine.customer.id)
    assert [c.id for c in await acme.customers.list()] == [mine.customer.id]
    assert [e.id for e in (await acme.workflow_executions.list()).items] == [mine.execution.id]
    assert (await acme.workflow_executions.list(customer_id=theirs.customer.id)).items == []
    assert await acme.workflow_steps.list(theirs.execution.id) == []
    assert await acme.workflow_artifacts.list(execution_id=theirs.execution.id) == []
    assert [e.id for e in await acme.events.list()] == [mine.event.id]
    assert [r.id for r in await acme.recommendations.list()] == [mine.recommendation.id]
    assert [a.id for a in await acme.approvals.list()] == [mine.approval.id]
    assert [o.id for o in await acme.optimizations.list()] == [mine.optimization.id]
    assert (await acme.workflow_executions.statistics(customer_id=theirs.customer.id)).total == 0
    assert await acme.workflow_executions.count() == 1


async def test_transaction__confined_too(pool, tenants):
    mine, theirs = tenants
    async with pool.for_customer(mine.customer.id).transaction() as tx:
        assert (await tx.workflow_executions.get(mine.execution.id)).id == mine.execution.id
        with pytest.raises(NotFound):
            await tx.workflow_executions.get(theirs.execution.id)


async def test_unconfined_app_role__sees_no_customer_rows(app_store, store, tenants):
    # fail closed: a pool of the application role that forgot for_customer() sees nothing
    mine, _ = tenants
    await store.workflow_executions.start(mine.execution.id, actor="agent")  # a transition more
    for name, row in mine.rows.items():
        assert await getattr(app_store, name).count() == 0, name
        with pytest.raises(NotFound):
            await getattr(app_store, name).get(row.id)
    async with app_store.transaction() as tx:
        assert await tx.connection.fetchval("SELECT count(*) FROM workflow_transitions") == 0
    assert (await app_store.workflow_executions.list()).items == []
    assert await app_store.customers.list() == []
    assert await app_store.events.list() == []
    assert await app_store.workflow_steps.list(mine.execution.id) == []
    with pytest.raises(NotFound):
        await app_store.workflow_executions.history(mine.execution.id)


async def test_live_events__confined_store_sees_only_its_customer(pool, store, tenants):
    mine, theirs = tenants
    acme = pool.for_customer(mine.customer.id)
    with pytest.raises(InvalidArgument):
        async with acme.workflow_events(customer_id=theirs.customer.id):
            pass
    async with acme.workflow_events(poll_interval=0.05) as events:
        await store.workflow_executions.start(theirs.execution.id)
        await store.workflow_executions.start(mine.execution.id)
        seen = []
        async for transition in events:
            seen.append(transition)
            if transition.to_status == "running":
                break
    assert {t.workflow_execution_id for t in seen} <= {mine.execution.id}
    assert seen[-1].workflow_execution_id == mine.execution.id


async def test_for_customer__of_a_confined_store_never_reaches_another_customer(pool, store, tenants):
    mine, theirs = tenants
    acme = pool.for_customer(mine.customer.id)
    assert acme.for_customer(str(mine.customer.id)) is acme
    with pytest.raises(AccessDenied, match="confined"):
        acme.for_customer(theirs.customer.id)
    with pytest.raises(AccessDenied):
        acme.primary().for_customer(theirs.customer.id)
    assert (await store.workflow_executions.get(theirs.execution.id)).status == theirs.execution.status


async def test_for_customer__validates_the_id_and_shares_the_pool(pool):
    with pytest.raises(Exception) as info:
        pool.for_customer("not-a-uuid")
    assert "customer_id" in str(info.value)
    confined = pool.for_customer("c1000000-0000-4000-8000-000000000001")
    assert confined.pool is pool.pool
    await confined.close()  # does not close the shared pool
    assert not pool.pool._closed


# -- fail closed, whatever role the pool logs in as -------------------------------------------------


async def test_confined_transaction__runs_as_optiinfra_tenant_and_keeps_its_connection(pool, tenants):
    mine, _ = tenants
    async with pool.for_customer(mine.customer.id).transaction() as tx:
        with pytest.raises(AccessDenied, match="connection"):
            tx.connection  # noqa: B018 - one RESET ROLE on it would undo the confinement
        async with tx.transaction() as nested:
            assert (await nested.customers.get(mine.customer.id)).id == mine.customer.id


@pytest.mark.parametrize("login", ["owner", "application role"])
async def test_one_pooled_connection__nothing_of_a_confined_call_stays(login, migrated_dsn, app_login_dsn, tenants):
    mine, theirs = tenants
    dsn = migrated_dsn if login == "owner" else app_login_dsn
    async with Store.connect(dsn, min_size=1, max_size=1) as one:
        acme = one.for_customer(mine.customer.id)
        await acme.workflow_executions.get(mine.execution.id)
        async with acme.transaction() as tx:
            await tx.events.get(mine.event.id)
        with pytest.raises(NotFound):  # a failed confined call leaves nothing either
            await acme.workflow_executions.get(theirs.execution.id)
        # the same connection, unconfined: what its login role sees, nothing of Acme's binding
        async with one.transaction() as tx:
            role, bound = await tx.connection.fetchrow(
                "SELECT current_user, current_setting('optiinfra.customer_id', true)"
            )
        assert role != "optiinfra_tenant" and not bound
        visible = await one.workflow_executions.count()
        assert visible == (2 if login == "owner" else 0)


async def _session_of(conn: Any) -> tuple[str, str]:
    role, bound = await conn.fetchrow("SELECT current_user, current_setting('optiinfra.customer_id', true)")
    return role, bound


@pytest.mark.parametrize("login", ["owner", "application role"])
async def test_one_pooled_connection__bound_to_one_customer_never_serves_another_or_an_unconfined_call(
    login, migrated_dsn, app_login_dsn, tenants
):
    mine, theirs = tenants
    dsn = migrated_dsn if login == "owner" else app_login_dsn
    async with Store.connect(dsn, min_size=1, max_size=1) as one:
        acme, other = one.for_customer(mine.customer.id), one.for_customer(theirs.customer.id)
        assert acme._executor._session  # a direct pool: the connection stays bound between calls
        await acme.workflow_executions.get(mine.execution.id)
        # the connection went back to the pool bound to Acme: another customer never sees Acme's rows
        with pytest.raises(NotFound):
            await other.workflow_executions.get(mine.execution.id)
        assert (await other.workflow_executions.get(theirs.execution.id)).id == theirs.execution.id
        with pytest.raises(NotFound):
            await acme.workflow_executions.get(theirs.execution.id)
        # the pool's own users and an unconfined call get it unbound
        async with one.pool.acquire() as conn:
            role, bound = await _session_of(conn)
        assert role != "optiinfra_tenant" and not bound
        await acme.workflow_executions.get(mine.execution.id)
        assert await one.workflow_executions.count() == (2 if login == "owner" else 0)
        await acme.workflow_executions.get(mine.execution.id)
        async with one.transaction() as tx:
            role, bound = await _session_of(tx.connection)
        assert role != "optiinfra_tenant" and not bound


async def test_one_pooled_connection__a_binding_changed_behind_the_stores_back_is_not_trusted(app_login_dsn, tenants):
    mine, theirs = tenants
    async with Store.connect(app_login_dsn, min_size=1, max_size=1) as one:
        acme = one.for_customer(mine.customer.id)
        await acme.workflow_executions.get(mine.execution.id)
        # the idle connection's session is changed underneath the pool: bound to the other customer
        (holder,) = one.pool._holders
        await holder._con.execute(f"SELECT set_config('optiinfra.customer_id', '{theirs.customer.id}', false)")
        # a confined call binds the session itself and has it checked, whatever it found
        with pytest.raises(NotFound):
            await acme.workflow_executions.get(theirs.execution.id)
        assert (await acme.workflow_executions.get(mine.execution.id)).id == mine.execution.id
        # the role changed back underneath: the next call is confined all the same
        await holder._con.execute("RESET ROLE")
        with pytest.raises(NotFound):
            await acme.workflow_executions.get(theirs.execution.id)
        # a session that may be bound is unbound before anyone else gets it, even after tampering
        await holder._con.execute(f"SELECT set_config('optiinfra.customer_id', '{theirs.customer.id}', false)")
        async with one.pool.acquire() as conn:
            role, bound = await _session_of(conn)
        assert role != "optiinfra_tenant" and not bound


async def test_confined_binding__per_transaction_behind_a_pooler_or_on_a_pool_of_ones_own(
    migrated_dsn, app_login_dsn, tenants
):
    mine, theirs = tenants
    async with Store.connect(app_login_dsn, min_size=1, max_size=1, pooler="transaction") as pooled:
        acme = pooled.for_customer(mine.customer.id)
        assert not acme._executor._session
        await acme.workflow_executions.get(mine.execution.id)
        async with pooled.pool.acquire() as conn:  # nothing stays: the confinement was the transaction's
            role, bound = await _session_of(conn)
        assert role != "optiinfra_tenant" and not bound
    # a pool opened without the store's options does not unbind on acquire: per transaction too
    pool = await asyncpg.create_pool(app_login_dsn, min_size=1, max_size=1)
    try:
        acme = Store(pool, owns_pool=False).for_customer(mine.customer.id)
        assert not acme._executor._session
        with pytest.raises(NotFound):
            await acme.workflow_executions.get(theirs.execution.id)
        role, bound = await _session_of(pool)
        assert role != "optiinfra_tenant" and not bound
    finally:
        await pool.close()


async def test_confined_binding__a_call_cut_short_leaves_nothing_bound_for_the_next_caller(app_login_dsn, tenants):
    mine, _ = tenants
    async with Store.connect(app_login_dsn, min_size=1, max_size=1) as one:
        acme = one.for_customer(mine.customer.id)
        call = asyncio.ensure_future(acme.workflow_executions.get(mine.execution.id))
        await asyncio.sleep(0)  # cancelled while binding or running
        call.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await call
        async with one.pool.acquire() as conn:
            role, bound = await _session_of(conn)
        assert role != "optiinfra_tenant" and not bound


async def test_pool_role_that_cannot_take_on_the_tenant_role__configuration_error(databases, migrated_dsn):
    # the owner is an ordinary role (not a superuser) that ran the migrations but may not grant roles
    owner = "optiinfra_test_owner"
    ensure_role(databases.admin_dsn, owner)
    dsn = databases.create("optiinfra_owned")
    admin = psycopg.connect(dsn, autocommit=True)
    try:
        admin.execute(sql.SQL("REVOKE optiinfra_tenant FROM {}").format(sql.Identifier(owner)))
        admin.execute(
            sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(admin.info.dbname), sql.Identifier(owner))
        )
        admin.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(sql.Identifier(owner)))
        owner_dsn = with_user(dsn, owner)
        migrations.apply(owner_dsn)
        async with Store.connect(owner_dsn) as store:
            customer = await store.customers.create(CustomerCreate(name="a", email="ops@a.example"))
            await store.customers.create(CustomerCreate(name="b", email="ops@b.example"))
            confined = store.for_customer(customer.id)
            with pytest.raises(ConfigurationError, match=f"GRANT optiinfra_tenant TO {owner}"):
                await confined.customers.list()
            with pytest.raises(ConfigurationError, match=f"GRANT optiinfra_tenant TO {owner}"):
                async with confined.transaction():
                    pass
            agent = await store.agents.create(AgentCreate(type=AgentType.COST, name="c", version="1"))
            point = {"agent_id": agent.id, "metric_name": "m", "metric_value": 1.0}
            with pytest.raises(ConfigurationError, match=f"GRANT optiinfra_tenant TO {owner}") as refused:
                await confined.agent_metrics.record_many([point])
            assert isinstance(refused.value.__cause__, asyncpg.InsufficientPrivilegeError)
            admin.execute(sql.SQL("GRANT optiinfra_tenant TO {}").format(sql.Identifier(owner)))
            assert [c.id for c in await confined.customers.list()] == [customer.id]
            assert len(await store.customers.list()) == 2
    finally:
        with contextlib.suppress(Exception):
            admin.execute(sql.SQL("REVOKE optiinfra_tenant FROM {}").format(sql.Identifier(owner)))
        admin.close()


@pytest.mark.slow  # a server of its own per case
@pytest.mark.parametrize("login", ["owner", "application role"])
@pytest.mark.parametrize("weakening", ["BYPASSRLS", "member of the tables' owner", "a policy's table unguarded"])
async def test_tenant_role_that_row_level_security_does_not_hold_for__configuration_error(login, weakening):
    """On a server of the test's own: role attributes are the whole server's, and every other
    database's confined calls would fail while optiinfra_tenant bypasses row-level security."""
    with private_embedded_server("optiinfra-weakened-") as server:
        dsn = server.get_uri()
        login_dsn = dsn if login == "owner" else app_login(dsn, dsn, APP_LOGIN)
        with psycopg.connect(dsn) as conn:
            owner = conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'customers'").fetchone()[0]
        weaken = {
            "BYPASSRLS": sql.SQL("ALTER ROLE optiinfra_tenant BYPASSRLS"),
            "member of the tables' owner": sql.SQL("GRANT {} TO optiinfra_tenant").format(sql.Identifier(owner)),
            # a table with a policy whose row-level security is off: found in the catalog, no list names it
            "a policy's table unguarded": sql.SQL(
                "CREATE TABLE later_table (customer_id uuid); GRANT SELECT ON later_table TO optiinfra_tenant;"
                " CREATE POLICY later_table_customer_isolation ON later_table"
                " USING (customer_id = optiinfra_customer_id())"
            ),
        }[weakening]
        async with Store.connect(dsn) as admin, Store.connect(login_dsn) as store:
            customer = await admin.customers.create(CustomerCreate(name="a", email="ops@a.example"))
            confined = store.for_customer(customer.id)
            assert [c.id for c in await confined.customers.list()] == [customer.id]
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(weaken)
            with pytest.raises(ConfigurationError, match="row-level security does not hold") as refused:
                await confined.customers.list()
            if weakening == "a policy's table unguarded":
                assert "not in force on: later_table" in str(refused.value)


async def test_security_definer_trigger__no_temporary_object_stands_in(app_login_dsn, store, tenants):
    # the trail's trigger runs as the owner: a caller's temporary table of the same name must not
    # receive its insert (and run the caller's own trigger as the owner)
    mine, _ = tenants
    with psycopg.connect(app_login_dsn, autocommit=True) as conn:
        conn.execute("CREATE TEMPORARY TABLE workflow_transitions (LIKE public.workflow_transitions)")
        conn.execute("CREATE TEMPORARY TABLE workflow_executions (LIKE public.workflow_executions)")
        with conn.transaction():
            conn.execute("SELECT optiinfra_confine(%s)", (mine.customer.id,))
            conn.execute("UPDATE public.workflow_executions SET status = 'running' WHERE id = %s", (mine.execution.id,))
        assert conn.execute("SELECT count(*) FROM pg_temp.workflow_transitions").fetchone()[0] == 0
    history = await store.workflow_executions.history(mine.execution.id)
    assert [t.to_status for t in history if t.workflow_step_id is None] == ["pending", "running"]


# -- no reach past the customer ---------------------------------------------------------------------


async def test_platform_changes__refused_when_confined_and_nothing_changes(pool, store, tenants, agent):
    mine, theirs = tenants
    acme = pool.for_customer(mine.customer.id)
    config = await store.agent_configs.set(agent.id, "region", "eu-west-1")
    capability = await store.agent_capabilities.create(
        AgentCapabilityCreate(
            agent_id=agent.id,
            capability_name="spot",
            capability_version="1.0",
        )
    )
    state = await store.agent_states.upsert(AgentStateUpsert(agent_id=agent.id))
    await store.agent_metrics.create(
        AgentMetricCreate(
            agent_id=agent.id,
            metric_name="gpu",
            metric_type=MetricType.GAUGE,
            metric_value=1.0,
            collection_timestamp=datetime.now(UTC) - timedelta(days=400),
        )
    )
    before = await snapshot(store, agent)
    attempts = {
        "agents.create": acme.agents.create(AgentCreate(type=AgentType.COST, name="rogue", version="1")),
        "agents.update": acme.agents.update(agent.id, AgentUpdate(name="renamed")),
        "agents.heartbeat": acme.agents.heartbeat(agent.id),
        "agents.delete": acme.agents.delete(agent.id),
        "agent_configs.set": acme.agent_configs.set(agent.id, "region", "us-east-1"),
        "agent_configs.create": acme.agent_configs.create(
            AgentConfigCreate(agent_id=agent.id, config_key="new", config_value="x")
        ),
        "agent_configs.delete": acme.agent_configs.delete(config.id),
        "agent_configs.rotate_key": acme.agent_configs.rotate_key(),
        "agent_capabilities.create": acme.agent_capabilities.create(
            AgentCapabilityCreate(agent_id=agent.id, capability_name="other", capability_version="1.0")
        ),
        "agent_capabilities.update": acme.agent_capabilities.update(
            capability.id, AgentCapabilityUpdate(description="x")
        ),
        "agent_capabilities.set_enabled": acme.agent_capabilities.set_enabled(capability.id, False),
        "agent_capabilities.update_parameters": acme.agent_capabilities.update_parameters(capability.id, {"a": 1}),
        "agent_capabilities.delete": acme.agent_capabilities.delete(capability.id),
        "agent_metrics.purge": acme.agent_metrics.purge(datetime.now(UTC)),
        "agent_states.delete": acme.agent_states.delete(state.id),
        "customers.create": acme.customers.create(CustomerCreate(name="new", email="new@new.example")),
        "customers.update": acme.customers.update(mine.customer.id, CustomerUpdate(name="renamed")),
        "customers.delete": acme.customers.delete(mine.customer.id),
        "agent_states.release": acme.agent_states.release(agent.id),
        "workflow_executions.purge": acme.workflow_executions.purge(finished_before=datetime.now(UTC)),
    }
    for name, attempt in attempts.items():
        with pytest.raises(AccessDenied, match=name.replace(".", r"\.")):
            await attempt
    assert await snapshot(store, agent) == before
    # and in a confined transaction too
    async with acme.transaction() as tx:
        with pytest.raises(AccessDenied):
            await tx.agents.update(agent.id, AgentUpdate(name="renamed"))
    assert (await store.agents.get(agent.id)).name == agent.name


async def snapshot(store: Store, agent) -> dict[str, Any]:
    return {
        "agents": await store.agents.list(),
        "configs": await store.agent_configs.list(agent_id=agent.id),
        "capabilities": await store.agent_capabilities.list(agent_id=agent.id),
        "metrics": await store.agent_metrics.count(),
        "states": await store.agent_states.list(),
        "customers": await store.customers.list(),
        "executions": (await store.workflow_executions.list()).items,
    }


async def test_platform_changes__refused_by_the_database_too(pool, migrated_dsn, store, keyed_store, tenants, agent):
    # past the store: a raw connection confined the way the store confines it
    mine, _ = tenants
    await keyed_store.agent_configs.set(agent.id, "api_token", "s3cret", is_sensitive=True)
    await store.agent_configs.set(agent.id, "region", "eu-west-1")
    refused = [
        "UPDATE agents SET name = 'renamed'",
        "DELETE FROM agents",
        "INSERT INTO agents (type, name, version) VALUES ('cost', 'rogue', '1')",
        "UPDATE agent_configs SET config_value = 'x'",
        "DELETE FROM agent_configs",
        "UPDATE agent_capabilities SET is_enabled = false",
        "DELETE FROM agent_metrics",
        "DELETE FROM agent_states",
        "DELETE FROM customers",
        "INSERT INTO workflow_transitions (workflow_execution_id, to_status) "
        "SELECT id, 'completed' FROM workflow_executions",
        "TRUNCATE workflow_executions",
    ]
    with psycopg.connect(migrated_dsn) as conn:
        for statement in refused:
            with conn.transaction():
                conn.execute("SELECT optiinfra_confine(%s)", (mine.customer.id,))
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    with conn.transaction():
                        conn.execute(statement)
        with conn.transaction():
            conn.execute("SELECT optiinfra_confine(%s)", (mine.customer.id,))
            keys = [row[0] for row in conn.execute("SELECT config_key FROM agent_configs")]
        assert keys == ["region"]
    assert (await store.agents.get(agent.id)).name == agent.name


async def test_sensitive_configs__not_readable_through_a_confined_store(pool, store, keyed_store, tenants, agent):
    mine, _ = tenants
    await keyed_store.agent_configs.set(agent.id, "api_token", "s3cret", is_sensitive=True)
    await store.agent_configs.set(agent.id, "region", "eu-west-1")
    acme = pool.for_customer(mine.customer.id)
    assert await acme.agent_configs.get_value(agent.id, "region") == "eu-west-1"
    with pytest.raises(NotFound):
        await acme.agent_configs.get_value(agent.id, "api_token")
    assert [c.config_key for c in await acme.agent_configs.list(agent_id=agent.id)] == ["region"]


async def test_agent_state__points_only_at_the_confined_customers_executions(pool, store, tenants, agent):
    mine, theirs = tenants
    await store.agent_states.upsert(AgentStateUpsert(agent_id=agent.id))
    acme = pool.for_customer(mine.customer.id)
    with pytest.raises(NotFound, match="workflow execution") as other:
        await acme.agent_states.set_current_workflow(agent.id, theirs.execution.id)
    with pytest.raises(NotFound, match="workflow execution") as missing:
        await acme.agent_states.set_current_workflow(agent.id, uuid4())
    assert type(other.value) is type(missing.value) and str(other.value).replace(str(theirs.execution.id), "?") == str(
        missing.value
    ).replace(str(missing.value.key), "?")
    with pytest.raises(MissingReference):
        await acme.agent_states.upsert(AgentStateUpsert(agent_id=agent.id, current_workflow_id=theirs.execution.id))
    assert (await store.agent_states.get_for_agent(agent.id)).current_workflow_id is None
    pointed = await acme.agent_states.set_current_workflow(agent.id, mine.execution.id)
    assert (pointed.current_workflow_id, pointed.customer_id) == (mine.execution.id, mine.customer.id)


async def test_agent_state__of_one_customers_work_is_hidden_from_the_others(pool, store, tenants, agent):
    mine, theirs = tenants
    acme, globex = pool.for_customer(mine.customer.id), pool.for_customer(theirs.customer.id)
    state = await acme.agent_states.upsert(
        AgentStateUpsert(
            agent_id=agent.id,
            workflow_data={"bucket": "s3://acme-private"},
            last_error={"msg": "acme-db login failed"},
        )
    )
    assert state.customer_id == mine.customer.id
    for attempt in (
        globex.agent_states.get_for_agent(agent.id),
        globex.agent_states.heartbeat(agent.id),
        globex.agent_states.set_current_workflow(agent.id, theirs.execution.id),
        globex.agent_states.record_error(agent.id, {"msg": "x"}),
    ):
        with pytest.raises(NotFound):
            await attempt
    # a create or an upsert over it is a write into another customer's row: the same answer for both
    with pytest.raises(AccessDenied):
        await globex.agent_states.upsert(AgentStateUpsert(agent_id=agent.id, workflow_data={"bucket": "s3://attacker"}))
    with pytest.raises(AccessDenied):
        await globex.agent_states.create(AgentStateCreate(agent_id=agent.id, workflow_data={"bucket": "s3://attacker"}))
    async with globex.transaction() as tx:  # refused without aborting the caller's transaction
        with pytest.raises(AccessDenied):
            await tx.agent_states.create(AgentStateCreate(agent_id=agent.id))
        assert await tx.agent_states.list() == []
    with pytest.raises(AlreadyExists):  # the customer whose work it describes is told it exists
        await acme.agent_states.create(AgentStateCreate(agent_id=agent.id))
    assert await globex.agent_states.list() == []
    assert await store.agent_states.get_for_agent(agent.id) == await acme.agent_states.get_for_agent(agent.id)
    assert (await store.agent_states.get_for_agent(agent.id)).workflow_data == {"bucket": "s3://acme-private"}
    # the platform gives the state back, with nothing of Acme's work left in it; then Globex may use it
    released = await store.agent_states.release(agent.id)
    assert (released.customer_id, released.workflow_data, released.last_error) == (None, {}, None)
    taken = await globex.agent_states.set_current_workflow(agent.id, theirs.execution.id)
    assert taken.customer_id == theirs.customer.id
    with pytest.raises(NotFound):
        await acme.agent_states.get_for_agent(agent.id)


async def test_transition_trail__written_by_the_trigger_alone(app_store, app_login_dsn, store, tenants):
    mine, _ = tenants
    acme = app_store.for_customer(mine.customer.id)
    await acme.workflow_executions.start(mine.execution.id, actor="agent-7", reason={"why": "scheduled"})
    async with app_store.transaction() as tx:  # a raw statement on the role's connection
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await tx.connection.execute(
                "INSERT INTO workflow_transitions (workflow_execution_id, to_status, actor) "
                "VALUES ($1, 'completed', 'forged')",
                mine.execution.id,
            )
    with psycopg.connect(app_login_dsn) as conn:  # the application role's own session, unconfined
        for statement in (
            "INSERT INTO workflow_transitions (workflow_execution_id, to_status, actor) "
            "VALUES (%s, 'completed', 'forged')",
            "UPDATE workflow_transitions SET actor = 'forged' WHERE workflow_execution_id = %s",
            "DELETE FROM workflow_transitions WHERE workflow_execution_id = %s",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                with conn.transaction():
                    conn.execute(statement, (mine.execution.id,))
    history = await store.workflow_executions.history(mine.execution.id)
    assert [(t.to_status, t.actor, t.reason) for t in history if t.workflow_step_id is None] == [
        ("pending", None, None),
        ("running", "agent-7", {"why": "scheduled"}),
    ]


async def test_confined_binding__a_pool_whose_init_takes_on_a_role_keeps_it(migrated_dsn, tenants):
    """A pool's own `init` may take on a less privileged role for the session; unbinding a customer
    (RESET ROLE) would give back the login's, so such connections are never bound for the session."""
    mine, _ = tenants

    async def as_application(conn: Any) -> None:
        await conn.execute("SET ROLE optiinfra_app")

    async def setup_seen(conn: Any) -> None:
        seen.append(await _session_of(conn))

    seen: list[tuple[str, str]] = []
    async with Store.connect(migrated_dsn, min_size=1, max_size=1, init=as_application, setup=setup_seen) as one:
        acme = one.for_customer(mine.customer.id)
        for _ in range(2):
            assert (await acme.workflow_executions.get(mine.execution.id)).id == mine.execution.id
            async with one.pool.acquire() as conn:
                role, bound = await _session_of(conn)
            assert (role, bound) == ("optiinfra_app", "")
    # the caller's setup never ran on a connection bound to a customer
    assert seen and all(role == "optiinfra_app" and not bound for role, bound in seen)
