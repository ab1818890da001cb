"""Sensitive agent configs encrypted at rest with pgcrypto when the store has a secret key."""

from __future__ import annotations

import psycopg
import pytest

from optiinfra_store import Store
from optiinfra_store.errors import ConfigurationError, InvalidArgument, SecretKeyError

SECRET = "sk-live-0123456789"


@pytest.fixture(scope="session")
def has_pgcrypto(migrated_dsn) -> bool:
    with psycopg.connect(migrated_dsn) as conn:
        return conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pgcrypto'").fetchone()[0] == 1


@pytest.fixture
def pgcrypto(has_pgcrypto):
    if not has_pgcrypto:
        pytest.skip("this server has no pgcrypto (PostgreSQL's contrib modules are not installed)")


@pytest.fixture
async def keyed(clean_dsn, pgcrypto):
    async with Store.connect(clean_dsn, secret_key="key-one") as store:
        yield store


def stored(dsn: str, config_id) -> tuple[str | None, bytes | None]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT config_value, config_secret FROM agent_configs WHERE id = %s", (config_id,)
        ).fetchone()


async def test_sensitive_value__stored_encrypted_read_decrypted(keyed, clean_dsn, agent):
    config = await keyed.agent_configs.set(agent.id, "api_key", SECRET, is_sensitive=True)
    assert (config.config_value, config.is_encrypted) == (SECRET, True)
    text, secret = stored(clean_dsn, config.id)
    assert text is None and secret is not None and SECRET.encode() not in bytes(secret)
    assert await keyed.agent_configs.get(config.id) == config
    assert await keyed.agent_configs.get_value(agent.id, "api_key") == SECRET
    assert [c.config_value for c in await keyed.agent_configs.list(agent.id)] == [SECRET]
    assert SECRET not in repr(config)


async def test_plain_value__stays_text_with_a_key(keyed, clean_dsn, agent):
    config = await keyed.agent_configs.set(agent.id, "region", "eu-west-1")
    assert stored(clean_dsn, config.id) == ("eu-west-1", None) and not config.is_encrypted


async def test_sensitivity_is_sticky__a_later_plain_set_is_still_encrypted(keyed, clean_dsn, agent):
    await keyed.agent_configs.set(agent.id, "api_key", SECRET, is_sensitive=True)
    again = await keyed.agent_configs.set(agent.id, "api_key", "rotated-secret")
    assert again.is_sensitive and again.is_encrypted and again.config_value == "rotated-secret"
    assert stored(clean_dsn, again.id)[0] is None


async def test_without_the_key__reading_or_overwriting_is_a_clear_error(keyed, store, clean_dsn, agent):
    config = await keyed.agent_configs.set(agent.id, "api_key", SECRET, is_sensitive=True)
    before = stored(clean_dsn, config.id)
    with pytest.raises(SecretKeyError, match="encrypted.*OPTIINFRA_SECRET_KEY"):
        await store.agent_configs.get(config.id)
    with pytest.raises(SecretKeyError):
        await store.agent_configs.get_value(agent.id, "api_key")
    with pytest.raises(SecretKeyError):
        await store.agent_configs.list(agent.id)
    with pytest.raises(SecretKeyError, match="overwriting it needs the secret key") as info:
        await store.agent_configs.set(agent.id, "api_key", "plaintext now")
    # refused before the server saw a failing row (whose detail would quote the value)
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert "plaintext now" not in str(info.value)
    assert stored(clean_dsn, config.id) == before


async def test_wrong_key__is_a_clear_error(keyed, clean_dsn, agent):
    config = await keyed.agent_configs.set(agent.id, "api_key", SECRET, is_sensitive=True)
    async with Store.connect(clean_dsn, secret_key="not-the-key") as wrong:
        with pytest.raises(SecretKeyError, match="not the one it was encrypted with"):
            await wrong.agent_configs.get(config.id)


async def test_rotate_key__re_encrypts_and_encrypts_plain_sensitive_values(keyed, store, clean_dsn, agent):
    legacy = await store.agent_configs.set(agent.id, "legacy_token", "plain-secret", is_sensitive=True)
    assert stored(clean_dsn, legacy.id) == ("plain-secret", None)  # written before any key was set
    await keyed.agent_configs.set(agent.id, "api_key", SECRET, is_sensitive=True)
    await keyed.agent_configs.set(agent.id, "region", "eu-west-1")
    assert await keyed.agent_configs.rotate_key("key-two") == 2
    async with Store.connect(clean_dsn, secret_key="key-two") as rotated:
        assert await rotated.agent_configs.get_value(agent.id, "api_key") == SECRET
        assert await rotated.agent_configs.get_value(agent.id, "legacy_token") == "plain-secret"
        assert await rotated.agent_configs.get_value(agent.id, "region") == "eu-west-1"
    with pytest.raises(SecretKeyError):
        await keyed.agent_configs.get_value(agent.id, "api_key")
    assert stored(clean_dsn, legacy.id)[0] is None


async def test_rotate_key__without_the_current_key_changes_nothing(keyed, store, clean_dsn, agent):
    config = await keyed.agent_configs.set(agent.id, "api_key", SECRET, is_sensitive=True)
    before = stored(clean_dsn, config.id)
    with pytest.raises(SecretKeyError):
        await store.agent_configs.rotate_key("key-two")
    with pytest.raises(InvalidArgument):
        await keyed.agent_configs.rotate_key("")
    assert stored(clean_dsn, config.id) == before


async def test_key_without_pgcrypto__a_configuration_error(clean_dsn, has_pgcrypto, agent):
    if has_pgcrypto:
        pytest.skip("this server has pgcrypto")
    async with Store.connect(clean_dsn, secret_key="key-one") as keyed:
        with pytest.raises(ConfigurationError, match="no pgcrypto"):
            await keyed.agent_configs.set(agent.id, "api_key", SECRET, is_sensitive=True)
        assert await keyed.agent_configs.count() == 0


async def test_secret_key__from_the_environment(clean_dsn, monkeypatch, pgcrypto, agent):
    monkeypatch.setenv("OPTIINFRA_SECRET_KEY", "key-env")
    async with Store.connect(clean_dsn) as from_env:
        config = await from_env.agent_configs.set(agent.id, "api_key", SECRET, is_sensitive=True)
    assert config.is_encrypted
    async with Store.connect(clean_dsn, secret_key="key-env") as explicit:
        assert await explicit.agent_configs.get_value(agent.id, "api_key") == SECRET
