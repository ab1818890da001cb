"""The statement spans' names, and a store without opentelemetry installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from optiinfra_store import queries
from optiinfra_store.connection.tracing import statement_name, tracer_of

ROOT = Path(__file__).resolve().parents[2]


def test_every_named_statement_has_its_files_name():
    names = queries.named()
    assert names[queries.load("workflow_executions").get_by_id] == "workflow_executions.get_by_id"
    assert names[queries.load("workflow_transitions").events_since] == "workflow_transitions.events_since"
    assert names[queries.load("customers").insert] == "customers.insert"


def test_a_statement_of_no_file_is_named_by_its_first_keyword_only():
    assert statement_name("select 1 where $1 = 'secret@example.com'") == "SELECT"
    assert statement_name("  ") == "statement"
    assert statement_name("(SELECT 1)") == "statement"


def test_no_tracer_without_a_provider():
    """This process sets no global provider: the API's proxy stands in, and it gives no tracer."""
    assert tracer_of() is None


def test_without_opentelemetry_the_store_imports_and_makes_no_tracer():
    code = (
        "import sys; sys.modules['opentelemetry'] = None\n"  # an import of it fails, as when not installed
        "import optiinfra_store\n"
        "from optiinfra_store.connection import tracing\n"
        "assert tracing.trace is None and tracing.tracer_of() is None\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
