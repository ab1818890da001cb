"""An embedded PostgreSQL server for demos and tests (the `embedded` extra: pgserver)."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

from optiinfra_store.errors import ConfigurationError, StoreUnavailable

INSTALL_HINT = (
    "no --dsn given and the embedded server is not installed: "
    "pip install 'optiinfra-store[embedded]', or pass --dsn / set OPTIINFRA_DATABASE_URL"
)


def available() -> bool:
    """True when the `embedded` extra (pgserver) is installed."""
    try:
        with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR on import
            warnings.simplefilter("ignore")
            import pgserver  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def embedded_server(data_dir: str | Path | None = None) -> Iterator[str]:
    """Start a private PostgreSQL server and yield its superuser DSN; stop it on exit.

    With no `data_dir` the cluster lives in a temporary directory that is removed afterwards.
    Raises ConfigurationError when pgserver is not installed.
    """
    try:
        with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR on import
            warnings.simplefilter("ignore")
            import pgserver
    except ImportError as exc:
        raise ConfigurationError("the embedded server needs pgserver: pip install 'optiinfra-store[embedded]'") from exc
    temporary = data_dir is None
    path = Path(tempfile.mkdtemp(prefix="optiinfra-pg-")) if data_dir is None else Path(data_dir)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = pgserver.get_server(path, cleanup_mode="stop")  # type: ignore[attr-defined]
    except Exception as exc:  # pgserver raises plain exceptions with the server log
        if temporary:
            shutil.rmtree(path, ignore_errors=True)
        raise StoreUnavailable(f"embedded PostgreSQL failed to start in {path}: {exc}") from exc
    try:
        with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR here too
            warnings.simplefilter("ignore")
            uri = server.get_uri()
        yield uri
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server.cleanup()
        if temporary:
            shutil.rmtree(path, ignore_errors=True)
