"""SQL injection: classic payloads in every string field, JSON key and filter are data, nothing else.

Each payload is written into every string field of every input model (cut to the field's length,
made into an address for emails) and as key and value of every JSON document, then read back
verbatim; string filters given a payload match exactly the row that holds it and not a decoy that
SQL, LIKE or a placeholder mix-up would also match; enum, id and cursor arguments refuse it; the
audit trail records it as actor and reason. Afterwards every table still exists, and no statement
smuggled in a payload ran (its row or its deletion would show).
"""

from __future__ import annotations

import itertools
import re
import types
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Union, get_args, get_origin

import pydantic
import pytest

from optiinfra_store.errors import InvalidArgument, NotFound
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
    RecommendationCreate,
    RecommendationUpdate,
    WorkflowArtifactCreate,
    WorkflowExecutionCreate,
    WorkflowExecutionUpdate,
    WorkflowStepCreate,
)
from tests.reliability.hostile import TABLES, core_type, row_counts, same

PAYLOADS = [
    "'; DROP TABLE customers; --",
    '" OR 1=1 --',
    "' OR '1'='1",
    "' OR 1=1; DELETE FROM agents; --",
    "$1",
    "$2::text); DROP TABLE events; --",
    "\\x00",
    "\\'; DROP TABLE agent_configs; --",
    "' UNION SELECT NULL, version() --",
    "'); INSERT INTO agents (type, name, version) VALUES ('cost', 'pwned', '1'); --",
    "$$; DROP TABLE workflow_steps; $$",
    "*/ DROP TABLE approvals /*",
    "Robert'); DROP TABLE workflow_executions;--",
    "E'\\x27' OR TRUE --",
    "%",
    "_",
    "%s %(name)s ? :name {} {0}",
    "\u02bc OR 1=1 --",  # a modifier letter apostrophe: no quote to SQL, one to the eye
    "\\",
    "'",
]


def _annotated_metadata(info: pydantic.fields.FieldInfo) -> list[Any]:
    found, pending = list(info.metadata), [info.annotation]
    while pending:
        annotation = pending.pop()
        if get_origin(annotation) is Annotated:
            found.extend(get_args(annotation)[1:])
            pending.append(get_args(annotation)[0])
        elif get_origin(annotation) in (Union, types.UnionType, list):
            pending.extend(get_args(annotation))
    return found


def fitted(payload: str, model: type[pydantic.BaseModel], name: str) -> str:
    """The payload as this field can hold it: cut to its length; an email made an address."""
    if name == "email":
        local = re.sub(r"[\s@]", "", payload) or "x"
        return f"{local}@inject.example"
    limits = [m.max_length for m in _annotated_metadata(model.model_fields[name]) if getattr(m, "max_length", None)]
    return payload[: min(limits)] if limits else payload


def document(payload: str) -> dict:
    return {payload: payload, "nested": {payload: [payload, {payload: payload}]}}


def with_payload(model: type[pydantic.BaseModel], payload: str, base: dict) -> dict:
    """`base` with every string field, list of strings and JSON document of `model` holding the payload."""
    values = dict(base)
    for name, info in model.model_fields.items():
        kind = core_type(info.annotation)
        if kind is str and name not in base:
            values[name] = fitted(payload, model, name)
        elif get_origin(kind) is list and core_type(get_args(kind)[0]) is str:
            values[name] = [fitted(payload, model, name), "decoy"]
        elif get_origin(kind) is dict:
            values[name] = document(payload)
    return values


def assert_verbatim(model, values, *records) -> None:
    validated = model.model_validate(values)
    for name in validated.model_fields_set:
        value = getattr(validated, name)
        for record in records:
            if name in type(record).model_fields:
                assert same(getattr(record, name), value), (name, getattr(record, name), value)


@pytest.fixture
async def parents(store):
    customer = await store.customers.create(CustomerCreate(name="Decoy Co", email="decoy@inject.example"))
    agent = await store.agents.create(AgentCreate(type="cost", name="decoy", version="1"))
    recommendation = await store.recommendations.create(
        RecommendationCreate(
            customer_id=customer.id,
            agent_id=agent.id,
            recommendation_type="cost_reduction",
            title="decoy",
        )
    )
    execution = await store.workflow_executions.create(
        WorkflowExecutionCreate(
            agent_id=agent.id,
            customer_id=customer.id,
            workflow_type="cost_analysis",
        )
    )
    # decoys a filter would also return if the payload were SQL, a LIKE pattern or a placeholder
    await store.agent_configs.set(agent.id, "decoy", "decoy")
    await store.agent_capabilities.create(
        AgentCapabilityCreate(
            agent_id=agent.id,
            capability_name="decoy",
            capability_version="1",
        )
    )
    await store.agent_metrics.create(
        AgentMetricCreate(
            agent_id=agent.id,
            metric_name="decoy",
            metric_value=1.0,
            metadata={"decoy": "decoy"},
        )
    )
    return types.SimpleNamespace(customer=customer, agent=agent, recommendation=recommendation, execution=execution)


