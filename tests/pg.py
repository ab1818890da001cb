"""A real PostgreSQL server for the test session, and scratch databases on it.

Order: $OPTIINFRA_TEST_DSN (a database is created on that server for the session), else a
testcontainers PostgreSQL when a Docker engine on this machine answers and has (or can pull) the
image of $OPTIINFRA_TEST_IMAGE (default postgres:16-alpine) and testcontainers' reaper, else the
embedded pgserver. $OPTIINFRA_TEST_SERVER=testcontainers or =embedded takes that source alone.
"""

from __future__ import annotations

import atexit
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
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from optiinfra_store import migrations
from optiinfra_store.connection.dsn import with_database

TEST_DSN_ENV = "OPTIINFRA_TEST_DSN"
TEST_SERVER_ENV = "OPTIINFRA_TEST_SERVER"
"""`testcontainers` or `embedded`: the session's server comes from there, with no fallback."""
TEST_IMAGE_ENV = "OPTIINFRA_TEST_IMAGE"
DEFAULT_TEST_IMAGE = "postgres:16-alpine"
LOCAL_TEST_IMAGE = "optiinfra-postgres:15-bookworm"
"""What tests/docker/build-image makes from Debian's packages, for engines without a registry."""
CONTAINER_LABEL = "optiinfra-store.test-session"
"""Label of the session's container; its value, `<host name>:<pid>`, names the session that owns it."""
CONTAINER_SETTINGS = "postgres -c fsync=off -c max_connections=200"
"""A throwaway server: nothing to keep after a crash, so no fsync (databases are created by the
hundred); twice the 100 connections of the embedded server, room to spare for the session's pools,
the pgbouncers in front of it and the CLI processes."""


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


def session_image() -> str:
    return os.environ.get(TEST_IMAGE_ENV) or DEFAULT_TEST_IMAGE


def sources() -> str:
    """Where the session's server will come from, in order, for the report header."""
    container = f"testcontainers ({session_image()})"
    forced = os.environ.get(TEST_SERVER_ENV)
    if forced:
        return f"{container if forced == 'testcontainers' else forced} only (${TEST_SERVER_ENV})"
    return f"${TEST_DSN_ENV}, else {container}, else embedded pgserver"


@contextlib.contextmanager
def session_server(say: Callable[[str], None] = print) -> Iterator[tuple[str, str]]:
    """Yield (admin DSN, where it came from) of a server the session may create databases on.
    `say` prints one line: why the session falls back from testcontainers."""
    forced = os.environ.get(TEST_SERVER_ENV, "")
    if forced not in ("", "testcontainers", "embedded"):
        raise pytest.UsageError(f"${TEST_SERVER_ENV} is {forced!r}: testcontainers, embedded, or unset")
    dsn = os.environ.get(TEST_DSN_ENV)
    if dsn and not forced:
        yield dsn, f"${TEST_DSN_ENV}"
        return
    engine = forced != "embedded" and docker_engine_available()
    if forced == "testcontainers" and not engine:
        raise RuntimeError(f"${TEST_SERVER_ENV}=testcontainers, but no Docker engine answers")
    if engine:
        image = session_image()
        unavailable = unavailable_images(image)
        if unavailable and forced:
            raise RuntimeError(f"${TEST_SERVER_ENV}=testcontainers, but {unavailable}")
        if not unavailable:
            started = time.monotonic()
            with postgres_container(image) as container_dsn:
                yield container_dsn, f"testcontainers ({image}, up in {time.monotonic() - started:.1f} s)"
            return
        say(f"testcontainers: {unavailable}; using the embedded server instead")
    from optiinfra_store.commands.embedded import embedded_server

    with embedded_server() as embedded_dsn:
        yield embedded_dsn, "embedded pgserver"


