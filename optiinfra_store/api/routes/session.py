"""Who the caller is, and the embedded demo's ready tokens."""

from __future__ import annotations

from fastapi import APIRouter

from optiinfra_store.api.dependencies import CurrentPrincipal, CurrentService, CustomerStore
from optiinfra_store.api.models import DemoCustomer, Me
from optiinfra_store.api.problems import responses
from optiinfra_store.api.routing import NotStoredRoute
from optiinfra_store.errors import NotFound

router = APIRouter(tags=["session"], route_class=NotStoredRoute)


@router.get("/api/me", responses=responses(401, 403, 503))
async def me(caller: CurrentPrincipal, store: CustomerStore) -> Me:
    """Who the token speaks for."""
    try:
        name: str | None = (await store.customers.get(caller.customer_id)).name
    except NotFound:
        name = None
    return Me(sub=caller.subject, customer_id=caller.customer_id, customer_name=name, scopes=sorted(caller.scopes))


@router.get("/api/demo/customers")
async def demo_customers(current: CurrentService) -> list[DemoCustomer]:
    """Ready tokens for the seeded customers when the service runs the embedded demo; otherwise
    none (an empty list, not an error: the page asks on every load)."""
    return list(current.demo_customers)
