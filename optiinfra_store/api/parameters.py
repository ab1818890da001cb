"""The query and header parameters the routes share, with their ranges and forms."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Header, Query
from pydantic import AfterValidator, BeforeValidator

Limit = Annotated[int, Query(ge=1, le=1000, description="executions per page")]
Cursor = Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")]
Days = Annotated[int, Query(ge=1, le=366, description="the window: this many days back from now")]
IfNoneMatch = Annotated[str | None, Header(description="the ETag of figures the client has: 304 while unchanged")]

# RFC 3339 section 5.6 (T and Z in either case); the day, hour and offset ranges are checked by parsing
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
# the store's range: years 1 to 9999 in UTC, less the two instants the driver sends as infinities
_EARLIEST = datetime.min.replace(tzinfo=UTC) + timedelta(microseconds=1)
_LATEST = datetime.max.replace(tzinfo=UTC) - timedelta(microseconds=1)


def _rfc3339(value: object) -> datetime:
    """Only an RFC 3339 date-time, as the document says (pydantic alone would also read a number
    as a Unix time, or a date without a time)."""
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 date-time with an offset, like 2026-01-01T00:00:00Z")
    return datetime.fromisoformat(value.upper())


def _within_the_store(value: datetime) -> datetime:
    """A bound beyond the store's range selects what the end of the range selects."""
    return min(max(value, _EARLIEST), _LATEST)


Instant = Annotated[datetime, BeforeValidator(_rfc3339), AfterValidator(_within_the_store)]
