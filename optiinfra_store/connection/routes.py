"""The customers of rows a store has seen, on a schema distributed by customer (a Citus cluster).

A statement by id goes to the one shard holding the row when it names the row's customer, the
distribution column; otherwise to every shard. An unconfined store knows the customer of each row
it has written, or read by id (every customer-owned record carries `customer_id`; `get_detail`
gives the steps' and artifacts' too), so it keeps them, and a later write or read by id of the
same row (an agent starting and completing the execution it created, the steps it added) names
the customer without first reading it on every shard. Rows of lists are not kept: a long page
would push out the rows in use.

An entry stays right for as long as the row lives: Citus refuses to change a distribution column,
and ids are the server's (uuid), never given again to another row. An entry of a row since deleted
(or never committed) stays: it names a customer that does not have the row, and the statement
finds nothing on that customer's shard, as it would on every shard. A row moved to another
customer by hand (deleted, and inserted again with its id) is NotFound to a store that saw it
before, until the entry is pushed out or the store reopens.
"""

from __future__ import annotations

from collections import OrderedDict
from uuid import UUID

ROUTES_KEPT = 10_000
"""Rows whose customer a store keeps (the most recently used): about 3.5 MB."""


class Routes:
    """(table, id) -> customer of the rows most recently seen, at most `kept`."""

    __slots__ = ("_kept", "_seen")

    def __init__(self, kept: int = ROUTES_KEPT) -> None:
        self._kept = kept
        self._seen: OrderedDict[tuple[str, UUID], UUID] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def get(self, table: str, id: UUID) -> UUID | None:
        key = (table, id)
        customer = self._seen.get(key)
        if customer is not None:
            self._seen.move_to_end(key)
        return customer

    def remember(self, table: str, id: UUID, customer: UUID) -> None:
        key = (table, id)
        self._seen[key] = customer
        self._seen.move_to_end(key)
        if len(self._seen) > self._kept:
            self._seen.popitem(last=False)
