from tests.integration.test_versions_and_idempotency import *  # noqa: F403
