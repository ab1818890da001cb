"""workflow_steps: the ordered steps of an execution, with guarded transitions and retries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

from optiinfra_store.enums import StepStatus
from optiinfra_store.errors import InvalidTransition, MissingReference, NotFound, RetriesExhausted
from optiinfra_store.records import Page, WorkflowStep, WorkflowStepCreate
from optiinfra_store.records._base import JsonObject
from optiinfra_store.repositories.base import Finishing, as_uuid, audit, enum_values, keyword_filters

_RETRYABLE = (StepStatus.FAILED, StepStatus.RUNNING)


class WorkflowSteps(Finishing[WorkflowStep], table="workflow_steps"):
    status_type = StepStatus
    parent = ("workflow_executions", "workflow_execution_id")
    customer_owned = True

    async def create(self, data: WorkflowStepCreate) -> WorkflowStep:
        """Insert a step. Raises MissingReference for an unknown execution, AlreadyExists
        (workflow_steps_execution_id_step_order_key) for a step_order already taken."""
        return await self._insert(WorkflowStepCreate.model_validate(data))

    async def create_many(self, steps: Sequence[WorkflowStepCreate]) -> list[WorkflowStep]:
        """Insert several steps in one round trip, all or none; returned in the order given."""
        validated = [WorkflowStepCreate.model_validate(s) for s in steps]
        if not validated:
            return []
        if self._by_customer:
            # one routed insert a step, in one transaction: a statement reading its rows from the
            # client goes through the coordinator, and commits on two nodes (SCALING.md). The
            # customers are read first: read inside, each would take a second pooled connection
            # while the transaction holds one, and callers as many as the pool would wait forever.
            customers = {
                execution: await self._customer_of_parent(execution)
                for execution in dict.fromkeys(s.workflow_execution_id for s in validated)
            }
            try:
                async with self._db.transaction() as db:
                    return [
                        self._one(
                            await db.fetchrow(
                                self._q.insert_routed,
                                *self._q.args("insert_routed", s, customer_id=customers[s.workflow_execution_id]),
                            )
                        )
                        for s in validated
                    ]
            except MissingReference as exc:
                raise self._not_under_this_customer(exc) from exc
        columns: list[list[Any]] = [
            [getattr(step, field) for step in validated] for field in WorkflowStepCreate.model_fields
        ]
        columns[3] = [status.value for status in columns[3]]  # status as text[]: cast to step_status[] in SQL
        rows = await self._db.fetch(self._q.insert_many, *columns)
        by_order = {(r["workflow_execution_id"], r["step_order"]): r for r in rows}
        return [self._one(by_order[(s.workflow_execution_id, s.step_order)]) for s in validated]

    @keyword_filters("status", positional=1)
    async def list(
        self,
        execution_id: UUID | str,
        *,
        status: StepStatus | str | Iterable[StepStatus | str] | None = None,
        limit: int = 1000,
        cursor: str | None = None,
    ) -> Page[WorkflowStep]:
        """The steps of one execution, by step_order; one page (pass its `next_cursor` back as
        `cursor` for the next)."""
        filters = [as_uuid(execution_id, "execution_id"), enum_values(status, StepStatus, "status")]
        return await self._page(self._q.list, filters, limit, cursor, "step_order")

    async def start(
        self, id: UUID | str, *, actor: str | None = None, reason: str | JsonObject | None = None
    ) -> WorkflowStep:
        """pending or retrying -> running; started_at set on the first start.
        Raises NotFound, InvalidTransition.

        Every transition takes an optional `actor` (who) and `reason` (why: a dict, or a string,
        recorded as {"message": reason}), recorded in the audit trail; InvalidArgument otherwise."""
        return await self._move(self._q.start, id, StepStatus.RUNNING, actor, reason)

    async def skip(
        self, id: UUID | str, *, actor: str | None = None, reason: str | JsonObject | None = None
    ) -> WorkflowStep:
        """pending -> skipped."""
        return await self._move(self._q.skip, id, StepStatus.SKIPPED, actor, reason)

    async def retry(
        self, id: UUID | str, *, actor: str | None = None, reason: str | JsonObject | None = None
    ) -> WorkflowStep:
        """failed or running -> retrying, incrementing retry_count.
        Raises RetriesExhausted when retry_count already equals max_retries, else
        NotFound or InvalidTransition."""
        key = as_uuid(id)

        customer = await self._customer_of(key)

        async def retry_state() -> tuple[Any, ...] | None:
            state = await self._db.fetchrow(self._q.get_retry_state, key, customer)
            return (
                None
                if state is None or state["status"] is None
                else (state["status"], state["retry_count"], state["max_retries"])
            )

        if self._by_customer and customer is None:  # no such step: nothing to route the write to
            row, state = None, await retry_state()
        else:
            row, state = await self._apply(self._q.retry, key, (*audit(actor, reason), customer), retry_state)
        if row is not None:
            return row
        if state is None:
            raise NotFound(self.entity, key)
        status, retry_count, max_retries = state
        if status in _RETRYABLE and retry_count >= max_retries:
            raise RetriesExhausted(self.entity, key, status, retry_count, max_retries)
        raise InvalidTransition(self.entity, key, status, StepStatus.RETRYING)
