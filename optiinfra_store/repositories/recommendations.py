"""recommendations: changes an agent proposes for a customer, with their expected savings."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from optiinfra_store.enums import RecommendationType
from optiinfra_store.records import Page, Recommendation, RecommendationCreate, RecommendationUpdate
from optiinfra_store.repositories.base import Repository, as_optional_uuid, enum_values


class Recommendations(Repository[Recommendation], table="recommendations"):
    customer_owned = True

    async def create(self, data: RecommendationCreate) -> Recommendation:
        """Insert a recommendation. Raises MissingReference for an unknown customer or agent."""
        return await self._insert(RecommendationCreate.model_validate(data))

    async def update(self, id: UUID | str, data: RecommendationUpdate) -> Recommendation:
        """Write the fields set in `data` (None clears description, savings, confidence).
        Raises NotFound."""
        return await self._update(id, RecommendationUpdate.model_validate(data))

    async def list(
        self,
        *,
        customer_id: UUID | str | None = None,
        agent_id: UUID | str | None = None,
        recommendation_type: RecommendationType | str | Iterable[RecommendationType | str] | None = None,
        limit: int = 1000,
        cursor: str | None = None,
    ) -> Page[Recommendation]:
        """Recommendations, oldest first; `recommendation_type` takes one value or several.
        One page: pass its `next_cursor` back as `cursor` for the next."""
        return await self._page(
            self._q.list,
            [
                as_optional_uuid(customer_id, "customer_id"),
                as_optional_uuid(agent_id, "agent_id"),
                enum_values(recommendation_type, RecommendationType, "recommendation_type"),
            ],
            limit,
            cursor,
            "created_at",
        )
