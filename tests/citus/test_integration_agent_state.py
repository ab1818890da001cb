from tests.integration.test_agent_state import *  # noqa: F403
