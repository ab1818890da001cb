from tests.integration.test_workflow_history import *  # noqa: F403