def unavailable_images(image: str) -> str | None:
    """None when the engine has, or can pull, `image` and (unless it is disabled) testcontainers'
    reaper; else one line saying which cannot be had and why."""
    import docker
    import requests
    from testcontainers.core.config import testcontainers_config

    client = docker.from_env()
    wanted = [image] if testcontainers_config.ryuk_disabled else [image, testcontainers_config.ryuk_image]
    for name in wanted:
        try:
            client.images.get(name)
            continue
        except docker.errors.ImageNotFound:
            pass
        try:
            client.images.pull(name)
        except (docker.errors.DockerException, requests.RequestException) as exc:
            if name == image:
                hint = f"tests/docker/build-image makes {LOCAL_TEST_IMAGE} from Debian's packages, ${TEST_IMAGE_ENV} names it"
            else:
                hint = "TESTCONTAINERS_RYUK_DISABLED=true runs without the reaper (the session removes its container)"
            # the engine's own words (e.g. the registry's "no such host"), not the whole HTTP error
            reason = (getattr(exc, "explanation", None) or str(exc) or type(exc).__name__).splitlines()[0]
            return f"image {name} is not on the Docker engine and cannot be pulled ({reason}); {hint}"
    return None


@contextlib.contextmanager
def postgres_container(image: str) -> Iterator[str]:
    """A PostgreSQL container of `image` (the official image's contract) for the session; yields its
    superuser DSN. It is removed on exit, or at interpreter exit should the session end without
    its teardown; a session killed outright leaves it to the next one, which removes it."""
    import docker
    from testcontainers.core.config import ConnectionMode, testcontainers_config

    with warnings.catch_warnings():  # 4.15 moved it to testcontainers.community.postgres, and warns here
        warnings.simplefilter("ignore", DeprecationWarning)
        from testcontainers.postgres import PostgresContainer

    # Through 127.0.0.1, where the port is published: finding /.dockerenv, testcontainers would
    # otherwise connect to the engine's gateway or bridge address.
    testcontainers_config.tc_host_override = "127.0.0.1"
    testcontainers_config.connection_mode_override = ConnectionMode.docker_host
    remove_leftover_containers(docker.from_env())
    container = PostgresContainer(
        image,
        username="postgres",
        dbname="postgres",
        driver=None,
        labels={CONTAINER_LABEL: f"{socket.gethostname()}:{os.getpid()}"},
        shm_size="256m",  # parallel queries' shared memory; Docker gives 64 MB
    )
    # The suite logs in as the roles it creates, without passwords, as on the other test servers;
    # trusting host connections is safe because the port is published on 127.0.0.1 alone.
    container.with_env("POSTGRES_HOST_AUTH_METHOD", "trust").with_command(CONTAINER_SETTINGS)
    container.ports["5432"] = ("127.0.0.1", None)  # docker-py: (address, any free port)
    try:
        container.start()
        atexit.register(remove_container, container)
        yield container.get_connection_url()
    finally:
        atexit.unregister(remove_container)
        remove_container(container)


def remove_container(container: Any) -> None:
    """Remove the container (and its volume) if it is still there."""
    import docker

    with contextlib.suppress(docker.errors.NotFound):  # already removed: at exit, or by hand
        container.stop()


def remove_leftover_containers(client: Any) -> None:
    """Remove the containers of this machine's earlier sessions whose process is gone."""
    import docker

    host = socket.gethostname()
    for leftover in client.containers.list(all=True, filters={"label": CONTAINER_LABEL}):
        owner_host, _, pid = leftover.labels[CONTAINER_LABEL].rpartition(":")
        if owner_host == host and pid.isdigit() and not process_alive(int(pid)):
            with contextlib.suppress(docker.errors.APIError):  # gone, or being removed by another session
                leftover.remove(force=True, v=True)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        pass
    return True


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


def database_of(dsn: str) -> str:
    return str(psycopg.conninfo.conninfo_to_dict(dsn)["dbname"])


