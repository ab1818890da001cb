"""Named SQL statements, one `<table>.sql` file per repository, loaded once.

Format of a file:

    -- name: get_by_id
    -- The execution with this id.
    SELECT ... WHERE id = $1;

A block runs from its `-- name:` line to the next one; the comment line under the name says
what the statement is for.

A statement takes its parameters by position (`$1`, `$2`, ...) or by name (`:agent_id`): a named
one is sent as `$n` in the order the names first appear, and `Queries.args` builds its arguments
from a model and keywords by those names, so a field's place in its model never matters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any, LiteralString

from pydantic import BaseModel

_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


_GIVEN = "given_"
"""A parameter named `:given_<field>` is whether the caller set <field> (partial updates)."""


class Queries:
    """The statements of one .sql file, as attributes: `queries.get_by_id`. Typed LiteralString:
    they are text shipped in the package, never built from a caller's values."""

    def __init__(self, source: str, statements: Mapping[str, str], params: Mapping[str, tuple[str, ...]]) -> None:
        self._source = source
        self._statements = MappingProxyType(dict(statements))
        self._params = MappingProxyType(dict(params))
        # plain instance attributes: a statement look-up is a dict hit on every call
        self.__dict__.update(self._statements)

    def __getattr__(self, name: str) -> LiteralString:  # only called for a name that is not a statement
        raise AttributeError(f"{self._source} has no query named {name!r}")

    def names(self) -> frozenset[str]:
        return frozenset(self._statements)

    def params(self, name: str) -> tuple[str, ...]:
        """The parameter names of a statement written with `:name` placeholders, in `$n` order
        (empty for one written with `$n`)."""
        return self._params.get(name, ())

    def args(self, name: str, data: BaseModel | None = None, /, **values: Any) -> list[Any]:
        """The arguments of statement `name`, by the names of its parameters: a keyword given
        here, else `data`'s field of that name; `:given_<field>` is whether `data` set <field>."""
        given = data.model_fields_set if data is not None else frozenset()
        args: list[Any] = []
        for param in self._params[name]:
            if param in values:
                args.append(values[param])
            elif param.startswith(_GIVEN):
                args.append(param.removeprefix(_GIVEN) in given)
            else:
                args.append(getattr(data, param))
        return args


def _named_to_positional(source: str, name: str, sql: str) -> tuple[str, tuple[str, ...]]:
    """`sql` with each `:param` replaced by `$n` (the same name, the same n), and the names in n
    order. Quoted text, quoted identifiers, comments and `::` casts are left alone."""
    out: list[str] = []
    names: list[str] = []
    i = 0
    while i < len(sql):
        char = sql[i]
        if char in "'\"":  # a string or a quoted identifier: copied to its closing quote
            end = sql.index(char, i + 1)
            while end + 1 < len(sql) and sql[end + 1] == char:  # '' inside a string
                end = sql.index(char, end + 2)
            out.append(sql[i : end + 1])
            i = end + 1
        elif sql.startswith("--", i):  # a comment after a statement's text, to the end of its line
            end = sql.find("\n", i)
            end = len(sql) if end < 0 else end
            out.append(sql[i:end])
            i = end
        elif sql.startswith("::", i):
            out.append("::")
            i += 2
        elif char == ":" and (match := _PARAM.match(sql, i + 1)):
            param = match.group(0)
            if param not in names:
                names.append(param)
            out.append(f"${names.index(param) + 1}")
            i = match.end()
        else:
            out.append(char)
            i += 1
    if names and _POSITIONAL.search(sql):
        raise ValueError(f"{source}: query {name!r} mixes $n and :name parameters")
    return "".join(out), tuple(names)


_PARAM = re.compile(r"[a-z_][a-z0-9_]*")
_POSITIONAL = re.compile(r"\$[0-9]")


def parse(source: str, text: str) -> Queries:
    """Split a .sql file into its named statements."""
    parts = _NAME.split(text)
    statements: dict[str, str] = {}
    params: dict[str, tuple[str, ...]] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in statements:
            raise ValueError(f"{source}: query {name!r} defined twice")
        if name.startswith("_") or hasattr(Queries, name):
            raise ValueError(f"{source}: {name!r} cannot name a query (it names an attribute of Queries)")
        sql = "\n".join(line for line in body.strip().splitlines() if not line.lstrip().startswith("--"))
        sql, names = _named_to_positional(source, name, sql.strip().rstrip(";"))
        statements[name] = sql
        if names:
            params[name] = names
    return Queries(source, statements, params)


@cache
def load(table: str) -> Queries:
    """The named statements of `queries/<table>.sql`."""
    filename = f"{table}.sql"
    text = resources.files(__package__).joinpath(filename).read_text(encoding="utf-8")
    return parse(filename, text)


def named() -> dict[str, str]:
    """The text of every statement of every file -> `<file>.<name>` (`workflow_executions.get_by_id`):
    what a statement's span is named after (connection/tracing.py)."""
    names: dict[str, str] = {}
    for entry in sorted(resources.files(__package__).iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".sql"):
            table = entry.name.removesuffix(".sql")
            for name, sql in load(table)._statements.items():
                names.setdefault(sql, f"{table}.{name}")
    return names
