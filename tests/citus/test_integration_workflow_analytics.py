from tests.integration.test_workflow_analytics import *  # noqa: F403
