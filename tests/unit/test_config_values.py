"""Config values in validation errors, in the errors of their encryption and decryption, and in
dumps: error trackers and structured logs serialise all of them, so a value appears in no error,
and a sensitive value in no dump unless the caller asks for it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pydantic
import pytest

from optiinfra_store.crypto.secrets import SecretKeys, _associated, _derive
from optiinfra_store.enums import ConfigType
from optiinfra_store.errors import InvalidArgument, InvalidData, SecretKeyError
from optiinfra_store.records import AgentConfig, AgentConfigCreate

MARKER = "MARKER-sk-live-7f3a"
"""Stands for the secret: distinctive, so finding it anywhere is a leak."""

REVEAL = {"reveal_secrets": True}

BAD_VALUES = [
    pytest.param(f"{MARKER}\x00", "string", id="nul"),
    pytest.param(f"{MARKER}\ud800", "string", id="lone surrogate"),
    pytest.param(MARKER, "number", id="not a number"),
    pytest.param(MARKER * 60, "number", id="number too long"),
    pytest.param(MARKER, "json", id="not json"),
    pytest.param(MARKER, "boolean", id="not a boolean"),
    pytest.param(MARKER * (1_000_000 // len(MARKER) + 1), "string", id="too long"),
    pytest.param([MARKER], "string", id="a list"),
    pytest.param({"token": MARKER}, "json", id="a dict"),
    pytest.param(MARKER.encode() + b"\xff", "string", id="bytes not utf-8"),
]


def _exception_chain(value: Any) -> Iterator[str]:
    """repr of an exception in an error's context, of its attributes (JSONDecodeError keeps the
    whole document in .doc, UnicodeError the whole text in .object) and of what it chains."""
    while isinstance(value, BaseException):
        yield repr(value)
        yield repr(vars(value))
        value = value.__cause__ or value.__context__


def said(exc: pydantic.ValidationError) -> str:
    """Everything a validation error shows or serialises."""
    forms = [
        str(exc),
        repr(exc),
        exc.json(),
        json.dumps(exc.errors(), default=repr),
        json.dumps(exc.errors(), default=str),
        json.dumps(exc.errors(include_url=False), default=repr),
    ]
    for error in exc.errors():
        for value in (error.get("ctx") or {}).values():
            forms.append(repr(value))
            forms.extend(_exception_chain(value))
    return "\n".join(forms)


def config_fields(value: Any, config_type: str, **extra: Any) -> dict[str, Any]:
    fields = {
        "agent_id": uuid4(),
        "config_key": "api_key",
        "config_type": config_type,
        "config_value": value,
        "is_sensitive": True,
    }
    return {**fields, **extra}


def record_fields(sensitive: bool) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "id": uuid4(),
        "agent_id": uuid4(),
        "config_key": "api_key",
        "config_value": MARKER,
        "config_type": ConfigType.STRING,
        "description": None,
        "is_sensitive": sensitive,
        "is_encrypted": sensitive,
        "created_at": now,
        "updated_at": now,
    }


@pytest.mark.parametrize("value, config_type", BAD_VALUES)
def test_agent_config_create__bad_value_not_in_any_form_of_the_error(value, config_type):
    fields = config_fields(value, config_type)
    for build in (lambda: AgentConfigCreate(**fields), lambda: AgentConfigCreate.model_validate(fields)):
        with pytest.raises(pydantic.ValidationError) as raised:
            build()
        assert MARKER not in said(raised.value)
        assert [e["loc"] for e in raised.value.errors()] == [("config_value",)]


@pytest.mark.parametrize("value, config_type", [p for p in BAD_VALUES if "bytes" not in p.id])
def test_agent_config_create__bad_value_in_a_json_document_not_in_the_error(value, config_type):
    document = json.dumps(config_fields(value, config_type), default=str)
    with pytest.raises(pydantic.ValidationError) as raised:
        AgentConfigCreate.model_validate_json(document)
    assert MARKER not in said(raised.value)


def test_agent_config_create__a_document_that_is_not_json_not_quoted():
    # pydantic's json_invalid error carries the whole document as its input
    document = json.dumps(config_fields(MARKER, "string"), default=str)[:-1]
    with pytest.raises(pydantic.ValidationError, match="Invalid JSON") as raised:
        AgentConfigCreate.model_validate_json(document)
    assert MARKER not in said(raised.value)


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"config_key": "api_key", "config_value": MARKER, "is_sensitive": True}, id="agent_id missing"),
        pytest.param(config_fields(MARKER, "string", agent_id="not-a-uuid"), id="bad agent_id"),
        pytest.param(config_fields(MARKER, "secret"), id="bad config_type"),
        pytest.param(config_fields(MARKER, "string", config_key=""), id="blank key"),
        pytest.param(config_fields("x", "string", config_valeu=MARKER), id="misspelt field"),
    ],
)
def test_agent_config_create__another_field_wrong_the_value_not_in_the_error(fields):
    """Errors of other fields: `missing` quotes the whole input, extra_forbidden the extra value."""
    with pytest.raises(pydantic.ValidationError) as raised:
        AgentConfigCreate.model_validate(fields)
    assert MARKER not in said(raised.value)


def test_agent_config_create__a_plain_value_is_not_quoted_either():
    # whether a key is sensitive may be stored, not given: set() of a key stored as sensitive
    # validates its value before it reads that
    with pytest.raises(pydantic.ValidationError) as raised:
        AgentConfigCreate(**config_fields(MARKER, "number", is_sensitive=False))
    assert MARKER not in said(raised.value)


def test_agent_config_record__bad_value_not_in_the_error():
    fields = {**record_fields(True), "config_value": [MARKER]}
    with pytest.raises(pydantic.ValidationError) as raised:
        AgentConfig.model_validate(fields)
    assert MARKER not in said(raised.value)


def dumps(model: pydantic.BaseModel) -> dict[str, str]:
    return {
        "model_dump()": repr(model.model_dump()),
        "model_dump(mode='json')": repr(model.model_dump(mode="json")),
        "model_dump_json()": model.model_dump_json(),
        "dict()": repr(dict(model)),
        "repr()": repr(model),
        "str()": str(model),
        "a list of it": pydantic.TypeAdapter(list[type(model)]).dump_json([model]).decode(),
    }


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: AgentConfig.from_row(record_fields(True)), id="record"),
        pytest.param(lambda: AgentConfig.model_validate(record_fields(True)), id="validated record"),
        pytest.param(lambda: AgentConfigCreate(**config_fields(MARKER, "string")), id="create"),
    ],
)
def test_sensitive_config__no_dump_holds_the_value_unless_revealed(build):
    config = build()
    leaked = [form for form, text in dumps(config).items() if MARKER in text]
    assert leaked == []
    assert config.config_value == MARKER  # reading the field is asking for it
    assert config.model_dump(context=REVEAL)["config_value"] == MARKER
    assert config.model_dump(mode="json", context=REVEAL)["config_value"] == MARKER
    assert json.loads(config.model_dump_json(context=REVEAL))["config_value"] == MARKER


def test_plain_config__dumps_hold_the_value():
    config = AgentConfig.model_validate(record_fields(False))
    assert all(MARKER in text for text in dumps(config).values())


def test_secret_keys__a_lone_surrogate_is_refused_without_quoting_it():
    keys = SecretKeys(["key-one"])
    with pytest.raises(InvalidArgument, match="surrogate") as raised:
        keys.encrypt(f"{MARKER}\ud800", uuid4(), "api_key", "string")
    assert MARKER not in "".join(_exception_chain(raised.value))


def test_secret_keys__a_value_that_decrypts_to_bytes_not_utf8_is_not_quoted():
    # made by someone holding the key, not by the store (which encrypts UTF-8 only)
    keys = SecretKeys(["key-one"])
    agent_id = uuid4()
    blob, key_id = keys.encrypt(MARKER, agent_id, "api_key", "string")
    nonce = blob[:12]
    sealed = _derive("key-one")[1].encrypt(nonce, MARKER.encode() + b"\xff", _associated(agent_id, "api_key", "string"))
    with pytest.raises(InvalidData, match="not UTF-8") as raised:
        keys.decrypt(nonce + sealed, key_id, agent_id, "api_key", "string")
    assert MARKER not in "".join(_exception_chain(raised.value))
    with pytest.raises(SecretKeyError):  # and a value that does not decrypt still says so
        keys.decrypt(nonce + sealed[:-1], key_id, agent_id, "api_key", "string")
