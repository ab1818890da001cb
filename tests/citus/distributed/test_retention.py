from tests.integration.test_retention import *  # noqa: F403

# Locks an execution by its id alone, a statement to every shard, which Citus refuses with FOR
# UPDATE ("could not run distributed query with FOR UPDATE/SHARE commands");
# test_purge_by_shard.py locks it by customer and id.
del test_purge__rows_another_transaction_holds_are_skipped_not_waited_for  # noqa: F821
