"""Read the application schema out of the PostgreSQL catalog, for comparisons."""

from __future__ import annotations

import psycopg

from optiinfra_store.migrations import YOYO_TABLES

# Partitions are left out: which exist depends on the day (agent_metrics has one per day).
_NOT_PARTITION = "NOT EXISTS (SELECT 1 FROM pg_class p WHERE p.oid = {} AND p.relispartition)"

_QUERIES = {
    "tables": """
        SELECT relname FROM pg_class
         WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p') AND NOT relispartition
         ORDER BY 1""",
    "columns": f"""
        SELECT table_name, column_name, data_type, udt_name, is_nullable, column_default,
               character_maximum_length
          FROM information_schema.columns
         WHERE table_schema = 'public'
           AND {_NOT_PARTITION.format("format('public.%I', table_name)::regclass")}
         ORDER BY 1, 2""",
    "enums": """
        SELECT t.typname, e.enumlabel, e.enumsortorder
          FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
          JOIN pg_namespace n ON n.oid = t.typnamespace
         WHERE n.nspname = 'public' ORDER BY 1, 3""",
    "constraints": f"""
        SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid)
          FROM pg_constraint
         WHERE connamespace = 'public'::regnamespace AND {_NOT_PARTITION.format("conrelid")}
         ORDER BY 1, 2""",
    "indexes": f"""
        SELECT tablename, indexname, indexdef FROM pg_indexes
         WHERE schemaname = 'public' AND {_NOT_PARTITION.format("format('public.%I', tablename)::regclass")}
         ORDER BY 1, 2""",
    "triggers": f"""
        SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid)
          FROM pg_trigger WHERE NOT tgisinternal AND {_NOT_PARTITION.format("tgrelid")}
         ORDER BY 1, 2""",
    "functions": """
        SELECT proname, pg_get_functiondef(p.oid) FROM pg_proc p
         WHERE pronamespace = 'public'::regnamespace ORDER BY 1, 2""",
}


def snapshot(dsn: str) -> dict[str, list[tuple]]:
    """Everything that defines the schema, minus yoyo's own bookkeeping tables."""
    with psycopg.connect(dsn) as conn:
        result = {name: conn.execute(query).fetchall() for name, query in _QUERIES.items()}
    result = {name: [row for row in rows if row[0] not in YOYO_TABLES] for name, rows in result.items()}
    return result


def enums(dsn: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for typname, label, _ in snapshot(dsn)["enums"]:
        out.setdefault(typname, []).append(label)
    return out
