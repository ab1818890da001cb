"""What every repository shares: the executor, error translation, and the common methods."""

from __future__ import annotations

import base64
import functools
import re
import typing
import warnings
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from enum import StrEnum
from functools import cache
from typing import Any, ClassVar, Generic, LiteralString, TypeVar, overload
from uuid import UUID

import asyncpg
from pydantic import BaseModel, create_model

from optiinfra_store.connection.executor import Executor
from optiinfra_store.connection.routes import Routes
from optiinfra_store.crypto.secrets import SecretKeys
from optiinfra_store.errors import (
    AccessDenied,
    InvalidArgument,
    InvalidTransition,
    MissingReference,
    NotFound,
    StaleVersion,
    StoreError,
)
from optiinfra_store.queries import Queries, load
from optiinfra_store.records._base import (
    Input,
    JsonObject,
    Page,
    Record,
    storable_instant,
    storable_json,
    storable_text,
)

R = TypeVar("R", bound=Record)
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

_REFUSAL_RETRIES = 3


@cache
def _id_model(field: str) -> type[BaseModel]:
    fields: dict[str, Any] = {field: (UUID, ...)}
    return create_model(f"{field}_argument", **fields)


def as_uuid(value: Any, field: str = "id") -> UUID:
    """Validate an id before it reaches SQL; raises pydantic's ValidationError naming `field`."""
    if isinstance(value, UUID):
        return value
    validated: UUID = getattr(_id_model(field).model_validate({field: value}), field)
    return validated


def as_optional_uuid(value: Any, field: str) -> UUID | None:
    return None if value is None else as_uuid(value, field)


def check_limit(limit: int, maximum: int = 10_000) -> int:
    return check_int(limit, "limit", 1, maximum)


def check_int(value: Any, name: str, minimum: int, maximum: int) -> int:
    """An integer (not a bool) in [minimum, maximum]; InvalidArgument naming `name` otherwise."""
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= maximum:
        raise InvalidArgument(f"{name} must be an integer from {minimum} to {maximum}, got {value!r}")
    return value


def optional_aware(value: Any, name: str) -> datetime | None:
    """A timezone-aware datetime or None; naive datetimes are refused, never guessed, and so are
    the two instants the driver would send as -infinity and infinity."""
    if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
        raise InvalidArgument(f"{name} must be a timezone-aware datetime, got {value!r}", argument=name)
    if value is not None:
        try:
            storable_instant(value)
        except ValueError as exc:
            raise InvalidArgument(f"{name} {exc}", argument=name) from None
    return value


def optional_object(value: Any, name: str) -> dict[str, Any] | None:
    """A JSON object (dict) that jsonb stores and gives back as given, or None."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidArgument(f"{name} must be a dict, got {type(value).__name__}")
    try:
        stored: dict[str, Any] = storable_json(value)
        return stored
    except ValueError as exc:
        raise InvalidArgument(f"{name}: {exc}") from None


def text(value: Any, name: str, *, max_length: int | None = None) -> str:
    """A string PostgreSQL can store (no NUL), non-blank and at most max_length when one is given."""
    if not isinstance(value, str):
        raise InvalidArgument(f"{name} must be a string, got {type(value).__name__}")
    if max_length is not None and (not value.strip() or len(value) > max_length):
        raise InvalidArgument(f"{name} must be a non-blank string of at most {max_length} characters")
    try:
        return storable_text(value)
    except ValueError as exc:
        raise InvalidArgument(f"{name} {exc}") from None


def optional_text(value: Any, name: str, *, max_length: int | None = None) -> str | None:
    """`text(...)` or None."""
    return None if value is None else text(value, name, max_length=max_length)


def audit(actor: Any, reason: Any) -> tuple[str | None, dict[str, Any] | None]:
    """The (actor, reason) a transition records in workflow_transitions: the reason a dict as
    given, or a string as {"message": reason}; InvalidArgument for anything else."""
    if isinstance(reason, str):
        reason = {"message": reason}
    elif reason is not None and not isinstance(reason, dict):
        raise InvalidArgument(f"reason must be a string or a dict, got {type(reason).__name__}")
    return optional_text(actor, "actor", max_length=255), optional_object(reason, "reason")


def encode_cursor(key: datetime | int, id_: UUID) -> str:
    """The opaque cursor after a row: its sort key (a timestamp, or an integer such as a step's
    order) and its id."""
    value = f"#{key}" if isinstance(key, int) else key.isoformat()
    return base64.urlsafe_b64encode(f"{value}|{id_}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, integer_key: bool = False) -> tuple[datetime | int, UUID]:
    """The sort key and id of a cursor `encode_cursor` made for a list sorted by a timestamp (or,
    with `integer_key`, by an integer); InvalidArgument for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        value, id_ = raw.split("|")
        key: datetime | int
        if integer_key:
            if not value.startswith("#"):
                raise ValueError("not an integer key")
            key = check_int(int(value[1:]), "cursor key", -(2**31), 2**31 - 1)
        else:
            key = datetime.fromisoformat(value)
            if key.tzinfo is None:
                raise ValueError("a naive timestamp")
            storable_instant(key)
        return key, UUID(id_)
    except Exception as exc:
        raise InvalidArgument(f"invalid cursor {cursor[:100]!r}", argument="cursor") from exc


