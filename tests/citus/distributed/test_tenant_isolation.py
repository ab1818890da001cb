import pytest

from tests.integration.test_tenant_isolation import *  # noqa: F403
from tests.pg import app_login

LEFT_OUT = {
    # the store on the distributed schema, not confinement (SCALING.md, "Not yet")
    "test_own_rows__every_repository_reads_and_writes_them": "statistics() does not run on the cluster yet",
    "test_lists__never_include_other_customers": "statistics() does not run on the cluster yet",
    "test_platform_changes__refused_when_confined_and_nothing_changes": (
        "its setup's agent_states.upsert does not run on the cluster (Citus: could not determine the data type "
        "of a parameter of its INSERT ... SELECT ... ON CONFLICT into a reference table)"
    ),
    "test_agent_state__points_only_at_the_confined_customers_executions": (
        "agent_states.upsert as above, and setting an agent's current workflow: its trigger reads the execution "
        "by id, a distributed query from a shard"
    ),
    "test_agent_state__of_one_customers_work_is_hidden_from_the_others": "agent_states.upsert, as above",
    "test_security_definer_trigger__no_temporary_object_stands_in": (
        "its UPDATE by id alone reaches every shard and commits on both workers, refused after the trail's NOTIFY"
    ),
    "test_live_events__confined_store_sees_only_its_customer": (
        "live events: NOTIFY fires on the worker holding the row; and the subscription binds its connection's "
        "session, which the database refuses on the cluster (tests/citus/test_distributed_confinement.py)"
    ),
    # what Citus imposes on confinement: every confined call takes a transaction of its own
    "test_one_pooled_connection__bound_to_one_customer_never_serves_another_or_an_unconfined_call": (
        "no session binding on the cluster (the workers never see one): each confined call is a transaction"
    ),
    "test_one_pooled_connection__a_binding_changed_behind_the_stores_back_is_not_trusted": (
        "no session binding on the cluster, so none to unbind: each confined call is a transaction"
    ),
}
"""The tests of tests/integration/test_tenant_isolation.py that cannot hold on the cluster, and why."""

for _name in LEFT_OUT:
    del globals()[_name]


@pytest.fixture(scope="session")
def app_login_dsn(databases, migrated_dsn) -> str:
    """An application login made through the distributed database, so that Citus makes it on the
    workers too (unconfined, the coordinator connects to them as it). A name of its own: one made
    through another database of this cluster exists on the coordinator alone."""
    return app_login(migrated_dsn, migrated_dsn, "optiinfra_test_cluster_agent")
