"""approvals (to be written)."""

from __future__ import annotations

from optiinfra_store.repositories.base import Repository


class Approvals(Repository):
    table = "approvals"
    entity = "approval"
