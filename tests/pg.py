"""A real PostgreSQL server for the test session, and scratch databases on it.

Order: $OPTIINFRA_TEST_DSN (a database is created on that server for the session), else a
testcontainers PostgreSQL when a Docker engine answers, else the embedded pgserver.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from optiinfra_store import migrations
from optiinfra_store.dsn import with_database

TEST_DSN_ENV = "OPTIINFRA_TEST_DSN"


def docker_engine_available() -> bool:
    """True only when a Docker engine answers a ping within a few seconds."""
    if not os.environ.get("DOCKER_HOST") and not os.path.exists("/var/run/docker.sock"):
        return False
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


@contextlib.contextmanager
def session_server() -> Iterator[tuple[str, str]]:
    """Yield (admin DSN, where it came from) of a server the session may create databases on."""
    dsn = os.environ.get(TEST_DSN_ENV)
    if dsn:
        yield dsn, f"${TEST_DSN_ENV}"
        return
    if docker_engine_available():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as container:
            yield container.get_connection_url(), "testcontainers"
        return
    from optiinfra_store.embedded import embedded_server

    with embedded_server() as embedded_dsn:
        yield embedded_dsn, "embedded pgserver"


class Databases:
    """Creates uniquely named databases on the test server and drops them all at the end."""

    def __init__(self, admin_dsn: str) -> None:
        self.admin_dsn = admin_dsn
        self.created: list[str] = []

    def create(self, prefix: str = "optiinfra_test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.created.append(name)
        return with_database(self.admin_dsn, name)

    def drop_all(self) -> None:
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            for name in self.created:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        self.created.clear()


def with_user(dsn: str, user: str) -> str:
    """The same server and database, logged in as `user` (no password: the test servers trust)."""
    parts = urlsplit(dsn)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


def ensure_role(admin_dsn: str, name: str, options: str = "LOGIN") -> None:
    """Create a role once per server (roles are shared by every database on it). `options` is a
    constant of the test's, e.g. "LOGIN IN ROLE optiinfra_app"."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        if conn.execute("SELECT FROM pg_roles WHERE rolname = %s", (name,)).fetchone() is None:
            with contextlib.suppress(psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
                conn.execute(sql.SQL("CREATE ROLE {} " + options).format(sql.Identifier(name)))


@contextlib.contextmanager
def private_embedded_server(prefix: str) -> Iterator[Any]:
    """An embedded PostgreSQL (pgserver) of the caller's own, migrated, in a temporary directory
    removed afterwards; for tests that change server settings, restart it or read its log
    (`server.log`). Skips the test where pgserver is not installed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver
    except ImportError:
        pytest.skip("pgserver (the `embedded` extra) is not installed: no private server")
    data_dir = Path(tempfile.mkdtemp(prefix=prefix))
    server = pgserver.get_server(data_dir, cleanup_mode="stop")
    try:
        migrations.apply(server.get_uri())
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.cleanup()
        shutil.rmtree(data_dir, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def pgbouncer(server_dsn: str, *, pool_size: int = 4) -> Iterator[str]:
    """pgbouncer (Debian's package) in transaction mode in front of the server of `server_dsn`,
    on a free port of 127.0.0.1, with `pool_size` server connections per database; yields the DSN of
    the same database through it. Skips the test where pgbouncer is not installed."""
    binary = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None)
    if binary is None:
        pytest.skip("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
    info = psycopg.conninfo.conninfo_to_dict(server_dsn)
    user = info.get("user") or "postgres"
    work = Path(tempfile.mkdtemp(prefix="optiinfra-pgbouncer-"))
    work.chmod(0o777)  # pgbouncer will not run as root: it drops to another user below
    port = free_port()
    (work / "pgbouncer.ini").write_text(
        f"""[databases]
* = host={info.get("host") or "127.0.0.1"} port={info.get("port") or 5432} user={user}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = any
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 1000
ignore_startup_parameters = extra_float_digits
logfile = {work}/pgbouncer.log
pidfile = {work}/pgbouncer.pid
""",
        encoding="utf-8",
    )
    command = [binary, str(work / "pgbouncer.ini")]
    if os.geteuid() == 0:  # as the owner of the server's socket directory, which it must enter
        host = info.get("host") or ""
        owner = pwd.getpwuid(Path(host).stat().st_uid).pw_name if host.startswith("/") else "postgres"
        command[1:1] = ["-u", owner]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                log = (work / "pgbouncer.log").read_text() if (work / "pgbouncer.log").exists() else ""
                raise RuntimeError(
                    f"pgbouncer did not start: {process.stderr.read().decode() if process.stderr else ''}{log}"
                )
            time.sleep(0.05)
        yield f"postgresql://{user}@127.0.0.1:{port}/{info['dbname']}"
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        if process.poll() is None:
            process.kill()
        shutil.rmtree(work, ignore_errors=True)
