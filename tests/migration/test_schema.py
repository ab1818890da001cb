"""The schema as the database sees it: tables, enums, keys, checks, indexes, cascades."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from optiinfra_store import migrations, seed
from optiinfra_store.repositories import repository_types
from tests.migration.catalog import enums, snapshot

C1 = "c1000000-0000-4000-8000-000000000001"  # Acme Corp
A1 = "a1000000-0000-4000-8000-000000000001"  # Cost Optimizer
E1 = "f1000000-0000-4000-8000-000000000001"  # completed cost analysis
E2 = "f1000000-0000-4000-8000-000000000002"  # running performance tuning
S105 = "f2000000-0000-4000-8000-000000000105"  # E1's generate_report step
S201 = "f2000000-0000-4000-8000-000000000201"  # E2's first step
R1 = "d1000000-0000-4000-8000-000000000001"  # recommendation with an approved approval
R2 = "d1000000-0000-4000-8000-000000000002"  # recommendation with a pending approval
AP1 = "d2000000-0000-4000-8000-000000000001"
AP2 = "d2000000-0000-4000-8000-000000000002"

# every table has a repository, but the audit trail (read through workflow_executions.history), the
# analytics rollups with their bookkeeping (kept by Store.maintain), and the key of the live
# events' customer tags (read by the events hub)
BOOKKEEPING_TABLES = {
    "workflow_rollups",
    "workflow_step_rollups",
    "workflow_error_rollups",
    "workflow_rollup_state",
    "workflow_rollup_pending",
    "optiinfra_notify_key",
}
TABLES = set(repository_types()) | {"workflow_transitions"} | BOOKKEEPING_TABLES

# The ON DELETE rule of a foreign key follows from its columns: a reference that may be null is set
# null when its row goes (an event outlives its agent, a state the customer and the execution it
# last worked for); any other cascades. Exceptions, each with its reason:
ON_DELETE_EXCEPTIONS = {
    # the trail of a step (null on an execution's own transitions) goes with the step
    "workflow_transitions_workflow_step_id_fkey": "c",
}
# pg_constraint.confdeltype: c cascade, n set null
SET_NULL_FOREIGN_KEYS = {
    "events_agent_id_fkey",
    "agent_states_current_workflow_id_fkey",
    "agent_states_customer_id_fkey",
}  # the references the README names as kept when their row goes; every other one cascades

# Ids: generated UUIDs, time-ordered (optiinfra_uuid7(), 0009) on every table but these, which
# predate 0009 and keep random (v4) ids.
RANDOM_ID_TABLES = {
    "customers",
    "agents",
    "recommendations",
    "approvals",
    "optimizations",
    "agent_configs",
    "agent_states",
    "agent_capabilities",
}

# every CHECK and UNIQUE rule, each with a statement it must reject
BAD_ROWS = {
    "customers_name_check": "INSERT INTO customers (name, email) VALUES ('  ', 'a@b.example')",
    "customers_email_check": "INSERT INTO customers (name, email) VALUES ('X', 'not-an-email')",
    "customers_email_key": "INSERT INTO customers (name, email) VALUES ('X', 'platform@acme.example')",
    "agents_name_check": "INSERT INTO agents (type, name, version) VALUES ('cost', '', '1.0')",
    "agents_version_check": "INSERT INTO agents (type, name, version) VALUES ('cost', 'x', ' ')",
    "events_title_check": f"INSERT INTO events (customer_id, event_type, title) VALUES ('{C1}', 'agent_error', '')",
    "recommendations_title_check": "INSERT INTO recommendations (customer_id, agent_id, recommendation_type, title) "
    f"VALUES ('{C1}', '{A1}', 'cost_reduction', '')",
    "recommendations_estimated_savings_usd_check": "INSERT INTO recommendations (customer_id, agent_id, recommendation_type, title, estimated_savings_usd) "
    f"VALUES ('{C1}', '{A1}', 'cost_reduction', 't', -1)",
    "recommendations_confidence_score_check": "INSERT INTO recommendations (customer_id, agent_id, recommendation_type, title, confidence_score) "
    f"VALUES ('{C1}', '{A1}', 'cost_reduction', 't', 1.5)",
    "approvals_decided_at_check": f"INSERT INTO approvals (recommendation_id, status) VALUES ('{R1}', 'approved')",
    "optimizations_completed_at_check": "INSERT INTO optimizations (recommendation_id, approval_id, started_at, completed_at) "
    f"VALUES ('{R1}', '{AP1}', now(), now() - interval '1 hour')",
    "optimizations_approval_approved_check": f"INSERT INTO optimizations (recommendation_id, approval_id) VALUES ('{R2}', '{AP2}')",
    "agent_configs_agent_id_config_key_key": f"INSERT INTO agent_configs (agent_id, config_key, config_value) VALUES ('{A1}', 'cost_threshold_usd', '1')",
    "agent_configs_config_key_check": f"INSERT INTO agent_configs (agent_id, config_key, config_value) VALUES ('{A1}', ' ', 'x')",
    "agent_configs_number_value_check": "INSERT INTO agent_configs (agent_id, config_key, config_value, config_type) "
    f"VALUES ('{A1}', 'k', 'twelve', 'number')",
    "agent_configs_boolean_value_check": "INSERT INTO agent_configs (agent_id, config_key, config_value, config_type) "
    f"VALUES ('{A1}', 'k', 'yes', 'boolean')",
    "agent_states_agent_id_key": f"INSERT INTO agent_states (agent_id) VALUES ('{A1}')",
    "agent_states_error_count_check": f"UPDATE agent_states SET error_count = -1 WHERE agent_id = '{A1}'",
    "agent_capabilities_agent_id_name_version_key": "INSERT INTO agent_capabilities (agent_id, capability_name, capability_version) "
    f"VALUES ('{A1}', 'gpu_cost_analysis', '1.2.0')",
    "agent_capabilities_capability_name_check": "INSERT INTO agent_capabilities (agent_id, capability_name, capability_version) "
    f"VALUES ('{A1}', '', '1.0')",
    "agent_capabilities_capability_version_check": "INSERT INTO agent_capabilities (agent_id, capability_name, capability_version) "
    f"VALUES ('{A1}', 'x', '')",
    "agent_metrics_metric_name_check": f"INSERT INTO agent_metrics (agent_id, metric_name, metric_value) VALUES ('{A1}', '', 1)",
    "agent_metrics_metric_value_check": f"INSERT INTO agent_metrics (agent_id, metric_name, metric_value) VALUES ('{A1}', 'm', 'NaN')",
    "workflow_executions_completed_at_check": "INSERT INTO workflow_executions (agent_id, customer_id, workflow_type, started_at, completed_at) "
    f"VALUES ('{A1}', '{C1}', 'cost_analysis', now(), now() - interval '1 second')",
    "agent_configs_value_or_secret_check": f"INSERT INTO agent_configs (agent_id, config_key, config_value) VALUES ('{A1}', 'nothing', NULL)",
    "agent_configs_secret_is_sensitive_check": "INSERT INTO agent_configs (agent_id, config_key, config_value, config_secret, is_sensitive) "
    f"VALUES ('{A1}', 'not_secret', NULL, '\\x00', false)",
    "agent_configs_secret_key_id_check": "INSERT INTO agent_configs (agent_id, config_key, config_value, config_secret, is_sensitive, secret_key_id) "
    f"VALUES ('{A1}', 'bad_key_id', NULL, '\\x00', true, 'not-hex')",
    "workflow_executions_customer_id_agent_id_idempotency_key_key": "INSERT INTO workflow_executions (agent_id, customer_id, workflow_type, idempotency_key) "
    f"SELECT '{A1}', '{C1}', 'cost_analysis', 'twice' FROM generate_series(1, 2)",
    "workflow_executions_idempotency_key_check": "INSERT INTO workflow_executions (agent_id, customer_id, workflow_type, idempotency_key) "
    f"VALUES ('{A1}', '{C1}', 'cost_analysis', ' ')",
    "workflow_executions_version_check": "INSERT INTO workflow_executions (agent_id, customer_id, workflow_type, version) "
    f"VALUES ('{A1}', '{C1}', 'cost_analysis', 0)",
    # (an UPDATE cannot break it: the trigger sets the next version over any value given)
    "workflow_executions_audit_not_stored": "INSERT INTO workflow_executions (agent_id, customer_id, workflow_type, audit_actor) "
    f"VALUES ('{A1}', '{C1}', 'cost_analysis', 'someone')",
    "agent_states_version_check": f"INSERT INTO agent_states (agent_id, version) VALUES ('{A1}', 0)",
    "optiinfra_notify_key_one_row_check": "INSERT INTO optiinfra_notify_key (id, key, inner_key, outer_key) "
    "SELECT false, key, inner_key, outer_key FROM optiinfra_notify_key",
    "optiinfra_notify_key_key_check": "UPDATE optiinfra_notify_key SET key = '\\x00'",
    "workflow_steps_execution_id_step_order_key": f"INSERT INTO workflow_steps (workflow_execution_id, step_name, step_order) VALUES ('{E1}', 'again', 1)",
    "workflow_steps_step_name_check": f"INSERT INTO workflow_steps (workflow_execution_id, step_name, step_order) VALUES ('{E1}', ' ', 9)",
    "workflow_steps_step_order_check": f"INSERT INTO workflow_steps (workflow_execution_id, step_name, step_order) VALUES ('{E1}', 'x', 0)",
    "workflow_steps_retry_count_check": "INSERT INTO workflow_steps (workflow_execution_id, step_name, step_order, retry_count) "
    f"VALUES ('{E1}', 'x', 9, -1)",
    # (an UPDATE cannot break it: the take_audit trigger clears what a transition sets)
    "workflow_steps_audit_not_stored": "INSERT INTO workflow_steps (workflow_execution_id, step_name, step_order, audit_reason) "
    f"VALUES ('{E1}', 'x', 9, '{{}}')",
    "workflow_steps_max_retries_check": "INSERT INTO workflow_steps (workflow_execution_id, step_name, step_order, max_retries) "
    f"VALUES ('{E1}', 'x', 9, -1)",
    "workflow_steps_retries_within_max_check": "INSERT INTO workflow_steps (workflow_execution_id, step_name, step_order, retry_count, max_retries) "
    f"VALUES ('{E1}', 'x', 9, 4, 3)",
    "workflow_steps_completed_at_check": "INSERT INTO workflow_steps (workflow_execution_id, step_name, step_order, started_at, completed_at) "
    f"VALUES ('{E1}', 'x', 9, now(), now() - interval '1 second')",
    "workflow_artifacts_artifact_name_check": "INSERT INTO workflow_artifacts (workflow_execution_id, artifact_type, artifact_name, artifact_path) "
    f"VALUES ('{E1}', 'log', '', 's3://x')",
    "workflow_artifacts_artifact_path_check": "INSERT INTO workflow_artifacts (workflow_execution_id, artifact_type, artifact_name, artifact_path) "
    f"VALUES ('{E1}', 'log', 'x', '')",
    "workflow_artifacts_artifact_size_bytes_check": "INSERT INTO workflow_artifacts (workflow_execution_id, artifact_type, artifact_name, artifact_path, "
    f"artifact_size_bytes) VALUES ('{E1}', 'log', 'x', 's3://x', -1)",
    "workflow_transitions_append_only_check": "UPDATE workflow_transitions SET actor = 'forger'",
    "workflow_rollup_state_singleton_check": "INSERT INTO workflow_rollup_state (singleton) VALUES (false)",
    "workflow_rollup_pending_hour_check": "INSERT INTO workflow_rollup_pending (hour) VALUES ('2026-01-01 10:30+00')",
    "workflow_rollups_width_check": (
        "INSERT INTO workflow_rollups VALUES ('week', now(), gen_random_uuid(), gen_random_uuid(), 'health_check',"
        " 0, 0, 0, 0, 0, 0, 0, 0, 0, NULL, '{}', 0, 0, 0, 0, 0)"
    ),
    "workflow_step_rollups_width_check": (
        "INSERT INTO workflow_step_rollups VALUES ('week', now(), gen_random_uuid(), 'health_check', 's',"
        " 0, 0, 0, '{}', 0, 0, 0, 0)"
    ),
    "workflow_rollups_key": (
        "INSERT INTO workflow_rollups SELECT 'day', '2026-01-01', optiinfra_everyone(), optiinfra_everyone(), NULL,"
        " 0, 0, 0, 0, 0, 0, 0, 0, 0, NULL, '{}', 0, 0, 0, 0, 0 FROM generate_series(1, 2)"
    ),
    "workflow_step_rollups_key": (
        "INSERT INTO workflow_step_rollups SELECT 'day', '2026-01-01', optiinfra_everyone(), NULL, 's',"
        " 0, 0, 0, '{}', 0, 0, 0, 0 FROM generate_series(1, 2)"
    ),
    "workflow_error_rollups_width_check": (
        "INSERT INTO workflow_error_rollups VALUES ('week', now(), gen_random_uuid(), 'health_check', 'step', 'E',"
        " 1, now(), NULL, NULL)"
    ),
    "workflow_error_rollups_source_check": (
        "INSERT INTO workflow_error_rollups VALUES ('day', now(), gen_random_uuid(), 'health_check', 'agent', 'E',"
        " 1, now(), NULL, NULL)"
    ),
    # an artifact whose step belongs to another execution
    "workflow_artifacts_workflow_step_id_fkey": "INSERT INTO workflow_artifacts (workflow_execution_id, workflow_step_id, artifact_type, artifact_name, "
    f"artifact_path) VALUES ('{E1}', '{S201}', 'log', 'x', 's3://x')",
}

# unique keys that exist only as targets of composite foreign keys: the primary key rejects
# any duplicate first, so no row can break them on its own
FK_TARGET_KEYS = {
    "recommendations_id_customer_id_key",
    "approvals_id_recommendation_id_customer_id_key",
    "workflow_executions_id_customer_id_key",
    "workflow_steps_id_execution_id_customer_id_key",
}

# the seed's rows per table; a table not named here holds none
SEEDED_COUNTS = {
    "workflow_transitions": 19,  # the creation of each of the 4 executions and 15 steps
    "customers": 2,
    "agents": 4,
    "events": 3,
    "recommendations": 2,
    "approvals": 2,
    "optimizations": 1,
    "agent_configs": 12,
    "agent_states": 4,
    "agent_capabilities": 11,
    "agent_metrics": 12,
    "workflow_executions": 4,
    "workflow_steps": 15,
    "workflow_artifacts": 8,
}


@pytest.fixture(scope="module")
def seeded_dsn(databases) -> str:
    dsn = databases.create("optiinfra_schema")
    migrations.apply(dsn)
    seed.load(dsn)
    return dsn


@pytest.fixture
def conn(seeded_dsn: str) -> Iterator[psycopg.Connection]:
    """A connection whose work is rolled back after the test."""
    with psycopg.connect(seeded_dsn) as connection:
        yield connection
        connection.rollback()


def counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as c:
        return {t: c.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in sorted(TABLES - BOOKKEEPING_TABLES)}


def test_tables__one_per_repository_and_the_audit_trail(seeded_dsn):
    assert {row[0] for row in snapshot(seeded_dsn)["tables"]} == TABLES


def test_columns__timestamps_have_time_zone_and_ids_are_generated_uuids(seeded_dsn):
    columns = snapshot(seeded_dsn)["columns"]
    timestamps = [c for c in columns if c[2].startswith("timestamp")]
    assert timestamps and all(c[2] == "timestamp with time zone" for c in timestamps)
    ids = {c[0]: c for c in columns if c[1] == "id" and c[0] not in {"workflow_transitions"} | BOOKKEEPING_TABLES}
    # the audit trail is keyed by a bigint identity, the rollups by what they summarize
    assert set(ids) == TABLES - {"workflow_transitions"} - BOOKKEEPING_TABLES
    assert all(c[3] == "uuid" for c in ids.values())
    assert RANDOM_ID_TABLES < set(ids)
    assert {t: c[5] for t, c in ids.items()} == {
        t: "gen_random_uuid()" if t in RANDOM_ID_TABLES else "optiinfra_uuid7()" for t in ids
    }
    for table in TABLES - {"workflow_transitions"} - BOOKKEEPING_TABLES:
        assert (table, "created_at") in {(c[0], c[1]) for c in columns}
        assert (table, "updated_at") in {(c[0], c[1]) for c in columns}


def foreign_keys(dsn: str) -> dict[str, tuple[str, str, list[str], bool]]:
    """{name: (table, ON DELETE rule, its columns, whether every one of them may be null)}."""
    with psycopg.connect(dsn) as c:
        rows = c.execute("""
            SELECT con.conname, con.conrelid::regclass::text, con.confdeltype::text,
                   array_agg(a.attname::text ORDER BY k.n), bool_and(NOT a.attnotnull)
              FROM pg_constraint con
             CROSS JOIN LATERAL unnest(con.conkey) WITH ORDINALITY AS k(attnum, n)
              JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
             WHERE con.contype = 'f' AND con.connamespace = 'public'::regnamespace
               AND NOT EXISTS (SELECT 1 FROM pg_class p WHERE p.oid = con.conrelid AND p.relispartition)
             GROUP BY con.oid, con.conname, con.conrelid, con.confdeltype
        """).fetchall()
    return {name: (table, rule, columns, nullable) for name, table, rule, columns, nullable in rows}


def test_foreign_keys__on_delete_rules(seeded_dsn):
    keys = foreign_keys(seeded_dsn)
    assert {name: rule for name, (_, rule, _, _) in keys.items()} == {
        name: ON_DELETE_EXCEPTIONS.get(name, "n" if nullable else "c") for name, (*_, nullable) in keys.items()
    }
    assert SET_NULL_FOREIGN_KEYS | set(ON_DELETE_EXCEPTIONS) <= set(keys)
    assert {name for name, (_, rule, _, _) in keys.items() if rule == "n"} == SET_NULL_FOREIGN_KEYS


def test_foreign_keys__every_id_column_references_its_row(seeded_dsn):
    """Every uuid column named `*_id` (but the rollups' keys) leads a foreign key of its table,
    named `<table>_<column>_fkey`; but the `customer_id` of a row whose parent is the customer's
    too, which rides in that parent's key instead (the next test)."""
    keys = foreign_keys(seeded_dsn)
    references = {(table, columns[0]): name for name, (table, _, columns, _) in keys.items()}
    carried = {(table, "customer_id") for _, (table, _, columns, _) in keys.items() if "customer_id" in columns[1:]}
    id_columns = {
        (c[0], c[1])
        for c in snapshot(seeded_dsn)["columns"]
        if c[1].endswith("_id") and c[3] == "uuid" and c[0] not in BOOKKEEPING_TABLES
    } - carried
    assert len(id_columns) >= 20 and len(references) == len(keys)
    assert {column: references.get(column) for column in id_columns} == {
        (table, column): f"{table}_{column}_fkey" for table, column in id_columns
    }
    assert set(references) == id_columns  # and no foreign key leads with another column


def test_foreign_keys__between_customer_rows_include_the_customer(seeded_dsn):
    """A foreign key from a row with a customer to a row with a customer includes both customers:
    the database keeps them equal (and a table distributed by customer can keep the key)."""
    with psycopg.connect(seeded_dsn) as c:
        keys = c.execute("""
            SELECT con.conname,
                   EXISTS (SELECT FROM unnest(con.conkey, con.confkey) AS k (mine, theirs)
                            WHERE k.mine = (SELECT attnum FROM pg_attribute
                                             WHERE attrelid = con.conrelid AND attname = 'customer_id')
                              AND k.theirs = (SELECT attnum FROM pg_attribute
                                               WHERE attrelid = con.confrelid AND attname = 'customer_id'))
              FROM pg_constraint con
             WHERE con.contype = 'f' AND con.connamespace = 'public'::regnamespace
               AND NOT EXISTS (SELECT FROM pg_class p WHERE p.oid = con.conrelid AND p.relispartition)
               AND EXISTS (SELECT FROM pg_attribute WHERE attrelid = con.conrelid AND attname = 'customer_id')
               AND EXISTS (SELECT FROM pg_attribute WHERE attrelid = con.confrelid AND attname = 'customer_id')
        """).fetchall()
    # agent_states' owner follows its current workflow, set by a trigger (0010), and may be null
    exempt = {"agent_states_current_workflow_id_fkey"}
    assert len(keys) >= 8
    assert {name for name, includes in keys if not includes} == exempt


def test_constraints__every_check_and_unique_rule_has_a_bad_row(seeded_dsn):
    with psycopg.connect(seeded_dsn) as c:
        names = {
            row[0]
            for row in c.execute(
                "SELECT conname FROM pg_constraint "
                "WHERE contype IN ('c', 'u') AND connamespace = 'public'::regnamespace"
            )
        }
    # raised by triggers, not catalog CHECKs
    names |= {"optimizations_approval_approved_check", "workflow_transitions_append_only_check"}
    assert names - FK_TARGET_KEYS == set(BAD_ROWS) - {"workflow_artifacts_workflow_step_id_fkey"}


@pytest.mark.parametrize("constraint", sorted(BAD_ROWS))
def test_constraints__reject_bad_row(conn, constraint):
    with pytest.raises(psycopg.errors.IntegrityError) as info:
        conn.execute(BAD_ROWS[constraint])
    assert info.value.diag.constraint_name == constraint


def test_metric_value__rejects_infinities(conn):
    for value in ("Infinity", "-Infinity"):
        with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():
            conn.execute(
                "INSERT INTO agent_metrics (agent_id, metric_name, metric_value) VALUES (%s, 'm', %s)",
                (A1, value),
            )


def test_foreign_key__missing_reference_rejected(conn):
    with pytest.raises(psycopg.errors.ForeignKeyViolation) as info:
        conn.execute(
            "INSERT INTO workflow_executions (agent_id, customer_id, workflow_type) "
            "VALUES (%s, gen_random_uuid(), 'cost_analysis')",
            (A1,),
        )
    assert info.value.diag.constraint_name == "workflow_executions_customer_id_fkey"


def test_artifact__step_of_same_execution_accepted(conn):
    conn.execute(
        "INSERT INTO workflow_artifacts (workflow_execution_id, workflow_step_id, artifact_type, "
        "artifact_name, artifact_path) VALUES (%s, %s, 'log', 'ok', 's3://ok')",
        (E1, S105),
    )


def test_cascade__deleting_customer_removes_executions_steps_artifacts(conn):
    conn.execute("DELETE FROM customers WHERE id = %s", (C1,))
    for table, column in [
        ("workflow_executions", "id"),
        ("workflow_steps", "workflow_execution_id"),
        ("workflow_artifacts", "workflow_execution_id"),
    ]:
        remaining = conn.execute(f"SELECT count(*) FROM {table} WHERE {column} IN (%s, %s)", (E1, E2))
        assert remaining.fetchone()[0] == 0
    # the other customer's workflows are untouched
    assert conn.execute("SELECT count(*) FROM workflow_executions").fetchone()[0] == 2


def test_cascade__deleting_agent_keeps_its_events(conn):
    conn.execute("DELETE FROM agents WHERE id = %s", (A1,))
    row = conn.execute("SELECT agent_id FROM events WHERE id = 'e1000000-0000-4000-8000-000000000001'").fetchone()
    assert row == (None,)
    assert conn.execute("SELECT count(*) FROM agent_configs WHERE agent_id = %s", (A1,)).fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM workflow_executions WHERE agent_id = %s", (A1,)).fetchone()[0] == 0


def test_cascade__deleting_step_removes_only_its_artifacts(conn):
    conn.execute("DELETE FROM workflow_steps WHERE id = %s", (S105,))
    names = {
        r[0]
        for r in conn.execute("SELECT artifact_name FROM workflow_artifacts WHERE workflow_execution_id = %s", (E1,))
    }
    assert names == {"Recommendations JSON", "GPU Utilization Chart"}


def test_cascade__deleting_execution_clears_current_workflow(conn):
    agent = "a1000000-0000-4000-8000-000000000002"
    conn.execute("UPDATE agent_states SET current_workflow_id = %s WHERE agent_id = %s", (E2, agent))
    conn.execute("DELETE FROM workflow_executions WHERE id = %s", (E2,))
    row = conn.execute("SELECT current_workflow_id FROM agent_states WHERE agent_id = %s", (agent,))
    assert row.fetchone() == (None,)


def test_updated_at__trigger_moves_it_on_update(seeded_dsn):
    with psycopg.connect(seeded_dsn, autocommit=True) as c:
        before = c.execute("SELECT updated_at FROM customers WHERE id = %s", (C1,)).fetchone()[0]
        c.execute("UPDATE customers SET metadata = metadata WHERE id = %s", (C1,))
        created, after = c.execute("SELECT created_at, updated_at FROM customers WHERE id = %s", (C1,)).fetchone()
    assert after > before
    assert after > created


def test_indexes__every_foreign_key_column_leads_an_index(seeded_dsn):
    with psycopg.connect(seeded_dsn) as c:
        unindexed = c.execute("""
            SELECT con.conname
              FROM pg_constraint con
             WHERE con.contype = 'f' AND con.connamespace = 'public'::regnamespace
               AND NOT EXISTS (
                   SELECT 1 FROM pg_index i
                    WHERE i.indrelid = con.conrelid AND i.indkey[0] = con.conkey[1])
        """).fetchall()
    assert unindexed == []


@pytest.mark.parametrize(
    "table, columns",
    [
        # the indexes the workflow-history specification lists, as leading columns
        ("workflow_executions", "agent_id, status"),
        ("workflow_executions", "customer_id, workflow_type"),
        ("workflow_executions", "started_at"),
        ("workflow_executions", "status"),
        ("workflow_executions", "workflow_type"),
        ("workflow_steps", "workflow_execution_id, step_order"),
        ("workflow_steps", "workflow_execution_id, status"),
        ("workflow_steps", "step_name, status"),
        ("workflow_steps", "status"),
        ("workflow_artifacts", "workflow_execution_id, artifact_type"),
        ("workflow_artifacts", "workflow_step_id, artifact_type"),
        ("workflow_artifacts", "artifact_type"),
        ("agent_states", "current_workflow_id"),
        ("agent_metrics", "agent_id, metric_name, collection_timestamp"),
        ("workflow_transitions", "workflow_execution_id, id"),
    ],
)
def test_indexes__listed_columns_are_indexed(seeded_dsn, table, columns):
    defs = [row[2] for row in snapshot(seeded_dsn)["indexes"] if row[0] == table]
    assert any(f"({columns}" in d for d in defs), defs


def test_indexes__gin_on_metric_metadata(seeded_dsn):
    defs = [row[2] for row in snapshot(seeded_dsn)["indexes"] if row[0] == "agent_metrics"]
    assert any("USING gin (metadata jsonb_path_ops)" in d for d in defs)


def seeded_counts() -> dict[str, int]:
    """What the seed holds: SEEDED_COUNTS, and no row in any other table."""
    return {t: SEEDED_COUNTS.get(t, 0) for t in sorted(TABLES - BOOKKEEPING_TABLES)}


def test_seed__counts_match_the_scenarios(seeded_dsn):
    assert set(SEEDED_COUNTS) <= TABLES - BOOKKEEPING_TABLES
    assert counts(seeded_dsn) == seeded_counts()


def test_seed__loading_twice_changes_nothing(seeded_dsn):
    with psycopg.connect(seeded_dsn) as c:
        before = c.execute("SELECT max(updated_at) FROM workflow_steps").fetchone()[0]
    seed.load(seeded_dsn)
    assert counts(seeded_dsn) == seeded_counts()
    with psycopg.connect(seeded_dsn) as c:
        assert c.execute("SELECT max(updated_at) FROM workflow_steps").fetchone()[0] == before


def test_seed__scenarios_have_their_shape(seeded_dsn):
    with psycopg.connect(seeded_dsn) as c:
        rows = c.execute("""
            SELECT e.workflow_type::text, e.status::text, count(DISTINCT s.id), count(DISTINCT a.id),
                   coalesce(sum(DISTINCT s.retry_count), 0)
              FROM workflow_executions e
              LEFT JOIN workflow_steps s ON s.workflow_execution_id = e.id
              LEFT JOIN workflow_artifacts a ON a.workflow_execution_id = e.id
             GROUP BY e.id ORDER BY 1
        """).fetchall()
    assert rows == [
        ("cost_analysis", "completed", 5, 3, 0),
        ("performance_tuning", "running", 4, 1, 0),
        ("quality_check", "failed", 3, 2, 0),
        ("scaling_decision", "completed", 3, 2, 2),
    ]


def test_enums__python_enums_match_database(seeded_dsn):
    from optiinfra_store.enums import DATABASE_ENUMS

    assert {name: [m.value for m in enum] for name, enum in DATABASE_ENUMS.items()} == enums(seeded_dsn)


# columns a record shows in another form: the encrypted value is returned decrypted as config_value,
# and whether it is encrypted as is_encrypted (the id of its key stays in the database)
RECORD_FORMS = {("agent_configs", "config_secret"): "is_encrypted", ("agent_configs", "secret_key_id"): "is_encrypted"}
# written by transitions, never stored (the *_audit_not_stored checks): no field of a record
WRITE_ONLY = {
    (table, column) for table in ("workflow_executions", "workflow_steps") for column in ("audit_actor", "audit_reason")
}


def test_records__every_column_is_a_field(seeded_dsn):
    columns: dict[str, set[str]] = {}
    for table, column, *_ in snapshot(seeded_dsn)["columns"]:
        if (table, column) not in WRITE_ONLY:
            columns.setdefault(table, set()).add(RECORD_FORMS.get((table, column), column))
    for repo in repository_types().values():
        assert set(repo.record_type.model_fields) == columns[repo.table], repo.table


README = Path(__file__).resolve().parents[2] / "README.md"


def readme_schema_rows() -> dict[str, tuple[str, str]]:
    """README's "Schema at a glance" table: {migration: (its tables, its enum types)}."""
    section = README.read_text().split("## Schema at a glance", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| (.*?) \|(.*)\|$", section, re.MULTILINE)
    return {migration: (tables, enum_types) for migration, tables, enum_types in rows}


def test_readme__schema_at_a_glance_has_every_migration_table_and_enum_type(seeded_dsn):
    rows = readme_schema_rows()
    assert list(rows) == [
        path.stem for path in sorted(migrations.migrations_dir().glob("*.sql")) if "." not in path.stem
    ]
    named_tables = set(re.findall(r"\w+", " ".join(tables for tables, _ in rows.values())))
    assert TABLES <= named_tables, TABLES - named_tables
    named_enums = [name for _, enum_types in rows.values() for name in re.findall(r"\w+", enum_types)]
    assert sorted(named_enums) == sorted(enums(seeded_dsn))
