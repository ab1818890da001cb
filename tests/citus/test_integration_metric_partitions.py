from tests.integration.test_metric_partitions import *  # noqa: F403
