from tests.integration.test_workflow_analytics import *  # noqa: F403

# Reads one server's plan shapes (index scans under the top node); on the cluster a customer's
# statement is one task on one node: test_analytics_on_a_cluster.py checks that instead.
del test_explain__statistics_and_list_for_one_customer_use_an_index  # noqa: F821
