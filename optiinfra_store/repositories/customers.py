"""customers: the companies whose infrastructure the agents look after."""

from __future__ import annotations

import builtins
from uuid import UUID

from optiinfra_store.enums import CustomerStatus
from optiinfra_store.records import Customer, CustomerCreate, CustomerUpdate
from optiinfra_store.repositories.base import Repository, check_limit, enum_value, platform, text


class Customers(Repository[Customer], table="customers"):
    delete = platform(Repository.delete)

    @platform
    async def create(self, data: CustomerCreate) -> Customer:
        """Insert a customer. Raises AlreadyExists (customers_email_key) for a taken email."""
        return await self._insert(CustomerCreate.model_validate(data))

    @platform
    async def update(self, id: UUID | str, data: CustomerUpdate) -> Customer:
        """Write the fields set in `data`. Raises NotFound, AlreadyExists."""
        return await self._update(id, CustomerUpdate.model_validate(data))

    async def get_by_email(self, email: str) -> Customer:
        """The customer with this email. Raises NotFound."""
        return self._found(await self._db.fetchrow(self._q.get_by_email, text(email, "email")), email)

    async def list(self, *, status: CustomerStatus | str | None = None, limit: int = 1000) -> builtins.list[Customer]:
        """Customers, oldest first, optionally of one status."""
        status_value = enum_value(status, CustomerStatus, "status")
        return self._many(await self._db.fetch(self._q.list, status_value, check_limit(limit)))
