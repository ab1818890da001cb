"""Building blocks shared by every record and input model."""

from __future__ import annotations

import math
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

INT4_MAX = 2**31 - 1

Name = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"\S")]
"""A non-blank name that fits a varchar(255) column."""

ShortName = Annotated[str, StringConstraints(min_length=1, max_length=50, pattern=r"\S")]
"""A non-blank name that fits a varchar(50) column (versions, units)."""

Text = Annotated[str, StringConstraints(max_length=1_000_000)]
Count = Annotated[int, Field(ge=0, le=INT4_MAX)]
"""A non-negative integer that fits an integer column."""

JsonObject = dict[str, Any]
Timestamp = AwareDatetime
"""Timestamps must carry a time zone: naive datetimes are refused, never guessed."""


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number (not NaN or infinity)")
    return value


FiniteFloat = Annotated[float, AfterValidator(_finite)]


class Record(BaseModel):
    """A row as stored. Built from trusted database rows without re-validation."""

    model_config = ConfigDict(frozen=True)


class Input(BaseModel):
    """What a caller supplies; validated before any SQL runs."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a keyset-paginated list; pass `next_cursor` back for the next (None on the last)."""

    model_config = ConfigDict(frozen=True)

    items: list[T]
    next_cursor: str | None = None
