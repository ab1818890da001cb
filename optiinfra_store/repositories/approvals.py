"""approvals: a decision on a recommendation, with guarded transitions out of pending."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from optiinfra_store.enums import ApprovalStatus
from optiinfra_store.records import Approval, ApprovalCreate, Page
from optiinfra_store.repositories.base import Repository, as_optional_uuid, as_uuid, enum_values, optional_text


class Approvals(Repository[Approval], table="approvals"):
    parent = ("recommendations", "recommendation_id")
    customer_owned = True

    async def create(self, data: ApprovalCreate) -> Approval:
        """Request a decision (always pending). Raises MissingReference for an unknown recommendation."""
        return await self._insert(ApprovalCreate.model_validate(data))

    async def approve(self, id: UUID | str, *, decided_by: str | None = None, comment: str | None = None) -> Approval:
        """pending -> approved; sets decided_at, decided_by and (if given) comment.
        Raises NotFound, InvalidTransition (of two concurrent decisions, one gets it)."""
        return await self._decide(self._q.approve, id, ApprovalStatus.APPROVED, decided_by, comment)

    async def reject(self, id: UUID | str, *, decided_by: str | None = None, comment: str | None = None) -> Approval:
        """pending -> rejected; sets decided_at, decided_by and (if given) comment.
        Raises NotFound, InvalidTransition."""
        return await self._decide(self._q.reject, id, ApprovalStatus.REJECTED, decided_by, comment)

    async def _decide(
        self, sql: str, id: UUID | str, status: ApprovalStatus, decided_by: str | None, comment: str | None
    ) -> Approval:
        return await self._transition(
            sql,
            as_uuid(id),
            status,
            optional_text(decided_by, "decided_by", max_length=255),
            optional_text(comment, "comment"),
        )

    async def expire(self, id: UUID | str) -> Approval:
        """pending -> expired; sets decided_at. Raises NotFound, InvalidTransition."""
        return await self._transition(self._q.expire, as_uuid(id), ApprovalStatus.EXPIRED)

    async def list(
        self,
        *,
        recommendation_id: UUID | str | None = None,
        status: ApprovalStatus | str | Iterable[ApprovalStatus | str] | None = None,
        limit: int = 1000,
        cursor: str | None = None,
    ) -> Page[Approval]:
        """Approvals, oldest first; `status` takes one value or several.
        One page: pass its `next_cursor` back as `cursor` for the next."""
        return await self._page(
            self._q.list,
            [
                as_optional_uuid(recommendation_id, "recommendation_id"),
                enum_values(status, ApprovalStatus, "status"),
            ],
            limit,
            cursor,
            "created_at",
        )
