"""The 22 workflow-history scenarios of the specification, ported to the repository API.

Where our rules are stricter the test says so (a completed workflow cannot go back to running).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from optiinfra_store.enums import AgentStatus, AgentType, ArtifactType, StepStatus, WorkflowStatus, WorkflowType
from optiinfra_store.errors import InvalidTransition, NotFound
from optiinfra_store.records import (
    AgentCreate,
    CustomerCreate,
    WorkflowArtifactCreate,
    WorkflowExecutionCreate,
    WorkflowStepCreate,
)


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
async def execution(store, agent, customer):
    """A completed cost analysis, as the specification's sample_workflow_execution."""
    return await store.workflow_executions.create(
        WorkflowExecutionCreate(
            agent_id=agent.id,
            customer_id=customer.id,
            workflow_type=WorkflowType.COST_ANALYSIS,
            status=WorkflowStatus.COMPLETED,
            started_at=now() - timedelta(hours=1),
            completed_at=now(),
            input_data={"test": "data"},
            output_data={"result": "success"},
            metadata={"source": "test"},
        )
    )


@pytest.fixture
async def step(store, execution):
    return await store.workflow_steps.create(
        WorkflowStepCreate(
            workflow_execution_id=execution.id,
            step_name="test_step",
            step_order=1,
            status=StepStatus.COMPLETED,
            started_at=now() - timedelta(minutes=30),
            completed_at=now(),
            input_data={"input": "data"},
            output_data={"output": "data"},
        )
    )


@pytest.fixture
async def artifact(store, execution, step):
    return await store.workflow_artifacts.create(
        WorkflowArtifactCreate(
            workflow_execution_id=execution.id,
            workflow_step_id=step.id,
            artifact_type=ArtifactType.REPORT,
            artifact_name="test_report.pdf",
            artifact_path="s3://test/report.pdf",
            artifact_size_bytes=1024,
            content_type="application/pdf",
            metadata={"pages": 10},
        )
    )


# -- TestWorkflowExecution ---------------------------------------------------------------------------


async def test_execution__create(store, agent, customer):
    """test_create_workflow_execution"""
    started = now()
    workflow = await store.workflow_executions.create(
        WorkflowExecutionCreate(
            agent_id=agent.id,
            customer_id=customer.id,
            workflow_type=WorkflowType.COST_ANALYSIS,
            status=WorkflowStatus.PENDING,
            started_at=started,
            input_data={"analysis_type": "full"},
            metadata={"priority": "high"},
        )
    )
    assert workflow.id is not None
    assert workflow.workflow_type is WorkflowType.COST_ANALYSIS
    assert workflow.status is WorkflowStatus.PENDING
    assert workflow.started_at == started
    assert workflow.input_data["analysis_type"] == "full"
    assert workflow.output_data == {}
    assert workflow.created_at is not None and workflow.created_at.tzinfo is not None


async def test_execution__agent_relationship(store, execution):
    """test_workflow_agent_relationship"""
    agent = await store.agents.get(execution.agent_id)
    assert agent.id == execution.agent_id
    page = await store.workflow_executions.list(agent_id=agent.id)
    assert execution.id in [e.id for e in page.items]


async def test_execution__customer_relationship(store, execution):
    """test_workflow_customer_relationship"""
    customer = await store.customers.get(execution.customer_id)
    assert customer.id == execution.customer_id
    page = await store.workflow_executions.list(customer_id=customer.id)
    assert execution.id in [e.id for e in page.items]


async def test_execution__status_transitions(store, execution):
    """test_workflow_status_transitions: the specification moves a completed workflow back to
    running; here that is refused and the row is unchanged."""
    assert execution.status is WorkflowStatus.COMPLETED
    with pytest.raises(InvalidTransition) as info:
        await store.workflow_executions.start(execution.id)
    assert info.value.current_status == WorkflowStatus.COMPLETED
    assert info.value.requested_status == WorkflowStatus.RUNNING
    assert (await store.workflow_executions.get(execution.id)).status is WorkflowStatus.COMPLETED


