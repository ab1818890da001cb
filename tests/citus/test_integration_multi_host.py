from tests.integration.test_multi_host import *  # noqa: F403
