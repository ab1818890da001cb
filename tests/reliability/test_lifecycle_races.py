"""Races on the execution and step lifecycles, as Hypothesis state machines.

Random sequences of transitions, some issued at once on the same row (asyncio.gather over the pool,
so they really meet in the database), are checked against a model of the allowed transitions:

- every batch of concurrent calls must be explained by some one-at-a-time order of them: in that
  order each call succeeds (returning the row the model predicts) or is refused exactly as the model
  predicts (InvalidTransition with the status it found, RetriesExhausted with the retries used), so
  of two competing transitions exactly one wins;
- after every step the rows equal the model's, and `history(id)` (the workflow_transitions audit
  trail) is the successful transitions in that order, with the actor and reason of each call.

The tests are sync: Hypothesis drives the machine and the machine drives an event loop of its own
(pytest-asyncio's session loop cannot be re-entered from sync code), with its own Store on it.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from optiinfra_store import Store
from optiinfra_store.enums import AgentType, WorkflowType
from optiinfra_store.errors import InvalidTransition, NotFound, RetriesExhausted
from optiinfra_store.records import AgentCreate, CustomerCreate, WorkflowExecutionCreate, WorkflowStepCreate

# method: (statuses it is allowed from, status it moves to)
EXECUTION_RULES = {
    "start": ({"pending"}, "running"),
    "complete": ({"running"}, "completed"),
    "fail": ({"running"}, "failed"),
    "cancel": ({"pending", "running"}, "cancelled"),
    "time_out": ({"running"}, "timeout"),
}
STEP_RULES = {
    "start": ({"pending", "retrying"}, "running"),
    "complete": ({"running"}, "completed"),
    "fail": ({"running"}, "failed"),
    "skip": ({"pending"}, "skipped"),
    "retry": ({"failed", "running"}, "retrying"),  # and only while retry_count < max_retries
}


@dataclass(frozen=True)
class Row:
    """What the model knows of one execution or step (timestamps only as set / not set)."""

    status: str
    started: bool
    completed: bool
    output_data: dict
    error_details: dict | None
    retry_count: int = 0
    max_retries: int = 0


@dataclass(frozen=True)
class Call:
    """One transition call; `n` is unique in the test, so its actor and reason identify it in the trail."""

    method: str
    n: int

    @property
    def actor(self) -> str:
        return f"caller-{self.n}"

    @property
    def payload(self) -> dict:
        return {"call": self.n}


def execution_row(record: Any) -> Row:
    return Row(
        str(record.status),
        record.started_at is not None,
        record.completed_at is not None,
        record.output_data,
        record.error_details,
    )


def step_row(record: Any) -> Row:
    return Row(
        str(record.status),
        record.started_at is not None,
        record.completed_at is not None,
        record.output_data,
        record.error_details,
        record.retry_count,
        record.max_retries,
    )


def next_execution(row: Row, call: Call) -> Row:
    target = EXECUTION_RULES[call.method][1]
    if call.method == "start":
        return replace(row, status=target, started=True)
    if call.method == "complete":
        return replace(row, status=target, completed=True, output_data=call.payload)
    if call.method == "cancel":
        return replace(row, status=target, completed=True, error_details={"error_type": "Cancelled", **call.payload})
    return replace(row, status=target, completed=True, error_details=call.payload)  # fail, time_out


def next_step(row: Row, call: Call) -> Row:
    target = STEP_RULES[call.method][1]
    if call.method == "start":
        return replace(row, status=target, started=True, completed=False)
    if call.method == "complete":
        return replace(row, status=target, completed=True, output_data=call.payload)
    if call.method == "fail":
        return replace(row, status=target, completed=True, error_details=call.payload)
    if call.method == "skip":
        return replace(row, status=target, completed=True)
    return replace(row, status=target, completed=False, retry_count=row.retry_count + 1)  # retry


def advance(kind: str, row: Row, call: Call) -> Row | None:
    """The row after `call` if the model allows it from `row`, else None (refused)."""
    rules, move = (EXECUTION_RULES, next_execution) if kind == "execution" else (STEP_RULES, next_step)
    allowed, _ = rules[call.method]
    if row.status not in allowed or (call.method == "retry" and row.retry_count >= row.max_retries):
        return None
    return move(row, call)


def refusal(kind: str, row: Row, call: Call) -> tuple:
    """How the store reports a refused `call` when it finds the row as `row`."""
    if call.method == "retry" and row.status in STEP_RULES["retry"][0] and row.retry_count >= row.max_retries:
        return "exhausted", row.status, row.retry_count, row.max_retries
    rules = EXECUTION_RULES if kind == "execution" else STEP_RULES
    return "refused", row.status, rules[call.method][1]


def observed(kind: str, result: Any) -> tuple:
    """The outcome of one call as the store reported it; anything but a refusal is a bug."""
    if isinstance(result, RetriesExhausted):
        assert result.requested_status == "retrying"
        return "exhausted", str(result.current_status), result.retry_count, result.max_retries
    if isinstance(result, InvalidTransition):
        return "refused", str(result.current_status), str(result.requested_status)
    if isinstance(result, BaseException):
        raise result
    return "ok", execution_row(result) if kind == "execution" else step_row(result)


def explanations(kind: str, row: Row, calls: list[Call], outcomes: list[tuple], *, late_reports: bool = False):
    """Every one-at-a-time order of `calls` that predicts `outcomes`, as (row afterwards,
    [(call, from status, to status)] of the successful ones in that order).

    In an order, each call either moves the row as the model says, returning the new row, or is
    refused: the store reports the row as it finds it. With `late_reports`, a refusal may also report
    the row as a later call of the batch left it: a refused transition looks the status up in a
    second statement, after its conditional UPDATE matched nothing, and a competitor may commit in
    between (see test_refusal__reports_the_status_that_refused_it)."""
    for order in itertools.permutations(range(len(calls))):
        states, moves = [row], []
        for i in order:
            after = advance(kind, states[-1], calls[i])
            if after is not None:
                moves.append((calls[i], states[-1].status, after.status))
            states.append(after or states[-1])
        for position, i in enumerate(order):
            before, after = states[position], states[position + 1]
            if after is not before:
                if outcomes[i] != ("ok", after):
                    break
            else:
                seen = states[position:] if late_reports else [before]
                if outcomes[i] not in [refusal(kind, s, calls[i]) for s in seen]:
                    break
        else:
            yield states[-1], moves


class Harness:
    """A private event loop with a Store on it (the pool is big enough for every racer)."""

    def __init__(self, dsn: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.store = self.run(Store.connect(dsn, min_size=4, max_size=8))
        self.agent = self.run(self.store.agents.create(AgentCreate(type=AgentType.COST, name="racer", version="1")))
        self.numbers = itertools.count(1)

    def run(self, coro: Coroutine) -> Any:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        try:
            self.run(self.store.close())
        finally:
            self.loop.close()


@pytest.fixture
def harness(clean_dsn):
    h = Harness(clean_dsn)
    yield h
    h.close()


class Lifecycle(RuleBasedStateMachine):
    """What both machines share: a harness, the model's rows and trail, and the race check."""

    kind: str
    methods: list[str]

    def __init__(self, harness: Harness) -> None:
        super().__init__()
        self.h = harness
        self.rows: dict[uuid.UUID, Row] = {}
        self.trails: dict[uuid.UUID, list[tuple]] = {}  # execution id -> expected history

    def call(self, method: str) -> Call:
        return Call(method, next(self.h.numbers))

    # -- per kind ------------------------------------------------------------------------------------

    async def invoke(self, id: uuid.UUID, call: Call) -> Any:
        raise NotImplementedError

    def execution_of(self, id: uuid.UUID) -> uuid.UUID:
        raise NotImplementedError

    def step_id(self, id: uuid.UUID) -> uuid.UUID | None:
        return None if self.kind == "execution" else id

    async def read_rows(self) -> dict[uuid.UUID, Row]:
        raise NotImplementedError

    # -- the check -----------------------------------------------------------------------------------

    def run_calls(self, id: uuid.UUID, methods: list[str]) -> None:
        """Issue `methods` on row `id` at once; accept the result only if some one-at-a-time order
        explains every outcome, the row as stored and the audit trail."""
        calls = [self.call(m) for m in methods]
        results = self.h.run(self.all_at_once(id, calls))
        outcomes = [observed(self.kind, r) for r in results]
        if len(set(methods)) == 1:
            # the same transition twice: its target never allows it again (start: running is not
            # startable, retry: retrying is not retryable), so at most one caller may win
            assert sum(o[0] == "ok" for o in outcomes) <= 1, outcomes
        candidates = list(explanations(self.kind, self.rows[id], calls, outcomes))
        assert candidates, f"no one-at-a-time order of {methods} from {self.rows[id]} explains {outcomes}"
        stored = self.h.run(self.read_rows())[id]
        execution = self.execution_of(id)
        history = self.h.run(self.read_history(execution))
        for after, moves in candidates:
            trail = self.trails[execution] + [
                (self.step_id(id), before, to, call.actor, call.payload) for call, before, to in moves
            ]
            if after == stored and trail == history:
                self.rows[id] = after
                self.trails[execution] = trail
                return
        raise AssertionError(
            f"{methods} from {self.rows[id]}: stored {stored}, history {history[len(self.trails[execution]) :]}, "
            f"but the orders that explain {outcomes} predict {candidates}"
        )

    async def all_at_once(self, id: uuid.UUID, calls: list[Call]) -> list[Any]:
        return await asyncio.gather(*(self.invoke(id, c) for c in calls), return_exceptions=True)

    async def read_history(self, execution: uuid.UUID) -> list[tuple]:
        return [
            (t.workflow_step_id, t.from_status, t.to_status, t.actor, t.reason)
            for t in await self.h.store.workflow_executions.history(execution)
        ]

    @invariant()
    def rows_and_history_equal_the_model(self) -> None:
        if not self.trails:
            return
        assert self.h.run(self.read_rows()) == self.rows
        for execution, trail in self.trails.items():
            assert self.h.run(self.read_history(execution)) == trail

    @rule()
    def transition_of_unknown_row_is_not_found(self) -> None:
        missing = uuid.uuid4()
        with pytest.raises(NotFound):
            self.h.run(self.invoke(missing, self.call(self.methods[0])))


