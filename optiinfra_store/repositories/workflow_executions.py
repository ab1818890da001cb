"""workflow_executions: one run of a workflow by an agent for a customer, with guarded transitions."""

from __future__ import annotations

import builtins
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypedDict, TypeVar, Unpack
from uuid import UUID

import asyncpg
from pydantic import TypeAdapter, ValidationError

from optiinfra_store.connection.executor import Executor
from optiinfra_store.enums import WorkflowStatus, WorkflowType
from optiinfra_store.errors import AlreadyExists, InvalidArgument, NotFound
from optiinfra_store.records import (
    Page,
    PurgeReport,
    WorkflowArtifact,
    WorkflowExecution,
    WorkflowExecutionCreate,
    WorkflowExecutionDetail,
    WorkflowExecutionUpdate,
    WorkflowStep,
    WorkflowTransition,
)
from optiinfra_store.records._base import JsonObject
from optiinfra_store.records.analytics import (
    DurationBucket,
    ErrorPattern,
    RetryHotspot,
    StepTiming,
    TrendBucket,
    TypeStatistics,
    WorkflowPerformance,
    WorkflowStatistics,
)
from optiinfra_store.repositories.base import (
    Finishing,
    as_optional_uuid,
    as_uuid,
    audit,
    check_int,
    enum_value,
    enum_values,
    optional_aware,
    platform,
)
from optiinfra_store.rules import sketch
from optiinfra_store.rules.tips import performance_tips

_STEPS = TypeAdapter(list[WorkflowStep])
_ARTIFACTS = TypeAdapter(list[WorkflowArtifact])
C = TypeVar("C", WorkflowStep, WorkflowArtifact)
_R = TypeVar("_R")

_purge_log = logging.getLogger("optiinfra_store.purge")


def _children(records: TypeAdapter[list[C]], text: str) -> list[C]:
    """Parse and validate the JSON array of an execution's steps or artifacts in one pass.
    pydantic's parser stops near 200 levels of nesting, and documents up to JSON_MAX_DEPTH are
    stored: those go through the json module first."""
    try:
        return records.validate_json(text)
    except ValidationError:
        return records.validate_python(json.loads(text))


