"""Records and inputs of the agent state tables: configs, runtime state, capabilities, metrics."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import ConfigDict, Field, ValidationInfo, field_serializer, field_validator

from optiinfra_store.enums import AgentStatusDetail, ConfigType, MetricType
from optiinfra_store.records._base import (
    Count,
    FiniteFloat,
    Input,
    JsonObject,
    Name,
    Record,
    ShortName,
    Text,
    Timestamp,
)

__all__ = [
    "AgentConfig",
    "AgentConfigCreate",
    "AgentState",
    "AgentStateCreate",
    "AgentStateUpsert",
    "AgentCapability",
    "AgentCapabilityCreate",
    "AgentCapabilityUpdate",
    "AgentMetric",
    "AgentMetricCreate",
    "MetricSummary",
    "MetricBucket",
]

NUMBER_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?")
"""What agent_configs_number_value_check accepts (matched in full)."""

MASK = "***"


MAX_NUMBER_DIGITS = 1000
"""The longest number a config holds (Python reads at most 4300-digit integers back by default)."""


def check_config_value(config_type: ConfigType, value: str) -> None:
    """Raise ValueError when `value` does not parse as `config_type` (the rules of the table's
    CHECK constraints, plus: a json value must be a JSON document). Never quotes the value."""
    if config_type is ConfigType.NUMBER and (len(value) > MAX_NUMBER_DIGITS or NUMBER_TEXT.fullmatch(value) is None):
        raise ValueError(
            f"a number config_value must be a decimal number such as 42, -1.5 or 2e10, "
            f"of at most {MAX_NUMBER_DIGITS} characters"
        )
    if config_type is ConfigType.BOOLEAN and value not in ("true", "false"):
        raise ValueError("a boolean config_value must be 'true' or 'false'")
    if config_type is ConfigType.JSON:
        try:
            json.loads(value)
        except (ValueError, RecursionError):
            raise ValueError(
                "a json config_value must be a JSON document (nested at most a few hundred levels)"
            ) from None


def _masked(args: Iterator[tuple[str | None, Any]], sensitive: bool) -> Iterator[tuple[str | None, Any]]:
    for name, value in args:
        yield (name, MASK) if sensitive and name == "config_value" else (name, value)


class AgentConfig(Record):
    """One configuration entry. repr() and str() show '***' for the value of a sensitive entry;
    `config_value` itself still returns it."""

    id: UUID
    agent_id: UUID
    config_key: str
    config_value: str
    config_type: ConfigType
    description: str | None
    is_sensitive: bool
    is_encrypted: bool
    """The value is stored encrypted (a sensitive entry written by a store with a secret key)."""
    created_at: datetime
    updated_at: datetime

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        return _masked(iter(super().__repr_args__()), self.is_sensitive)

    @field_serializer("config_value", when_used="json")
    def _mask_in_json(self, value: str) -> str:
        # structured logs serialise to JSON; code that asks reads config.config_value
        return MASK if self.is_sensitive else value


class AgentConfigCreate(Input):
    """A configuration entry; config_value is text that must parse as config_type.
    Validation errors never echo the input (it may be a secret)."""

    model_config = ConfigDict(hide_input_in_errors=True)

    agent_id: UUID
    config_key: Name
    config_type: ConfigType = ConfigType.STRING
    config_value: Text  # after config_type, so its validator can check the value against the type
    description: Text | None = None
    is_sensitive: bool = False

    @field_validator("config_value")
    @classmethod
    def _value_parses(cls, value: str, info: ValidationInfo) -> str:
        config_type = info.data.get("config_type")
        if config_type is not None:
            check_config_value(config_type, value)
        return value

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        return _masked(iter(super().__repr_args__()), self.is_sensitive)


class AgentState(Record):
    id: UUID
    agent_id: UUID
    customer_id: UUID | None
    """The customer whose work the state describes (set by the database; None: nobody's)."""
    status: AgentStatusDetail
    current_workflow: str | None
    current_workflow_id: UUID | None
    workflow_data: JsonObject
    resource_locks: list[str]
    error_count: int
    last_error: JsonObject | None
    last_heartbeat: datetime
    version: int
    """How many writes the row has had (1 when created); pass it as `expected_version`."""
    created_at: datetime
    updated_at: datetime


class _AgentStateFields(Input):
    agent_id: UUID
    status: AgentStatusDetail = AgentStatusDetail.IDLE
    current_workflow: Name | None = None
    current_workflow_id: UUID | None = None
    workflow_data: JsonObject = Field(default_factory=dict)
    resource_locks: list[Text] = Field(default_factory=list)
    error_count: Count = 0
    last_error: JsonObject | None = None
    last_heartbeat: Timestamp | None = None
    """None: the database's now()."""


class AgentStateCreate(_AgentStateFields):
    """The first state row of an agent (AlreadyExists if it has one: use upsert)."""


class AgentStateUpsert(_AgentStateFields):
    """An agent's state: inserted, or the fields set here written over the existing row."""


class AgentCapability(Record):
    id: UUID
    agent_id: UUID
    capability_name: str
    capability_version: str
    description: str | None
    parameters: JsonObject
    is_enabled: bool
    created_at: datetime
    updated_at: datetime


class AgentCapabilityCreate(Input):
    agent_id: UUID
    capability_name: Name
    capability_version: ShortName
    description: Text | None = None
    parameters: JsonObject = Field(default_factory=dict)
    is_enabled: bool = True


class AgentCapabilityUpdate(Input):
    """Fields left out are kept; description=None clears it, parameters/is_enabled=None keep them."""

    description: Text | None = None
    parameters: JsonObject | None = None
    is_enabled: bool | None = None


class AgentMetric(Record):
    id: UUID
    agent_id: UUID
    metric_name: str
    metric_type: MetricType
    metric_value: float
    metric_unit: str | None
    collection_timestamp: datetime
    metadata: JsonObject
    created_at: datetime
    updated_at: datetime


class AgentMetricCreate(Input):
    agent_id: UUID
    metric_name: Name
    metric_type: MetricType = MetricType.GAUGE
    metric_value: FiniteFloat
    metric_unit: ShortName | None = None
    collection_timestamp: Timestamp | None = None
    """None: now (the database's for one metric, the client's for a batch)."""
    metadata: JsonObject = Field(default_factory=dict)


class MetricSummary(Record):
    """count, avg, min and max of a metric's values; the floats are None when count is 0."""

    count: int
    avg: float | None
    min: float | None
    max: float | None


class MetricBucket(Record):
    """One time bucket of a metric series (only buckets with data): count, avg, min, max and p95
    (percentile_cont, interpolated) of the values collected in [bucket_start, bucket_start + bucket)."""

    bucket_start: datetime
    count: int
    avg: float
    min: float
    max: float
    p95: float
