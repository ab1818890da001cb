"""events (to be written)."""

from __future__ import annotations

from optiinfra_store.repositories.base import Repository


class Events(Repository):
    table = "events"
    entity = "event"
