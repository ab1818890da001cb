"""uvicorn's httptools protocol with bounded request heads: the head (request line and headers)
must arrive within a time and stay within a size, else 408 or 431 and the connection closes.

uvicorn bounds neither: a client that sends half a head keeps its connection (and a slot of the
server's connection cap) for as long as it likes, and httptools gathers a header of any length
before handing it over.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from optiinfra_store.api.problems import MEDIA_TYPE, document
from optiinfra_store.api.settings import DEFAULTS


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with a deadline and a size cap for each request head."""

    header_timeout: float = DEFAULTS.header_timeout
    max_header_bytes: int = DEFAULTS.max_header_bytes

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._reading_head = True  # what arrives next is (the start of) a request head
        self._head_bytes = 0
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head_timer()  # a connection that sends nothing is a head that never completes

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        # counted before the parser sees it: httptools keeps an unfinished header to itself
        if self._reading_head:
            if self._head_timer is None:  # bytes between requests (blank lines) start the clock too
                self._start_head_timer()
            self._head_bytes += len(data)
            if self._head_bytes > self.max_header_bytes:
                self._refuse(431, "Request header fields too large", self._too_large())
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_timer is None:  # the next request on a kept-alive connection
            self._start_head_timer()

    def on_headers_complete(self) -> None:
        if self._refused:  # the rest of the read that was refused: never answered
            return
        self._stop_head_timer()
        self._reading_head = False
        # exact now: a head that began in the same read as the end of the request before it was
        # not counted as it arrived
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.max_header_bytes:
            self._refuse(431, "Request header fields too large", self._too_large())
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        super().on_message_complete()
        self._reading_head = True
        self._head_bytes = 0

    def _too_large(self) -> str:
        return f"the request line and headers must fit in {self.max_header_bytes} bytes"

    def _start_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        detail = f"the request line and headers must arrive within {self.header_timeout:g} s"
        self._refuse(408, "Request timeout", detail)

    def _refuse(self, status: int, title: str, detail: str) -> None:
        """Answer `status` with a problem document and close the connection; only close it while a
        response is being sent on it (a pipelined head), which an answer would corrupt."""
        self._refused = True
        self._stop_head_timer()
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            body = json.dumps(document(status, title, detail)).encode()
            head = [STATUS_LINE[status]]
            for name, value in self.server_state.default_headers:
                head += [name, b": ", value, b"\r\n"]
            head.append(f"content-type: {MEDIA_TYPE}\r\ncontent-length: {len(body)}\r\n".encode())
            head.append(b"connection: close\r\n\r\n")
            self.transport.write(b"".join(head) + body)
        self.transport.close()


def bounded_protocol(header_timeout: float, max_header_bytes: int) -> type[BoundedHttpToolsProtocol]:
    """The protocol class with these bounds, for uvicorn.Config(http=...)."""

    class Bounded(BoundedHttpToolsProtocol):
        pass

    Bounded.header_timeout, Bounded.max_header_bytes = header_timeout, max_header_bytes
    return Bounded
