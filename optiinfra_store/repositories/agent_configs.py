"""agent_configs: typed key/value configuration per agent."""

from __future__ import annotations

import builtins
import json
import re
from decimal import Decimal
from typing import Any
from uuid import UUID

from optiinfra_store.crypto.secrets import SECRET_KEY_ENV, SecretKeys
from optiinfra_store.enums import ConfigType
from optiinfra_store.errors import ConcurrentChange, InvalidArgument, InvalidData, NotFound, SecretKeyError
from optiinfra_store.records import AgentConfig, AgentConfigCreate
from optiinfra_store.repositories.base import (
    Repository,
    as_optional_uuid,
    as_uuid,
    check_int,
    check_limit,
    enum_value,
    keyword_filters,
    platform,
    text,
)

ConfigValue = str | int | float | bool | Decimal | dict[str, Any] | list[Any]

_INTEGER = re.compile(r"-?[0-9]+")
_WRITE_ATTEMPTS = 3


def _infer_type(value: Any) -> ConfigType:
    if isinstance(value, bool):
        return ConfigType.BOOLEAN
    if isinstance(value, (int, float, Decimal)):
        return ConfigType.NUMBER
    if isinstance(value, (dict, list)):
        return ConfigType.JSON
    if isinstance(value, str):
        return ConfigType.STRING
    raise InvalidArgument(f"a config value must be str, int, float, bool, dict or list, got {type(value).__name__}")


def _to_text(value: Any, config_type: ConfigType) -> str:
    try:
        return _as_text(value, config_type)
    except (ValueError, RecursionError) as exc:  # an integer too long to print, a document too deep
        if isinstance(exc, InvalidArgument):
            raise
        raise InvalidArgument(f"config value cannot be stored as {config_type.value}: {exc}") from None


def _as_text(value: Any, config_type: ConfigType) -> str:
    """The stored text of `value` as `config_type`; a str is taken as already in that form
    (AgentConfigCreate then checks it parses)."""
    _infer_type(value)  # refuses unsupported Python types
    if isinstance(value, str):
        return value
    if config_type is ConfigType.BOOLEAN:
        if not isinstance(value, bool):
            raise InvalidArgument(f"a boolean config value must be a bool, got {type(value).__name__}")
        return "true" if value else "false"
    if config_type is ConfigType.NUMBER:
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
            raise InvalidArgument(f"a number config value must be an int or float, got {type(value).__name__}")
        return str(value)  # non-finite floats fail AgentConfigCreate's check
    if config_type is ConfigType.JSON:
        try:
            return json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(f"config value is not JSON-serialisable: {exc}") from None
    # string: the natural text of the value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, allow_nan=False)
    return str(value)


def typed_value(config: AgentConfig) -> Any:
    """A config's value as its type: number -> int (integral text) or float, boolean -> bool,
    json -> the parsed document, string -> str."""
    text = config.config_value
    try:
        if config.config_type is ConfigType.NUMBER:
            return int(text) if _INTEGER.fullmatch(text) else float(text)
        if config.config_type is ConfigType.JSON:
            return json.loads(text)
    except ValueError:  # changed behind the store's back
        pass
    else:
        return text == "true" if config.config_type is ConfigType.BOOLEAN else text
    # raised outside the handler, so no chained exception carries the value
    raise InvalidData(
        f"agent config {config.config_key!r} of agent {config.agent_id} does not parse as {config.config_type.value}"
    )


