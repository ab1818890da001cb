"""Where the database is: DSN resolution, redaction, libpq's reading of a DSN and the servers it
lists."""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit, urlunsplit

from psycopg import ProgrammingError
from psycopg.conninfo import conninfo_to_dict

from optiinfra_store.errors import ConfigurationError

DSN_ENV = "OPTIINFRA_DATABASE_URL"
_SCHEMES = ("postgresql", "postgres")


def resolve_dsn(dsn: str | None = None) -> str:
    """Return `dsn`, else `$OPTIINFRA_DATABASE_URL`.

    Raises ConfigurationError when neither is set or the DSN is not a postgresql:// URL.
    """
    resolved = dsn or os.environ.get(DSN_ENV)
    if not resolved:
        raise ConfigurationError(f"no database given: pass a postgresql:// DSN or set {DSN_ENV}")
    scheme = resolved.split("://", 1)[0] if "://" in resolved else ""
    if scheme not in _SCHEMES:
        raise ConfigurationError(f"expected a postgresql:// DSN, got {redact(resolved)!r}")
    return resolved


# user:password@ up to the last @ of the run (a password may hold an unencoded @, # or /), and a
# password=... parameter; any case of the scheme
_USERINFO = re.compile(r"(?i)(postgres(?:ql)?://[^:/?#@\s]*):\S*@")
_PASSWORD_PARAMETER = re.compile(r"(?i)(\bpassword=)[^&\s]*")


def redact(text: str) -> str:
    """`text` (a DSN, or a message holding DSNs) with every password replaced by ***, fit for logs
    and error messages: the password of user:password@ and a password= parameter."""
    return _PASSWORD_PARAMETER.sub(r"\1***", _USERINFO.sub(r"\1:***@", text))


def unreadable(dsn: str) -> ConfigurationError:
    """The error for a DSN a driver cannot parse (its own message would quote the DSN, password and all)."""
    return ConfigurationError(f"cannot read the DSN {redact(dsn)}: percent-encode special characters")


def check_readable(dsn: str | None) -> None:
    """`unreadable(dsn)` for a DSN whose ports the driver could not read (an unencoded '#' or '/' in
    a password ends the host part early, and the driver's message would show what follows), or
    whose password holds an unencoded '@' (the drivers end the user info at the first one, and
    would look the rest of the password up as a host name)."""
    if dsn is None:
        return
    if urlsplit(dsn).netloc.count("@") > 1:
        raise unreadable(dsn)
    try:
        for host in urlsplit(dsn).netloc.rsplit("@", 1)[-1].split(","):
            address = host.rpartition("]")[2]  # an IPv6 address holds colons of its own
            if ":" in address and (port := address.rpartition(":")[2]):
                int(port)
    except ValueError:
        raise unreadable(dsn) from None


def parameters(dsn: str) -> dict[str, str]:
    """The connection parameters of `dsn` as libpq reads them: both multi-host forms
    (`postgresql://h1:p1,h2:p2/db` and `postgresql:///db?host=h1,h2&port=p1,p2`) give one `host`
    and one `port` parameter, comma-separated. Raises ConfigurationError for one libpq cannot parse
    (a parameter it does not know, or characters to percent-encode)."""
    # libpq ends the user info at the first @ and the host part at a /: a password holding either
    # unencoded would be read as (part of) a host name, and named in messages as one
    check_readable(dsn)
    try:
        params = {key: str(value) for key, value in conninfo_to_dict(dsn).items()}
    except ProgrammingError as exc:
        message = str(exc).strip()
        if message.startswith("invalid URI query parameter"):  # names the parameter, not a value
            raise ConfigurationError(f"cannot read the DSN {redact(dsn)}: {message}") from None
        raise unreadable(dsn) from None  # libpq's other messages may quote the password
    if "@" in params.get("host", ""):
        raise unreadable(dsn)
    return params


def servers(dsn: str) -> list[str]:
    """The servers `dsn` lists, in order, each as `server_name` gives it: what messages name (a
    host name holds no password). Empty when the DSN names no host (libpq's default) or cannot be
    read."""
    try:
        params = parameters(dsn)
    except ConfigurationError:
        return []
    hosts = (params.get("host") or params.get("hostaddr") or "").split(",")
    ports = params.get("port", "").split(",")
    if len(ports) == 1:  # one port serves every host
        ports *= len(hosts)
    return [server_name(host, port) for host, port in zip(hosts, ports, strict=False) if host]


def server_name(host: str, port: str | int | None) -> str:
    """`host:port` (`[v6]:port`), or a Unix socket's path; the host alone when no port is given."""
    if host.startswith("/"):
        return f"{host}/.s.PGSQL.{port}" if port else host
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}" if port else shown


def with_database(dsn: str, database: str) -> str:
    """The same server and credentials, another database."""
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{database}"))
