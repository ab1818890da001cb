"""Bearer tokens: who is calling, for which customer, allowed to do what.

HS256 with a shared secret, or RS256 / ES256 with a public key: one algorithm per service, fixed
by the key it is configured with, so a token cannot choose how it is checked (`alg: none`, or an
HMAC signed with the public key, is refused). `exp` is required, at most the maximum lifetime
after `iat` (or, without `iat`, after now); `iss` and `aud` are checked when configured. Claims:
`sub` (the user), `customer_id` (a UUID), `scope` (space-separated).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from optiinfra_store.api.settings import DEFAULTS, PUBLIC_KEY_ENV, SECRET_ENV, Settings
from optiinfra_store.errors import ConfigurationError

READ_SCOPE = "workflows:read"
MIN_SECRET_BYTES = 32  # RFC 7518 3.2: an HS256 key at least as long as the hash


class Unauthenticated(Exception):
    """No usable token: answered 401 with `WWW-Authenticate: Bearer`."""


class Forbidden(Exception):
    """A valid token without the scope the route needs: answered 403."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller, as its token says."""

    subject: str
    customer_id: UUID
    scopes: frozenset[str]
    expires: float = float("inf")  # the token's exp (seconds since the epoch)

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise Forbidden(f"this token lacks the scope {scope!r}")


class TokenVerifier:
    """Checks bearer tokens against one key and algorithm."""

    def __init__(
        self,
        key: Any,
        algorithm: str,
        *,
        issuer: str | None = None,
        audience: str | None = None,
        leeway: float = 0,
        max_lifetime: int = DEFAULTS.jwt_max_lifetime,
        remembered: int = DEFAULTS.verified_tokens,
    ) -> None:
        self._key = key
        self.algorithm = algorithm
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway
        self.max_lifetime = max_lifetime
        self._remembered = remembered
        self._options: Any = {"require": ["exp", "sub"], "verify_aud": audience is not None}
        # tokens already verified, until they expire: a client sends the same token with every
        # request, and checking it again costs more than the rest of the route's own work
        self._verified: dict[str, tuple[Principal, float]] = {}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TokenVerifier:
        """The verifier of `Settings.from_environ(environ)` (the process's environment by default)."""
        return cls.from_settings(Settings.from_environ() if environ is None else Settings.from_environ(environ))

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenVerifier:
        """From the secret (HS256) or the PEM public key file (RS256 for an RSA key, ES256 for a
        P-256 key), with the issuer, audience and maximum lifetime. Raises ConfigurationError when
        neither or both keys are set, or a key is unusable: the service does not start without a
        way to check tokens."""
        secret, key_file = settings.jwt_secret, settings.jwt_public_key
        options = {
            "issuer": settings.jwt_issuer,
            "audience": settings.jwt_audience,
            "max_lifetime": settings.jwt_max_lifetime,
            "remembered": settings.verified_tokens,
        }
        if secret and key_file:
            raise ConfigurationError(f"set one of {SECRET_ENV} and {PUBLIC_KEY_ENV}, not both")
        if secret:
            return cls.hs256(secret, **options)
        if key_file:
            return cls.public_key(Path(key_file).read_bytes(), **options)
        raise ConfigurationError(
            f"no way to check tokens: set {SECRET_ENV} (HS256, at least 32 bytes) or "
            f"{PUBLIC_KEY_ENV} (a PEM file with an RSA or P-256 public key)"
        )

    @classmethod
    def hs256(cls, secret: str | bytes, **options: Any) -> TokenVerifier:
        key = secret.encode() if isinstance(secret, str) else secret
        if len(key) < MIN_SECRET_BYTES:
            raise ConfigurationError(f"the HS256 secret must be at least {MIN_SECRET_BYTES} bytes, got {len(key)}")
        return cls(key, "HS256", **options)

    @classmethod
    def public_key(cls, pem: bytes, **options: Any) -> TokenVerifier:
        try:
            key = load_pem_public_key(pem)
        except ValueError as exc:
            raise ConfigurationError(f"the JWT public key is not a PEM public key: {exc}") from None
        if isinstance(key, rsa.RSAPublicKey):
            if key.key_size < 2048:
                raise ConfigurationError(f"the RSA key has {key.key_size} bits; at least 2048 are needed")
            return cls(key, "RS256", **options)
        if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
            return cls(key, "ES256", **options)
        raise ConfigurationError("the JWT public key must be RSA (RS256) or EC P-256 (ES256)")

    def verify(self, authorization: str | None) -> Principal:
        """The principal of an `Authorization: Bearer <token>` header; raises Unauthenticated."""
        if not authorization:
            raise Unauthenticated("an Authorization: Bearer token is required")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
        verified = self._verified.get(token)
        if verified is not None and time.time() < verified[1]:
            return verified[0]
        principal, expires = self._decode(token)
        if len(self._verified) >= self._remembered:
            del self._verified[next(iter(self._verified))]  # the oldest
        self._verified[token] = (principal, expires)
        return principal

    def _decode(self, token: str) -> tuple[Principal, float]:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[self.algorithm],
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
                options=self._options,
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the token has expired") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"the token is not valid: {_reason(exc)}") from None
        subject, customer, scope = claims.get("sub"), claims.get("customer_id"), claims.get("scope", "")
        if not isinstance(subject, str) or not subject:
            raise Unauthenticated("the token's sub claim must be a non-empty string")
        try:
            customer_id = UUID(customer) if isinstance(customer, str) else None
        except ValueError:
            customer_id = None
        if customer_id is None:
            raise Unauthenticated("the token's customer_id claim must be a UUID")
        if not isinstance(scope, str):
            raise Unauthenticated("the token's scope claim must be a space-separated string")
        try:
            expires = float(claims["exp"]) + self._leeway  # accepted until then
            # PyJWT has refused an iat in the future, so the token is good for at most its lifetime
            lifetime = float(claims["exp"]) - (float(claims["iat"]) if "iat" in claims else time.time())
        except (OverflowError, ValueError, TypeError):
            raise Unauthenticated("the token's exp or iat claim is not a usable time") from None
        if lifetime > self.max_lifetime:
            raise Unauthenticated(
                f"the token's lifetime is longer than the {self.max_lifetime} seconds this service accepts"
            )
        return Principal(subject, customer_id, frozenset(scope.split()), expires), expires


def _reason(exc: jwt.InvalidTokenError) -> str:
    """PyJWT's message, which names the failed check and never the token or key."""
    text = str(exc) or type(exc).__name__
    return text[:200]


def issue_token(
    secret: str | bytes,
    *,
    subject: str,
    customer_id: UUID | str,
    scope: str = READ_SCOPE,
    ttl_seconds: int = 3600,
    issuer: str | None = None,
    audience: str | None = None,
    now: float | None = None,
) -> str:
    """An HS256 token for a customer (demos, tests, scripts against a service with a shared secret)."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "sub": subject,
        "customer_id": str(customer_id),
        "scope": scope,
        "iat": issued,
        "exp": issued + ttl_seconds,
    }
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm="HS256")
