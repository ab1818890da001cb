"""The caller's workflow transitions as Server-Sent Events, as they are committed."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Annotated, Any

from fastapi import APIRouter, Header
from starlette.responses import Response, StreamingResponse

from optiinfra_store.api.dependencies import CurrentPrincipal, CurrentService, CustomerStore
from optiinfra_store.api.problems import Problem, responses
from optiinfra_store.api.sse import EVENT_ID, MEDIA_TYPE, TRANSITION_EVENT, EventStream, frames, resume_from

router = APIRouter(tags=["workflows"])  # the stream sets its own headers

EVENTS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the stream, one event per transition",
        "content": {MEDIA_TYPE: {"itemSchema": TRANSITION_EVENT}},
    },
    **responses(
        401,
        403,
        (
            404,
            "Last-Event-ID names no event to resume after here (unknown, too far back, or another kind of server's): start without it",
        ),
        422,
        429,
        503,
    ),
}


@router.get("/api/workflows/events", response_class=StreamingResponse, responses=EVENTS_RESPONSES)
async def events(
    current: CurrentService,
    caller: CurrentPrincipal,
    store: CustomerStore,
    last_event_id: Annotated[
        str | None,
        Header(max_length=48_000, pattern=EVENT_ID, description="the id of the last event received: resume after it"),
    ] = None,
) -> Response:
    """Server-Sent Events: the caller's workflow transitions as they are committed. Each event's
    id is `<transition id>@<position>`; sent back as `Last-Event-ID`, the position resumes the
    stream with nothing lost or repeated, even when transactions overlapped."""
    if current.hub is None or current.stopping:
        raise Problem(503, "Service unavailable", "this server is not streaming events; retry shortly", retry_after="5")
    after, position = resume_from(last_event_id)
    # A cluster's position names its nodes (`<group>.`). On a cluster, a bare id (sent when a
    # position grew too long) says nothing of the other nodes, and one server's position is none of
    # its; on one server, a cluster's position is none either (a schema distributed since, or back).
    if store.by_customer:
        foreign = after is not None or (position is not None and "." not in position)
    else:
        foreign = position is not None and "." in position
    if foreign:
        raise Problem(404, "Not found", "last-event-id: cannot resume here from this id; start without it")
    current.caps.open(caller.customer_id)
    stack = AsyncExitStack()
    stack.callback(current.caps.close, caller.customer_id)
    subscription = store.workflow_events(
        after=after, resume=position, hub=current.hub, poll_interval=current.settings.poll_interval
    )
    try:
        stream = await stack.enter_async_context(subscription)  # an unknown Last-Event-ID answers 404 here
    except BaseException:
        await stack.aclose()
        raise
    current.streams.add(stream)
    stack.callback(current.streams.discard, stream)
    return EventStream(frames(stream, caller.expires, current.settings.keepalive_seconds), stack)
