"""optimizations (to be written)."""

from __future__ import annotations

from optiinfra_store.repositories.base import Repository


class Optimizations(Repository):
    table = "optimizations"
    entity = "optimization"
