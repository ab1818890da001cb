"""Live workflow events: commit order, filters, resume, and no loss or repeat across a killed connection."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from optiinfra_store.enums import WorkflowType
from optiinfra_store.errors import InvalidArgument, NotFound
from optiinfra_store.records import CustomerCreate, WorkflowExecutionCreate, WorkflowStepCreate


async def next_n(stream, n: int, timeout: float = 10.0) -> list:
    async def take() -> list:
        return [await anext(stream) for _ in range(n)]

    return await asyncio.wait_for(take(), timeout)


async def run_one(store, agent, customer, steps: int = 2):
    execution = await store.workflow_executions.create(
        WorkflowExecutionCreate(
            agent_id=agent.id,
            customer_id=customer.id,
            workflow_type=WorkflowType.HEALTH_CHECK,
        )
    )
    await store.workflow_executions.start(execution.id, actor="worker")
    created = await store.workflow_steps.create_many(
        [
            WorkflowStepCreate(workflow_execution_id=execution.id, step_name=f"s{i}", step_order=i)
            for i in range(1, steps + 1)
        ]
    )
    for step in created:
        await store.workflow_steps.start(step.id)
        await store.workflow_steps.complete(step.id)
    await store.workflow_executions.complete(execution.id)
    return execution


async def test_events__sees_another_tasks_workflow_in_commit_order(store, agent, customer):
    async with store.workflow_events(poll_interval=0.2) as events:
        task = asyncio.create_task(run_one(store, agent, customer))
        received = await next_n(
            events, 2 + 2 + 2 * 2 + 1
        )  # created, started, 2 steps x (created, started, completed), completed
        execution = await task
    history = await store.workflow_executions.history(execution.id)
    assert [t.id for t in received] == [t.id for t in history]
    assert received[1].actor == "worker" and received[-1].to_status == "completed"


async def test_events__filters_by_customer_and_execution(store, agent, customer):
    other = await store.customers.create(CustomerCreate(name="TechStart Inc", email="ops@techstart.example"))
    async with store.workflow_events(customer_id=other.id, poll_interval=0.2) as events:
        await run_one(store, agent, customer, steps=1)  # not this customer's
        mine = await run_one(store, agent, other, steps=1)
        received = await next_n(events, 6)
    assert {t.workflow_execution_id for t in received} == {mine.id}


async def test_events__after_resumes_from_a_known_id(store, agent, customer):
    first = await run_one(store, agent, customer, steps=1)
    history = await store.workflow_executions.history(first.id)
    async with store.workflow_events(after=history[2].id, poll_interval=0.2) as events:
        received = await next_n(events, len(history) - 3)
    assert [t.id for t in received] == [t.id for t in history[3:]]
    with pytest.raises(NotFound):
        async with store.workflow_events(after=10**12):
            pass


@pytest.mark.parametrize("attempt", range(10))
async def test_events__killed_connection_loses_and_repeats_nothing(store, clean_dsn, agent, customer, attempt):
    async with store.workflow_events(poll_interval=0.1) as events:
        before = await run_one(store, agent, customer, steps=1)
        first = await next_n(events, 6)
        admin = await asyncpg.connect(clean_dsn)
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1::int)", events.backend_pid)
        finally:
            await admin.close()
        during = await run_one(store, agent, customer, steps=2)  # written while the subscriber is down
        after = await run_one(store, agent, customer, steps=1)
        rest = await next_n(events, 9 + 6)
        assert events.reconnects >= 1
    expected = []
    for execution in (before, during, after):
        expected += [t.id for t in await store.workflow_executions.history(execution.id)]
    delivered = [t.id for t in first + rest]
    assert delivered == expected
    assert len(set(delivered)) == len(delivered)


async def test_events__row_with_a_lower_id_committed_later_is_not_skipped(store, agent, customer):
    """Identity values are handed out at insert, not commit: a subscriber that only read "after the
    last id" would skip the first transaction's row here."""
    async with store.workflow_events(poll_interval=0.1) as events:
        async with store.transaction() as slow:
            early = await slow.workflow_executions.create(
                WorkflowExecutionCreate(
                    agent_id=agent.id,
                    customer_id=customer.id,
                    workflow_type=WorkflowType.HEALTH_CHECK,
                )
            )  # takes the lower id, commits last
            fast = await store.workflow_executions.create(
                WorkflowExecutionCreate(
                    agent_id=agent.id,
                    customer_id=customer.id,
                    workflow_type=WorkflowType.HEALTH_CHECK,
                )
            )
            first = await next_n(events, 1)
            assert first[0].workflow_execution_id == fast.id
        second = await next_n(events, 1)
    assert second[0].workflow_execution_id == early.id
    assert second[0].id < first[0].id


async def test_events__after_with_an_older_transaction_still_open_is_not_skipped(store, clean_dsn, agent, customer):
    slow = await asyncpg.connect(clean_dsn)
    try:
        await slow.execute("BEGIN")
        await slow.fetchval("SELECT pg_current_xact_id()")  # its transaction id predates what follows
        done = await run_one(store, agent, customer, steps=1)
        last = (await store.workflow_executions.history(done.id))[-1].id
        async with store.workflow_events(after=last, poll_interval=0.1) as events:
            late = await slow.fetchval(
                "INSERT INTO workflow_executions (agent_id, customer_id, workflow_type) "
                "VALUES ($1, $2, 'health_check') RETURNING id",
                agent.id,
                customer.id,
            )
            await slow.execute("COMMIT")
            received = await next_n(events, 1)
    finally:
        await slow.close()
    assert received[0].workflow_execution_id == late


