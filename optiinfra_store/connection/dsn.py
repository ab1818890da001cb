"""Where the database is: DSN resolution, redaction and the form yoyo wants."""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit, urlunsplit

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
    a password ends the host part early, and the driver's message would show what follows)."""
    if dsn is None:
        return
    try:
        for host in urlsplit(dsn).netloc.rsplit("@", 1)[-1].split(","):
            address = host.rpartition("]")[2]  # an IPv6 address holds colons of its own
            if ":" in address and (port := address.rpartition(":")[2]):
                int(port)
    except ValueError:
        raise unreadable(dsn) from None


def to_yoyo_uri(dsn: str) -> str:
    """Translate a postgresql:// DSN into the URI yoyo's psycopg 3 backend expects."""
    scheme, rest = dsn.split("://", 1)
    if scheme not in _SCHEMES:
        raise ConfigurationError(f"expected a postgresql:// DSN, got {redact(dsn)!r}")
    return f"postgresql+psycopg://{rest}"


def with_database(dsn: str, database: str) -> str:
    """The same server and credentials, another database."""
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{database}"))