async def assert_nothing_smuggled(store, before: dict[str, int], created: dict[str, int]) -> None:
    """Every table is still there, and each holds what the test wrote into it, no more, no less."""
    for table in TABLES:
        assert await store.pool.fetchval("SELECT to_regclass($1)::text", f"public.{table}") == table
    after = await row_counts(store)
    assert {t: after[t] - before[t] for t in after if t != "workflow_transitions"} == {
        t: created.get(t, 0) for t in after if t != "workflow_transitions"
    }
    assert await store.pool.fetchval("SELECT count(*) FROM agents WHERE name = 'pwned'") == 0


@pytest.mark.parametrize("payload", PAYLOADS)
async def test_payload__stored_verbatim_in_every_string_field_and_json_key(store, parents, payload):
    before = await row_counts(store)
    created: dict[str, int] = {}
    orders = itertools.count(1)

    async def write(model, table, call, reader, base):
        values = with_payload(model, payload, base)
        record = await call(values)
        assert_verbatim(model, values, record, await reader(record))
        created[table] = created.get(table, 0) + 1
        return record

    p = parents
    customer = await write(CustomerCreate, "customers", store.customers.create, lambda r: store.customers.get(r.id), {})
    agent = await write(AgentCreate, "agents", store.agents.create, lambda r: store.agents.get(r.id), {"type": "cost"})
    await write(
        EventCreate,
        "events",
        store.events.create,
        lambda r: store.events.get(r.id),
        {"customer_id": customer.id, "agent_id": agent.id, "event_type": "agent_error"},
    )
    recommendation = await write(
        RecommendationCreate,
        "recommendations",
        store.recommendations.create,
        lambda r: store.recommendations.get(r.id),
        {"customer_id": customer.id, "agent_id": agent.id, "recommendation_type": "cost_reduction"},
    )
    await write(
        ApprovalCreate,
        "approvals",
        store.approvals.create,
        lambda r: store.approvals.get(r.id),
        {"recommendation_id": recommendation.id},
    )
    await write(
        AgentConfigCreate,
        "agent_configs",
        store.agent_configs.create,
        lambda r: store.agent_configs.get(r.id),
        {"agent_id": agent.id},
    )
    await write(
        AgentStateCreate,
        "agent_states",
        store.agent_states.create,
        lambda r: store.agent_states.get(r.id),
        {"agent_id": agent.id},
    )
    capability = await write(
        AgentCapabilityCreate,
        "agent_capabilities",
        store.agent_capabilities.create,
        lambda r: store.agent_capabilities.get(r.id),
        {"agent_id": agent.id},
    )
    await write(
        AgentMetricCreate,
        "agent_metrics",
        store.agent_metrics.create,
        lambda r: store.agent_metrics.get(r.id),
        {"agent_id": agent.id, "metric_value": 2.0},
    )
    execution = await write(
        WorkflowExecutionCreate,
        "workflow_executions",
        store.workflow_executions.create,
        lambda r: store.workflow_executions.get(r.id),
        {"agent_id": agent.id, "customer_id": customer.id, "workflow_type": "quality_check"},
    )
    step = await write(
        WorkflowStepCreate,
        "workflow_steps",
        store.workflow_steps.create,
        lambda r: store.workflow_steps.get(r.id),
        {"workflow_execution_id": execution.id, "step_order": next(orders)},
    )
    await write(
        WorkflowArtifactCreate,
        "workflow_artifacts",
        store.workflow_artifacts.create,
        lambda r: store.workflow_artifacts.get(r.id),
        {"workflow_execution_id": execution.id, "workflow_step_id": step.id, "artifact_type": "log"},
    )
    await store.workflow_steps.create_many(
        [
            with_payload(
                WorkflowStepCreate,
                payload,
                {
                    "workflow_execution_id": execution.id,
                    "step_order": next(orders),
                },
            )
        ]
    )
    await store.agent_metrics.record_many(
        [
            with_payload(
                AgentMetricCreate,
                payload,
                {
                    "agent_id": agent.id,
                    "metric_value": 3.0,
                    "collection_timestamp": datetime.now(UTC) - timedelta(days=1),
                },
            )
        ]
    )
    created["workflow_steps"] += 1
    created["agent_metrics"] += 1

    for model, base, call, reader in [
        (
            CustomerUpdate,
            {"email": fitted(payload, CustomerUpdate, "email").replace("@", "+updated@")},
            lambda v: store.customers.update(p.customer.id, v),
            lambda: store.customers.get(p.customer.id),
        ),
        (AgentUpdate, {}, lambda v: store.agents.update(p.agent.id, v), lambda: store.agents.get(p.agent.id)),
        (
            RecommendationUpdate,
            {},
            lambda v: store.recommendations.update(p.recommendation.id, v),
            lambda: store.recommendations.get(p.recommendation.id),
        ),
        (
            AgentCapabilityUpdate,
            {},
            lambda v: store.agent_capabilities.update(capability.id, v),
            lambda: store.agent_capabilities.get(capability.id),
        ),
        (
            WorkflowExecutionUpdate,
            {},
            lambda v: store.workflow_executions.update(p.execution.id, v),
            lambda: store.workflow_executions.get(p.execution.id),
        ),
        (
            AgentStateUpsert,
            {"agent_id": agent.id},
            store.agent_states.upsert,
            lambda: store.agent_states.get_for_agent(agent.id),
        ),
    ]:
        values = with_payload(model, payload, base)
        assert_verbatim(model, values, await call(values), await reader())

    await assert_nothing_smuggled(store, before, created)