async def test_statistics__by_type_keys_are_enums(store, agent, customer):
    await run_one(store, agent, customer, steps=1)
    stats = await store.workflow_executions.statistics()
    assert list(stats.by_type) == [WorkflowType.HEALTH_CHECK]
    assert all(isinstance(key, WorkflowType) for key in stats.by_type)


async def test_events__a_position_resumes_exactly_across_overlapping_transactions(store, agent, customer):
    """The transition written first commits last: a subscription that stopped between the two
    and resumes from its position gets it, and one that stopped after both gets neither again."""

    async def create(repositories) -> int:
        execution = await repositories.workflow_executions.create(
            WorkflowExecutionCreate(agent_id=agent.id, customer_id=customer.id, workflow_type=WorkflowType.HEALTH_CHECK)
        )
        return (await repositories.workflow_executions.history(execution.id))[0].id

    async with store.workflow_events(poll_interval=0.1) as events:
        async with store.transaction() as tx:
            late = await create(tx)
            early = await create(store)
            assert [t.id for t in await next_n(events, 1)] == [early]
            between = events.position
        assert [t.id for t in await next_n(events, 1)] == [late]
        after_both = events.position
    async with store.workflow_events(resume=between, poll_interval=0.1) as events:
        assert [t.id for t in await next_n(events, 1)] == [late]
    async with store.workflow_events(resume=after_both, poll_interval=0.1) as events:
        newer = await create(store)
        assert [t.id for t in await next_n(events, 1)] == [newer]
    with pytest.raises(InvalidArgument):
        async with store.workflow_events(resume="not a position"):
            pass


async def _terminate(dsn: str, query: str, *args: object) -> int:
    admin = await asyncpg.connect(dsn)
    try:
        return int(await admin.fetchval(query, *args))
    finally:
        await admin.close()


async def _under_load(store, agent, customer, body, writers: int = 4) -> list:
    """Run `body()` while `writers` tasks run workflows; returns the executions they finished."""
    finished: list = []
    stop = asyncio.Event()

    async def write() -> None:
        while not stop.is_set():
            finished.append(await run_one(store, agent, customer, steps=1))

    tasks = [asyncio.create_task(write()) for _ in range(writers)]
    try:
        await body()
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    return finished


@pytest.mark.parametrize("attempt", range(5))
async def test_events__listener_terminated_under_load_loses_and_repeats_nothing(
    store, clean_dsn, agent, customer, attempt
):
    """pg_terminate_backend of the listening connection while writers run: the terminate can land
    while a poll is in flight (asyncpg then refuses the next query with InternalClientError, not a
    connection error); the subscriber reconnects and delivers every transition once."""
    delivered: list = []
    async with store.workflow_events(customer_id=customer.id, poll_interval=0.05) as events:

        async def consume() -> None:
            async for transition in events:
                delivered.append(transition.id)

        consumer = asyncio.create_task(consume())

        async def kill_listener_twice() -> None:
            killed = None
            for _ in range(2):
                await asyncio.sleep(0.3)
                while events.backend_pid in (None, killed):  # listening again, on a new connection
                    await asyncio.sleep(0.02)
                killed = events.backend_pid
                await _terminate(clean_dsn, "SELECT count(pg_terminate_backend($1::int))", killed)
            await asyncio.sleep(0.3)

        finished = await _under_load(store, agent, customer, kill_listener_twice)
        expected = [t.id for e in finished for t in await store.workflow_executions.history(e.id)]
        deadline = asyncio.get_running_loop().time() + 15
        while len(delivered) < len(expected) and not consumer.done():
            assert asyncio.get_running_loop().time() < deadline, "not every transition was delivered"
            await asyncio.sleep(0.05)
        assert not consumer.done(), consumer.exception()  # the subscriber is still running
        assert events.reconnects >= 1
        consumer.cancel()
    assert len(set(delivered)) == len(delivered), "a transition was delivered twice"
    assert sorted(delivered) == sorted(expected)


@pytest.mark.parametrize("attempt", range(3))
async def test_events__hub_subscription_survives_its_stores_connections_killed_under_load(
    store, clean_dsn, agent, customer, attempt
):
    """A hub's subscription reads through its store's pool: every connection of that pool, and the
    hub's own, terminated while writers run: it keeps going, each transition delivered once."""
    from optiinfra_store import Store

    reader = "optiinfra-test-hub-reader"
    delivered: list = []
    async with (
        Store.connect(clean_dsn, min_size=2, max_size=2, server_settings={"application_name": reader}) as other,
        other.events_hub() as hub,
        other.workflow_events(customer_id=customer.id, hub=hub, poll_interval=0.05) as events,
    ):

        async def consume() -> None:
            async for transition in events:
                delivered.append(transition.id)

        consumer = asyncio.create_task(consume())

        killed: list[int] = []

        async def kill_readers() -> None:
            for _ in range(3):
                await asyncio.sleep(0.3)
                killed.append(
                    await _terminate(
                        clean_dsn,
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE application_name IN ($1, 'optiinfra-events') AND datname = current_database()",
                        reader,
                    )
                )
            await asyncio.sleep(0.3)

        finished = await _under_load(store, agent, customer, kill_readers)
        expected = [t.id for e in finished for t in await store.workflow_executions.history(e.id)]
        deadline = asyncio.get_running_loop().time() + 15
        while len(delivered) < len(expected) and not consumer.done():
            assert asyncio.get_running_loop().time() < deadline, "not every transition was delivered"
            await asyncio.sleep(0.05)
        assert not consumer.done(), consumer.exception()
        consumer.cancel()
        assert all(killed) and hub.reconnects >= 1, (killed, hub.reconnects)  # the kills landed
    assert len(set(delivered)) == len(delivered), "a transition was delivered twice"
    assert sorted(delivered) == sorted(expected)
