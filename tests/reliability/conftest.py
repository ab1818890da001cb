"""Hypothesis settings of the reliability suite.

The default profile keeps the suite fast enough for every run; `HYPOTHESIS_PROFILE=reliability-long`
explores ten times as many examples. No example database is written (the repository stays clean):
a failure prints the falsifying example, and `print_blob` a reproduction string for @reproduce_failure.
"""

from __future__ import annotations

import os

from hypothesis import settings

from tests.reliability.profile import RELIABILITY

settings.register_profile("reliability", parent=RELIABILITY)
settings.register_profile("reliability-long", parent=RELIABILITY, max_examples=400)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "reliability"))