class ExecutionLifecycle(Lifecycle):
    kind = "execution"
    methods = sorted(EXECUTION_RULES)
    executions = Bundle("executions")

    def __init__(self, harness: Harness) -> None:
        super().__init__(harness)
        # a customer per case, so listing its executions shows exactly this case's rows
        self.customer = harness.run(
            harness.store.customers.create(
                CustomerCreate(name="race case", email=f"case-{uuid.uuid4().hex}@example.com")
            )
        )

    @initialize(target=executions)
    def first_execution(self) -> uuid.UUID:
        return self.create("pending")

    @rule(target=executions, status=st.sampled_from(["pending", "running"]))
    def another_execution(self, status: str) -> uuid.UUID:
        return self.create(status)

    def create(self, status: str) -> uuid.UUID:
        running = status == "running"
        record = self.h.run(
            self.h.store.workflow_executions.create(
                WorkflowExecutionCreate(
                    agent_id=self.h.agent.id,
                    customer_id=self.customer.id,
                    workflow_type=WorkflowType.HEALTH_CHECK,
                    status=status,
                    started_at=datetime.now(UTC) - timedelta(minutes=1) if running else None,
                )
            )
        )
        self.rows[record.id] = Row(status, running, False, {}, None)
        self.trails[record.id] = [(None, None, status, None, None)]
        return record.id

    @rule(execution=executions, method=st.sampled_from(methods))
    def one_transition(self, execution: uuid.UUID, method: str) -> None:
        self.run_calls(execution, [method])

    @rule(execution=executions, methods=st.lists(st.sampled_from(methods), min_size=2, max_size=3))
    def concurrent_transitions(self, execution: uuid.UUID, methods: list[str]) -> None:
        self.run_calls(execution, methods)

    async def invoke(self, id: uuid.UUID, call: Call) -> Any:
        repo = self.h.store.workflow_executions
        if call.method == "start":
            return await repo.start(id, actor=call.actor, reason=call.payload)
        if call.method == "cancel":  # the reason goes to error_details and the trail
            return await repo.cancel(id, call.payload, actor=call.actor)
        return await getattr(repo, call.method)(id, call.payload, actor=call.actor, reason=call.payload)

    def execution_of(self, id: uuid.UUID) -> uuid.UUID:
        return id

    async def read_rows(self) -> dict[uuid.UUID, Row]:
        page = await self.h.store.workflow_executions.list(customer_id=self.customer.id, limit=1000)
        return {e.id: execution_row(e) for e in page.items}


