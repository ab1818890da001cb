"""Records and inputs of the workflow history: executions, steps, artifacts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import Field, StringConstraints, ValidationInfo, computed_field, field_validator

from optiinfra_store.enums import ArtifactType, StepStatus, WorkflowStatus, WorkflowType
from optiinfra_store.records._base import INT4_MAX, Count, Input, JsonObject, Name, Record, Timestamp

__all__ = [
    "WorkflowExecution",
    "WorkflowExecutionCreate",
    "WorkflowExecutionUpdate",
    "WorkflowExecutionDetail",
    "WorkflowStep",
    "WorkflowStepCreate",
    "WorkflowArtifact",
    "WorkflowArtifactCreate",
    "WorkflowTransition",
]

ContentType = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"\S")]
Path = Annotated[str, StringConstraints(min_length=1, max_length=4096, pattern=r"\S")]


def _duration(started_at: datetime | None, completed_at: datetime | None) -> float | None:
    if started_at is None or completed_at is None:
        return None
    return (completed_at - started_at).total_seconds()


def _completed_not_before_started(completed_at: datetime | None, info: ValidationInfo) -> datetime | None:
    started_at = info.data.get("started_at")
    if started_at is not None and completed_at is not None and completed_at < started_at:
        raise ValueError("completed_at must not be before started_at")
    return completed_at


class WorkflowExecution(Record):
    id: UUID
    agent_id: UUID
    customer_id: UUID
    workflow_type: WorkflowType
    status: WorkflowStatus
    started_at: datetime | None
    completed_at: datetime | None
    input_data: JsonObject
    output_data: JsonObject
    error_details: JsonObject | None
    metadata: JsonObject
    idempotency_key: str | None
    version: int
    """How many writes the row has had (1 when created); pass it as `expected_version`."""
    created_at: datetime
    updated_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def duration_seconds(self) -> float | None:
        """Seconds from start to completion; None until both are set."""
        return _duration(self.started_at, self.completed_at)


class WorkflowExecutionCreate(Input):
    """A new execution: pending by default; an explicit status with its timestamps imports history."""

    agent_id: UUID
    customer_id: UUID
    workflow_type: WorkflowType
    status: WorkflowStatus = WorkflowStatus.PENDING
    started_at: Timestamp | None = None
    completed_at: Timestamp | None = None
    input_data: JsonObject = Field(default_factory=dict)
    output_data: JsonObject = Field(default_factory=dict)
    error_details: JsonObject | None = None
    metadata: JsonObject = Field(default_factory=dict)
    idempotency_key: Name | None = None
    """Unique per agent: creating again with the same key returns the first row, writes nothing."""

    _times_in_order = field_validator("completed_at")(_completed_not_before_started)


class WorkflowExecutionUpdate(Input):
    """The data of an execution; its status changes only through the transitions."""

    metadata: JsonObject | None = None
    input_data: JsonObject | None = None
    output_data: JsonObject | None = None


class WorkflowStep(Record):
    id: UUID
    workflow_execution_id: UUID
    customer_id: UUID
    step_name: str
    step_order: int
    status: StepStatus
    started_at: datetime | None
    completed_at: datetime | None
    input_data: JsonObject
    output_data: JsonObject
    error_details: JsonObject | None
    retry_count: int
    max_retries: int
    metadata: JsonObject
    created_at: datetime
    updated_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def duration_seconds(self) -> float | None:
        """Seconds from start to completion; None until both are set."""
        return _duration(self.started_at, self.completed_at)


class WorkflowStepCreate(Input):
    workflow_execution_id: UUID
    step_name: Name
    step_order: Annotated[int, Field(ge=1, le=INT4_MAX)]
    status: StepStatus = StepStatus.PENDING
    started_at: Timestamp | None = None
    completed_at: Timestamp | None = None
    input_data: JsonObject = Field(default_factory=dict)
    output_data: JsonObject = Field(default_factory=dict)
    error_details: JsonObject | None = None
    retry_count: Count = 0
    max_retries: Count = 3
    metadata: JsonObject = Field(default_factory=dict)

    _times_in_order = field_validator("completed_at")(_completed_not_before_started)

    @field_validator("max_retries")
    @classmethod
    def _retries_within_max(cls, max_retries: int, info: ValidationInfo) -> int:
        retry_count = info.data.get("retry_count")
        if retry_count is not None and retry_count > max_retries:
            raise ValueError(f"must be at least retry_count ({retry_count}): retry_count > max_retries")
        return max_retries


class WorkflowArtifact(Record):
    id: UUID
    workflow_execution_id: UUID
    workflow_step_id: UUID | None
    customer_id: UUID
    artifact_type: ArtifactType
    artifact_name: str
    artifact_path: str
    artifact_size_bytes: int | None
    content_type: str | None
    metadata: JsonObject
    created_at: datetime
    updated_at: datetime


class WorkflowArtifactCreate(Input):
    workflow_execution_id: UUID
    workflow_step_id: UUID | None = None
    artifact_type: ArtifactType
    artifact_name: Name
    artifact_path: Path
    artifact_size_bytes: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = None
    content_type: ContentType | None = None
    metadata: JsonObject = Field(default_factory=dict)


class WorkflowExecutionDetail(WorkflowExecution):
    """An execution with its steps (by step_order) and artifacts, read in one round trip."""

    steps: list[WorkflowStep]
    artifacts: list[WorkflowArtifact]


class WorkflowTransition(Record):
    """One status change of an execution (workflow_step_id None) or of one of its steps; from_status
    is None for the row's creation. Written by a database trigger, never updated."""

    id: int
    workflow_execution_id: UUID
    workflow_step_id: UUID | None
    customer_id: UUID
    from_status: str | None
    to_status: str
    at: datetime
    actor: str | None
    reason: JsonObject | None
