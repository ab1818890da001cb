"""The duration sketch of the workflow rollups: how many durations fell in each logarithmic bucket.

A duration of d > 0 seconds counts in bucket ceil(log_GAMMA(d)), a zero duration in bucket "z"
(`optiinfra_sketch_key` in the database computes the same keys). Sketches merge by adding counts,
so a day's sketch is the sum of its executions' and a month's the sum of its days'. A quantile is
read as the bucket holding the sample of that rank, estimated as 2 * GAMMA**k / (GAMMA + 1): within
RELATIVE_ERROR (under 2%) of the exact sample at rank q * (n - 1), rounded down (the sample that
PostgreSQL's percentile_cont interpolates from).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

GAMMA = 1.04
RELATIVE_ERROR = (GAMMA - 1) / (GAMMA + 1)
ZERO = "z"


def merge(sketches: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """The sketch of everything the given sketches counted."""
    merged: dict[str, int] = {}
    for sketch in sketches:
        for key, count in sketch.items():
            merged[key] = merged.get(key, 0) + int(count)
    return merged


def _order(key: str) -> float:
    return float("-inf") if key == ZERO else int(key)


def quantile(sketch: Mapping[str, int], q: float, maximum: float | None = None) -> float | None:
    """The q-quantile (0 <= q <= 1) of the counted durations, in seconds; None if there are none.
    With `maximum` (the exact largest duration) the estimate never exceeds it: a bucket's middle
    can lie above every value counted in it."""
    total = sum(sketch.values())
    if total == 0:
        return None
    rank = q * (total - 1)
    seen = 0
    for key in sorted(sketch, key=_order):
        seen += sketch[key]
        if seen > rank:
            value = 0.0 if key == ZERO else 2 * GAMMA ** int(key) / (GAMMA + 1)
            return value if maximum is None else min(value, maximum)
    raise AssertionError("unreachable: the cumulative count reaches the total")  # pragma: no cover
