"""A workload for failovers: agents that create (with idempotency keys), start and complete
workflows through one Store, a live-events subscriber, and the checks made afterwards on the
new primary. Shared by `test_failover.py` and `python -m benchmarks failover`.

A write that fails with StoreUnavailable (or StoreTimeout) is not acknowledged: it is counted,
and retried the safe way: a create with the same idempotency key, a transition by reading back
whether it happened. `OutcomeUnknown` (the write may have committed: the connection died after it
was sent) is counted apart from the rest (never sent, or refused before it ran).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import UUID

import psycopg

from optiinfra_store import Store
from optiinfra_store.enums import AgentStatus, AgentType, WorkflowType
from optiinfra_store.errors import InvalidTransition, OutcomeUnknown, StoreTimeout, StoreUnavailable
from optiinfra_store.records import AgentCreate, CustomerCreate, WorkflowExecutionCreate
from optiinfra_store.workflow_events import EventsHub

T = TypeVar("T")
TRANSIENT = (StoreUnavailable, StoreTimeout)
RANK = {"pending": 0, "running": 1, "completed": 2}
GIVE_UP = 90.0  # seconds an agent retries one write before the run fails


@dataclass
class Ledger:
    """What the agents were told: acknowledged writes, and failures whose outcome is unknown."""

    acked: dict[UUID, str] = field(default_factory=dict)  # execution -> last acknowledged status
    keys: dict[tuple[UUID, str], UUID] = field(default_factory=dict)  # (agent, key) -> execution
    acknowledged: int = 0
    unknown: int = 0  # writes that raised StoreUnavailable/StoreTimeout: not acknowledged
    outcome_unknown: int = 0  # of which OutcomeUnknown: sent, and may have committed
    errors: Counter[str] = field(default_factory=Counter)
    ack_times: list[float] = field(default_factory=list)  # time.monotonic() of each acknowledgement

    def ack(self) -> None:
        self.acknowledged += 1
        self.ack_times.append(time.monotonic())


async def _retrying(ledger: Ledger, attempt: Callable[[], Awaitable[T]]) -> T:
    began, delay = time.monotonic(), 0.05
    while True:
        try:
            return await attempt()
        except TRANSIENT as exc:
            ledger.unknown += 1
            ledger.outcome_unknown += isinstance(exc, OutcomeUnknown)
            ledger.errors[type(exc).__name__] += 1
            if time.monotonic() - began > GIVE_UP:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)


async def agent_loop(store: Store, agent_id: UUID, customer_id: UUID, ledger: Ledger, stop: asyncio.Event) -> None:
    """Workflows until `stop`: create (keyed), start, complete; each write retried until it is known."""
    n = 0
    while not stop.is_set():
        n += 1
        key = f"failover-{n}"

        async def create(key: str = key) -> Any:
            return await store.workflow_executions.create(
                WorkflowExecutionCreate(
                    agent_id=agent_id, customer_id=customer_id, workflow_type=WorkflowType.HEALTH_CHECK,
                    idempotency_key=key,
                )
            )  # fmt: skip

        execution = await _retrying(ledger, create)
        ledger.keys[(agent_id, key)] = execution.id
        ledger.acked[execution.id] = "pending"
        ledger.ack()
        for status, move in (
            ("running", store.workflow_executions.start),
            ("completed", store.workflow_executions.complete),
        ):

            async def transition(move: Any = move, status: str = status, execution_id: UUID = execution.id) -> None:
                try:
                    await move(execution_id)
                except InvalidTransition as refused:  # an attempt whose reply was lost did apply it
                    # (a refusal names a status the standby has too, as a retried create's row is)
                    if RANK.get(refused.current_status, -1) < RANK[status]:
                        raise

            await _retrying(ledger, transition)
            ledger.acked[execution.id] = status
            ledger.ack()


@dataclass
class Subscriber:
    """A `workflow_events(customer_id=...)` subscription kept running through the faults."""

    delivered: list[tuple[int, UUID, str]] = field(default_factory=list)
    error: BaseException | None = None
    reconnects: int = 0

    async def run(self, store: Store, customer_id: UUID, ready: asyncio.Event, hub: EventsHub | None = None) -> None:
        try:
            async with store.workflow_events(customer_id=customer_id, poll_interval=0.2, hub=hub) as events:
                ready.set()
                try:
                    async for t in events:
                        self.delivered.append((t.id, t.workflow_execution_id, t.to_status))
                finally:
                    self.reconnects = events.reconnects
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # reported by check(), not lost in a task
            self.error = exc
            ready.set()


@dataclass
class Report:
    acknowledged: int
    unknown: int
    outcome_unknown: int
    lost: list[str]
    duplicated: list[str]
    taken_back: list[int]  # delivered, but not on the new primary
    missed: list[int]  # on the new primary, never delivered
    repeated: list[int]  # delivered more than once
    subscriber_error: str | None

    def __str__(self) -> str:
        def few(items: list[Any]) -> str:
            return f"{len(items)} {items[:5]}{' ...' if len(items) > 5 else ''}"

        return (
            f"{self.acknowledged} acknowledged, {self.unknown} failed ({self.outcome_unknown} OutcomeUnknown); lost {few(self.lost)}, duplicated "
            f"{few(self.duplicated)}; events taken back {few(self.taken_back)}, missed {few(self.missed)}, "
            f"repeated {few(self.repeated)}; subscriber error {self.subscriber_error}"
        )

    @property
    def ok(self) -> bool:
        return not (
            self.lost or self.duplicated or self.taken_back or self.missed or self.repeated or self.subscriber_error
        )


def _rows(dsn: str, customer_id: UUID) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        executions = conn.execute(
            "SELECT id, agent_id, idempotency_key, status::text FROM workflow_executions WHERE customer_id = %s",
            (customer_id,),
        ).fetchall()
        transitions = conn.execute(
            "SELECT id, workflow_execution_id, to_status::text FROM workflow_transitions"
            " WHERE customer_id = %s AND workflow_step_id IS NULL",
            (customer_id,),
        ).fetchall()
    return executions, transitions


async def check(dsn: str, customer_id: UUID, ledger: Ledger, subscriber: Subscriber, wait: float = 30.0) -> Report:
    """Read the primary of `dsn` (a multi-host URI finds the new one) once the subscriber has caught up."""
    deadline = time.monotonic() + wait
    while True:
        executions, transitions = await asyncio.to_thread(_rows, dsn, customer_id)
        delivered = {d[0] for d in subscriber.delivered}
        if {t[0] for t in transitions} <= delivered or subscriber.error or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    by_id = {e[0]: e for e in executions}
    lost = [
        f"execution {eid}: acknowledged {status}, " + ("missing" if eid not in by_id else f"is {by_id[eid][3]}")
        for eid, status in ledger.acked.items()
        if eid not in by_id or RANK[by_id[eid][3]] < RANK[status]
    ]
    per_key = Counter((e[1], e[2]) for e in executions)
    per_status = Counter((t[1], t[2]) for t in transitions)
    duplicated = [f"{n} executions for key {k}" for k, n in per_key.items() if n > 1] + [
        f"{n} transitions of {e} to {s}" for (e, s), n in per_status.items() if n > 1
    ]
    on_primary = {t[0] for t in transitions}
    counts = Counter(d[0] for d in subscriber.delivered)
    return Report(
        acknowledged=ledger.acknowledged,
        unknown=ledger.unknown,
        outcome_unknown=ledger.outcome_unknown,
        lost=lost,
        duplicated=duplicated,
        taken_back=sorted(set(counts) - on_primary),
        missed=sorted(on_primary - set(counts)),
        repeated=sorted(i for i, n in counts.items() if n > 1),
        subscriber_error=None if subscriber.error is None else repr(subscriber.error),
    )


async def setup(store: Store, agents: int) -> tuple[UUID, list[UUID]]:
    customer = await store.customers.create(CustomerCreate(name="Failover Corp", email="ops@failover.example"))
    ids = []
    for i in range(agents):
        agent = await store.agents.create(
            AgentCreate(
                type=AgentType.COST, name=f"failover-agent-{i}", version="1.0.0", status=AgentStatus.ACTIVE,
                endpoint=f"http://agent-{i}:8001", capabilities=["gpu_cost_analysis"],
            )
        )  # fmt: skip
        ids.append(agent.id)
    return customer.id, ids


class Load:
    """The agents and the subscriber of one customer on one store: `subscribe()` once, then
    `start()` and `stop()` the agents around each fault (they finish the write they are in)."""

    def __init__(self, store: Store, customer_id: UUID, agent_ids: list[UUID]) -> None:
        self.store, self.customer_id, self.agent_ids = store, customer_id, agent_ids
        self.ledger = Ledger()
        self.subscribers: list[Subscriber] = []
        self._listening: list[asyncio.Task[None]] = []
        self._agents: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()

    @property
    def subscriber(self) -> Subscriber:
        return self.subscribers[0]

    async def subscribe(self, hub: EventsHub | None = None) -> Subscriber:
        """A subscriber of the customer's transitions, on a connection of its own or through `hub`."""
        ready = asyncio.Event()
        subscriber = Subscriber()
        self.subscribers.append(subscriber)
        self._listening.append(asyncio.create_task(subscriber.run(self.store, self.customer_id, ready, hub)))
        await ready.wait()
        return subscriber

    def start(self) -> None:
        self._stop.clear()
        self._agents = [
            asyncio.create_task(agent_loop(self.store, a, self.customer_id, self.ledger, self._stop))
            for a in self.agent_ids
        ]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._agents)

    async def close(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._agents, return_exceptions=True)
        for listening in self._listening:
            listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listening


def longest_gap(times: list[float], start: float, end: float) -> float:
    """The longest stretch between `start` and `end` without an acknowledged write."""
    points = [start, *sorted(t for t in times if start < t < end), end]
    return max(b - a for a, b in zip(points, points[1:], strict=False))
