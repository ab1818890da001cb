"""The service's routes, one router per area."""

from __future__ import annotations

from fastapi import APIRouter

from optiinfra_store.api.routes import analytics, events, executions, operations, session

ROUTERS: tuple[APIRouter, ...] = (
    operations.router,
    session.router,
    executions.router,
    analytics.router,
    events.router,
)
