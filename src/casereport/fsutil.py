"""Atomic file writes, and a pause of the garbage collector for bulk object building."""

from __future__ import annotations

import contextlib
import gc
import os
import random
import re
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, TextIO

from casereport.errors import CaseReportError

# Flags for a file this process creates: a new file (never an existing one, never through
# a symbolic link planted under its name) that no child process inherits.
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# The random part of a temporary name, as ``tempfile`` makes it.
_RANDOM_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"
#: ``.<name>.<8 random characters>.tmp``: what ``_atomic`` names its temporary file.
TEMP_FILE_RE = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp\Z")
#: ``.writing-<8 random characters>.tmp``: the folder ``AtomicFiles`` stages files in.
STAGING_DIR_RE = re.compile(r"\.writing-[a-z0-9_]{8}\.tmp\Z")


def check_writable(path: Path) -> None:
    """Refuse to write at ``path`` when it, or the folder it is in, is a symbolic link
    (or is something else than a regular file or a folder).

    Files are replaced by a rename, which never follows a link, but a link where a page,
    the state or the site was expected means something else is meant to be there: a
    cached or unpacked workspace may hold links to files outside it. Refused rather than
    replaced, so nothing the link points at, and not the link either, changes.
    """
    for target, kind in ((path.parent, "folder"), (path, "file")):
        try:
            mode = os.lstat(target).st_mode
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(mode):
            raise CaseReportError(
                f"{target}: is a symbolic link; casereport never writes through one: "
                f"replace it with a real {kind} (or choose another path)"
            )
        wanted = stat.S_ISDIR if kind == "folder" else stat.S_ISREG
        if not wanted(mode):
            raise CaseReportError(f"{target}: is not a {kind}; move it away or choose another path")


def _create_temporary(directory: Path, name: str) -> tuple[int, str]:
    """A new file ``.<name>.<random>.tmp`` in ``directory``, created by this process."""
    rng = random.SystemRandom()
    for _ in range(100):
        suffix = "".join(rng.choice(_RANDOM_CHARS) for _ in range(8))
        tmp_name = str(directory / f".{name}.{suffix}.tmp")
        try:
            return os.open(tmp_name, _CREATE, 0o666), tmp_name  # the umask applies
        except FileExistsError:
            continue
    raise FileExistsError(f"{directory}: no free temporary name for {name}")


@contextlib.contextmanager
def _atomic(path: Path) -> Iterator[BinaryIO]:
    """A temporary file beside ``path``; on success fsync it and rename it over ``path``.

    A reader sees the old file or the new one, never a partial one; a killed writer leaves
    only a ``.<name>.<random>.tmp`` file, which the next apply removes. ``path`` must not
    be a symbolic link, nor be in one (``check_writable``).
    """
    check_writable(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = _create_temporary(path.parent, path.name)
    try:
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


class AtomicFiles:
    """Many files written into one directory, each atomically and durably, at disk speed.

    ``write`` puts the bytes in a temporary file and returns; a few threads then fsync
    each temporary file and rename it over its name. ``close`` waits for every file,
    then fsyncs the directory (the renames): once it returns, every file is durable
    under its name. A file is renamed only after its fsync, so a reader or a crash sees
    the old file or the new one, never a part of one. Files may reach their names in any
    order.

    Why so: one fsync per file is what makes it durable; one at a time, the caller
    waits for the disk at every file (writing 2,002 pages took 1.6-2.3 s so, 1.1-1.3 s
    without fsync). Here the disk flushes while the caller renders the next page, and
    concurrent fsyncs share the file system's journal commits. ``syncfs`` once, then the
    renames, was measured too: it saves little CPU, as the cost is mostly in making the
    files, and it would flush every other writer's data on the file system, at a cost
    nobody here controls.
    The temporary files are made in a folder of this writer's own inside the directory,
    not beside their names: making a file holds its directory's lock, and making the
    inode can be most of a small file's cost (ext4 without a journal scans past recently
    freed inodes, ~0.5 ms a file after a site was removed), so processes writing into
    one directory would take turns.

    Leaving the ``with`` block on an exception (or ``abort``) removes the temporary
    files not renamed yet; a killed process leaves its ``.writing-*.tmp`` folder, which
    the next run removes (``casereport.render.write.clean_partial_writes``).
    """

    _THREADS = 4
    _OPEN_AT_MOST = 64  # temporary files written, not yet renamed (each holds a descriptor)

    def __init__(self, directory: Path) -> None:
        check_writable(directory / "_")  # the site folder itself is not a link
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._staging: Path | None = None  # made at the first write
        self._slots = threading.BoundedSemaphore(self._OPEN_AT_MOST)
        self._syncing: list[Future[None]] = []
        self._aborted = False
        self._threads = ThreadPoolExecutor(self._THREADS, thread_name_prefix="casereport-fsync")

    def write(self, name: str, data: bytes) -> None:
        """Write ``data`` as ``directory/name`` (each name once): now into a temporary
        file, soon under its name."""
        if self._staging is None:
            self._staging = Path(
                tempfile.mkdtemp(prefix=".writing-", suffix=".tmp", dir=self.directory)
            )
        tmp_name = str(self._staging / name)
        self._slots.acquire()
        try:
            # Readable like any other file (the umask applies), unlike mkstemp's 0600.
            fd = os.open(tmp_name, _CREATE, 0o666)
        except BaseException:
            self._slots.release()
            raise
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except BaseException:
            self._discard(fd, tmp_name)
            raise
        self._syncing.append(
            self._threads.submit(self._finish, fd, tmp_name, self.directory / name)
        )

    def _finish(self, fd: int, tmp_name: str, path: Path) -> None:
        """In a thread: fsync the temporary file, then rename it over ``path``."""
        if self._aborted:
            self._discard(fd, tmp_name)
            return
        try:
            os.fsync(fd)
            os.replace(tmp_name, path)  # only now: the name never shows part of a file
        except BaseException:
            self._discard(fd, tmp_name)
            raise
        os.close(fd)
        self._slots.release()

    def _discard(self, fd: int, tmp_name: str) -> None:
        os.close(fd)
        self._slots.release()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)

    def close(self) -> None:
        """Wait until every file is under its name, then make the renames durable."""
        self._threads.shutdown(wait=True)
        try:
            for syncing in self._syncing:
                syncing.result()  # the first failure (a full disk, say) is raised here
            fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        finally:
            self._remove_staging()

    def abort(self) -> None:
        """Stop: remove the temporary files not renamed yet (files renamed stay, whole)."""
        self._aborted = True
        self._threads.shutdown(wait=True)
        self._remove_staging()

    def _remove_staging(self) -> None:
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)

    def __enter__(self) -> AtomicFiles:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


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
