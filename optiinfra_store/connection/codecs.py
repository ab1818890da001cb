"""How values travel between Python and PostgreSQL on every connection the store opens: JSONB as
dicts and lists (binary, so COPY works too, with a size limit checked while encoding) and the enum
types as their StrEnums."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import asyncpg

from optiinfra_store.enums import DATABASE_ENUMS
from optiinfra_store.errors import ConfigurationError, DocumentTooLarge, InvalidData

_encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
_loads = json.JSONDecoder().decode  # the server sends UTF-8 text: json.loads' sniffing is not needed

# A JSON string, or a number in exponent form with a positive exponent (Python writes floats of
# magnitude >= 1e16 so). jsonb keeps numbers as numeric and writes that one back without its
# exponent (1e+23 -> 100000000000000000000000), which would read back as an int.
_STRING_OR_BIG_FLOAT = re.compile(r'"(?:[^"\\]|\\.)*"|(-?[0-9]+(?:\.[0-9]+)?e\+[0-9]+)')


def _fixed_point(match: re.Match[str]) -> str:
    number = match.group(1)
    # the same shortest digits, in fixed point with a fraction: jsonb keeps the ".0"
    return match.group(0) if number is None else format(Decimal(number), "f") + ".0"


def _dumps(value: Any) -> str:
    """JSON text of `value`, floats written so that they read back from jsonb as the same floats."""
    text = _encode_json(value)
    return _STRING_OR_BIG_FLOAT.sub(_fixed_point, text) if "e+" in text else text


DEFAULT_MAX_DOCUMENT_BYTES = 1 << 20
"""The default limit on one JSON document (1 MiB), checked as it is encoded, before it is sent."""


def _jsonb_encoder(limit: int) -> Callable[[Any], bytes]:
    def encode(value: Any) -> bytes:
        text = _dumps(value).encode("utf-8")
        if len(text) > limit:
            raise DocumentTooLarge(len(text), limit)
        # binary jsonb is a version byte (1) followed by the JSON text
        return b"\x01" + text

    return encode


def _decode_jsonb(data: bytes) -> Any:
    # binary jsonb is a version byte (1) followed by the JSON text
    return _loads(str(data[1:], "utf-8"))


def _encode_label(value: Any) -> bytes:
    return str(value).encode("utf-8")


def _label_decoder(enum: type[Any]) -> Callable[[bytes], Any]:
    members = {member.value.encode("utf-8"): member for member in enum}

    def decode(label: bytes) -> Any:
        try:
            return members[label]
        except KeyError:
            pass  # raised below: the value the database holds is not a programming error
        raise InvalidData(
            f"the database holds {enum.__name__} {label.decode('utf-8', 'replace')!r}, which this version of "
            "optiinfra-store does not know (a newer migration added it?)"
        )

    return decode


# On a Citus node, catalog reads see shards as the tables they are. Citus hides shards from pg_class
# by calling a function on each row it reads there, and asyncpg's introspection of a type it has no
# codec for yet (an array or an enum, once per connection) reads pg_class once per composite type:
# 0.3 s per type on an idle coordinator, seconds under load and more on a worker, against 0.1 s
# without. The setting only changes what catalog reads show (nothing the store reads); where Citus
# is not installed nothing is set. A session setting: not through a transaction pooler, which would
# leave it on a server connection it then hands to other clients.
_CATALOG_SHOWS_SHARDS = (
    "SELECT pg_catalog.set_config('citus.override_table_visibility', 'off', false)"
    " FROM pg_catalog.pg_extension WHERE extname = 'citus'"
)


async def init_connection(
    conn: asyncpg.Connection, *, max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES, session: bool = True
) -> None:
    """Register the codecs every connection needs: JSONB <-> dict/list (binary, so COPY works
    too; documents over `max_document_bytes` are refused) and the enum types <-> their StrEnums.
    With a session of its own (`session`: not through a transaction pooler), on a Citus node, first
    let the type introspection read the catalog without Citus's filter."""
    if session:
        await conn.execute(_CATALOG_SHOWS_SHARDS)
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        encoder=_jsonb_encoder(max_document_bytes),
        decoder=_decode_jsonb,
        format="binary",
    )
    await conn.set_type_codec("json", schema="pg_catalog", encoder=_dumps, decoder=_loads, format="text")
    try:
        await _register_enum_codecs(conn)
    except ValueError as exc:  # asyncpg: "unknown type: public.customer_status"
        raise ConfigurationError(
            f"the database has no optiinfra schema ({exc}): apply the migrations first "
            "(optiinfra_store.migrations.apply(dsn), or `optiinfra-store migrate`)"
        ) from exc


async def _register_enum_codecs(conn: asyncpg.Connection) -> None:
    """A codec for each enum type of DATABASE_ENUMS the database has. A type a later migration adds
    is skipped on a database not migrated that far (the code runs against the schema before its
    migrations are applied, `Store.pending_migrations()` says which are pending); a database
    without any of them has no optiinfra schema (ValueError)."""
    unknown: list[ValueError] = []
    for type_name, enum in DATABASE_ENUMS.items():
        try:
            # binary (an enum's wire form is its label) so COPY can write enum columns too
            await conn.set_type_codec(
                type_name, schema="public", encoder=_encode_label, decoder=_label_decoder(enum), format="binary"
            )
        except ValueError as exc:  # asyncpg: "unknown type: public.<type_name>"
            unknown.append(exc)
    if len(unknown) == len(DATABASE_ENUMS):
        raise unknown[0]


async def keep_session(conn: asyncpg.Connection) -> None:
    """Pool reset: nothing to undo. The pool has already rolled back any open transaction, and the
    repositories change no session state (no SET, LISTEN, cursors or advisory locks; the audit
    settings are transaction-local; the one session setting, made once per connection on a Citus
    node, is kept on purpose), so asyncpg's default reset query would only cost every call a second
    round trip. Pass `reset=` to Store.connect to restore a full reset (on Citus, new array and enum
    types are then introspected slowly again)."""
