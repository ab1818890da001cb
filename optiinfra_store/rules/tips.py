"""The rules behind WorkflowPerformance.tips: each finding names the figure that triggered it.
They read the figures `workflow_executions.performance()` computes; nothing here runs SQL."""

from __future__ import annotations

from typing import Any

from optiinfra_store.records import RetryHotspot

STEP_FAILURE_RATE = 0.2
RETRY_CONCENTRATION = 0.5
TAIL_RATIO = 3.0
SUCCESS_RATE_FLOOR = 0.8


def performance_tips(
    *,
    success_rate: float | None,
    completed: int,
    ended: int,
    p50: float | None,
    p95: float | None,
    step_failures: list[dict[str, Any]],
    hotspots: list[RetryHotspot],
    total_retries: int,
) -> list[str]:
    """The findings of WorkflowPerformance.tips, by four explicit rules, each naming its figure:
    a step name failing in over 20% of its finished runs (completed or failed); over 50% of all
    retries in one step name; execution p95 duration over 3x the median; success rate below 80%."""
    tips: list[str] = []
    for f in step_failures:
        runs, failed = f["runs"], f["failed"]
        if runs and failed / runs > STEP_FAILURE_RATE:
            tips.append(
                f"Step {f['step_name']!r} failed in {failed} of {runs} runs ({failed / runs:.0%}), "
                f"over the {STEP_FAILURE_RATE:.0%} threshold: look at its error patterns."
            )
    if total_retries and hotspots:
        top = hotspots[0]
        if top.total_retries / total_retries > RETRY_CONCENTRATION:
            tips.append(
                f"Step {top.step_name!r} accounts for {top.total_retries} of {total_retries} retries "
                f"({top.total_retries / total_retries:.0%}): retries are concentrated in one step."
            )
    if p50 is not None and p95 is not None and p50 > 0 and p95 > TAIL_RATIO * p50:
        tips.append(
            f"The p95 execution duration ({p95:.0f} s) is {p95 / p50:.1f}x the median ({p50:.0f} s): "
            f"a long tail of slow runs."
        )
    if success_rate is not None and success_rate < SUCCESS_RATE_FLOOR:
        tips.append(
            f"Success rate is {success_rate:.0%} ({completed} of {ended} finished executions completed), "
            f"below {SUCCESS_RATE_FLOOR:.0%}."
        )
    return tips