class AgentConfigs(Repository[AgentConfig], table="agent_configs"):
    """With secret keys, sensitive values are encrypted and decrypted here, in the client: the
    server sees only ciphertext. Reading or overwriting an encrypted value without a key that
    opens it raises SecretKeyError, and so does writing a sensitive value without a key: it is
    never sent in clear."""

    delete = platform(Repository.delete)

    @property
    def secret_key_ids(self) -> list[str] | None:
        """The ids of the keys this store holds, newest first (None: no key). An id names a key
        without revealing it; the database stores it beside each ciphertext."""
        return None if self._keys is None else self._keys.ids

    def _one(self, row: Any) -> AgentConfig:
        values = dict(row)
        secret, key_id = values.pop("config_secret"), values.pop("secret_key_id")
        values["is_encrypted"] = secret is not None
        if secret is not None:
            values["config_value"] = self._require_keys(row["agent_id"], row["config_key"]).decrypt(
                secret, key_id, row["agent_id"], row["config_key"], row["config_type"].value
            )
        return AgentConfig.from_row(values)

    def _many(self, rows: Any) -> list[AgentConfig]:
        return [self._one(row) for row in rows]

    def _require_keys(self, agent_id: UUID, config_key: str) -> SecretKeys:
        if self._keys is None:
            raise SecretKeyError(
                f"agent config {config_key!r} of agent {agent_id} is sensitive: reading or writing its value "
                f"needs the secret key (open the store with {SECRET_KEY_ENV} or secret_key=)"
            )
        return self._keys

    @platform
    async def create(self, data: AgentConfigCreate) -> AgentConfig:
        """Insert an entry (a sensitive one encrypted). Raises MissingReference for an unknown
        agent, AlreadyExists (agent_configs_agent_id_config_key_key) for a key the agent already
        has (use `set`), SecretKeyError for a sensitive value and no key."""
        data = AgentConfigCreate.model_validate(data)
        stored = self._stored(data, data.is_sensitive)
        return self._one(await self._db.fetchrow(self._q.insert, *self._q.args("insert", data, **stored)))

    def _stored(self, data: AgentConfigCreate, sensitive: bool) -> dict[str, Any]:
        """How the value is stored, as arguments of the insert and upsert statements beside
        `data`'s fields: as text, or, if sensitive, encrypted (never in clear)."""
        if not sensitive:
            return {"is_sensitive": False, "config_secret": None, "secret_key_id": None}
        secret, key_id = self._require_keys(data.agent_id, data.config_key).encrypt(
            data.config_value, data.agent_id, data.config_key, data.config_type.value
        )
        return {"is_sensitive": True, "config_value": None, "config_secret": secret, "secret_key_id": key_id}

    @platform
    async def set(
        self,
        agent_id: UUID | str,
        key: str,
        value: ConfigValue,
        *,
        config_type: ConfigType | str | None = None,
        description: str | None = None,
        is_sensitive: bool = False,
    ) -> AgentConfig:
        """Insert or replace the agent's value for `key`.

        config_type, when not given, follows the Python type: bool -> boolean, int/float ->
        number, dict/list -> json, str -> string. A description of None keeps the stored one;
        is_sensitive is sticky (once sensitive, a key stays so until deleted), and a sensitive
        value is encrypted before it is sent. Raises MissingReference for an unknown agent,
        SecretKeyError for a sensitive value without a key, or one encrypted under a key this
        store does not hold (checked before anything is written)."""
        kind = (
            _infer_type(value)
            if config_type is None
            else ConfigType(enum_value(config_type, ConfigType, "config_type"))
        )
        data = AgentConfigCreate(
            agent_id=as_uuid(agent_id, "agent_id"),
            config_key=key,
            config_value=_to_text(value, kind),
            config_type=kind,
            description=description,
            is_sensitive=is_sensitive,
        )
        for _ in range(_WRITE_ATTEMPTS):
            state = await self._db.fetchrow(self._q.read_state, data.agent_id, data.config_key)
            was_sensitive = state is not None and state["is_sensitive"]
            stored_secret = None if state is None else state["config_secret"]
            if state is not None and stored_secret is not None:  # overwrite only what a key held here opens
                self._require_keys(data.agent_id, data.config_key).decrypt(
                    stored_secret, state["secret_key_id"], data.agent_id, data.config_key, state["config_type"].value
                )
            stored = self._stored(data, data.is_sensitive or was_sensitive)
            args = self._q.args("upsert", data, **stored, stored_sensitive=was_sensitive, stored_secret=stored_secret)
            row = await self._db.fetchrow(self._q.upsert, *args)
            if row is not None:
                return self._one(row)
        raise ConcurrentChange(
            f"agent config {data.config_key!r} of agent {data.agent_id} kept changing while it was set; try again"
        )

    async def get(self, id: UUID | str) -> AgentConfig:
        """The entry with this id. Raises NotFound, SecretKeyError."""
        key = as_uuid(id)
        return self._found(await self._db.fetchrow(self._q.get_by_id, key), key)

    async def get_by_key(self, agent_id: UUID | str, key: str) -> AgentConfig:
        """The agent's entry for `key`. Raises NotFound, SecretKeyError."""
        agent = as_uuid(agent_id, "agent_id")
        key = text(key, "key")
        row = await self._db.fetchrow(self._q.get_by_key, agent, key)
        if row is None:
            raise NotFound(self.entity, f"{key!r} of agent {agent}")
        return self._one(row)

    async def get_value(self, agent_id: UUID | str, key: str) -> Any:
        """The agent's value for `key`, converted by its config_type. Raises NotFound."""
        return typed_value(await self.get_by_key(agent_id, key))

    @keyword_filters("agent_id", "config_type", "limit")
    async def list(
        self,
        *,
        agent_id: UUID | str | None = None,
        config_type: ConfigType | str | None = None,
        limit: int = 1000,
    ) -> builtins.list[AgentConfig]:
        """Entries by agent, then config_key; optionally of one agent and one type.
        Raises SecretKeyError if one is encrypted and the store has no key that opens it."""
        args = (
            as_optional_uuid(agent_id, "agent_id"),
            enum_value(config_type, ConfigType, "config_type"),
            check_limit(limit),
        )
        return self._many(await self._db.fetch(self._q.list, *args))

    @platform
    async def rotate_key(self, *, batch_size: int = 100) -> int:
        """Encrypt every sensitive value under this store's newest key: values under its older
        keys, values pgcrypto encrypted on the server, and sensitive values kept as text.

        Each batch of `batch_size` entries is one short transaction, decrypted and re-encrypted
        here; an interrupted rotation resumes where it stopped when called again. Returns how
        many entries were written. Open a store with the new key first in its list (e.g.
        `secret_key=[new, old]`), rotate, then drop the old key. Raises SecretKeyError, after the
        batches before it, for a value no key of this store opens."""
        check_int(batch_size, "batch_size", 1, 10_000)
        keys = self._keys
        if keys is None:
            raise SecretKeyError(f"rotating needs the secret keys, newest first ({SECRET_KEY_ENV} or secret_key=)")
        written = 0
        while True:
            async with self._db.transaction() as tx:
                rows = await tx.fetch(self._q.rotation_batch, keys.newest_id, batch_size)
                if not rows:
                    return written
                secrets = []
                for row in rows:
                    entry = (row["agent_id"], row["config_key"], row["config_type"].value)
                    plain = row["config_value"]
                    if row["config_secret"] is not None:
                        plain = keys.decrypt(row["config_secret"], row["secret_key_id"], *entry)
                    secrets.append(keys.encrypt(plain, *entry)[0])
                await tx.execute(self._q.rotation_write, [row["id"] for row in rows], secrets, keys.newest_id)
            written += len(rows)

    async def pending_rotation(self) -> int:
        """How many sensitive entries are not yet encrypted under this store's newest key (all of
        them without a key)."""
        pending: int = await self._db.fetchval(
            self._q.rotation_pending, None if self._keys is None else self._keys.newest_id
        )
        return pending
