from tests.integration.test_replicas import *  # noqa: F403
