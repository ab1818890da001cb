"""What the routes of one app share: the platform store (never handed to a route: a route gets its
caller's confined store, see dependencies.py), the token verifier, the settings, the events hub
and the open streams, and the limits."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field

from optiinfra_store.api.agent_names import AgentNames
from optiinfra_store.api.auth import TokenVerifier
from optiinfra_store.api.limits import SharedAnalytics, StreamCaps
from optiinfra_store.api.models import DemoCustomer
from optiinfra_store.api.settings import Settings
from optiinfra_store.store import Store
from optiinfra_store.workflow_events import EventsHub, WorkflowEvents


@dataclass
class Service:
    store: Store
    verifier: TokenVerifier
    settings: Settings
    demo_customers: Sequence[DemoCustomer] = ()
    hub: EventsHub | None = None  # while the app runs (its lifespan opens and closes it)
    stopping: bool = False
    streams: weakref.WeakSet[WorkflowEvents] = field(default_factory=weakref.WeakSet)
    caps: StreamCaps = field(init=False)
    analytics: SharedAnalytics = field(init=False)
    agent_names: AgentNames = field(default_factory=AgentNames)

    def __post_init__(self) -> None:
        self.caps = StreamCaps(self.settings.max_streams, self.settings.max_customer_streams)
        self.analytics = SharedAnalytics(
            self.settings.analytics_per_customer, self.settings.analytics_queued_per_customer
        )

    async def close_streams(self) -> None:
        """End every open event stream and refuse new ones (the clients reconnect, to another
        process if need be)."""
        self.stopping = True
        for stream in list(self.streams):
            await stream.close()
