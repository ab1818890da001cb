"""Pydantic records (rows as stored, frozen) and the inputs callers build (*Create, *Update).

Inputs are validated before any SQL runs: a bad value raises pydantic's ValidationError
naming the field, and nothing is written.
"""

from optiinfra_store.records._base import Page
from optiinfra_store.records.agent_state import *  # noqa: F403
from optiinfra_store.records.agent_state import __all__ as _agent_state
from optiinfra_store.records.analytics import *  # noqa: F403
from optiinfra_store.records.analytics import __all__ as _analytics
from optiinfra_store.records.core import *  # noqa: F403
from optiinfra_store.records.core import __all__ as _core
from optiinfra_store.records.workflow import *  # noqa: F403
from optiinfra_store.records.workflow import __all__ as _workflow

__all__ = ["Page", *_core, *_agent_state, *_workflow, *_analytics]
