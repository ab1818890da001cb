from tests.integration.test_workflow_rollups import *  # noqa: F403
