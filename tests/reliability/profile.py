"""The reliability suite's Hypothesis settings (tests/reliability/conftest.py registers them as the
`reliability` profile; tests/citus/distributed/test_lifecycle_races.py runs fewer examples with them)."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

RELIABILITY = settings(
    max_examples=40,
    stateful_step_count=20,
    deadline=None,
    database=None,
    print_blob=True,
    # the Store fixtures are created once per test function on purpose, and database round trips
    # make data generation look slow to Hypothesis
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
