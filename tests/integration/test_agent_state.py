"""The 23 agent-state scenarios of the specification, ported to the repository API, and the
behaviour our API adds (upserts, typed config values, atomic error counts, bulk metrics by COPY).

ORM relationships (agent.configs, agent.state, ...) become list(agent_id=...) / get_for_agent;
naive datetime.utcnow() becomes datetime.now(UTC).
"""

from __future__ import annotations

import asyncio
import math
import random
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from pydantic import ValidationError

from optiinfra_store.enums import (
    AgentStatus,
    AgentStatusDetail,
    AgentType,
    ConfigType,
    MetricType,
    WorkflowStatus,
    WorkflowType,
)
from optiinfra_store.errors import AlreadyExists, MissingReference, NotFound
from optiinfra_store.records import (
    AgentCapabilityCreate,
    AgentCapabilityUpdate,
    AgentConfigCreate,
    AgentCreate,
    AgentMetricCreate,
    AgentStateCreate,
    AgentStateUpsert,
    WorkflowExecutionCreate,
)


def now() -> datetime:
    return datetime.now(UTC)


# -- fixtures: the specification's sample_* ----------------------------------------------------------


@pytest.fixture
async def config(store, agent):
    return await store.agent_configs.create(
        AgentConfigCreate(
            agent_id=agent.id,
            config_key="test_threshold",
            config_value="100",
            config_type=ConfigType.NUMBER,
            description="Test configuration",
            is_sensitive=False,
        )
    )


@pytest.fixture
async def state(store, agent):
    return await store.agent_states.create(
        AgentStateCreate(
            agent_id=agent.id,
            status=AgentStatusDetail.ACTIVE,
            current_workflow="test_workflow",
            workflow_data={"key": "value"},
            resource_locks=["resource1"],
            error_count=0,
            last_error=None,
            last_heartbeat=now(),
        )
    )


@pytest.fixture
async def capability(store, agent):
    return await store.agent_capabilities.create(
        AgentCapabilityCreate(
            agent_id=agent.id,
            capability_name="test_capability",
            capability_version="1.0.0",
            description="Test capability",
            parameters={"param1": "value1"},
            is_enabled=True,
        )
    )


@pytest.fixture
async def metric(store, agent):
    return await store.agent_metrics.create(
        AgentMetricCreate(
            agent_id=agent.id,
            metric_name="test_metric",
            metric_value=100.0,
            metric_unit="count",
            collection_timestamp=now(),
            metadata={"source": "test"},
        )
    )


async def new_agent(store, name: str, type: AgentType = AgentType.COST):
    return await store.agents.create(
        AgentCreate(
            type=type,
            name=name,
            version="1.0.0",
            status=AgentStatus.ACTIVE,
            endpoint="http://test:8000",
            capabilities=["test"],
            last_heartbeat=now(),
        )
    )


# -- TestAgentConfig ---------------------------------------------------------------------------------


async def test_agent_config__create(store, agent):
    """test_create_agent_config"""
    config = await store.agent_configs.create(
        AgentConfigCreate(
            agent_id=agent.id,
            config_key="max_cost_threshold",
            config_value="5000",
            config_type=ConfigType.NUMBER,
            description="Maximum cost threshold",
            is_sensitive=False,
        )
    )
    assert config.id is not None
    assert config.config_key == "max_cost_threshold"
    assert config.config_value == "5000"
    assert config.config_type == "number"
    assert config.is_sensitive is False
    assert config.created_at is not None
    assert config.updated_at is not None
    assert await store.agent_configs.get(config.id) == config


async def test_agent_config__relationship(store, config):
    """test_agent_config_relationship"""
    configs = await store.agent_configs.list(agent_id=config.agent_id)
    assert len(configs) >= 1
    assert config in configs
    assert configs[0].agent_id == config.agent_id


async def test_agent_config__foreign_key(store):
    """test_agent_config_foreign_key"""
    with pytest.raises(MissingReference) as caught:
        await store.agent_configs.create(
            AgentConfigCreate(
                agent_id=uuid4(),
                config_key="test",
                config_value="test",
                config_type=ConfigType.STRING,
                description="Test",
            )
        )
    assert caught.value.constraint == "agent_configs_agent_id_fkey"
    assert await store.agent_configs.list() == []


