from tests.integration.test_store import *  # noqa: F403