async def test_execution__error_details(store, agent, customer):
    """test_workflow_error_details"""
    workflow = await store.workflow_executions.create(
        WorkflowExecutionCreate(
            agent_id=agent.id,
            customer_id=customer.id,
            workflow_type=WorkflowType.PERFORMANCE_TUNING,
            status=WorkflowStatus.FAILED,
            started_at=now(),
            completed_at=now(),
            error_details={
                "error_type": "TimeoutError",
                "error_message": "Workflow exceeded 2 hour timeout",
                "stack_trace": "...",
                "failed_at_step": "optimization",
            },
        )
    )
    stored = await store.workflow_executions.get(workflow.id)
    assert stored.error_details is not None
    assert stored.error_details["error_type"] == "TimeoutError"
    assert "failed_at_step" in stored.error_details


async def test_execution__cascade_delete_with_agent(store, execution):
    """test_workflow_cascade_delete"""
    await store.agents.delete(execution.agent_id)
    with pytest.raises(NotFound):
        await store.workflow_executions.get(execution.id)


# -- TestWorkflowStep --------------------------------------------------------------------------------


async def test_step__create(store, execution):
    """test_create_workflow_step"""
    step = await store.workflow_steps.create(
        WorkflowStepCreate(
            workflow_execution_id=execution.id,
            step_name="data_collection",
            step_order=1,
            input_data={"source": "database"},
        )
    )
    assert step.id is not None
    assert step.step_name == "data_collection"
    assert step.step_order == 1
    assert step.status is StepStatus.PENDING
    assert step.retry_count == 0 and step.max_retries == 3
    assert step.started_at is None and step.duration_seconds is None


async def test_step__relationship_ordered(store, execution):
    """test_workflow_steps_relationship: steps come back ordered by step_order."""
    await store.workflow_steps.create_many(
        [
            WorkflowStepCreate(
                workflow_execution_id=execution.id, step_name=f"step_{i}", step_order=i, status=StepStatus.COMPLETED
            )
            for i in (3, 1, 2)
        ]
    )
    detail = await store.workflow_executions.get_detail(execution.id)
    assert [s.step_order for s in detail.steps] == [1, 2, 3]
    assert [s.step_order for s in await store.workflow_steps.list(execution_id=execution.id)] == [1, 2, 3]


async def test_step__retry_logic(store, execution):
    """test_step_retry_logic"""
    step = await store.workflow_steps.create(
        WorkflowStepCreate(
            workflow_execution_id=execution.id,
            step_name="flaky_step",
            step_order=1,
            status=StepStatus.RETRYING,
            retry_count=2,
            max_retries=3,
        )
    )
    assert step.retry_count == 2
    assert step.max_retries == 3
    assert step.status is StepStatus.RETRYING


async def test_step__timing(store, execution):
    """test_step_timing"""
    start = now()
    step = await store.workflow_steps.create(
        WorkflowStepCreate(
            workflow_execution_id=execution.id,
            step_name="timed_step",
            step_order=1,
            status=StepStatus.COMPLETED,
            started_at=start,
            completed_at=start + timedelta(minutes=5),
        )
    )
    assert step.duration_seconds == 300


async def test_step__cascade_delete_with_execution(store, execution, step):
    """test_step_cascade_delete"""
    await store.workflow_executions.delete(execution.id)
    with pytest.raises(NotFound):
        await store.workflow_steps.get(step.id)


# -- TestWorkflowArtifact ----------------------------------------------------------------------------


async def test_artifact__create(store, execution, step):
    """test_create_workflow_artifact"""
    artifact = await store.workflow_artifacts.create(
        WorkflowArtifactCreate(
            workflow_execution_id=execution.id,
            workflow_step_id=step.id,
            artifact_type=ArtifactType.REPORT,
            artifact_name="Analysis Report",
            artifact_path="s3://bucket/report.pdf",
            artifact_size_bytes=2048576,
            content_type="application/pdf",
            metadata={"pages": 15, "charts": 8},
        )
    )
    assert artifact.id is not None
    assert artifact.artifact_type is ArtifactType.REPORT
    assert artifact.artifact_name == "Analysis Report"
    assert artifact.artifact_size_bytes == 2048576
    assert artifact.metadata["pages"] == 15


async def test_artifact__without_step(store, execution):
    """test_artifact_without_step"""
    artifact = await store.workflow_artifacts.create(
        WorkflowArtifactCreate(
            workflow_execution_id=execution.id,
            artifact_type=ArtifactType.CONFIG,
            artifact_name="Workflow Config",
            artifact_path="s3://bucket/config.yaml",
            artifact_size_bytes=1024,
            content_type="application/x-yaml",
        )
    )
    assert artifact.workflow_step_id is None
    assert artifact.workflow_execution_id == execution.id


