"""The SQLAlchemy 2 ORM stack: declarative models of the same tables, mapped the way the seed
documents map them, and a sync Session on psycopg 3 (`postgresql+psycopg://`).

As in the seeds: one model per table with `Column(...)` attributes, `metadata` columns under
another attribute name (`workflow_metadata = Column("metadata", JSONB)`: the name is reserved by
declarative), client-side uuid4 ids, named PostgreSQL enum types, and relationships execution ->
steps (by step_order) and artifacts. Unlike the seeds (their known faults): timestamps are
`timestamptz`, and enums persist their values ("cost_analysis"), which is what the tables hold.

Choices that favour the ORM and are stated here: `expire_on_commit=False` and eager defaults, so
a committed object is returned with its server-set columns (created_at, updated_at from the
trigger) fetched by RETURNING in the same statement instead of a reload; detail reads use
selectinload (3 statements) rather than lazy loads. Service logic follows the seeds: load the row,
check it in Python, mutate, commit (no SELECT ... FOR UPDATE, so unlike the store's conditional
UPDATE it can lose a race; it does not cost a round trip either way).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Enum,
    FetchedValue,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    case,
    create_engine,
    func,
    insert,
    literal,
    literal_column,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlalchemy.orm import DeclarativeBase, relationship, selectinload, sessionmaker

from benchmarks.stacks import HOUR, INPUT_DATA, OUTPUT_DATA, NotFoundError, TransitionRefused
from optiinfra_store.enums import (
    AgentStatus,
    AgentType,
    ArtifactType,
    CustomerStatus,
    MetricType,
    StepStatus,
    WorkflowStatus,
    WorkflowType,
)


def _pg_enum(enum: type, name: str) -> Enum:
    return Enum(enum, name=name, values_callable=lambda e: [m.value for m in e], create_type=False)


def _created_at() -> Column:
    return Column(DateTime(timezone=True), nullable=False, server_default=func.now())


def _updated_at() -> Column:
    # the database's trigger sets it on every UPDATE: fetched back, never written
    return Column(DateTime(timezone=True), nullable=False, server_default=func.now(), server_onupdate=FetchedValue())


class Base(DeclarativeBase):
    __mapper_args__ = {"eager_defaults": True}


class Customer(Base):
    __tablename__ = "customers"

    id = Column(PgUUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    name = Column(String(255), nullable=False)
    email = Column(String(320), nullable=False)
    status = Column(_pg_enum(CustomerStatus, "customer_status"), nullable=False, default=CustomerStatus.ACTIVE)
    customer_metadata = Column("metadata", JSONB, nullable=False, default=dict)
    created_at = _created_at()
    updated_at = _updated_at()


class Agent(Base):
    __tablename__ = "agents"

    id = Column(PgUUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    type = Column(_pg_enum(AgentType, "agent_type"), nullable=False)
    name = Column(String(255), nullable=False)
    version = Column(String(50), nullable=False)
    status = Column(_pg_enum(AgentStatus, "agent_status"), nullable=False, default=AgentStatus.REGISTERED)
    endpoint = Column(Text)
    capabilities = Column(ARRAY(Text), nullable=False, default=list)
    last_heartbeat = Column(DateTime(timezone=True))
    agent_metadata = Column("metadata", JSONB, nullable=False, default=dict)
    created_at = _created_at()
    updated_at = _updated_at()


class WorkflowExecution(Base):
    __tablename__ = "workflow_executions"

    id = Column(PgUUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    agent_id = Column(PgUUID(as_uuid=True), ForeignKey("agents.id", ondelete="CASCADE"), nullable=False)
    customer_id = Column(PgUUID(as_uuid=True), ForeignKey("customers.id", ondelete="CASCADE"), nullable=False)
    workflow_type = Column(_pg_enum(WorkflowType, "workflow_type"), nullable=False)
    status = Column(_pg_enum(WorkflowStatus, "workflow_status"), nullable=False, default=WorkflowStatus.PENDING)
    started_at = Column(DateTime(timezone=True))
    completed_at = Column(DateTime(timezone=True))
    input_data = Column(JSONB, nullable=False, default=dict)
    output_data = Column(JSONB, nullable=False, default=dict)
    error_details = Column(JSONB)
    workflow_metadata = Column("metadata", JSONB, nullable=False, default=dict)
    idempotency_key = Column(String(255))
    # incremented by the database's trigger on every UPDATE: fetched back, never written
    version = Column(Integer, nullable=False, server_default=text("1"), server_onupdate=FetchedValue())
    created_at = _created_at()
    updated_at = _updated_at()

    steps = relationship(
        "WorkflowStep", back_populates="execution", cascade="all, delete-orphan", order_by="WorkflowStep.step_order"
    )
    artifacts = relationship(
        "WorkflowArtifact",
        back_populates="execution",
        cascade="all, delete-orphan",
        order_by="(WorkflowArtifact.created_at, WorkflowArtifact.id)",
    )


class WorkflowStep(Base):
    __tablename__ = "workflow_steps"

    id = Column(PgUUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    workflow_execution_id = Column(
        PgUUID(as_uuid=True), ForeignKey("workflow_executions.id", ondelete="CASCADE"), nullable=False
    )
    step_name = Column(String(255), nullable=False)
    step_order = Column(Integer, nullable=False)
    status = Column(_pg_enum(StepStatus, "step_status"), nullable=False, default=StepStatus.PENDING)
    started_at = Column(DateTime(timezone=True))
    completed_at = Column(DateTime(timezone=True))
    input_data = Column(JSONB, nullable=False, default=dict)
    output_data = Column(JSONB, nullable=False, default=dict)
    error_details = Column(JSONB)
    retry_count = Column(Integer, nullable=False, default=0)
    max_retries = Column(Integer, nullable=False, default=3)
    step_metadata = Column("metadata", JSONB, nullable=False, default=dict)
    created_at = _created_at()
    updated_at = _updated_at()

    execution = relationship("WorkflowExecution", back_populates="steps")


class WorkflowArtifact(Base):
    __tablename__ = "workflow_artifacts"

    id = Column(PgUUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    workflow_execution_id = Column(
        PgUUID(as_uuid=True), ForeignKey("workflow_executions.id", ondelete="CASCADE"), nullable=False
    )
    workflow_step_id = Column(PgUUID(as_uuid=True), ForeignKey("workflow_steps.id", ondelete="CASCADE"))
    artifact_type = Column(_pg_enum(ArtifactType, "artifact_type"), nullable=False)
    artifact_name = Column(String(255), nullable=False)
    artifact_path = Column(Text, nullable=False)
    artifact_size_bytes = Column(BigInteger)
    content_type = Column(String(100))
    artifact_metadata = Column("metadata", JSONB, nullable=False, default=dict)
    created_at = _created_at()
    updated_at = _updated_at()

    execution = relationship("WorkflowExecution", back_populates="artifacts")


class AgentMetric(Base):
    __tablename__ = "agent_metrics"

    id = Column(PgUUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    agent_id = Column(PgUUID(as_uuid=True), ForeignKey("agents.id", ondelete="CASCADE"), nullable=False)
    metric_name = Column(String(255), nullable=False)
    metric_type = Column(_pg_enum(MetricType, "metric_type"), nullable=False, default=MetricType.GAUGE)
    metric_value = Column(Float, nullable=False)
    metric_unit = Column(String(50))
    collection_timestamp = Column(DateTime(timezone=True), nullable=False, server_default=func.now())
    metric_metadata = Column("metadata", JSONB, nullable=False, default=dict)
    created_at = _created_at()
    updated_at = _updated_at()


_TERMINAL = [WorkflowStatus.COMPLETED, WorkflowStatus.FAILED, WorkflowStatus.CANCELLED, WorkflowStatus.TIMEOUT]


def _now() -> datetime:
    return datetime.now(UTC)


class OrmStack:
    """The same operations through Session units of work (one session per call, as a service does)."""

    name = "orm"
    is_async = False

    def __init__(self, dsn: str, pool_size: int) -> None:
        url = dsn.replace("postgresql://", "postgresql+psycopg://", 1).replace(
            "postgres://", "postgresql+psycopg://", 1
        )
        self.engine = create_engine(url, pool_size=pool_size, max_overflow=0)
        self.Session = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    async def open(cls, dsn: str, pool_size: int) -> OrmStack:
        return cls(dsn, pool_size)

    async def close(self) -> None:
        self.engine.dispose()

    @staticmethod
    def id_of(row: Any) -> UUID:
        return row.id

    def _add(self, obj: Base) -> Any:
        with self.Session() as session:
            session.add(obj)
            session.commit()
            return obj

    def _transition(self, model: type[Base], id: UUID, allowed: Sequence[Any], change: Callable[[Any], None]) -> Any:
        """Load, check, mutate, commit: the seeds' service pattern."""
        with self.Session() as session:
            obj = session.get(model, id)
            if obj is None:
                raise NotFoundError(id)
            if obj.status not in allowed:
                raise TransitionRefused(id, obj.status)
            change(obj)
            session.commit()
            return obj

    # -- point operations --------------------------------------------------------------------------

    def create_execution(self, agent_id: UUID, customer_id: UUID) -> WorkflowExecution:
        return self._add(
            WorkflowExecution(
                agent_id=agent_id,
                customer_id=customer_id,
                workflow_type=WorkflowType.COST_ANALYSIS,
                input_data=INPUT_DATA,
            )
        )

    def get_execution(self, id: UUID) -> WorkflowExecution:
        with self.Session() as session:
            execution = session.get(WorkflowExecution, id)
            if execution is None:
                raise NotFoundError(id)
            return execution

    def get_detail(self, id: UUID) -> WorkflowExecution:
        with self.Session() as session:
            execution = session.get(
                WorkflowExecution,
                id,
                options=[
                    selectinload(WorkflowExecution.steps),
                    selectinload(WorkflowExecution.artifacts),
                ],
            )
            if execution is None:
                raise NotFoundError(id)
            return execution

    def start_execution(self, id: UUID) -> WorkflowExecution:
        def start(e: WorkflowExecution) -> None:
            e.status = WorkflowStatus.RUNNING
            e.started_at = _now()

        return self._transition(WorkflowExecution, id, [WorkflowStatus.PENDING], start)

    def complete_execution(self, id: UUID) -> WorkflowExecution:
        def complete(e: WorkflowExecution) -> None:
            e.status = WorkflowStatus.COMPLETED
            e.completed_at = max(_now(), e.started_at)
            e.output_data = OUTPUT_DATA

        return self._transition(WorkflowExecution, id, [WorkflowStatus.RUNNING], complete)

    def start_complete(self, id: UUID) -> WorkflowExecution:
        self.start_execution(id)
        return self.complete_execution(id)

    def step_retry(self, id: UUID) -> WorkflowStep:
        with self.Session() as session:
            step = session.get(WorkflowStep, id)
            if step is None:
                raise NotFoundError(id)
            if step.status not in (StepStatus.FAILED, StepStatus.RUNNING) or step.retry_count >= step.max_retries:
                raise TransitionRefused(id, step.status, step.retry_count, step.max_retries)
            step.status = StepStatus.RETRYING
            step.retry_count += 1
            step.completed_at = None
            session.commit()
            return step

    def create_step(self, execution_id: UUID, order: int) -> WorkflowStep:
        return self._add(
            WorkflowStep(
                workflow_execution_id=execution_id,
                step_name=f"step_{order}",
                step_order=order,
                input_data={"order": order},
            )
        )

    def start_step(self, id: UUID) -> WorkflowStep:
        def start(s: WorkflowStep) -> None:
            s.status = StepStatus.RUNNING
            s.started_at = s.started_at or _now()
            s.completed_at = None

        return self._transition(WorkflowStep, id, [StepStatus.PENDING, StepStatus.RETRYING], start)

    def complete_step(self, id: UUID) -> WorkflowStep:
        def complete(s: WorkflowStep) -> None:
            s.status = StepStatus.COMPLETED
            s.completed_at = max(_now(), s.started_at)
            s.output_data = {"ok": True}

        return self._transition(WorkflowStep, id, [StepStatus.RUNNING], complete)

    def create_artifact(self, execution_id: UUID, step_id: UUID) -> WorkflowArtifact:
        return self._add(
            WorkflowArtifact(
                workflow_execution_id=execution_id,
                workflow_step_id=step_id,
                artifact_type=ArtifactType.REPORT,
                artifact_name="GPU report",
                artifact_path="s3://reports/gpu.pdf",
                artifact_size_bytes=2_458_624,
            )
        )

    # -- queries -----------------------------------------------------------------------------------

    def list_page(self, customer_id: UUID) -> list[WorkflowExecution]:
        E = WorkflowExecution
        stmt = (
            select(E)
            .where(E.customer_id == customer_id, E.status.in_([WorkflowStatus.COMPLETED]))
            .order_by(E.created_at.desc(), E.id.desc())
            .limit(51)
        )
        with self.Session() as session:
            return list(session.scalars(stmt).all()[:50])

    def statistics(self, customer_id: UUID, since: datetime) -> dict[Any, dict[str, Any]]:
        """The store's figures (counts per status, success rate, avg/p50/p95/max duration), overall
        and per workflow type, as one GROUP BY GROUPING SETS query."""
        E = WorkflowExecution
        duration = case((E.status.in_(_TERMINAL), func.extract("epoch", E.completed_at - E.started_at)), else_=None)
        stmt = (
            select(
                E.workflow_type,
                func.grouping(E.workflow_type).label("is_total"),
                func.count().label("total"),
                *[func.count().filter(E.status == status).label(status.value) for status in WorkflowStatus],
                func.avg(duration).label("avg"),
                func.percentile_cont(0.5).within_group(duration).label("p50"),
                func.percentile_cont(0.95).within_group(duration).label("p95"),
                func.max(duration).label("max"),
            )
            .where(E.customer_id == customer_id, E.created_at >= since, E.created_at < func.now())
            .group_by(func.grouping_sets(tuple_(E.workflow_type), tuple_()))
            .order_by(literal_column("is_total").desc(), E.workflow_type)
        )
        with self.Session() as session:
            rows = session.execute(stmt).all()
        result: dict[Any, dict[str, Any]] = {}
        for row in rows:
            ended = sum(getattr(row, s.value) for s in _TERMINAL)
            figures = row._asdict()
            figures["success_rate"] = row.completed / ended if ended else None
            result["total" if row.is_total else row.workflow_type] = figures
        return result

    def record_many(self, points: Sequence[dict[str, Any]]) -> int:
        """The ORM's bulk insert: session.execute(insert(Model), list_of_dicts)."""
        with self.Session() as session:
            session.execute(insert(AgentMetric), points)
            session.commit()
        return len(points)

    def metric_aggregate(self, agent_id: UUID, name: str, start: datetime, end: datetime) -> list[Any]:
        M = AgentMetric
        bucket = func.date_bin(literal(HOUR), M.collection_timestamp, literal(start)).label("bucket_start")
        stmt = (
            select(
                bucket,
                func.count().label("count"),
                func.avg(M.metric_value).label("avg"),
                func.min(M.metric_value).label("min"),
                func.max(M.metric_value).label("max"),
                func.percentile_cont(0.95).within_group(M.metric_value).label("p95"),
            )
            .where(
                M.agent_id == agent_id,
                M.metric_name == name,
                M.collection_timestamp >= start,
                M.collection_timestamp <= end,
            )
            .group_by(text("1"))
            .order_by(text("1"))
        )
        with self.Session() as session:
            return session.execute(stmt).all()
