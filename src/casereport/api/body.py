"""Reading a response body within a size cap (private to ``casereport.api.client``).

httpx reads a body whole, and decodes gzip one network chunk at a time with no bound on
the output, so a single 64 KiB chunk of a gzip bomb inflates to some 64 MB before anyone
can count it. :func:`read_body` reads the raw stream chunk by chunk instead, counting the
bytes on the wire and after decompression, and inflates with zlib's ``max_length`` so it
stops at the cap without ever inflating past it. :class:`BodyGate` bounds what concurrent
responses hold together: any number of bodies may grow to a small threshold at once, but
only one past it, so ``parallelism`` hostile responses cost one cap, not ``parallelism``.
"""

from __future__ import annotations

import asyncio
import zlib

import httpx

__all__ = ["BodyGate", "BodyTooLarge", "UnreadableBody", "read_body"]

#: What any number of bodies may hold at once before one alone may grow past it.
GATE_THRESHOLD = 1024 * 1024


class BodyTooLarge(Exception):
    """The body passes the cap; ``stage`` says where it was counted."""

    def __init__(self, limit: int, stage: str) -> None:
        super().__init__(f"the body is larger than {describe_size(limit)} ({stage})")
        self.limit = limit
        self.stage = stage


class UnreadableBody(Exception):
    """The body's ``Content-Encoding`` is unknown, or its compressed data is corrupt."""


def describe_size(size: int) -> str:
    """``16 MiB``, ``512 KiB`` or ``300 bytes``."""
    for unit, scale in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} bytes"


class BodyGate:
    """Any number of bodies may grow to ``threshold`` bytes at once; only one past it."""

    def __init__(self, threshold: int = GATE_THRESHOLD) -> None:
        self.threshold = threshold
        self._lock = asyncio.Lock()

    async def enter(self) -> None:
        await self._lock.acquire()

    def leave(self) -> None:
        self._lock.release()


class _Inflater:
    """Incremental gzip or deflate decoding that never produces more than it is asked."""

    def __init__(self, encoding: str) -> None:
        self._encoding = encoding
        # gzip: a gzip header; deflate: the zlib wrapper, or raw deflate (servers send both).
        self._wbits = zlib.MAX_WBITS | 16 if encoding == "gzip" else zlib.MAX_WBITS
        self._inflater = zlib.decompressobj(self._wbits)
        self._started = False

    def feed(self, data: bytes, max_length: int) -> bytes:
        """Up to ``max_length`` bytes inflated from ``data`` (what is left over stays)."""
        out = b""
        while data and len(out) < max_length:
            try:
                out += self._inflater.decompress(data, max_length - len(out))
            except zlib.error as exc:
                if self._encoding == "deflate" and not self._started:
                    self._wbits = -zlib.MAX_WBITS
                    self._inflater = zlib.decompressobj(self._wbits)
                    self._started = True
                    continue
                raise UnreadableBody(f"corrupt {self._encoding} data ({exc})") from None
            self._started = True
            data = self._inflater.unconsumed_tail
            if self._inflater.eof:
                rest = self._inflater.unused_data
                # A further gzip member goes on; anything else after the end is ignored.
                if self._encoding != "gzip" or not rest.startswith(b"\x1f\x8b"):
                    return out
                self._inflater = zlib.decompressobj(self._wbits)
                data = rest
        return out


async def read_body(
    response: httpx.Response,
    limit: int,
    *,
    truncate: bool = False,
    gate: BodyGate | None = None,
) -> bytearray:
    """The decoded body of a streamed ``response``, at most ``limit`` bytes of it.

    Past ``limit`` (on the wire or decoded), raise :class:`BodyTooLarge`, or with
    ``truncate`` return the first ``limit`` bytes; the rest is never read. Raise
    :class:`UnreadableBody` for an unknown encoding or corrupt compressed data.
    """
    encodings = [
        e.strip().lower()
        for e in response.headers.get("content-encoding", "").split(",")
        if e.strip().lower() not in ("", "identity")
    ]
    if len(encodings) > 1 or (encodings and encodings[0] not in ("gzip", "deflate")):
        raise UnreadableBody(
            f"unsupported Content-Encoding {response.headers['content-encoding']!r}"
        )
    inflater = _Inflater(encodings[0]) if encodings else None
    if response.is_stream_consumed:
        # Built in memory (``httpx.Response(content=...)``, as ``MockTransport`` handlers
        # make): httpx has read and decoded it already, so only its size is left to check.
        content = response.content
        if len(content) > limit and not truncate:
            raise BodyTooLarge(limit, "decompressed" if inflater is not None else "on the wire")
        return bytearray(content[:limit])
    declared = response.headers.get("content-length", "")
    if not truncate and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit, "by its Content-Length")
    body = bytearray()
    wire = 0
    gated = False
    try:
        async for chunk in response.aiter_raw():
            wire += len(chunk)
            if wire > limit:
                if truncate:
                    break
                raise BodyTooLarge(limit, "on the wire")
            room = limit - len(body) + 1  # one byte more than fits shows the cap is passed
            body += inflater.feed(chunk, room) if inflater is not None else chunk[:room]
            if len(body) > limit:
                if truncate:
                    del body[limit:]
                    break
                raise BodyTooLarge(limit, "decompressed" if inflater is not None else "on the wire")
            if gate is not None and not gated and len(body) > gate.threshold:
                await gate.enter()
                gated = True
    finally:
        if gated:
            assert gate is not None
            gate.leave()
    return body
