"""The caller's figures: statistics and performance (shared while in flight, limited per customer,
answered with a validator) and the trend for the charts."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Query, Request, Response

from optiinfra_store.api.dependencies import CustomerStore, service_of
from optiinfra_store.api.models import Trend
from optiinfra_store.api.parameters import Days, IfNoneMatch
from optiinfra_store.api.problems import Problem, responses
from optiinfra_store.api.routing import NotStoredRoute
from optiinfra_store.api.service import Service
from optiinfra_store.enums import WorkflowType
from optiinfra_store.records import WorkflowPerformance, WorkflowStatistics
from optiinfra_store.store import Store

router = APIRouter(tags=["workflows"], route_class=NotStoredRoute)
# statistics and performance read the service with service_of, not CurrentService: one dependency
# fewer on the cheapest routes (dependencies.py)
Figures = TypeVar("Figures", WorkflowStatistics, WorkflowPerformance)

_VALIDATED = {
    "ETag": {"description": "a weak validator of the figures", "required": True, "schema": {"type": "string"}}
}
ANALYTICS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"headers": _VALIDATED},
    304: {"description": "the figures are those of If-None-Match", "headers": _VALIDATED},
    **responses(401, 403, 422, 429, 503),
}


@router.get("/api/workflows/statistics", response_model=WorkflowStatistics, responses=ANALYTICS_RESPONSES)
async def statistics(
    request: Request,
    store: CustomerStore,
    response: Response,
    days: Days = 30,
    workflow_type: WorkflowType | None = None,
    if_none_match: IfNoneMatch = None,
) -> WorkflowStatistics | Response:
    """Counts by status, success rate and durations (avg, p50, p95, max), overall and by type."""
    compute = store.workflow_executions.statistics
    return await _analytics(service_of(request), store, response, compute, days, workflow_type, if_none_match)


@router.get("/api/workflows/performance-metrics", response_model=WorkflowPerformance, responses=ANALYTICS_RESPONSES)
async def performance_metrics(
    request: Request,
    store: CustomerStore,
    response: Response,
    days: Days = 30,
    workflow_type: WorkflowType | None = None,
    if_none_match: IfNoneMatch = None,
) -> WorkflowPerformance | Response:
    """Duration buckets, error patterns, slowest steps, retry hotspots and tips."""
    compute = store.workflow_executions.performance
    return await _analytics(service_of(request), store, response, compute, days, workflow_type, if_none_match)


@router.get("/api/workflows/trend", responses=responses(401, 403, 422, 503))
async def trend(
    store: CustomerStore,
    days: Annotated[int, Query(ge=1, le=366, description="the window, in days: at most 31 with bucket=hour")] = 30,
    bucket: Literal["day", "hour"] = "day",
    workflow_type: WorkflowType | None = None,
) -> Trend:
    """Executions per day (or hour, at most 31 days) over the window, by status, with their
    average duration: whole UTC days or hours, the current one last."""
    width = timedelta(days=1) if bucket == "day" else timedelta(hours=1)
    if bucket == "hour" and days > 31:
        raise Problem(422, "Invalid parameter", "days: at most 31 with bucket=hour")
    now = datetime.now(UTC)
    current = now.replace(minute=0, second=0, microsecond=0)
    if bucket == "day":
        current = current.replace(hour=0)
    since = current - width * (days * 24 - 1 if bucket == "hour" else days - 1)
    buckets = await store.workflow_executions.trend(bucket=width, since=since, workflow_type=workflow_type)
    return Trend.model_construct(buckets=buckets)


async def _analytics(
    current: Service,
    store: Store,
    response: Response,
    compute: Callable[..., Awaitable[Figures]],
    days: int,
    workflow_type: WorkflowType | None,
    if_none_match: str | None,
) -> Figures | Response:
    """The figures of `compute` over the last `days`, shared with identical requests in flight,
    answered with their validator."""
    key = (store.customer_id, compute.__name__, days, workflow_type)
    since = datetime.now(UTC) - timedelta(days=days)
    figures: Figures = await current.analytics.compute(key, lambda: compute(since=since, workflow_type=workflow_type))
    return _validated(current, response, figures, if_none_match)


def _validated(current: Service, response: Response, figures: Figures, presented: str | None) -> Figures | Response:
    """The figures with a validator (the window's bounds, which move with the clock, left out): a
    client that has them gets 304. The figures come from the rollups in a few milliseconds, so
    the answer itself is the cheapest validator that is never stale; a change counter would miss
    purges and executions leaving the window."""
    digest = hashlib.sha256(figures.model_dump_json(exclude={"since", "until"}).encode()).hexdigest()[:32]
    etag = f'W/"{digest}"'
    headers = {
        "ETag": etag,
        "Cache-Control": f"private, max-age={current.settings.cache_max_age}",
        "Vary": "Authorization",
    }
    # weak comparison (RFC 9110 13.1.2): W/"x" and "x" match
    if any(tag.strip().removeprefix("W/") in (etag.removeprefix("W/"), "*") for tag in (presented or "").split(",")):
        return Response(status_code=304, headers=headers)
    response.headers.update({**headers, "X-Content-Type-Options": "nosniff"})  # its own Cache-Control: see routing.py
    return figures
