"""`optiinfra-store`: migrate, roll back, inspect and seed a database, run the demo or the service.

Exit status: 0 done, 1 an error or a refusal (one line on stderr), 2 a usage error, 3 `check`
found pending migrations. Destructive commands ask on a terminal and refuse without one unless
given `--yes`. Passwords in DSNs are masked in every message.

`-q` leaves errors only, as git's does: no progress, no logs below ERROR, no line saying what a
command did (`migrate`, `seed`, `maintain`, `serve`'s banner and access log, ...; `check` keeps its
exit status, as `grep -q` does). What was asked for still prints: a query's answer (`status`,
`current`, `stats`, `token`, a `--dry-run`'s counts, the demo's tour) and a `--json` document.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn
from uuid import UUID

from optiinfra_store import __version__, distribution, migrations, seed
from optiinfra_store.commands import embedded
from optiinfra_store.commands.report import print_statistics
from optiinfra_store.connection.dsn import DSN_ENV, redact, resolve_dsn
from optiinfra_store.crypto.secrets import SECRET_KEY_ENV
from optiinfra_store.errors import ConfigurationError, InvalidArgument, StoreError
from optiinfra_store.records import PurgeReport
from optiinfra_store.store import Store

PROG = "optiinfra-store"
EXIT_PENDING = 3
_log = logging.getLogger("optiinfra_store.commands.cli")


class Refused(StoreError):
    """A destructive command was not confirmed: nothing was changed."""


def mask(text: str) -> str:
    """Every postgresql:// DSN in `text` with its password replaced by ***."""
    return redact(text)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {mask(message)}\n")


# -- output ----------------------------------------------------------------------------------------


