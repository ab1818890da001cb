"""Hostile values for the reliability tests, and the checks every call is held to.

A hostile value is anything a caller could pass: hostile unicode (lone surrogates, NUL, bidi
controls, combining marks, astral characters), strings at and just past each column's length,
JSON that PostgreSQL cannot store or Python cannot read back (NUL in keys and values, NaN and
infinity, non-string keys deep inside, sets and bytes, nesting past any sane depth, documents over
the size limit), integers past int4 and int8, dates at the ends of the calendar and naive ones, and
values of the wrong type altogether.
"""

from __future__ import annotations

import types
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, Union, get_args, get_origin
from uuid import UUID

import pydantic
from hypothesis import strategies as st

from optiinfra_store.errors import StoreError
from optiinfra_store.repositories import repository_types

# -- text ---------------------------------------------------------------------------------------

SURROGATES = st.integers(0xD800, 0xDFFF).map(chr)
ODD_CHARACTERS = st.sampled_from(
    [
        "\x00",
        "'",
        '"',
        "\\",
        "$",
        "%",
        "_",
        ";",
        "-",
        "*",
        "/",
        "\t",
        "\n",
        "\r",
        " ",
        "\x1c",
        "\x7f",
        "\u0085",
        "\u00a0",
        "\u0301",
        "\u200b",
        "\u202e",
        "\u2028",
        "\ufeff",
        "\ufffd",
        "\uffff",
        "\U0001f44d",
        "\U0001f3fd",
        "\U0010ffff",
        "\ud800",
        "\udfff",
    ]
)
CHARACTERS = st.one_of(st.characters(), SURROGATES, ODD_CHARACTERS)


class LongText(str):
    """A long string whose repr() says how it was made (failure reports stay readable)."""

    def __new__(cls, unit: str, times: int) -> LongText:
        text = super().__new__(cls, unit * times)
        text.recipe = f"{unit!r} * {times}"
        return text

    def __repr__(self) -> str:
        return f"LongText({self.recipe})"


LENGTH_EDGES = [n + d for n in (50, 100, 255, 320, 4096) for d in (0, 1)]
LONG_TEXT = st.one_of(
    # one character of one UTF-8 byte, of four, and two characters (letter + combining mark): the
    # limits count characters, as varchar(n) does
    st.builds(LongText, st.sampled_from(["x", "\U0001f44d", "e\u0301"]), st.sampled_from(LENGTH_EDGES)),
    st.builds(LongText, st.just("x"), st.sampled_from([1_000_000, 1_000_001])),  # Text's own limit
)
SPECIAL_TEXT = [
    "",
    " ",
    "   ",
    "\t\n",
    "\x00",
    "a\x00b",
    "\x00" * 3,
    "\ud800",
    "a\udfffb",
    "\\x00",
    "\\u0000",
    "\\",
    "null",
    "NaN",
    "-Infinity",
    "true",
    "{}",
    "[]",
    "0",
    "-0",
    "1e999",
    "\u202egnp.exe",
    "\ufeffbom",
    "e\u0301",
    "\U0001f44d\U0001f3fd",
]

TEXT = st.one_of(
    st.text(CHARACTERS, max_size=30),
    st.sampled_from(SPECIAL_TEXT),
    LONG_TEXT,
    st.text(CHARACTERS, min_size=1, max_size=4).map(lambda s: s * 70),
)
"""Any string a caller might pass."""

STORABLE_CHARACTERS = st.one_of(
    st.characters(exclude_characters="\x00"),  # Hypothesis leaves lone surrogates out by default
    ODD_CHARACTERS.filter(lambda c: c != "\x00" and not 0xD800 <= ord(c) <= 0xDFFF),
)
STORABLE_TEXT = st.text(STORABLE_CHARACTERS, min_size=1, max_size=40).filter(lambda s: s.strip() == s and s)
"""Strings every text column stores (odd, but without NUL, lone surrogates or edge whitespace)."""
EMAILS = st.builds(
    "{}@{}".format,
    st.text(STORABLE_CHARACTERS.filter(lambda c: c != "@" and not c.isspace()), min_size=1, max_size=20),
    st.text(STORABLE_CHARACTERS.filter(lambda c: c != "@" and not c.isspace()), min_size=1, max_size=20),
).filter(lambda e: len(e) <= 320)

