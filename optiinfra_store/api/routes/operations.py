"""Probes for whoever runs the service: is the process up, can it answer."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response

from optiinfra_store.api.dependencies import CurrentService
from optiinfra_store.api.models import Health
from optiinfra_store.api.problems import RETRY_AFTER_SECONDS
from optiinfra_store.api.routing import NotStoredRoute
from optiinfra_store.errors import AccessDenied, StoreTimeout, StoreUnavailable

_log = logging.getLogger("optiinfra_store.api")

router = APIRouter(tags=["operations"], route_class=NotStoredRoute)


# the defaults left out: the probe's answer is {"status":"ok"}, nothing more
@router.get("/healthz", response_model_exclude_defaults=True)
async def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


_NOT_READY = {
    "model": Health,
    "description": "not ready: the database cannot be reached (Retry-After), or its schema is not current",
    "headers": {
        "Retry-After": {
            "description": "seconds to wait, while the database cannot be reached",
            "required": False,
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        }
    },
}


@router.get("/readyz", responses={503: _NOT_READY})
async def readyz(current: CurrentService, response: Response) -> Health:
    """The database answers and its schema is current (503 otherwise: with Retry-After while no
    server can be reached, no primary among those a multi-host DSN lists included); `events` says
    whether live events arrive at once or, while the hub reconnects, by polling."""
    events = None if current.hub is None else "listening" if current.hub.listening else "reconnecting"
    try:
        pending = await current.store.pending_migrations()
    except (StoreUnavailable, StoreTimeout) as exc:
        _log.warning("not ready: %s", type(exc).__name__)
        response.status_code = 503
        response.headers["Retry-After"] = RETRY_AFTER_SECONDS
        return Health(status="database unavailable", events=events)
    except AccessDenied:  # before 0015 the application role may not read the list of migrations
        response.status_code = 503
        return Health(status="schema not current", events=events)
    if pending:
        response.status_code = 503
        return Health(status="schema not current", pending_migrations=pending, events=events)
    return Health(status="ready", events=events)
