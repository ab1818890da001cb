"""One repository per table, a module each; `base.py` holds what they share.

The one list of repositories is the annotations of `optiinfra_store.store.Repositories`;
`from optiinfra_store.repositories import Customers` (any of them) resolves through it.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    from optiinfra_store.store import repository_types

    for repository in repository_types().values():
        if repository.__name__ == name:
            return repository
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    from optiinfra_store.store import repository_types

    return sorted(repository.__name__ for repository in repository_types().values())
