"""recommendations (to be written)."""

from __future__ import annotations

from optiinfra_store.repositories.base import Repository


class Recommendations(Repository):
    table = "recommendations"
    entity = "recommendation"