class StepLifecycle(Lifecycle):
    kind = "step"
    methods = sorted(STEP_RULES)
    steps = Bundle("steps")

    @initialize(target=steps, max_retries=st.integers(0, 3))
    def first_step(self, max_retries: int) -> uuid.UUID:
        customer = self.h.run(
            self.h.store.customers.create(
                CustomerCreate(name="race case", email=f"case-{uuid.uuid4().hex}@example.com")
            )
        )
        execution = self.h.run(
            self.h.store.workflow_executions.create(
                WorkflowExecutionCreate(
                    agent_id=self.h.agent.id,
                    customer_id=customer.id,
                    workflow_type=WorkflowType.QUALITY_CHECK,
                    status="running",
                    started_at=datetime.now(UTC) - timedelta(minutes=1),
                )
            )
        )
        self.execution = execution.id
        self.orders = itertools.count(1)
        self.trails[execution.id] = [(None, None, "running", None, None)]
        return self.create("pending", 0, max_retries)

    @rule(
        target=steps,
        status=st.sampled_from(["pending", "running", "failed"]),
        retries=st.integers(0, 3).flatmap(lambda m: st.tuples(st.integers(0, m), st.just(m))),
    )
    def another_step(self, status: str, retries: tuple[int, int]) -> uuid.UUID:
        return self.create(status, *retries)

    def create(self, status: str, retry_count: int, max_retries: int) -> uuid.UUID:
        now = datetime.now(UTC)
        record = self.h.run(
            self.h.store.workflow_steps.create(
                WorkflowStepCreate(
                    workflow_execution_id=self.execution,
                    step_name="step",
                    step_order=next(self.orders),
                    status=status,
                    started_at=None if status == "pending" else now - timedelta(seconds=5),
                    completed_at=now if status == "failed" else None,
                    retry_count=retry_count,
                    max_retries=max_retries,
                )
            )
        )
        self.rows[record.id] = Row(status, status != "pending", status == "failed", {}, None, retry_count, max_retries)
        self.trails[self.execution].append((record.id, None, status, None, None))
        return record.id

    @rule(step=steps, method=st.sampled_from(methods))
    def one_transition(self, step: uuid.UUID, method: str) -> None:
        self.run_calls(step, [method])

    @rule(step=steps, methods=st.lists(st.sampled_from(methods), min_size=2, max_size=3))
    def concurrent_transitions(self, step: uuid.UUID, methods: list[str]) -> None:
        self.run_calls(step, methods)

    @rule(step=steps, callers=st.integers(2, 5))
    def concurrent_retries(self, step: uuid.UUID, callers: int) -> None:
        self.run_calls(step, ["retry"] * callers)

    async def invoke(self, id: uuid.UUID, call: Call) -> Any:
        repo = self.h.store.workflow_steps
        if call.method in ("complete", "fail"):
            return await getattr(repo, call.method)(id, call.payload, actor=call.actor, reason=call.payload)
        return await getattr(repo, call.method)(id, actor=call.actor, reason=call.payload)

    def execution_of(self, id: uuid.UUID) -> uuid.UUID:
        return self.execution

    async def read_rows(self) -> dict[uuid.UUID, Row]:
        return {s.id: step_row(s) for s in await self.h.store.workflow_steps.list(execution_id=self.execution)}


