"""optimizations: carrying out an approved recommendation, with guarded transitions."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from optiinfra_store.enums import OptimizationStatus
from optiinfra_store.records import Optimization, OptimizationCreate, Page
from optiinfra_store.records._base import JsonObject
from optiinfra_store.repositories.base import Repository, as_optional_uuid, as_uuid, enum_values, optional_object


class Optimizations(Repository[Optimization], table="optimizations"):
    parent = ("recommendations", "recommendation_id")
    customer_owned = True

    async def create(self, data: OptimizationCreate) -> Optimization:
        """Insert a pending optimization. Raises ConstraintViolation
        (optimizations_approval_approved_check) unless the approval is approved, and
        MissingReference (optimizations_approval_id_fkey) if it is another recommendation's."""
        return await self._insert(OptimizationCreate.model_validate(data))

    async def start(self, id: UUID | str) -> Optimization:
        """pending -> in_progress; sets started_at. Raises NotFound, InvalidTransition."""
        return await self._transition(self._q.start, as_uuid(id), OptimizationStatus.IN_PROGRESS)

    async def complete(self, id: UUID | str, result: JsonObject | None = None) -> Optimization:
        """in_progress -> completed; sets completed_at and, if given, result."""
        return await self._transition(
            self._q.complete, as_uuid(id), OptimizationStatus.COMPLETED, optional_object(result, "result")
        )

    async def fail(self, id: UUID | str, error_details: JsonObject | None = None) -> Optimization:
        """in_progress -> failed; sets completed_at and, if given, error_details."""
        return await self._transition(
            self._q.fail, as_uuid(id), OptimizationStatus.FAILED, optional_object(error_details, "error_details")
        )

    async def roll_back(self, id: UUID | str) -> Optimization:
        """completed or failed -> rolled_back. Raises NotFound, InvalidTransition."""
        return await self._transition(self._q.roll_back, as_uuid(id), OptimizationStatus.ROLLED_BACK)

    async def list(
        self,
        *,
        recommendation_id: UUID | str | None = None,
        approval_id: UUID | str | None = None,
        status: OptimizationStatus | str | Iterable[OptimizationStatus | str] | None = None,
        limit: int = 1000,
        cursor: str | None = None,
    ) -> Page[Optimization]:
        """Optimizations, oldest first; `status` takes one value or several.
        One page: pass its `next_cursor` back as `cursor` for the next."""
        return await self._page(
            self._q.list,
            [
                as_optional_uuid(recommendation_id, "recommendation_id"),
                as_optional_uuid(approval_id, "approval_id"),
                enum_values(status, OptimizationStatus, "status"),
            ],
            limit,
            cursor,
            "created_at",
        )
