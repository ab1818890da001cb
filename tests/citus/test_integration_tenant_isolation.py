from tests.integration.test_tenant_isolation import *  # noqa: F403
