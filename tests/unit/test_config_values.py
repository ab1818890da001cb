"""Config values in the errors of their encryption and decryption: error trackers serialise
exceptions, their attributes and what they chain, so the value is in none of them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest

from optiinfra_store.errors import InvalidArgument, InvalidData, SecretKeyError
from optiinfra_store.secrets import SecretKeys, _associated, _derive

MARKER = "MARKER-sk-live-7f3a"
"""Stands for the secret: distinctive, so finding it anywhere is a leak."""


def _exception_chain(value: Any) -> Iterator[str]:
    """repr of an exception in an error's context, of its attributes (JSONDecodeError keeps the
    whole document in .doc, UnicodeError the whole text in .object) and of what it chains."""
    while isinstance(value, BaseException):
        yield repr(value)
        yield repr(vars(value))
        value = value.__cause__ or value.__context__


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
