"""Read the application schema out of the PostgreSQL catalog, for comparisons."""

from __future__ import annotations

import psycopg

from optiinfra_store.migrations import YOYO_TABLES

_QUERIES = {
    "tables": """
        SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1""",
    "columns": """
        SELECT table_name, column_name, data_type, udt_name, is_nullable, column_default,
               character_maximum_length
          FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2""",
    "enums": """
        SELECT t.typname, e.enumlabel, e.enumsortorder
          FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
          JOIN pg_namespace n ON n.oid = t.typnamespace
         WHERE n.nspname = 'public' ORDER BY 1, 3""",
    "constraints": """
        SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid)
          FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2""",
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2""",
    "triggers": """
        SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid)
          FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1, 2""",
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
