"""Deprecated, to be removed in 0.3: the live workflow events are `optiinfra_store.workflow_events`."""

import warnings

from optiinfra_store.workflow_events import CHANNEL, WorkflowEvents

__all__ = ["CHANNEL", "WorkflowEvents"]

warnings.warn(
    "optiinfra_store.events is deprecated: import from optiinfra_store.workflow_events",
    DeprecationWarning,
    stacklevel=2,
)
