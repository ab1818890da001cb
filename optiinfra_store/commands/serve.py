"""`optiinfra-store serve`: the service under uvicorn, on a database or on the embedded demo."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import logging
import secrets
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn

from optiinfra_store import migrations, seed
from optiinfra_store.api.app import create_app
from optiinfra_store.api.auth import TokenVerifier, issue_token
from optiinfra_store.api.models import DemoCustomer
from optiinfra_store.api.protocol import bounded_protocol
from optiinfra_store.api.settings import DEFAULTS, Settings
from optiinfra_store.commands import embedded
from optiinfra_store.connection.dsn import redact
from optiinfra_store.errors import ConfigurationError
from optiinfra_store.store import Store


class _Server(uvicorn.Server):
    """Ends the event streams as soon as a stop is asked for (SIGTERM, SIGINT): they never finish
    on their own, and uvicorn waits for open responses before it runs the app's shutdown."""

    stop_streams: Any = None

    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        if self.stop_streams is not None:
            self.stop_streams()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """SIGTERM and SIGINT stop the server gracefully, and the process then exits 0 (uvicorn
        would raise the signal again once stopped, ending the process by it)."""
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _configure_logging(level: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in ("optiinfra_store.api", "optiinfra_store.api.access"):
        logger = logging.getLogger(name)
        if not logger.handlers:
            logger.addHandler(handler)
            logger.setLevel(level)
            logger.propagate = False


async def _serve(
    dsn: str,
    host: str,
    port: int,
    settings: Settings,
    verifier: TokenVerifier,
    demo_secret: str | None,
    say: Callable[[str], None],
) -> None:
    async with Store.connect(
        dsn, min_size=1, max_size=settings.pool_max_size, command_timeout=settings.command_timeout
    ) as store:
        demo: list[DemoCustomer] = []
        if demo_secret is not None:
            lifetime = settings.demo_token_hours * 3600
            for customer in await store.customers.list():
                token = issue_token(demo_secret, subject=customer.email, customer_id=customer.id, ttl_seconds=lifetime)
                demo.append(DemoCustomer(customer_id=customer.id, name=customer.name, token=token))
        hosts = (host, "localhost", "127.0.0.1", "::1") if demo else ()
        app = create_app(store, verifier, settings=settings, demo_customers=demo, trusted_hosts=hosts)
        server = _Server(server_config(app, host, port, settings))
        server.stop_streams = lambda: asyncio.get_running_loop().create_task(app.state.service.close_streams())
        say(f"serving the workflow history on http://{host}:{port}/")
        for entry in demo:
            say(f"  token for {entry.name} ({entry.customer_id}):\n    {entry.token}")
        await server.serve()


def server_config(app: Any, host: str, port: int, settings: Settings = DEFAULTS) -> uvicorn.Config:
    """uvicorn's configuration for the service: its HTTP protocol bounds each request head in time
    and size (408, 431), so slow or oversized heads cannot hold connections or memory."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=bounded_protocol(settings.header_timeout, settings.max_header_bytes),
        log_config=None,
        access_log=False,  # the app logs one structured line per request
        timeout_graceful_shutdown=settings.graceful_shutdown_seconds,
        limit_concurrency=settings.max_connections,  # beyond: 503 at once, not file descriptors run out
        timeout_keep_alive=settings.keep_alive_timeout,
    )


@contextlib.contextmanager
def _demo_database(data_dir: str | None, say: Callable[[str], None]) -> Iterator[str]:
    if not embedded.available():
        raise ConfigurationError(embedded.INSTALL_HINT)
    say("starting embedded PostgreSQL with the demo data ...")
    with embedded.embedded_server(data_dir) as dsn:
        migrations.apply(dsn)
        seed.load(dsn)
        yield dsn


def serve(
    dsn: str | None,
    host: str,
    port: int,
    data_dir: str | None = None,
    *,
    dsn_source: str | None = None,
    quiet: bool = False,
    log_level: int | None = None,
    metrics: bool = True,
) -> None:
    """Serve `dsn`, with the settings of the environment (read here, once), or the embedded demo
    when it is None: then tokens are printed for each seeded customer, signed with a secret made
    for this run (the environment's OPTIINFRA_JWT_* are not read), and only a loopback address is
    accepted (the page hands out those tokens).

    `dsn_source` (`--dsn`, `$OPTIINFRA_DATABASE_URL`) is named when the settings refuse to serve
    `dsn`. `quiet` prints nothing on stdout; the service's logs (the access log is INFO) are at
    `log_level`, by default INFO, or ERROR when quiet. `metrics=False` leaves out GET /metrics.
    Raises ConfigurationError."""
    _configure_logging(log_level or (logging.ERROR if quiet else logging.INFO))

    def say(line: str) -> None:
        if not quiet:
            print(line, flush=True)

    if dsn is not None:
        try:
            settings = dataclasses.replace(Settings.from_environ(), metrics=metrics)
            verifier = TokenVerifier.from_settings(settings)
        except ConfigurationError as exc:
            given = f" (from {dsn_source}; without a DSN, serve runs the embedded demo)" if dsn_source else ""
            raise ConfigurationError(f"cannot serve {redact(dsn)}{given}: {exc}") from None
        asyncio.run(_serve(dsn, host, port, settings, verifier, None, say))
        return
    if not _loopback(host):
        raise ConfigurationError(
            f"the demo hands out tokens to whoever asks: serve it on a loopback address, not {host}"
        )
    # a secret of its own, never the service's: the tokens it hands out must not work elsewhere
    secret = secrets.token_urlsafe(32)
    with _demo_database(data_dir, say) as demo_dsn:
        settings = dataclasses.replace(DEFAULTS, metrics=metrics)
        asyncio.run(_serve(demo_dsn, host, port, settings, TokenVerifier.hs256(secret), secret, say))
