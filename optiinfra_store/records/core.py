"""Records and inputs of the core tables: customers, agents, events, recommendations,
approvals, optimizations."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated
from uuid import UUID

from pydantic import Field, StringConstraints

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
from optiinfra_store.records._base import FiniteFloat, Input, JsonObject, Name, Record, ShortName, Text, Timestamp

__all__ = [
    "Customer",
    "CustomerCreate",
    "CustomerUpdate",
    "Agent",
    "AgentCreate",
    "AgentUpdate",
    "Event",
    "EventCreate",
    "Recommendation",
    "RecommendationCreate",
    "RecommendationUpdate",
    "Approval",
    "ApprovalCreate",
    "Optimization",
    "OptimizationCreate",
]

Usd = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]
"""A non-negative amount that fits numeric(14, 2): at most 12 integer digits and 2 decimals."""

Confidence = Annotated[FiniteFloat, Field(ge=0, le=1)]
"""A finite score from 0 to 1."""

Email = Annotated[str, StringConstraints(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]


class Customer(Record):
    id: UUID
    name: str
    email: str
    status: CustomerStatus
    metadata: JsonObject
    created_at: datetime
    updated_at: datetime


class CustomerCreate(Input):
    name: Name
    email: Email
    status: CustomerStatus = CustomerStatus.ACTIVE
    metadata: JsonObject = Field(default_factory=dict)


class CustomerUpdate(Input):
    name: Name | None = None
    email: Email | None = None
    status: CustomerStatus | None = None
    metadata: JsonObject | None = None


class Agent(Record):
    id: UUID
    type: AgentType
    name: str
    version: str
    status: AgentStatus
    endpoint: str | None
    capabilities: list[str]
    last_heartbeat: datetime | None
    metadata: JsonObject
    created_at: datetime
    updated_at: datetime


class AgentCreate(Input):
    type: AgentType
    name: Name
    version: ShortName
    status: AgentStatus = AgentStatus.REGISTERED
    endpoint: Text | None = None
    capabilities: list[Name] = Field(default_factory=list)
    last_heartbeat: Timestamp | None = None
    metadata: JsonObject = Field(default_factory=dict)


class AgentUpdate(Input):
    name: Name | None = None
    version: ShortName | None = None
    status: AgentStatus | None = None
    endpoint: Text | None = None
    capabilities: list[Name] | None = None
    metadata: JsonObject | None = None


class Event(Record):
    id: UUID
    customer_id: UUID
    agent_id: UUID | None
    event_type: EventType
    severity: EventSeverity
    title: str
    description: str | None
    data: JsonObject
    occurred_at: datetime
    created_at: datetime
    updated_at: datetime


class EventCreate(Input):
    customer_id: UUID
    agent_id: UUID | None = None
    event_type: EventType
    severity: EventSeverity = EventSeverity.INFO
    title: Name
    description: Text | None = None
    data: JsonObject = Field(default_factory=dict)
    occurred_at: Timestamp | None = None
    """When it happened; None: the database's now()."""


class Recommendation(Record):
    id: UUID
    customer_id: UUID
    agent_id: UUID
    recommendation_type: RecommendationType
    title: str
    description: str | None
    estimated_savings_usd: Decimal | None
    confidence_score: float | None
    details: JsonObject
    created_at: datetime
    updated_at: datetime


class RecommendationCreate(Input):
    customer_id: UUID
    agent_id: UUID
    recommendation_type: RecommendationType
    title: Name
    description: Text | None = None
    estimated_savings_usd: Usd | None = None
    confidence_score: Confidence | None = None
    details: JsonObject = Field(default_factory=dict)


class RecommendationUpdate(Input):
    """Fields set to None clear a nullable column (description, savings, confidence);
    title and details are kept when given None."""

    title: Name | None = None
    description: Text | None = None
    estimated_savings_usd: Usd | None = None
    confidence_score: Confidence | None = None
    details: JsonObject | None = None


class Approval(Record):
    id: UUID
    recommendation_id: UUID
    customer_id: UUID
    status: ApprovalStatus
    requested_by: str | None
    decided_by: str | None
    comment: str | None
    decided_at: datetime | None
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ApprovalCreate(Input):
    """A request for a decision; always stored as pending."""

    recommendation_id: UUID
    requested_by: Name | None = None
    comment: Text | None = None
    expires_at: Timestamp | None = None


class Optimization(Record):
    id: UUID
    recommendation_id: UUID
    approval_id: UUID
    customer_id: UUID
    status: OptimizationStatus
    started_at: datetime | None
    completed_at: datetime | None
    result: JsonObject
    error_details: JsonObject | None
    created_at: datetime
    updated_at: datetime


class OptimizationCreate(Input):
    """Carrying out a recommendation under one of its approved approvals; stored as pending."""

    recommendation_id: UUID
    approval_id: UUID