def _emit(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    """What a command did: JSON on stdout with --json, else the text unless -q."""
    if getattr(args, "json", False):
        print(json.dumps(data, default=str))
    elif not getattr(args, "quiet", 0):
        print(text)


def _answer(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    """What a query was asked for: JSON on stdout with --json, else the text, -q or not."""
    print(json.dumps(data, default=str) if getattr(args, "json", False) else text)


def _confirm(args: argparse.Namespace, question: str) -> None:
    """Ask on a terminal; refuse without one unless --yes. Raises Refused."""
    if getattr(args, "yes", False):
        return
    stdin = sys.stdin  # None when the process was started with standard input closed (<&-)
    if stdin is None or not stdin.isatty():
        raise Refused(f"{mask(question)} Refusing without a terminal to ask on: pass --yes to go ahead")
    print(f"{mask(question)} [y/N] ", end="", file=sys.stderr, flush=True)  # stdout may be --json
    answer = stdin.readline()  # "" at end of input: a refusal
    if answer.strip().lower() not in ("y", "yes"):
        raise Refused("cancelled: nothing was changed")


@contextmanager
def _progress(args: argparse.Namespace, total: int, unit: str) -> Iterator[Callable[[int], None]]:
    """A progress bar on a terminal (tqdm), plain lines on stderr otherwise, nothing with -q.
    Yields `advance(done_so_far)`."""
    if getattr(args, "quiet", 0) or total <= 0:
        yield lambda done: None
        return
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=total, unit=f" {unit}", file=sys.stderr)
        try:
            yield lambda done: bar.update(done - bar.n)
        finally:
            bar.close()
        return
    yield lambda done: print(f"{done:,} of {total:,} {unit}", file=sys.stderr, flush=True)


# -- schema ----------------------------------------------------------------------------------------


def _cmd_migrate(args: argparse.Namespace) -> None:
    applied = migrations.apply(args.dsn, to=args.to)
    _emit(args, {"applied": applied}, f"applied {', '.join(applied)}" if applied else "schema is up to date")


def _cmd_rollback(args: argparse.Namespace) -> None:
    count = None if args.all else args.count
    targets = migrations.to_roll_back(args.dsn, count=count, to=args.to)
    if not targets:
        _emit(args, {"rolled_back": []}, "nothing to roll back")
        return
    _confirm(
        args,
        f"Roll back {', '.join(targets)} on {redact(resolve_dsn(args.dsn))}? "
        "This drops what they created, data included.",
    )
    rolled_back = migrations.rollback(args.dsn, count=count, to=args.to, expected=targets)
    _emit(args, {"rolled_back": rolled_back}, f"rolled back {', '.join(rolled_back)}")


def _cmd_status(args: argparse.Namespace) -> None:
    states = migrations.status(args.dsn)
    applied = sum(s.applied for s in states)
    pending = len(states) - applied
    lines = [
        f"{s.id:<28} {f'applied {s.applied_at:%Y-%m-%d %H:%M:%S} UTC' if s.applied else 'pending'}" for s in states
    ]
    lines.append(f"{applied} applied, {pending} pending")
    data = {
        "migrations": [{"id": s.id, "applied": s.applied, "applied_at": s.applied_at} for s in states],
        "applied": applied,
        "pending": pending,
    }
    _answer(args, data, "\n".join(lines))


def _cmd_current(args: argparse.Namespace) -> None:
    states = migrations.status(args.dsn)
    applied = [s for s in states if s.applied]
    pending = [s.id for s in states if not s.applied]
    newest = applied[-1] if applied else None
    data = {
        "migration": newest.id if newest else None,
        "applied_at": newest.applied_at if newest else None,
        "current": not pending,
        "pending": pending,
    }
    state = f"{len(pending)} pending" if pending else "up to date"
    _answer(args, data, f"{newest.id if newest else 'none'} ({state})")


def _cmd_check(args: argparse.Namespace) -> int:
    pending = [s.id for s in migrations.status(args.dsn) if not s.applied]
    if pending:
        _emit(args, {"current": False, "pending": pending}, f"pending migrations: {', '.join(pending)}")
        return EXIT_PENDING
    _emit(args, {"current": True, "pending": []}, "schema is up to date")
    return 0


def _cmd_mark(args: argparse.Namespace) -> None:
    marked = migrations.mark(args.dsn, args.ids)
    _emit(args, {"marked": marked}, f"marked as applied: {', '.join(marked) or 'none (already applied)'}")


def _cmd_unmark(args: argparse.Namespace) -> None:
    unmarked = migrations.unmark(args.dsn, args.ids)
    _emit(args, {"unmarked": unmarked}, f"marked as not applied: {', '.join(unmarked) or 'none (not applied)'}")


def _cmd_break_lock(args: argparse.Namespace) -> None:
    _confirm(args, "Break the migration lock? Only do this when no migration is running.")
    migrations.break_lock(args.dsn)
    _emit(args, {"lock": "broken"}, "migration lock broken")


# -- data ------------------------------------------------------------------------------------------


def _guard_demo_data(args: argparse.Namespace, dsn: str) -> None:
    other = seed.other_data(dsn)
    if other is not None:
        _confirm(args, f"{redact(dsn)} holds other data ({other}). Load the demo data into it?")


def _cmd_distribute(args: argparse.Namespace) -> None:
    done = distribution.distribute(args.dsn)
    _emit(args, {"done": done}, "\n".join(done) if done else "the schema is distributed already")


def _cmd_seed(args: argparse.Namespace) -> None:
    dsn = resolve_dsn(args.dsn)
    _guard_demo_data(args, dsn)
    names = seed.seed_files()
    with _progress(args, len(names), "files") as advance:
        loaded = seed.load(dsn, on_file=lambda name: advance(names.index(name) + 1))
    _emit(args, {"loaded": loaded}, f"loaded {len(loaded)} seed files: {', '.join(loaded)}")


def _cmd_demo(args: argparse.Namespace) -> None:
    from optiinfra_store.commands.demo import run_demo

    if args.dsn:
        _guard_demo_data(args, args.dsn)
        asyncio.run(run_demo(args.dsn))
        return
    if not embedded.available():
        raise ConfigurationError(embedded.INSTALL_HINT)
    if not args.quiet:
        print("starting embedded PostgreSQL ...", flush=True)
    with embedded.embedded_server(args.data_dir) as dsn:
        asyncio.run(run_demo(dsn))


_DURATION_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """`90d`, `12h`, `30m`, `2w` as a timedelta; InvalidArgument otherwise."""
    match = re.fullmatch(r"\s*([0-9]{1,9})\s*([mhdw])\s*", text or "")
    if match is None or int(match.group(1)) == 0:
        raise InvalidArgument(f"invalid duration {text!r}: expected a positive whole number of m, h, d or w, like 90d")
    try:
        return timedelta(**{_DURATION_UNITS[match.group(2)]: int(match.group(1))})
    except OverflowError:
        raise InvalidArgument(f"invalid duration {text!r}: too long") from None


async def _purge_counts(args: argparse.Namespace, cutoff: datetime) -> tuple[PurgeReport, int]:
    async with Store.connect(args.dsn, min_size=1, max_size=1) as store:
        planned = await store.workflow_executions.purge(
            finished_before=cutoff, keep_failed=args.keep_failed, dry_run=True
        )
        return planned, await store.agent_metrics.purge(cutoff, dry_run=True)


async def _purge(args: argparse.Namespace, cutoff: datetime, planned: PurgeReport) -> tuple[PurgeReport, int]:
    async with Store.connect(args.dsn, min_size=1, max_size=1) as store:
        with _progress(args, planned.executions, "executions") as advance:
            report = await store.workflow_executions.purge(
                finished_before=cutoff,
                keep_failed=args.keep_failed,
                on_batch=lambda so_far: advance(so_far.executions),
            )
        return report, await store.agent_metrics.purge(cutoff)


def _cmd_purge(args: argparse.Namespace) -> None:
    older_than = parse_duration(args.older_than)
    try:
        cutoff = datetime.now(UTC) - older_than
    except OverflowError:
        raise InvalidArgument(f"invalid duration {args.older_than!r}: too long") from None
    report, metrics = asyncio.run(_purge_counts(args, cutoff))
    if not args.dry_run:
        _confirm(  # asked here, outside the event loop: Ctrl-C stops it at once
            args,
            f"Delete {report.executions:,} workflow executions (with {report.steps:,} steps, "
            f"{report.transitions:,} transitions) and {metrics:,} metric points from before "
            f"{cutoff:%Y-%m-%d %H:%M} UTC on {redact(resolve_dsn(args.dsn))}?",
        )
        report, metrics = asyncio.run(_purge(args, cutoff, report))
    verb = "would purge" if args.dry_run else "purged"
    (_answer if args.dry_run else _emit)(
        args,
        {"dry_run": args.dry_run, "cutoff": cutoff, **report.model_dump(), "metric_points": metrics},
        f"{verb} {report.executions} workflow executions ({report.steps} steps, {report.artifacts} artifacts, "
        f"{report.transitions} transitions) and {metrics} metric points from before {cutoff:%Y-%m-%d %H:%M:%S} UTC",
    )


def _cmd_maintain(args: argparse.Namespace) -> None:
    async def maintain() -> Any:
        async with Store.connect(args.dsn, min_size=1, max_size=1) as store:
            return await store.maintain()

    report = asyncio.run(maintain())
    _emit(
        args,
        report.model_dump(),
        f"maintained: {report.metric_partitions_created} metric partitions created, "
        f"{report.rollup_hours} hours of workflow history rolled up",
    )


async def _stats(args: argparse.Namespace) -> None:
    since = datetime.now(UTC) - timedelta(days=args.days)  # days checked: at most 36,500
    async with Store.connect(args.dsn, min_size=1, max_size=1) as store:
        customer_id = None
        if args.customer:
            try:
                customer_id = (await store.customers.get(UUID(args.customer))).id
            except ValueError:
                customer_id = (await store.customers.get_by_email(args.customer)).id
        if not getattr(args, "json", False):
            await print_statistics(store, customer_id=customer_id, since=since)
            return
        history = store.workflow_executions
        statistics = await history.statistics(customer_id=customer_id, since=since)
        performance = await history.performance(customer_id=customer_id, since=since)
        print(
            json.dumps(
                {
                    "customer_id": customer_id and str(customer_id),
                    "statistics": statistics.model_dump(mode="json"),
                    "performance": performance.model_dump(mode="json"),
                }
            )
        )


def _cmd_stats(args: argparse.Namespace) -> None:
    if not 1 <= args.days <= 36_500:
        raise InvalidArgument(f"--days must be from 1 to 36500, got {args.days}")
    asyncio.run(_stats(args))


def _cmd_rotate_key(args: argparse.Namespace) -> None:
    async def rotate() -> tuple[int, int]:
        async with Store.connect(args.dsn, min_size=1, max_size=1) as store:
            if store.agent_configs.secret_key_ids is None:
                raise ConfigurationError(
                    f"rotate-key needs the secret keys in ${SECRET_KEY_ENV}, newest first, separated by commas"
                )
            if args.dry_run:
                return 0, await store.agent_configs.pending_rotation()
            written = await store.agent_configs.rotate_key(batch_size=args.batch_size)
            return written, await store.agent_configs.pending_rotation()

    written, pending = asyncio.run(rotate())
    counts = {"written": written, "pending": pending}
    if args.dry_run:
        _answer(args, counts, f"{pending} sensitive configs are not yet encrypted under the newest key")
    else:
        _emit(args, counts, f"re-encrypted {written} sensitive configs under the newest key; {pending} left")


# -- the service -----------------------------------------------------------------------------------


def _api(command: str, module: str) -> Any:
    """A module that needs the `api` extra, or a ConfigurationError saying how to get it."""
    try:
        return importlib.import_module(f"optiinfra_store.{module}")
    except ImportError as exc:
        raise ConfigurationError(
            f"{command} needs the api extra: pip install 'optiinfra-store[api]' ({exc.name} is missing)"
        ) from None


def _cmd_serve(args: argparse.Namespace) -> None:
    _api("serve", "commands.serve").serve(
        args.dsn,
        args.host,
        args.port,
        args.data_dir,
        dsn_source=args.dsn_source,
        quiet=bool(args.quiet),
        log_level=getattr(logging, args.log_level.upper()) if args.log_level else None,
        metrics=not args.no_metrics,
    )


def _cmd_token(args: argparse.Namespace) -> None:
    auth = _api("token", "api.auth")
    config = _api("token", "api.settings")
    settings = config.Settings.from_environ()  # as `serve` reads them
    secret = settings.jwt_secret
    if not secret:
        raise ConfigurationError("set OPTIINFRA_JWT_SECRET to the service's HS256 secret")
    auth.TokenVerifier.hs256(secret)  # the same checks as the service's: refuses a short secret
    try:
        customer = UUID(args.customer)
    except ValueError:
        raise InvalidArgument(f"--customer must be a customer id (a UUID), got {args.customer!r}") from None
    if args.ttl < 1:
        raise InvalidArgument(f"--ttl must be at least 1 second, got {args.ttl}")
    if args.ttl > settings.jwt_max_lifetime:  # the service would refuse it
        raise InvalidArgument(
            f"--ttl must be at most {settings.jwt_max_lifetime} seconds, the longest token the service accepts "
            f"(${config.MAX_LIFETIME_ENV}), got {args.ttl}"
        )
    print(
        auth.issue_token(
            secret,
            subject=args.subject,
            customer_id=customer,
            scope=args.scope,
            ttl_seconds=args.ttl,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )
    )


# -- the parser ------------------------------------------------------------------------------------


def _global_options(parser: argparse.ArgumentParser, *, on_command: bool) -> None:
    """The options every command takes, before or after its name (on a command, an option given
    there overrides the same one given before it)."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if on_command else value

    group = parser.add_argument_group("global options")
    group.add_argument("--dsn", default=default(None), help=f"postgresql:// DSN of the database (default: ${DSN_ENV})")
    group.add_argument("-v", "--verbose", action="count", default=default(0), help="more log output (-vv: debug)")
    group.add_argument(
        "-q",
        "--quiet",
        action="count",
        default=default(0),
        help="errors only: no progress, no logs, no report of what was done (check: its exit status alone); "
        "what was asked for still prints (status, current, stats, token, --dry-run, --json)",
    )
    group.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], default=default(None), help="overrides -v/-q"
    )
    group.add_argument("--log-format", choices=["text", "json"], default=default("text"), help="log lines on stderr")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="PostgreSQL data layer of the OptiInfra agents.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    _global_options(parser, on_command=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    def command(
        name: str,
        help_text: str,
        handler: Callable[[argparse.Namespace], int | None],
        *,
        needs_dsn: bool = True,
        aliases: Sequence[str] = (),
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text, aliases=aliases)
        _global_options(sub, on_command=True)
        sub.set_defaults(handler=handler, needs_dsn=needs_dsn)
        return sub

    def json_output(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--json", action="store_true", help="print the result as JSON")

    def yes(sub: argparse.ArgumentParser, what: str) -> None:
        sub.add_argument("-y", "--yes", action="store_true", help=f"{what} without asking (needed without a terminal)")

    migrate = command("migrate", "apply pending migrations", _cmd_migrate)
    migrate.add_argument("--to", metavar="ID", help="apply only up to and including this migration")
    json_output(migrate)
    rollback = command("rollback", "roll back applied migrations (the last one by default)", _cmd_rollback)
    group = rollback.add_mutually_exclusive_group()
    group.add_argument("--count", type=int, default=1, help="how many migrations to roll back (default 1)")
    group.add_argument("--all", action="store_true", help="roll back every applied migration")
    group.add_argument("--to", metavar="ID", help="roll back every migration applied after this one")
    yes(rollback, "roll back")
    json_output(rollback)
    json_output(
        command(
            "status",
            "list migrations, applied (and when) or pending, then a summary line",
            _cmd_status,
            aliases=["history"],
        )
    )
    json_output(
        command(
            "current", "the newest applied migration ('none' before the first), and how many are pending", _cmd_current
        )
    )
    json_output(command("check", f"exit {EXIT_PENDING} when migrations are pending (CI gates, probes)", _cmd_check))
    for name, handler, text in (
        ("mark", _cmd_mark, "record migrations as applied without running them"),
        ("unmark", _cmd_unmark, "record migrations as not applied without rolling them back"),
    ):
        sub = command(name, text, handler)
        sub.add_argument("ids", nargs="+", metavar="ID", help="migration ids, e.g. 0015_readiness")
        json_output(sub)
    yes(command("break-lock", "remove a migration lock left by a process that died", _cmd_break_lock), "break it")
    json_output(
        command(
            "distribute",
            "on a Citus coordinator: distribute the tables by customer (metrics by agent), the rest as reference tables",
            _cmd_distribute,
        )
    )
    seed_command = command("seed", "load the demo seed data (idempotent)", _cmd_seed)
    yes(seed_command, "load into a database holding other data")
    json_output(seed_command)
    demo = command(
        "demo",
        "migrate, seed and show what the store holds; on an embedded PostgreSQL unless --dsn is given",
        _cmd_demo,
        needs_dsn=False,
    )
    demo.add_argument("--data-dir", help="keep the embedded server's data in this directory")
    yes(demo, "load into a database holding other data")
    stats = command("stats", "workflow statistics and performance findings", _cmd_stats)
    stats.add_argument("--customer", help="a customer id or email (default: all customers)")
    stats.add_argument("--days", type=int, default=30, help="the window, in days back from now (default 30)")
    json_output(stats)
    purge = command(
        "purge",
        "delete workflow executions that finished, and metric points collected, longer ago than --older-than",
        _cmd_purge,
    )
    purge.add_argument(
        "--older-than",
        required=True,
        metavar="AGE",
        help="age like 90d, 12h, 30m or 2w; pending and running executions are never deleted",
    )
    purge.add_argument("--keep-failed", action="store_true", help="keep failed and timed-out executions")
    purge.add_argument("--dry-run", action="store_true", help="only count what would be deleted")
    yes(purge, "delete")
    json_output(purge)
    json_output(
        command(
            "maintain",
            "periodic upkeep, idempotent (metric partitions ahead, rollups); run it hourly from cron",
            _cmd_maintain,
        )
    )
    rotate = command(
        "rotate-key",
        f"encrypt every sensitive config under the first key of ${SECRET_KEY_ENV} (keys newest first, "
        "comma-separated), in batches; run again to resume",
        _cmd_rotate_key,
    )
    rotate.add_argument("--batch-size", type=int, default=100, help="entries per transaction (default 100)")
    rotate.add_argument("--dry-run", action="store_true", help="only count what is not yet under the newest key")
    serve = command(
        "serve",
        "the workflow-history service (HTTP, JWT, live page); on the embedded demo unless --dsn is given",
        _cmd_serve,
        needs_dsn=False,
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    serve.add_argument("--data-dir", help="keep the embedded server's data in this directory")
    serve.add_argument("--no-metrics", action="store_true", help="do not serve GET /metrics (Prometheus)")
    token = command(
        "token", "print an HS256 token for the service, signed with $OPTIINFRA_JWT_SECRET", _cmd_token, needs_dsn=False
    )
    token.add_argument("--customer", required=True, help="the customer id the token speaks for")
    token.add_argument("--subject", default="operator", help="the token's sub claim (default operator)")
    token.add_argument("--scope", default="workflows:read", help="space-separated scopes (default workflows:read)")
    token.add_argument(
        "--ttl",
        type=int,
        default=3600,
        help="seconds until it expires (default 3600; at most $OPTIINFRA_JWT_MAX_LIFETIME, a day unless set)",
    )
    return parser


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": mask(record.getMessage()),
        }
        return json.dumps(line)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return mask(super().format(record))


def configure_logging(args: argparse.Namespace) -> None:
    """The library logs through `logging` (loggers under `optiinfra_store`) and installs no
    handler; the command line shows them on stderr at the level asked for."""
    if args.log_level:
        level = getattr(logging, args.log_level.upper())
    elif args.quiet:
        level = logging.ERROR
    else:
        level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(PROG)
    handler.setFormatter(
        _JsonFormatter() if args.log_format == "json" else _TextFormatter("%(levelname)s %(name)s: %(message)s")
    )
    library = logging.getLogger("optiinfra_store")
    library.handlers[:] = [h for h in library.handlers if h.get_name() != PROG] + [handler]
    library.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args)
    args.dsn_source = "--dsn" if args.dsn else f"${DSN_ENV}"  # named where a command's error needs it
    args.dsn = args.dsn or os.environ.get(DSN_ENV) or None
    try:
        if args.needs_dsn and args.dsn is None:
            raise ConfigurationError(f"no database given: pass --dsn or set {DSN_ENV}")
        code = args.handler(args)
    except StoreError as exc:
        print(f"{PROG} {args.command}: error: {mask(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
