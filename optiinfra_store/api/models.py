"""The service's answers that are not records of the store (for the OpenAPI document)."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, Field

from optiinfra_store.records import TrendBucket, WorkflowExecution, WorkflowExecutionDetail, WorkflowTransition


class HistoryPage(BaseModel):
    """One page of executions, newest first; pass `next_cursor` back as `cursor` (null on the last)."""

    items: list[WorkflowExecution]
    next_cursor: str | None


class ExecutionDetails(WorkflowExecutionDetail):
    """An execution with its steps, artifacts and every status change (oldest first)."""

    transitions: list[WorkflowTransition]


class Trend(BaseModel):
    buckets: list[TrendBucket]


class Me(BaseModel):
    sub: str
    customer_id: UUID
    customer_name: str | None
    scopes: list[str]


class DemoCustomer(BaseModel):
    customer_id: UUID
    name: str
    token: str


class Health(BaseModel):
    status: str
    pending_migrations: list[str] = []
    events: str | None = None  # "listening", or "reconnecting" while the events hub has no connection


class InvalidParameter(BaseModel):
    in_: str = Field(alias="in", description="query, path or header")
    parameter: str
    message: str


class Problem(BaseModel):
    """An error, as RFC 9457 describes it: `detail` speaks to the caller and names the parameter
    at fault; a 422 of a parameter's type or range lists each in `errors`."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[InvalidParameter] = []
