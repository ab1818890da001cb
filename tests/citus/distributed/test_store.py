from tests.integration.test_store import *  # noqa: F403

# It asserts that the schema it connects to is not distributed (Store.by_customer false); here it
# is, as this directory's `store` fixture asserts.
del test_connect__awaited_then_closed  # noqa: F821
