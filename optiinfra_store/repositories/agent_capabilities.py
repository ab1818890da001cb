"""agent_capabilities: the versioned capabilities an agent offers, each enabled or not."""

from __future__ import annotations

import builtins
import warnings
from typing import Any
from uuid import UUID

from optiinfra_store.errors import InvalidArgument
from optiinfra_store.records import AgentCapability, AgentCapabilityCreate, AgentCapabilityUpdate
from optiinfra_store.repositories.base import (
    Repository,
    as_optional_uuid,
    check_limit,
    keyword_filters,
    optional_object,
    optional_text,
    platform,
)


class AgentCapabilities(Repository[AgentCapability], table="agent_capabilities"):
    delete = platform(Repository.delete)

    @platform
    async def create(self, data: AgentCapabilityCreate) -> AgentCapability:
        """Insert a capability version. Raises MissingReference for an unknown agent, AlreadyExists
        (agent_capabilities_agent_id_name_version_key) for a name and version the agent has."""
        return await self._insert(AgentCapabilityCreate.model_validate(data))

    @platform
    async def update(self, id: UUID | str, data: AgentCapabilityUpdate) -> AgentCapability:
        """Write the fields set in `data`. Raises NotFound."""
        return await self._update(id, AgentCapabilityUpdate.model_validate(data))

    @platform
    async def set_enabled(self, id: UUID | str, enabled: bool) -> AgentCapability:
        """Deprecated, to be removed in 0.3: `update(id, AgentCapabilityUpdate(is_enabled=...))`."""
        _deprecated("set_enabled", "is_enabled")
        if not isinstance(enabled, bool):
            raise InvalidArgument(f"enabled must be a bool, got {type(enabled).__name__}")
        return await self.update(id, AgentCapabilityUpdate(is_enabled=enabled))

    @platform
    async def update_parameters(self, id: UUID | str, parameters: dict[str, Any]) -> AgentCapability:
        """Deprecated, to be removed in 0.3: `update(id, AgentCapabilityUpdate(parameters=...))`."""
        _deprecated("update_parameters", "parameters")
        if not isinstance(parameters, dict):
            raise InvalidArgument(f"parameters must be a dict, got {type(parameters).__name__}")
        return await self.update(id, AgentCapabilityUpdate(parameters=optional_object(parameters, "parameters")))

    @keyword_filters("agent_id", "capability_name", "is_enabled", "limit")
    async def list(
        self,
        *,
        agent_id: UUID | str | None = None,
        capability_name: str | None = None,
        is_enabled: bool | None = None,
        limit: int = 1000,
    ) -> builtins.list[AgentCapability]:
        """Capabilities by capability_name, then capability_version (as text)."""
        if is_enabled is not None and not isinstance(is_enabled, bool):
            raise InvalidArgument(f"is_enabled must be a bool, got {type(is_enabled).__name__}")
        return self._many(
            await self._db.fetch(
                self._q.list,
                as_optional_uuid(agent_id, "agent_id"),
                optional_text(capability_name, "capability_name"),
                is_enabled,
                check_limit(limit),
            )
        )


def _deprecated(method: str, field: str) -> None:
    warnings.warn(
        f"agent_capabilities.{method} is deprecated: use update(id, AgentCapabilityUpdate({field}=...))",
        DeprecationWarning,
        stacklevel=4,  # _deprecated, the method, @platform's wrapper, the caller
    )
