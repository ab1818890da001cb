"""workflow_executions: one run of a workflow by an agent for a customer, with guarded transitions."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from optiinfra_store.enums import WorkflowStatus, WorkflowType
from optiinfra_store.errors import NotFound
from optiinfra_store.records import (
    Page,
    WorkflowArtifact,
    WorkflowExecution,
    WorkflowExecutionCreate,
    WorkflowExecutionDetail,
    WorkflowExecutionUpdate,
    WorkflowStep,
    WorkflowTransition,
)
from optiinfra_store.records._base import JsonObject
from optiinfra_store.repositories.base import (
    Repository,
    as_optional_uuid,
    as_uuid,
    audit,
    check_limit,
    decode_cursor,
    encode_cursor,
    enum_values,
    optional_aware,
    optional_object,
)


class WorkflowExecutions(Repository[WorkflowExecution]):
    table = "workflow_executions"
    entity = "workflow execution"
    record_type = WorkflowExecution

    async def create(self, data: WorkflowExecutionCreate) -> WorkflowExecution:
        """Insert an execution (pending unless `data` imports a status).
        Raises MissingReference for an unknown agent or customer."""
        return await self._insert(WorkflowExecutionCreate.model_validate(data))

    async def update(self, id: UUID | str, data: WorkflowExecutionUpdate) -> WorkflowExecution:
        """Write the metadata / input_data / output_data set in `data`. Raises NotFound."""
        return await self._update(id, WorkflowExecutionUpdate.model_validate(data))

    async def start(
        self, id: UUID | str, *, actor: str | None = None, reason: JsonObject | None = None
    ) -> WorkflowExecution:
        """pending -> running; sets started_at. Raises NotFound, InvalidTransition.

        Every transition takes an optional `actor` and `reason`, recorded in the audit trail."""
        return await self._transition(self._q.start, as_uuid(id), WorkflowStatus.RUNNING, *audit(actor, reason))

    async def complete(
        self,
        id: UUID | str,
        output_data: JsonObject | None = None,
        *,
        actor: str | None = None,
        reason: JsonObject | None = None,
    ) -> WorkflowExecution:
        """running -> completed; sets completed_at and, if given, output_data.
        Raises NotFound, InvalidTransition (of two concurrent completes, one gets it)."""
        return await self._transition(
            self._q.complete, as_uuid(id), WorkflowStatus.COMPLETED,
            optional_object(output_data, "output_data"), *audit(actor, reason),
        )

    async def fail(
        self,
        id: UUID | str,
        error_details: JsonObject | None = None,
        *,
        actor: str | None = None,
        reason: JsonObject | None = None,
    ) -> WorkflowExecution:
        """running -> failed; sets completed_at and, if given, error_details."""
        return await self._transition(
            self._q.fail, as_uuid(id), WorkflowStatus.FAILED,
            optional_object(error_details, "error_details"), *audit(actor, reason),
        )

    async def cancel(
        self, id: UUID | str, reason: str | JsonObject | None = None, *, actor: str | None = None
    ) -> WorkflowExecution:
        """pending or running -> cancelled; sets completed_at and records the reason (a string
        becomes {"reason": ...}) in error_details and the audit trail."""
        if isinstance(reason, str):
            reason = {"reason": reason}
        actor_value, reason_value = audit(actor, reason)
        return await self._transition(
            self._q.cancel, as_uuid(id), WorkflowStatus.CANCELLED, reason_value, actor_value
        )

    async def time_out(
        self,
        id: UUID | str,
        error_details: JsonObject | None = None,
        *,
        actor: str | None = None,
        reason: JsonObject | None = None,
    ) -> WorkflowExecution:
        """running -> timeout; sets completed_at."""
        return await self._transition(
            self._q.time_out, as_uuid(id), WorkflowStatus.TIMEOUT,
            optional_object(error_details, "error_details"), *audit(actor, reason),
        )

    async def get_detail(self, id: UUID | str) -> WorkflowExecutionDetail:
        """The execution with its steps (ordered by step_order) and artifacts. Raises NotFound."""
        key = as_uuid(id)
        row = await self._fetchrow(self._q.get_detail, key)
        if row is None:
            return self._found(row, key)  # raises NotFound
        values = dict(row)
        values["steps"] = [WorkflowStep.model_validate(s) for s in values["steps"]]
        values["artifacts"] = [WorkflowArtifact.model_validate(a) for a in values["artifacts"]]
        return WorkflowExecutionDetail.model_construct(**values)

    async def list(
        self,
        *,
        customer_id: UUID | str | None = None,
        agent_id: UUID | str | None = None,
        workflow_type: WorkflowType | str | None = None,
        status: WorkflowStatus | str | Iterable[WorkflowStatus | str] | None = None,
        started_after: datetime | None = None,
        started_before: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[WorkflowExecution]:
        """One page of executions, newest first. `status` takes one value or several;
        pass the returned `next_cursor` to get the next page (None on the last)."""
        after_created, after_id = decode_cursor(cursor) if cursor is not None else (None, None)
        size = check_limit(limit, maximum=1000)
        rows = await self._fetch(
            self._q.list,
            as_optional_uuid(customer_id, "customer_id"),
            as_optional_uuid(agent_id, "agent_id"),
            None if workflow_type is None else WorkflowType(workflow_type).value,
            enum_values(status, WorkflowStatus),
            optional_aware(started_after, "started_after"),
            optional_aware(started_before, "started_before"),
            after_created,
            after_id,
            size + 1,
        )
        items = self._many(rows[:size])
        next_cursor = None
        if len(rows) > size:
            last = items[-1]
            next_cursor = encode_cursor(last.created_at, last.id)
        return Page[WorkflowExecution](items=items, next_cursor=next_cursor)

    async def history(self, id: UUID | str) -> list[WorkflowTransition]:
        """Every status change of the execution and of its steps, oldest first, with who made it
        and why. Raises NotFound."""
        key = as_uuid(id)
        rows = await self._fetch(self._q.history, key)
        if not rows and await self._fetchval(self._q.get_status, key) is None:
            raise NotFound(self.entity, key)
        return [WorkflowTransition.model_construct(**row) for row in rows]

    async def list_active(self) -> list[WorkflowExecution]:
        """Every pending and running execution, oldest first."""
        return self._many(await self._fetch(self._q.list_active))