async def test_agent_config__sensitive_flag(keyed_store, agent):
    """test_agent_config_sensitive_flag"""
    await keyed_store.agent_configs.create(
        AgentConfigCreate(
            agent_id=agent.id,
            config_key="api_key",
            config_value="secret_key_123",
            config_type=ConfigType.STRING,
            description="API Key",
            is_sensitive=True,
        )
    )
    retrieved = await keyed_store.agent_configs.get_by_key(agent.id, "api_key")
    assert retrieved.is_sensitive is True
    assert retrieved.config_value == "secret_key_123"


async def test_agent_config__cascade_delete(store, agent):
    """test_agent_config_cascade_delete"""
    config = await store.agent_configs.create(
        AgentConfigCreate(
            agent_id=agent.id,
            config_key="test_key",
            config_value="test_value",
            config_type=ConfigType.STRING,
            description="Test",
        )
    )
    await store.agents.delete(agent.id)
    with pytest.raises(NotFound):
        await store.agent_configs.get(config.id)


# -- TestAgentState ----------------------------------------------------------------------------------


async def test_agent_state__create(store, agent):
    """test_create_agent_state"""
    heartbeat = now()
    state = await store.agent_states.create(
        AgentStateCreate(
            agent_id=agent.id,
            status=AgentStatusDetail.ACTIVE,
            current_workflow="cost_analysis",
            workflow_data={"step": 1, "progress": 50},
            resource_locks=["gpu_cluster_1", "billing_data"],
            error_count=0,
            last_error=None,
            last_heartbeat=heartbeat,
        )
    )
    assert state.id is not None
    assert state.status == "active"
    assert state.current_workflow == "cost_analysis"
    assert state.workflow_data["step"] == 1
    assert len(state.resource_locks) == 2
    assert "gpu_cluster_1" in state.resource_locks
    assert state.error_count == 0
    assert state.last_heartbeat == heartbeat


async def test_agent_state__relationship(store, state):
    """test_agent_state_relationship"""
    found = await store.agent_states.get_for_agent(state.agent_id)
    assert found is not None
    assert found.id == state.id
    assert found.agent_id == state.agent_id


async def test_agent_state__error_tracking(store, agent):
    """test_agent_state_error_tracking"""
    state = await store.agent_states.create(
        AgentStateCreate(
            agent_id=agent.id,
            status=AgentStatusDetail.ERROR,
            current_workflow="analysis",
            workflow_data={},
            resource_locks=[],
            error_count=3,
            last_error={"timestamp": now().isoformat(), "error": "Connection timeout", "severity": "high"},
            last_heartbeat=now(),
        )
    )
    assert state.status == "error"
    assert state.error_count == 3
    assert state.last_error is not None
    assert "Connection timeout" in state.last_error["error"]


async def test_agent_state__heartbeat_tracking(store, state):
    """test_agent_state_heartbeat_tracking"""
    old_heartbeat = state.last_heartbeat
    await asyncio.sleep(0.1)
    updated = await store.agent_states.heartbeat(state.agent_id)
    assert updated.last_heartbeat > old_heartbeat
    assert (await store.agent_states.get_for_agent(state.agent_id)).last_heartbeat == updated.last_heartbeat


async def test_agent_state__workflow_data(store, agent):
    """test_agent_state_workflow_data"""
    complex_data = {
        "customer_id": "test-123",
        "analysis": {
            "total_cost": 120000,
            "potential_savings": 60000,
            "recommendations": [
                {"type": "rightsizing", "impact": 30000},
                {"type": "spot_instances", "impact": 30000},
            ],
        },
        "metadata": {"started": now().isoformat(), "version": "1.0"},
    }
    state = await store.agent_states.create(
        AgentStateCreate(
            agent_id=agent.id,
            status=AgentStatusDetail.ACTIVE,
            current_workflow="deep_analysis",
            workflow_data=complex_data,
            resource_locks=[],
            error_count=0,
            last_heartbeat=now(),
        )
    )
    retrieved = await store.agent_states.get(state.id)
    assert retrieved.workflow_data["analysis"]["total_cost"] == 120000
    assert len(retrieved.workflow_data["analysis"]["recommendations"]) == 2
    assert retrieved.workflow_data == complex_data


# -- TestAgentCapability -----------------------------------------------------------------------------


async def test_agent_capability__create(store, agent):
    """test_create_agent_capability"""
    capability = await store.agent_capabilities.create(
        AgentCapabilityCreate(
            agent_id=agent.id,
            capability_name="advanced_cost_analysis",
            capability_version="2.1.0",
            description="Advanced cost analysis with ML",
            parameters={
                "model": "cost_predictor_v2",
                "confidence_threshold": 0.85,
                "features": ["gpu_usage", "network", "storage"],
            },
            is_enabled=True,
        )
    )
    assert capability.id is not None
    assert capability.capability_name == "advanced_cost_analysis"
    assert capability.capability_version == "2.1.0"
    assert capability.is_enabled is True
    assert "model" in capability.parameters
    assert len(capability.parameters["features"]) == 3


