from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from tests.reliability.profile import RELIABILITY
from tests.reliability.test_lifecycle_races import *  # noqa: F403
from tests.reliability.test_lifecycle_races import ExecutionLifecycle, StepLifecycle

# Each step of an example is several statements through the coordinator: fewer and shorter
# examples than on one server, the same model and the same check of every race's outcome.
# tests/reliability/conftest.py's profile is not loaded under tests/citus: its settings (profile.py), here.
ON_A_CLUSTER = settings(RELIABILITY, max_examples=10, stateful_step_count=10)


def test_execution_lifecycle__random_and_concurrent_transitions_follow_the_model(harness):
    run_state_machine_as_test(lambda: ExecutionLifecycle(harness), settings=ON_A_CLUSTER)


def test_step_lifecycle__random_and_concurrent_transitions_follow_the_model(harness):
    run_state_machine_as_test(lambda: StepLifecycle(harness), settings=ON_A_CLUSTER)
