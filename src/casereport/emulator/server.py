"""Run the emulator: in the foreground (``casereport emulator serve``) or in a background
thread for the duration of one command (``--emulator``) or one test.

uvicorn serves the ASGI app; it is imported here, not at package import, because it costs
start-up time that most commands do not need.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.request import urlopen

from casereport.emulator.app import EmulatorApp
from casereport.emulator.config import EmulatorConfig
from casereport.emulator.datafiles import export_cases, load_cases
from casereport.emulator.store import CaseStore
from casereport.emulator.synthetic import synthetic_cases
from casereport.errors import EmulatorError

__all__ = [
    "EmulatorConfig",
    "RunningEmulator",
    "build_app",
    "build_store",
    "running_emulator",
    "serve",
]


def build_store(config: EmulatorConfig) -> CaseStore:
    """The cases the emulator serves: a data file, or the deterministic synthetic set."""
    if config.data is not None:
        return load_cases(config.data)
    return synthetic_cases(config.cases, config.seed, config.now)


def build_app(config: EmulatorConfig, store: CaseStore | None = None) -> EmulatorApp:
    """The ASGI app for ``config`` (building the store unless one is given)."""
    return EmulatorApp(store if store is not None else build_store(config), config.settings())


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio sets TCP_NODELAY on accepted sockets only then, and without
    # it a response's header and body writes meet the client's delayed ACK (40 ms each).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        hint = " (is another emulator running? try --port 0 for a free port)"
        raise EmulatorError(f"cannot listen on {host}:{port}: {exc.strerror}{hint}") from None
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def _uvicorn_server(app: EmulatorApp) -> Any:
    import uvicorn

    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        # Keep-alive long enough for a client pausing on a rate-limit window.
        timeout_keep_alive=30,
    )
    return uvicorn.Server(config)


@dataclass
class RunningEmulator:
    """A started emulator: its base URL and its app (for stats and tests)."""

    url: str
    app: EmulatorApp

    def stats(self) -> dict[str, Any]:
        """Request counts, read over HTTP like any client would."""
        with urlopen(f"{self.url}/_emulator/stats", timeout=10) as response:
            stats: dict[str, Any] = json.load(response)
        return stats


@contextlib.contextmanager
def running_emulator(
    config: EmulatorConfig, store: CaseStore | None = None
) -> Iterator[RunningEmulator]:
    """Serve the emulator from a background thread until the block exits."""
    app = build_app(config, store)
    sock = _bind(config.host, config.port)
    host, port = sock.getsockname()[:2]
    server = _uvicorn_server(app)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="casereport-emulator", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise EmulatorError(f"the emulator did not start on {host}:{port}")
        time.sleep(0.005)
    url_host = f"[{host}]" if ":" in host else host
    try:
        yield RunningEmulator(url=f"http://{url_host}:{port}", app=app)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def serve(config: EmulatorConfig, announce: Any = print) -> None:
    """Serve in the foreground until interrupted (Ctrl-C stops it cleanly)."""
    started = time.perf_counter()
    app = build_app(config)
    sock = _bind(config.host, config.port)
    host, port = sock.getsockname()[:2]
    url_host = f"[{host}]" if ":" in host else host
    limit = app.settings
    # The words of `emulator serve --help`: the default limit is not a limit anyone sets.
    rate = f"rate limit {limit.rate_limit:,}/{limit.rate_period} s"
    if config.rate_limit is None:
        rate += " (the default, as good as none)"
    announce(
        f"casereport emulator listening on http://{url_host}:{port} "
        f"({config.describe_data()}, loaded in {time.perf_counter() - started:.2f} s; "
        f"{rate}; Ctrl-C stops)"
    )
    server = _uvicorn_server(app)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


def export_synthetic(
    output: Path | None, *, cases: int, seed: int, ndjson: bool, now: datetime | None = None
) -> None:
    """Write the synthetic set (``GET /api/v2/cases`` shape, or NDJSON) to a file or stdout;
    with ``now``, as it has evolved by then."""
    import sys

    from casereport.fsutil import atomic_writer

    store = build_store(EmulatorConfig(cases=cases, seed=seed, now=now))
    if output is None:
        export_cases(store, sys.stdout, ndjson=ndjson)
        return
    with atomic_writer(output) as handle:
        export_cases(store, handle, ndjson=ndjson)