async def test_agent_capability__relationship(store, capability):
    """test_agent_capability_relationship"""
    capabilities = await store.agent_capabilities.list(agent_id=capability.agent_id)
    assert len(capabilities) >= 1
    assert capability in capabilities


async def test_agent_capability__multiple_versions(store, agent):
    """test_multiple_capability_versions"""
    await store.agent_capabilities.create(
        AgentCapabilityCreate(
            agent_id=agent.id,
            capability_name="cost_optimization",
            capability_version="2.0.0",
            description="Advanced cost optimization",
            parameters={"method": "advanced", "ml_enabled": True},
            is_enabled=True,
        )
    )
    await store.agent_capabilities.create(
        AgentCapabilityCreate(
            agent_id=agent.id,
            capability_name="cost_optimization",
            capability_version="1.0.0",
            description="Basic cost optimization",
            parameters={"method": "basic"},
            is_enabled=False,
        )
    )
    capabilities = await store.agent_capabilities.list(agent_id=agent.id, capability_name="cost_optimization")
    assert len(capabilities) == 2
    versions = [c.capability_version for c in capabilities]
    assert "1.0.0" in versions
    assert "2.0.0" in versions
    assert versions == ["1.0.0", "2.0.0"]  # ordered by name, then version
    enabled = await store.agent_capabilities.list(agent_id=agent.id, is_enabled=True)
    assert [c.capability_version for c in enabled] == ["2.0.0"]
    with pytest.raises(AlreadyExists):  # the same name and version twice
        await store.agent_capabilities.create(
            AgentCapabilityCreate(
                agent_id=agent.id,
                capability_name="cost_optimization",
                capability_version="1.0.0",
            )
        )


async def test_agent_capability__enable_disable(store, capability):
    """test_capability_enable_disable"""
    assert capability.is_enabled is True
    disabled = await store.agent_capabilities.update(capability.id, AgentCapabilityUpdate(is_enabled=False))
    assert disabled.is_enabled is False
    retrieved = await store.agent_capabilities.get(capability.id)
    assert retrieved.is_enabled is False
    assert retrieved.updated_at >= capability.updated_at
    with pytest.raises(NotFound):
        await store.agent_capabilities.update(uuid4(), AgentCapabilityUpdate(is_enabled=True))


async def test_agent_capability__parameters_update(store, capability):
    """test_capability_parameters_update"""
    updated = await store.agent_capabilities.update(
        capability.id, AgentCapabilityUpdate(parameters={"new_param": "value", "threshold": 0.95})
    )
    assert updated.parameters == {"new_param": "value", "threshold": 0.95}
    retrieved = await store.agent_capabilities.get(capability.id)
    assert "new_param" in retrieved.parameters
    assert retrieved.parameters["threshold"] == 0.95
    # the partial update: only what is given changes
    changed = await store.agent_capabilities.update(capability.id, AgentCapabilityUpdate(description=None))
    assert changed.description is None
    assert changed.parameters == retrieved.parameters and changed.is_enabled is True


# -- TestAgentMetric ---------------------------------------------------------------------------------


async def test_agent_metric__create(store, agent):
    """test_create_agent_metric"""
    collected = now()
    metric = await store.agent_metrics.create(
        AgentMetricCreate(
            agent_id=agent.id,
            metric_name="cost_savings_usd",
            metric_value=45000.50,
            metric_unit="usd",
            collection_timestamp=collected,
            metadata={"period": "monthly", "customer_count": 5},
        )
    )
    assert metric.id is not None
    assert metric.metric_name == "cost_savings_usd"
    assert metric.metric_value == 45000.50
    assert metric.metric_unit == "usd"
    assert metric.metric_type == MetricType.GAUGE
    assert metric.collection_timestamp == collected
    assert metric.metadata["period"] == "monthly"


async def test_agent_metric__relationship(store, metric):
    """test_agent_metric_relationship"""
    metrics = await store.agent_metrics.list(agent_id=metric.agent_id)
    assert len(metrics) >= 1
    assert metric in metrics


