"""The two asyncpg stacks: optiinfra_store's repositories, and raw asyncpg with the same SQL.

Both expose the same methods (the ORM stack in benchmarks/orm.py too), so the runner can call any
operation on any stack. The raw stack loads the store's own statements with
`optiinfra_store.queries.load`, opens its pool with the store's connection init (codecs) and reset
and the same sizes and command timeout, and returns asyncpg Records. Where the store does work in
Python after a statement (telling NotFound from InvalidTransition, the retry bound), the raw stack
does the same follow-up query, so each side pays for the same round trips.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from optiinfra_store import Store
from optiinfra_store.connection.codecs import init_connection
from optiinfra_store.enums import ArtifactType, MetricType, WorkflowType
from optiinfra_store.queries import load
from optiinfra_store.records import (
    WorkflowArtifactCreate,
    WorkflowExecution,
    WorkflowExecutionCreate,
    WorkflowExecutionDetail,
    WorkflowStepCreate,
)

HOUR = timedelta(hours=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
INPUT_DATA = {"analysis_period": "last_30_days", "resources": ["gpu-a100-1", "gpu-a100-2"]}
OUTPUT_DATA = {"potential_savings": 60000, "recommendations": 3}
COPY_COLUMNS = [
    "agent_id",
    "metric_name",
    "metric_type",
    "metric_value",
    "metric_unit",
    "collection_timestamp",
    "metadata",
]


class NotFoundError(LookupError):
    """What the raw and ORM stacks raise where the store raises NotFound."""


class TransitionRefused(RuntimeError):
    """What the raw and ORM stacks raise where the store raises InvalidTransition / RetriesExhausted."""


def store_pool_defaults() -> dict[str, Any]:
    """The pool options Store.connect passes to asyncpg by default (command_timeout, ...), read from
    its signature so the raw pool follows any change."""
    params = inspect.signature(Store.connect).parameters
    options = {}
    if "command_timeout" in params:
        options["command_timeout"] = params["command_timeout"].default
    return options


def _insert_order(model: type) -> tuple[list[str], dict[str, Any]]:
    """The field order of an input model (= its insert statement's parameters) and its defaults."""
    fields = model.model_fields
    defaults = {
        name: field.get_default(call_default_factory=True) for name, field in fields.items() if not field.is_required()
    }
    return list(fields), defaults


class StoreStack:
    """optiinfra_store's repositories, as an agent would call them."""

    name = "store"
    is_async = True

    def __init__(self, store: Store) -> None:
        self.store = store

    @classmethod
    async def open(cls, dsn: str, pool_size: int) -> StoreStack:
        return cls(await Store.connect(dsn, min_size=pool_size, max_size=pool_size))

    async def close(self) -> None:
        await self.store.close()

    @staticmethod
    def id_of(row: Any) -> UUID:
        return row.id

    # -- point operations --------------------------------------------------------------------------

    async def create_execution(self, agent_id: UUID, customer_id: UUID) -> Any:
        return await self.store.workflow_executions.create(
            WorkflowExecutionCreate(
                agent_id=agent_id,
                customer_id=customer_id,
                workflow_type=WorkflowType.COST_ANALYSIS,
                input_data=INPUT_DATA,
            )
        )

    async def get_execution(self, id: UUID) -> Any:
        return await self.store.workflow_executions.get(id)

    async def get_confined(self, id: UUID, customer_id: UUID) -> Any:
        """get() on a store confined to the execution's customer, made per call as the service does."""
        return await self.store.for_customer(customer_id).workflow_executions.get(id)

    async def get_detail(self, id: UUID) -> Any:
        return await self.store.workflow_executions.get_detail(id)

    async def start_execution(self, id: UUID) -> Any:
        return await self.store.workflow_executions.start(id)

    async def complete_execution(self, id: UUID) -> Any:
        return await self.store.workflow_executions.complete(id, output_data=OUTPUT_DATA)

    async def start_complete(self, id: UUID) -> Any:
        await self.start_execution(id)
        return await self.complete_execution(id)

    async def step_retry(self, id: UUID) -> Any:
        return await self.store.workflow_steps.retry(id)

    async def create_step(self, execution_id: UUID, order: int) -> Any:
        return await self.store.workflow_steps.create(
            WorkflowStepCreate(
                workflow_execution_id=execution_id,
                step_name=f"step_{order}",
                step_order=order,
                input_data={"order": order},
            )
        )

    async def start_step(self, id: UUID) -> Any:
        return await self.store.workflow_steps.start(id)

    async def complete_step(self, id: UUID) -> Any:
        return await self.store.workflow_steps.complete(id, output_data={"ok": True})

    async def create_artifact(self, execution_id: UUID, step_id: UUID) -> Any:
        return await self.store.workflow_artifacts.create(
            WorkflowArtifactCreate(
                workflow_execution_id=execution_id,
                workflow_step_id=step_id,
                artifact_type=ArtifactType.REPORT,
                artifact_name="GPU report",
                artifact_path="s3://reports/gpu.pdf",
                artifact_size_bytes=2_458_624,
            )
        )

    # -- queries -----------------------------------------------------------------------------------

    async def list_page(self, customer_id: UUID) -> Any:
        return await self.store.workflow_executions.list(customer_id=customer_id, status="completed", limit=50)

    async def statistics(self, customer_id: UUID, since: datetime) -> Any:
        return await self.store.workflow_executions.statistics(customer_id=customer_id, since=since)

    async def record_many(self, points: Sequence[dict[str, Any]]) -> int:
        return await self.store.agent_metrics.record_many(points)

    async def metric_aggregate(self, agent_id: UUID, name: str, start: datetime, end: datetime) -> Any:
        return await self.store.agent_metrics.aggregate(agent_id, name, start, end, bucket=HOUR)


class RawStack:
    """asyncpg with the store's SQL, codecs, pool reset and sizes; returns asyncpg Records."""

    name = "raw"
    is_async = True

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.executions = load("workflow_executions")
        self.steps = load("workflow_steps")
        self.artifacts = load("workflow_artifacts")
        self.metrics = load("agent_metrics")
        self._execution_fields, self._execution_defaults = _insert_order(WorkflowExecutionCreate)
        self._step_fields, self._step_defaults = _insert_order(WorkflowStepCreate)
        self._artifact_fields, self._artifact_defaults = _insert_order(WorkflowArtifactCreate)

    @classmethod
    async def open(cls, dsn: str, pool_size: int) -> RawStack:
        from optiinfra_store.connection.codecs import keep_session  # the store's pool reset: no reset query

        pool = await asyncpg.create_pool(
            dsn,
            min_size=pool_size,
            max_size=pool_size,
            init=init_connection,
            reset=keep_session,
            **store_pool_defaults(),
        )
        return cls(pool)

    async def close(self) -> None:
        await self.pool.close()

    @staticmethod
    def id_of(row: Any) -> UUID:
        return row["id"]

    async def _transition(self, sql: str, get_status: str, id: UUID, *args: Any) -> asyncpg.Record:
        """The conditional UPDATE; when it matches nothing, the same look-up the store makes. Its
        last parameter is the row's customer, which one server does not need (null)."""
        row = await self.pool.fetchrow(sql, id, *args, None)
        if row is not None:
            return row
        status = await self.pool.fetchval(get_status, id, None)
        if status is None:
            raise NotFoundError(id)
        raise TransitionRefused(id, status)

    # -- point operations --------------------------------------------------------------------------

    async def create_execution(self, agent_id: UUID, customer_id: UUID) -> asyncpg.Record:
        values = {
            "agent_id": agent_id,
            "customer_id": customer_id,
            "workflow_type": "cost_analysis",
            "input_data": INPUT_DATA,
        }
        defaults = self._execution_defaults
        return await self.pool.fetchrow(
            self.executions.insert, *[values[f] if f in values else defaults[f] for f in self._execution_fields]
        )

    async def get_execution(self, id: UUID) -> asyncpg.Record:
        row = await self.pool.fetchrow(self.executions.get_by_id, id, None)  # no customer: one server
        if row is None:
            raise NotFoundError(id)
        return row

    async def get_detail(self, id: UUID) -> asyncpg.Record:
        row = await self.pool.fetchrow(self.executions.get_detail, id, None)
        if row is None:
            raise NotFoundError(id)
        return row

    async def start_execution(self, id: UUID) -> asyncpg.Record:
        return await self._transition(self.executions.start, self.executions.get_status, id, None, None)

    async def complete_execution(self, id: UUID) -> asyncpg.Record:
        return await self._transition(
            self.executions.finish, self.executions.get_status, id, "completed", OUTPUT_DATA, None, None, None
        )

    async def start_complete(self, id: UUID) -> asyncpg.Record:
        await self.start_execution(id)
        return await self.complete_execution(id)

    async def step_retry(self, id: UUID) -> asyncpg.Record:
        row = await self.pool.fetchrow(self.steps.retry, id, None, None, None)  # actor, reason, customer
        if row is not None:
            return row
        state = await self.pool.fetchrow(self.steps.get_retry_state, id, None)
        if state is None or state["status"] is None:
            raise NotFoundError(id)
        raise TransitionRefused(id, state["status"], state["retry_count"], state["max_retries"])

    async def create_step(self, execution_id: UUID, order: int) -> asyncpg.Record:
        values = {
            "workflow_execution_id": execution_id,
            "step_name": f"step_{order}",
            "step_order": order,
            "input_data": {"order": order},
        }
        defaults = self._step_defaults
        return await self.pool.fetchrow(
            self.steps.insert, *[values[f] if f in values else defaults[f] for f in self._step_fields]
        )

    async def start_step(self, id: UUID) -> asyncpg.Record:
        return await self._transition(self.steps.start, self.steps.get_status, id, None, None)

    async def complete_step(self, id: UUID) -> asyncpg.Record:
        return await self._transition(
            self.steps.finish, self.steps.get_status, id, "completed", {"ok": True}, None, None, None
        )

    async def create_artifact(self, execution_id: UUID, step_id: UUID) -> asyncpg.Record:
        values = {
            "workflow_execution_id": execution_id,
            "workflow_step_id": step_id,
            "artifact_type": "report",
            "artifact_name": "GPU report",
            "artifact_path": "s3://reports/gpu.pdf",
            "artifact_size_bytes": 2_458_624,
        }
        defaults = self._artifact_defaults
        return await self.pool.fetchrow(
            self.artifacts.insert, *[values[f] if f in values else defaults[f] for f in self._artifact_fields]
        )

    # -- queries -----------------------------------------------------------------------------------

    async def list_page(self, customer_id: UUID) -> list[asyncpg.Record]:
        rows = await self.pool.fetch(
            self.executions.list, customer_id, None, None, ["completed"], None, None, None, None, 51
        )
        return rows[:50]

    async def statistics(self, customer_id: UUID, since: datetime) -> list[asyncpg.Record]:
        # as the store: the window's plan, then the statement it plans
        plan = await self.pool.fetchrow(self.executions.rollup_plan, since, None, False, True, customer_id)
        return await self.pool.fetch(self.executions.statistics, customer_id, None, None, *plan[2:])

    @staticmethod
    def _tuples(points: Sequence[dict[str, Any]]) -> list[tuple]:
        return [
            (
                p["agent_id"],
                p["metric_name"],
                p["metric_type"],
                p["metric_value"],
                p["metric_unit"],
                p["collection_timestamp"],
                p["metadata"],
            )
            for p in points
        ]

    async def record_many(self, points: Sequence[dict[str, Any]]) -> int:
        """Binary COPY, like the store's record_many (the default raw variant)."""
        status = await self.pool.copy_records_to_table(
            "agent_metrics", records=self._tuples(points), columns=COPY_COLUMNS
        )
        return int(status.split()[-1])

    async def record_many_executemany(self, points: Sequence[dict[str, Any]]) -> int:
        """The store's one-row insert statement, sent for every point with executemany."""
        await self.pool.executemany(self.metrics.insert, self._tuples(points))
        return len(points)

    async def metric_aggregate(self, agent_id: UUID, name: str, start: datetime, end: datetime) -> list:
        return await self.pool.fetch(self.metrics.aggregate_buckets, agent_id, name, start, end, HOUR, start or EPOCH)


def metric_points(agent_id: UUID, count: int, *, orm: bool = False) -> list[dict[str, Any]]:
    """`count` metric points as plain dicts (the ORM's have its attribute names and enum members)."""
    now = datetime.now(UTC)
    metadata_key = "metric_metadata" if orm else "metadata"
    metric_type = MetricType.GAUGE if orm else "gauge"
    return [
        {
            "agent_id": agent_id,
            "metric_name": "gpu_utilization_percent",
            "metric_type": metric_type,
            "metric_value": 40.0 + (i % 600) / 10,
            "metric_unit": "percent",
            "collection_timestamp": now - timedelta(seconds=count - i),
            metadata_key: {"host": f"gpu-node-{i % 16}"},
        }
        for i in range(count)
    ]


class RecordStack(RawStack):
    """Raw asyncpg building the records the store returns: the same statements on a pool with the
    same codecs and reset, the caller's input model built as a store caller builds it, and each
    row made into its Pydantic record (`Record.from_row`; get_detail's steps and artifacts parsed
    as the store parses them). The honest floor under the store: what is left between the two is
    what the store does beyond the driver and the records (argument checks, the executor, error
    translation, timeouts)."""

    name = "raw+record"

    async def create_execution(self, agent_id: UUID, customer_id: UUID) -> Any:
        data = WorkflowExecutionCreate(
            agent_id=agent_id, customer_id=customer_id, workflow_type=WorkflowType.COST_ANALYSIS, input_data=INPUT_DATA
        )
        row = await self.pool.fetchrow(self.executions.insert, *[getattr(data, f) for f in self._execution_fields])
        return WorkflowExecution.from_row(row)

    async def get_execution(self, id: UUID) -> Any:
        return WorkflowExecution.from_row(await super().get_execution(id))

    async def get_detail(self, id: UUID) -> Any:
        from optiinfra_store.repositories.workflow_executions import _ARTIFACTS, _STEPS

        values = dict(await super().get_detail(id))
        values["steps"] = _STEPS.validate_json(values["steps"])
        values["artifacts"] = _ARTIFACTS.validate_json(values["artifacts"])
        return WorkflowExecutionDetail.from_row(values)

    async def start_execution(self, id: UUID) -> Any:
        return WorkflowExecution.from_row(await super().start_execution(id))

    async def complete_execution(self, id: UUID) -> Any:
        return WorkflowExecution.from_row(await super().complete_execution(id))

    async def list_page(self, customer_id: UUID) -> Any:
        return [WorkflowExecution.from_row(row) for row in await super().list_page(customer_id)]
