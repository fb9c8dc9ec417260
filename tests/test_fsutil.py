"""Files written atomically and durably: never a part under a file's name, all on disk at the end.

``AtomicFiles`` stages every file, makes them all durable at ``close`` (one ``syncfs`` on
Linux, an fsync of each elsewhere), and only then renames them: these tests watch the
calls that make a file durable and their order, and stop it half-way.
"""

from __future__ import annotations

import array
import errno
import fcntl
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from casereport import fsutil
from casereport.fsutil import AtomicFiles, spread_new_folders
from casereport.render.write import content_hash, site_listing, write_pages

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/fd").is_dir(), reason="the tests name descriptors through /proc"
)

PAGES = {f"page-{number}.html": f"<p>{number}</p>\n".encode() * 1000 for number in range(100)}


def _watch(monkeypatch: pytest.MonkeyPatch, events: list[tuple[str, str]]) -> None:
    """Note each sync (of each file it makes durable), fsync (of its path) and rename (of
    the source and then the target) in ``events``."""
    real_sync, real_fsync, real_replace = fsutil.sync_files, os.fsync, os.replace

    def sync_files(folder: Path, names: Iterable[str]) -> None:
        names = list(names)
        real_sync(folder, names)
        events.extend(("synced", str(folder / name)) for name in names)

    def fsync(fd: int) -> None:
        real_fsync(fd)
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))

    def replace(source: str | Path, target: str | Path) -> None:
        events.append(("renaming", str(source)))
        real_replace(source, target)
        events.append(("renamed", str(target)))

    monkeypatch.setattr(fsutil, "sync_files", sync_files)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)


def _write_all(directory: Path) -> None:
    with AtomicFiles(directory) as files:
        for name, data in PAGES.items():
            files.write(name, data)


@pytest.mark.parametrize("syncfs", [True, False], ids=["syncfs", "fsync-each"])
def test_every_file_is_durable_before_any_rename_and_the_directory_after_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, syncfs: bool
) -> None:
    if syncfs and fsutil._syncfs() is None:
        pytest.skip("no syncfs in this C library (not Linux): the other case is the one here")
    if not syncfs:  # as on a system without syncfs: an fsync of each file
        monkeypatch.setattr(fsutil, "_syncfs", lambda: None)
    events: list[tuple[str, str]] = []
    _watch(monkeypatch, events)

    _write_all(tmp_path)
    monkeypatch.undo()

    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == PAGES
    first_rename = next(i for i, (kind, _) in enumerate(events) if kind == "renaming")
    durable = {path for kind, path in events[:first_rename] if kind == "synced"}
    if not syncfs:  # each one fsynced by the fallback, before the sync returned
        assert {path for kind, path in events[:first_rename] if kind == "fsync"} == durable
    renamed = []
    for kind, path in events[first_rename:]:
        if kind == "renaming":
            assert path in durable, f"{path} renamed before it was made durable"
            # Made in a folder of the writer's own, so writers in one directory never
            # wait for each other's file creations (its lock).
            assert Path(path).parent.parent == tmp_path.resolve() != Path(path).parent
        elif kind == "renamed":
            renamed.append(Path(path).name)
    assert sorted(renamed) == sorted(PAGES)
    assert events[-1] == ("fsync", str(tmp_path.resolve()))  # the renames, made durable
    umask = os.umask(0)
    os.umask(umask)
    assert {path.stat().st_mode & 0o777 for path in tmp_path.iterdir()} == {0o666 & ~umask}


def test_leaving_on_an_error_renames_nothing_and_leaves_no_part(tmp_path: Path) -> None:
    (tmp_path / "page-0.html").write_bytes(b"the old page\n")
    with pytest.raises(KeyboardInterrupt), AtomicFiles(tmp_path) as files:
        for name, data in PAGES.items():
            files.write(name, data)
        raise KeyboardInterrupt  # every file written, none renamed yet

    left = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    assert left == {"page-0.html": b"the old page\n"}  # no staging folder left either


def _failing_syncfs() -> Callable[[int], int]:
    import ctypes

    def syncfs(fd: int) -> int:
        ctypes.set_errno(errno.EIO)  # a disk failing the write-back
        return -1

    return syncfs


@pytest.mark.parametrize("syncfs", [True, False], ids=["syncfs", "fsync-each"])
def test_a_failed_sync_is_raised_and_no_file_is_renamed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, syncfs: bool
) -> None:
    (tmp_path / "page-0.html").write_bytes(b"the old page\n")
    real_fsync = os.fsync

    def failing_fsync(fd: int) -> None:
        if Path(os.readlink(f"/proc/self/fd/{fd}")).name == "page-7.html":
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    if syncfs:
        monkeypatch.setattr(fsutil, "_syncfs", _failing_syncfs)
    else:
        monkeypatch.setattr(fsutil, "_syncfs", lambda: None)
        monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="Input/output error"):
        _write_all(tmp_path)

    left = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    assert left == {"page-0.html": b"the old page\n"}


def _flags(folder: Path) -> int | None:
    """The folder's inode flags (``lsattr``), or None where the file system has none."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        flags = array.array("i", [0])
        fcntl.ioctl(fd, 0x80086601, flags, True)  # FS_IOC_GETFLAGS
        return flags[0]
    except OSError:
        return None
    finally:
        os.close(fd)


def test_the_folder_written_into_spreads_new_folders_where_the_file_system_can(
    tmp_path: Path,
) -> None:
    site = tmp_path / "site"
    _write_all(site)  # no error, whatever the file system
    flags = _flags(site)
    if flags is None:
        pytest.skip("the tests' file system has no inode flags (not ext4): nothing to check")
    assert flags & 0x00020000  # FS_TOPDIR_FL: chattr +T
    spread_new_folders(site)  # asked again (each writer asks): unchanged, no error
    assert _flags(site) == flags
    spread_new_folders(tmp_path / "missing")  # a folder that is not there: nothing to do


def test_write_pages_with_a_listing_checks_only_the_files_listed(tmp_path: Path) -> None:
    # A page missing from the listing is written without reading its file; a listed one
    # whose file holds what state records is left alone, as without a listing.
    site = tmp_path / "site"
    site.mkdir()
    (site / "kept.html").write_text("same")
    present = site_listing(site)
    assert present == {"kept.html"} and site_listing(tmp_path / "none") == frozenset()
    recorded = {"kept.html": content_hash("same"), "gone.html": content_hash("new")}
    before = (site / "kept.html").stat().st_mtime_ns
    with AtomicFiles(site) as files:
        hashes = write_pages(files, {"kept.html": "same", "gone.html": "new"}, recorded, present)
    assert hashes == recorded
    assert (site / "gone.html").read_text() == "new"
    assert (site / "kept.html").stat().st_mtime_ns == before
