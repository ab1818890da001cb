"""The package's folders are its layers (ARCHITECTURE.md): every module imports only from its own
layer and the layers below it, read from the source, so a new import that points up fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "optiinfra_store"

# the layer of each root module and folder, and the layers each may import from (its own included)
LAYER_OF = {
    "__init__": "public",
    "errors": "base",
    "enums": "base",
    "records": "base",
    "connection": "connection",
    "queries": "queries",
    "crypto": "crypto",
    "rules": "rules",
    "migrations": "schema",
    "seed": "schema",
    "distribution": "schema",
    "repositories": "repositories",
    "store": "store",
    "workflow_events": "store",
    "api": "api",
    "commands": "commands",
}
BELOW = {
    "base": {"base"},
    "connection": {"base"},
    "queries": {"base"},
    "crypto": {"base"},
    "rules": {"base"},
    "schema": {"base", "connection", "queries"},  # queries: distribution.sql
    "repositories": {"base", "connection", "queries", "crypto", "rules", "schema"},
    "store": {"base", "connection", "queries", "crypto", "repositories", "schema"},
    "api": {"base", "store"},
    "commands": {"base", "connection", "crypto", "repositories", "schema", "store", "api"},
    "public": {"base", "store", "schema"},
}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "static" not in p.parts)


def _layer(module: str) -> str:
    """The layer of `optiinfra_store.<first>...`."""
    first = module.split(".")[1] if "." in module else "__init__"
    return LAYER_OF[first]


def _imports(path: Path) -> set[str]:
    """The package's modules `path` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("optiinfra_store"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("optiinfra_store"):
            if node.module == "optiinfra_store":  # `from optiinfra_store import migrations`: the names are modules
                found.update(f"optiinfra_store.{a.name}" for a in node.names if a.name in LAYER_OF)
            else:
                found.add(node.module)
    return found


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_every_root_module_and_folder_has_a_layer() -> None:
    entries = {p.stem for p in PACKAGE.glob("*.py")} | {
        p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()
    }
    assert entries == set(LAYER_OF)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down_the_layers(path: Path) -> None:
    layer = _layer(_name(path)) if path.name != "__init__.py" or path.parent != PACKAGE else "public"
    allowed = BELOW[layer] | {layer}
    upward = {m for m in _imports(path) if m != "optiinfra_store" and _layer(m) not in allowed}
    assert not upward, f"{path.relative_to(PACKAGE)} ({layer}) imports {sorted(upward)} from a layer above it"


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from optiinfra_store.store import Store\n")
    assert _imports(module) == {"optiinfra_store.store"}
    assert _layer("optiinfra_store.store") not in BELOW["repositories"]