def test_execution_lifecycle__random_and_concurrent_transitions_follow_the_model(harness):
    run_state_machine_as_test(lambda: ExecutionLifecycle(harness))


def test_step_lifecycle__random_and_concurrent_transitions_follow_the_model(harness):
    run_state_machine_as_test(lambda: StepLifecycle(harness))


def test_explanations__a_lost_update_is_not_explained():
    """The checker itself: two completes that both report success cannot be explained."""
    row = Row("running", True, False, {}, None)
    calls = [Call("complete", 1), Call("complete", 2)]
    both_won = [("ok", next_execution(row, calls[0])), ("ok", next_execution(row, calls[1]))]
    assert list(explanations("execution", row, calls, both_won)) == []
    one_won = [("ok", next_execution(row, calls[0])), ("refused", "completed", "completed")]
    assert [after for after, _ in explanations("execution", row, calls, one_won)] == [next_execution(row, calls[0])]
    assert (
        list(
            explanations(
                "execution",
                row,
                calls,
                [
                    ("ok", next_execution(row, calls[0])),
                    ("refused", "running", "completed"),
                ],
            )
        )
        == []
    )  # the loser found the row completed, not running


def test_refusal__reports_the_status_that_refused_it(harness):
    async def race() -> None:
        store = harness.store
        customer = await store.customers.create(
            CustomerCreate(name="race case", email=f"case-{uuid.uuid4().hex}@example.com")
        )
        for _ in range(500):  # the window is a few hundred microseconds wide; it opens in ~1 race in 5 here
            execution = await store.workflow_executions.create(
                WorkflowExecutionCreate(
                    agent_id=harness.agent.id,
                    customer_id=customer.id,
                    workflow_type=WorkflowType.HEALTH_CHECK,
                )
            )
            _, failed = await asyncio.gather(
                store.workflow_executions.start(execution.id),
                store.workflow_executions.fail(execution.id),
                return_exceptions=True,
            )
            if isinstance(failed, InvalidTransition):
                assert failed.current_status not in EXECUTION_RULES["fail"][0], str(failed)

    harness.run(race())