# -- JSON ---------------------------------------------------------------------------------------


class LongInt(int):
    """An integer past the interpreter's 4300-digit str() limit, with a repr() that still works
    (Hypothesis and pytest print the values they draw); to json and asyncpg it is an int."""

    def __repr__(self) -> str:
        return f"LongInt(<{self.bit_length()} bits>)"

    def __str__(self) -> str:
        return int.__repr__(self)  # what str() of a plain int this long does: raise ValueError


BIG_INTEGERS = [
    2**31 - 1,
    2**31,
    2**63 - 1,
    2**63,
    -(2**63) - 1,
    2**64,
    10**100,
    10**4299,
    -(10**4299),
    LongInt(10**4300),
]
ODD_FLOATS = [
    0.0,
    -0.0,
    5e-324,
    1e-300,
    0.1,
    1e15 + 0.5,
    1.7976931348623157e308,
    float("nan"),
    float("inf"),
    -float("inf"),
]
JSON_NUMBERS = st.one_of(
    st.integers(),
    st.sampled_from(BIG_INTEGERS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(ODD_FLOATS),
)


class Nested(dict):
    """A deeply nested document whose repr() says how deep (a plain repr would recurse)."""

    def __repr__(self) -> str:
        return f"nested({self.depth})"


def nested(depth: int, leaf: Any = 1) -> Nested:
    """{"a": [{"a": [... leaf]}]}: `depth` levels of objects and arrays (built without recursion)."""
    document: Any = leaf
    for level in range(depth - 1):
        document = {"a": document} if level % 2 else [document]
    top = Nested(a=document)
    top.depth = depth
    return top


NOT_JSON = [{1, 2}, frozenset(), b"bytes", Decimal("1.5"), datetime(2024, 1, 1, tzinfo=UTC), UUID(int=7), object(), 1j]
NON_STRING_KEYS = [1, 0, -1, 1.5, None, True, (1, 2)]

JSON_SCALARS = st.one_of(st.none(), st.booleans(), JSON_NUMBERS, TEXT)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=12,
)
JSON_OBJECTS = st.one_of(
    st.dictionaries(TEXT, JSON_VALUES, max_size=5),
    st.builds(lambda k, v: {"outer": {"inner": {k: v}}}, st.sampled_from(NON_STRING_KEYS), JSON_SCALARS),
    st.builds(lambda k, v: {k: v}, st.sampled_from(NON_STRING_KEYS), JSON_SCALARS),
    st.builds(lambda v: {"deep": [{"x": v}]}, st.sampled_from(NOT_JSON)),
    st.builds(nested, st.sampled_from([10, 255, 256, 257, 5_000])),
    st.builds(lambda: {"blob": LongText("x", 1 << 20)}),  # over the 1 MiB document limit
    st.builds(lambda v: {"tuple": (v, v)}, JSON_SCALARS),  # a tuple is a JSON array: read back as a list
)
"""JSON objects, storable or not."""

STORABLE_JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        STORABLE_TEXT,
        st.sampled_from(BIG_INTEGERS[:-1]),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(STORABLE_TEXT, inner, max_size=4)),
    max_leaves=12,
)
STORABLE_JSON_OBJECTS = st.dictionaries(STORABLE_TEXT, STORABLE_JSON_VALUES, max_size=5)
"""JSON objects jsonb stores and the store reads back equal (as JSON: numbers by value)."""

# -- numbers, dates, ids, enums -------------------------------------------------------------------

