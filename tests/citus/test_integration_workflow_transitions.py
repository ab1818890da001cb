from tests.integration.test_workflow_transitions import *  # noqa: F403
