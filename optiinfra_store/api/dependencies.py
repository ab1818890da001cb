"""What a route is handed, typed: the service, the caller (its token verified, 401 and 403
otherwise) and the store confined to the caller's customer.

Each dependency FastAPI solves costs every request some tens of microseconds, as much as the rest
of the framework's work on the cheapest routes: so `CustomerStore` verifies the token itself
rather than depending on `CurrentPrincipal`, and neither depends on `CurrentService` (a route
that takes both the principal and the store has the token checked twice: the second time is the
verifier's cache). Every one is `async`: FastAPI runs a plain function in a thread.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from optiinfra_store.api.auth import READ_SCOPE, Principal
from optiinfra_store.api.service import Service
from optiinfra_store.store import Store

# in the OpenAPI document only: the verifier reads the header itself, to say what is wrong with it
BEARER = HTTPBearer(
    bearerFormat="JWT",
    description=f"a JWT with exp, sub, customer_id and scope (reads need {READ_SCOPE})",
    auto_error=False,
)
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]


def service_of(request: Request) -> Service:
    """The Service of the request's app (create_app puts it on the app's state)."""
    found: Service = request.app.state.service
    return found


async def service(request: Request) -> Service:
    return service_of(request)


CurrentService = Annotated[Service, Depends(service)]


async def principal(request: Request, _: Bearer) -> Principal:
    """The caller, as its token says; it needs the read scope."""
    return _caller(request)


CurrentPrincipal = Annotated[Principal, Depends(principal)]


async def customer_store(request: Request, _: Bearer) -> Store:
    """The store confined to the caller's customer: the database decides what the caller sees.
    Made for each request (a few microseconds)."""
    return service_of(request).store.for_customer(_caller(request).customer_id)


CustomerStore = Annotated[Store, Depends(customer_store)]


def _caller(request: Request) -> Principal:
    caller = service_of(request).verifier.verify(request.headers.get("authorization"))
    request.state.customer_id = str(caller.customer_id)  # for the request log, 403 included
    caller.require(READ_SCOPE)
    return caller
