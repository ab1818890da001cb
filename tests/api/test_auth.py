"""Tokens: 401 for every way a token can be unusable, 403 without the scope, and the verifier's
configuration failing closed."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from optiinfra_store.api import Settings, TokenVerifier
from optiinfra_store.errors import ConfigurationError
from tests.api.conftest import ACME, JWT_SECRET, bearer, running, token

ROUTES = [
    "/api/workflows/history",
    "/api/workflows/f1000000-0000-4000-8000-000000000001/details",
    "/api/workflows/statistics",
    "/api/workflows/performance-metrics",
    "/api/workflows/cost_analysis/history",
    "/api/workflows/trend",
    "/api/workflows/events",
    "/api/me",
]


def claims(**overrides) -> dict:
    now = int(time.time())
    base = {"sub": "ana", "customer_id": ACME, "scope": "workflows:read", "iat": now, "exp": now + 600}
    return {k: v for k, v in {**base, **overrides}.items() if v is not None}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(payload: dict) -> str:
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{b64(json.dumps(payload).encode())}."


def hs256(payload: dict, secret: str = JWT_SECRET) -> str:
    return jwt.encode(payload, secret, algorithm="HS256")


UNUSABLE = {
    "missing": None,
    "empty": "",
    "not bearer": f"Basic {b64(b'ana:secret')}",
    "bearer without token": "Bearer ",
    "garbage": "Bearer not.a.token",
    "expired": f"Bearer {hs256(claims(exp=int(time.time()) - 5))}",
    "no exp": f"Bearer {hs256(claims(exp=None))}",
    "no sub": f"Bearer {hs256(claims(sub=None))}",
    "bad signature": f"Bearer {hs256(claims(), 'another-secret-of-at-least-32-bytes!!')}",
    "alg none": f"Bearer {unsigned(claims())}",
    "alg none, no signature dot": "Bearer " + unsigned(claims())[:-1],
    "no customer": f"Bearer {hs256(claims(customer_id=None))}",
    "customer not a uuid": f"Bearer {hs256(claims(customer_id='acme OR 1=1'))}",
    "scope not a string": f"Bearer {hs256(claims(scope=['workflows:read']))}",
    "longer than a day": f"Bearer {hs256(claims(exp=int(time.time()) + 24 * 3600 + 60))}",
    "exp 10**30, no iat": f"Bearer {hs256(claims(iat=None, exp=10**30))}",
    "issued long ago": f"Bearer {hs256(claims(iat=int(time.time()) - 30 * 24 * 3600))}",
    "tampered payload": None,  # filled below: a valid token with its customer swapped
}
header, _, signature = hs256(claims()).split(".")
UNUSABLE["tampered payload"] = (
    f"Bearer {header}.{b64(json.dumps(claims(customer_id='c1000000-0000-4000-8000-000000000002')).encode())}.{signature}"
)


@pytest.mark.parametrize("case", list(UNUSABLE))
async def test_unusable_tokens_get_401_with_a_bearer_challenge_on_every_route(service, case):
    authorization = UNUSABLE[case]
    headers = {} if authorization is None else {"Authorization": authorization}
    for route in ROUTES:
        response = await service.client.get(route, headers=headers)
        assert response.status_code == 401, (case, route, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer ")
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["status"] == 401 and body["title"] == "Unauthorized"
        assert JWT_SECRET not in response.text


async def test_a_token_without_the_read_scope_gets_403(service):
    for scope in ("", "workflows:write", "workflows:reader admin"):
        for route in ROUTES:
            response = await service.client.get(route, headers=bearer(scope=scope))
            assert response.status_code == 403, (scope, route)
            assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    assert (await service.client.get(ROUTES[0], headers=bearer(scope="admin workflows:read"))).status_code == 200


async def test_issuer_and_audience_are_checked_when_configured(api_store, seeded):
    async with running(api_store, issuer="https://id.example", audience="optiinfra") as service:
        right = bearer(issuer="https://id.example", audience="optiinfra")
        assert (await service.client.get("/api/me", headers=right)).status_code == 200
        for wrong in (
            bearer(),
            bearer(issuer="https://evil.example", audience="optiinfra"),
            bearer(issuer="https://id.example", audience="other"),
        ):
            assert (await service.client.get("/api/me", headers=wrong)).status_code == 401


@pytest.mark.parametrize("kind", ["rsa", "ec"])
async def test_public_key_tokens_and_no_algorithm_confusion(api_store, seeded, tmp_path, kind, monkeypatch):
    private = rsa.generate_private_key(65537, 2048) if kind == "rsa" else ec.generate_private_key(ec.SECP256R1())
    algorithm = "RS256" if kind == "rsa" else "ES256"
    pem = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "key.pem").write_bytes(pem)
    verifier = TokenVerifier.from_env({"OPTIINFRA_JWT_PUBLIC_KEY": str(tmp_path / "key.pem")})
    assert verifier.algorithm == algorithm
    from optiinfra_store.api import create_app

    app = create_app(api_store, verifier)
    import httpx

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            good = jwt.encode(claims(), private, algorithm=algorithm)
            assert (await client.get("/api/me", headers={"Authorization": f"Bearer {good}"})).status_code == 200
            # an HMAC signed with the public key, as if it were a shared secret
            forged = jwt.api_jws.PyJWS()
            forged._algorithms["HS256"].prepare_key = lambda key: key  # PyJWT refuses PEM keys as secrets
            hmac = forged.encode(json.dumps(claims()).encode(), pem, algorithm="HS256")
            assert (await client.get("/api/me", headers={"Authorization": f"Bearer {hmac}"})).status_code == 401
            unsigned_token = unsigned(claims())
            assert (
                await client.get("/api/me", headers={"Authorization": f"Bearer {unsigned_token}"})
            ).status_code == 401


def test_the_verifier_refuses_to_start_without_a_usable_key(tmp_path):
    with pytest.raises(ConfigurationError, match="OPTIINFRA_JWT_SECRET"):
        TokenVerifier.from_env({})
    with pytest.raises(ConfigurationError, match="at least 32 bytes"):
        TokenVerifier.from_env({"OPTIINFRA_JWT_SECRET": "short"})
    with pytest.raises(ConfigurationError, match="not both"):
        TokenVerifier.from_env({"OPTIINFRA_JWT_SECRET": JWT_SECRET, "OPTIINFRA_JWT_PUBLIC_KEY": "k.pem"})
    (tmp_path / "bad.pem").write_bytes(b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    with pytest.raises(ConfigurationError, match="PEM"):
        TokenVerifier.from_env({"OPTIINFRA_JWT_PUBLIC_KEY": str(tmp_path / "bad.pem")})
    weak = rsa.generate_private_key(65537, 1024).public_key()
    (tmp_path / "weak.pem").write_bytes(
        weak.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(ConfigurationError, match="2048"):
        TokenVerifier.from_env({"OPTIINFRA_JWT_PUBLIC_KEY": str(tmp_path / "weak.pem")})


def test_issued_tokens_verify():
    principal = TokenVerifier.hs256(JWT_SECRET).verify(f"Bearer {token(ACME, subject='bo')}")
    assert str(principal.customer_id) == ACME and principal.subject == "bo" and "workflows:read" in principal.scopes


async def test_a_token_verified_before_is_refused_once_it_expires(service):
    expires = int(time.time()) + 2
    headers = {"Authorization": f"Bearer {hs256(claims(exp=expires))}"}
    assert (await service.client.get("/api/me", headers=headers)).status_code == 200
    assert (await service.client.get("/api/me", headers=headers)).status_code == 200  # remembered
    await asyncio.sleep(max(0.0, expires - time.time()) + 0.05)
    expired = await service.client.get("/api/me", headers=headers)
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]


async def test_the_bearer_challenge_is_well_formed(service):
    """RFC 6750: error_description is a quoted-string, so the reason must not break out of it."""
    response = await service.client.get("/api/me", headers={"Authorization": f"Bearer {hs256(claims(exp=None))}"})
    challenge = response.headers["www-authenticate"]
    description = challenge.split('error_description="', 1)[1]
    assert description.endswith('"') and '"' not in description[:-1] and "exp" in description


async def test_an_exp_too_large_for_a_float_is_401_not_500(service):
    response = await service.client.get("/api/me", headers={"Authorization": f"Bearer {hs256(claims(exp=10**400))}"})
    assert response.status_code == 401


async def test_verify__a_token_lives_at_most_the_maximum_lifetime(api_store, seeded):
    now = int(time.time())
    a_day = {"Authorization": f"Bearer {hs256(claims(iat=now, exp=now + 24 * 3600))}"}
    async with running(api_store) as service:  # the default: a day
        assert (await service.client.get("/api/me", headers=a_day)).status_code == 200
    async with running(api_store, max_lifetime=600) as service:
        assert (await service.client.get("/api/me", headers=a_day)).status_code == 401
        refused = await service.client.get("/api/me", headers=bearer(ttl_seconds=601))
        assert refused.status_code == 401 and "600 seconds" in refused.headers["www-authenticate"]
        assert (await service.client.get("/api/me", headers=bearer(ttl_seconds=600))).status_code == 200


def test_verify__the_maximum_lifetime_from_the_environment():
    environ = {"OPTIINFRA_JWT_SECRET": JWT_SECRET}
    assert TokenVerifier.from_env(environ).max_lifetime == 24 * 3600
    assert TokenVerifier.from_env({**environ, "OPTIINFRA_JWT_MAX_LIFETIME": "3600"}).max_lifetime == 3600
    for wrong in ("0", "-5", "1h", "1e9", "٣"):
        with pytest.raises(ConfigurationError, match="OPTIINFRA_JWT_MAX_LIFETIME"):
            TokenVerifier.from_env({**environ, "OPTIINFRA_JWT_MAX_LIFETIME": wrong})


def test_settings__every_token_variable_from_one_reading_and_the_secret_never_in_its_repr():
    settings = Settings.from_environ(
        {
            "OPTIINFRA_JWT_SECRET": JWT_SECRET,
            "OPTIINFRA_JWT_ISSUER": "https://id.example",
            "OPTIINFRA_JWT_AUDIENCE": "",  # empty is unset
            "OPTIINFRA_JWT_MAX_LIFETIME": "3600",
        }
    )
    assert (settings.jwt_secret, settings.jwt_issuer, settings.jwt_audience) == (JWT_SECRET, "https://id.example", None)
    assert settings.jwt_max_lifetime == 3600 and JWT_SECRET not in repr(settings)
    assert Settings.from_environ({}) == Settings()  # the limits are the defaults, whatever the environment
    verifier = TokenVerifier.from_settings(settings)
    assert verifier.algorithm == "HS256" and verifier.max_lifetime == 3600
    with pytest.raises(ConfigurationError, match="OPTIINFRA_JWT_SECRET"):
        TokenVerifier.from_settings(Settings())
