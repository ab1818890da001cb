from tests.integration.test_retention import *  # noqa: F403
