"""The service's settings: every value it reads from the environment and every limit it keeps, in
one object read once at start-up (`Settings.from_environ()`), then handed to the app and the server.

The environment speaks only of tokens (OPTIINFRA_JWT_*); the limits are fields with their
defaults, set in code (`Settings(max_customer_streams=2)`) by whoever builds the app.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from optiinfra_store.errors import ConfigurationError

SECRET_ENV = "OPTIINFRA_JWT_SECRET"
PUBLIC_KEY_ENV = "OPTIINFRA_JWT_PUBLIC_KEY"
ISSUER_ENV = "OPTIINFRA_JWT_ISSUER"
AUDIENCE_ENV = "OPTIINFRA_JWT_AUDIENCE"
MAX_LIFETIME_ENV = "OPTIINFRA_JWT_MAX_LIFETIME"


@dataclass(frozen=True, kw_only=True)
class Settings:
    """What the service is configured with; the defaults are the service's own."""

    # tokens: a shared secret (HS256) or a PEM public key file (RS256, ES256), one of the two
    jwt_secret: str | None = field(default=None, repr=False)
    jwt_public_key: str | None = None
    jwt_issuer: str | None = None  # checked when set
    jwt_audience: str | None = None  # checked when set
    # a stolen token is good for at most this long, and an event stream lasts at most as long as its token
    jwt_max_lifetime: int = 24 * 3600
    verified_tokens: int = 4096  # how many verified tokens are remembered until they expire

    # GET /metrics for a Prometheus scraper, without a token (it holds no customer's data); False: not served
    metrics: bool = True

    # answers: how long a client may reuse statistics and performance (Cache-Control max-age)
    cache_max_age: int = 15

    # event streams
    max_streams: int = 5000  # per server process
    max_customer_streams: int = 50  # and per customer
    keepalive_seconds: float = 15.0  # a comment frame when nothing else was sent for this long
    poll_interval: float = 30.0  # a backstop: the hub's notifications wake subscribers at once

    # analytics: statistics / performance computed at once for one customer, and different ones
    # waiting or running (429 beyond)
    analytics_per_customer: int = 2
    analytics_queued_per_customer: int = 8

    # the server (`optiinfra-store serve`)
    header_timeout: float = 10.0  # a request line and headers arrive within this (408 otherwise)
    # the longest Last-Event-ID the service accepts (48,000 characters) and a token fit, with room
    max_header_bytes: int = 64 * 1024
    max_connections: int = 6000  # HTTP connections at once, event streams included
    keep_alive_timeout: int = 5  # an idle kept-alive connection closes after this
    graceful_shutdown_seconds: int = 10
    pool_max_size: int = 20  # the store's connections
    command_timeout: float = 30
    demo_token_hours: int = 12  # the lifetime of the tokens the embedded demo hands out

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """The settings with OPTIINFRA_JWT_SECRET, OPTIINFRA_JWT_PUBLIC_KEY, OPTIINFRA_JWT_ISSUER,
        OPTIINFRA_JWT_AUDIENCE and OPTIINFRA_JWT_MAX_LIFETIME (whole seconds) when set and not
        empty; ConfigurationError for a maximum lifetime that is not a positive whole number.
        Whether there is a usable key is the verifier's to say (`TokenVerifier.from_settings`)."""
        text = environ.get(MAX_LIFETIME_ENV) or str(cls.jwt_max_lifetime)
        if not text.isascii() or not text.isdigit() or int(text) < 1:
            raise ConfigurationError(f"{MAX_LIFETIME_ENV} must be a whole number of seconds, at least 1, got {text!r}")
        return cls(
            jwt_secret=environ.get(SECRET_ENV) or None,
            jwt_public_key=environ.get(PUBLIC_KEY_ENV) or None,
            jwt_issuer=environ.get(ISSUER_ENV) or None,
            jwt_audience=environ.get(AUDIENCE_ENV) or None,
            jwt_max_lifetime=int(text),
        )


DEFAULTS = Settings()
