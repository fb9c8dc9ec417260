"""How the API client sets up and closes its connection (``casereport.api.client``).

Found unpinned by mutation testing (docs/mutation.md): the exact bytes sent, httpx's own
timeouts left off (the client bounds each attempt as a whole), closing, and the cached
failed import of a missing ``sniffio``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from importlib.machinery import ModuleSpec

import httpx
import pytest
from tests.test_client import OK, OK_RESULT, REQUEST, call, make_settings, respond

from casereport.api import client as client_module
from casereport.api.client import CasesClient


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