@pytest.mark.parametrize("payload", PAYLOADS)
async def test_payload__string_filters_match_only_the_exact_value(store, parents, payload):
    p = parents
    before = await row_counts(store)
    email = fitted(payload, CustomerCreate, "email")
    customer = await store.customers.create(CustomerCreate(name=payload, email=email))
    assert (await store.customers.get_by_email(email)).id == customer.id
    with pytest.raises(NotFound):
        await store.customers.get_by_email(payload)  # the payload itself names no customer

    config = await store.agent_configs.set(p.agent.id, payload, payload)
    assert (await store.agent_configs.get_by_key(p.agent.id, payload)).id == config.id
    assert await store.agent_configs.get_value(p.agent.id, payload) == payload
    assert (await store.agent_configs.get_by_key(p.agent.id, "decoy")).config_value == "decoy"

    capability = await store.agent_capabilities.create(
        AgentCapabilityCreate(
            agent_id=p.agent.id,
            capability_name=payload,
            capability_version=payload[:50],
        )
    )
    assert [c.id for c in await store.agent_capabilities.list(capability_name=payload)] == [capability.id]

    metric = await store.agent_metrics.create(
        AgentMetricCreate(
            agent_id=p.agent.id,
            metric_name=payload,
            metric_value=7.0,
            metadata={payload: payload},
        )
    )
    assert [m.id for m in await store.agent_metrics.list(metric_name=payload)] == [metric.id]
    assert (await store.agent_metrics.aggregate(p.agent.id, payload)).count == 1
    assert [m.id for m in await store.agent_metrics.search({payload: payload})] == [metric.id]
    assert await store.agent_metrics.search({payload: "decoy"}) == []

    for call in (
        lambda: store.customers.list(status=payload),
        lambda: store.workflow_executions.list(status=payload),
        lambda: store.workflow_executions.list(workflow_type=payload),
        lambda: store.workflow_executions.list(cursor=payload),
        lambda: store.events.list(event_type=[payload]),
        lambda: store.workflow_steps.list(p.execution.id, status=payload),
        lambda: store.agent_configs.set(p.agent.id, "k", "v", config_type=payload),
    ):
        with pytest.raises(InvalidArgument):
            await call()
    for call in (
        lambda: store.customers.get(payload),
        lambda: store.workflow_executions.history(payload),
        lambda: store.events.list(customer_id=payload),
    ):
        with pytest.raises(pydantic.ValidationError):
            await call()

    await assert_nothing_smuggled(
        store,
        before,
        {
            "customers": 1,
            "agent_configs": 1,
            "agent_capabilities": 1,
            "agent_metrics": 1,
        },
    )


@pytest.mark.parametrize("payload", PAYLOADS)
async def test_payload__recorded_verbatim_as_actor_reason_and_decision(store, parents, payload):
    p = parents
    before = await row_counts(store)
    actor = payload[:255]
    execution = await store.workflow_executions.create(
        WorkflowExecutionCreate(
            agent_id=p.agent.id,
            customer_id=p.customer.id,
            workflow_type="health_check",
        )
    )
    await store.workflow_executions.start(execution.id, actor=actor, reason={payload: payload})
    step = await store.workflow_steps.create(
        WorkflowStepCreate(
            workflow_execution_id=execution.id,
            step_name=payload,
            step_order=1,
        )
    )
    await store.workflow_steps.start(step.id, actor=actor)
    await store.workflow_steps.fail(step.id, {payload: [payload]}, actor=actor, reason={"why": payload})
    cancelled = await store.workflow_executions.cancel(execution.id, payload, actor=actor)
    assert cancelled.error_details == {"error_type": "Cancelled", "reason": payload}
    history = await store.workflow_executions.history(execution.id)
    assert [(t.actor, t.reason) for t in history] == [
        (None, None),
        (actor, {payload: payload}),
        (None, None),
        (actor, None),
        (actor, {"why": payload}),
        (actor, {"reason": payload}),
    ]
    assert (await store.workflow_steps.get(step.id)).error_details == {payload: [payload]}

    approval = await store.approvals.create(ApprovalCreate(recommendation_id=p.recommendation.id, comment=payload))
    decided = await store.approvals.reject(approval.id, decided_by=actor, comment=payload + payload)
    assert (decided.decided_by, decided.comment) == (actor, payload + payload)
    assert await store.approvals.get(approval.id) == decided

    await assert_nothing_smuggled(store, before, {"workflow_executions": 1, "workflow_steps": 1, "approvals": 1})
