"""Records and inputs of the core tables: customers, agents, events, recommendations,
approvals, optimizations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import Field, StringConstraints

from optiinfra_store.enums import AgentStatus, AgentType, CustomerStatus
from optiinfra_store.records._base import Input, JsonObject, Name, Record, ShortName, Text, Timestamp

__all__ = [
    "Customer", "CustomerCreate", "CustomerUpdate", "Agent", "AgentCreate", "AgentUpdate",
]

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
