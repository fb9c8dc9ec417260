"""Atomic file writes, and a pause of the garbage collector for bulk object building."""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, TextIO


@contextlib.contextmanager
def _atomic(path: Path) -> Iterator[BinaryIO]:
    """A temporary file beside ``path``; on success fsync it and rename it over ``path``.

    A reader sees the old file or the new one, never a partial one; a killed writer leaves
    only a ``.<name>.*.tmp`` file, which the next apply removes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates 0600; published files must be readable like any other file.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


@contextlib.contextmanager
def atomic_writer(path: Path) -> Iterator[TextIO]:
    """Stream UTF-8 text (``\\n`` line ends) into ``path`` atomically."""
    import io

    with _atomic(path) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="\n")
        try:
            yield text
            text.flush()
        finally:
            text.detach()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with _atomic(path) as handle:
        handle.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


@functools.cache
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many objects at once.

    Loading a large state or rendering a large site allocates hundreds of thousands of
    containers without reference cycles; each burst of allocations would otherwise make
    the collector walk everything alive, for up to half the time, and find nothing. What
    the block built is then frozen (``gc.freeze``): it lives as long as the command, and
    later collections need not walk it again either. Reference counting still frees it.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()
