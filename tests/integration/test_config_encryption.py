"""Sensitive agent configs, encrypted in the client: the database holds ciphertext and key ids only."""

from __future__ import annotations

from typing import Any

import psycopg
import pydantic
import pytest

from optiinfra_store import Store
from optiinfra_store.crypto.secrets import SecretKeys
from optiinfra_store.enums import AgentType
from optiinfra_store.errors import ConfigurationError, InvalidArgument, InvalidData, SecretKeyError
from optiinfra_store.records import AgentConfigCreate, AgentCreate
from tests.unit.test_config_values import MARKER, REVEAL, dumps, said

SECRET = "sk-live-0123456789"

NONCE_BYTES = 12
"""A stored ciphertext is the AES-GCM nonce (96 bits) followed by the sealed value."""


@pytest.fixture
async def keyed(clean_dsn):
    async with Store.connect(clean_dsn, secret_key="key-one") as store:
        yield store


@pytest.fixture
async def keyless(clean_dsn):
    async with Store.connect(clean_dsn, secret_key=None) as store:
        yield store


def stored(dsn: str, config_id) -> tuple[str | None, bytes | None, str | None]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT config_value, config_secret, secret_key_id FROM agent_configs WHERE id = %s", (config_id,)
        ).fetchone()


def pgcrypto_value(dsn: str, agent_id, key: str, *, config_type: str = "string", options: str = "") -> None:
    """A sensitive entry as migration 0008's store wrote it: encrypted by the server with pgcrypto,
    under 'key-one' sent to it. Skips the test on a server without pgcrypto."""
    with psycopg.connect(dsn) as conn:
        if conn.execute("SELECT FROM pg_extension WHERE extname = 'pgcrypto'").fetchone() is None:
            pytest.skip("this server has no pgcrypto: no values of that era can be made")
        conn.execute(
            "INSERT INTO agent_configs (agent_id, config_key, config_type, config_secret, is_sensitive) VALUES "
            "(%s, %s, %s, pgp_sym_encrypt_bytea(convert_to(%s, 'UTF8'), 'key-one', %s), true)",
            (agent_id, key, config_type, SECRET, options),
        )


