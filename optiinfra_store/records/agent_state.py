"""Records and inputs of the agent state tables: configs, runtime state, capabilities, metrics."""

from __future__ import annotations

import json
import re
from collections.abc import Generator, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Self, cast
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FieldSerializationInfo,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticKnownError
from pydantic_core.core_schema import ErrorType

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

REVEAL_SECRETS = "reveal_secrets"
"""The dump context key that asks for sensitive values: `config.model_dump(context={"reveal_secrets": True})`."""


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
    if config_type is ConfigType.JSON and not _is_json(value):
        raise ValueError("a json config_value must be a JSON document (nested at most a few hundred levels)")


def _is_json(text: str) -> bool:
    # apart from check_config_value's raise: a chained JSONDecodeError would hold the value (.doc)
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


class Concealed:
    """A config value on its way through validation. pydantic puts the input of a failed field in
    its error (errors(), json(), and str() unless hidden), and error trackers serialise them; in
    a Concealed the value shows there as '***'."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return repr(MASK)

    def __str__(self) -> str:
        return MASK


def _checked_concealed(value: Any, check: ValidatorFunctionWrapHandler) -> Any:
    """The field's own checks, on the value inside a Concealed; an error they raise is raised again
    without the value, so pydantic reports the Concealed as its input."""
    try:
        return check(value.value if isinstance(value, Concealed) else value)
    except ValidationError as exc:
        # a text field fails one check at a time, each one of pydantic's own error types
        error = exc.errors(include_url=False, include_input=False)[0]
    raise PydanticKnownError(cast(ErrorType, error["type"]), error.get("ctx"))  # outside the handler: none chained


class _HoldsConfigValue(BaseModel):
    """What a config record and a config input share. Their value (sensitive or not: a key's
    sensitivity may be stored, not given) is in no validation error; a sensitive value is in no
    dump (model_dump in either mode, model_dump_json, dict(), repr, str) unless asked for with
    `context={"reveal_secrets": True}`. Reading `config_value` returns it."""

    model_config = ConfigDict(hide_input_in_errors=True)

    if TYPE_CHECKING:
        is_sensitive: bool

    @model_validator(mode="before")
    @classmethod
    def _conceal(cls, data: Any) -> Any:
        # the value, and whatever comes under a name the model does not declare (a misspelt
        # config_value); an error such as `missing` quotes the whole input, so it is hidden there too
        if not isinstance(data, Mapping):
            return data
        return {
            name: value if name in cls.model_fields and name != "config_value" else Concealed(value)
            for name, value in data.items()
        }

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, **options: Any) -> Self:
        """BaseModel's, except that a document that is not JSON is refused without quoting it
        (pydantic's error carries the whole document, the value in it)."""
        try:
            return super().model_validate_json(json_data, **options)
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False)[0]
            if first["type"] != "json_invalid":
                raise
        error = InitErrorDetails(type="json_invalid", loc=(), input=Concealed(json_data), ctx=first.get("ctx") or {})
        raise ValidationError.from_exception_data(cls.__name__, [error], input_type="json", hide_input=True)

    @field_serializer("config_value", check_fields=False)
    def _masked_unless_revealed(self, value: str, info: FieldSerializationInfo) -> str:
        revealed = isinstance(info.context, Mapping) and info.context.get(REVEAL_SECRETS) is True
        return value if revealed or not self.is_sensitive else MASK

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, MASK if self.is_sensitive and name == "config_value" else value

    def __iter__(self) -> Generator[tuple[str, Any], None, None]:  # dict(config) is a dump too
        for name, value in super().__iter__():
            yield name, MASK if self.is_sensitive and name == "config_value" else value


class AgentConfig(_HoldsConfigValue, Record):
    """One configuration entry. repr(), str() and every dump show '***' for the value of a
    sensitive entry (see _HoldsConfigValue); `config_value` itself returns it."""

    id: UUID
    agent_id: UUID
    config_key: str
    config_value: Annotated[str, WrapValidator(_checked_concealed)]
    config_type: ConfigType
    description: str | None
    is_sensitive: bool
    is_encrypted: bool
    """The value is stored encrypted (a sensitive entry written by a store with a secret key)."""
    created_at: datetime
    updated_at: datetime


class AgentConfigCreate(_HoldsConfigValue, Input):
    """A configuration entry; config_value is text that must parse as config_type.
    Validation errors never echo the value (it may be a secret); dumps mask a sensitive one."""

    agent_id: UUID
    config_key: Name
    config_type: ConfigType = ConfigType.STRING
    # after config_type, so its validator can check the value against the type
    config_value: Annotated[Text, WrapValidator(_checked_concealed)]
    description: Text | None = None
    is_sensitive: bool = False

    @field_validator("config_value")
    @classmethod
    def _value_parses(cls, value: str, info: ValidationInfo) -> str:
        config_type = info.data.get("config_type")
        if config_type is not None:
            check_config_value(config_type, value)
        return value


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