class WorkflowExecutions(Finishing[WorkflowExecution], table="workflow_executions"):
    status_type = WorkflowStatus
    customer_owned = True

    async def create(self, data: WorkflowExecutionCreate) -> WorkflowExecution:
        """Insert an execution (pending unless `data` imports a status).

        With an `idempotency_key` the agent has used before for the same customer, nothing is
        written and the row the first call made is returned, so a create retried after a lost reply
        makes one row. Keys are the customer's own: another customer's use of a key changes nothing.
        Raises MissingReference for an unknown agent or customer, AlreadyExists if the key was
        used for an execution of another workflow type.

        With a key, a create whose connection is lost after it was sent (OutcomeUnknown otherwise)
        is retried on a fresh connection, waiting for the server within the store's
        `acquire_timeout`, and lands once (outside a transaction: in one, the transaction is lost)."""
        data = WorkflowExecutionCreate.model_validate(data)
        if data.idempotency_key is None:
            return await self._create(data)
        return await self._db.retrying(lambda: self._create(data))

    async def _create(self, data: WorkflowExecutionCreate) -> WorkflowExecution:
        key = (data.customer_id, data.agent_id, data.idempotency_key)
        for _ in range(2):  # a second time if the first row went between the two statements
            row = await self._db.fetchrow(self._q.insert, *self._q.args("insert", data))
            if row is not None:
                return self._one(row)
            # the key was used before: return that row, if it is the same request
            found = await self._db.fetchrow(self._q.get_by_idempotency_key, *key)
            if found is not None:
                break
        else:  # another customer's row holds the key (a database not yet migrated to 0021)
            raise AlreadyExists(
                f"idempotency key {data.idempotency_key!r} of agent {data.agent_id} was used for another "
                "customer's execution (keys are per customer once the migrations are applied)",
                constraint="workflow_executions_agent_id_idempotency_key_key",
            )
        first = self._one(found)
        if first.workflow_type != data.workflow_type:
            raise AlreadyExists(
                f"idempotency key {data.idempotency_key!r} of agent {data.agent_id} was used for "
                f"execution {first.id} ({first.workflow_type})",
                constraint="workflow_executions_customer_id_agent_id_idempotency_key_key",
            )
        return first

    async def update(
        self, id: UUID | str, data: WorkflowExecutionUpdate, *, expected_version: int | None = None
    ) -> WorkflowExecution:
        """Write the metadata / input_data / output_data set in `data`. With `expected_version`
        (the `version` you read), write only if nobody wrote since. Raises NotFound, StaleVersion."""
        data = WorkflowExecutionUpdate.model_validate(data)
        return await self._update_versioned(id, data, expected_version)

    async def start(
        self, id: UUID | str, *, actor: str | None = None, reason: str | JsonObject | None = None
    ) -> WorkflowExecution:
        """pending -> running; sets started_at. Raises NotFound, InvalidTransition.

        Every transition takes an optional `actor` (who) and `reason` (why: a dict, or a string,
        recorded as {"message": reason}), recorded in the audit trail; InvalidArgument otherwise."""
        return await self._move(self._q.start, id, WorkflowStatus.RUNNING, actor, reason)

    async def cancel(
        self, id: UUID | str, reason: str | JsonObject | None = None, *, actor: str | None = None
    ) -> WorkflowExecution:
        """pending or running -> cancelled; sets completed_at and records the reason (a string
        becomes {"reason": ...}) in error_details and the audit trail."""
        if isinstance(reason, str):
            reason = {"reason": reason}
        actor_value, reason_value = audit(actor, reason)
        return await self._transition(self._q.cancel, as_uuid(id), WorkflowStatus.CANCELLED, reason_value, actor_value)

    async def time_out(
        self,
        id: UUID | str,
        error_details: JsonObject | None = None,
        *,
        actor: str | None = None,
        reason: str | JsonObject | None = None,
    ) -> WorkflowExecution:
        """running -> timeout; sets completed_at and, if given, error_details."""
        return await self._finish(id, WorkflowStatus.TIMEOUT, None, error_details, actor, reason)

    async def get_detail(self, id: UUID | str) -> WorkflowExecutionDetail:
        """The execution with its steps (ordered by step_order) and artifacts. Raises NotFound."""
        key = as_uuid(id)
        row = await self._reads.fetchrow(self._q.get_detail, key, *self._read_route(key))
        if row is None:
            raise NotFound(self.entity, key)
        values = dict(row)
        values["steps"] = _children(_STEPS, values["steps"])
        values["artifacts"] = _children(_ARTIFACTS, values["artifacts"])
        if self._routes is not None:  # the execution's, its steps' and artifacts' customer
            customer = values["customer_id"]
            self._routes.remember(self.table, key, customer)
            for table in ("steps", "artifacts"):
                for child in values[table]:
                    self._routes.remember(f"workflow_{table}", child.id, customer)
        return WorkflowExecutionDetail.from_row(values)

    async def list(
        self,
        *,
        customer_id: UUID | str | None = None,
        agent_id: UUID | str | None = None,
        workflow_type: WorkflowType | str | None = None,
        status: WorkflowStatus | str | Iterable[WorkflowStatus | str] | None = None,
        started_after: datetime | None = None,
        started_before: datetime | None = None,
        limit: int = 1000,
        cursor: str | None = None,
    ) -> Page[WorkflowExecution]:
        """One page of executions, newest first. `status` takes one value or several;
        pass the returned `next_cursor` to get the next page (None on the last)."""
        return await self._page(
            self._q.list,
            [
                as_optional_uuid(customer_id, "customer_id"),
                as_optional_uuid(agent_id, "agent_id"),
                enum_value(workflow_type, WorkflowType, "workflow_type"),
                enum_values(status, WorkflowStatus, "status"),
                optional_aware(started_after, "started_after"),
                optional_aware(started_before, "started_before"),
            ],
            limit,
            cursor,
            "created_at",
            maximum=1000,
        )

    async def history(self, id: UUID | str) -> builtins.list[WorkflowTransition]:
        """Every status change of the execution and of its steps, oldest first, with who made it
        and why. Raises NotFound."""
        key = as_uuid(id)
        route = self._read_route(key)

        async def read(reads: Executor) -> builtins.list[asyncpg.Record]:
            # both on one server: a replica further behind would not know an execution just made
            rows = await reads.fetch(self._q.history, key, *route)
            if not rows and await reads.fetchval(self._q.exists, key, *route) is None:
                raise NotFound(self.entity, key)
            return rows

        return [WorkflowTransition.from_row(row) for row in await self._reads.on_one_server(read)]

    async def list_active(self) -> builtins.list[WorkflowExecution]:
        """Every pending and running execution, oldest first."""
        return self._many(await self._db.fetch(self._q.list_active))

    # -- analytics: one statement each -------------------------------------------------------------

    async def statistics(self, **scope: Unpack[Scope]) -> WorkflowStatistics:
        """Counts per status, success rate and durations (avg, p50, p95, max over finished executions
        with both timestamps) of the executions created in [since, until), overall and per workflow
        type. The window defaults to the last 30 days (the database's clock).

        Whole days (and, without a customer or agent filter, whole hours) are read from the rollups
        `Store.maintain()` keeps, the rest of the window from the executions themselves. Counts,
        averages and the max are exact. p50 and p95 are nearest-rank percentiles (the duration at
        rank ceil(q * n)): exact when the window holds at most `sketch.EXACT_UP_TO` (100) durations
        of the type (or overall), else estimated from a duration sketch within 2% of that duration
        and never outside the window's minimum and maximum (see `optiinfra_store.rules.sketch`)."""
        filters = self._filters(scope)

        async def read(reads: Executor, plan: asyncpg.Record) -> builtins.list[asyncpg.Record]:
            return await reads.fetch_planned(self._q.statistics, *filters[:3], *plan[2:])

        plan, rows = await self._planned(filters, read, hours=filters[0] is None and filters[1] is None, days=True)
        by_type = {WorkflowType(row["workflow_type"]): _figures(row) for row in rows}
        overall = _Figures.total([_Figures.of(row) for row in rows])
        return WorkflowStatistics.model_construct(
            since=plan["since"], until=plan["until"], by_type=by_type, **dict(overall.statistics())
        )

    async def performance(self, **scope: Unpack[Scope]) -> WorkflowPerformance:
        """Duration histogram, error patterns, slowest steps, retry hotspots and plain-English tips
        for the executions created in [since, until) (default the last 30 days) and their steps.
        Read from the rollups and the raw tables like `statistics` (with an agent filter, from the
        raw tables only). Percentiles (of the executions, and each step name's p95) as in
        `statistics`: nearest-rank, exact up to `sketch.EXACT_UP_TO` (100) durations, else within
        2% and between the minimum and maximum; everything else exact. The tips compare the
        figures they print (see `optiinfra_store.rules.tips`)."""
        filters = self._filters(scope)
        rolled = filters[1] is None  # the rollups keep no agent's steps or errors

        async def read(reads: Executor, plan: asyncpg.Record) -> asyncpg.Record | None:
            return await reads.fetchrow_planned(self._q.performance, *filters[:3], *plan[2:])

        plan, row = await self._planned(filters, read, hours=rolled and filters[0] is None, days=rolled)
        assert row is not None  # one row per call: the window
        ex = row["executions"]
        ended = ex["ended"]
        success_rate = ex["completed"] / ended if ended else None
        buckets = [
            DurationBucket.model_construct(label=label, min_seconds=lo, max_seconds=hi, count=n)
            for (label, lo, hi), n in zip(DURATION_BUCKETS, ex["buckets"], strict=True)
        ]
        errors = [
            ErrorPattern.model_construct(**{**p, "last_seen": datetime.fromisoformat(p["last_seen"])})
            for p in row["error_patterns"]
        ]
        steps = row["steps"]
        timings = [
            StepTiming.model_construct(
                step_name=p["step_name"],
                count=p["timed"],
                avg_seconds=p["duration_sum"] / p["timed"],
                p95_seconds=_percentile(p, 0.95),
            )
            for p in steps
            if p["timed"] > 0
        ]
        slowest = sorted(timings, key=lambda t: (-t.p95_seconds, t.step_name))[:10]
        hotspots = [
            RetryHotspot.model_construct(
                step_name=p["step_name"],
                steps=p["steps"],
                total_retries=p["total_retries"],
                share_retried=p["retried"] / p["steps"],
            )
            for p in sorted(steps, key=lambda p: (-p["total_retries"], p["step_name"]))
            if p["total_retries"] > 0
        ][:10]
        durations = {"sketch": row["execution_sketch"], "sample": row["execution_sample"], **ex}
        p50 = _percentile(durations, 0.5)
        p95 = _percentile(durations, 0.95)
        tips = performance_tips(
            success_rate=success_rate,
            completed=ex["completed"],
            ended=ended,
            p50=p50,
            p95=p95,
            step_failures=[{"step_name": p["step_name"], "runs": p["runs"], "failed": p["failed"]} for p in steps],
            hotspots=hotspots,
            total_retries=sum(p["total_retries"] for p in steps),
        )
        return WorkflowPerformance.model_construct(
            since=plan["since"],
            until=plan["until"],
            finished=ex["timed"],
            success_rate=success_rate,
            p50_duration_seconds=p50,
            p95_duration_seconds=p95,
            duration_buckets=buckets,
            error_patterns=errors,
            slowest_steps=slowest,
            retry_hotspots=hotspots,
            tips=tips,
        )

    async def trend(
        self,
        *,
        bucket: timedelta,
        since: datetime,
        until: datetime | None = None,
        customer_id: UUID | str | None = None,
        agent_id: UUID | str | None = None,
        workflow_type: WorkflowType | str | None = None,
    ) -> builtins.list[TrendBucket]:
        """Executions created in [since, until) (until defaults to now) per bucket of width `bucket`
        (PostgreSQL date_bin with origin `since`): counts per status and the average duration of the
        finished ones, oldest bucket first, empty buckets included. Rolled-up hours and days are
        used where they fall wholly inside a bucket (a width of whole hours from a whole hour).
        Raises InvalidArgument for a non-positive bucket or more than 10,000 buckets."""
        if not isinstance(bucket, timedelta) or bucket <= timedelta(0):
            raise InvalidArgument(f"bucket must be a positive timedelta, got {bucket!r}")
        if optional_aware(since, "since") is None:
            raise InvalidArgument("since is required")
        end = optional_aware(until, "until") or datetime.now(since.tzinfo)
        if end > since and -((since - end) // bucket) > MAX_TREND_BUCKETS:
            raise InvalidArgument(
                f"{bucket} buckets from {since.isoformat()} to {end.isoformat()} exceed {MAX_TREND_BUCKETS:,}"
            )
        args = self._filters(
            Scope(customer_id=customer_id, agent_id=agent_id, workflow_type=workflow_type, since=since, until=until)
        )
        hours = _aligned(since, bucket, timedelta(hours=1)) and args[0] is None and args[1] is None
        days = _aligned(since, bucket, timedelta(days=1))
        width = bucket // timedelta(microseconds=1)

        async def read(reads: Executor, plan: asyncpg.Record) -> builtins.list[asyncpg.Record]:
            return await reads.fetch_planned(self._q.trend, *args[:3], plan["since"], plan["until"], width, *plan[2:])

        _, rows = await self._planned(args, read, hours=hours, days=days)
        return [
            TrendBucket.model_construct(
                start=row["start"],
                end=row["end"],
                total=row["total"],
                count_by_status={s: row[s.value] for s in WorkflowStatus},
                avg_duration_seconds=float(row["duration_sum"] / row["timed"]) if row["timed"] else None,
            )
            for row in rows
        ]

    async def _planned(
        self,
        filters: builtins.list[Any],
        read: Callable[[Executor, asyncpg.Record], Awaitable[_R]],
        *,
        hours: bool,
        days: bool,
    ) -> tuple[asyncpg.Record, _R]:
        """The plan of an analytics call (`rollup_plan`: its window, since and until, and where each
        part of it is read: the raw ranges, and the days and hours read from the rollups), and what
        `read` then reads by it, both on one server (a replica behind the one that planned would
        lack rollups the plan names). The plan is a statement of its own: on a Citus cluster it
        reads the rollups' bookkeeping on the coordinator, and the statement it plans then goes to
        the node holding the customer's rows."""
        customer, _, _, since, until = filters

        async def reads(executor: Executor) -> tuple[asyncpg.Record, _R]:
            plan = await executor.fetchrow(self._q.rollup_plan, since, until, hours, days, customer)
            assert plan is not None  # one row per call
            return plan, await read(executor, plan)

        return await self._reads.on_one_server(reads)

    def _filters(self, scope: Scope) -> builtins.list[Any]:
        """$1..$5 of the analytics statements; a confined store's customer unless another is named
        (whose rows row-level security then hides)."""
        filters = _filters(scope)
        if filters[0] is None:
            filters[0] = self._customer_id
        return filters

    @platform
    async def purge(
        self,
        *,
        finished_before: datetime,
        keep_failed: bool = False,
        batch_size: int = 1000,
        dry_run: bool = False,
        on_batch: Callable[[PurgeReport], None] | None = None,
    ) -> PurgeReport:
        """Delete executions that finished (completed, failed, cancelled, timeout) before
        `finished_before`, with their steps, artifacts and transitions; pending and running
        executions are never touched. `keep_failed` keeps failed and timed-out ones.

        Deletes in batches of `batch_size`, oldest first, each batch one short statement (its own
        transaction on a pool, so it runs beside live traffic; rows locked by others are skipped
        and left for a later run), until a batch deletes nothing. On a repository bound to a
        transaction the batches share it. `dry_run` counts what would go and deletes nothing.
        `on_batch` is called after each batch with the counts so far (for progress); each batch
        is also logged (logger `optiinfra_store.purge`, INFO). Returns the counts. Raises
        InvalidArgument.

        On a schema distributed by customer (`by_customer`) the batches go shard by shard, oldest
        shard first, each naming the customers it deletes for (`_purge_by_shard`)."""
        if finished_before is None:
            raise InvalidArgument("finished_before must be a timezone-aware datetime, got None")
        cutoff = optional_aware(finished_before, "finished_before")
        check_int(batch_size, "batch_size", 1, 100_000)
        finished = [WorkflowStatus.COMPLETED.value, WorkflowStatus.CANCELLED.value]
        if not keep_failed:
            finished += [WorkflowStatus.FAILED.value, WorkflowStatus.TIMEOUT.value]
        if dry_run:
            count = self._q.purge_count_by_customer if self._by_customer else self._q.purge_count
            row = await self._db.fetchrow(count, cutoff, finished)
            assert row is not None  # aggregates without GROUP BY return one row
            return PurgeReport.from_row(row)
        totals = dict.fromkeys(PurgeReport.model_fields, 0)

        def tally(row: Mapping[str, Any]) -> None:
            for name in totals:
                totals[name] += row[name]
            _purge_log.info(
                "purged a batch of %d workflow executions (%d so far)", row["executions"], totals["executions"]
            )
            if on_batch is not None:
                on_batch(PurgeReport(**totals))

        if self._by_customer:
            await self._purge_by_shard(cutoff, finished, batch_size, tally)
            return PurgeReport(**totals)
        while True:
            row = await self._db.fetchrow(self._q.purge_batch, cutoff, finished, batch_size)
            assert row is not None
            if row["executions"] == 0:
                break
            tally(row)
        return PurgeReport(**totals)

    async def _purge_by_shard(
        self,
        cutoff: datetime | None,
        finished: builtins.list[str],
        batch_size: int,
        tally: Callable[[Mapping[str, Any]], None],
    ) -> None:
        """purge's batches on a schema distributed by customer. Citus refuses row locks in a
        statement that reaches several shards, so the customers with something to purge are read
        first, in groups that share a shard, and each group's batches name its customers: each
        batch goes to one shard, and locks and skips rows there as on one server. A group is done
        when a batch comes back short (every row it could lock went); what finishes before the
        cutoff after the groups were read waits for the next purge."""
        for group in await self._db.fetch(self._q.purge_shards, cutoff, finished):
            while True:
                row = await self._db.fetchrow(
                    self._q.purge_batch_by_customers, cutoff, finished, batch_size, group["customers"]
                )
                assert row is not None
                if row["executions"] > 0:
                    tally(row)
                if row["executions"] < batch_size:
                    break


# -- analytics helpers -----------------------------------------------------------------------------

MAX_TREND_BUCKETS = 10_000

DURATION_BUCKETS: list[tuple[str, float, float | None]] = [
    ("under 1 min", 0.0, 60.0),
    ("1-5 min", 60.0, 300.0),
    ("5-15 min", 300.0, 900.0),
    ("15-60 min", 900.0, 3600.0),
    ("over 1 h", 3600.0, None),
]
"""The duration histogram's fixed buckets: (label, from seconds inclusive, to seconds exclusive)."""


class Scope(TypedDict, total=False):
    """The executions an analytics call covers: those created in [since, until) (by default the
    last 30 days, by the database's clock), optionally of one customer, agent and workflow type."""

    customer_id: UUID | str | None
    agent_id: UUID | str | None
    workflow_type: WorkflowType | str | None
    since: datetime | None
    until: datetime | None


def _filters(scope: Scope) -> list[Any]:
    """$1..$5 of the analytics statements: customer, agent, workflow type, window."""
    unknown = scope.keys() - Scope.__annotations__.keys()
    if unknown:
        raise TypeError(
            f"unexpected keyword argument {sorted(unknown)[0]!r}; expected one of {', '.join(Scope.__annotations__)}"
        )
    since = optional_aware(scope.get("since"), "since")
    until = optional_aware(scope.get("until"), "until")
    if since is not None and until is not None and until < since:
        raise InvalidArgument(f"until ({until.isoformat()}) is before since ({since.isoformat()})")
    return [
        as_optional_uuid(scope.get("customer_id"), "customer_id"),
        as_optional_uuid(scope.get("agent_id"), "agent_id"),
        enum_value(scope.get("workflow_type"), WorkflowType, "workflow_type"),
        since,
        until,
    ]


def _aligned(since: datetime, width: timedelta, unit: timedelta) -> bool:
    """Whether buckets of `width` from `since` are made of whole `unit`s (UTC)."""
    offset = since.astimezone(UTC) - datetime(2000, 1, 1, tzinfo=UTC)
    return width % unit == timedelta(0) and offset % unit == timedelta(0)


@dataclass(frozen=True)
class _Figures:
    """One statistics row: counts per status, the exact duration sum, the min (None when unknown) and
    max, the sketch, and every duration (`sample`) when there are at most sketch.EXACT_UP_TO."""

    counts: dict[WorkflowStatus, int]
    timed: int
    duration_sum: Decimal
    duration_max: float | None
    duration_min: float | None
    sketch: dict[str, int]
    sample: list[float] | None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> _Figures:
        return cls(
            counts={s: row[s.value] for s in WorkflowStatus},
            timed=row["timed"],
            duration_sum=row["duration_sum"],
            duration_max=row["duration_max"],
            duration_min=row["duration_min"],
            sketch=row["sketch"],
            sample=row["sample"],
        )

    @classmethod
    def total(cls, parts: Sequence[_Figures]) -> _Figures:
        maxima = [p.duration_max for p in parts if p.duration_max is not None]
        timed = [p for p in parts if p.timed]
        known = all(p.duration_min is not None for p in timed)
        samples = [p.sample for p in parts]
        exact = sum(p.timed for p in parts) <= sketch.EXACT_UP_TO and all(s is not None for s in samples)
        return cls(
            counts={s: sum(p.counts[s] for p in parts) for s in WorkflowStatus},
            timed=sum(p.timed for p in parts),
            duration_sum=sum((p.duration_sum for p in parts), Decimal(0)),
            duration_max=max(maxima) if maxima else None,
            duration_min=min(p.duration_min for p in timed if p.duration_min is not None) if timed and known else None,
            sketch=sketch.merge(p.sketch for p in parts),
            sample=[v for s in samples for v in s or ()] if exact else None,
        )

    def statistics(self) -> TypeStatistics:
        ended = sum(self.counts[s] for s in FINISHED)
        return TypeStatistics.model_construct(
            total=sum(self.counts.values()),
            count_by_status=self.counts,
            success_rate=self.counts[WorkflowStatus.COMPLETED] / ended if ended else None,
            avg_duration_seconds=float(self.duration_sum / self.timed) if self.timed else None,
            p50_duration_seconds=self.percentile(0.5),
            p95_duration_seconds=self.percentile(0.95),
            max_duration_seconds=self.duration_max,
        )

    def percentile(self, q: float) -> float | None:
        return sketch.percentile(
            q, sample=self.sample, sketch=self.sketch, minimum=self.duration_min, maximum=self.duration_max
        )


def _percentile(durations: Mapping[str, Any], q: float) -> float | None:
    """A percentile of the durations `performance` reads (the executions', or one step name's):
    `sample`, `sketch`, `min` and `max` as the statement gives them."""
    return sketch.percentile(
        q, sample=durations["sample"], sketch=durations["sketch"], minimum=durations["min"], maximum=durations["max"]
    )


def _figures(row: Mapping[str, Any]) -> TypeStatistics:
    return _Figures.of(row).statistics()


FINISHED = (WorkflowStatus.COMPLETED, WorkflowStatus.FAILED, WorkflowStatus.CANCELLED, WorkflowStatus.TIMEOUT)
