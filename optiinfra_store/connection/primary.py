"""psycopg connections for the schema commands (migrations, seed, distribution): to the server that
takes writes among those a DSN lists, in either multi-host form, with failures naming every one."""

from __future__ import annotations

import re

import psycopg
from psycopg.conninfo import make_conninfo

from optiinfra_store.connection.dsn import parameters, redact, server_name, servers
from optiinfra_store.errors import StoreUnavailable, cannot_connect, cannot_connect_each, first_line, no_primary

READ_WRITE = "read-write"

_PASSED_OVER = frozenset(
    {
        "session is read-only",
        "server is in hot standby mode",
        "session is not read-only",
        "server is not in hot standby mode",
    }
)
"""libpq's reasons for passing over a server that answered but is not what target_session_attrs
asks for (fe-connect.c)."""

# psycopg (3.2+) tries each host in turn and lists every failure, one line each:
# "- host: 'h', port: '5432', hostaddr: '10.0.0.1': connection failed: ..."
_PSYCOPG_ATTEMPT = re.compile(
    r"^- host: (?:None|'([^']*)'), port: (?:None|'([^']*)'), hostaddr: (?:None|'[^']*'): (.*)$", re.M
)
# libpq (psycopg 3.1, and each of psycopg's attempts) says which server failed, and why
_LIBPQ_ATTEMPT = re.compile(
    r'connection to server (?:at "([^"]*)"(?: \([^)]*\))?, port (\d+)|on socket "([^"]*)") failed: (.*)$', re.M
)


def writable(dsn: str) -> dict[str, str]:
    """libpq's parameters of `dsn`, asking for the server that takes writes
    (`target_session_attrs=read-write`, or `primary` if the DSN says so) whatever else the DSN
    asks for: the schema commands write, and on a standby they would wait on a lock they can never
    take. Raises ConfigurationError for a DSN libpq cannot read."""
    params = parameters(dsn)
    if params.get("target_session_attrs") != "primary":
        params["target_session_attrs"] = READ_WRITE
    return params


def connect(dsn: str) -> psycopg.Connection:
    """A psycopg connection (not in autocommit) to the server of `dsn` that takes writes, the
    servers tried in the order listed (`writable`). Raises ConfigurationError for a DSN libpq
    cannot read, StoreUnavailable naming every listed server when none answers or none is a
    primary."""
    params = writable(dsn)
    try:
        return psycopg.connect(make_conninfo(**params))
    except psycopg.OperationalError as exc:
        raise connect_failed(exc, dsn) from exc


def pinned(dsn: str, conn: psycopg.Connection) -> dict[str, str]:
    """`writable(dsn)` narrowed to the server `conn` reached (its host, port and address): the
    connections a migration run opens after finding the primary all go to that one server, and
    with `target_session_attrs` kept, one fails rather than writes if it stopped taking writes."""
    params = writable(dsn)
    params["host"], params["port"] = conn.info.host, str(conn.info.port)
    if conn.info.hostaddr:
        params["hostaddr"] = conn.info.hostaddr
    else:  # a Unix socket
        params.pop("hostaddr", None)
    params.pop("load_balance_hosts", None)
    return params


def connect_failed(exc: psycopg.OperationalError, dsn: str) -> StoreUnavailable:
    """What psycopg's failure to connect to `dsn` means: `no_primary` when every server answered
    and was passed over for `target_session_attrs`, else `cannot_connect` with each server's reason
    (psycopg 3.2+ and libpq report every attempt)."""
    named = servers(dsn) or [redact(dsn)]
    attempts = _attempts(str(exc))
    if attempts and all(reason in _PASSED_OVER for _, reason in attempts):
        return no_primary(named, writable(dsn).get("target_session_attrs", READ_WRITE))
    if len(attempts) > 1:
        return cannot_connect_each([(where, redact(why)) for where, why in attempts])
    return cannot_connect(named, redact(attempts[0][1] if attempts else first_line(exc)))


def _attempts(message: str) -> list[tuple[str, str]]:
    """(server, reason) of each connection attempt a psycopg or libpq error message reports, in
    order; empty when it reports none in a form known here."""
    listed = message.partition("All failures were:")[2]
    if listed:
        return [(server_name(host, port), _reason(tail)) for host, port, tail in _PSYCOPG_ATTEMPT.findall(listed)]
    found = {
        (server_name(host or socket, port), reason.strip()): None
        for host, port, socket, reason in _LIBPQ_ATTEMPT.findall(message)
    }
    return list(found)


def _reason(text: str) -> str:
    """libpq's reason in one attempt's message, without the server it names."""
    match = _LIBPQ_ATTEMPT.search(text)
    return match[4].strip() if match else text.strip()
