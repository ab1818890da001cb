"""No SQL is built from strings at run time: a static check of every module under optiinfra_store/.

Every call that runs SQL (asyncpg's execute, executemany, fetch, fetchrow, fetchval, prepare and
copy_*, psycopg's execute/executemany/copy, yoyo's backend.execute, and the store's executors'
fetch, fetchrow, fetchval, execute and copy_records) must get as its statement one of:

- a string constant, or a module-level constant bound once to one;
- a named statement of the .sql files: `self._q.<name>` (with `_q` only ever bound to
  `load("<table>")`), or `queries.<name>`;
- a local variable bound only to those, or a conditional between them;
- a parameter of the enclosing function, which then counts as a SQL-running function itself, so
  its own callers are held to the same rule (this is how `fetchrow(self, sql, ...)` and the
  executors pass statements through).

Never an f-string, `%`, `.format`, `+` or `join`. Identifiers given to asyncpg (COPY's table and
columns, LISTEN's channel) follow the same rule, plus fixed module-level tuples or lists of string
constants that nothing mutates (asyncpg quotes identifiers itself).

Where a module legitimately builds a statement, ALLOWED names the (module, function), why, and the
exact shape the dynamic part must have; an allowance nothing uses any more fails the test.
"""

from __future__ import annotations

import ast
import re
import string
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import optiinfra_store

PACKAGE = Path(optiinfra_store.__file__).parent

SQL, IDENTIFIER = "statement", "identifier"


@dataclass(frozen=True)
class Slot:
    """Where a call takes its statement (or an identifier): a position and/or a keyword."""

    index: int | None
    keyword: str | None
    kind: str = SQL


_STATEMENT = (Slot(0, "query"), Slot(0, "sql"), Slot(0, "statement"))
_COPY_TABLE = (
    Slot(0, "table_name", IDENTIFIER),
    Slot(None, "columns", IDENTIFIER),
    Slot(None, "schema_name", IDENTIFIER),
)

SINKS: dict[str, tuple[Slot, ...]] = {
    # asyncpg (Connection and Pool), psycopg (Connection and Cursor), yoyo (DatabaseBackend)
    **{
        name: _STATEMENT
        for name in ("execute", "executemany", "fetch", "fetchrow", "fetchval", "prepare", "copy_from_query", "copy")
    },
    **{name: _COPY_TABLE for name in ("copy_to_table", "copy_from_table", "copy_records_to_table")},
    **{name: (Slot(0, "channel", IDENTIFIER),) for name in ("add_listener", "remove_listener")},
    # the repositories' driver calls
    **{name: _STATEMENT for name in ("_fetch", "_fetchrow", "_fetchval", "_execute")},
    "copy_records": _COPY_TABLE,
}
"""SQL-running calls by method name; functions that pass a parameter into one are added."""


@dataclass(frozen=True)
class Allowance:
    reason: str
    shape: Callable[[ast.expr], bool]
    """Does this expression (the statement given to the call) have the one allowed shape?"""


def yoyo_format_sql(expr: ast.expr) -> bool:
    """`backend.format_sql("... {0.<name>_quoted} ...")`: the template is a constant and its only
    fields are identifiers yoyo quotes itself."""
    if not (
        isinstance(expr, ast.Call)
        and isinstance(expr.func, ast.Attribute)
        and expr.func.attr == "format_sql"
        and len(expr.args) == 1
        and not expr.keywords
        and _is_str(expr.args[0])
    ):
        return False
    fields = [f for _, f, _, _ in string.Formatter().parse(expr.args[0].value) if f is not None]
    return bool(fields) and all(re.fullmatch(r"0\.\w+_quoted", f) for f in fields)


def packaged_seed_file(expr: ast.expr) -> bool:
    """`(seed_dir() / name).read_text(...)`: a file shipped in the package, run whole."""
    return (
        isinstance(expr, ast.Call)
        and isinstance(expr.func, ast.Attribute)
        and expr.func.attr == "read_text"
        and any(
            isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "seed_dir"
            for n in ast.walk(expr.func.value)
        )
    )


