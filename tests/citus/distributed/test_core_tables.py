from tests.integration.test_core_tables import *  # noqa: F403
