"""The caller's executions: the history, a page at a time, and one execution in full."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request

from optiinfra_store.api.agent_names import AgentNames
from optiinfra_store.api.dependencies import CustomerStore, service_of
from optiinfra_store.api.models import ExecutionDetails, HistoryItem, HistoryPage
from optiinfra_store.api.parameters import Cursor, Instant, Limit
from optiinfra_store.api.problems import Problem, responses
from optiinfra_store.api.routing import NotStoredRoute
from optiinfra_store.enums import WorkflowStatus, WorkflowType
from optiinfra_store.errors import InvalidArgument
from optiinfra_store.store import Store

router = APIRouter(tags=["workflows"], route_class=NotStoredRoute)

HISTORY_PROBLEMS = responses(400, 401, 403, 422, 503)


@router.get("/api/workflows/history", responses=HISTORY_PROBLEMS)
async def history(
    request: Request,
    store: CustomerStore,
    limit: Limit = 50,
    cursor: Cursor = None,
    status: Annotated[list[WorkflowStatus] | None, Query(description="repeat for several")] = None,
    workflow_type: WorkflowType | None = None,
    agent_id: UUID | None = None,
    since: Annotated[Instant | None, Query(description="started at or after")] = None,
    until: Annotated[Instant | None, Query(description="started before")] = None,
) -> HistoryPage:
    """The caller's executions, newest first, a page at a time."""
    return await _history(
        service_of(request).agent_names, store, limit, cursor, status, workflow_type, agent_id, since, until
    )


@router.get(
    "/api/workflows/{execution_id}/details",
    responses=responses(401, 403, (404, "no execution of the caller's has this id"), 422, 503),
)
async def details(request: Request, store: CustomerStore, execution_id: UUID) -> ExecutionDetails:
    """One execution with its steps, artifacts and transition trail."""
    async with store.transaction() as tx:
        detail = await tx.workflow_executions.get_detail(execution_id)
        trail = await tx.workflow_executions.history(execution_id)
    names = await service_of(request).agent_names.of(store, [detail.agent_id])
    return ExecutionDetails.model_construct(**dict(detail), agent_name=names.get(detail.agent_id), transitions=trail)


@router.get("/api/workflows/{workflow_type}/history", responses=HISTORY_PROBLEMS)
async def type_history(
    request: Request,
    store: CustomerStore,
    workflow_type: Annotated[WorkflowType, Path()],
    limit: Limit = 50,
    cursor: Cursor = None,
    status: Annotated[list[WorkflowStatus] | None, Query()] = None,
    agent_id: UUID | None = None,
    since: Instant | None = None,
    until: Instant | None = None,
) -> HistoryPage:
    """The history of one workflow type, same paging as /api/workflows/history."""
    return await _history(
        service_of(request).agent_names, store, limit, cursor, status, workflow_type, agent_id, since, until
    )


async def _history(
    agent_names: AgentNames,
    store: Store,
    limit: int,
    cursor: str | None,
    status: list[WorkflowStatus] | None,
    workflow_type: WorkflowType | None,
    agent_id: UUID | None,
    since: datetime | None,
    until: datetime | None,
) -> HistoryPage:
    try:
        page = await store.workflow_executions.list(
            agent_id=agent_id,
            workflow_type=workflow_type,
            status=status or None,
            started_after=since,
            started_before=until,
            limit=limit,
            cursor=cursor,
        )
    except InvalidArgument as exc:
        if exc.argument != "cursor":  # since and until are within the store's range (Instant)
            raise
        raise Problem(400, "Invalid parameter", "cursor: not a cursor this service gave out") from None
    names = await agent_names.of(store, (item.agent_id for item in page.items))
    # from_row: the record's fields as they are, plus the name (model_construct costs 6x as much a page)
    items = [HistoryItem.from_row({**item.__dict__, "agent_name": names.get(item.agent_id)}) for item in page.items]
    return HistoryPage.model_construct(items=items, next_cursor=page.next_cursor)
