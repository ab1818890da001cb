"""One repository per table, a module each; `base.py` holds what they share.

The one list of repositories is the annotations of `optiinfra_store.store.Repositories`; the names
here resolve through it (the imports below are for type checkers only, and a unit test holds
them to that list).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optiinfra_store.repositories.agent_capabilities import AgentCapabilities
    from optiinfra_store.repositories.agent_configs import AgentConfigs
    from optiinfra_store.repositories.agent_metrics import AgentMetrics
    from optiinfra_store.repositories.agent_states import AgentStates
    from optiinfra_store.repositories.agents import Agents
    from optiinfra_store.repositories.approvals import Approvals
    from optiinfra_store.repositories.customers import Customers
    from optiinfra_store.repositories.events import Events
    from optiinfra_store.repositories.optimizations import Optimizations
    from optiinfra_store.repositories.recommendations import Recommendations
    from optiinfra_store.repositories.workflow_artifacts import WorkflowArtifacts
    from optiinfra_store.repositories.workflow_executions import WorkflowExecutions
    from optiinfra_store.repositories.workflow_steps import WorkflowSteps

    __all__ = [
        "AgentCapabilities",
        "AgentConfigs",
        "AgentMetrics",
        "AgentStates",
        "Agents",
        "Approvals",
        "Customers",
        "Events",
        "Optimizations",
        "Recommendations",
        "WorkflowArtifacts",
        "WorkflowExecutions",
        "WorkflowSteps",
    ]


def _names() -> dict[str, type[Any]]:
    from optiinfra_store.store import repository_types

    return {repository.__name__: repository for repository in repository_types().values()}


def __getattr__(name: str) -> Any:
    if name == "__all__":
        return sorted(_names())
    try:
        return _names()[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted(_names())
