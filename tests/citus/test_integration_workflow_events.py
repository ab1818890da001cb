from tests.integration.test_workflow_events import *  # noqa: F403
