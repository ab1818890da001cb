"""Tenant isolation: `store.for_customer(id)` under the `optiinfra_app` role, enforced by row-level
security. Another customer's rows read as NotFound, cannot be changed, and never appear in lists."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from optiinfra_store import Store
from optiinfra_store.enums import (
    ArtifactType,
    EventSeverity,
    EventType,
    RecommendationType,
    WorkflowType,
)
from optiinfra_store.errors import AccessDenied, AlreadyExists, InvalidArgument, NotFound
from optiinfra_store.records import (
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


async def make_tenant(store: Store, name: str, agent) -> Tenant:
    customer = await store.customers.create(CustomerCreate(name=name, email=f"ops@{name}.example"))
    execution = await store.workflow_executions.create(WorkflowExecutionCreate(
        agent_id=agent.id, customer_id=customer.id, workflow_type=WorkflowType.COST_ANALYSIS,
    ))
    step = await store.workflow_steps.create(WorkflowStepCreate(
        workflow_execution_id=execution.id, step_name="collect", step_order=1,
    ))
    artifact = await store.workflow_artifacts.create(WorkflowArtifactCreate(
        workflow_execution_id=execution.id, workflow_step_id=step.id, artifact_type=ArtifactType.REPORT,
        artifact_name="report", artifact_path=f"s3://{name}/report.json",
    ))
    event = await store.events.create(EventCreate(
        customer_id=customer.id, agent_id=agent.id, event_type=EventType.COST_ANOMALY,
        severity=EventSeverity.HIGH, title=f"{name} spend spike",
    ))
    recommendation = await store.recommendations.create(RecommendationCreate(
        customer_id=customer.id, agent_id=agent.id, recommendation_type=RecommendationType.COST_REDUCTION,
        title=f"{name}: move to spot",
    ))
    approval = await store.approvals.create(ApprovalCreate(recommendation_id=recommendation.id))
    approval = await store.approvals.approve(approval.id, decided_by="admin")
    optimization = await store.optimizations.create(OptimizationCreate(
        recommendation_id=recommendation.id, approval_id=approval.id,
    ))
    return Tenant(customer, execution, step, artifact, event, recommendation, approval, optimization)


@pytest.fixture(scope="session")
async def app_store(migrated_dsn):
    """A pool running as `optiinfra_app`, the role agents use: not the owner, so RLS applies."""
    async with Store.connect(migrated_dsn, server_settings={"role": "optiinfra_app"}) as app:
        yield app


@pytest.fixture
async def tenants(store, agent):
    return await make_tenant(store, "acme", agent), await make_tenant(store, "globex", agent)


async def test_own_rows__every_repository_reads_and_writes_them(app_store, tenants):
    mine, _ = tenants
    acme = app_store.for_customer(mine.customer.id)
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
    created = await acme.workflow_executions.create(WorkflowExecutionCreate(
        agent_id=mine.execution.agent_id, customer_id=mine.customer.id, workflow_type=WorkflowType.SCALING_DECISION,
    ))
    assert (await acme.workflow_executions.get(created.id)).customer_id == mine.customer.id
    stats = await acme.workflow_executions.statistics()
    assert stats.total == 2


async def test_other_customers_rows__read_as_not_found(app_store, tenants):
    mine, theirs = tenants
    acme = app_store.for_customer(mine.customer.id)
    reads = [
        (acme.customers, theirs.customer), (acme.workflow_executions, theirs.execution),
        (acme.workflow_steps, theirs.step), (acme.workflow_artifacts, theirs.artifact),
        (acme.events, theirs.event), (acme.recommendations, theirs.recommendation),
        (acme.approvals, theirs.approval), (acme.optimizations, theirs.optimization),
    ]
    for repository, row in reads:
        with pytest.raises(NotFound):
            await repository.get(row.id)
    with pytest.raises(NotFound):
        await acme.workflow_executions.get_detail(theirs.execution.id)
    with pytest.raises(NotFound):
        await acme.workflow_executions.history(theirs.execution.id)


async def test_other_customers_rows__cannot_be_changed_or_deleted(app_store, store, tenants):
    mine, theirs = tenants
    acme = app_store.for_customer(mine.customer.id)
    attempts = [
        acme.customers.update(theirs.customer.id, CustomerUpdate(name="stolen")),
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
        acme.customers.delete(theirs.customer.id),
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


async def test_writing_into_another_customer__access_denied(app_store, store, tenants):
    mine, theirs = tenants
    acme = app_store.for_customer(mine.customer.id)
    counts = {name: await getattr(store, name).count() for name in ("workflow_executions", "workflow_steps", "events")}
    with pytest.raises(AccessDenied):
        await acme.workflow_executions.create(WorkflowExecutionCreate(
            agent_id=theirs.execution.agent_id, customer_id=theirs.customer.id,
            workflow_type=WorkflowType.COST_ANALYSIS,
        ))
    with pytest.raises(AccessDenied):
        await acme.workflow_steps.create(WorkflowStepCreate(
            workflow_execution_id=theirs.execution.id, step_name="sneak", step_order=2,
        ))
    with pytest.raises(AccessDenied):
        await acme.events.create(EventCreate(
            customer_id=theirs.customer.id, event_type=EventType.AGENT_ERROR, title="forged",
        ))
    for name, count in counts.items():
        assert await getattr(store, name).count() == count


async def test_shared_agent__cannot_be_deleted_by_the_application_role(app_store, store, tenants):
    # a deletion would cascade into every customer's executions, past row-level security
    mine, theirs = tenants
    acme = app_store.for_customer(mine.customer.id)
    with pytest.raises(AccessDenied, match="agents"):
        await acme.agents.delete(theirs.execution.agent_id)
    with pytest.raises(AccessDenied):
        await app_store.agents.delete(theirs.execution.agent_id)
    assert await store.workflow_executions.get(theirs.execution.id) == theirs.execution
    assert await store.recommendations.get(theirs.recommendation.id) == theirs.recommendation


async def test_idempotency_key__of_another_customer_is_already_exists_not_a_crash(app_store, store, tenants):
    mine, theirs = tenants
    keyed = WorkflowExecutionCreate(
        agent_id=theirs.execution.agent_id, customer_id=theirs.customer.id,
        workflow_type=WorkflowType.COST_ANALYSIS, idempotency_key="run-7",
    )
    first = await store.workflow_executions.create(keyed)
    acme = app_store.for_customer(mine.customer.id)
    with pytest.raises(AlreadyExists, match="another customer"):
        await acme.workflow_executions.create(keyed.model_copy(update={"customer_id": mine.customer.id}))
    assert await store.workflow_executions.count() == 3  # two tenants' executions and `first`
    assert (await store.workflow_executions.get(first.id)).customer_id == theirs.customer.id


async def test_lists__never_include_other_customers(app_store, tenants):
    mine, theirs = tenants
    acme = app_store.for_customer(mine.customer.id)
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


async def test_transaction__confined_too(app_store, tenants):
    mine, theirs = tenants
    async with app_store.for_customer(mine.customer.id).transaction() as tx:
        assert (await tx.workflow_executions.get(mine.execution.id)).id == mine.execution.id
        with pytest.raises(NotFound):
            await tx.workflow_executions.get(theirs.execution.id)


async def test_unconfined_app_role__sees_no_customer_rows(app_store, tenants):
    # fail closed: a pool of the application role that forgot for_customer() sees nothing
    assert (await app_store.workflow_executions.list()).items == []
    assert await app_store.customers.list() == []
    with pytest.raises(NotFound):
        await app_store.workflow_executions.get(tenants[0].execution.id)


async def test_live_events__confined_store_sees_only_its_customer(app_store, store, tenants):
    mine, theirs = tenants
    acme = app_store.for_customer(mine.customer.id)
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


async def test_for_customer__validates_the_id_and_shares_the_pool(app_store):
    with pytest.raises(Exception) as info:
        app_store.for_customer("not-a-uuid")
    assert "customer_id" in str(info.value)
    confined = app_store.for_customer("c1000000-0000-4000-8000-000000000001")
    assert confined.pool is app_store.pool
    await confined.close()  # does not close the shared pool
    assert not app_store.pool._closed