def platform(method: F) -> F:
    """Mark a method as platform work: its change reaches past any one customer (what customers
    share, or every customer's history), so a store confined to a customer refuses it with
    AccessDenied before anything is sent. The database refuses it too: `optiinfra_tenant` holds
    no privilege for it."""

    @functools.wraps(method)
    async def guarded(self: Repository[Any], *args: Any, **kwargs: Any) -> Any:
        if self._customer_id is not None:
            raise AccessDenied(
                f"{self.table}.{method.__name__} reaches past one customer: refused in a store confined "
                f"to customer {self._customer_id} (platform work runs on an unconfined store)"
            )
        return await method(self, *args, **kwargs)

    guarded.platform = True  # type: ignore[attr-defined]
    return guarded  # type: ignore[return-value]


def keyword_filters(*names: str, positional: int = 0) -> Callable[[F], F]:
    """Filters are keyword-only. For one release (until 0.3), filters still passed by position after
    the `positional` leading arguments are taken in the order of `names`, with a DeprecationWarning."""

    def wrap(method: F) -> F:
        @functools.wraps(method)
        async def call(self: Repository[Any], *args: Any, **kwargs: Any) -> Any:
            leading, extra = args[:positional], args[positional:]
            if extra:
                given = names[: len(extra)]
                if len(extra) > len(names) or set(given) & kwargs.keys():
                    raise TypeError(
                        f"{self.table}.{method.__name__}() takes its filters by keyword, each once: {', '.join(names)}"
                    )
                warnings.warn(
                    f"{self.table}.{method.__name__}: pass {', '.join(given)} by keyword (positional filters "
                    "go in 0.3)",
                    DeprecationWarning,
                    stacklevel=2,
                )
                kwargs.update(zip(given, extra, strict=True))
            return await method(self, *leading, **kwargs)

        return call  # type: ignore[return-value]

    return wrap


