"""Server-Sent Events: the frames of a workflow-events subscription, the ids that resume it, and
the response that always ends it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from optiinfra_store.api.limits import retrieve
from optiinfra_store.api.problems import Problem
from optiinfra_store.errors import InvalidArgument, StoreError
from optiinfra_store.workflow_events import WorkflowEvents, parse_positions

_log = logging.getLogger("optiinfra_store.api")

MEDIA_TYPE = "text/event-stream"
# an event's id, `<transition id>@<position>`, or a bare transition id; the position is one
# server's (`<horizon>:<ids>`) or, on a Citus cluster, one per node (`<group>.<horizon>:<ids>;...`)
_POSITION = r"[0-9]{1,19}:([0-9]{1,19}(-[0-9]{1,19})?(,[0-9]{1,19}(-[0-9]{1,19})?)*)?"
EVENT_ID = rf"^[0-9]{{1,19}}(@({_POSITION}|[0-9]{{1,10}}[.]{_POSITION}(;[0-9]{{1,10}}[.]{_POSITION})*))?$"
# one frame, for the OpenAPI document
TRANSITION_EVENT = {
    "type": "object",
    "properties": {
        "event": {"const": "transition"},
        "id": {"type": "string", "pattern": EVENT_ID},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"$ref": "#/components/schemas/WorkflowTransition"},
        },
        "retry": {"type": "integer", "minimum": 0},
    },
}


def resume_from(last_event_id: str | None) -> tuple[int | None, str | None]:
    """(after, position) from a Last-Event-ID of the form EVENT_ID; 404 for one no event of this
    service can carry (a number beyond int8, a range reversed or too long): like one too far back,
    the client starts without it."""
    if last_event_id is None:
        return None, None
    transition, at, position = last_event_id.partition("@")
    try:
        if at:
            parse_positions(position)
            return None, position
        if int(transition) < 2**63:
            return int(transition), None
    except InvalidArgument:
        pass
    raise Problem(404, "Not found", "last-event-id: no event of this service has this id; start without it")


class EventStream(StreamingResponse):
    """An event stream that always ends its subscription, even when the client leaves before the
    first byte (the body's generator then never starts, so its own cleanup would not run)."""

    def __init__(self, body: AsyncIterator[bytes], subscription: AsyncExitStack) -> None:
        super().__init__(body, media_type=MEDIA_TYPE, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
        self._subscription = subscription

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._subscription.aclose()


async def frames(stream: WorkflowEvents, token_expires: float, keepalive: float) -> AsyncIterator[bytes]:
    """The stream's frames, a comment after `keepalive` seconds of silence, until it closes or the
    token it was opened with expires (the client then reconnects with a fresh token and its
    Last-Event-ID)."""
    pending: asyncio.Future[Any] | None = None
    try:
        yield b"retry: 1000\n\n"
        while True:
            left = token_expires - time.time()
            if left <= 0:
                return
            if pending is None:
                pending = asyncio.ensure_future(anext(stream))
                pending.add_done_callback(retrieve)  # a read that ended with the stream is not an error
            done, _ = await asyncio.wait({pending}, timeout=min(keepalive, left))
            if not done:
                if time.time() < token_expires:
                    yield b": keepalive\n\n"
                continue
            finished, pending = pending, None
            try:
                transition = finished.result()
            except StopAsyncIteration:  # closed: the service is stopping
                return
            except StoreError as exc:  # the client reconnects with Last-Event-ID and loses nothing
                _log.warning("event stream ended: %s", type(exc).__name__)
                return
            position = stream.position  # None in the rare case it has grown too long: the bare id
            event_id = f"{transition.id}@{position}" if position is not None else str(transition.id)
            yield b"id: %s\nevent: transition\ndata: %s\n\n" % (
                event_id.encode(),
                transition.model_dump_json().encode(),
            )
    finally:
        if pending is not None:
            pending.cancel()