JUNK = st.sampled_from([None, "", "x", b"x", 1.5, [], {}, object(), True])
INTEGERS = st.one_of(
    st.integers(-10, 10),
    st.integers(),
    st.sampled_from(BIG_INTEGERS[:7]),
    st.sampled_from(["7", " 7 ", "7.0", 7.0, 7.5, True, False, "NaN"]),
    JUNK,
)
FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(ODD_FLOATS),
    st.sampled_from(["nan", "inf", "-Infinity", "0.5", "1e400", 2**1024]),
    st.integers(),
    JUNK,
)
DECIMALS = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            Decimal("999999999999.99"),
            Decimal("1000000000000"),
            Decimal("0.001"),
            Decimal("-0.01"),
            Decimal("1E+11"),
            Decimal("sNaN"),
            Decimal("-0"),
            "12.5",
            1e400,
            10**20,
        ]
    ),
    st.integers(),
    st.floats(),
    JUNK,
)
ZONES = st.builds(
    timezone, st.timedeltas(min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59))
)
EDGE_DATETIMES = [
    datetime(1, 1, 1, tzinfo=UTC),  # asyncpg: -infinity
    datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))),  # before year 1 in UTC
    datetime(1, 1, 2, tzinfo=timezone(timedelta(hours=-14))),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),  # asyncpg: infinity
    datetime(9999, 12, 31, 23, 59, 59, 999998, tzinfo=UTC),
    datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-14))),  # after year 9999 in UTC
    datetime(1, 1, 1),
    datetime(9999, 12, 31),
    datetime(2024, 2, 29, 12),  # naive
    datetime(2024, 1, 1).date(),
]
DATETIMES = st.one_of(
    st.datetimes(timezones=st.one_of(st.none(), ZONES)),
    st.sampled_from(EDGE_DATETIMES),
    st.sampled_from(["2024-01-01T00:00:00Z", "2024-01-01", "0001-01-01T00:00:00+00:00", "yesterday", 0, 1e12, -1]),
    JUNK,
)


def is_driver_infinity(value: Any) -> bool:
    """The two instants asyncpg sends as -infinity and infinity."""
    if not isinstance(value, datetime) or value.utcoffset() is None:
        return False
    try:
        return value.astimezone(UTC).replace(tzinfo=None) in (datetime.min, datetime.max)
    except OverflowError:  # before year 1 or after 9999 in UTC: the driver refuses to send it
        return False


TIMEDELTAS = st.one_of(
    st.timedeltas(),
    st.sampled_from([timedelta(0), timedelta(microseconds=1), timedelta.max, timedelta.min]),
    st.integers(),
    JUNK,
)
BOOLEANS = st.one_of(st.booleans(), st.sampled_from(["true", "false", "yes", "0", 1, 0, 2, -1, "maybe"]), JUNK)


def uuids(*valid: Any) -> st.SearchStrategy:
    """Ids: the valid ones given (as UUID and as text), unknown ones, and junk."""
    known = [v for v in valid if v is not None]
    forms = st.sampled_from(known + [str(v) for v in known] + [str(v).upper() for v in known])
    return st.one_of(
        *([forms, forms] if known else []),
        st.uuids(),
        st.sampled_from(["", "0", "00000000-0000-0000-0000-000000000000", f"{{{UUID(int=1)}}}"]),
        TEXT,
        INTEGERS,
    )


def enums(enum: type[Enum]) -> st.SearchStrategy:
    members = list(enum)
    return st.one_of(
        st.sampled_from(members),
        st.sampled_from([m.value for m in members]),
        st.sampled_from(members),
        st.sampled_from([m.value.upper() for m in members] + [f" {m.value}" for m in members]),
        TEXT,
        JUNK,
    )


# -- strategy by field type -----------------------------------------------------------------------


