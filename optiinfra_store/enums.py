"""The database enum types as StrEnums, value for value (a test compares them with the catalog).

Values read from the database arrive as these enums (a codec is registered on every pooled
connection), and any of them can be passed where the database expects its type.
"""

from __future__ import annotations

import re
from enum import StrEnum


class CustomerStatus(StrEnum):
    TRIAL = "trial"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    CHURNED = "churned"


class AgentType(StrEnum):
    COST = "cost"
    PERFORMANCE = "performance"
    RESOURCE = "resource"
    APPLICATION = "application"


class AgentStatus(StrEnum):
    REGISTERED = "registered"
    ACTIVE = "active"
    INACTIVE = "inactive"
    ERROR = "error"
    MAINTENANCE = "maintenance"


class EventType(StrEnum):
    COST_ANOMALY = "cost_anomaly"
    PERFORMANCE_DEGRADATION = "performance_degradation"
    RESOURCE_SATURATION = "resource_saturation"
    QUALITY_REGRESSION = "quality_regression"
    RECOMMENDATION_CREATED = "recommendation_created"
    OPTIMIZATION_APPLIED = "optimization_applied"
    OPTIMIZATION_ROLLED_BACK = "optimization_rolled_back"
    AGENT_ERROR = "agent_error"


class EventSeverity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class RecommendationType(StrEnum):
    COST_REDUCTION = "cost_reduction"
    PERFORMANCE_TUNING = "performance_tuning"
    RESOURCE_SCALING = "resource_scaling"
    QUALITY_IMPROVEMENT = "quality_improvement"
    CONFIGURATION_CHANGE = "configuration_change"


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"


class OptimizationStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"


class ConfigType(StrEnum):
    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    JSON = "json"


class AgentStatusDetail(StrEnum):
    INITIALIZING = "initializing"
    IDLE = "idle"
    ACTIVE = "active"
    BUSY = "busy"
    ERROR = "error"
    STOPPED = "stopped"


class MetricType(StrEnum):
    GAUGE = "gauge"
    COUNTER = "counter"
    HISTOGRAM = "histogram"
    SUMMARY = "summary"


class WorkflowType(StrEnum):
    COST_ANALYSIS = "cost_analysis"
    PERFORMANCE_TUNING = "performance_tuning"
    RESOURCE_OPTIMIZATION = "resource_optimization"
    QUALITY_CHECK = "quality_check"
    SCALING_DECISION = "scaling_decision"
    CONFIGURATION_UPDATE = "configuration_update"
    HEALTH_CHECK = "health_check"
    ANOMALY_DETECTION = "anomaly_detection"


class WorkflowStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    RETRYING = "retrying"


class ArtifactType(StrEnum):
    REPORT = "report"
    CONFIG = "config"
    LOG = "log"
    RECOMMENDATION = "recommendation"
    CHART = "chart"
    METRICS = "metrics"
    ALERT = "alert"
    DIAGNOSTIC = "diagnostic"


# database type name -> enum class, for every enum above (CustomerStatus -> customer_status); the
# pool registers a codec for each, and a test holds them to the catalog
DATABASE_ENUMS: dict[str, type[StrEnum]] = {
    re.sub(r"(?<!^)(?=[A-Z])", "_", value.__name__).lower(): value
    for value in list(globals().values())
    if isinstance(value, type) and issubclass(value, StrEnum) and value.__module__ == __name__
}
