"""Named SQL statements, one `<table>.sql` file per repository, loaded once.

Format of a file:

    -- name: get_by_id
    -- The execution with this id.
    SELECT ... WHERE id = $1;

A block runs from its `-- name:` line to the next one; the comment line under the name says
what the statement is for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import LiteralString

_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


class Queries:
    """The statements of one .sql file, as attributes: `queries.get_by_id`. Typed LiteralString:
    they are text shipped in the package, never built from a caller's values."""

    def __init__(self, source: str, statements: Mapping[str, str]) -> None:
        self._source = source
        self._statements = MappingProxyType(dict(statements))
        # plain instance attributes: a statement look-up is a dict hit on every call
        self.__dict__.update(self._statements)

    def __getattr__(self, name: str) -> LiteralString:  # only called for a name that is not a statement
        raise AttributeError(f"{self._source} has no query named {name!r}")

    def names(self) -> frozenset[str]:
        return frozenset(self._statements)


def parse(source: str, text: str) -> Queries:
    """Split a .sql file into its named statements."""
    parts = _NAME.split(text)
    statements: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in statements:
            raise ValueError(f"{source}: query {name!r} defined twice")
        if name.startswith("_") or hasattr(Queries, name):
            raise ValueError(f"{source}: {name!r} cannot name a query (it names an attribute of Queries)")
        sql = "\n".join(line for line in body.strip().splitlines() if not line.lstrip().startswith("--"))
        statements[name] = sql.strip().rstrip(";")
    return Queries(source, statements)


@cache
def load(table: str) -> Queries:
    """The named statements of `queries/<table>.sql`."""
    filename = f"{table}.sql"
    text = resources.files(__package__).joinpath(filename).read_text(encoding="utf-8")
    return parse(filename, text)
