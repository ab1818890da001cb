from tests.integration.test_pgbouncer import *  # noqa: F403
