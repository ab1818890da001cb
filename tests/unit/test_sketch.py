"""The duration percentiles (rules/sketch.py): nearest-rank on exact samples, the sketch's estimate
within its error of the same rank and between the minimum and maximum, merges that add up."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optiinfra_store.rules import sketch

QUICK = settings(max_examples=300, deadline=None, database=None)

durations = st.lists(
    st.one_of(
        st.just(0.0),
        st.floats(min_value=0.001, max_value=40 * 86400, allow_nan=False, allow_infinity=False),
        # whole seconds and minutes: what people look at
        st.integers(min_value=1, max_value=7200).map(float),
    ),
    min_size=1,
    max_size=300,
)
quantiles = st.sampled_from([0.0, 0.05, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0])


def key(seconds: float) -> str:
    """optiinfra_sketch_key in Python: ceil(ln(d) / ln(1.04)), "z" for zero."""
    return sketch.ZERO if seconds <= 0 else str(math.ceil(math.log(seconds) / math.log(sketch.GAMMA)))


def sketch_of(values: list[float]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in values:
        counts[key(v)] = counts.get(key(v), 0) + 1
    return counts


def test_rank__nearest_rank_by_the_decimal_q():
    assert [sketch.rank(q, 3) for q in (0.0, 0.5, 0.95, 1.0)] == [1, 2, 3, 3]
    assert [sketch.rank(q, 20) for q in (0.5, 0.95)] == [10, 19]  # 0.95 * 20 is 19, not a hair above
    assert [sketch.rank(q, 100) for q in (0.5, 0.95, 0.99)] == [50, 95, 99]
    assert sketch.rank(0.5, 1) == sketch.rank(0.95, 1) == 1


def test_exact__the_reported_samples():
    assert sketch.exact([1200.0, 300.0, 900.0], 0.5) == 900.0  # 5, 15 and 20 min: p50 15 min
    assert sketch.exact([300.0, 900.0, 1200.0], 0.95) == 1200.0  # and p95 20 min
    assert sketch.exact([1200.0], 0.5) == sketch.exact([1200.0], 0.95) == 1200.0
    assert sketch.exact([], 0.5) is None


@QUICK
@given(durations, quantiles)
def test_exact__is_the_smallest_value_with_at_least_q_of_the_sample_at_or_below(values, q):
    value = sketch.exact(values, q)
    assert value in values
    n = len(values)
    assert sum(v <= value for v in values) >= q * n - 1e-9
    smaller = [v for v in values if v < value]
    if smaller:  # any smaller value has less than q of the sample at or below it
        assert sum(v <= max(smaller) for v in values) < max(q * n, 1) - 1e-9


@QUICK
@given(durations, quantiles)
def test_quantile__within_the_error_of_the_nearest_rank_and_between_min_and_max(values, q):
    truth = sketch.exact(values, q)
    assert truth is not None
    estimate = sketch.quantile(sketch_of(values), q, max(values), min(values))
    assert estimate is not None
    assert min(values) <= estimate <= max(values)
    assert estimate == pytest.approx(truth, rel=sketch.RELATIVE_ERROR * 1.0001, abs=1e-9)
    unclamped = sketch.quantile(sketch_of(values), q)
    assert unclamped is not None and abs(estimate - truth) <= abs(unclamped - truth) + 1e-9


@QUICK
@given(durations, quantiles)
def test_percentile__exact_from_a_sample_else_the_clamped_estimate(values, q):
    counts = sketch_of(values)
    figures = {"sketch": counts, "minimum": min(values), "maximum": max(values)}
    assert sketch.percentile(q, sample=values, **figures) == sketch.exact(values, q)
    assert sketch.percentile(q, sample=None, **figures) == sketch.quantile(counts, q, max(values), min(values))


@QUICK
@given(st.lists(durations, min_size=1, max_size=5), quantiles)
def test_merge__the_sketch_of_the_parts_is_the_sketch_of_the_whole(parts, q):
    whole = [v for part in parts for v in part]
    merged = sketch.merge(sketch_of(part) for part in parts)
    assert merged == sketch_of(whole)
    assert sketch.quantile(merged, q) == sketch.quantile(sketch_of(whole), q)


def test_quantile__of_nothing_is_none_and_a_single_value_is_itself_once_clamped():
    assert sketch.quantile({}, 0.5) is None
    assert sketch.percentile(0.5, sample=None, sketch={}, minimum=None, maximum=None) is None
    one = sketch_of([1200.0])
    assert sketch.quantile(one, 0.5) != 1200.0  # a bucket's middle, not the value
    assert sketch.quantile(one, 0.5, 1200.0, 1200.0) == 1200.0
    # without a known minimum (rollups made before 0026) only the maximum holds it
    estimate = sketch.quantile(sketch_of([300.0, 900.0, 1200.0]), 0.95, 1200.0)
    assert estimate is not None and estimate <= 1200.0
