"""What one client can hold of a real server, over raw sockets: a request head must arrive in time
and within a size, and a token cannot live longer than the service allows."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from urllib.parse import urlsplit

from optiinfra_store.api.settings import Settings
from tests.api.conftest import JWT_SECRET, live_server
from tests.api.test_auth import claims, hs256

HEAD = b"GET /healthz HTTP/1.1\r\nHost: service\r\n"


@contextlib.asynccontextmanager
async def connected(url: str):
    address = urlsplit(url)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One response: status, headers and body (by its content-length)."""
    status_line = await reader.readline()
    headers = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, body


async def until_closed(reader: asyncio.StreamReader, timeout: float) -> bytes:
    """What the server sends until it closes the connection (a reset counts as closed)."""
    received = b""
    with contextlib.suppress(ConnectionError):
        while chunk := await asyncio.wait_for(reader.read(65536), timeout):
            received += chunk
    return received


async def test_serve__a_head_not_complete_within_the_header_timeout_is_408_and_closed(api_store):
    async with live_server(api_store, settings=Settings(header_timeout=0.5)) as (url, _):
        async with connected(url) as (reader, writer):  # half a head, then a byte now and then
            started = time.monotonic()
            closed = asyncio.ensure_future(until_closed(reader, timeout=5))
            writer.write(HEAD)
            while not closed.done() and time.monotonic() - started < 3:
                await asyncio.sleep(0.1)
                writer.write(b"X")
            received = await closed
            assert received.startswith(b"HTTP/1.1 408 "), received
            assert b"application/problem+json" in received and b"connection: close" in received
            assert time.monotonic() - started < 2  # the deadline is not moved by trickled bytes
        async with connected(url) as (reader, _):  # nothing at all
            assert (await until_closed(reader, timeout=5)).startswith(b"HTTP/1.1 408 ")
        async with connected(url) as (reader, writer):  # the second request on a kept-alive connection
            writer.write(HEAD + b"\r\n")
            status, _, _ = await answer(reader)
            assert status == 200
            await asyncio.sleep(1.0)  # longer than the header timeout, shorter than keep-alive's
            writer.write(HEAD)
            assert (await until_closed(reader, timeout=5)).startswith(b"HTTP/1.1 408 ")
        async with connected(url) as (reader, writer):  # blank lines between requests, forever
            writer.write(HEAD + b"\r\n")
            assert (await answer(reader))[0] == 200
            started = time.monotonic()
            closed = asyncio.ensure_future(until_closed(reader, timeout=5))
            while not closed.done() and time.monotonic() - started < 4:
                writer.write(b"\r\n")
                await asyncio.sleep(0.1)
            assert closed.done() and time.monotonic() - started < 2


async def test_serve__a_head_over_the_cap_is_431_and_closed(api_store):
    async with live_server(api_store, settings=Settings(max_header_bytes=4096)) as (url, _):
        async with connected(url) as (reader, writer):
            writer.write(HEAD + b"X-Filler: " + b"a" * 5000 + b"\r\n\r\n")
            status, headers, body = await answer(reader)
            assert status == 431 and headers["content-type"] == "application/problem+json"
            assert json.loads(body)["title"] == "Request header fields too large"
            assert await until_closed(reader, timeout=5) == b""
        async with connected(url) as (reader, writer):  # just under the cap: answered
            writer.write(HEAD + b"X-Filler: " + b"a" * 3900 + b"\r\n\r\n")
            assert (await answer(reader))[0] == 200
        async with connected(url) as (reader, writer):
            # a head that starts in the same read as the end of a request body is measured once
            # complete: the POST is answered (405), then the oversized GET after its body is 431
            writer.write(b"POST /healthz HTTP/1.1\r\nHost: service\r\nContent-Length: 5\r\n\r\n")
            assert (await answer(reader))[0] == 405
            writer.write(b"hello" + HEAD + b"X-Filler: " + b"a" * 5000 + b"\r\n\r\n")
            assert (await answer(reader))[0] == 431


async def test_serve__a_megabyte_header_is_refused_at_the_default_cap(api_store):
    async with live_server(api_store) as (url, _):
        async with connected(url) as (reader, writer):
            writer.write(HEAD + b"X-Filler: " + b"a" * 1_000_000 + b"\r\n\r\n")
            with contextlib.suppress(ConnectionError, TimeoutError):
                await asyncio.wait_for(writer.drain(), 5)
            # the server stops reading at the cap and closes: its 431, or a reset when the rest
            # of the megabyte was still unread
            received = await until_closed(reader, timeout=5)
            assert received == b"" or received.startswith(b"HTTP/1.1 431 "), received[:100]


async def test_serve__a_token_with_an_exp_of_ten_to_the_thirty_is_401(api_store):
    token = hs256(claims(exp=10**30))
    async with live_server(api_store) as (url, _), connected(url) as (reader, writer):
        writer.write(b"GET /api/me HTTP/1.1\r\nHost: service\r\nAuthorization: Bearer %s\r\n\r\n" % token.encode())
        status, headers, body = await answer(reader)
        assert status == 401
        assert 'error="invalid_token"' in headers["www-authenticate"] and "lifetime" in json.loads(body)["detail"]
        assert JWT_SECRET.encode() not in body
