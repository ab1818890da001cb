from optiinfra_store.enums import WorkflowStatus, WorkflowType
from optiinfra_store.records import WorkflowExecutionCreate, WorkflowStepCreate


async def test_smoke(store, agent, customer):
    e = await store.workflow_executions.create(WorkflowExecutionCreate(
        agent_id=agent.id, customer_id=customer.id, workflow_type=WorkflowType.COST_ANALYSIS))
    assert e.status is WorkflowStatus.PENDING
    steps = await store.workflow_steps.create_many([
        WorkflowStepCreate(workflow_execution_id=e.id, step_name=f"s{i}", step_order=i) for i in (1, 2)])
    assert [s.step_order for s in steps] == [1, 2]
    e = await store.workflow_executions.start(e.id)
    d = await store.workflow_executions.get_detail(e.id)
    assert len(d.steps) == 2 and d.status is WorkflowStatus.RUNNING
    page = await store.workflow_executions.list(customer_id=customer.id, status=["running"])
    assert page.items[0].id == e.id
