"""Duration percentiles of the workflow analytics: exact on small samples, from a sketch on large ones.

Percentiles are nearest-rank: the q-quantile of n durations is the one at rank ceil(q * n) in
ascending order (rank 1 for q = 0), the smallest duration with at least a fraction q of the sample
at or below it. It is always one of the durations, so never below the minimum or above the
maximum: one run of 20m00s has p50 = p95 = 20m00s, and runs of 5, 15 and 20 minutes have p50 = 15
and p95 = 20 minutes.

Exact: a window (per workflow type, per step name) holding at most EXACT_UP_TO durations. The
rollups keep a row's exact durations up to EXACT_UP_TO of them (`duration_sample`, migration 0026),
so such a window's durations are all known, from the rollups and the raw tables alike.

Estimated, above EXACT_UP_TO: the duration sketch, how many durations fell in each logarithmic
bucket. A duration of d > 0 seconds counts in bucket ceil(log_GAMMA(d)), a zero duration in bucket
"z" (`optiinfra_sketch_key` in the database computes the same keys). Sketches merge by adding
counts, so a day's sketch is the sum of its executions' and a month's the sum of its days'. A
quantile is read as the bucket holding the sample at the nearest rank, estimated as
2 * GAMMA**k / (GAMMA + 1): within RELATIVE_ERROR (under 2%) of that sample, then clamped to the
exact minimum and maximum (which only brings it closer).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction

GAMMA = 1.04
RELATIVE_ERROR = (GAMMA - 1) / (GAMMA + 1)
ZERO = "z"
EXACT_UP_TO = 100
"""The largest sample whose percentiles are exact (the rollups keep up to this many durations a row)."""


def merge(sketches: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """The sketch of everything the given sketches counted."""
    merged: dict[str, int] = {}
    for sketch in sketches:
        for key, count in sketch.items():
            merged[key] = merged.get(key, 0) + int(count)
    return merged


def _order(key: str) -> float:
    return float("-inf") if key == ZERO else int(key)


def rank(q: float, n: int) -> int:
    """The nearest rank (1-based) of the q-quantile (0 <= q <= 1) of n > 0 values: ceil(q * n), at
    least 1. q is read as the decimal it prints as (0.95 * 20 is rank 19, not 20)."""
    return max(1, math.ceil(Fraction(str(q)) * n))


def exact(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank q-quantile of the values (in any order); None if there are none."""
    if not values:
        return None
    return sorted(values)[rank(q, len(values)) - 1]


def quantile(
    sketch: Mapping[str, int], q: float, maximum: float | None = None, minimum: float | None = None
) -> float | None:
    """The sketch's estimate of the nearest-rank q-quantile of the counted durations, in seconds;
    None if there are none. With the exact `maximum` and `minimum` the estimate stays between them:
    a bucket's middle can lie above (or below) every value counted in it."""
    total = sum(sketch.values())
    if total == 0:
        return None
    wanted = rank(q, total)
    seen = 0
    for key in sorted(sketch, key=_order):
        seen += sketch[key]
        if seen >= wanted:
            value = 0.0 if key == ZERO else 2 * GAMMA ** int(key) / (GAMMA + 1)
            if maximum is not None:
                value = min(value, maximum)
            if minimum is not None:
                value = max(value, minimum)
            return value
    raise AssertionError("unreachable: the cumulative count reaches the total")  # pragma: no cover


def percentile(
    q: float,
    *,
    sample: Sequence[float] | None,
    sketch: Mapping[str, int],
    minimum: float | None,
    maximum: float | None,
) -> float | None:
    """The q-quantile of a window's durations: exact from `sample` (every duration of the window,
    when it holds at most EXACT_UP_TO of them), else the sketch's estimate clamped to
    [minimum, maximum] (None: unknown, no clamp on that side)."""
    if sample is not None:
        return exact(sample, q)
    return quantile(sketch, q, maximum, minimum)
