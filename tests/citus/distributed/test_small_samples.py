from tests.integration.test_small_samples import *  # noqa: F403
