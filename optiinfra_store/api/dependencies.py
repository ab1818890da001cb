"""What a route is handed, typed: the service, the caller (its token verified, 401 and 403
otherwise) and the store confined to the caller's customer. Every one is `async`: FastAPI runs a
plain function in a thread, which costs more than the work itself."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response
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
# every JSON answer of a route, unless the route says otherwise (the analytics' validators)
NOT_STORED = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


async def service(request: Request) -> Service:
    found: Service = request.app.state.service
    return found


CurrentService = Annotated[Service, Depends(service)]


async def principal(
    request: Request, current: CurrentService, _: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]
) -> Principal:
    """The caller, as its token says; it needs the read scope."""
    caller = current.verifier.verify(request.headers.get("authorization"))
    request.state.customer_id = str(caller.customer_id)  # for the request log, 403 included
    caller.require(READ_SCOPE)
    return caller


CurrentPrincipal = Annotated[Principal, Depends(principal)]


async def customer_store(current: CurrentService, caller: CurrentPrincipal) -> Store:
    """The store confined to the caller's customer: the database decides what the caller sees.
    Made for each request (a few microseconds)."""
    return current.store.for_customer(caller.customer_id)


CustomerStore = Annotated[Store, Depends(customer_store)]


async def not_stored(response: Response) -> None:
    """Caches keep no copy of the answer (a router's dependency)."""
    response.headers.update(NOT_STORED)
