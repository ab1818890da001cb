"""One repository per table, a module each; `base.py` holds what they share.

`Repositories` below is the one list of repositories: an import and an annotated attribute each.
`Store`, `Transaction` and the tests' table lists derive from it (`repository_types`).
"""

from __future__ import annotations

from typing import Any, get_type_hints
from uuid import UUID

from optiinfra_store.connection.executor import Executor
from optiinfra_store.connection.routes import Routes
from optiinfra_store.crypto.secrets import SecretKeys
from optiinfra_store.repositories.agent_capabilities import AgentCapabilities
from optiinfra_store.repositories.agent_configs import AgentConfigs
from optiinfra_store.repositories.agent_metrics import AgentMetrics
from optiinfra_store.repositories.agent_states import AgentStates
from optiinfra_store.repositories.agents import Agents
from optiinfra_store.repositories.approvals import Approvals
from optiinfra_store.repositories.base import Repository
from optiinfra_store.repositories.customers import Customers
from optiinfra_store.repositories.events import Events
from optiinfra_store.repositories.optimizations import Optimizations
from optiinfra_store.repositories.recommendations import Recommendations
from optiinfra_store.repositories.workflow_artifacts import WorkflowArtifacts
from optiinfra_store.repositories.workflow_executions import WorkflowExecutions
from optiinfra_store.repositories.workflow_steps import WorkflowSteps


class Repositories:
    """The repositories, one per table, bound to one executor (the pool, or one connection in a
    transaction), optionally confined to one customer.

    Each attribute is named after its table; everything else that lists the repositories derives
    from these annotations (`repository_types`).
    """

    customers: Customers
    agents: Agents
    events: Events
    recommendations: Recommendations
    approvals: Approvals
    optimizations: Optimizations
    agent_configs: AgentConfigs
    agent_states: AgentStates
    agent_capabilities: AgentCapabilities
    agent_metrics: AgentMetrics
    workflow_executions: WorkflowExecutions
    workflow_steps: WorkflowSteps
    workflow_artifacts: WorkflowArtifacts

    def __init__(
        self,
        executor: Executor,
        secret_keys: SecretKeys | None = None,
        customer_id: UUID | None = None,
        reads: Executor | None = None,
        by_customer: bool = False,
        routes: Routes | None = None,
    ) -> None:
        self._executor = executor
        self._secret_keys = secret_keys
        self._reads = reads
        self.customer_id = customer_id
        """The customer these repositories are confined to (None: not confined)."""
        self.by_customer = by_customer
        """The schema is distributed by customer (a Citus cluster, `optiinfra-store distribute`):
        every write names its customer, to go to the one shard holding it."""
        self._routes = routes if by_customer else None


class _MadeOnFirstUse:
    """A repository attribute: the repository is made when first read, then kept on the instance
    (so a store made for one call, `store.for_customer(id)`, makes only what that call uses)."""

    __slots__ = ("_name", "_type")

    def __init__(self, name: str, repository: type[Repository[Any]]) -> None:
        self._name, self._type = name, repository

    def __get__(self, owner: Repositories | None, cls: type[Repositories]) -> Any:
        if owner is None:
            return self
        repository = self._type(
            owner._executor, owner.customer_id, owner._secret_keys, owner._reads, owner.by_customer, owner._routes
        )
        owner.__dict__[self._name] = repository  # read from the instance from now on
        return repository


def repository_types() -> dict[str, type[Repository[Any]]]:
    """{attribute (the table's name): repository class}, in declaration order."""
    return _REPOSITORY_TYPES


_REPOSITORY_TYPES: dict[str, type[Repository[Any]]] = get_type_hints(Repositories)
for _name, _type in _REPOSITORY_TYPES.items():
    if not (isinstance(_type, type) and issubclass(_type, Repository) and _type.table == _name):
        raise TypeError(f"Repositories.{_name} must be the repository of the table {_name!r}")
    setattr(Repositories, _name, _MadeOnFirstUse(_name, _type))

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
    "Repositories",
    "WorkflowArtifacts",
    "WorkflowExecutions",
    "WorkflowSteps",
    "repository_types",
]
