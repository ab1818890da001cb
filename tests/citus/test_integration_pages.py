from tests.integration.test_pages import *  # noqa: F403
