"""optiinfra_store: the PostgreSQL data layer of the OptiInfra agents.

from optiinfra_store import Store, errors
async with Store.connect(dsn) as store:
    execution = await store.workflow_executions.create(...)
"""

from optiinfra_store import enums, errors, records
from optiinfra_store.errors import (
    AlreadyExists,
    ConstraintViolation,
    InvalidTransition,
    MissingReference,
    NotFound,
    RetriesExhausted,
    StoreError,
)
from optiinfra_store.store import Store, Transaction

__all__ = [
    "AlreadyExists",
    "ConstraintViolation",
    "InvalidTransition",
    "MissingReference",
    "NotFound",
    "RetriesExhausted",
    "Store",
    "StoreError",
    "Transaction",
    "enums",
    "errors",
    "records",
]
__version__ = "0.1.0"
