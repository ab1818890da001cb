"""Records returned by the history analytics, retention and metric time series."""

from __future__ import annotations

__all__: list[str] = []
