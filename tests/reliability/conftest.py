"""Hypothesis settings of the reliability suite.

The default profile keeps the suite fast enough for every run; `HYPOTHESIS_PROFILE=reliability-long`
explores ten times as many examples. No example database is written (the repository stays clean):
a failure prints the falsifying example, and `print_blob` a reproduction string for @reproduce_failure.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "reliability",
    max_examples=40,
    stateful_step_count=20,
    deadline=None,
    database=None,
    print_blob=True,
    # the Store fixtures are created once per test function on purpose, and database round trips
    # make data generation look slow to Hypothesis
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile("reliability-long", parent=settings.get_profile("reliability"), max_examples=400)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "reliability"))