async def test_artifact__relationships(store, artifact):
    """test_artifact_relationships"""
    by_execution = await store.workflow_artifacts.list(execution_id=artifact.workflow_execution_id)
    by_step = await store.workflow_artifacts.list(step_id=artifact.workflow_step_id)
    assert [a.id for a in by_execution] == [artifact.id]
    assert [a.id for a in by_step] == [artifact.id]
    detail = await store.workflow_executions.get_detail(artifact.workflow_execution_id)
    assert [a.id for a in detail.artifacts] == [artifact.id]


async def test_artifact__multiple_types(store, execution):
    """test_multiple_artifact_types"""
    for kind, name, path, ctype in [
        (ArtifactType.REPORT, "Report", "s3://bucket/report.pdf", "application/pdf"),
        (ArtifactType.CHART, "Chart", "s3://bucket/chart.png", "image/png"),
        (ArtifactType.LOG, "Execution Log", "s3://bucket/execution.log", "text/plain"),
    ]:
        await store.workflow_artifacts.create(
            WorkflowArtifactCreate(
                workflow_execution_id=execution.id,
                artifact_type=kind,
                artifact_name=name,
                artifact_path=path,
                content_type=ctype,
            )
        )
    reports = await store.workflow_artifacts.list(artifact_type=ArtifactType.REPORT)
    assert [a.artifact_name for a in reports] == ["Report"]
    assert len(await store.workflow_artifacts.list(execution_id=execution.id)) == 3


async def test_artifact__cascade_delete_with_execution(store, execution):
    """test_artifact_cascade_delete"""
    artifact = await store.workflow_artifacts.create(
        WorkflowArtifactCreate(
            workflow_execution_id=execution.id,
            artifact_type=ArtifactType.METRICS,
            artifact_name="Metrics",
            artifact_path="s3://bucket/metrics.json",
            content_type="application/json",
        )
    )
    await store.workflow_executions.delete(execution.id)
    with pytest.raises(NotFound):
        await store.workflow_artifacts.get(artifact.id)


# -- TestWorkflowIntegration -------------------------------------------------------------------------


async def test_integration__complete_lifecycle(store, agent, customer):
    """test_complete_workflow_lifecycle, through the guarded transitions."""
    workflow = await store.workflow_executions.create(
        WorkflowExecutionCreate(
            agent_id=agent.id,
            customer_id=customer.id,
            workflow_type=WorkflowType.COST_ANALYSIS,
            input_data={"target": "all_resources"},
        )
    )
    workflow = await store.workflow_executions.start(workflow.id)
    assert workflow.status is WorkflowStatus.RUNNING and workflow.started_at is not None
    steps = await store.workflow_steps.create_many(
        [WorkflowStepCreate(workflow_execution_id=workflow.id, step_name=f"step_{i}", step_order=i) for i in (1, 2, 3)]
    )
    for s in steps:
        await store.workflow_steps.start(s.id)
        await store.workflow_steps.complete(s.id, output_data={"result": f"{s.step_name}_done"})
    await store.workflow_artifacts.create(
        WorkflowArtifactCreate(
            workflow_execution_id=workflow.id,
            workflow_step_id=steps[2].id,
            artifact_type=ArtifactType.REPORT,
            artifact_name="Final Report",
            artifact_path="s3://bucket/report.pdf",
        )
    )
    await store.workflow_executions.complete(workflow.id, output_data={"total_savings": 50000})
    retrieved = await store.workflow_executions.get_detail(workflow.id)
    assert retrieved.status is WorkflowStatus.COMPLETED
    assert len(retrieved.steps) == 3
    assert all(s.status is StepStatus.COMPLETED for s in retrieved.steps)
    assert retrieved.steps[0].output_data == {"result": "step_1_done"}
    assert len(retrieved.artifacts) == 1
    assert retrieved.output_data["total_savings"] == 50000
    assert retrieved.duration_seconds is not None and retrieved.duration_seconds >= 0


