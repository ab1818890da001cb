"""Lists of the tables that grow without bound return a Page: keyset pagination that visits every
row once, in the list's order, and a page that still behaves as the list of its items."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from optiinfra_store.enums import ArtifactType, EventType, MetricType, RecommendationType, WorkflowType
from optiinfra_store.errors import InvalidArgument
from optiinfra_store.records import (
    AgentMetricCreate,
    ApprovalCreate,
    EventCreate,
    OptimizationCreate,
    Page,
    RecommendationCreate,
    WorkflowArtifactCreate,
    WorkflowExecutionCreate,
    WorkflowStepCreate,
)

ROWS = 5


async def make_rows(store, name: str, customer, agent) -> dict[str, Any]:
    """ROWS rows of the table `name`, and the filters that list exactly them."""
    if name == "events":
        for i in range(ROWS):
            await store.events.create(
                EventCreate(customer_id=customer.id, event_type=EventType.COST_ANOMALY, title=f"e{i}")
            )
        return {"customer_id": customer.id}
    if name == "agent_metrics":
        start = datetime.now(UTC) - timedelta(hours=1)
        for i in range(ROWS):  # two points share an instant: the id breaks the tie
            at = start + timedelta(minutes=i // 2)
            await store.agent_metrics.create(
                AgentMetricCreate(
                    agent_id=agent.id,
                    metric_name="gpu",
                    metric_type=MetricType.GAUGE,
                    metric_value=float(i),
                    collection_timestamp=at,
                )
            )
        return {"agent_id": agent.id}
    recommendations = [
        await store.recommendations.create(
            RecommendationCreate(
                customer_id=customer.id,
                agent_id=agent.id,
                recommendation_type=RecommendationType.COST_REDUCTION,
                title=f"r{i}",
            )
        )
        for i in range(ROWS)
    ]
    if name == "recommendations":
        return {"customer_id": customer.id}
    approvals = [await store.approvals.create(ApprovalCreate(recommendation_id=r.id)) for r in recommendations]
    if name == "approvals":
        return {"status": "pending"}
    if name == "optimizations":
        for recommendation, approval in zip(recommendations, approvals, strict=True):
            approved = await store.approvals.approve(approval.id, decided_by="admin")
            await store.optimizations.create(
                OptimizationCreate(recommendation_id=recommendation.id, approval_id=approved.id)
            )
        return {}
    execution = await store.workflow_executions.create(
        WorkflowExecutionCreate(agent_id=agent.id, customer_id=customer.id, workflow_type=WorkflowType.COST_ANALYSIS)
    )
    if name == "workflow_steps":  # created out of order: the list is by step_order
        for order in (3, 1, 5, 2, 4):
            await store.workflow_steps.create(
                WorkflowStepCreate(workflow_execution_id=execution.id, step_name=f"s{order}", step_order=order)
            )
        return {"execution_id": execution.id}
    for i in range(ROWS):
        await store.workflow_artifacts.create(
            WorkflowArtifactCreate(
                workflow_execution_id=execution.id,
                artifact_type=ArtifactType.REPORT,
                artifact_name=f"a{i}",
                artifact_path=f"s3://bucket/a{i}",
            )
        )
    return {"execution_id": execution.id}


PAGED = [
    "events",
    "recommendations",
    "approvals",
    "optimizations",
    "workflow_steps",
    "workflow_artifacts",
    "agent_metrics",
]


async def every_page(list_page: Callable[..., Awaitable[Page[Any]]], size: int, **filters: Any) -> list[Page[Any]]:
    pages = [await list_page(**filters, limit=size)]
    while pages[-1].next_cursor is not None:
        pages.append(await list_page(**filters, limit=size, cursor=pages[-1].next_cursor))
    return pages


@pytest.mark.parametrize("name", PAGED)
async def test_pages__visit_every_row_once_in_the_lists_order(store, customer, agent, name):
    filters = await make_rows(store, name, customer, agent)
    list_page = getattr(store, name).list
    whole = await list_page(**filters)
    assert isinstance(whole, Page) and len(whole) == ROWS and whole.next_cursor is None
    pages = await every_page(list_page, 2, **filters)
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [row.id for page in pages for row in page] == [row.id for row in whole]
    if name == "workflow_steps":
        assert [row.step_order for row in whole] == [1, 2, 3, 4, 5]
    exact = await every_page(list_page, ROWS, **filters)  # a full last page: the next one is empty
    assert [len(page) for page in exact] == [ROWS]


async def test_page__is_the_sequence_of_its_items(store, customer, agent):
    await make_rows(store, "events", customer, agent)
    page = await store.events.list(customer_id=customer.id, limit=3)
    assert len(page) == 3 and page == page.items and list(page) == page.items and page[0] == page.items[0]
    assert bool(page) and not await store.events.list(customer_id=customer.id, event_type="agent_error")
    assert page.model_dump()["next_cursor"] == page.next_cursor


async def test_page__a_bad_cursor_is_invalid_argument(store):
    with pytest.raises(InvalidArgument, match="cursor"):
        await store.events.list(cursor="not-a-cursor")
