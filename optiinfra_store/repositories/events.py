"""events: what agents observed and did for a customer (anomalies, regressions, applied changes)."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from optiinfra_store.enums import EventSeverity, EventType
from optiinfra_store.records import Event, EventCreate, Page
from optiinfra_store.repositories.base import Repository, as_optional_uuid, enum_values


class Events(Repository[Event], table="events"):
    customer_owned = True

    async def create(self, data: EventCreate) -> Event:
        """Record an event (occurred_at defaults to the database's now()).
        Raises MissingReference for an unknown customer or agent."""
        return await self._insert(EventCreate.model_validate(data))

    async def list(
        self,
        *,
        customer_id: UUID | str | None = None,
        agent_id: UUID | str | None = None,
        event_type: EventType | str | Iterable[EventType | str] | None = None,
        severity: EventSeverity | str | Iterable[EventSeverity | str] | None = None,
        limit: int = 1000,
        cursor: str | None = None,
    ) -> Page[Event]:
        """Events, newest first (occurred_at, then id); `event_type` and `severity` take one
        value or several.
        One page: pass its `next_cursor` back as `cursor` for the next."""
        return await self._page(
            self._q.list,
            [
                as_optional_uuid(customer_id, "customer_id"),
                as_optional_uuid(agent_id, "agent_id"),
                enum_values(event_type, EventType, "event_type"),
                enum_values(severity, EventSeverity, "severity"),
            ],
            limit,
            cursor,
            "occurred_at",
        )
