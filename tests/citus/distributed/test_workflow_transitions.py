from tests.integration.test_workflow_transitions import *  # noqa: F403

# Raw SQL by id alone reaches every shard and commits on both workers, which PostgreSQL refuses
# after the trail's NOTIFY (SCALING.md); tests/citus/test_distributed_writes.py runs it routed.
del test_history__raw_sql_changes_are_recorded_too  # noqa: F821
