"""`optiinfra-store`: migrate, roll back, inspect and seed a database, or run the demo."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID

from optiinfra_store import embedded, migrations, seed
from optiinfra_store.dsn import DSN_ENV, resolve_dsn
from optiinfra_store.errors import ConfigurationError, InvalidArgument, StoreError
from optiinfra_store.records import MaintenanceReport, PurgeReport
from optiinfra_store.report import print_statistics
from optiinfra_store.secrets import SECRET_KEY_ENV
from optiinfra_store.store import Store


def _cmd_migrate(args: argparse.Namespace) -> None:
    applied = migrations.apply(args.dsn)
    print(f"applied {', '.join(applied)}" if applied else "schema is up to date")


def _cmd_rollback(args: argparse.Namespace) -> None:
    count = None if args.all else args.count
    rolled_back = migrations.rollback(args.dsn, count=count)
    print(f"rolled back {', '.join(rolled_back)}" if rolled_back else "nothing to roll back")


def _cmd_status(args: argparse.Namespace) -> None:
    for state in migrations.status(args.dsn):
        when = f"applied {state.applied_at:%Y-%m-%d %H:%M:%S} UTC" if state.applied else "pending"
        print(f"{state.id:<28} {when}")


def _cmd_seed(args: argparse.Namespace) -> None:
    files = seed.load(args.dsn)
    print(f"loaded {len(files)} seed files: {', '.join(files)}")


def _cmd_demo(args: argparse.Namespace) -> None:
    from optiinfra_store.demo import run_demo

    if args.dsn or os.environ.get(DSN_ENV):
        asyncio.run(run_demo(resolve_dsn(args.dsn)))
        return
    if not embedded.available():
        raise StoreError(embedded.INSTALL_HINT)
    print("starting embedded PostgreSQL ...", flush=True)
    with embedded.embedded_server(args.data_dir) as dsn:
        asyncio.run(run_demo(dsn))


def _cmd_serve(args: argparse.Namespace) -> None:
    try:
        from optiinfra_store.api.serve import serve
    except ImportError as exc:
        raise ConfigurationError(
            f"serve needs the api extra: pip install 'optiinfra-store[api]' ({exc.name} is missing)"
        ) from None
    serve(args.dsn or os.environ.get(DSN_ENV) or None, args.host, args.port, args.data_dir)


def _cmd_token(args: argparse.Namespace) -> None:
    try:
        from optiinfra_store.api.auth import TokenVerifier, issue_token
    except ImportError as exc:
        raise ConfigurationError(
            f"token needs the api extra: pip install 'optiinfra-store[api]' ({exc.name} is missing)"
        ) from None
    secret = os.environ.get("OPTIINFRA_JWT_SECRET", "")
    if not secret:
        raise ConfigurationError("set OPTIINFRA_JWT_SECRET to the service's HS256 secret")
    TokenVerifier.hs256(secret)  # the same checks as the service's: refuses a missing or short secret
    try:
        customer = UUID(args.customer)
    except ValueError:
        raise InvalidArgument(f"--customer must be a customer id (a UUID), got {args.customer!r}") from None
    issuer, audience = os.environ.get("OPTIINFRA_JWT_ISSUER"), os.environ.get("OPTIINFRA_JWT_AUDIENCE")
    print(
        issue_token(
            secret,
            subject=args.subject,
            customer_id=customer,
            scope=args.scope,
            ttl_seconds=args.ttl,
            issuer=issuer,
            audience=audience,
        )
    )


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


async def _purge(dsn: str | None, cutoff: datetime, keep_failed: bool, dry_run: bool) -> tuple[PurgeReport, int]:

    async with Store.connect(dsn, min_size=1, max_size=1) as store:
        report = await store.workflow_executions.purge(finished_before=cutoff, keep_failed=keep_failed, dry_run=dry_run)
        metrics = await store.agent_metrics.purge(cutoff, dry_run=dry_run)
    return report, metrics


def _cmd_purge(args: argparse.Namespace) -> None:
    older_than = parse_duration(args.older_than)
    try:
        cutoff = datetime.now(UTC) - older_than
    except OverflowError:
        raise InvalidArgument(f"invalid duration {args.older_than!r}: too long") from None
    report, metrics = asyncio.run(_purge(args.dsn, cutoff, args.keep_failed, args.dry_run))
    verb = "would purge" if args.dry_run else "purged"
    print(
        f"{verb} {report.executions} workflow executions ({report.steps} steps, {report.artifacts} artifacts, "
        f"{report.transitions} transitions) and {metrics} metric points from before {cutoff:%Y-%m-%d %H:%M:%S} UTC"
    )


async def _maintain(dsn: str | None) -> MaintenanceReport:
    async with Store.connect(dsn, min_size=1, max_size=1) as store:
        return await store.maintain()


def _cmd_maintain(args: argparse.Namespace) -> None:
    report = asyncio.run(_maintain(args.dsn))
    print(
        f"maintained: {report.metric_partitions_created} metric partitions created, "
        f"{report.rollup_hours} hours of workflow history rolled up"
    )


async def _stats(dsn: str | None, customer: str | None, days: int) -> None:

    async with Store.connect(dsn, min_size=1, max_size=1) as store:
        customer_id = None
        if customer:
            try:
                customer_id = UUID(customer)
            except ValueError:
                customer_id = (await store.customers.get_by_email(customer)).id
        await print_statistics(store, customer_id=customer_id, since=datetime.now(UTC) - timedelta(days=days))


def _cmd_stats(args: argparse.Namespace) -> None:
    if args.days < 1:
        raise InvalidArgument(f"--days must be at least 1, got {args.days}")
    asyncio.run(_stats(args.dsn, args.customer, args.days))


async def _rotate_key(dsn: str | None, batch_size: int, dry_run: bool) -> tuple[int, int]:
    async with Store.connect(dsn, min_size=1, max_size=1) as store:
        if store.agent_configs.secret_key_ids is None:
            raise ConfigurationError(
                f"rotate-key needs the secret keys in ${SECRET_KEY_ENV}, newest first, separated by commas"
            )
        if dry_run:
            return 0, await store.agent_configs.pending_rotation()
        written = await store.agent_configs.rotate_key(batch_size=batch_size)
        return written, await store.agent_configs.pending_rotation()


def _cmd_rotate_key(args: argparse.Namespace) -> None:
    written, pending = asyncio.run(_rotate_key(args.dsn, args.batch_size, args.dry_run))
    if args.dry_run:
        print(f"{pending} sensitive configs are not yet encrypted under the newest key")
    else:
        print(f"re-encrypted {written} sensitive configs under the newest key; {pending} left")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="optiinfra-store",
        description="PostgreSQL data layer of the OptiInfra agents.",
    )
    dsn_help = f"postgresql:// DSN of the database (default: ${DSN_ENV})"
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, handler: Callable[[argparse.Namespace], None]) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--dsn", help=dsn_help)
        sub.set_defaults(handler=handler)
        return sub

    command("migrate", "apply pending migrations", _cmd_migrate)
    rollback = command("rollback", "roll back applied migrations (the last one by default)", _cmd_rollback)
    group = rollback.add_mutually_exclusive_group()
    group.add_argument("--count", type=int, default=1, help="how many migrations to roll back")
    group.add_argument("--all", action="store_true", help="roll back every applied migration")
    command("status", "list migrations, applied and pending", _cmd_status)
    command("seed", "load the demo seed data (idempotent)", _cmd_seed)
    demo = command(
        "demo",
        "migrate, seed and show what the store holds; on an embedded PostgreSQL unless --dsn is given",
        _cmd_demo,
    )
    stats = command("stats", "workflow statistics and performance findings", _cmd_stats)
    stats.add_argument("--customer", help="a customer id or email (default: all customers)")
    stats.add_argument("--days", type=int, default=30, help="the window, in days back from now (default 30)")
    demo.add_argument("--data-dir", help="keep the embedded server's data in this directory")
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
    command(
        "maintain",
        "periodic upkeep, idempotent (metric partitions ahead, ...); run it from cron, at least daily",
        _cmd_maintain,
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
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    serve.add_argument("--data-dir", help="keep the embedded server's data in this directory")
    token = commands.add_parser(
        "token",
        help="print an HS256 token for the service, signed with $OPTIINFRA_JWT_SECRET",
        description="print an HS256 token for the service, signed with $OPTIINFRA_JWT_SECRET",
    )
    token.set_defaults(handler=_cmd_token)
    token.add_argument("--customer", required=True, help="the customer id the token speaks for")
    token.add_argument("--subject", default="operator", help="the token's sub claim (default operator)")
    token.add_argument("--scope", default="workflows:read", help="space-separated scopes (default workflows:read)")
    token.add_argument("--ttl", type=int, default=3600, help="seconds until it expires (default 3600)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except StoreError as exc:
        print(f"optiinfra-store {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
