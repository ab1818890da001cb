"""Locate the SQL that ships with the package (migrations and seeds)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def sql_dir() -> Path:
    """The `sql/` tree: inside an installed wheel, else beside the package in a checkout."""
    for candidate in (_PACKAGE_DIR / "sql", _PACKAGE_DIR.parent / "sql"):
        if (candidate / "migrations").is_dir():
            return candidate
    raise FileNotFoundError(f"no sql/ directory found near {_PACKAGE_DIR}")


def migrations_dir() -> Path:
    return sql_dir() / "migrations"


def seed_dir() -> Path:
    return sql_dir() / "seed"
