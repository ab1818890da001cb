"""workflow_artifacts: reports, configs, logs and other outputs of an execution or one of its steps."""

from __future__ import annotations

from uuid import UUID

from optiinfra_store.enums import ArtifactType
from optiinfra_store.records import Page, WorkflowArtifact, WorkflowArtifactCreate
from optiinfra_store.repositories.base import Repository, as_optional_uuid, enum_value, keyword_filters


class WorkflowArtifacts(Repository[WorkflowArtifact], table="workflow_artifacts"):
    parent = ("workflow_executions", "workflow_execution_id")
    customer_owned = True

    async def create(self, data: WorkflowArtifactCreate) -> WorkflowArtifact:
        """Insert an artifact, of the execution as a whole or of one of its steps.
        Raises MissingReference when the execution is unknown or the step is not one of its steps."""
        return await self._insert(WorkflowArtifactCreate.model_validate(data))

    @keyword_filters("execution_id", "step_id", "artifact_type", "limit")
    async def list(
        self,
        *,
        execution_id: UUID | str | None = None,
        step_id: UUID | str | None = None,
        artifact_type: ArtifactType | str | None = None,
        limit: int = 1000,
        cursor: str | None = None,
    ) -> Page[WorkflowArtifact]:
        """Artifacts, oldest first, filtered by execution, step and type.
        One page: pass its `next_cursor` back as `cursor` for the next."""
        return await self._page(
            self._q.list,
            [
                as_optional_uuid(execution_id, "execution_id"),
                as_optional_uuid(step_id, "step_id"),
                enum_value(artifact_type, ArtifactType, "artifact_type"),
            ],
            limit,
            cursor,
            "created_at",
        )