def psycopg_identifiers(expr: ast.expr) -> bool:
    """`sql.SQL("<constant>").format(sql.Identifier(...), ...)`: only quoted identifiers go in."""

    def named(node: ast.expr, name: str) -> bool:
        func = node.func if isinstance(node, ast.Call) else None
        return (isinstance(func, ast.Attribute) and func.attr == name) or (
            isinstance(func, ast.Name) and func.id == name
        )

    return (
        isinstance(expr, ast.Call)
        and isinstance(expr.func, ast.Attribute)
        and expr.func.attr == "format"
        and named(expr.func.value, "SQL")
        and len(expr.func.value.args) == 1
        and _is_str(expr.func.value.args[0])
        and bool(expr.args or expr.keywords)
        and all(named(a, "Identifier") for a in [*expr.args, *(k.value for k in expr.keywords)])
    )


def confinement_begin(expr: ast.expr) -> bool:
    """`self._begin`: the string executor.begin_confined made once, from a constant template and
    the 32 hexadecimal digits of a UUID rebuilt from its bytes."""
    return (
        isinstance(expr, ast.Attribute)
        and expr.attr == "_begin"
        and isinstance(expr.value, ast.Name)
        and expr.value.id == "self"
    )


# (module, function) -> why, and the one shape its dynamic statement may take. A module that must name
# something at run time (CREATE DATABASE for an embedded server, say) gets an entry here with
# `psycopg_identifiers`, so the dynamic part can only be a psycopg.sql.Identifier.
ALLOWED: dict[tuple[str, str], Allowance] = {
    ("migrations.py", "status"): Allowance(
        "yoyo names its bookkeeping table; format_sql fills in yoyo's own quoted name",
        yoyo_format_sql,
    ),
    ("connection/executor.py", "ConfinedExecutor._connection"): Allowance(
        "BEGIN and the confinement in one round trip: a simple-protocol query takes no parameters, "
        "so the customer's UUID goes in as its hexadecimal digits",
        confinement_begin,
    ),
    ("connection/executor.py", "ConfinedExecutor._in_transaction"): Allowance(
        "the same BEGIN and confinement, before a confined call's one statement",
        confinement_begin,
    ),
    ("seed.py", "load"): Allowance(
        "the demo data is SQL files shipped in the package, each run whole as one script",
        packaged_seed_file,
    ),
}


@dataclass(frozen=True)
class Finding:
    module: str
    line: int
    function: str
    call: str
    problem: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line} in {self.function}: {self.call}: {self.problem}"


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    calls: list[tuple[str, str, str]] = field(default_factory=list)  # (module, function, call) checked
    allowances_used: set[tuple[str, str]] = field(default_factory=set)


MUTATORS = {"append", "extend", "insert", "remove", "pop", "clear", "sort", "reverse", "__setitem__", "update", "add"}


