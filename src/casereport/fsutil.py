"""Atomic file writes, and a pause of the garbage collector for bulk object building."""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import os
import random
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, TextIO, cast

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
    """Many files written into one directory, each atomically, all durable at ``close``.

    ``write`` puts the bytes in a temporary file, in a folder of this writer's own inside
    the directory, and returns. ``close`` makes every one of them durable at once
    (``sync_files``), then renames each over its name, then fsyncs the directory (the
    renames): once it returns, every file is durable under its name. A file is renamed
    only once it is on disk, so a reader or a crash sees the old file or the new one,
    never a part of one; and a run stopped before ``close`` changes no file at all.

    Why so: each fsync ends with the disk flushing its cache, and a site's 4,002 pages
    took 4,002 flushes: rendering 1,000 reports in two processes waited on them for
    about a second and a half (the fsyncs were in threads; the disk could not keep up).
    One ``syncfs`` of the staged files flushes once. It also flushes what other programs
    have written to that file system and not yet synced, which a render then waits for;
    on a machine busy writing elsewhere that is the price, and still one flush.
    The staging folder is the writer's own, not the directory: making a file holds its
    folder's lock, so processes writing into one directory would take turns.

    Leaving the ``with`` block on an exception (or ``abort``) removes the staged files;
    a killed process leaves its ``.writing-*.tmp`` folder, which the next run removes
    (``casereport.render.write.clean_partial_writes``).
    """

    def __init__(self, directory: Path) -> None:
        check_writable(directory / "_")  # the site folder itself is not a link
        directory.mkdir(parents=True, exist_ok=True)
        spread_new_folders(directory)
        self.directory = directory
        self._staging: Path | None = None  # made at the first write
        self._names: list[str] = []

    def write(self, name: str, data: bytes) -> None:
        """Write ``data`` as ``directory/name`` (each name once): now into a temporary
        file, under its name at ``close``."""
        if self._staging is None:
            self._staging = Path(
                tempfile.mkdtemp(prefix=".writing-", suffix=".tmp", dir=self.directory)
            )
        # Readable like any other file (the umask applies), unlike mkstemp's 0600.
        fd = os.open(self._staging / name, _CREATE, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        self._names.append(name)

    def close(self) -> None:
        """Make every file durable, then put each under its name, durably."""
        try:
            if self._staging is None:
                return
            sync_files(self._staging, self._names)
            for name in self._names:
                os.replace(self._staging / name, self.directory / name)
            fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        finally:
            self._remove_staging()

    def abort(self) -> None:
        """Stop: remove the staged files (files already renamed stay, whole)."""
        self._remove_staging()

    def _remove_staging(self) -> None:
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None

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


def sync_files(folder: Path, names: Iterable[str]) -> None:
    """Make the files ``names`` in ``folder`` durable (data and size): on Linux with one
    ``syncfs`` of their file system, which writes them all and flushes the disk once;
    elsewhere with an fsync of each."""
    syncfs = _syncfs()
    if syncfs is not None:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            if syncfs(fd) != 0:
                import ctypes

                code = ctypes.get_errno()
                raise OSError(code, os.strerror(code), str(folder))
        finally:
            os.close(fd)
        return
    for name in names:
        fd = os.open(folder / name, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@functools.cache
def _syncfs() -> Callable[[int], int] | None:
    """The C library's ``syncfs`` (Linux; Python has no binding), or None."""
    if sys.platform != "linux":
        return None
    import ctypes  # here, not at the top: ``casereport --version`` need not load it

    try:
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return cast("Callable[[int], int]", function)


# ioctl requests and the flag (linux/fs.h): a folder's attributes, and "top of a hierarchy".
_FS_IOC_GETFLAGS = 0x80086601
_FS_IOC_SETFLAGS = 0x40086602
_FS_TOPDIR_FL = 0x00020000


def spread_new_folders(directory: Path) -> None:
    """Ask the file system to place folders made in ``directory`` away from it and from
    each other (ext4's "top directory" attribute, ``chattr +T``); elsewhere, nothing.

    Why: ``AtomicFiles`` makes its files in a new folder of its own inside ``directory``,
    and ext4 puts a new file's inode in its folder's block group. Without a journal, ext4
    then skips every inode freed there in the last 30 seconds, one by one, for every file
    it makes: right after ``rm -rf site``, making a site's 4,002 files checked 16 million
    inodes (3.3 s of CPU, against 0.3 s in a group with none freed; measured on this
    project's CI machines). Spread, the staging folder lands in another group, chosen
    afresh by its random name. Only where the pages' inodes live changes, never what a
    reader sees; a file system without the attribute refuses the request, which is fine.
    """
    import array
    import fcntl

    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return
    try:
        flags = array.array("i", [0])  # an int, whatever the request says
        fcntl.ioctl(fd, _FS_IOC_GETFLAGS, flags, True)
        if not flags[0] & _FS_TOPDIR_FL:
            flags[0] |= _FS_TOPDIR_FL
            fcntl.ioctl(fd, _FS_IOC_SETFLAGS, flags, True)
    except OSError:
        pass  # not ext4 (or not allowed): the folders go where the file system puts them
    finally:
        os.close(fd)


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


def file_sha256(path: Path) -> str | None:
    """sha256 of a file's bytes, or None when it does not exist."""
    read = file_stat_sha256(path)
    return read[1] if read is not None else None


def file_stat_sha256(path: Path) -> tuple[os.stat_result, str] | None:
    """A file's stat and the sha256 of its bytes, both of the one file opened (so a file
    replaced meanwhile cannot pair one's stat with the other's bytes); None when it does
    not exist."""
    try:
        with open(path, "rb") as handle:
            return os.fstat(handle.fileno()), hashlib.file_digest(handle, "sha256").hexdigest()
    except FileNotFoundError:
        return None
