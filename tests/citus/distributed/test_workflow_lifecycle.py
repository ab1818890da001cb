from tests.integration.test_workflow_lifecycle import *  # noqa: F403