def core_type(annotation: Any) -> Any:
    """The type under Optional and Annotated."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return core_type(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(annotation) if a is not type(None)]
        return core_type(options[0]) if len(options) == 1 else annotation
    return annotation


def mostly(storable: st.SearchStrategy, hostile: st.SearchStrategy) -> st.SearchStrategy:
    """Storable-but-odd values two times in three, so the accepting path is walked as often as the
    refusing one (fields are made hostile one to three at a time)."""
    return st.one_of(storable, storable, hostile)


STORABLE_DATETIMES = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=ZONES,
)


def for_field(model: type[pydantic.BaseModel], name: str, valid: Any = None) -> st.SearchStrategy:
    """Values for one field of an input model: odd but storable, or hostile (for ids and enums,
    `valid` is among the storable ones)."""
    kind = core_type(model.model_fields[name].annotation)
    origin = get_origin(kind)
    if origin is dict:
        return mostly(STORABLE_JSON_OBJECTS, JSON_OBJECTS)
    if origin is list:
        hostile = st.one_of(st.lists(TEXT, max_size=4), TEXT, st.lists(INTEGERS, min_size=1, max_size=2), JUNK)
        return mostly(st.lists(STORABLE_TEXT, max_size=4), hostile)
    if kind is UUID:
        return mostly(st.just(valid) if valid is not None else st.uuids(), uuids(valid))
    if kind is pydantic.AwareDatetime or (isinstance(kind, type) and issubclass(kind, datetime)):
        return mostly(STORABLE_DATETIMES, DATETIMES)
    if isinstance(kind, type) and issubclass(kind, Enum):
        return mostly(st.sampled_from(list(kind)), enums(kind))
    if kind is bool:
        return mostly(st.booleans(), BOOLEANS)
    if kind is int:
        return mostly(st.integers(0, 50), INTEGERS)
    if kind is float:
        return mostly(st.floats(0, 1), FLOATS)
    if kind is Decimal:
        return mostly(st.decimals(0, 10**9, places=2), DECIMALS)
    if kind is str:
        return mostly(EMAILS if name == "email" else STORABLE_TEXT, st.one_of(TEXT, JUNK, INTEGERS))
    return st.one_of(TEXT, INTEGERS, JSON_OBJECTS, JUNK)


# -- what every call is held to -------------------------------------------------------------------

TABLES = (*repository_types(), "workflow_transitions")
_COUNTS = "SELECT " + ", ".join(f"(SELECT count(*) FROM {table}) AS {table}" for table in TABLES)


async def row_counts(store: Any) -> dict[str, int]:
    """How many rows each table holds (read as the session's superuser, past row-level security)."""
    return dict(await store.pool.fetchrow(_COUNTS))


@dataclass(frozen=True)
class Outcome:
    result: Any = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


async def outcome(call: Awaitable[Any]) -> Outcome:
    """Run one call: it succeeds, or fails with a ValidationError or StoreError that says something.
    Any other exception (a raw asyncpg, psycopg or builtin one) propagates and fails the test."""
    try:
        return Outcome(result=await call)
    except pydantic.ValidationError as exc:
        assert exc.errors() and all(e["msg"] and e["loc"] is not None for e in exc.errors()), exc
        return Outcome(error=exc)
    except StoreError as exc:
        assert str(exc).strip(), f"{type(exc).__name__} without a message"
        return Outcome(error=exc)


def _number(value: int | float) -> Decimal:
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def same(stored: Any, given: Any) -> bool:
    """Equal as stored values: JSON compared as JSON (numbers by value, a tuple as an array), the
    rest with ==."""
    if isinstance(stored, bool) or isinstance(given, bool):
        return type(stored) is type(given) and stored == given
    if isinstance(stored, (int, float)) and isinstance(given, (int, float)):
        return _number(stored) == _number(given)
    if isinstance(stored, dict) and isinstance(given, dict):
        return stored.keys() == given.keys() and all(same(stored[k], given[k]) for k in stored)
    if isinstance(stored, list) and isinstance(given, (list, tuple)):
        return len(stored) == len(given) and all(same(a, b) for a, b in zip(stored, given, strict=True))
    return type(stored) is not list and stored == given