class Repository(Generic[R]):
    """Base of the repositories. A subclass names its table, `class Agents(Repository[Agent],
    table="agents")`, and keeps its statements in `queries/<table>.sql` (at least insert,
    get_by_id, delete_by_id); its record type and the name errors give a row ("agent") follow
    from the type parameter."""

    table: ClassVar[str]
    entity: ClassVar[str]
    record_type: ClassVar[type[Record]]
    page_type: ClassVar[type[Page[Any]]]

    def __init_subclass__(cls, table: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if table is None:
            return  # an intermediate base (Finishing) names no table
        (record_type,) = typing.get_args(cls.__orig_bases__[0])  # type: ignore[attr-defined]
        cls.table = table
        cls.record_type = record_type
        cls.page_type = Page[record_type]  # type: ignore[valid-type]  # made once: Page[R] per call costs ~0.1 ms
        cls.entity = re.sub(r"(?<!^)(?=[A-Z])", " ", record_type.__name__).lower()

    parent: ClassVar[tuple[str, str] | None] = None
    """(table, column) of the parent a new row takes its customer from (a child of a customer's
    row); None for the others."""

    customer_owned: ClassVar[bool] = False
    """Each row is one customer's (`customer_id` NOT NULL): on a Citus cluster the table is
    distributed by it, so its statements by id take the customer last (`$n::uuid IS NULL OR
    customer_id = $n`), null on one server, and its file has `customer_of`."""

    def __init__(
        self,
        executor: Executor,
        customer_id: UUID | None = None,
        secret_keys: SecretKeys | None = None,
        reads: Executor | None = None,
        by_customer: bool = False,
        routes: Routes | None = None,
    ) -> None:
        self._db = executor
        self._reads = executor if reads is None else reads  # lists and analytics: a replica, if any
        self._customer_id = customer_id  # the customer a confined store is bound to
        self._keys = secret_keys  # only agent_configs reads them
        self._q: Queries = load(self.table)
        # the schema is distributed by customer (a Citus cluster): every write names its customer,
        # so that it goes to the one shard holding it (see SCALING.md)
        self._by_customer = by_customer
        # there, the customers of the rows an unconfined store has seen (a confined one names its own)
        self._routes = routes if by_customer and customer_id is None and self.customer_owned else None

    async def _customer_of(self, id: UUID) -> UUID | None:
        """The customer a write to row `id` names: on a schema distributed by customer, the
        confined store's, else the row's (as the store saw it, or one read; None if there is no
        such row); None on one server, where a write needs none."""
        if not self._by_customer:
            return None
        if self._customer_id is not None:
            return self._customer_id
        return await self._customer_read(self.table, id, self._q.customer_of)

    async def _customer_read(self, table: str, id: UUID, sql: str) -> UUID | None:
        """The customer of row `id` of `table`: as this store saw it (`routes`), else read with
        `sql` (by the id; None if there is no such row) and kept."""
        if self._routes is not None and (known := self._routes.get(table, id)) is not None:
            return known
        customer: UUID | None = await self._db.fetchval(sql, id)
        if customer is not None and self._routes is not None:
            self._routes.remember(table, id, customer)
        return customer

    async def _route(self, id: UUID) -> tuple[UUID | None, ...]:
        """What a write by id to this table takes last, to go to one shard: the row's customer
        (`_customer_of`; None on one server) on a customer-owned table, nothing on the others.
        Raises NotFound when a schema distributed by customer has no such row: there is nowhere
        to send the write."""
        if not self.customer_owned:
            return ()
        customer = await self._customer_of(id)
        if self._by_customer and customer is None:
            raise NotFound(self.entity, id)
        return (customer,)

    def _read_route(self, id: UUID) -> tuple[UUID | None, ...]:
        """What a read of row `id` of this table takes last: on a schema distributed by customer,
        the confined store's customer, or the row's as the store saw it, so the read goes to one
        shard; None (every shard) where it is not known, since reading it first would cost a round
        trip more than the read itself; None on one server; nothing for a table that is not
        customer-owned."""
        if not self.customer_owned:
            return ()
        if self._routes is not None:
            return (self._routes.get(self.table, id),)
        return (self._customer_id if self._by_customer else None,)

    async def _page(
        self,
        sql: LiteralString,
        filters: Sequence[Any],
        limit: int,
        cursor: str | None,
        key: str,
        maximum: int = 10_000,
    ) -> Page[R]:
        """One page of a keyset-paginated list: the statement takes `filters`, then the last row's
        (`key`, id) from the cursor (nulls on the first page), then how many rows to read."""
        integer_key = self.record_type.model_fields[key].annotation is int
        after = decode_cursor(cursor, integer_key) if cursor is not None else (None, None)
        size = check_limit(limit, maximum)
        rows = await self._reads.fetch(sql, *filters, *after, size + 1)
        items = self._many(rows[:size])
        last = items[-1] if len(rows) > size else None
        next_cursor = None if last is None else encode_cursor(getattr(last, key), getattr(last, "id"))  # noqa: B009
        page: Page[R] = self.page_type.model_construct(items=items, next_cursor=next_cursor)
        return page

    # -- records ---------------------------------------------------------------------------------

    def _one(self, row: asyncpg.Record) -> R:
        if self._routes is not None:
            self._routes.remember(self.table, row["id"], row["customer_id"])
        return self.record_type.from_row(row)  # type: ignore[return-value]

    def _many(self, rows: Iterable[asyncpg.Record]) -> list[R]:
        # lists are not remembered (routes): a page of thousands would push out the rows in use
        from_row = self.record_type.from_row
        return [from_row(row) for row in rows]  # type: ignore[misc]

    def _found(self, row: asyncpg.Record | None, key: Any) -> R:
        if row is None:
            raise NotFound(self.entity, key)
        return self._one(row)

    async def _transition(self, sql: str, id: UUID, requested: str, *args: Any) -> R:
        """Run a conditional UPDATE (its last parameter the row's customer, `_customer_of`); when it
        matches nothing, tell NotFound from InvalidTransition."""

        customer = await self._customer_of(id)

        async def status() -> Any:
            return await self._db.fetchval(self._q.get_status, id, customer)

        if self._by_customer and customer is None:  # no such row: nothing to route the write to
            row, current = None, await status()
        else:
            row, current = await self._apply(sql, id, (*args, customer), status)
        if row is not None:
            return row
        if current is None:
            raise NotFound(self.entity, id)
        raise InvalidTransition(self.entity, id, current, requested)

    async def _move(
        self,
        sql: str,
        id: UUID | str,
        to: str,
        actor: Any,
        reason: Any,
        document: tuple[str, Any] | None = None,
    ) -> R:
        """A status transition whose statement takes the id, then the (name, value) `document` it
        writes, if any, then who and why (checked here, recorded by the audit trail)."""
        written = () if document is None else (optional_object(document[1], document[0]),)
        return await self._transition(sql, as_uuid(id), to, *written, *audit(actor, reason))

    async def _apply(
        self, sql: str, id: UUID, args: Sequence[Any], read: Callable[[], Awaitable[Any]]
    ) -> tuple[R | None, Any]:
        """Run a conditional UPDATE: (the row, None), or (None, what `read` says refused it; None if
        the row is gone). A competitor may move the row between the UPDATE and the read, so until
        that state holds still across a retried UPDATE, try again: a refusal names what refused it."""
        row = await self._db.fetchrow(sql, id, *args)
        if row is not None:
            return self._one(row), None
        current = await read()
        for _ in range(_REFUSAL_RETRIES):
            if current is None:
                break
            row = await self._db.fetchrow(sql, id, *args)
            if row is not None:
                return self._one(row), None
            seen, current = current, await read()
            if current == seen:
                break
        return None, current

    # -- the methods every repository has --------------------------------------------------------

    async def _insert(self, data: Input) -> R:
        if self._by_customer and self.parent is not None:
            return await self._insert_routed(data)
        row = await self._db.fetchrow(self._q.insert, *self._q.args("insert", data))
        assert row is not None  # INSERT ... RETURNING always returns the row
        return self._one(row)

    async def _customer_of_parent(self, parent_id: UUID) -> UUID:
        """The customer of a new row's parent (`parent`): the confined store's, or the parent's.
        Raises MissingReference, as the key to the parent would, if there is no such parent."""
        if self._customer_id is not None:
            return self._customer_id
        assert self.parent is not None
        table, column = self.parent
        customer = await self._customer_read(table, parent_id, self._q.parent_customer)
        if customer is None:
            raise MissingReference(
                f"{self.entity}: no {table.removesuffix('s').replace('_', ' ')} {parent_id}",
                constraint=f"{self.table}_{column}_fkey",
            )
        return customer

    async def _insert_routed(self, data: Input) -> R:
        """A child's insert on a schema distributed by customer: its parent's customer read
        first (a confined store names its own), then named in the insert, which goes to one shard
        (the key to the parent refuses a customer other than the parent's)."""
        assert self.parent is not None
        customer = await self._customer_of_parent(getattr(data, self.parent[1]))
        try:
            row = await self._db.fetchrow(
                self._q.insert_routed, *self._q.args("insert_routed", data, customer_id=customer)
            )
        except MissingReference as exc:
            raise self._not_under_this_customer(exc) from exc
        assert row is not None  # INSERT ... RETURNING always returns the row
        return self._one(row)

    def _not_under_this_customer(self, exc: MissingReference) -> StoreError:
        """What a routed insert refused by the key to its parent means. In a confined store the
        insert named the store's customer, so the parent is another customer's or none at all: the
        answer is AccessDenied either way, naming no id, as row-level security answers on one
        server. Unconfined (or refused by another key), the error as it is."""
        assert self.parent is not None
        if self._customer_id is None or exc.constraint != f"{self.table}_{self.parent[1]}_fkey":
            return exc
        parent = self.parent[0].removesuffix("s").replace("_", " ")
        return AccessDenied(f"not this customer's to write: the {self.entity}'s {parent} is none of this customer's")

    async def get(self, id: UUID | str) -> R:
        """The row with this id. Raises NotFound."""
        key = as_uuid(id)
        return self._found(await self._db.fetchrow(self._q.get_by_id, key, *self._read_route(key)), key)

    async def count(self) -> int:
        """How many rows the table holds."""
        count: int = await self._db.fetchval(self._q.count)
        return count

    async def delete(self, id: UUID | str) -> None:
        """Delete the row with this id (and what cascades from it). Raises NotFound."""
        key = as_uuid(id)
        if await self._db.fetchval(self._q.delete_by_id, key, *await self._route(key)) is None:
            raise NotFound(self.entity, key)

    async def _update(self, id: UUID | str, data: Input) -> R:
        """A partial update by id: `update` takes `:id` and, on a customer-owned table,
        `:customer_id` (`_route`). Raises NotFound."""
        key = as_uuid(id)
        route = await self._route(key)
        args = self._q.args("update", data, id=key, customer_id=route[0] if route else None)
        return self._found(await self._db.fetchrow(self._q.update, *args), key)

    async def _update_versioned(self, id: UUID | str, data: Input, expected_version: int | None) -> R:
        """`_update` whose statement takes the expected version too (`:expected_version`, null:
        any version). Raises NotFound, StaleVersion."""
        key = as_uuid(id)
        expected = check_version(expected_version)
        route = await self._route(key)
        args = self._q.args("update", data, id=key, customer_id=route[0] if route else None, expected_version=expected)
        row = await self._db.fetchrow(self._q.update, *args)
        if row is not None:
            return self._one(row)
        return await self._stale(key, expected, *route)

    async def _stale(self, key: Any, expected: int | None, *route: UUID | None) -> R:
        """Explain a versioned write that matched nothing: NotFound or StaleVersion (`route`:
        what `get_version` takes after the key, as `_route` gave it)."""
        current = None if expected is None else await self._db.fetchval(self._q.get_version, key, *route)
        if expected is None or current is None:
            raise NotFound(self.entity, key)
        raise StaleVersion(self.entity, key, expected, current)


class Finishing(Repository[R]):
    """The workflow tables' running -> completed / failed moves, through one `finish` statement
    that takes the id, the status, the output and the error details (each kept when null), then
    who and why. Subclasses set `status_type`, the table's status enum."""

    status_type: ClassVar[type[StrEnum]]

    async def complete(
        self,
        id: UUID | str,
        output_data: JsonObject | None = None,
        *,
        actor: str | None = None,
        reason: str | JsonObject | None = None,
    ) -> R:
        """running -> completed; sets completed_at and, if given, output_data.
        Raises NotFound, InvalidTransition (of two concurrent completes, one gets it).

        Every transition takes an optional `actor` (who) and `reason` (why: a dict, or a string,
        recorded as {"message": reason}), recorded in the audit trail; InvalidArgument otherwise."""
        return await self._finish(id, "completed", output_data, None, actor, reason)

    async def fail(
        self,
        id: UUID | str,
        error_details: JsonObject | None = None,
        *,
        actor: str | None = None,
        reason: str | JsonObject | None = None,
    ) -> R:
        """running -> failed; sets completed_at and, if given, error_details.
        Raises NotFound, InvalidTransition."""
        return await self._finish(id, "failed", None, error_details, actor, reason)

    async def _finish(
        self, id: UUID | str, status: str, output_data: Any, error_details: Any, actor: Any, reason: Any
    ) -> R:
        to = self.status_type(status)
        written = (optional_object(output_data, "output_data"), optional_object(error_details, "error_details"))
        return await self._transition(self._q.finish, as_uuid(id), to, to, *written, *audit(actor, reason))


def check_version(value: Any) -> int | None:
    """An expected version: None, or a positive integer."""
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise InvalidArgument(f"expected_version must be a positive integer or None, got {value!r}")
    return value


@overload
def enum_value(value: None, enum: type[StrEnum], name: str) -> None: ...
@overload
def enum_value(value: StrEnum | str, enum: type[StrEnum], name: str) -> str: ...
def enum_value(value: Any, enum: type[StrEnum], name: str) -> str | None:
    """One enum filter value as text (None: no filter). Raises InvalidArgument naming `name`."""
    if value is None:
        return None
    try:
        return enum(value).value
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise InvalidArgument(f"{name} must be one of {allowed}; got {value!r}") from None


def enum_values(value: Any, enum: type[StrEnum], name: str = "status") -> list[str] | None:
    """A filter that takes one enum value or several, as a text[] parameter (None: no filter)."""
    if value is None:
        return None
    if isinstance(value, str):
        values: Sequence[Any] = [value]
    else:
        try:
            values = list(value)
        except TypeError:
            raise InvalidArgument(f"{name} must be a value of {enum.__name__} or several; got {value!r}") from None
    return [enum_value(v, enum, name) for v in values]