def everything(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT * FROM agent_configs ORDER BY id").fetchall()


async def test_sensitive_value__encrypted_in_the_client_read_decrypted(keyed, clean_dsn, agent):
    config = await keyed.agent_configs.set(agent.id, "api_key", SECRET, is_sensitive=True)
    assert (config.config_value, config.is_encrypted) == (SECRET, True)
    text, secret, key_id = stored(clean_dsn, config.id)
    assert text is None and SECRET.encode() not in bytes(secret) and key_id == SecretKeys(["key-one"]).newest_id
    assert await keyed.agent_configs.get(config.id) == config
    assert await keyed.agent_configs.get_value(agent.id, "api_key") == SECRET
    assert [c.config_value for c in await keyed.agent_configs.list(agent_id=agent.id)] == [SECRET]
    assert SECRET not in repr(config) and "key-one" not in repr(SecretKeys(["key-one"]))


async def test_same_value_twice__different_ciphertexts(keyed, clean_dsn, agent):
    first = await keyed.agent_configs.set(agent.id, "a", SECRET, is_sensitive=True)
    second = await keyed.agent_configs.set(agent.id, "b", SECRET, is_sensitive=True)
    assert stored(clean_dsn, first.id)[1] != stored(clean_dsn, second.id)[1]


async def test_encryption__a_fresh_nonce_every_time(keyed, clean_dsn, agent):
    # GCM under one key with a repeated nonce gives away the XOR of two plaintexts and lets tags be
    # forged; whole ciphertexts cannot show it (the associated data differs between entries), the
    # nonces can: the same value set twice on the same entry, and on another entry
    config = await keyed.agent_configs.set(agent.id, "api_key", SECRET, is_sensitive=True)
    first = bytes(stored(clean_dsn, config.id)[1])
    await keyed.agent_configs.set(agent.id, "api_key", SECRET, is_sensitive=True)
    second = bytes(stored(clean_dsn, config.id)[1])
    other = await keyed.agent_configs.set(agent.id, "other_key", SECRET, is_sensitive=True)
    third = bytes(stored(clean_dsn, other.id)[1])
    assert len({first[:NONCE_BYTES], second[:NONCE_BYTES], third[:NONCE_BYTES]}) == 3
    keys = SecretKeys(["key-one"])
    nonces = {keys.encrypt(SECRET, agent.id, "api_key", "string")[0][:NONCE_BYTES] for _ in range(1000)}
    assert len(nonces) == 1000


async def test_plain_value__stays_text_with_a_key(keyed, clean_dsn, agent):
    config = await keyed.agent_configs.set(agent.id, "region", "eu-west-1")
    assert stored(clean_dsn, config.id) == ("eu-west-1", None, None) and not config.is_encrypted


async def test_sensitivity_is_sticky__a_later_plain_set_is_still_encrypted(keyed, clean_dsn, agent):
    await keyed.agent_configs.set(agent.id, "api_key", SECRET, is_sensitive=True)
    again = await keyed.agent_configs.set(agent.id, "api_key", "rotated-secret")
    assert again.is_sensitive and again.is_encrypted and again.config_value == "rotated-secret"
    assert stored(clean_dsn, again.id)[0] is None


async def test_without_a_key__sensitive_writes_refused_before_anything_is_sent(keyless, keyed, clean_dsn, agent):
    with pytest.raises(SecretKeyError, match="secret key"):
        await keyless.agent_configs.set(agent.id, "api_key", SECRET, is_sensitive=True)
    with pytest.raises(SecretKeyError):
        await keyless.agent_configs.create(
            AgentConfigCreate(
                agent_id=agent.id,
                config_key="api_key",
                config_value=SECRET,
                is_sensitive=True,
            )
        )
    assert everything(clean_dsn) == []
    config = await keyed.agent_configs.set(agent.id, "api_key", SECRET, is_sensitive=True)
    before = everything(clean_dsn)
    with pytest.raises(SecretKeyError):  # sticky: a plain overwrite of a sensitive key is refused too
        await keyless.agent_configs.set(agent.id, "api_key", "overwritten")
    with pytest.raises(SecretKeyError):
        await keyless.agent_configs.get(config.id)
    with pytest.raises(SecretKeyError):
        await keyless.agent_configs.list(agent_id=agent.id)
    assert everything(clean_dsn) == before
    assert await keyed.agent_configs.get_value(agent.id, "api_key") == SECRET


async def test_wrong_key__reads_overwrites_and_rotation_refused_value_intact(keyed, clean_dsn, agent):
    config = await keyed.agent_configs.set(agent.id, "api_key", SECRET, is_sensitive=True)
    before = everything(clean_dsn)
    async with Store.connect(clean_dsn, secret_key="key-two") as wrong:
        with pytest.raises(SecretKeyError, match="does not hold"):
            await wrong.agent_configs.get(config.id)
        with pytest.raises(SecretKeyError):
            await wrong.agent_configs.set(agent.id, "api_key", "x", is_sensitive=True)
        with pytest.raises(SecretKeyError):
            await wrong.agent_configs.set(agent.id, "api_key", "x")
        with pytest.raises(SecretKeyError):
            await wrong.agent_configs.rotate_key()
    assert everything(clean_dsn) == before
    assert await keyed.agent_configs.get_value(agent.id, "api_key") == SECRET
    assert await keyed.agent_configs.rotate_key() == 0  # already under the newest key


async def test_ciphertext__bound_to_its_entry(keyed, clean_dsn, agent):
    await keyed.agent_configs.set(agent.id, "a", SECRET, is_sensitive=True)
    other = await keyed.agent_configs.set(agent.id, "b", "another", is_sensitive=True)
    with psycopg.connect(clean_dsn) as conn:  # someone with write access swaps ciphertexts
        conn.execute(
            "UPDATE agent_configs SET config_secret = (SELECT config_secret FROM agent_configs WHERE config_key = 'a') "
            "WHERE config_key = 'b'"
        )
    with pytest.raises(SecretKeyError, match="altered, or it belongs to another entry"):
        await keyed.agent_configs.get(other.id)


async def test_ciphertext__bound_to_its_agent(keyed, clean_dsn, agent):
    # the same key name on two agents: agent 1's ciphertext copied onto agent 2's entry must not
    # decrypt there (agent 2 would read agent 1's secret)
    second = await keyed.agents.create(AgentCreate(type=AgentType.COST, name="Second", version="1.0"))
    source = await keyed.agent_configs.set(agent.id, "api_key", SECRET, is_sensitive=True)
    target = await keyed.agent_configs.set(second.id, "api_key", "second-agent-secret", is_sensitive=True)
    with psycopg.connect(clean_dsn) as conn:
        conn.execute(
            "UPDATE agent_configs AS target SET config_secret = source.config_secret, "
            "secret_key_id = source.secret_key_id FROM agent_configs AS source "
            "WHERE source.agent_id = %s AND source.config_key = 'api_key' "
            "AND target.agent_id = %s AND target.config_key = 'api_key'",
            (agent.id, second.id),
        )
    assert stored(clean_dsn, target.id)[1:] == stored(clean_dsn, source.id)[1:]
    for read in (
        lambda: keyed.agent_configs.get(target.id),
        lambda: keyed.agent_configs.get_value(second.id, "api_key"),
        lambda: keyed.agent_configs.list(agent_id=second.id),
    ):
        with pytest.raises(SecretKeyError, match="belongs to another entry") as raised:
            await read()
        assert SECRET not in str(raised.value)


async def test_rotation__new_key_first_then_the_old_key_can_go(clean_dsn, agent):
    async with Store.connect(clean_dsn, secret_key="old") as old:
        for i in range(7):
            await old.agent_configs.set(agent.id, f"k{i}", f"secret-{i}", is_sensitive=True)
        await old.agent_configs.set(agent.id, "plain", "p")
    async with Store.connect(clean_dsn, secret_key=["new", "old"]) as both:
        assert await both.agent_configs.get_value(agent.id, "k3") == "secret-3"  # the old key still reads
        assert await both.agent_configs.pending_rotation() == 7
        assert await both.agent_configs.rotate_key(batch_size=3) == 7
        assert await both.agent_configs.pending_rotation() == 0
    async with Store.connect(clean_dsn, secret_key="new") as new:
        assert [await new.agent_configs.get_value(agent.id, f"k{i}") for i in range(7)] == [
            f"secret-{i}" for i in range(7)
        ]
    async with Store.connect(clean_dsn, secret_key="old") as old:
        with pytest.raises(SecretKeyError):
            await old.agent_configs.get_value(agent.id, "k0")


async def test_rotation__stops_at_a_value_it_cannot_open_and_resumes(clean_dsn, agent):
    async with Store.connect(clean_dsn, secret_key="old") as old:
        for i in range(6):
            await old.agent_configs.set(agent.id, f"k{i}", f"secret-{i}", is_sensitive=True)
    async with Store.connect(clean_dsn, secret_key="lost") as lost:
        await lost.agent_configs.set(agent.id, "orphan", "x", is_sensitive=True)
    async with Store.connect(clean_dsn, secret_key=["new", "old"]) as both:
        with pytest.raises(SecretKeyError, match="orphan"):
            await both.agent_configs.rotate_key(batch_size=1)
        left = await both.agent_configs.pending_rotation()
        assert 1 <= left <= 7  # the batches before the orphan were committed
        orphan = await Store.connect(clean_dsn, secret_key="lost")
        async with orphan:
            await orphan.agent_configs.delete((await orphan.agent_configs.get_by_key(agent.id, "orphan")).id)
        assert await both.agent_configs.rotate_key(batch_size=2) == left - 1
        assert await both.agent_configs.pending_rotation() == 0


async def test_sensitive_text_from_before_a_key__encrypted_by_rotation(keyed, clean_dsn, agent):
    with psycopg.connect(clean_dsn) as conn:
        conn.execute(
            "INSERT INTO agent_configs (agent_id, config_key, config_value, is_sensitive) VALUES (%s, 'old', %s, true)",
            (agent.id, SECRET),
        )
    assert await keyed.agent_configs.get_value(agent.id, "old") == SECRET
    assert await keyed.agent_configs.rotate_key() == 1
    value, secret, key_id = stored(clean_dsn, (await keyed.agent_configs.get_by_key(agent.id, "old")).id)
    assert value is None and secret is not None and key_id is not None
    assert await keyed.agent_configs.get_value(agent.id, "old") == SECRET


async def test_pgcrypto_values__read_and_moved_by_the_client(keyed, clean_dsn, agent):
    pgcrypto_value(clean_dsn, agent.id, "legacy")
    assert await keyed.agent_configs.get_value(agent.id, "legacy") == SECRET
    async with Store.connect(clean_dsn, secret_key="key-two") as wrong:
        with pytest.raises(SecretKeyError, match="pgcrypto"):
            await wrong.agent_configs.get_value(agent.id, "legacy")
    assert await keyed.agent_configs.pending_rotation() == 1
    assert await keyed.agent_configs.rotate_key() == 1
    _, secret, key_id = stored(clean_dsn, (await keyed.agent_configs.get_by_key(agent.id, "legacy")).id)
    assert key_id == SecretKeys(["key-one"]).newest_id and not bytes(secret).startswith(b"\xc3")
    assert await keyed.agent_configs.get_value(agent.id, "legacy") == SECRET


async def test_keys_from_the_environment__newest_first(clean_dsn, agent, monkeypatch):
    async with Store.connect(clean_dsn, secret_key="old") as old:
        await old.agent_configs.set(agent.id, "api_key", SECRET, is_sensitive=True)
    monkeypatch.setenv("OPTIINFRA_SECRET_KEY", "new, old")  # spaces around a key are not part of it
    async with Store.connect(clean_dsn) as both:
        assert await both.agent_configs.get_value(agent.id, "api_key") == SECRET
        assert await both.agent_configs.rotate_key() == 1
    monkeypatch.setenv("OPTIINFRA_SECRET_KEY", "new,,old")
    with pytest.raises(ConfigurationError, match="empty key"):
        Store.connect(clean_dsn)


@pytest.mark.parametrize("bad", ["", [], [""], ["ok", 3], b"bytes", 42])
async def test_secret_key_option__validated(clean_dsn, bad):
    with pytest.raises(InvalidArgument, match="secret"):
        Store.connect(clean_dsn, secret_key=bad)


async def test_ciphertext__bound_to_its_type(keyed, clean_dsn, agent):
    # someone without the key makes a sensitive value read as a number: it must not echo the value
    await keyed.agent_configs.set(agent.id, "api_key", SECRET, is_sensitive=True)
    with psycopg.connect(clean_dsn) as conn:
        conn.execute("UPDATE agent_configs SET config_type = 'number' WHERE config_key = 'api_key'")
    with pytest.raises(SecretKeyError, match="type was altered") as raised:
        await keyed.agent_configs.get_value(agent.id, "api_key")
    assert SECRET not in str(raised.value) and raised.value.__cause__ is None


async def test_pgcrypto_value_read_as_another_type__does_not_echo_it(keyed, clean_dsn, agent):
    # values of the pgcrypto era are not bound to their type: one changed to number must not
    # surface its plaintext in a parse error
    pgcrypto_value(clean_dsn, agent.id, "legacy", config_type="number")
    with pytest.raises(InvalidData, match="does not parse as number") as raised:
        await keyed.agent_configs.get_value(agent.id, "legacy")
    assert SECRET not in str(raised.value) and raised.value.__cause__ is None and raised.value.__context__ is None


async def test_pgcrypto_values_without_integrity_check__refused(keyed, clean_dsn, agent):
    pgcrypto_value(clean_dsn, agent.id, "malleable", options="disable-mdc=1")
    with pytest.raises(SecretKeyError, match="pgcrypto"):
        await keyed.agent_configs.get_value(agent.id, "malleable")


@pytest.mark.parametrize("bad", [" ", "\t\n"])
async def test_blank_secret_key__refused(clean_dsn, bad, monkeypatch):
    with pytest.raises(InvalidArgument, match="non-blank"):
        Store.connect(clean_dsn, secret_key=bad)
    monkeypatch.setenv("OPTIINFRA_SECRET_KEY", f"new,{bad}")
    with pytest.raises(ConfigurationError, match="empty key"):
        Store.connect(clean_dsn)


def told(exc: BaseException) -> str:
    """All that an exception says, through its chain."""
    parts = [said(exc)] if isinstance(exc, pydantic.ValidationError) else [str(exc)]
    while exc is not None:
        parts += [repr(exc), repr(vars(exc))]
        exc = exc.__cause__ or exc.__context__
    return "\n".join(parts)


BAD_SETS = [
    pytest.param(f"{MARKER}\x00", {}, id="nul"),
    pytest.param(f"{MARKER}\ud800", {}, id="lone surrogate"),
    pytest.param(MARKER, {"config_type": "number"}, id="not a number"),
    pytest.param(MARKER, {"config_type": "json"}, id="not json"),
    pytest.param(MARKER, {"config_type": "boolean"}, id="not a boolean"),
    pytest.param(MARKER * 60_000, {}, id="too long"),
    pytest.param([MARKER], {"config_type": "number"}, id="a list as a number"),
    pytest.param({"token": MARKER}, {"config_type": "boolean"}, id="a dict as a boolean"),
    pytest.param(MARKER.encode(), {}, id="bytes"),
]


@pytest.mark.parametrize("value, options", BAD_SETS)
async def test_sensitive_value__refused_without_quoting_it(keyed, clean_dsn, agent, value, options):
    await keyed.agent_configs.set(agent.id, "sticky", "kept", is_sensitive=True)
    before = everything(clean_dsn)
    writes: list[Any] = [
        lambda: keyed.agent_configs.set(agent.id, "api_key", value, is_sensitive=True, **options),
        lambda: keyed.agent_configs.set(agent.id, "sticky", value, **options),  # sensitive as stored
    ]
    if isinstance(value, str):
        fields = {"agent_id": agent.id, "config_key": "api_key", "config_value": value, "is_sensitive": True}
        writes.append(lambda: keyed.agent_configs.create({**fields, **options}))
    for write in writes:
        with pytest.raises((pydantic.ValidationError, InvalidArgument)) as raised:
            await write()
        assert MARKER not in told(raised.value)
    assert everything(clean_dsn) == before


async def test_decrypted_record__no_dump_holds_the_value_unless_revealed(keyed, agent):
    written = await keyed.agent_configs.set(agent.id, "api_key", SECRET, is_sensitive=True)
    read = [
        written,
        await keyed.agent_configs.get(written.id),
        await keyed.agent_configs.get_by_key(agent.id, "api_key"),
        *await keyed.agent_configs.list(agent_id=agent.id),
    ]
    for config in read:
        assert [form for form, text in dumps(config).items() if SECRET in text] == []
        assert config.config_value == SECRET
        assert config.model_dump(context=REVEAL)["config_value"] == SECRET
    assert await keyed.agent_configs.get_value(agent.id, "api_key") == SECRET
