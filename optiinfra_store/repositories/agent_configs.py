"""agent_configs: typed key/value configuration per agent."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any
from uuid import UUID

from optiinfra_store.enums import ConfigType
from optiinfra_store.errors import ConstraintViolation, InvalidArgument, NotFound, SecretKeyError
from optiinfra_store.records import AgentConfig, AgentConfigCreate
from optiinfra_store.repositories.base import (
    platform,
    Executor, Repository, as_optional_uuid, as_uuid, check_limit, enum_value, insert_args, text,
)

ConfigValue = str | int | float | bool | Decimal | dict[str, Any] | list[Any]

_INTEGER = re.compile(r"-?[0-9]+")


def _infer_type(value: Any) -> ConfigType:
    if isinstance(value, bool):
        return ConfigType.BOOLEAN
    if isinstance(value, (int, float, Decimal)):
        return ConfigType.NUMBER
    if isinstance(value, (dict, list)):
        return ConfigType.JSON
    if isinstance(value, str):
        return ConfigType.STRING
    raise InvalidArgument(
        f"a config value must be str, int, float, bool, dict or list, got {type(value).__name__}"
    )


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
    if config.config_type is ConfigType.NUMBER:
        return int(text) if _INTEGER.fullmatch(text) else float(text)
    if config.config_type is ConfigType.BOOLEAN:
        return text == "true"
    if config.config_type is ConfigType.JSON:
        return json.loads(text)
    return text


class AgentConfigs(Repository[AgentConfig]):
    """With a secret key, sensitive values are written encrypted (pgcrypto) and read decrypted;
    without one, reading or overwriting an encrypted value raises SecretKeyError."""

    table = "agent_configs"
    entity = "agent config"
    record_type = AgentConfig

    delete = platform(Repository.delete)

    def __init__(self, executor: Executor, customer_id: UUID | None = None, secret_key: str | None = None) -> None:
        super().__init__(executor, customer_id)
        self._key = secret_key

    def _one(self, row: Any) -> AgentConfig:
        if row["config_value"] is None:
            raise SecretKeyError(
                f"agent config {row['config_key']!r} of agent {row['agent_id']} is encrypted: "
                "open the store with its secret key (OPTIINFRA_SECRET_KEY)"
            )
        return AgentConfig.from_row(row)

    def _many(self, rows: Any) -> list[AgentConfig]:
        return [self._one(row) for row in rows]

    async def _write(self, plain: str, encrypted: str, data: AgentConfigCreate) -> AgentConfig:
        args = insert_args(data)
        if self._key is None:
            row = await self._fetchrow(plain, *args)
        else:
            row = await self._fetchrow(encrypted, *args, self._key)
        if row is None:  # the plain upsert leaves an encrypted entry alone, before any value is written
            raise SecretKeyError(
                f"agent config {data.config_key!r} of agent {data.agent_id} is stored encrypted: "
                "overwriting it needs the secret key (OPTIINFRA_SECRET_KEY)"
            )
        return self._one(row)

    @platform
    async def create(self, data: AgentConfigCreate) -> AgentConfig:
        """Insert an entry. Raises MissingReference for an unknown agent, AlreadyExists
        (agent_configs_agent_id_config_key_key) for a key the agent already has: use `set`."""
        return await self._write(self._q.insert, self._q.insert_encrypted, AgentConfigCreate.model_validate(data))

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
        """Insert or replace the agent's value for `key`, in one statement.

        config_type, when not given, follows the Python type: bool -> boolean, int/float ->
        number, dict/list -> json, str -> string. A description of None keeps the stored one;
        is_sensitive is sticky (once sensitive, a key stays so until deleted).
        Raises MissingReference for an unknown agent."""
        kind = _infer_type(value) if config_type is None else ConfigType(enum_value(config_type, ConfigType, "config_type"))
        data = AgentConfigCreate(
            agent_id=as_uuid(agent_id, "agent_id"), config_key=key, config_value=_to_text(value, kind),
            config_type=kind, description=description, is_sensitive=is_sensitive,
        )
        return await self._write(self._q.upsert, self._q.upsert_encrypted, data)

    async def get(self, id: UUID | str) -> AgentConfig:
        """The entry with this id. Raises NotFound, SecretKeyError."""
        key = as_uuid(id)
        if self._key is None:
            row = await self._fetchrow(self._q.get_by_id, key)
        else:
            row = await self._fetchrow(self._q.get_by_id_encrypted, key, self._key)
        return self._found(row, key)

    async def get_by_key(self, agent_id: UUID | str, key: str) -> AgentConfig:
        """The agent's entry for `key`. Raises NotFound, SecretKeyError."""
        agent = as_uuid(agent_id, "agent_id")
        key = text(key, "key")
        if self._key is None:
            row = await self._fetchrow(self._q.get_by_key, agent, key)
        else:
            row = await self._fetchrow(self._q.get_by_key_encrypted, agent, key, self._key)
        if row is None:
            raise NotFound(self.entity, f"{key!r} of agent {agent}")
        return self._one(row)

    async def get_value(self, agent_id: UUID | str, key: str) -> Any:
        """The agent's value for `key`, converted by its config_type. Raises NotFound."""
        return typed_value(await self.get_by_key(agent_id, key))

    async def list(
        self,
        agent_id: UUID | str | None = None,
        config_type: ConfigType | str | None = None,
        limit: int = 1000,
    ) -> list[AgentConfig]:
        """Entries by agent, then config_key; optionally of one agent and one type.
        Raises SecretKeyError if one is encrypted and the store has no key."""
        args = (as_optional_uuid(agent_id, "agent_id"), enum_value(config_type, ConfigType, "config_type"), check_limit(limit))
        if self._key is None:
            return self._many(await self._fetch(self._q.list, *args))
        return self._many(await self._fetch(self._q.list_encrypted, *args, self._key))

    @platform
    async def rotate_key(self, new_key: str) -> int:
        """Encrypt every sensitive value under `new_key`: values encrypted under this store's key
        are re-encrypted, sensitive values kept as text are encrypted. One statement: all or
        nothing. Returns how many entries were written; open stores with `new_key` afterwards.
        Raises SecretKeyError if an encrypted value is not under this store's key."""
        if not isinstance(new_key, str) or not new_key:
            raise InvalidArgument("new_key must be a non-empty string")
        try:
            return len(await self._fetch(self._q.rotate_key, self._key, new_key))
        except ConstraintViolation as exc:  # an encrypted value and no key to read it
            raise SecretKeyError("rotating needs the current secret key: open the store with it") from exc
