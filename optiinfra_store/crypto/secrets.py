"""Sensitive config values, encrypted and decrypted in the client: neither a key nor a plaintext
ever reaches the server (nor, so, its logs).

A secret key is any non-empty string. The encryption key is derived from it with scrypt (a
standard, memory-hard KDF, so a guessable string still costs an attacker dearly), and values are
sealed with AES-256-GCM: a fresh 96-bit nonce per value, and the entry's agent and config key as
associated data, so a ciphertext copied onto another entry does not decrypt. Each ciphertext is
stored with the id of the key that made it (16 hex digits derived from the key, which reveal
nothing of it), so several keys can be live while values move from one to the next: a store
holds its keys newest first, encrypts with the newest and decrypts with any.

Values that pgcrypto encrypted on the server (before migration 0011) are decrypted here too,
with the same key strings (see `legacy_pgp`), until `rotate_key` has moved them.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Sequence
from functools import lru_cache
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from optiinfra_store.crypto import legacy_pgp
from optiinfra_store.errors import ConfigurationError, InvalidArgument, InvalidData, SecretKeyError

SECRET_KEY_ENV = "OPTIINFRA_SECRET_KEY"
"""Keys, newest first, separated by commas (a key given here cannot contain a comma)."""

_SALT = b"optiinfra-store/agent-configs/v1"
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**15, 8, 1
_NONCE_BYTES = 12


@lru_cache(maxsize=32)
def _derive(secret: str) -> tuple[str, AESGCM]:
    """(key id, cipher) of one key string; scrypt takes about 0.1 s, so each is derived once."""
    material = Scrypt(salt=_SALT, length=64, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P).derive(secret.encode("utf-8"))
    key_id = hmac.new(material[32:], b"key id", hashlib.sha256).hexdigest()[:16]
    return key_id, AESGCM(material[:32])


def _utf8(text: str) -> bytes:
    """`text` as UTF-8; InvalidArgument for a lone surrogate."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        pass  # raised below, outside the handler: a chained UnicodeEncodeError would hold the text
    raise InvalidArgument("a sensitive config value must be valid Unicode: a lone surrogate cannot be stored")


def _plaintext(data: bytes, where: str) -> str:
    """A decrypted value as text; InvalidData if it is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass  # raised below, outside the handler: a chained UnicodeDecodeError would hold the plaintext
    raise InvalidData(f"{where} decrypts to bytes that are not UTF-8 text")


def _associated(agent_id: UUID, config_key: str, config_type: str) -> bytes:
    """What a ciphertext is bound to: its entry, and the type its value is read as."""
    return b"optiinfra agent config\x00" + agent_id.bytes + config_type.encode() + b"\x00" + config_key.encode("utf-8")


class SecretKeys:
    """The keys a store holds, newest first. Never printed: repr shows only their ids."""

    __slots__ = ("_secrets", "_ciphers", "newest_id")

    def __init__(self, secrets: Sequence[str]) -> None:
        if not secrets or not all(isinstance(s, str) and s.strip() for s in secrets):
            raise InvalidArgument("secret keys must be non-blank strings, newest first")
        self._secrets = tuple(dict.fromkeys(secrets))  # the key strings, for pgcrypto-era values
        self._ciphers = dict(_derive(secret) for secret in self._secrets)
        self.newest_id = next(iter(self._ciphers))
        """The id of the key new values are encrypted with."""

    @classmethod
    def from_option(cls, value: str | Sequence[str] | None) -> SecretKeys | None:
        """`Store.connect(secret_key=...)`: one key, a list newest first, or None for
        `$OPTIINFRA_SECRET_KEY` (unset or empty: no key)."""
        if value is None:
            text = os.environ.get(SECRET_KEY_ENV, "")
            if not text:
                return None
            secrets = [key.strip() for key in text.split(",")]
            if not all(secrets):
                raise ConfigurationError(f"{SECRET_KEY_ENV} holds an empty key: keys are separated by single commas")
            return cls(secrets)
        if isinstance(value, str):
            if not value.strip():
                raise InvalidArgument("secret_key must be a non-blank string, a list of them, or None")
            return cls([value])
        if isinstance(value, Sequence) and value:
            return cls(list(value))
        raise InvalidArgument("secret_key must be a non-blank string, a list of them (newest first), or None")

    @property
    def ids(self) -> list[str]:
        return list(self._ciphers)

    def __repr__(self) -> str:
        return f"SecretKeys(ids={self.ids})"

    def encrypt(self, plaintext: str, agent_id: UUID, config_key: str, config_type: str) -> tuple[bytes, str]:
        """(ciphertext, key id) of `plaintext` under the newest key. Raises InvalidArgument for a
        text that is not Unicode (a lone surrogate)."""
        data = _utf8(plaintext)
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._ciphers[self.newest_id].encrypt(nonce, data, _associated(agent_id, config_key, config_type))
        return nonce + sealed, self.newest_id

    def decrypt(self, ciphertext: bytes, key_id: str | None, agent_id: UUID, config_key: str, config_type: str) -> str:
        """The plaintext of a stored value; SecretKeyError if no key held here opens it, or it was
        altered or moved; InvalidData if it opens to bytes that are not UTF-8 (which only a holder
        of the key can have written). A null `key_id` marks a value pgcrypto encrypted on the
        server: such values predate the binding to their entry, and are accepted only with
        pgcrypto's integrity check."""
        where = f"agent config {config_key!r} of agent {agent_id}"
        if key_id is None:
            return self._decrypt_pgcrypto(ciphertext, where)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise SecretKeyError(
                f"{where} is encrypted with key {key_id}, which this store does not hold (it holds "
                f"{', '.join(self.ids)}): open the store with that key in {SECRET_KEY_ENV} or secret_key="
            )
        try:
            plain = cipher.decrypt(
                ciphertext[:_NONCE_BYTES], ciphertext[_NONCE_BYTES:], _associated(agent_id, config_key, config_type)
            )
        except InvalidTag:
            raise SecretKeyError(
                f"{where} does not decrypt: its ciphertext or type was altered, or it belongs to another entry"
            ) from None
        return _plaintext(plain, where)

    def _decrypt_pgcrypto(self, ciphertext: bytes, where: str) -> str:
        for secret in self._secrets:
            try:
                plain = legacy_pgp.decrypt(ciphertext, secret, require_integrity=True)
            except legacy_pgp.LegacyDecryptError:
                continue
            return _plaintext(plain, where)
        raise SecretKeyError(
            f"{where} was encrypted by pgcrypto with a key this store does not hold: open the store with it"
        )
