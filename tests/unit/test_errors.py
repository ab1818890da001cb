"""errors.translate: the driver's and the server's errors become StoreErrors; a programming error
is not disguised as one."""

from __future__ import annotations

import asyncpg
import pytest

from optiinfra_store.errors import AlreadyExists, StoreError, StoreTimeout, StoreUnavailable, translate
from optiinfra_store.executor import translated


@pytest.mark.parametrize("error", [TypeError("bad call"), AttributeError("no such"), KeyError("k"), ValueError("v")])
async def test_translated__a_programming_error_goes_through_as_it_is(error):
    with pytest.raises(type(error)) as raised:
        async with translated():
            raise error
    assert raised.value is error and not isinstance(raised.value, StoreError)
    assert translate(error) is error


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (asyncpg.UniqueViolationError("duplicate key"), AlreadyExists),
        (asyncpg.SyntaxOrAccessError("syntax error"), StoreError),
        (asyncpg.InterfaceError("connection is closed"), StoreUnavailable),
        (
            asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress"),
            StoreUnavailable,
        ),
        (ConnectionResetError("reset by peer"), StoreUnavailable),
        (TimeoutError(), StoreTimeout),
    ],
)
async def test_translated__the_drivers_errors_become_store_errors_with_the_original_chained(error, expected):
    with pytest.raises(expected) as raised:
        async with translated():
            raise error
    assert raised.value.__cause__ is error
