"""The named-query files: every statement the repositories need exists and matches its model."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import optiinfra_store.queries as queries_package
from optiinfra_store import records
from optiinfra_store.queries import load, parse
from optiinfra_store.repositories import repository_types

REPOSITORIES = list(repository_types().values())
QUERY_DIR = Path(queries_package.__file__).parent


def test_parse__splits_named_blocks_and_drops_comments():
    parsed = parse("x.sql", "-- name: one\n-- what it is for\nSELECT 1;\n\n-- name: two\nSELECT 2\n")
    assert parsed.names() == {"one", "two"}
    assert parsed.one == "SELECT 1" and parsed.two == "SELECT 2"
    with pytest.raises(AttributeError, match="three"):
        parsed.three  # noqa: B018 - the attribute access is what raises


def test_parse__duplicate_name_refused():
    with pytest.raises(ValueError, match="twice"):
        parse("x.sql", "-- name: one\nSELECT 1;\n-- name: one\nSELECT 2;")


def test_parse__name_that_would_shadow_an_attribute_refused():
    for name in ("names", "_source"):
        with pytest.raises(ValueError, match="cannot name a query"):
            parse("x.sql", f"-- name: {name}\nSELECT 1;")


def test_every_query_file_belongs_to_a_repository():
    # and workflow_transitions.sql to the live workflow events, maintenance.sql to Store.maintain,
    # distribution.sql to `distribute`
    tables = {repo.table for repo in REPOSITORIES} | {"workflow_transitions", "maintenance", "distribution"}
    assert {p.stem for p in QUERY_DIR.glob("*.sql")} == tables


@pytest.mark.parametrize("repo", REPOSITORIES, ids=lambda r: r.table)
def test_repository__has_the_common_statements(repo):
    assert {"insert", "get_by_id", "delete_by_id", "list"} <= load(repo.table).names()


@pytest.mark.parametrize("repo", REPOSITORIES, ids=lambda r: r.table)
def test_repository__each_statement_documented_and_never_select_star(repo):
    text = (QUERY_DIR / f"{repo.table}.sql").read_text()
    blocks = re.split(r"^-- name: ", text, flags=re.MULTILINE)[1:]
    for block in blocks:
        lines = block.splitlines()
        assert lines[1].startswith("-- "), f"{repo.table}.{lines[0]} has no comment line"
    assert not re.search(r"select\s+\*", text, re.IGNORECASE)


CUSTOMER_FROM_PARENT = {"approvals", "optimizations", "workflow_steps", "workflow_artifacts"}


@pytest.mark.parametrize("repo", REPOSITORIES, ids=lambda r: r.table)
def test_insert__binds_every_create_model_field_by_name(repo):
    create_model = getattr(records, f"{repo.record_type.__name__}Create")
    q = load(repo.table)
    columns = re.search(r"INSERT INTO \w+ \(([^)]*)\)", q.insert, re.S).group(1)
    # agent_configs takes the encrypted form of a sensitive value beside the model's fields
    extra = {"config_secret", "secret_key_id"} if repo.table == "agent_configs" else set()
    # a child table's customer is read from its parent in the statement (never from the caller)
    derived = {"customer_id"} if repo.table in CUSTOMER_FROM_PARENT else set()
    assert set(q.params("insert")) == set(create_model.model_fields) | extra
    assert {c.strip() for c in columns.split(",")} == set(q.params("insert")) | derived


UPDATABLE = [r for r in REPOSITORIES if hasattr(records, f"{r.record_type.__name__}Update")]


def test_update__a_repository_has_update_exactly_when_its_record_has_an_update_model():
    assert {r.table for r in UPDATABLE} == {r.table for r in REPOSITORIES if hasattr(r, "update")}
    assert {"customers", "agents", "recommendations", "agent_capabilities", "workflow_executions"} <= {
        r.table for r in UPDATABLE
    }
    assert "workflow_executions" in {r.table for r in UPDATABLE if versioned(r)}


def versioned(repo: type) -> bool:
    """Its update takes the expected version (last, after the model's fields)."""
    return "expected_version" in inspect.signature(repo.update).parameters


@pytest.mark.parametrize("repo", UPDATABLE, ids=lambda r: r.table)
def test_update__a_value_and_whether_it_was_given_for_each_update_model_field(repo):
    update_model = getattr(records, f"{repo.record_type.__name__}Update")
    q = load(repo.table)
    fields = set(update_model.model_fields)
    version = {"expected_version"} if versioned(repo) else set()
    customer = {"customer_id"} if repo.customer_owned else set()  # the row's, on a cluster (below)
    assert set(q.params("update")) == {"id"} | fields | {f"given_{f}" for f in fields} | version | customer


BY_ID = (
    "get_by_id", "get_detail", "get_status", "get_version", "get_retry_state", "history", "exists", "delete_by_id",
    "update",
)  # fmt: skip
"""The statements by id that a customer-owned table's repository sends with the customer (last)."""
ROUTED = re.compile(r"\((?P<p>\$\d+)::uuid IS NULL OR (\w+\.)?customer_id = (?P=p)\)")


@pytest.mark.parametrize("repo", [r for r in REPOSITORIES if r.customer_owned], ids=lambda r: r.table)
def test_customer_owned__statements_by_id_take_the_customer_null_on_one_server(repo):
    """On a schema distributed by customer, a statement by id names the row's customer so that it
    goes to one shard; null (one server) leaves it as it was."""
    q = load(repo.table)
    assert "customer_of" in q.names()
    named = sorted(set(BY_ID) & q.names())
    assert {"get_by_id", "delete_by_id"} <= set(named)
    for name in named:
        assert ROUTED.search(getattr(q, name)), f"{repo.table}.{name} does not name the customer"


def test_named_parameters__sent_in_order_of_first_use_with_casts_and_quoted_text_left_alone():
    q = parse(
        "t.sql",
        "-- name: one\n-- x\nSELECT :b::int, ':a', \"c:d\", 'it''s :a', :a, :b FROM t WHERE x::text = :a -- isn't :c\n;\n"
        "-- name: two\n-- y\nSELECT $2, $1;\n",
    )
    assert q.one == "SELECT $1::int, ':a', \"c:d\", 'it''s :a', $2, $1 FROM t WHERE x::text = $2 -- isn't :c\n"
    assert q.params("one") == ("b", "a") and q.params("two") == ()


def test_named_parameters__args_follow_the_names_not_the_models_field_order():
    from pydantic import BaseModel

    class Reordered(BaseModel):
        b: int
        a: int

    q = parse(
        "t.sql", "-- name: one\n-- x\nUPDATE t SET a = CASE WHEN :given_a THEN :a END WHERE id = :id AND b = :b;\n"
    )
    assert q.args("one", Reordered(b=2, a=1), id=9) == [True, 1, 9, 2]
    assert q.args("one", Reordered.model_construct(b=2, a=1, _fields_set={"b"}), id=9) == [False, 1, 9, 2]


def test_named_parameters__mixed_with_positional_ones_are_refused():
    with pytest.raises(ValueError, match="mixes"):
        parse("t.sql", "-- name: one\n-- x\nSELECT :a, $2;\n")


def test_repositories_package__exports_every_repository_it_lists():
    import optiinfra_store.repositories as package

    listed = {repository.__name__ for repository in REPOSITORIES}
    assert set(package.__all__) == listed | {"Repositories", "repository_types"}
    namespace: dict[str, object] = {}
    exec("from optiinfra_store.repositories import *", namespace)
    assert {name for name in namespace if not name.startswith("__")} == set(package.__all__)