async def test_agent_metric__time_series(store, agent):
    """test_metric_time_series"""
    base_time = now()
    for hour in reversed(range(5)):  # written out of order: list() sorts by time
        await store.agent_metrics.create(
            AgentMetricCreate(
                agent_id=agent.id,
                metric_name="gpu_utilization",
                metric_value=70.0 + hour * 2,
                metric_unit="percent",
                collection_timestamp=base_time + timedelta(hours=hour),
                metadata={"hour": hour},
            )
        )
    retrieved = await store.agent_metrics.list(
        agent_id=agent.id,
        metric_name="gpu_utilization",
        start=base_time,
        end=base_time + timedelta(hours=5),
    )
    assert len(retrieved) == 5
    assert retrieved[0].metric_value == 70.0
    assert retrieved[4].metric_value == 78.0
    later = await store.agent_metrics.list(agent_id=agent.id, start=base_time + timedelta(hours=3))
    assert [m.metadata["hour"] for m in later] == [3, 4]


async def test_agent_metric__aggregation(store, agent):
    """test_metric_aggregation"""
    for value in [100.0, 200.0, 150.0, 175.0, 225.0]:
        await store.agent_metrics.create(
            AgentMetricCreate(
                agent_id=agent.id,
                metric_name="request_count",
                metric_value=value,
                metric_unit="count",
                collection_timestamp=now(),
                metadata={},
            )
        )
    summary = await store.agent_metrics.aggregate(agent.id, "request_count")
    assert summary.avg == 170.0  # (100+200+150+175+225)/5
    assert (summary.count, summary.min, summary.max) == (5, 100.0, 225.0)
    empty = await store.agent_metrics.aggregate(agent.id, "no_such_metric")
    assert (empty.count, empty.avg, empty.min, empty.max) == (0, None, None, None)


async def test_agent_metric__metadata_search(store, agent):
    """test_metric_metadata_search"""
    await store.agent_metrics.create(
        AgentMetricCreate(
            agent_id=agent.id,
            metric_name="latency",
            metric_value=100.0,
            metric_unit="ms",
            collection_timestamp=now(),
            metadata={"region": "us-west", "env": "prod"},
        )
    )
    await store.agent_metrics.create(
        AgentMetricCreate(
            agent_id=agent.id,
            metric_name="latency",
            metric_value=150.0,
            metric_unit="ms",
            collection_timestamp=now(),
            metadata={"region": "us-east", "env": "prod"},
        )
    )
    result = await store.agent_metrics.search({"region": "us-west"}, agent_id=agent.id)
    assert len(result) == 1
    assert result[0].metric_value == 100.0


# -- TestAgentStateIntegration -----------------------------------------------------------------------


async def test_integration__agent_with_all_state_tables(store, agent):
    """test_complete_agent_with_all_state_tables"""
    await store.agent_configs.create(
        AgentConfigCreate(
            agent_id=agent.id,
            config_key="threshold",
            config_value="100",
            config_type=ConfigType.NUMBER,
            description="Test threshold",
        )
    )
    await store.agent_states.create(
        AgentStateCreate(
            agent_id=agent.id,
            status=AgentStatusDetail.ACTIVE,
            current_workflow="test",
            workflow_data={},
            resource_locks=[],
            error_count=0,
            last_heartbeat=now(),
        )
    )
    await store.agent_capabilities.create(
        AgentCapabilityCreate(
            agent_id=agent.id,
            capability_name="test_cap",
            capability_version="1.0.0",
            description="Test",
            parameters={},
            is_enabled=True,
        )
    )
    await store.agent_metrics.create(
        AgentMetricCreate(
            agent_id=agent.id,
            metric_name="test_metric",
            metric_value=100.0,
            metric_unit="count",
            collection_timestamp=now(),
            metadata={},
        )
    )
    assert len(await store.agent_configs.list(agent_id=agent.id)) >= 1
    assert await store.agent_states.get_for_agent(agent.id) is not None
    assert len(await store.agent_capabilities.list(agent_id=agent.id)) >= 1
    assert len(await store.agent_metrics.list(agent_id=agent.id)) >= 1


