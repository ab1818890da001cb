"""The core tables through their repositories, against a real PostgreSQL:
customers, agents, events, recommendations, approvals, optimizations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest
from pydantic import ValidationError

from optiinfra_store.enums import (
    AgentStatus,
    AgentType,
    ApprovalStatus,
    CustomerStatus,
    EventSeverity,
    EventType,
    OptimizationStatus,
    RecommendationType,
)
from optiinfra_store.errors import (
    AlreadyExists,
    ConstraintViolation,
    InvalidArgument,
    InvalidTransition,
    MissingReference,
    NotFound,
)
from optiinfra_store.records import (
    AgentCreate,
    AgentUpdate,
    ApprovalCreate,
    CustomerCreate,
    CustomerUpdate,
    EventCreate,
    OptimizationCreate,
    RecommendationCreate,
    RecommendationUpdate,
)
from optiinfra_store.repositories import repository_types

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
async def recommendation(store, customer, agent):
    return await store.recommendations.create(
        RecommendationCreate(
            customer_id=customer.id,
            agent_id=agent.id,
            recommendation_type=RecommendationType.COST_REDUCTION,
            title="Move batch jobs to spot",
            estimated_savings_usd=Decimal("1234.50"),
            confidence_score=0.8,
            details={"pool": "a100"},
        )
    )


@pytest.fixture
async def approval(store, recommendation):
    return await store.approvals.create(
        ApprovalCreate(
            recommendation_id=recommendation.id,
            requested_by="cost-agent",
            comment="saves 1.2k/month",
        )
    )


@pytest.fixture
async def approved(store, approval):
    return await store.approvals.approve(approval.id, decided_by="ops@acme.example")


@pytest.fixture
async def optimization(store, recommendation, approved):
    return await store.optimizations.create(
        OptimizationCreate(recommendation_id=recommendation.id, approval_id=approved.id)
    )


async def _optimization_in(store, optimization, status: OptimizationStatus):
    """Drive a fresh (pending) optimization to `status` through the allowed transitions."""
    o = optimization
    if status is OptimizationStatus.PENDING:
        return o
    o = await store.optimizations.start(o.id)
    if status is OptimizationStatus.IN_PROGRESS:
        return o
    if status in (OptimizationStatus.COMPLETED, OptimizationStatus.ROLLED_BACK):
        o = await store.optimizations.complete(o.id)
    else:
        o = await store.optimizations.fail(o.id)
    if status is OptimizationStatus.ROLLED_BACK:
        o = await store.optimizations.roll_back(o.id)
    assert o.status is status
    return o


# -- customers -----------------------------------------------------------------------------------


async def test_create__customer_defaults(store):
    c = await store.customers.create(CustomerCreate(name="Globex", email="it@globex.example"))
    assert c.status is CustomerStatus.ACTIVE and c.metadata == {}
    assert c.created_at.tzinfo is not None
    assert await store.customers.get(c.id) == c
    assert await store.customers.get(str(c.id)) == c


async def test_create__duplicate_customer_email(store, customer):
    with pytest.raises(AlreadyExists) as info:
        await store.customers.create(CustomerCreate(name="Other", email=customer.email))
    assert info.value.constraint == "customers_email_key"
    assert [c.id for c in await store.customers.list()] == [customer.id]


async def test_update__customer_partial(store, customer):
    updated = await store.customers.update(customer.id, CustomerUpdate(status=CustomerStatus.SUSPENDED))
    assert updated.status is CustomerStatus.SUSPENDED
    assert updated.name == customer.name and updated.email == customer.email
    assert updated.updated_at >= customer.updated_at
    assert await store.customers.get(customer.id) == updated


async def test_update__customer_email_taken(store, customer):
    other = await store.customers.create(CustomerCreate(name="Globex", email="it@globex.example"))
    with pytest.raises(AlreadyExists) as info:
        await store.customers.update(other.id, CustomerUpdate(email=customer.email))
    assert info.value.constraint == "customers_email_key"
    assert (await store.customers.get(other.id)).email == "it@globex.example"


async def test_update__customer_not_found(store):
    with pytest.raises(NotFound):
        await store.customers.update(uuid4(), CustomerUpdate(name="x"))


async def test_list__customers_by_status(store, customer):
    trial = await store.customers.create(
        CustomerCreate(name="Initech", email="a@initech.example", status=CustomerStatus.TRIAL)
    )
    assert [c.id for c in await store.customers.list()] == [customer.id, trial.id]
    assert [c.id for c in await store.customers.list(status="trial")] == [trial.id]
    assert [c.id for c in await store.customers.list(limit=1)] == [customer.id]


async def test_delete__customer(store, customer):
    await store.customers.delete(customer.id)
    with pytest.raises(NotFound):
        await store.customers.get(customer.id)
    with pytest.raises(NotFound):
        await store.customers.delete(customer.id)


async def test_delete__customer_cascades_to_events_and_recommendations(store, customer, agent, recommendation):
    event = await store.events.create(
        EventCreate(customer_id=customer.id, agent_id=agent.id, event_type=EventType.COST_ANOMALY, title="Spend spike")
    )
    approval = await store.approvals.create(ApprovalCreate(recommendation_id=recommendation.id))
    await store.customers.delete(customer.id)
    assert await store.events.list() == []
    assert await store.recommendations.list() == []
    assert await store.approvals.list() == []
    for repo, id_ in (
        (store.events, event.id),
        (store.recommendations, recommendation.id),
        (store.approvals, approval.id),
    ):
        with pytest.raises(NotFound):
            await repo.get(id_)
    assert (await store.agents.get(agent.id)).id == agent.id  # the agent is not the customer's


async def test_create__customer_invalid_input(store, customer):
    before = await store.customers.list()
    with pytest.raises(ValidationError):
        CustomerCreate(name="  ", email="x@y.example")
    with pytest.raises(ValidationError):
        CustomerCreate(name="X", email="not-an-email")
    with pytest.raises(ValidationError):
        CustomerCreate(name="X", email="x@y.example", status="gone")
    assert await store.customers.list() == before


# -- agents --------------------------------------------------------------------------------------


async def test_create__agent(store, agent):
    assert agent.status is AgentStatus.ACTIVE and agent.type is AgentType.COST
    assert agent.capabilities == ["gpu_cost_analysis"] and agent.last_heartbeat is None
    assert await store.agents.get(agent.id) == agent


async def test_update__agent_partial_and_clear_endpoint(store, agent):
    updated = await store.agents.update(agent.id, AgentUpdate(version="1.3.0", endpoint=None))
    assert updated.version == "1.3.0" and updated.endpoint is None
    assert updated.name == agent.name and updated.capabilities == agent.capabilities
    untouched = await store.agents.update(agent.id, AgentUpdate())
    assert untouched.version == "1.3.0" and untouched.endpoint is None


async def test_list__agents_by_type_and_status(store, agent):
    perf = await store.agents.create(AgentCreate(type=AgentType.PERFORMANCE, name="Perf", version="1"))
    assert [a.id for a in await store.agents.list()] == [agent.id, perf.id]
    assert [a.id for a in await store.agents.list(type="performance")] == [perf.id]
    assert [a.id for a in await store.agents.list(status=AgentStatus.ACTIVE)] == [agent.id]
    assert await store.agents.list(type="cost", status="registered") == []


async def test_names__of_the_agents_that_exist_in_one_call_also_for_a_confined_store(store, customer, agent):
    perf = await store.agents.create(AgentCreate(type=AgentType.PERFORMANCE, name="Perf", version="1"))
    nobody = uuid4()
    expected = {agent.id: "Cost Optimizer", perf.id: "Perf"}
    assert await store.agents.names([agent.id, str(perf.id), nobody, agent.id]) == expected
    assert await store.for_customer(customer.id).agents.names(iter([perf.id, agent.id])) == expected
    assert await store.agents.names([]) == {}
    assert await store.agents.names([nobody]) == {}
    with pytest.raises(ValidationError, match="ids"):
        await store.agents.names(["not-a-uuid"])


async def test_heartbeat__sets_database_now(store, agent):
    before = datetime.now(UTC) - timedelta(minutes=1)
    beat = await store.agents.heartbeat(agent.id)
    assert beat.last_heartbeat is not None and beat.last_heartbeat > before
    assert (await store.agents.get(agent.id)).last_heartbeat == beat.last_heartbeat


async def test_heartbeat__not_found(store):
    with pytest.raises(NotFound):
        await store.agents.heartbeat(uuid4())


async def test_list_stale__by_interval(store, agent):
    old = await store.agents.create(
        AgentCreate(
            type=AgentType.RESOURCE,
            name="Old",
            version="1",
            last_heartbeat=datetime.now(UTC) - timedelta(hours=1),
        )
    )
    fresh = await store.agents.create(AgentCreate(type=AgentType.APPLICATION, name="Fresh", version="1"))
    await store.agents.heartbeat(fresh.id)
    # never heard from first, then longest silent
    assert [a.id for a in await store.agents.list_stale(timedelta(minutes=5))] == [agent.id, old.id]
    assert [a.id for a in await store.agents.list_stale(timedelta(hours=2))] == [agent.id]


async def test_list_stale__refuses_non_positive_interval(store):
    with pytest.raises(InvalidArgument):
        await store.agents.list_stale(timedelta(0))


async def test_delete__agent_keeps_its_events(store, customer, agent):
    event = await store.events.create(
        EventCreate(customer_id=customer.id, agent_id=agent.id, event_type=EventType.AGENT_ERROR, title="Crashed")
    )
    await store.agents.delete(agent.id)
    with pytest.raises(NotFound):
        await store.agents.get(agent.id)
    kept = await store.events.get(event.id)
    assert kept.agent_id is None and kept.title == "Crashed"


# -- events --------------------------------------------------------------------------------------


async def test_create__event_defaults(store, customer):
    before = datetime.now(UTC) - timedelta(minutes=1)
    e = await store.events.create(
        EventCreate(customer_id=customer.id, event_type=EventType.RESOURCE_SATURATION, title="GPU pool at 95%")
    )
    assert e.severity is EventSeverity.INFO and e.agent_id is None
    assert e.data == {} and e.description is None
    assert e.occurred_at > before  # the database's now()
    assert await store.events.get(e.id) == e


async def test_create__event_with_everything(store, customer, agent):
    e = await store.events.create(
        EventCreate(
            customer_id=customer.id,
            agent_id=agent.id,
            event_type="cost_anomaly",
            severity="high",
            title="Spend spike",
            description="GPU spend +40% day over day",
            data={"delta_pct": 40.5, "regions": ["us-east-1"]},
            occurred_at=T0,
        )
    )
    assert e.event_type is EventType.COST_ANOMALY and e.severity is EventSeverity.HIGH
    assert e.occurred_at == T0 and e.data == {"delta_pct": 40.5, "regions": ["us-east-1"]}
    assert await store.events.get(e.id) == e


async def test_create__event_unknown_customer(store):
    with pytest.raises(MissingReference) as info:
        await store.events.create(EventCreate(customer_id=uuid4(), event_type=EventType.AGENT_ERROR, title="x"))
    assert info.value.constraint == "events_customer_id_fkey"
    assert await store.events.list() == []


async def test_create__event_invalid_input(store, customer):
    before = await store.events.list()
    bad = [
        dict(customer_id=customer.id, event_type="cost_anomaly", title=""),
        dict(customer_id=customer.id, event_type="cost_anomaly", title="   "),
        dict(customer_id=customer.id, event_type="not_a_type", title="x"),
        dict(customer_id=customer.id, event_type="cost_anomaly", severity="fatal", title="x"),
        dict(customer_id=customer.id, event_type="cost_anomaly", title="x", occurred_at=datetime(2025, 1, 1)),
        dict(customer_id=customer.id, event_type="cost_anomaly", title="x" * 256),
        dict(customer_id=customer.id, event_type="cost_anomaly", title="x", unknown_field=1),
    ]
    for fields in bad:
        with pytest.raises(ValidationError):
            await store.events.create(EventCreate(**fields))
    assert await store.events.list() == before == []


async def test_list__events_newest_first_with_filters(store, customer, agent):
    other = await store.customers.create(CustomerCreate(name="Globex", email="it@globex.example"))
    old = await store.events.create(
        EventCreate(
            customer_id=customer.id,
            agent_id=agent.id,
            event_type="cost_anomaly",
            severity="low",
            title="old",
            occurred_at=T0,
        )
    )
    new = await store.events.create(
        EventCreate(
            customer_id=customer.id,
            event_type="quality_regression",
            severity="critical",
            title="new",
            occurred_at=T0 + timedelta(hours=1),
        )
    )
    theirs = await store.events.create(
        EventCreate(
            customer_id=other.id, event_type="cost_anomaly", title="theirs", occurred_at=T0 - timedelta(hours=1)
        )
    )
    assert [e.id for e in await store.events.list()] == [new.id, old.id, theirs.id]
    assert [e.id for e in await store.events.list(customer_id=customer.id)] == [new.id, old.id]
    assert [e.id for e in await store.events.list(agent_id=agent.id)] == [old.id]
    assert [e.id for e in await store.events.list(event_type="cost_anomaly")] == [old.id, theirs.id]
    assert [e.id for e in await store.events.list(severity=["low", "critical"])] == [new.id, old.id]
    assert [e.id for e in await store.events.list(customer_id=str(other.id), severity="info")] == [theirs.id]
    assert [e.id for e in await store.events.list(limit=1)] == [new.id]


async def test_list__events_same_time_ordered_by_id(store, customer):
    made = [
        await store.events.create(
            EventCreate(customer_id=customer.id, event_type="agent_error", title=f"e{i}", occurred_at=T0)
        )
        for i in range(4)
    ]
    listed = await store.events.list()
    assert [e.id for e in listed] == sorted((e.id for e in made), reverse=True)


async def test_list__events_bad_arguments(store):
    with pytest.raises(InvalidArgument):
        await store.events.list(limit=0)
    with pytest.raises(ValueError):
        await store.events.list(severity="fatal")
    with pytest.raises(ValidationError):
        await store.events.list(customer_id="not-a-uuid")


async def test_delete__event(store, customer):
    e = await store.events.create(EventCreate(customer_id=customer.id, event_type="agent_error", title="x"))
    await store.events.delete(e.id)
    assert await store.events.list() == []
    with pytest.raises(NotFound):
        await store.events.delete(e.id)


# -- recommendations -----------------------------------------------------------------------------


async def test_create__recommendation(store, customer, agent, recommendation):
    r = recommendation
    assert r.customer_id == customer.id and r.agent_id == agent.id
    assert r.recommendation_type is RecommendationType.COST_REDUCTION
    assert r.estimated_savings_usd == Decimal("1234.50") and r.confidence_score == 0.8
    assert r.details == {"pool": "a100"} and r.description is None
    assert await store.recommendations.get(r.id) == r


async def test_create__recommendation_bounds(store, customer, agent):
    r = await store.recommendations.create(
        RecommendationCreate(
            customer_id=customer.id,
            agent_id=agent.id,
            recommendation_type="resource_scaling",
            title="Max",
            estimated_savings_usd=Decimal("999999999999.99"),
            confidence_score=1,
        )
    )
    assert r.estimated_savings_usd == Decimal("999999999999.99") and r.confidence_score == 1.0
    z = await store.recommendations.create(
        RecommendationCreate(
            customer_id=customer.id,
            agent_id=agent.id,
            recommendation_type="resource_scaling",
            title="Zero",
            estimated_savings_usd=0,
            confidence_score=0.0,
        )
    )
    assert z.estimated_savings_usd == Decimal("0") and z.confidence_score == 0.0


async def test_create__recommendation_invalid_input(store, customer, agent):
    base = dict(customer_id=customer.id, agent_id=agent.id, recommendation_type="cost_reduction", title="x")
    bad = [
        {"title": ""},
        {"confidence_score": 1.5},
        {"confidence_score": -0.1},
        {"confidence_score": float("nan")},
        {"confidence_score": float("inf")},
        {"estimated_savings_usd": Decimal("-1")},
        {"estimated_savings_usd": Decimal("1.234")},
        {"estimated_savings_usd": Decimal("1000000000000")},
        {"estimated_savings_usd": Decimal("NaN")},
        {"recommendation_type": "make_it_faster"},
    ]
    for override in bad:
        with pytest.raises(ValidationError):
            RecommendationCreate(**{**base, **override})
    assert await store.recommendations.list() == []


async def test_create__recommendation_unknown_agent(store, customer):
    with pytest.raises(MissingReference) as info:
        await store.recommendations.create(
            RecommendationCreate(
                customer_id=customer.id, agent_id=uuid4(), recommendation_type="cost_reduction", title="x"
            )
        )
    assert info.value.constraint == "recommendations_agent_id_fkey"
    assert await store.recommendations.list() == []


async def test_update__recommendation_partial(store, recommendation):
    r = await store.recommendations.update(
        recommendation.id, RecommendationUpdate(description="Use spot for nightly batch", confidence_score=0.95)
    )
    assert r.description == "Use spot for nightly batch" and r.confidence_score == 0.95
    assert r.title == recommendation.title and r.details == recommendation.details
    assert r.estimated_savings_usd == recommendation.estimated_savings_usd
    assert r.updated_at >= recommendation.updated_at
    assert await store.recommendations.get(r.id) == r


async def test_update__recommendation_none_clears_nullable_keeps_required(store, recommendation):
    r = await store.recommendations.update(
        recommendation.id,
        RecommendationUpdate(title=None, details=None, estimated_savings_usd=None, confidence_score=None),
    )
    assert r.title == recommendation.title and r.details == recommendation.details
    assert r.estimated_savings_usd is None and r.confidence_score is None


async def test_update__recommendation_invalid_input(store, recommendation):
    with pytest.raises(ValidationError):
        RecommendationUpdate(confidence_score=1.5)
    with pytest.raises(ValidationError):
        RecommendationUpdate(title="")
    assert await store.recommendations.get(recommendation.id) == recommendation


async def test_update__recommendation_not_found(store):
    with pytest.raises(NotFound):
        await store.recommendations.update(uuid4(), RecommendationUpdate(title="x"))


async def test_list__recommendations_with_filters(store, customer, agent, recommendation):
    perf_agent = await store.agents.create(AgentCreate(type="performance", name="Perf", version="1"))
    tuning = await store.recommendations.create(
        RecommendationCreate(
            customer_id=customer.id,
            agent_id=perf_agent.id,
            recommendation_type="performance_tuning",
            title="Enable KV cache",
        )
    )
    assert [r.id for r in await store.recommendations.list()] == [recommendation.id, tuning.id]
    assert [r.id for r in await store.recommendations.list(customer_id=customer.id)] == [recommendation.id, tuning.id]
    assert [r.id for r in await store.recommendations.list(agent_id=perf_agent.id)] == [tuning.id]
    assert [r.id for r in await store.recommendations.list(recommendation_type="cost_reduction")] == [recommendation.id]
    assert await store.recommendations.list(customer_id=uuid4()) == []
    assert [r.id for r in await store.recommendations.list(limit=1)] == [recommendation.id]


async def test_delete__recommendation_cascades(store, recommendation, optimization, approved):
    await store.recommendations.delete(recommendation.id)
    assert await store.recommendations.list() == []
    assert await store.approvals.list() == []
    assert await store.optimizations.list() == []
    with pytest.raises(NotFound):
        await store.recommendations.delete(recommendation.id)


# -- approvals -----------------------------------------------------------------------------------


async def test_create__approval_is_pending(store, recommendation, approval):
    assert approval.status is ApprovalStatus.PENDING
    assert approval.recommendation_id == recommendation.id
    assert approval.requested_by == "cost-agent" and approval.comment == "saves 1.2k/month"
    assert approval.decided_at is None and approval.decided_by is None and approval.expires_at is None
    assert await store.approvals.get(approval.id) == approval


async def test_create__approval_with_expiry(store, recommendation):
    a = await store.approvals.create(ApprovalCreate(recommendation_id=recommendation.id, expires_at=T0))
    assert a.expires_at == T0 and a.status is ApprovalStatus.PENDING


async def test_create__approval_invalid_input(store, recommendation):
    with pytest.raises(ValidationError):
        ApprovalCreate(recommendation_id=recommendation.id, expires_at=datetime(2025, 1, 1))
    with pytest.raises(ValidationError):
        ApprovalCreate(recommendation_id=recommendation.id, requested_by="")
    with pytest.raises(ValidationError):
        ApprovalCreate(recommendation_id=recommendation.id, status="approved")  # not settable on create
    assert await store.approvals.list() == []


async def test_create__approval_unknown_recommendation(store):
    with pytest.raises(MissingReference) as info:
        await store.approvals.create(ApprovalCreate(recommendation_id=uuid4()))
    assert info.value.constraint == "approvals_recommendation_id_fkey"


async def test_approve__pending(store, approval):
    a = await store.approvals.approve(approval.id, decided_by="ops@acme.example", comment="go")
    assert a.status is ApprovalStatus.APPROVED
    assert a.decided_by == "ops@acme.example" and a.comment == "go"
    assert a.decided_at is not None and a.decided_at >= approval.created_at
    assert await store.approvals.get(approval.id) == a


async def test_approve__keeps_request_comment_without_one(store, approval):
    a = await store.approvals.approve(approval.id)
    assert a.comment == approval.comment and a.decided_by is None and a.decided_at is not None


async def test_reject__pending(store, approval):
    a = await store.approvals.reject(approval.id, decided_by="cfo@acme.example", comment="not now")
    assert a.status is ApprovalStatus.REJECTED
    assert a.decided_by == "cfo@acme.example" and a.comment == "not now" and a.decided_at is not None


async def test_expire__pending(store, approval):
    a = await store.approvals.expire(approval.id)
    assert a.status is ApprovalStatus.EXPIRED and a.decided_at is not None and a.decided_by is None


@pytest.mark.parametrize("decide", ["approve", "reject", "expire"])
@pytest.mark.parametrize(
    "method,requested",
    [
        ("approve", ApprovalStatus.APPROVED),
        ("reject", ApprovalStatus.REJECTED),
        ("expire", ApprovalStatus.EXPIRED),
    ],
)
async def test_approve__refused_once_decided(store, approval, decide, method, requested):
    decided = await getattr(store.approvals, decide)(approval.id)
    with pytest.raises(InvalidTransition) as info:
        await getattr(store.approvals, method)(approval.id)
    assert info.value.current_status == decided.status
    assert info.value.requested_status == requested
    assert await store.approvals.get(approval.id) == decided


@pytest.mark.parametrize("method", ["approve", "reject", "expire"])
async def test_approve__not_found(store, method):
    with pytest.raises(NotFound):
        await getattr(store.approvals, method)(uuid4())


async def test_approve__bad_arguments(store, approval):
    with pytest.raises(InvalidArgument):
        await store.approvals.approve(approval.id, decided_by="  ")
    with pytest.raises(InvalidArgument):
        await store.approvals.reject(approval.id, comment=42)
    with pytest.raises(ValidationError):
        await store.approvals.approve("not-a-uuid")
    assert (await store.approvals.get(approval.id)).status is ApprovalStatus.PENDING


async def test_list__approvals_with_filters(store, recommendation, approval):
    second = await store.approvals.create(ApprovalCreate(recommendation_id=recommendation.id))
    await store.approvals.reject(second.id)
    assert [a.id for a in await store.approvals.list()] == [approval.id, second.id]
    assert [a.id for a in await store.approvals.list(recommendation_id=recommendation.id)] == [approval.id, second.id]
    assert [a.id for a in await store.approvals.list(status="pending")] == [approval.id]
    assert [a.id for a in await store.approvals.list(status=["rejected", "expired"])] == [second.id]
    assert await store.approvals.list(recommendation_id=uuid4()) == []


async def test_delete__approval(store, approval):
    await store.approvals.delete(approval.id)
    assert await store.approvals.list() == []
    with pytest.raises(NotFound):
        await store.approvals.get(approval.id)


# -- optimizations -------------------------------------------------------------------------------


async def test_create__optimization_with_approved_approval(store, recommendation, approved, optimization):
    o = optimization
    assert o.status is OptimizationStatus.PENDING
    assert o.recommendation_id == recommendation.id and o.approval_id == approved.id
    assert o.started_at is None and o.completed_at is None
    assert o.result == {} and o.error_details is None
    assert await store.optimizations.get(o.id) == o


@pytest.mark.parametrize("decision", [None, "reject", "expire"])
async def test_create__optimization_refused_without_approval(store, recommendation, approval, decision):
    if decision is not None:
        await getattr(store.approvals, decision)(approval.id)
    with pytest.raises(ConstraintViolation) as info:
        await store.optimizations.create(
            OptimizationCreate(recommendation_id=recommendation.id, approval_id=approval.id)
        )
    assert info.value.constraint == "optimizations_approval_approved_check"
    assert await store.optimizations.list() == []


async def test_create__optimization_approval_of_another_recommendation(
    store, customer, agent, recommendation, approved
):
    other = await store.recommendations.create(
        RecommendationCreate(
            customer_id=customer.id, agent_id=agent.id, recommendation_type="configuration_change", title="Other"
        )
    )
    with pytest.raises(MissingReference) as info:
        await store.optimizations.create(OptimizationCreate(recommendation_id=other.id, approval_id=approved.id))
    assert info.value.constraint == "optimizations_approval_id_fkey"
    assert await store.optimizations.list() == []


async def test_create__optimization_unknown_approval(store, recommendation):
    with pytest.raises(ConstraintViolation) as info:
        await store.optimizations.create(OptimizationCreate(recommendation_id=recommendation.id, approval_id=uuid4()))
    assert info.value.constraint == "optimizations_approval_approved_check"
    assert await store.optimizations.list() == []


async def test_create__optimization_invalid_input(store, recommendation, approved):
    with pytest.raises(ValidationError):
        OptimizationCreate(recommendation_id=recommendation.id, approval_id="nope")
    with pytest.raises(ValidationError):
        OptimizationCreate(recommendation_id=recommendation.id, approval_id=approved.id, status="completed")
    assert await store.optimizations.list() == []


async def test_start__pending(store, optimization):
    o = await store.optimizations.start(optimization.id)
    assert o.status is OptimizationStatus.IN_PROGRESS and o.started_at is not None
    assert o.completed_at is None
    assert await store.optimizations.get(o.id) == o


async def test_complete__in_progress(store, optimization):
    started = await store.optimizations.start(optimization.id)
    o = await store.optimizations.complete(optimization.id, {"saved_usd": 1200})
    assert o.status is OptimizationStatus.COMPLETED and o.result == {"saved_usd": 1200}
    assert o.completed_at is not None and o.completed_at >= started.started_at
    assert o.started_at == started.started_at


async def test_complete__without_result_keeps_it(store, optimization):
    await store.optimizations.start(optimization.id)
    o = await store.optimizations.complete(optimization.id)
    assert o.status is OptimizationStatus.COMPLETED and o.result == {}


async def test_fail__in_progress(store, optimization):
    started = await store.optimizations.start(optimization.id)
    o = await store.optimizations.fail(optimization.id, {"error": "quota exceeded"})
    assert o.status is OptimizationStatus.FAILED and o.error_details == {"error": "quota exceeded"}
    assert o.completed_at is not None and o.completed_at >= started.started_at


@pytest.mark.parametrize("from_status", [OptimizationStatus.COMPLETED, OptimizationStatus.FAILED])
async def test_roll_back__completed_or_failed(store, optimization, from_status):
    done = await _optimization_in(store, optimization, from_status)
    o = await store.optimizations.roll_back(optimization.id)
    assert o.status is OptimizationStatus.ROLLED_BACK
    assert o.completed_at == done.completed_at and o.started_at == done.started_at


_REFUSED = [
    (method, requested, current)
    for method, requested, allowed in [
        ("start", OptimizationStatus.IN_PROGRESS, {OptimizationStatus.PENDING}),
        ("complete", OptimizationStatus.COMPLETED, {OptimizationStatus.IN_PROGRESS}),
        ("fail", OptimizationStatus.FAILED, {OptimizationStatus.IN_PROGRESS}),
        ("roll_back", OptimizationStatus.ROLLED_BACK, {OptimizationStatus.COMPLETED, OptimizationStatus.FAILED}),
    ]
    for current in OptimizationStatus
    if current not in allowed
]


@pytest.mark.parametrize("method,requested,current", _REFUSED)
async def test_transition__refused(store, optimization, method, requested, current):
    before = await _optimization_in(store, optimization, current)
    with pytest.raises(InvalidTransition) as info:
        await getattr(store.optimizations, method)(optimization.id)
    assert info.value.current_status == current
    assert info.value.requested_status == requested
    assert await store.optimizations.get(optimization.id) == before


@pytest.mark.parametrize("method", ["start", "complete", "fail", "roll_back"])
async def test_transition__not_found(store, method):
    with pytest.raises(NotFound):
        await getattr(store.optimizations, method)(uuid4())


async def test_complete__bad_result(store, optimization):
    await store.optimizations.start(optimization.id)
    with pytest.raises(InvalidArgument):
        await store.optimizations.complete(optimization.id, ["not", "a", "dict"])
    assert (await store.optimizations.get(optimization.id)).status is OptimizationStatus.IN_PROGRESS


async def test_list__optimizations_with_filters(store, recommendation, approved, optimization):
    second = await store.optimizations.create(
        OptimizationCreate(recommendation_id=recommendation.id, approval_id=approved.id)
    )
    await store.optimizations.start(second.id)
    assert [o.id for o in await store.optimizations.list()] == [optimization.id, second.id]
    assert [o.id for o in await store.optimizations.list(recommendation_id=recommendation.id)] == [
        optimization.id,
        second.id,
    ]
    assert [o.id for o in await store.optimizations.list(approval_id=approved.id, status="in_progress")] == [second.id]
    assert [o.id for o in await store.optimizations.list(status=["pending", "completed"])] == [optimization.id]
    assert await store.optimizations.list(approval_id=uuid4()) == []
    assert [o.id for o in await store.optimizations.list(limit=1)] == [optimization.id]


async def test_delete__optimization(store, optimization):
    await store.optimizations.delete(optimization.id)
    assert await store.optimizations.list() == []
    with pytest.raises(NotFound):
        await store.optimizations.delete(optimization.id)


# -- NotFound on every table (every repository's) ---------------------------------------------------------------------


@pytest.mark.parametrize("table", list(repository_types()))
async def test_get__not_found(store, table):
    key = uuid4()
    with pytest.raises(NotFound) as info:
        await getattr(store, table).get(key)
    assert info.value.key == key
    with pytest.raises(NotFound):
        await getattr(store, table).delete(key)


async def test_count__core_tables(store, customer, agent, recommendation, optimization):
    await store.events.create(EventCreate(customer_id=customer.id, event_type="agent_error", title="x"))
    counts = {
        t: await getattr(store, t).count()
        for t in ("customers", "agents", "events", "recommendations", "approvals", "optimizations")
    }
    assert counts == {t: 1 for t in counts}


async def test_approve_and_reject__concurrent_decisions_exactly_one_wins(store, approval):
    import asyncio

    from optiinfra_store.errors import InvalidTransition

    results = await asyncio.gather(
        store.approvals.approve(approval.id, decided_by="alice"),
        store.approvals.reject(approval.id, decided_by="bob"),
        return_exceptions=True,
    )
    decided = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(decided) == 1 and len(refused) == 1 and isinstance(refused[0], InvalidTransition)
    stored = await store.approvals.get(approval.id)
    assert stored.status == decided[0].status and stored.decided_by == decided[0].decided_by
