"""The tips' words agree with the figures they print: each rule compares the figure as printed, at
the boundary of every threshold; counts of one read in the singular."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from optiinfra_store.commands.report import count, percent, seconds
from optiinfra_store.records import RetryHotspot
from optiinfra_store.rules.tips import performance_tips

QUIET = {
    "success_rate": None,
    "completed": 0,
    "ended": 0,
    "p50": None,
    "p95": None,
    "step_failures": [],
    "hotspots": [],
    "total_retries": 0,
}


def success_tip(rate: float, completed: int = 159, ended: int = 200) -> list[str]:
    return performance_tips(**{**QUIET, "success_rate": rate, "completed": completed, "ended": ended})


def test_success_rate__79_5_percent_reads_79_5_and_below_80():
    assert success_tip(159 / 200) == ["Success rate is 79.5% (159 of 200 finished executions completed), below 80%."]
    assert success_tip(0.8) == []
    assert success_tip(0.79951) == []  # prints as 80%: not "80% ... below 80%"
    assert success_tip(0.7994) == ["Success rate is 79.9% (159 of 200 finished executions completed), below 80%."]
    assert success_tip(0.0, 0, 1) == ["Success rate is 0% (0 of 1 finished execution completed), below 80%."]


def test_step_failures__at_the_threshold_and_just_over_it():
    def tips(runs: int, failed: int) -> list[str]:
        return performance_tips(**{**QUIET, "step_failures": [{"step_name": "apply", "runs": runs, "failed": failed}]})

    assert tips(5, 1) == []  # 20%: not over
    assert tips(10_000, 2_004) == []  # 20.04% prints as 20%
    assert tips(1000, 201) == [
        "Step 'apply' failed in 201 of 1000 runs (20.1%), over the 20% threshold: look at its error patterns."
    ]
    assert tips(1, 1) == [
        "Step 'apply' failed in 1 of 1 run (100%), over the 20% threshold: look at its error patterns."
    ]


def test_retry_concentration__at_the_threshold_and_just_over_it():
    def tips(top: int, total: int) -> list[str]:
        hotspot = RetryHotspot(step_name="deploy", steps=10, total_retries=top, share_retried=0.5)
        return performance_tips(**{**QUIET, "hotspots": [hotspot], "total_retries": total})

    assert tips(1, 2) == [] and tips(5_002, 10_000) == []  # 50%, and 50.02% printed as 50%
    assert tips(6, 7) == ["Step 'deploy' accounts for 6 of 7 retries (85.7%): retries are concentrated in one step."]
    assert tips(1, 1) == ["Step 'deploy' accounts for 1 of 1 retry (100%): retries are concentrated in one step."]


def test_long_tail__compares_the_printed_ratio():
    def tips(p50: float, p95: float) -> list[str]:
        return performance_tips(**{**QUIET, "p50": p50, "p95": p95})

    assert tips(100.0, 300.0) == [] and tips(100.0, 304.0) == []  # 3.0x: not over 3x
    assert tips(100.0, 306.0) == [
        "The p95 execution duration (306 s) is 3.1x the median (100 s): a long tail of slow runs."
    ]
    assert tips(0.2, 0.9) == [
        "The p95 execution duration (0.9 s) is 4.5x the median (0.2 s): a long tail of slow runs."
    ]


@settings(max_examples=300, deadline=None, database=None)
@given(st.integers(min_value=1, max_value=100_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_every_tip__states_a_figure_on_the_side_of_the_threshold_it_names(counts):
    part, whole = counts
    tips = performance_tips(
        **{
            **QUIET,
            "success_rate": part / whole,
            "completed": part,
            "ended": whole,
            "step_failures": [{"step_name": "s", "runs": whole, "failed": part}],
        }
    )
    for tip in tips:
        figure = float(re.search(r"(\d+(?:\.\d)?)%", tip).group(1))  # type: ignore[union-attr]
        if tip.startswith("Success rate"):
            assert figure < 80, tip
        else:
            assert figure > 20, tip
    below = any(t.startswith("Success rate") for t in tips)
    assert below == (float(f"{part / whole * 100:.1f}") < 80)


def test_report__one_run_reads_in_the_singular():
    assert count(1, "run") == "1 run" and count(2, "run") == "2 runs" and count(0, "run") == "0 runs"
    assert count(1, "retry", "retries") == "1 retry" and count(3, "retry", "retries") == "3 retries"
    assert percent(0.795) == "79.5%" and percent(0.8) == "80%" and percent(None) == "-"
    assert seconds(780.0) == "13m00s"
