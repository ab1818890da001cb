"""One repository per table; `base.py` holds what they share."""

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
