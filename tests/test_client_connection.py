"""How the API client sets up and closes its connection (``casereport.api.client``).

Found unpinned by mutation testing (docs/mutation.md): the exact bytes sent, httpx's own
timeouts left off (the client bounds each attempt as a whole), closing, and the cached
failed import of a missing ``sniffio``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import sys
from collections.abc import Callable, Iterator
from importlib.machinery import ModuleSpec

import httpx
import pytest
from tests.loop_servers import loop_servers
from tests.test_client import (
    OK,
    OK_BYTES,
    OK_RESULT,
    REQUEST,
    call,
    distinct_requests,
    make_settings,
    respond,
)

from casereport.api import client as client_module
from casereport.api.client import CasesClient
from casereport.api.messages import AggregateResult
from casereport.errors import ApiError


def test_the_body_is_compact_json() -> None:
    [request] = call(respond(200, OK)).requests
    assert request.content == (
        b'{"data":{"type":"aggregate","attributes":{"query_filter":'
        b'"status:open service:case-api","group_by":{"groups":["status"],"limit":14}}}}'
    )


def test_httpx_puts_no_timeout_of_its_own_on_a_request() -> None:
    # httpx's timeouts bound each read, so a dripping server would never trip them, and a
    # slow but steady answer would trip its 5 s default: the client bounds the attempt.
    [request] = call(respond(200, OK)).requests
    assert request.extensions["timeout"] == {
        "connect": None,
        "read": None,
        "write": None,
        "pool": None,
    }


class _ClosingTransport(httpx.MockTransport):
    def __init__(self) -> None:
        super().__init__(respond(200, OK))
        self.closed = 0

    async def aclose(self) -> None:
        self.closed += 1


def test_leaving_the_client_closes_its_connections() -> None:
    transport = _ClosingTransport()

    async def go() -> None:
        async with CasesClient(make_settings(), transport=transport) as client:
            assert await client.aggregate(REQUEST) == OK_RESULT
            assert transport.closed == 0
        assert transport.closed == 1

    asyncio.run(go())


def _sniffio(monkeypatch: pytest.MonkeyPatch, *, installed: bool, imported: object) -> None:
    """Make sniffio look installed or not, and imported (as ``imported``) or not (None)."""
    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> ModuleSpec | None:
        if name == "sniffio":
            return ModuleSpec(name, None) if installed else None
        return real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    # Set first, so that the test's end puts back whatever was there before.
    monkeypatch.setitem(sys.modules, "sniffio", imported)
    if imported is None:
        monkeypatch.delitem(sys.modules, "sniffio")


def test_a_missing_sniffio_is_remembered_as_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    _sniffio(monkeypatch, installed=False, imported=None)
    client_module._cache_missing_sniffio()
    assert "sniffio" in sys.modules and sys.modules["sniffio"] is None
    with pytest.raises(ImportError):
        import sniffio  # noqa: F401


def test_an_installed_sniffio_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    _sniffio(monkeypatch, installed=True, imported=None)
    client_module._cache_missing_sniffio()
    assert "sniffio" not in sys.modules  # nothing recorded: its import still works


def test_an_imported_sniffio_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = object()
    _sniffio(monkeypatch, installed=False, imported=loaded)
    client_module._cache_missing_sniffio()
    assert sys.modules["sniffio"] is loaded


class _KeepAliveServer:
    """A loopback HTTP/1.1 server that keeps connections open and answers OK.

    The first request is answered at once (the client's probe); after it, requests are
    held in rounds of ``hold`` until the whole round has arrived, so a round shows how
    many connections the client opens side by side (a round that never fills is let go
    after ``patience`` seconds rather than hang).
    """

    def __init__(self, hold: int, patience: float = 30.0) -> None:
        self.hold = hold
        self.patience = patience
        self.connections = 0
        self.open = 0
        self.most_open = 0
        self.arrived = 0
        self.let_go = 0  # rounds that never filled
        self.rounds: dict[int, asyncio.Event] = {}
        self.url = ""

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?i)content-length: *(\d+)", head)
                await reader.readexactly(int(length.group(1)) if length else 0)
                self.arrived += 1
                if self.arrived > 1:
                    turn = (self.arrived - 2) // self.hold
                    released = self.rounds.setdefault(turn, asyncio.Event())
                    if (self.arrived - 1) % self.hold == 0:
                        released.set()
                    try:
                        await asyncio.wait_for(released.wait(), self.patience)
                    except TimeoutError:
                        self.let_go += 1
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(OK_BYTES)}\r\n\r\n".encode()
                    + OK_BYTES
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open -= 1
            writer.close()


@pytest.fixture
def keep_alive_server() -> Iterator[Callable[[int], _KeepAliveServer]]:
    """Factory of keep-alive servers on 127.0.0.1, run in a background loop, closed after."""
    with loop_servers("keep-alive-server") as serve:

        def start(hold: int) -> _KeepAliveServer:
            state = _KeepAliveServer(hold)
            state.url = serve(state.serve)
            return state

        yield start


def test_the_client_opens_as_many_connections_as_its_parallelism(
    keep_alive_server: Callable[[int], _KeepAliveServer],
) -> None:
    # More than httpx's default pool (100 connections): the client's own parallelism
    # bounds the pool, so every request of a round is on the wire at once.
    parallelism = 101
    server = keep_alive_server(parallelism)

    async def go() -> list[AggregateResult | ApiError]:
        settings = make_settings(
            base_url=server.url, site=server.url, parallelism=parallelism, timeout=30.0
        )
        async with CasesClient(settings) as client:
            return await client.aggregate_many(distinct_requests(parallelism + 1))

    assert asyncio.run(go()) == [OK_RESULT] * (parallelism + 1)
    assert server.most_open == parallelism
    assert server.let_go == 0
