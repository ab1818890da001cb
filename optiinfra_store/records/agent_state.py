"""Records and inputs of the agent state tables (to be written)."""

from __future__ import annotations

__all__: list[str] = []