def may_connect(admin_dsn: str, dsn: str, name: str) -> str:
    """Let role `name` connect to the database of `dsn` (its connect role); returns `dsn` logged
    in as it."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("GRANT {} TO {}").format(sql.Identifier(connect_role(database_of(dsn))), sql.Identifier(name))
        )
    return with_user(dsn, name)


def app_login(admin_dsn: str, dsn: str, name: str) -> str:
    """A login of the kind the README tells agents to use, for the database of `dsn`: a member of
    optiinfra_app and of that database's connect role. Returns `dsn` logged in as it."""
    ensure_role(admin_dsn, name, "LOGIN IN ROLE optiinfra_app")
    return may_connect(admin_dsn, dsn, name)


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
def private_embedded_server(prefix: str, *, migrated: bool = True) -> Iterator[Any]:
    """An embedded PostgreSQL (pgserver) of the caller's own, migrated unless asked otherwise, in a
    temporary directory removed afterwards; for tests that change server settings or roles, restart
    it or read its log (`server.log`). Skips the test where pgserver is not installed."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver
    except ImportError:
        pytest.skip("pgserver (the `embedded` extra) is not installed: no private server")
    data_dir = Path(tempfile.mkdtemp(prefix=prefix))
    server = pgserver.get_server(data_dir, cleanup_mode="stop")
    try:
        if migrated:
            migrations.apply(server.get_uri())
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.cleanup()
        shutil.rmtree(data_dir, ignore_errors=True)


def stop_embedded(server: Any, mode: str = "fast") -> None:
    """Stop a `private_embedded_server` (pg_ctl stop; fast: the sessions are terminated;
    immediate: every process quits at once, releasing nothing, and the next start recovers)."""
    import pgserver

    pgserver.pg_ctl(["-w", "-m", mode, "stop"], pgdata=server.pgdata, user=server.system_user, timeout=30)


def start_embedded(server: Any) -> None:
    """Start a stopped `private_embedded_server` again on the same data directory and socket
    (pg_ctl start, the options pgserver used)."""
    import pgserver

    socket_dir = server.get_postmaster_info().socket_dir
    pgserver.pg_ctl(
        ["-w", "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(server.log), "start"],
        pgdata=server.pgdata,
        user=server.system_user,
        timeout=30,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def pgbouncer(
    server_dsn: str, *, pool_size: int = 4, pool_mode: str = "transaction", ignore: str = "extra_float_digits"
) -> Iterator[str]:
    """pgbouncer (Debian's package) in `pool_mode` in front of the server of `server_dsn`,
    on a free port of 127.0.0.1, with `pool_size` server connections per database; yields the DSN of
    the same database through it; `ignore` is its ignore_startup_parameters. Skips the test where pgbouncer is not installed."""
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
pool_mode = {pool_mode}
default_pool_size = {pool_size}
max_client_conn = 1000
ignore_startup_parameters = {ignore}
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

    @staticmethod
    def listing(*ports: int, form: str, database: str = "postgres", password: str | None = None, **query: str) -> str:
        """A DSN listing the servers of 127.0.0.1 on `ports`, in that order, in one of the two
        multi-host forms: `uri` (postgresql://h:p1,h:p2/db?...) or `host-list`
        (postgresql:///db?host=h,h&port=p1,p2&...); `query` adds parameters (target_session_attrs)."""
        login = f"postgres:{password}" if password else "postgres"
        if form == "uri":
            servers = ",".join(f"127.0.0.1:{port}" for port in ports)
            return f"postgresql://{login}@{servers}/{database}" + (f"?{urlencode(query)}" if query else "")
        assert form == "host-list", form
        hosts = {"host": ",".join("127.0.0.1" for _ in ports), "port": ",".join(map(str, ports))}
        login_query = {"user": "postgres"} | ({"password": password} if password else {})
        return f"postgresql:///{database}?{urlencode(hosts | login_query | query, safe=',')}"

    def start(self, name: str, port: int) -> None:
        options = f"-p {port} -k {self.work} -c listen_addresses=127.0.0.1 -c fsync=off -c wal_level=replica"
        self.run(
            "pg_ctl", "start", "-w", "-D", str(self.work / name), "-l", str(self.work / f"{name}.log"), "-o", options
        )

    def stop(self, name: str, mode: str = "fast") -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.run("pg_ctl", "stop", "-w", "-m", mode, "-D", str(self.work / name))

    def promote(self) -> None:
        """Make the replica a primary (a failover: stop the primary first)."""
        self.run("pg_ctl", "promote", "-w", "-D", str(self.work / "replica"))

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


CITUS_SETTINGS = {
    "shared_preload_libraries": "citus",
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "max_connections": "200",
    # Citus commits a transaction that wrote to several nodes (reference tables, multi-shard
    # writes) with two-phase commit, which needs prepared-transaction slots
    "max_prepared_transactions": "200",
    # a throwaway cluster sends no anonymous usage reports (Citus built with libcurl does by default)
    "citus.enable_statistics_collection": "off",
    # no TLS between nodes on the loopback: with its default (sslmode=require) CREATE EXTENSION
    # citus turns ssl on by ALTER SYSTEM, writing a self-signed certificate into the data directory
    "citus.node_conninfo": "sslmode=disable",
}
"""The nodes' settings. wal_level stays `replica`: only shard moves need `logical`."""


def postgres_versions() -> list[tuple[int, Path]]:
    """(major version, bindir) of each PostgreSQL server under /usr/lib/postgresql, oldest first."""
    found = [
        (int(bindir.parent.name), bindir)
        for bindir in (initdb.parent for initdb in Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if bindir.parent.name.isdigit()
    ]
    return sorted(found)


def citus_missing(bindir: Path) -> str | None:
    """None when Citus is installed for the PostgreSQL of `bindir`; else what is missing."""
    configured = subprocess.run(
        [str(bindir / "pg_config"), "--pkglibdir", "--sharedir"], check=True, capture_output=True, text=True
    )
    libdir, sharedir = (Path(line) for line in configured.stdout.splitlines())
    if not (libdir / "citus.so").exists():
        return f"no citus.so in {libdir}"
    if not (sharedir / "extension" / "citus.control").exists():
        return f"no citus.control in {sharedir / 'extension'}"
    return None


class CitusCluster:
    """A throwaway Citus coordinator and two workers on free ports of 127.0.0.1, from the machine's
    PostgreSQL binaries. Each database is made on all three nodes, the coordinator's copy holding
    the metadata; tests connect to the workers' copies to see what reached them."""

    def __init__(self, version: int, bindir: Path, work: Path, run_as: list[str]) -> None:
        self.version, self.bindir, self.work, self._run_as = version, bindir, work, run_as
        self.coordinator_port = free_port()
        self.worker_ports = [free_port(), free_port()]
        self.admin_dsn = self.dsn(self.coordinator_port)
        """The coordinator's `postgres` database, where databases are created."""
        self.created: list[str] = []

    @property
    def nodes(self) -> dict[str, int]:
        """Port of each node by name (its data directory in `work`): coordinator, worker1, worker2."""
        return {"coordinator": self.coordinator_port} | {
            f"worker{i}": port for i, port in enumerate(self.worker_ports, 1)
        }

    @staticmethod
    def dsn(port: int, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{port}/{database}"

    def worker_dsns(self, dsn: str) -> list[str]:
        """DSNs of the workers' copies of the database of `dsn` (one made by `create_database`)."""
        return [self.dsn(port, database_of(dsn)) for port in self.worker_ports]

    def run(self, tool: str, *args: str) -> None:
        subprocess.run([*self._run_as, str(self.bindir / tool), *args], check=True, capture_output=True, cwd=self.work)

    def start(self, name: str) -> None:
        """initdb and start node `name`."""
        data = str(self.work / name)
        self.run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "--no-sync")
        options = " ".join(
            [f"-p {self.nodes[name]}", f"-k {self.work}", *(f"-c {k}={v}" for k, v in CITUS_SETTINGS.items())]
        )
        log = self.work / f"{name}.log"
        try:
            self.run("pg_ctl", "start", "-w", "-D", data, "-l", str(log), "-o", options)
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"the Citus {name} did not start: {log.read_text()[-2000:]}") from exc

    def stop(self, name: str) -> None:
        if (self.work / name / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                self.run("pg_ctl", "stop", "-w", "-m", "immediate", "-D", str(self.work / name))

    def create_database(self, prefix: str = "optiinfra_test") -> str:
        """Create a uniquely named database on every node with the citus extension, and add the
        workers to the coordinator's; returns the coordinator's DSN of it."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        self.created.append(name)

        def create(port: int) -> None:
            with psycopg.connect(self.dsn(port), autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            with psycopg.connect(self.dsn(port, name), autocommit=True) as conn:
                conn.execute("CREATE EXTENSION citus")

        with ThreadPoolExecutor() as pool:  # on the three nodes at once
            list(pool.map(create, self.nodes.values()))
        coordinator = self.dsn(self.coordinator_port, name)
        with psycopg.connect(coordinator, autocommit=True) as conn:
            conn.execute("SELECT citus_set_coordinator_host('127.0.0.1', %s)", (self.coordinator_port,))
            for port in self.worker_ports:
                conn.execute("SELECT citus_add_node('127.0.0.1', %s)", (port,))
        return coordinator

    def admit_tenant(self, dsn: str) -> None:
        """What SCALING.md has an operator do for confined calls on a cluster, for the database of
        `dsn` (a distributed one): `optiinfra_tenant` may log in (altered through the coordinator's
        copy of the database, which passes it to every node), and may connect
        to the database on each worker (granted on the worker itself, from its `postgres`
        database: granted through the coordinator it would reach the coordinator too, where every
        member of optiinfra_tenant would inherit it). Roles are the whole cluster's: this cluster
        is the test session's own."""
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("ALTER ROLE optiinfra_tenant LOGIN")
        grant = sql.SQL("GRANT CONNECT ON DATABASE {} TO optiinfra_tenant").format(sql.Identifier(database_of(dsn)))
        for port in self.worker_ports:
            with psycopg.connect(self.dsn(port), autocommit=True) as conn:
                conn.execute(grant)

    def reference_writes_through_the_coordinator(self, dsn: str, *, on: bool = True) -> None:
        """SCALING.md's setting for confined writes of agent states, for the database of `dsn` on
        every node (the sessions opened after it): writes to reference tables go through the
        coordinator only (`citus.allow_modifications_from_workers_to_replicated_tables` off), so it
        serializes them itself, without the lock on the first worker that optiinfra_tenant may not
        take. `on=False` resets it."""
        database = sql.Identifier(database_of(dsn))
        statement = (
            sql.SQL("ALTER DATABASE {} SET citus.allow_modifications_from_workers_to_replicated_tables = off")
            if on
            else sql.SQL("ALTER DATABASE {} RESET citus.allow_modifications_from_workers_to_replicated_tables")
        ).format(database)
        for port in self.nodes.values():
            with psycopg.connect(self.dsn(port), autocommit=True) as conn:
                conn.execute(statement)

    def drop_all(self) -> None:
        """Drop the databases made here from every node, the coordinator first."""
        for port in self.nodes.values():
            with psycopg.connect(self.dsn(port), autocommit=True) as conn:
                for name in self.created:
                    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        self.created.clear()


def citus_server() -> tuple[int, Path] | str:
    """(major version, bindir) of the newest PostgreSQL server under /usr/lib/postgresql with Citus
    installed; where there is none, one line saying why."""
    versions = postgres_versions()
    if not versions:
        return "no PostgreSQL server binaries (/usr/lib/postgresql/*/bin): the Citus suites skip"
    missing = {version: citus_missing(bindir) for version, bindir in versions}
    with_citus = [(version, bindir) for version, bindir in versions if missing[version] is None]
    if not with_citus:
        version = versions[-1][0]
        return f"Citus is not installed for PostgreSQL {version} ({missing[version]}): the Citus suites skip"
    return with_citus[-1]


@contextlib.contextmanager
def citus_cluster() -> Iterator[CitusCluster]:
    """A started CitusCluster, stopped and removed afterwards. Skips, in one line, where
    `citus_server()` finds none."""
    found = citus_server()
    if isinstance(found, str):
        pytest.skip(found)
    version, bindir = found
    work = Path(tempfile.mkdtemp(prefix="optiinfra-citus-"))
    work.chmod(0o777)
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # initdb refuses root
    cluster = CitusCluster(version, bindir, work, run_as)
    try:
        with ThreadPoolExecutor() as pool:  # initdb and start the three at once
            list(pool.map(cluster.start, cluster.nodes))
        yield cluster
    finally:
        for name in cluster.nodes:
            cluster.stop(name)
        shutil.rmtree(work, ignore_errors=True)


FORMATION_MONITOR_SETTINGS = {
    # the monitor probes each node every second, gives up on a probe after one, retries once
    "pgautofailover.health_check_period": "1000",
    "pgautofailover.health_check_timeout": "1000",
    "pgautofailover.health_check_max_retries": "1",
    "pgautofailover.health_check_retry_delay": "500",
    # a node that failed its probes and has not reported for 3 s is unhealthy (default 20 s)
    "pgautofailover.node_considered_unhealthy_timeout": "3000",
    # how long a primary that stopped reporting is given to demote itself (default 30 s)
    "pgautofailover.primary_demote_timeout": "5000",
    # after the monitor starts, how long before it may declare a node unhealthy (default 10 s)
    "pgautofailover.startup_grace_period": "2000",
}
"""The monitor's settings that make an unplanned failover short (units: ms): README, "Against a
pg_auto_failover formation"."""

FORMATION_KEEPER_SETTINGS = {
    # a primary that reaches neither monitor nor standby for this long demotes itself (default 20 s)
    "timeout.network_partition_timeout": "5",
    # how long a standby being promoted waits to catch up (default 30 s)
    "timeout.prepare_promotion_catchup": "10",
    "timeout.prepare_promotion_walreceiver": "2",
    # how long a keeper tries to restart its postgres before reporting it down (default 20 s)
    "timeout.postgresql_restart_failure_timeout": "3",
}
"""Each keeper's settings (units: s), set with `pg_autoctl config set`."""


def autofailover_server() -> Path | str:
    """The bindir of the newest PostgreSQL server of this machine with pg_auto_failover (pg_autoctl
    and the monitor's pgautofailover extension); where there is none, one line saying why."""
    if shutil.which("pg_autoctl") is None:
        return "pg_autoctl is not installed (Debian: apt-get install postgresql-15-auto-failover)"
    for _version, bindir in reversed(postgres_versions()):
        configured = subprocess.run([str(bindir / "pg_config"), "--sharedir"], capture_output=True, text=True)
        if (Path(configured.stdout.strip()) / "extension" / "pgautofailover.control").exists():
            return bindir
    return "pg_autoctl is installed, but no PostgreSQL server has its pgautofailover extension"


class Formation:
    """A throwaway pg_auto_failover formation on free ports of 127.0.0.1: a monitor and three data
    nodes (`node1` starts as the primary, `node2` and `node3` as its standbys), each run by its own
    `pg_autoctl run`, with `FORMATION_*_SETTINGS` applied and `number_sync_standbys` at 1: every
    commit waits for one of the two standbys, and the monitor never turns synchronous replication
    off on a primary that was not just promoted (with one standby it does whenever that standby is
    unavailable, which under load happened in a planned failover: README). `uri` is the
    formation's multi-host URI (target_session_attrs=read-write) of database `optiinfra`, migrated."""

    DATABASE = "optiinfra"
    NODES = ("node1", "node2", "node3")

    def __init__(self, bindir: Path, work: Path, run_as: list[str]) -> None:
        self.bindir, self.work, self._run_as = bindir, work, run_as
        self.ports = {"monitor": free_port(), **{node: free_port() for node in self.NODES}}
        self.keepers: dict[str, subprocess.Popen[bytes]] = {}
        self.monitor_dsn = f"postgresql://autoctl_node@127.0.0.1:{self.ports['monitor']}/pg_auto_failover"
        self.uri = ReplicatedCluster.listing(
            *(self.ports[node] for node in self.NODES), form="uri", database=self.DATABASE,
            target_session_attrs="read-write",
        )  # fmt: skip
        self._env = {
            **os.environ,
            "PATH": f"{bindir}:{os.environ.get('PATH', '')}",
            "PG_CONFIG": str(bindir / "pg_config"),
            "XDG_CONFIG_HOME": str(work / "config"),
            "XDG_DATA_HOME": str(work / "data"),
            "XDG_RUNTIME_DIR": str(work / "run"),
        }
        self._env.pop("PGHOST", None)

    def dsn(self, node: str, database: str = DATABASE) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.ports[node]}/{database}"

    def autoctl(self, *args: str, timeout: float = 120) -> str:
        done = subprocess.run(
            [*self._run_as, "pg_autoctl", *args], capture_output=True, text=True, cwd=self.work, env=self._env,
            timeout=timeout,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"pg_autoctl {' '.join(args)} failed: {done.stderr[-3000:]}")
        return done.stdout

    def run_keeper(self, node: str) -> None:
        """Start `pg_autoctl run` for `node` (its postgres too), logging to <work>/<node>.log."""
        log = open(self.work / f"{node}.log", "ab")  # noqa: SIM115 - closed with the keeper
        self.keepers[node] = subprocess.Popen(
            [*self._run_as, "pg_autoctl", "run", "--pgdata", str(self.work / node)],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.work, env=self._env, start_new_session=True,
        )  # fmt: skip
        log.close()

    def create(self) -> None:
        common = ["--auth", "trust", "--no-ssl", "--hostname", "127.0.0.1", "--pgctl", str(self.bindir / "pg_ctl")]
        self.autoctl("create", "monitor", "--pgdata", str(self.work / "monitor"),
                     "--pgport", str(self.ports["monitor"]), *common)  # fmt: skip
        # pg_autoctl starts the monitor listening on every address unless its configuration says
        self.autoctl(
            "config", "set", "--pgdata", str(self.work / "monitor"), "postgresql.listen_addresses", "127.0.0.1"
        )
        self._add_settings("monitor", FORMATION_MONITOR_SETTINGS)
        self.run_keeper("monitor")
        self._wait(lambda: self._answers(self.dsn("monitor", "pg_auto_failover")), "the monitor to start")
        for node in self.NODES:
            self.autoctl(
                "create", "postgres", "--pgdata", str(self.work / node), "--pgport", str(self.ports[node]),
                "--listen", "127.0.0.1", "--dbname", self.DATABASE, "--name", node, "--monitor", self.monitor_dsn,
                *common,
            )  # fmt: skip
            for name, value in FORMATION_KEEPER_SETTINGS.items():
                self.autoctl("config", "set", "--pgdata", str(self.work / node), name, value)
            if node == "node1":  # the standbys are base backups of it, settings included
                self._add_settings(node, {"fsync": "off"})
            self.run_keeper(node)
            if node == "node1":
                self.wait_states({"node1": "single"})
                self._wait(lambda: self._answers(self.dsn("node1")), "node1 to start")
                migrations.apply(self.dsn("node1"))
        self.wait_states({"node1": "primary", "node2": "secondary", "node3": "secondary"}, timeout=240)
        # pg_auto_failover sets it to 1 itself once a second standby joins; set here too, so that the
        # formation does not depend on that (the command returns once the primary has applied it)
        self.autoctl("set", "formation", "number-sync-standbys", "1", "--pgdata", str(self.work / "node1"))
        self.synchronous()

    def _add_settings(self, node: str, settings: dict[str, str]) -> None:
        with open(self.work / node / "postgresql.auto.conf", "a", encoding="utf-8") as conf:
            conf.writelines(f"{name} = '{value}'\n" for name, value in settings.items())

    @staticmethod
    def _answers(dsn: str) -> bool:
        try:
            with psycopg.connect(dsn, connect_timeout=2):
                return True
        except psycopg.Error:
            return False

    @staticmethod
    def _wait(done: Callable[[], bool], what: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}")
            time.sleep(0.1)

    def states(self) -> dict[str, tuple[str, str]]:
        """(reported, goal) state of each data node, as the monitor has them."""
        with psycopg.connect(self.dsn("monitor", "pg_auto_failover"), autocommit=True) as conn:
            rows = conn.execute("SELECT nodename, reportedstate, goalstate FROM pgautofailover.node").fetchall()
        return {name: (reported, goal) for name, reported, goal in rows}

    def events(self, since: float = 0.0) -> list[str]:
        """The monitor's events from `since` (a time.time()) on, oldest first: what a failure
        message shows of the formation."""
        with psycopg.connect(self.dsn("monitor", "pg_auto_failover"), autocommit=True) as conn:
            rows = conn.execute(
                "SELECT eventtime, description FROM pgautofailover.event WHERE eventtime >= to_timestamp(%s)"
                " ORDER BY eventid",
                (since,),
            ).fetchall()
        return [f"{at:%H:%M:%S.%f} {description}" for at, description in rows]

    def wait_states(self, wanted: dict[str, str], timeout: float = 120) -> None:
        """Until each named node has reached (reported and been assigned) the state given."""

        def reached() -> bool:
            states = self.states()
            return all(states.get(node) == (state, state) for node, state in wanted.items())

        try:
            self._wait(reached, f"states {wanted}", timeout)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; the monitor has {self.states()}") from None

    def primary(self) -> str:
        """The node the monitor has as primary (or wait_primary/single)."""
        for node, (reported, goal) in self.states().items():
            if goal in ("primary", "wait_primary", "single") and reported == goal:
                return node
        raise LookupError(f"no primary: {self.states()}")

    def wait_new_primary(self, old: str, timeout: float = 120) -> str:
        """Until a node other than `old` is the primary (in `primary` or `wait_primary`); returns it."""
        found: list[str] = []

        def promoted() -> bool:
            found[:] = [
                node
                for node, (reported, goal) in self.states().items()
                if node != old and reported == goal and goal in ("primary", "wait_primary")
            ]
            return bool(found)

        try:
            self._wait(promoted, f"a primary other than {old}", timeout)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; the monitor has {self.states()}") from None
        return found[0]

    def synchronous(self, timeout: float = 120) -> str:
        """Until one node is `primary` with each other node running its `secondary`, and each of
        those standbys has flushed all the WAL the primary had written by then; returns the
        primary. Before that (the primary in `wait_primary`, or a standby only just caught up),
        what was acknowledged while replication was asynchronous is on the primary alone, and a
        failover may take it back. A node whose keeper is not running (killed) is left out."""
        primaries: list[str] = []
        running = [node for node in self.NODES if node in self.keepers]

        def settled() -> bool:
            states = self.states()
            primaries[:] = [
                node
                for node in running
                if states.get(node) == ("primary", "primary")
                and all(states.get(other) == ("secondary", "secondary") for other in running if other != node)
            ]
            return bool(primaries)

        try:
            self._wait(settled, "a primary and its synchronous standbys", timeout)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; the monitor has {self.states()}") from None
        primary = primaries[0]
        standbys = len(running) - 1
        with psycopg.connect(self.dsn(primary, "postgres"), autocommit=True) as conn:
            row = conn.execute("SELECT pg_current_wal_lsn()").fetchone()
            assert row is not None
            written = row[0]

            def flushed() -> bool:
                row = conn.execute(
                    "SELECT count(*) FILTER (WHERE flush_lsn >= %s::pg_lsn) FROM pg_stat_replication"
                    " WHERE sync_state IN ('sync', 'quorum')",
                    (written,),
                ).fetchone()
                return bool(row and row[0] >= standbys)

            self._wait(flushed, f"the synchronous standbys to flush the primary's WAL up to {written}", timeout)
        return primary

    def perform_failover(self) -> None:
        """A planned failover (`pg_autoctl perform failover`), waiting for it to finish."""
        self.autoctl("perform", "failover", "--pgdata", str(self.work / "monitor"), "--wait", "60", timeout=90)

    def kill_primary(self) -> str:
        """Kill -9 the primary's keeper (every process of it) and postmaster; returns that node."""
        node = self.primary()
        keeper = self.keepers.pop(node)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(keeper.pid, 9)
        postmaster = self.work / node / "postmaster.pid"
        with contextlib.suppress(FileNotFoundError, ValueError):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(postmaster.read_text().split()[0]), 9)
        keeper.wait()
        return node

    def rejoin(self, node: str, timeout: float = 180) -> None:
        """Run `node`'s keeper again and wait until it is a secondary of the primary."""
        self.run_keeper(node)
        self.wait_states({node: "secondary"}, timeout)
        self.synchronous(timeout)

    def stop(self) -> None:
        for node in (*self.NODES, "monitor"):
            keeper = self.keepers.pop(node, None)
            if keeper is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(keeper.pid, 15)
                try:
                    keeper.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(keeper.pid, 9)
                    keeper.wait()
            if (self.work / node / "postmaster.pid").exists():
                with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
                    subprocess.run(
                        [*self._run_as, str(self.bindir / "pg_ctl"), "stop", "-w", "-m", "immediate",
                         "-D", str(self.work / node)],
                        check=True, capture_output=True, cwd=self.work, timeout=30,
                    )  # fmt: skip


@contextlib.contextmanager
def formation() -> Iterator[Formation]:
    """A created Formation, stopped and removed afterwards, even when its creation fails
    ($OPTIINFRA_KEEP_FORMATION set: its directory, with each node's log, is kept). Skips, in one
    line, where `autofailover_server()` finds none (fails instead under $OPTIINFRA_REQUIRE_TOOLS)."""
    bindir = autofailover_server()
    if isinstance(bindir, str):
        if os.environ.get("OPTIINFRA_REQUIRE_TOOLS"):  # .ci/run installed it: missing is a failure
            pytest.fail(bindir)
        pytest.skip(bindir)
    work = Path(tempfile.mkdtemp(prefix="optiinfra-formation-"))
    work.chmod(0o777)
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # PostgreSQL refuses root
    cluster = Formation(bindir, work, run_as)
    try:
        cluster.create()
        yield cluster
    finally:
        cluster.stop()
        if not os.environ.get("OPTIINFRA_KEEP_FORMATION"):
            shutil.rmtree(work, ignore_errors=True)