async def test_integration__agent_deletion_cascades(store):
    """test_agent_deletion_cascades"""
    agent = await new_agent(store, "Test Agent", AgentType.APPLICATION)
    config = await store.agent_configs.create(
        AgentConfigCreate(
            agent_id=agent.id,
            config_key="test",
            config_value="test",
            config_type=ConfigType.STRING,
            description="Test",
        )
    )
    state = await store.agent_states.create(
        AgentStateCreate(
            agent_id=agent.id,
            status=AgentStatusDetail.ACTIVE,
            current_workflow=None,
            workflow_data={},
            resource_locks=[],
            error_count=0,
            last_heartbeat=now(),
        )
    )
    capability = await store.agent_capabilities.create(
        AgentCapabilityCreate(
            agent_id=agent.id,
            capability_name="test",
            capability_version="1.0.0",
            description="Test",
            parameters={},
            is_enabled=True,
        )
    )
    metric = await store.agent_metrics.create(
        AgentMetricCreate(
            agent_id=agent.id,
            metric_name="test",
            metric_value=1.0,
            metric_unit="count",
            collection_timestamp=now(),
            metadata={},
        )
    )
    await store.agents.delete(agent.id)
    for repo, id_ in [
        (store.agents, agent.id),
        (store.agent_configs, config.id),
        (store.agent_states, state.id),
        (store.agent_capabilities, capability.id),
        (store.agent_metrics, metric.id),
    ]:
        with pytest.raises(NotFound):
            await repo.get(id_)


async def test_integration__query_agent_with_active_workflow(store):
    """test_query_agent_with_active_workflow"""
    agent1 = await new_agent(store, "Agent 1", AgentType.COST)
    agent2 = await new_agent(store, "Agent 2", AgentType.PERFORMANCE)
    await store.agent_states.create(
        AgentStateCreate(
            agent_id=agent1.id,
            status=AgentStatusDetail.ACTIVE,
            current_workflow="analysis",
            workflow_data={},
            resource_locks=["resource1"],
            error_count=0,
            last_heartbeat=now(),
        )
    )
    await store.agent_states.create(
        AgentStateCreate(
            agent_id=agent2.id,
            status=AgentStatusDetail.IDLE,
            current_workflow=None,
            workflow_data={},
            resource_locks=[],
            error_count=0,
            last_heartbeat=now(),
        )
    )
    active_agents = await store.agents.list_with_active_workflow()
    assert len(active_agents) == 1
    assert active_agents[0].id == agent1.id
    assert [s.agent_id for s in await store.agent_states.list(status="active")] == [agent1.id]


# -- beyond the specification ------------------------------------------------------------------------


async def test_state__upsert_twice_keeps_one_row(store, agent):
    first = await store.agent_states.upsert(AgentStateUpsert(agent_id=agent.id))
    assert first.status == AgentStatusDetail.IDLE and first.error_count == 0
    assert first.last_heartbeat is not None  # the database's now()
    second = await store.agent_states.upsert(
        AgentStateUpsert(
            agent_id=agent.id,
            status=AgentStatusDetail.BUSY,
            current_workflow="scaling",
            resource_locks=["gpu-1"],
            error_count=2,
            last_error={"error": "boom"},
        )
    )
    assert second.id == first.id and second.created_at == first.created_at
    assert (second.status, second.current_workflow, second.resource_locks, second.error_count) == (
        AgentStatusDetail.BUSY,
        "scaling",
        ["gpu-1"],
        2,
    )
    assert second.updated_at >= first.updated_at
    assert await store.agent_states.list() == [second]
    with pytest.raises(AlreadyExists):
        await store.agent_states.create(AgentStateCreate(agent_id=agent.id))


async def test_state__record_error_is_atomic_under_concurrency(store, state):
    results = await asyncio.gather(
        *(store.agent_states.record_error(state.agent_id, {"error": f"failure {i}"}) for i in range(20))
    )
    assert sorted(r.error_count for r in results) == list(range(1, 21))
    final = await store.agent_states.get_for_agent(state.agent_id)
    assert final.error_count == 20
    assert final.last_error == next(r.last_error for r in results if r.error_count == 20)
    with pytest.raises(NotFound):
        await store.agent_states.record_error(uuid4(), {"error": "x"})


async def test_state__missing_and_current_workflow(store, agent, customer, state):
    with pytest.raises(NotFound):
        await store.agent_states.get_for_agent(uuid4())
    with pytest.raises(NotFound):
        await store.agent_states.heartbeat(uuid4())
    with pytest.raises(NotFound, match="workflow execution"):
        await store.agent_states.set_current_workflow(agent.id, uuid4())
    execution = await store.workflow_executions.create(
        WorkflowExecutionCreate(
            agent_id=agent.id,
            customer_id=customer.id,
            workflow_type=WorkflowType.COST_ANALYSIS,
            status=WorkflowStatus.RUNNING,
            started_at=now(),
        )
    )
    pointed = await store.agent_states.set_current_workflow(agent.id, execution.id)
    assert pointed.current_workflow_id == execution.id
    cleared = await store.agent_states.set_current_workflow(agent.id, None)
    assert cleared.current_workflow_id is None


