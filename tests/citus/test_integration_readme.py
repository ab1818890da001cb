from tests.integration.test_readme import *  # noqa: F403
