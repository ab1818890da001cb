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
        """Drop the databases, and the connect role each migrated one made (roles outlive databases)."""
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            for name in self.created:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
                with contextlib.suppress(psycopg.errors.DependentObjectsStillExist):
                    conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(connect_role(name))))
        self.created.clear()


def connect_role(database: str) -> str:
    """The role whose members may connect to a migrated database (0020): `<database>_connect`."""
    return f"{database}_connect"


def app_login(admin_dsn: str, dsn: str, name: str) -> str:
    """A login of the kind the README tells agents to use, for the database of `dsn`: a member of
    optiinfra_app and of that database's connect role. Returns `dsn` logged in as it."""
    ensure_role(admin_dsn, name, "LOGIN IN ROLE optiinfra_app")
    database = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("GRANT {} TO {}").format(sql.Identifier(connect_role(str(database))), sql.Identifier(name))
        )
    return with_user(dsn, name)


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


class ReplicatedCluster:
    """A throwaway primary and its streaming replica (made with `pg_basebackup -R`), migrated, on
    free ports of 127.0.0.1, from the machine's PostgreSQL binaries."""

    def __init__(self, bindir: Path, work: Path, run_as: list[str]) -> None:
        self.bindir, self.work, self._run_as = bindir, work, run_as
        self.primary_port, self.replica_port = free_port(), free_port()
        self.primary_dsn = f"postgresql://postgres@127.0.0.1:{self.primary_port}/postgres"
        self.replica_dsn = f"postgresql://postgres@127.0.0.1:{self.replica_port}/postgres"

    def run(self, tool: str, *args: str) -> None:
        subprocess.run([*self._run_as, str(self.bindir / tool), *args], check=True, capture_output=True, cwd=self.work)

    def start(self, name: str, port: int) -> None:
        options = f"-p {port} -k {self.work} -c listen_addresses=127.0.0.1 -c fsync=off -c wal_level=replica"
        self.run(
            "pg_ctl", "start", "-w", "-D", str(self.work / name), "-l", str(self.work / f"{name}.log"), "-o", options
        )

    def stop(self, name: str, mode: str = "fast") -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.run("pg_ctl", "stop", "-w", "-m", mode, "-D", str(self.work / name))

    def caught_up(self, timeout: float = 30.0) -> None:
        """Wait until the replica has replayed everything the primary has written."""
        with psycopg.connect(self.primary_dsn, autocommit=True) as primary:
            target = primary.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.replica_dsn, autocommit=True) as replica:
            while not replica.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)).fetchone()[0]:
                if time.monotonic() > deadline:
                    raise TimeoutError("the replica did not catch up")
                time.sleep(0.05)

    def replay(self, paused: bool) -> None:
        with psycopg.connect(self.replica_dsn, autocommit=True) as replica:
            replica.execute("SELECT pg_wal_replay_pause()" if paused else "SELECT pg_wal_replay_resume()")


@contextlib.contextmanager
def replicated_cluster() -> Iterator[ReplicatedCluster]:
    """Skips the test where the machine has no PostgreSQL server binaries."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_basebackup"))
    if not found:
        pytest.skip("no PostgreSQL server binaries (/usr/lib/postgresql/*/bin) for a throwaway primary and replica")
    work = Path(tempfile.mkdtemp(prefix="optiinfra-replica-"))
    work.chmod(0o777)
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # initdb refuses root
    cluster = ReplicatedCluster(found[-1].parent, work, run_as)
    try:
        cluster.run("initdb", "-D", str(work / "primary"), "-U", "postgres", "--auth=trust", "--no-sync")
        cluster.start("primary", cluster.primary_port)
        migrations.apply(cluster.primary_dsn)
        cluster.run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(cluster.primary_port), "-U", "postgres",
            "-D", str(work / "replica"), "-R", "-X", "stream", "--no-sync",
        )  # fmt: skip
        cluster.start("replica", cluster.replica_port)
        cluster.caught_up()
        yield cluster
    finally:
        cluster.stop("replica", "immediate")
        cluster.stop("primary", "immediate")
        shutil.rmtree(work, ignore_errors=True)