async def test_integration__failed_workflow_with_error_details(store, agent, customer):
    """test_failed_workflow_with_error_details"""
    workflow = await store.workflow_executions.create(
        WorkflowExecutionCreate(
            agent_id=agent.id,
            customer_id=customer.id,
            workflow_type=WorkflowType.PERFORMANCE_TUNING,
        )
    )
    await store.workflow_executions.start(workflow.id)
    step = await store.workflow_steps.create(
        WorkflowStepCreate(
            workflow_execution_id=workflow.id,
            step_name="optimization",
            step_order=1,
        )
    )
    await store.workflow_steps.start(step.id)
    step = await store.workflow_steps.fail(
        step.id,
        error_details={
            "error": "Configuration invalid",
            "details": "KV cache size exceeds available memory",
        },
    )
    await store.workflow_executions.fail(
        workflow.id,
        error_details={
            "failed_step": step.step_name,
            "error": step.error_details["error"],
        },
    )
    retrieved = await store.workflow_executions.get_detail(workflow.id)
    assert retrieved.status is WorkflowStatus.FAILED
    assert retrieved.error_details == {"failed_step": "optimization", "error": "Configuration invalid"}
    assert retrieved.steps[0].status is StepStatus.FAILED


async def test_integration__query_active_workflows(store, agent, customer):
    """test_query_active_workflows"""
    for status in (WorkflowStatus.RUNNING, WorkflowStatus.COMPLETED, WorkflowStatus.RUNNING):
        await store.workflow_executions.create(
            WorkflowExecutionCreate(
                agent_id=agent.id,
                customer_id=customer.id,
                workflow_type=WorkflowType.COST_ANALYSIS,
                status=status,
                started_at=now(),
                completed_at=now() if status is WorkflowStatus.COMPLETED else None,
            )
        )
    running = await store.workflow_executions.list(status=WorkflowStatus.RUNNING)
    assert len(running.items) == 2
    assert len(await store.workflow_executions.list_active()) == 2


async def test_integration__workflow_with_retry_step(store, execution):
    """test_workflow_with_retry_step"""
    step = await store.workflow_steps.create(
        WorkflowStepCreate(
            workflow_execution_id=execution.id,
            step_name="flaky_operation",
            step_order=1,
            status=StepStatus.COMPLETED,
            started_at=now() - timedelta(minutes=10),
            completed_at=now(),
            output_data={"attempts": 3},
            retry_count=2,
            max_retries=3,
        )
    )
    assert step.retry_count == 2
    assert step.status is StepStatus.COMPLETED


async def test_integration__query_workflows_by_customer(store, execution, agent):
    """test_query_workflows_by_customer"""
    other = await store.customers.create(CustomerCreate(name="TechStart Inc", email="ops@techstart.example"))
    await store.workflow_executions.create(
        WorkflowExecutionCreate(
            agent_id=agent.id,
            customer_id=other.id,
            workflow_type=WorkflowType.HEALTH_CHECK,
        )
    )
    page = await store.workflow_executions.list(customer_id=execution.customer_id)
    assert [wf.id for wf in page.items] == [execution.id]
    assert all(wf.customer_id == execution.customer_id for wf in page.items)


async def test_integration__cascade_delete_full_workflow(store):
    """test_cascade_delete_full_workflow"""
    agent = await store.agents.create(
        AgentCreate(
            type=AgentType.COST,
            name="Test Agent",
            version="1.0.0",
            status=AgentStatus.ACTIVE,
            endpoint="http://test:8000",
            capabilities=["test"],
            last_heartbeat=now(),
        )
    )
    customer = await store.customers.create(CustomerCreate(name="Test Customer", email="test@test.com"))
    workflow = await store.workflow_executions.create(
        WorkflowExecutionCreate(
            agent_id=agent.id,
            customer_id=customer.id,
            workflow_type=WorkflowType.COST_ANALYSIS,
            status=WorkflowStatus.COMPLETED,
            started_at=now(),
        )
    )
    step = await store.workflow_steps.create(
        WorkflowStepCreate(
            workflow_execution_id=workflow.id,
            step_name="test",
            step_order=1,
            status=StepStatus.COMPLETED,
        )
    )
    artifact = await store.workflow_artifacts.create(
        WorkflowArtifactCreate(
            workflow_execution_id=workflow.id,
            workflow_step_id=step.id,
            artifact_type=ArtifactType.REPORT,
            artifact_name="test",
            artifact_path="s3://test",
        )
    )
    await store.workflow_executions.delete(workflow.id)
    for repo, key in [
        (store.workflow_executions, workflow.id),
        (store.workflow_steps, step.id),
        (store.workflow_artifacts, artifact.id),
    ]:
        with pytest.raises(NotFound):
            await repo.get(key)