async def test_config__set_and_get_value_typed_round_trips(store, agent):
    configs = store.agent_configs
    cases = [
        ("name", "cost-agent", ConfigType.STRING),
        ("retries", 5, ConfigType.NUMBER),
        ("ratio", 0.25, ConfigType.NUMBER),
        ("big", 1e20, ConfigType.NUMBER),
        ("enabled", True, ConfigType.BOOLEAN),
        ("disabled", False, ConfigType.BOOLEAN),
        ("limits", {"cpu": 2, "tags": ["a", "b"], "nested": {"x": None}}, ConfigType.JSON),
        ("regions", ["us-east-1", "eu-west-1"], ConfigType.JSON),
    ]
    for key, value, kind in cases:
        stored = await configs.set(agent.id, key, value)
        assert stored.config_type == kind
        got = await configs.get_value(agent.id, key)
        assert got == value and type(got) is type(value), key
    assert (await configs.get_by_key(agent.id, "enabled")).config_value == "true"
    # set again: one row, value and type replaced, description kept when not given
    first = await configs.set(agent.id, "threshold", 10, description="alert threshold")
    second = await configs.set(agent.id, "threshold", "strict")
    assert second.id == first.id and second.description == "alert threshold"
    assert await configs.get_value(agent.id, "threshold") == "strict"
    assert [c.config_key for c in await configs.list(agent_id=agent.id)] == sorted(
        [k for k, _, _ in cases] + ["threshold"]
    )
    # explicit types: text is checked against them before any SQL
    assert (
        await configs.get_value(
            agent.id, (await configs.set(agent.id, "port", "8080", config_type="number")).config_key
        )
        == 8080
    )
    with pytest.raises(ValidationError):
        await configs.set(agent.id, "port", "eighty", config_type=ConfigType.NUMBER)
    with pytest.raises(ValidationError):
        await configs.set(agent.id, "flag", "yes", config_type=ConfigType.BOOLEAN)
    with pytest.raises(ValidationError):
        AgentConfigCreate(agent_id=agent.id, config_key="n", config_value="1.2.3", config_type="number")
    with pytest.raises(ValidationError):
        await configs.set(agent.id, "inf", float("inf"))
    assert await configs.get_value(agent.id, "port") == 8080
    with pytest.raises(NotFound):
        await configs.get_value(agent.id, "missing")


async def test_config__sensitive_repr_hides_value(keyed_store, agent):
    store = keyed_store
    secret = await store.agent_configs.set(agent.id, "api_key", "secret_key_123", is_sensitive=True)
    assert "secret_key_123" not in repr(secret)
    assert "secret_key_123" not in str(secret)
    assert "***" in repr(secret)
    assert secret.config_value == "secret_key_123"
    listed = await store.agent_configs.list(agent_id=agent.id)
    assert "secret_key_123" not in repr(listed)
    assert "secret_key_123" not in repr(
        AgentConfigCreate(
            agent_id=agent.id,
            config_key="k",
            config_value="secret_key_123",
            is_sensitive=True,
        )
    )
    # a validation error does not echo a value either
    with pytest.raises(ValidationError) as caught:
        AgentConfigCreate(
            agent_id=agent.id, config_key="k", config_value="hunter2x", config_type="number", is_sensitive=True
        )
    assert "hunter2x" not in str(caught.value)
    plain = await store.agent_configs.set(agent.id, "region", "us-east-1")
    assert "us-east-1" in repr(plain)
    # sensitivity is sticky across set()
    again = await store.agent_configs.set(agent.id, "api_key", "rotated_456")
    assert again.is_sensitive is True and "rotated_456" not in repr(again)