def _is_str(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    if isinstance(call.func, ast.Name):
        return call.func.id
    return None


class _Module:
    """One parsed module: its functions (by qualified name) and its module-level constants."""

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.tree = ast.parse(source)
        self.functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
        self._collect(self.tree, "")
        bindings: dict[str, list[ast.expr]] = {}
        for node in self.tree.body:
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else [node.target]
                if isinstance(node, ast.AnnAssign) and node.value is not None
                else []
            )
            for target in targets:
                if isinstance(target, ast.Name):
                    bindings.setdefault(target.id, []).append(node.value)
        mutated = (
            {
                n.func.value.id
                for n in ast.walk(self.tree)
                if isinstance(n, ast.Call)
                and isinstance(n.func, ast.Attribute)
                and n.func.attr in MUTATORS
                and isinstance(n.func.value, ast.Name)
            }
            | {
                t.value.id
                for n in ast.walk(self.tree)
                if isinstance(n, (ast.Assign, ast.AugAssign, ast.Delete))
                for t in (n.targets if isinstance(n, (ast.Assign, ast.Delete)) else [n.target])
                if isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name)
            }
            | {
                n.target.id
                for n in ast.walk(self.tree)
                if isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name)
            }
            | {name for n in ast.walk(self.tree) if isinstance(n, ast.Global) for name in n.names}
        )
        self.constants = {
            name: values[0] for name, values in bindings.items() if len(values) == 1 and name not in mutated
        }
        # `from optiinfra_store.connection.executor import BIND_CUSTOMER`: (module file, name) of each import
        self.imports = {
            alias.asname or alias.name: (
                node.module.removeprefix("optiinfra_store.").replace(".", "/") + ".py",
                alias.name,
            )
            for node in self.tree.body
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("optiinfra_store.")
            for alias in node.names
        }
        # `table = "customers"` in a class body: what `load(self.table)` may load
        self.class_tables = [
            node.value
            for cls in ast.walk(self.tree)
            if isinstance(cls, ast.ClassDef)
            for node in cls.body
            if isinstance(node, (ast.Assign, ast.AnnAssign))
            and node.value is not None
            and any(
                isinstance(t, ast.Name) and t.id == "table"
                for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
            )
        ]

    def _collect(self, node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                self.functions[name] = child
                self._collect(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                self._collect(child, f"{prefix}{child.name}.")
            else:
                self._collect(child, prefix)

    def calls_in(self, function: ast.AST) -> Iterator[ast.Call]:
        """The calls in `function` itself and its lambdas (nested functions are checked on their own)."""
        pending = list(ast.iter_child_nodes(function))
        while pending:
            node = pending.pop()
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            if isinstance(node, ast.Call):
                yield node
            pending.extend(ast.iter_child_nodes(node))


def _parameters(function: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[list[str], set[str]]:
    """(positional parameters without self/cls, keyword-only parameters)."""
    positional = [a.arg for a in [*function.args.posonlyargs, *function.args.args]]
    if positional and positional[0] in ("self", "cls"):
        positional = positional[1:]
    return positional, {a.arg for a in function.args.kwonlyargs}


def _argument(call: ast.Call, slot: Slot) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg is not None and keyword.arg == slot.keyword:
            return keyword.value
    if slot.index is not None and slot.index < len(call.args):
        if not any(isinstance(a, ast.Starred) for a in call.args[: slot.index + 1]):
            return call.args[slot.index]
    return None


def _unwrapped(expr: ast.expr, kind: str) -> ast.expr:
    # list(columns) / tuple(columns) hand an identifier sequence on unchanged
    while (
        kind == IDENTIFIER
        and isinstance(expr, ast.Call)
        and isinstance(expr.func, ast.Name)
        and expr.func.id in ("list", "tuple")
        and len(expr.args) == 1
        and not expr.keywords
    ):
        expr = expr.args[0]
    return expr


def _sink_slots(call: ast.Call, sinks: dict[str, tuple[Slot, ...]]) -> Iterator[tuple[Slot, ast.expr]]:
    seen: set[tuple[str, int]] = set()
    for slot in sinks.get(_called_name(call) or "", ()):
        argument = _argument(call, slot)
        if argument is not None and (slot.kind, id(argument)) not in seen:
            seen.add((slot.kind, id(argument)))
            yield slot, argument


def _propagate(modules: list[_Module]) -> dict[str, tuple[Slot, ...]]:
    """SINKS plus every function that passes one of its parameters into a sink's slot, to a fixpoint."""
    sinks = dict(SINKS)
    changed = True
    while changed:
        changed = False
        for module in modules:
            for function in module.functions.values():
                positional, keyword_only = _parameters(function)
                found = set(sinks.get(function.name, ()))
                for call in module.calls_in(function):
                    for slot, argument in _sink_slots(call, sinks):
                        argument = _unwrapped(argument, slot.kind)
                        if isinstance(argument, ast.Name) and argument.id in (*positional, *keyword_only):
                            index = positional.index(argument.id) if argument.id in positional else None
                            found.add(Slot(index, argument.id, slot.kind))
                if found - set(sinks.get(function.name, ())):
                    sinks[function.name] = tuple(sorted(found, key=repr))
                    changed = True
    return sinks


class _Checker:
    def __init__(self, modules: list[_Module], allowed: dict[tuple[str, str], Allowance]) -> None:
        self.modules = modules
        self.by_name = {m.name: m for m in modules}
        # every `table = ...` of every class is a string constant: load(self.table) loads a .sql file
        self.tables_constant = all(_is_str(v) for m in modules for v in m.class_tables)
        self.allowed = allowed
        self.sinks = _propagate(modules)
        self.report = Report()

    def run(self) -> Report:
        for module in self.modules:
            self._check_q_bindings(module)
            for qualified, function in module.functions.items():
                for call in module.calls_in(function):
                    for slot, argument in _sink_slots(call, self.sinks):
                        self.report.calls.append((module.name, qualified, _called_name(call)))
                        problem = self._problem(module, qualified, function, argument, slot.kind)
                        if problem:
                            self.report.findings.append(
                                Finding(
                                    module.name,
                                    call.lineno,
                                    qualified,
                                    ast.unparse(call)[:120],
                                    problem,
                                )
                            )
            for call in module.calls_in(module.tree):  # module-level statements
                for slot, argument in _sink_slots(call, self.sinks):
                    self.report.calls.append((module.name, "<module>", _called_name(call)))
                    if problem := self._problem(module, "<module>", None, argument, slot.kind):
                        self.report.findings.append(
                            Finding(module.name, call.lineno, "<module>", ast.unparse(call)[:120], problem)
                        )
        return self.report

    def _check_q_bindings(self, module: _Module) -> None:
        """`self._q` must only ever be a loaded statement file, so `self._q.<name>` is a named statement."""
        for node in ast.walk(module.tree):
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(t, ast.Attribute) and t.attr == "_q" for t in targets):
                    value = node.value
                    table = value.args[0] if isinstance(value, ast.Call) and len(value.args) == 1 else None
                    by_class = (
                        isinstance(table, ast.Attribute)
                        and table.attr == "table"
                        and isinstance(table.value, ast.Name)
                        and table.value.id == "self"
                        and self.tables_constant
                    )
                    if not (
                        isinstance(value, ast.Call)
                        and _called_name(value) == "load"
                        and table is not None
                        and (_is_str(table) or by_class)
                    ):
                        self.report.findings.append(
                            Finding(
                                module.name,
                                node.lineno,
                                "-",
                                ast.unparse(node)[:120],
                                '_q must be bound to load("<table>") (the named statements of one .sql file)',
                            )
                        )

    def _problem(self, module, qualified, function, expr, kind, depth=0) -> str | None:
        expr = _unwrapped(expr, kind)
        if self._static(module, function, expr, kind, depth):
            return None
        allowance = self.allowed.get((module.name, qualified))
        if allowance is not None and allowance.shape(expr):
            self.report.allowances_used.add((module.name, qualified))
            return None
        what = {ast.JoinedStr: "an f-string", ast.BinOp: "an operator (+ or %)"}.get(type(expr))
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr in ("format", "join"):
            what = f"str.{expr.func.attr}()"
        return f"{kind} built at run time ({what or type(expr).__name__}): use a named statement or a constant"

    def _static(self, module, function, expr, kind, depth) -> bool:
        if depth > 10:
            return False
        if _is_str(expr):
            return True
        if kind == IDENTIFIER and isinstance(expr, (ast.Tuple, ast.List)):
            return all(_is_str(e) for e in expr.elts)
        if isinstance(expr, ast.IfExp):
            return all(self._static(module, function, e, kind, depth + 1) for e in (expr.body, expr.orelse))
        if isinstance(expr, ast.Attribute):
            owner = expr.value
            if (
                isinstance(owner, ast.Attribute)
                and owner.attr == "_q"
                and isinstance(owner.value, ast.Name)
                and owner.value.id == "self"
            ):
                return True  # self._q.<name>: a statement of a .sql file
            if isinstance(owner, ast.Name) and (owner.id == "queries" or self._loaded(module, owner.id)):
                return True  # queries.<name>, or Q.<name> with Q = load("...") at module level
            return False
        if isinstance(expr, ast.Name):
            if function is not None:
                positional, keyword_only = _parameters(function)
                if expr.id in (*positional, *keyword_only):
                    slots = self.sinks.get(function.name, ())
                    return any(s.keyword == expr.id and s.kind == kind for s in slots)  # checked at its callers
                local = self._local_values(function, expr.id)
                if local is not None:
                    return bool(local) and all(self._static(module, function, v, kind, depth + 1) for v in local)
            value = module.constants.get(expr.id)
            if value is not None:
                return self._static(module, None, value, kind, depth + 1)
            source, name = module.imports.get(expr.id, (None, None))
            if source in self.by_name:  # a constant of another module of the package
                other = self.by_name[source]
                value = other.constants.get(name)
                return value is not None and self._static(other, None, value, kind, depth + 1)
            return False
        return False

    @staticmethod
    def _loaded(module: _Module, name: str) -> bool:
        value = module.constants.get(name)
        return isinstance(value, ast.Call) and _called_name(value) == "load" and all(_is_str(a) for a in value.args)

    @staticmethod
    def _local_values(function, name: str) -> list[ast.expr] | None:
        """Every value bound to local `name` in `function`; [] if it is bound some other way (a
        loop, with, augmented assignment...), None if it is not a local at all."""
        values: list[ast.expr] = []
        local = False
        for node in ast.walk(function):
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
                values.append(node.value)
                local = True
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
                if node.value is not None:
                    values.append(node.value)
                local = True
            elif isinstance(
                node, (ast.AugAssign, ast.For, ast.AsyncFor, ast.With, ast.AsyncWith, ast.NamedExpr, ast.comprehension)
            ):
                bound = [
                    n
                    for n in ast.walk(node.target if hasattr(node, "target") else node)
                    if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Store)
                ]
                if isinstance(node, (ast.With, ast.AsyncWith)):
                    bound = [
                        n
                        for item in node.items
                        if item.optional_vars is not None
                        for n in ast.walk(item.optional_vars)
                        if isinstance(n, ast.Name) and n.id == name
                    ]
                if bound:
                    return []
        return values if local else None


def check_sources(sources: dict[str, str], allowed: dict[tuple[str, str], Allowance] | None = None) -> Report:
    """Check modules given as {name: source}; `allowed` defaults to ALLOWED."""
    modules = [_Module(name, source) for name, source in sorted(sources.items())]
    return _Checker(modules, ALLOWED if allowed is None else allowed).run()


def package_sources() -> dict[str, str]:
    return {
        path.relative_to(PACKAGE).as_posix(): path.read_text(encoding="utf-8") for path in sorted(PACKAGE.rglob("*.py"))
    }


# -- the package --------------------------------------------------------------------------------------


def test_package__every_statement_is_constant_or_named():
    report = check_sources(package_sources())
    assert not report.findings, "SQL built at run time:\n" + "\n".join(map(str, report.findings))


def test_package__the_check_sees_the_sql_calls():
    """A checker that found no calls would pass anything: it must see the drivers and the wrappers."""
    report = check_sources(package_sources())
    seen = {(module, call) for module, _, call in report.calls}
    assert {
        ("connection/executor.py", "fetchrow"),
        ("connection/executor.py", "copy_records_to_table"),
        ("workflow_events.py", "fetch"),
        ("seed.py", "execute"),
        ("migrations.py", "execute"),
    } <= seen
    # every repository module runs its statements through the executor
    wrapped = {module for module, _, call in report.calls if call in ("fetch", "fetchrow", "fetchval", "_page")}
    repositories = {p.relative_to(PACKAGE).as_posix() for p in (PACKAGE / "repositories").glob("*.py")}
    assert repositories - {"repositories/__init__.py", "repositories/base.py"} <= wrapped
    assert len(report.calls) >= 60


def test_package__a_planted_fstring_in_a_repository_is_caught():
    sources = package_sources()
    sources["repositories/customers.py"] += textwrap.dedent("""

        class Leaky(Customers):
            async def by_name(self, name):
                return await self._db.fetch(f"SELECT id FROM customers WHERE name = '{name}'")
    """)
    report = check_sources(sources)
    assert [(f.module, f.function) for f in report.findings] == [("repositories/customers.py", "Leaky.by_name")]


def test_package__every_allowance_is_still_needed():
    report = check_sources(package_sources())
    assert set(ALLOWED) == report.allowances_used, f"unused allowances: {set(ALLOWED) - report.allowances_used}"


# -- the checker, on planted sources -----------------------------------------------------------------


def findings(source: str, allowed: dict | None = None) -> list[Finding]:
    return check_sources({"planted.py": textwrap.dedent(source)}, allowed or {}).findings


@pytest.mark.parametrize(
    "statement",
    [
        'f"SELECT {x}"',
        '"SELECT * FROM " + table',
        '"SELECT %s" % x',
        '"SELECT {}".format(x)',
        '" UNION ".join(parts)',
        "self.sql",
        "getattr(self._q, name)",
        'self._q.list + " LIMIT 5"',
        'f"{self._q.list} LIMIT 5"',
    ],
)
def test_checker__dynamic_statement_is_caught(statement):
    caught = findings(f"""
        async def run(conn, x, table, parts, name, self):
            await conn.execute({statement})
    """)
    assert len(caught) == 1 and "built at run time" in caught[0].problem, caught


def test_checker__nested_functions_lambdas_and_module_level_calls_are_checked():
    caught = findings("""
        import asyncpg

        conn.execute("SELECT " + NAME)

        def outer(conn, x):
            async def inner():
                await conn.fetch(f"SELECT {x}")
            later = lambda: conn.fetchval("SELECT %s" % x)
            return inner, later
    """)
    assert sorted((f.function, f.line) for f in caught) == [("<module>", 4), ("outer", 9), ("outer.inner", 8)]


def test_checker__planted_fstring_execute_is_caught_with_its_place():
    caught = findings("""
        class Repo:
            async def leak(self, conn, x):
                await conn.execute(f"SELECT {x}")
    """)
    assert [(f.module, f.line, f.function, f.problem.split(" (")[0]) for f in caught] == [
        ("planted.py", 4, "Repo.leak", "statement built at run time"),
    ]
    assert "an f-string" in caught[0].problem


def test_checker__statement_passed_through_a_wrapper_is_checked_at_its_callers():
    caught = findings("""
        class Repo:
            async def _run(self, sql, *args):
                return await self._db.fetch(sql, *args)

            async def _twice(self, first, second):
                await self._run(first)
                return await self._run(second)

            async def good(self):
                return await self._twice(self._q.a, "SELECT 1")

            async def bad(self, where):
                return await self._twice(self._q.a, "SELECT 1 WHERE " + where)
    """)
    assert [(f.function, f.line) for f in caught] == [("Repo.bad", 14)]


def test_checker__local_variables_are_followed():
    caught = findings("""
        async def good(self, conn, flag):
            sql = self._q.a if flag else self._q.b
            return await conn.fetch(sql)

        async def bad(self, conn, table):
            sql = f"SELECT * FROM {table}"
            return await conn.fetch(sql)

        async def bad_loop(self, conn, names):
            for sql in names:
                await conn.fetch(sql)
    """)
    assert [f.function for f in caught] == ["bad", "bad_loop"]


def test_checker__constants_and_named_statements_pass():
    assert (
        findings("""
        from optiinfra_store.queries import load
        BIND = "SELECT set_config('x', $1, true)"
        Q = load("events")

        class Repo:
            def __init__(self):
                self._q = load("customers")

            async def calls(self, conn):
                await conn.execute(BIND, 1)
                await conn.fetch(Q.list)
                await conn.fetchrow(self._q.get_by_id, 1)
                await conn.fetchval("SELECT 1")
                await self._fetch(self._q.list, 1, 2)
    """)
        == []
    )


def test_checker__q_bound_to_anything_but_a_statement_file_is_caught():
    caught = findings("""
        class Repo:
            def __init__(self, table):
                self._q = load(table)
    """)
    assert len(caught) == 1 and "_q must be bound" in caught[0].problem
    by_class = """
        class Base:
            def __init__(self):
                self._q = load(self.table)

        class Customers(Base):
            table = "customers"

        class Odd(Base):
            table = TABLE
    """
    assert len(findings(by_class)) == 1  # one class's table is not a constant
    assert findings(by_class.replace("TABLE", '"odd"')) == []


def test_checker__constants_imported_from_another_module_are_followed():
    report = check_sources(
        {
            "connection/executor.py": 'BIND = "SELECT set_config($1, $2, true)"\nDYNAMIC = "SELECT " + X\n',
            "store.py": textwrap.dedent("""
            from optiinfra_store.connection.executor import BIND, DYNAMIC

            async def bind(conn):
                await conn.execute(BIND, 1, 2)

            async def dynamic(conn):
                await conn.execute(DYNAMIC)
        """),
        },
        {},
    )
    assert [(f.module, f.function) for f in report.findings] == [("store.py", "dynamic")]


def test_checker__copy_identifiers_must_be_fixed():
    caught = findings("""
        COLUMNS = ("a", "b")
        MUTABLE = ["a"]
        MUTABLE.append("b; DROP TABLE x")

        async def good(conn, rows):
            await conn.copy_records_to_table("metrics", records=rows, columns=list(COLUMNS))

        async def dynamic_table(conn, rows, name):
            await conn.copy_records_to_table(f"metrics_{name}", records=rows, columns=COLUMNS)

        async def dynamic_columns(conn, rows, extra):
            await conn.copy_records_to_table("metrics", records=rows, columns=[*COLUMNS, extra])

        async def mutated_columns(conn, rows):
            await conn.copy_records_to_table("metrics", records=rows, columns=MUTABLE)
    """)
    assert [f.function for f in caught] == ["dynamic_table", "dynamic_columns", "mutated_columns"]
    assert all(f.problem.startswith("identifier") for f in caught)


def test_checker__allowances_are_narrow():
    source = """
        from psycopg import sql

        def create(conn, name):
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

        def create_unquoted(conn, name):
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.SQL(name)))

        def elsewhere(conn, name):
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    """
    allowed = {
        ("planted.py", "create"): Allowance("test", psycopg_identifiers),
        ("planted.py", "create_unquoted"): Allowance("test", psycopg_identifiers),
    }
    assert [f.function for f in findings(source, allowed)] == ["create_unquoted", "elsewhere"]


def test_checker__yoyo_and_seed_shapes_only():
    assert yoyo_format_sql(ast.parse('b.format_sql("SELECT x FROM {0.migration_table_quoted}")').body[0].value)
    assert not yoyo_format_sql(ast.parse('b.format_sql("SELECT x FROM {0.migration_table}")').body[0].value)
    assert not yoyo_format_sql(ast.parse('b.format_sql(f"SELECT {x} FROM {{0.t_quoted}}")').body[0].value)
    assert packaged_seed_file(ast.parse('(seed_dir() / name).read_text(encoding="utf-8")').body[0].value)
    assert not packaged_seed_file(ast.parse("Path(user_path).read_text()").body[0].value)
