"""Keys and plaintexts never reach the server: on a server logging every statement with its
parameters (log_statement = 'all', set for the database), and every error with its statement, the
log holds no key and no sensitive value after every kind of config call, refused ones included."""

from __future__ import annotations

import pytest

from optiinfra_store import Store
from optiinfra_store.enums import AgentType
from optiinfra_store.errors import SecretKeyError
from optiinfra_store.records import AgentConfigCreate, AgentCreate
from tests.pg import private_embedded_server

KEYS = {"old": "old-key-Quokka-4711", "new": "new-key-Wombat-0815", "wrong": "wrong-key-Numbat-2342"}
VALUES = ["plaintext-Axolotl-9001", "plaintext-Pangolin-1234", "plaintext-Okapi-5678", "plaintext-Tapir-0042"]


@pytest.fixture
def logged_server():
    with private_embedded_server("optiinfra-logs-") as server:
        dsn = server.get_uri()
        server.psql("ALTER DATABASE postgres SET log_statement = 'all'")
        server.psql("ALTER DATABASE postgres SET log_min_error_statement = 'error'")
        yield dsn, server.log


def forms(text: str) -> list[str]:
    """The ways a string could show in a log: as text, and as the hex of a bytea parameter."""
    return [text, text.encode().hex()]


async def test_server_log__holds_no_key_and_no_plaintext(logged_server):
    dsn, log = logged_server
    async with Store.connect(dsn, secret_key=KEYS["old"]) as old:
        agent = await old.agents.create(AgentCreate(type=AgentType.COST, name="Cost", version="1"))
        created = await old.agent_configs.create(
            AgentConfigCreate(
                agent_id=agent.id,
                config_key="api_key",
                config_value=VALUES[0],
                is_sensitive=True,
            )
        )
        for _ in range(20):
            assert await old.agent_configs.get_value(agent.id, "api_key") == VALUES[0]
        await old.agent_configs.get(created.id)
        await old.agent_configs.list(agent_id=agent.id)
        await old.agent_configs.set(agent.id, "api_key", VALUES[1])  # sticky: still encrypted
        await old.agent_configs.set(agent.id, "token", VALUES[2], is_sensitive=True)
    async with Store.connect(dsn, secret_key=KEYS["wrong"]) as wrong:
        for attempt in (
            wrong.agent_configs.get_value(agent.id, "api_key"),
            wrong.agent_configs.set(agent.id, "api_key", VALUES[3], is_sensitive=True),
            wrong.agent_configs.set(agent.id, "api_key", VALUES[3]),
            wrong.agent_configs.rotate_key(),
        ):
            with pytest.raises(SecretKeyError):
                await attempt
    async with Store.connect(dsn, secret_key=None) as keyless:
        for attempt in (
            keyless.agent_configs.get_value(agent.id, "api_key"),
            keyless.agent_configs.set(agent.id, "api_key", VALUES[3]),
            keyless.agent_configs.set(agent.id, "fresh", VALUES[3], is_sensitive=True),
        ):
            with pytest.raises(SecretKeyError):
                await attempt
    async with Store.connect(dsn, secret_key=[KEYS["new"], KEYS["old"]]) as both:
        assert await both.agent_configs.rotate_key(batch_size=1) == 2
        assert await both.agent_configs.get_value(agent.id, "token") == VALUES[2]

    text = log.read_text(errors="replace")
    assert "agent_configs" in text and "parameters: $1" in text  # the log did record statements and parameters
    assert "SecretKeyError" not in text
    for secret in [*KEYS.values(), *VALUES]:
        for form in forms(secret):
            assert form not in text, f"{secret!r} reached the server log"
