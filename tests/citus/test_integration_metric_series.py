from tests.integration.test_metric_series import *  # noqa: F403