async def test_metrics__record_many_10000(store, agent):
    base = now() - timedelta(days=1)
    rng = random.Random(7)
    values = [round(rng.uniform(0, 1000), 3) for _ in range(10_000)]
    metrics = [
        AgentMetricCreate(
            agent_id=agent.id,
            metric_name="gpu_utilization",
            metric_value=v,
            metric_unit="percent",
            collection_timestamp=base + timedelta(seconds=i),
            metadata={"i": i},
        )
        for i, v in enumerate(values)
    ]
    assert await store.agent_metrics.record_many(metrics) == 10_000
    summary = await store.agent_metrics.aggregate(agent.id, "gpu_utilization")
    assert summary.count == 10_000
    assert math.isclose(summary.avg, sum(values) / len(values), rel_tol=1e-9)
    assert (summary.min, summary.max) == (min(values), max(values))
    window = await store.agent_metrics.aggregate(
        agent.id, "gpu_utilization", start=base, end=base + timedelta(seconds=99)
    )
    assert window.count == 100 and window.max == max(values[:100])
    page = await store.agent_metrics.list(agent_id=agent.id, limit=3)
    assert [m.metadata["i"] for m in page] == [0, 1, 2]
    assert page[0].metric_type == MetricType.GAUGE
    # a missing timestamp is filled client-side; an empty batch writes nothing
    stamped = await store.agent_metrics.record_many(
        [
            AgentMetricCreate(agent_id=agent.id, metric_name="late", metric_value=1, metric_type=MetricType.COUNTER),
        ]
    )
    assert stamped == 1
    (late,) = await store.agent_metrics.list(agent_id=agent.id, metric_name="late")
    assert late.metric_type == MetricType.COUNTER and abs(late.collection_timestamp - now()) < timedelta(minutes=1)
    assert await store.agent_metrics.record_many([]) == 0


async def test_metrics__record_many_bad_row_writes_nothing(store, agent):
    good = [AgentMetricCreate(agent_id=agent.id, metric_name="m", metric_value=float(i)) for i in range(50)]
    bad = AgentMetricCreate(agent_id=uuid4(), metric_name="m", metric_value=1.0)
    with pytest.raises(MissingReference) as caught:
        await store.agent_metrics.record_many([*good[:25], bad, *good[25:]])
    assert caught.value.constraint == "agent_metrics_agent_id_fkey"
    assert await store.agent_metrics.list() == []


async def test_metrics__record_many_invalid_point_after_the_first_chunk_writes_nothing(store, agent):
    # points are validated as the COPY streams them: by point 30,000 the server has long been
    # sent (and has inserted) the first ones, and the whole COPY must still come to nothing
    def points():
        for i in range(40_000):
            value = float("nan") if i == 30_000 else float(i)
            yield {"agent_id": agent.id, "metric_name": "m", "metric_value": value}

    with pytest.raises(ValidationError, match="metric_value"):
        await store.agent_metrics.record_many(points())
    assert await store.agent_metrics.count() == 0

    # an error of the caller's own iterable reaches the caller as it is, and writes nothing
    def broken():
        yield {"agent_id": agent.id, "metric_name": "m", "metric_value": 1.0}
        raise KeyError("the caller's bug")

    with pytest.raises(KeyError, match="the caller's bug"):
        await store.agent_metrics.record_many(broken())
    assert await store.agent_metrics.count() == 0
    # the pool's connection is back and usable; a generator streams the same as a list
    written = await store.agent_metrics.record_many(
        {"agent_id": agent.id, "metric_name": "m", "metric_value": float(i)} for i in range(10)
    )
    assert written == 10 and await store.agent_metrics.count() == 10


async def test_metrics__record_many_invalid_point_leaves_the_transaction_usable(store, agent):
    async with store.transaction() as tx:
        await tx.agent_metrics.create({"agent_id": agent.id, "metric_name": "before", "metric_value": 1.0})
        with pytest.raises(ValidationError):
            await tx.agent_metrics.record_many(
                [
                    *({"agent_id": agent.id, "metric_name": "m", "metric_value": float(i)} for i in range(20_000)),
                    {"agent_id": agent.id, "metric_name": "m", "metric_value": "not a number"},
                ]
            )
        assert (
            await tx.agent_metrics.record_many(
                [
                    {"agent_id": agent.id, "metric_name": "after", "metric_value": 2.0},
                ]
            )
            == 1
        )
    assert sorted(m.metric_name for m in await store.agent_metrics.list()) == ["after", "before"]


async def test_metrics__nan_is_refused_before_sql(store, agent):
    with pytest.raises(ValidationError):
        AgentMetricCreate(agent_id=agent.id, metric_name="m", metric_value=float("nan"))
    with pytest.raises(ValidationError):
        await store.agent_metrics.create({"agent_id": agent.id, "metric_name": "m", "metric_value": math.inf})
    with pytest.raises(ValidationError):
        await store.agent_metrics.record_many(
            [
                AgentMetricCreate(agent_id=agent.id, metric_name="m", metric_value=1.0),
                {"agent_id": agent.id, "metric_name": "m", "metric_value": float("nan")},
            ]
        )
    assert await store.agent_metrics.list() == []


