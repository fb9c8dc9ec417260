"""Hostile HTTP servers on 127.0.0.1 for the client's hardening tests (issue 11).

``hostile_server(behaviour)`` starts a real HTTP/1.1 server on a free loopback port, in an
event loop of its own in a background thread, and always stops it (closing every
connection it holds). A *behaviour* is a coroutine ``(server, request, writer)`` that
answers one request however it likes: dripping a byte at a time, never answering, a gzip
bomb, a body of 120 MB, ``NaN``, 100,000 ``[``, a 429 with a reset of an hour, a rate
limit shared with another client. It returns whether the connection may carry another
request. The server counts connections and requests, and keeps every request it read.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

OK = {
    "data": {
        "id": "agg-result-001",
        "type": "aggregate",
        "attributes": {"total": 100.0, "groups": [{"group": "OPEN", "value": [42.0]}]},
    }
}
OK_BYTES = json.dumps(OK).encode()


@dataclass
class Request:
    """One request as the server read it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    received: float

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def query(self) -> str:
        """The ``query_filter`` of an aggregate request."""
        query: str = self.json()["data"]["attributes"]["query_filter"]
        return query


Behaviour = Callable[["HostileServer", Request, asyncio.StreamWriter], Awaitable[bool]]


@dataclass
class HostileServer:
    """A running server: its URL, and what it has seen."""

    behaviour: Behaviour
    url: str = ""
    connections: int = 0
    requests: list[Request] = field(default_factory=list)
    #: Free for behaviours to keep their own state in.
    memo: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                first, *lines = head.decode("latin-1").split("\r\n")
                method, path, _ = first.split(" ", 2)
                headers = {}
                for line in lines:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                request = Request(method, path, headers, body, time.monotonic())
                with self.lock:
                    self.requests.append(request)
                if not await self.behaviour(self, request, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()


@contextlib.contextmanager
def hostile_server(behaviour: Behaviour) -> Iterator[HostileServer]:
    """Run ``behaviour`` on a free port of 127.0.0.1 for the block; stop it whatever happens."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="hostile-server", daemon=True)
    thread.start()
    state = HostileServer(behaviour)
    handlers: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await state.serve_connection(reader, writer)
        except asyncio.CancelledError:
            pass  # stopped: asyncio would log a cancelled connection as an error
        finally:
            handlers.discard(task)

    async def start() -> asyncio.base_events.Server:
        return await asyncio.start_server(handle, "127.0.0.1", 0)

    server = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=10)
    state.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield state
    finally:

        async def stop() -> None:
            server.close()
            for task in list(handlers):  # silent and dripping answers never end by themselves
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)
            await server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


# -- writing answers ------------------------------------------------------------------------


def head(
    status: int = 200,
    headers: dict[str, str] | None = None,
    *,
    length: int | None = None,
    close: bool = False,
) -> bytes:
    """A status line and headers; no Content-Length when ``length`` is None (then the
    body runs to the end of the connection, which ``close`` must say)."""
    reason = {200: "OK", 429: "Too Many Requests", 503: "Service Unavailable"}.get(status, "X")
    lines = [f"HTTP/1.1 {status} {reason}", "Content-Type: application/json"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def send(
    writer: asyncio.StreamWriter,
    body: bytes,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> bool:
    writer.write(head(status, headers, length=len(body)) + body)
    await writer.drain()
    return True


# -- behaviours -----------------------------------------------------------------------------


def answer(body: bytes = OK_BYTES, status: int = 200, **headers: str) -> Behaviour:
    """Always the same answer (headers given as ``X_RateLimit_Reset="3600"``)."""
    named = {name.replace("_", "-"): value for name, value in headers.items()}

    async def behaviour(server: HostileServer, request: Request, w: asyncio.StreamWriter) -> bool:
        return await send(w, body, status, named)

    return behaviour


def by_query(answers: dict[str, Behaviour], default: Behaviour) -> Behaviour:
    """The behaviour for the request's ``query_filter``, or ``default``."""

    async def behaviour(server: HostileServer, request: Request, w: asyncio.StreamWriter) -> bool:
        return await answers.get(request.query, default)(server, request, w)

    return behaviour


async def silent(server: HostileServer, request: Request, w: asyncio.StreamWriter) -> bool:
    """Read the request, never answer."""
    await asyncio.Event().wait()
    return False


def drip(body: bytes = OK_BYTES, interval: float = 0.05) -> Behaviour:
    """Headers at once, then the body one byte every ``interval`` seconds: each read is
    quick, the whole answer slow."""

    async def behaviour(server: HostileServer, request: Request, w: asyncio.StreamWriter) -> bool:
        w.write(head(200, length=len(body)))
        for index in range(len(body)):
            w.write(body[index : index + 1])
            await w.drain()
            await asyncio.sleep(interval)
        return True

    return behaviour


def endless(size: int, *, length: bool = False, chunk: int = 256 * 1024) -> Behaviour:
    """A 200 whose body of ``size`` bytes (the start of a valid aggregate, then spaces) is
    generated as it is sent; without ``length``, it runs to the end of the connection."""
    start = b'{"data": {"id": "x", "type": "aggregate", "attributes": {"total": 1, "groups": []'
    filler = b" " * chunk

    async def behaviour(server: HostileServer, request: Request, w: asyncio.StreamWriter) -> bool:
        w.write(head(200, length=size if length else None, close=not length) + start)
        sent = len(start)
        while sent < size:
            piece = filler[: size - sent]
            w.write(piece)
            await w.drain()
            sent += len(piece)
        return False

    return behaviour


def gzip_bomb(inflated: int) -> Behaviour:
    """A 200 whose gzip body inflates to ``inflated`` bytes (of ``[``-free spaces)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = b" " * (1024 * 1024)
    parts = [compressor.compress(block) for _ in range(inflated // len(block))]
    bomb = b"".join(parts) + compressor.flush()

    async def behaviour(server: HostileServer, request: Request, w: asyncio.StreamWriter) -> bool:
        return await send(w, bomb, headers={"Content-Encoding": "gzip"})

    return behaviour


def gzipped(body: bytes) -> Behaviour:
    compressed = gzip.compress(body)

    async def behaviour(server: HostileServer, request: Request, w: asyncio.StreamWriter) -> bool:
        return await send(w, compressed, headers={"Content-Encoding": "gzip"})

    return behaviour


def groups_body(count: int) -> bytes:
    groups = [{"group": f"g{i}", "value": [1.0]} for i in range(count)]
    return json.dumps(
        {"data": {"id": "x", "type": "aggregate", "attributes": {"total": 1.0, "groups": groups}}}
    ).encode()


def shared_limit(storm: float, period: float) -> Behaviour:
    """Another client has spent the shared limit for the first ``storm`` seconds (from
    the first request): each request then gets a 429 naming the end of the current
    window of ``period`` seconds (full rate-limit headers, an exact reset); after, 200s."""

    async def behaviour(server: HostileServer, request: Request, w: asyncio.StreamWriter) -> bool:
        now = time.monotonic()
        first = server.memo.setdefault("first", now)
        elapsed = now - first
        reset = period - (elapsed % period)
        headers = {
            "X-RateLimit-Limit": "100",
            "X-RateLimit-Period": f"{period:g}",
            "X-RateLimit-Reset": f"{reset:.3f}",
        }
        if elapsed < storm:
            headers["X-RateLimit-Remaining"] = "0"
            return await send(w, b'{"errors": ["Too Many Requests"]}', 429, headers)
        headers["X-RateLimit-Remaining"] = "99"
        return await send(w, OK_BYTES, 200, headers)

    return behaviour


def throttled_first(reset: str) -> Behaviour:
    """A 429 with ``X-RateLimit-Reset: reset`` (and no other rate-limit header) for the
    first request, 200s after."""

    async def behaviour(server: HostileServer, request: Request, w: asyncio.StreamWriter) -> bool:
        if len(server.requests) == 1:
            return await send(w, b"{}", 429, {"X-RateLimit-Reset": reset})
        return await send(w, OK_BYTES)

    return behaviour


def first_attempt_fails(status: int = 503) -> Behaviour:
    """``status`` for the first attempt of each distinct request body, 200 after."""

    async def behaviour(server: HostileServer, request: Request, w: asyncio.StreamWriter) -> bool:
        seen = server.memo.setdefault("seen", set())
        if request.body not in seen:
            seen.add(request.body)
            return await send(w, b'{"errors": ["Service Unavailable"]}', status)
        return await send(w, OK_BYTES)

    return behaviour
