"""Building blocks shared by every record and input model.

What a caller supplies is checked against what PostgreSQL and the driver can store *and give back
unchanged*, so such a value fails as a pydantic ValidationError naming its field before any SQL
runs, instead of a database error naming a query argument (or a value silently changed):

- text holds no NUL character (PostgreSQL text cannot) and no lone surrogate (not UTF-8);
- a JSON document is JSON: string keys at every level, finite numbers, integers the json module
  can write and read back, nesting at most JSON_MAX_DEPTH deep, and the text rules in every key
  and string;
- a timestamp is an instant the driver sends as itself (see `Timestamp`).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, Generic, Self, TypeVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator

INT4_MAX = 2**31 - 1

JSON_MAX_DEPTH = 256
"""The deepest nesting of objects and arrays accepted in a JSON document. Python's json encoder
and decoder recurse once per level and stop near 1000 (the interpreter's recursion limit), so a
deeper document could fail to be written, or be written and then fail to be read back."""


def storable_text(value: str) -> str:
    """`value` if PostgreSQL text can hold it; else ValueError (which never quotes the value)."""
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\x00) characters: PostgreSQL text cannot store them")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode: a lone surrogate (U+D800-U+DFFF) cannot be stored") from None
    return value


def _where(path: str) -> str:
    if len(path) > 80:
        path = f"...{path[-77:]}"
    return f" (at {path})" if path else ""


def _key_repr(key: str) -> str:
    text = repr(key)
    return text if len(text) <= 40 else f"{text[:37]}...'"


@cache
def _ten_to(digits: int) -> int:
    power: int = 10**digits
    return power


def storable_json(document: Any) -> Any:
    """`document` if jsonb stores it and the store reads the same document back; else ValueError
    saying where (a path of keys and indexes; values are never quoted).

    Accepts dict (string keys), list or tuple (read back as a list), str, int, float, bool and
    None. Walks the document without recursion, so a hostile depth cannot exhaust the stack."""
    max_digits = sys.get_int_max_str_digits()
    pending: list[tuple[Any, int, str]] = [(document, 0, "")]
    while pending:
        value, depth, path = pending.pop()
        if isinstance(value, str):
            try:
                storable_text(value)
            except ValueError as exc:
                raise ValueError(f"a JSON string {exc}{_where(path)}") from None
        elif value is None or isinstance(value, bool):
            continue
        elif isinstance(value, int):
            # the json module refuses (both ways) integers longer than the interpreter's limit
            if max_digits and value.bit_length() > 3 * max_digits and abs(value) >= _ten_to(max_digits):
                raise ValueError(f"a JSON integer must have at most {max_digits} digits{_where(path)}")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError(f"a JSON number must be finite (NaN and infinity are not JSON){_where(path)}")
        elif isinstance(value, (dict, list, tuple)):
            if depth >= JSON_MAX_DEPTH:
                raise ValueError(f"a JSON document may nest at most {JSON_MAX_DEPTH} levels deep{_where(path)}")
            if isinstance(value, dict):
                for key, item in value.items():
                    if not isinstance(key, str):
                        raise ValueError(
                            f"JSON object keys must be strings, got a key of type {type(key).__name__}{_where(path)}"
                        )
                    try:
                        storable_text(key)
                    except ValueError as exc:
                        raise ValueError(f"a JSON object key {exc}{_where(path)}") from None
                    pending.append((item, depth + 1, f"{path}[{_key_repr(key)}]"))
            else:
                pending.extend((item, depth + 1, f"{path}[{i}]") for i, item in enumerate(value))
        else:
            raise ValueError(
                f"a {type(value).__name__} is not a JSON value "
                f"(use dict, list, str, int, float, bool or None){_where(path)}"
            )
    return document


_FIRST_INSTANT = datetime.min.replace(tzinfo=UTC)
_LAST_INSTANT = datetime.max.replace(tzinfo=UTC)


def storable_instant(value: datetime) -> datetime:
    """`value` if the driver sends it as that instant; else ValueError.

    asyncpg converts to UTC first (an instant outside years 1-9999 in UTC cannot be sent), and
    sends exactly 0001-01-01T00:00:00Z as -infinity and 9999-12-31T23:59:59.999999Z as infinity
    (which then read back as naive datetime.min and datetime.max)."""
    if value.utcoffset() is None:
        return value  # naive: whether that is allowed is the field type's rule (see Timestamp)
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("must fall within the years 1 to 9999 once converted to UTC") from None
    if utc == _FIRST_INSTANT or utc == _LAST_INSTANT:
        raise ValueError(
            "must be after 0001-01-01T00:00:00Z and before 9999-12-31T23:59:59.999999Z "
            "(the driver stores those two instants as -infinity and infinity)"
        )
    return value


Name = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"\S"), AfterValidator(storable_text)]
"""A non-blank name that fits a varchar(255) column."""

ShortName = Annotated[str, StringConstraints(min_length=1, max_length=50, pattern=r"\S"), AfterValidator(storable_text)]
"""A non-blank name that fits a varchar(50) column (versions, units)."""

Text = Annotated[str, StringConstraints(max_length=1_000_000), AfterValidator(storable_text)]
Count = Annotated[int, Field(ge=0, le=INT4_MAX)]
"""A non-negative integer that fits an integer column."""

JsonObject = dict[str, Any]
"""A JSON object. In an Input, checked by `storable_json` (records hold what the database gave)."""

Timestamp = Annotated[AwareDatetime, AfterValidator(storable_instant)]
"""Timestamps must carry a time zone: naive datetimes are refused, never guessed; and must be an
instant the driver can send as itself (`storable_instant`)."""


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number (not NaN or infinity)")
    return value


FiniteFloat = Annotated[float, AfterValidator(_finite)]


_set = object.__setattr__


class Record(BaseModel):
    """A row as stored. Built from trusted database rows without re-validation."""

    model_config = ConfigDict(frozen=True)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Self:
        """The record of a row this package's own SQL returned: its columns are exactly the
        record's fields, already of their types (the connection's codecs made them), so nothing
        is checked or converted. `model_construct` does the same but looks up defaults and extra
        keys field by field, which costs 2-4x more per row; a row with other columns than the
        record's fields goes through it."""
        values = dict(row)
        names = _field_names(cls)
        if len(values) != len(names):  # not a whole row: let pydantic fill in defaults
            return cls.model_construct(**values)
        record = cls.__new__(cls)
        _set(record, "__dict__", values)
        _set(record, "__pydantic_fields_set__", set(names))
        _set(record, "__pydantic_extra__", None)
        _set(record, "__pydantic_private__", None)
        return record


@cache
def _field_names(cls: type[BaseModel]) -> frozenset[str]:
    return frozenset(cls.model_fields)


def _check_storable(value: Any) -> None:
    if isinstance(value, str):
        storable_text(value)
    elif isinstance(value, dict):
        storable_json(value)
    elif isinstance(value, datetime):
        storable_instant(value)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            _check_storable(item)


class Input(BaseModel):
    """What a caller supplies; validated before any SQL runs."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    @field_validator("*")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        """Every field of every input, whatever its declared type (an email, a path, a JSON
        document, a list of names): refuse what the database cannot store or give back as given."""
        _check_storable(value)
        return value


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a keyset-paginated list; pass `next_cursor` back for the next (None on the last).
    A page is also the sequence of its items: iterate it, index it, take its len, compare it to a
    list."""

    model_config = ConfigDict(frozen=True)

    items: list[T]
    next_cursor: str | None = None

    def __iter__(self) -> Iterator[T]:  # type: ignore[override]
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> T:
        return self.items[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, list):
            return self.items == other
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]