async def test_metrics__search_uses_containment(store, agent):
    other = await new_agent(store, "Other")
    rows = [
        (agent.id, {"region": "us-west", "env": "prod", "tags": ["gpu", "a100"]}),
        (agent.id, {"region": "us-west", "env": "staging"}),
        (agent.id, {"region": "us-east", "env": "prod", "tags": ["cpu"]}),
        (other.id, {"region": "us-west", "env": "prod"}),
    ]
    for i, (agent_id, metadata) in enumerate(rows):
        await store.agent_metrics.create(
            AgentMetricCreate(
                agent_id=agent_id,
                metric_name="latency",
                metric_value=float(i),
                collection_timestamp=now() + timedelta(seconds=i),
                metadata=metadata,
            )
        )
    values = lambda ms: [m.metric_value for m in ms]  # noqa: E731
    assert values(await store.agent_metrics.search({"region": "us-west"})) == [0.0, 1.0, 3.0]
    assert values(await store.agent_metrics.search({"region": "us-west", "env": "prod"}, agent_id=agent.id)) == [0.0]
    assert values(await store.agent_metrics.search({"tags": ["a100"]})) == [0.0]  # array containment
    assert values(await store.agent_metrics.search({"region": "eu"})) == []
    assert len(await store.agent_metrics.search({})) == 4  # the empty document is in every one
    assert values(await store.agent_metrics.search({"region": "us-west"}, limit=1)) == [0.0]


async def test_state__upsert_keeps_error_history_it_was_not_given(store, agent):
    await store.agent_states.upsert(AgentStateUpsert(agent_id=agent.id))
    await store.agent_states.record_error(agent.id, {"error": "timeout"})
    state = await store.agent_states.upsert(AgentStateUpsert(agent_id=agent.id, status="busy"))
    assert state.status == "busy"
    assert state.error_count == 1 and state.last_error == {"error": "timeout"}
    reset = await store.agent_states.upsert(AgentStateUpsert(agent_id=agent.id, error_count=0, last_error=None))
    assert (reset.error_count, reset.last_error, reset.status) == (0, None, "busy")


async def test_config__sensitive_value_masked_in_every_dump(keyed_store, agent):
    config = await keyed_store.agent_configs.set(agent.id, "api_key", "secret_key_123", is_sensitive=True)
    assert "secret_key_123" not in config.model_dump_json()
    assert config.model_dump()["config_value"] == "***"
    assert config.config_value == "secret_key_123"  # code that asks still gets it
    assert config.model_dump(context={"reveal_secrets": True})["config_value"] == "secret_key_123"


async def test_deprecated_aliases__warn_and_still_work(store, agent, capability):
    with pytest.warns(DeprecationWarning, match=r"use update\(id, AgentCapabilityUpdate\(is_enabled=...\)\)"):
        assert (await store.agent_capabilities.set_enabled(capability.id, False)).is_enabled is False
    with pytest.warns(DeprecationWarning, match="parameters="):
        updated = await store.agent_capabilities.update_parameters(capability.id, {"k": 1})
    assert updated.parameters == {"k": 1}
    with pytest.warns(DeprecationWarning, match="use create"):
        metric = await store.agent_metrics.record({"agent_id": agent.id, "metric_name": "m", "metric_value": 1.0})
    assert (await store.agent_metrics.get(metric.id)).metric_value == 1.0


async def test_positional_filters__still_work_for_a_release_with_a_warning(store, agent, capability):
    with pytest.warns(DeprecationWarning, match="pass agent_id by keyword"):
        assert [c.id for c in await store.agent_capabilities.list(agent.id)] == [capability.id]
    with pytest.raises(TypeError, match="by keyword"):
        await store.agent_capabilities.list(agent.id, "name", True, 10, "one too many")


async def test_deprecation_warnings__point_at_the_callers_line(store, agent, capability):
    for call in (
        lambda: store.agent_capabilities.set_enabled(capability.id, True),
        lambda: store.agent_metrics.record({"agent_id": agent.id, "metric_name": "m", "metric_value": 1.0}),
        lambda: store.agent_capabilities.list(agent.id),
    ):
        with pytest.warns(DeprecationWarning) as caught:
            await call()
        assert caught[0].filename == __file__  # shown by Python's default filters in the caller's code


async def test_keyword_filters__one_value_per_filter(store, agent):
    execution_id = uuid4()
    with pytest.raises(TypeError, match="workflow_steps.list"):
        await store.workflow_steps.list(execution_id, "running", status="pending")
