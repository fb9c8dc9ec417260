"""asyncio servers on 127.0.0.1 for tests, run by an event loop in a thread of its own.

``loop_servers`` yields a function that starts one (a connection handler -> its
``http://127.0.0.1:PORT`` URL); every server, the loop and its thread are stopped when the
block is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.contextmanager
def loop_servers(name: str) -> Iterator[Callable[[Handler], str]]:
    """Servers started on demand in a background loop (its thread named ``name``)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name=name, daemon=True)
    thread.start()
    servers: list[asyncio.Server] = []

    def start(handler: Handler) -> str:
        async def open_server() -> asyncio.Server:
            return await asyncio.start_server(handler, "127.0.0.1", 0)

        server = asyncio.run_coroutine_threadsafe(open_server(), loop).result(timeout=5)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    try:
        yield start
    finally:

        async def close_all() -> None:
            for server in servers:
                server.close()
                await server.wait_closed()

        asyncio.run_coroutine_threadsafe(close_all(), loop).result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()
