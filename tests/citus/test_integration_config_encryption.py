from tests.integration.test_config_encryption import *  # noqa: F403
