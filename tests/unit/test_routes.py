"""Routes: the customers of the rows a store has seen on a schema distributed by customer, the most
recently used kept."""

from __future__ import annotations

from uuid import uuid4

from optiinfra_store.connection.routes import Routes


def test_routes__keep_the_most_recently_used_up_to_their_bound():
    routes = Routes(kept=3)
    rows = [uuid4() for _ in range(4)]
    customers = [uuid4() for _ in range(4)]
    for row, customer in zip(rows[:3], customers, strict=False):
        routes.remember("workflow_executions", row, customer)
    assert routes.get("workflow_executions", rows[0]) == customers[0]  # now the most recently used
    routes.remember("workflow_executions", rows[3], customers[3])
    assert len(routes) == 3
    assert routes.get("workflow_executions", rows[1]) is None  # the least recently used went
    assert [routes.get("workflow_executions", r) for r in (rows[0], rows[2], rows[3])] == [
        customers[0], customers[2], customers[3],
    ]  # fmt: skip


def test_routes__by_table_and_id():
    routes = Routes()
    row, customer = uuid4(), uuid4()
    routes.remember("workflow_steps", row, customer)
    assert routes.get("workflow_steps", row) == customer
    assert routes.get("workflow_executions", row) is None
