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
    retries in one step name; execution p95 duration over 3x the median; success rate below 80%.

    Each rule compares the figure as the tip prints it (a percentage to one decimal, a ratio to
    one decimal), so the words always agree with the number: a success rate of 79.96% prints as
    80% and is not "below 80%"; one of 79.5% prints as 79.5% and is."""
    tips: list[str] = []
    for f in step_failures:
        runs, failed = f["runs"], f["failed"]
        if not runs:
            continue
        shown, figure = _percent(failed / runs)
        if figure > _as_percent(STEP_FAILURE_RATE):
            tips.append(
                f"Step {f['step_name']!r} failed in {_of(failed, runs, 'run')} ({shown}), "
                f"over the {STEP_FAILURE_RATE:.0%} threshold: look at its error patterns."
            )
    if total_retries and hotspots:
        top = hotspots[0]
        shown, figure = _percent(top.total_retries / total_retries)
        if figure > _as_percent(RETRY_CONCENTRATION):
            tips.append(
                f"Step {top.step_name!r} accounts for {_of(top.total_retries, total_retries, 'retry', 'retries')} "
                f"({shown}): retries are concentrated in one step."
            )
    if p50 is not None and p95 is not None and p50 > 0:
        ratio = f"{p95 / p50:.1f}"
        if float(ratio) > TAIL_RATIO:
            tips.append(
                f"The p95 execution duration ({_seconds(p95)}) is {ratio}x the median ({_seconds(p50)}): "
                f"a long tail of slow runs."
            )
    if success_rate is not None:
        shown, figure = _percent(success_rate)
        if figure < _as_percent(SUCCESS_RATE_FLOOR):
            tips.append(
                f"Success rate is {shown} ({_of(completed, ended, 'finished execution')} completed), "
                f"below {SUCCESS_RATE_FLOOR:.0%}."
            )
    return tips


def _percent(ratio: float) -> tuple[str, float]:
    """A ratio as a tip prints it (a percentage to one decimal, without a trailing .0) and the
    figure printed, which the rules compare."""
    text = f"{ratio * 100:.1f}"
    return f"{text.removesuffix('.0')}%", float(text)


def _as_percent(threshold: float) -> float:
    return round(threshold * 100, 6)


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value >= 10 else f"{value:.2g} s"


def _of(part: int, whole: int, noun: str, plural: str | None = None) -> str:
    """A count out of a whole, the noun agreeing with the whole: 3 of 10 runs, 1 of 1 run."""
    return f"{part} of {whole} {noun if whole == 1 else plural or noun + 's'}"
