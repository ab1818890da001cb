"""The service's answers that are not records of the store (for the OpenAPI document)."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, Field

from optiinfra_store.records import TrendBucket, WorkflowExecution, WorkflowExecutionDetail, WorkflowTransition

AGENT_NAME = "the name of the agent that ran it (null if that agent is not on record)"


class HistoryItem(WorkflowExecution):
    """An execution, with its agent's name."""

    agent_name: str | None = Field(description=AGENT_NAME)


class HistoryPage(BaseModel):
    """One page of executions, newest first; pass `next_cursor` back as `cursor` (null on the last)."""

    items: list[HistoryItem]
    next_cursor: str | None


class ExecutionDetails(WorkflowExecutionDetail):
    """An execution with its agent's name, its steps, artifacts and every status change (oldest first)."""

    agent_name: str | None = Field(description=AGENT_NAME)
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
