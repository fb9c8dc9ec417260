"""Files written atomically and durably: never a part under a file's name, all on disk at the end.

``AtomicFiles`` fsyncs in threads, behind the caller's back: these tests watch the calls
that make a file durable (``fsync``, ``replace``) and their order, and stop it half-way.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path

import pytest

from casereport.fsutil import AtomicFiles
from casereport.render.write import content_hash, site_listing, write_pages

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/fd").is_dir(), reason="the tests name descriptors through /proc"
)

PAGES = {f"page-{number}.html": f"<p>{number}</p>\n".encode() * 1000 for number in range(100)}


def _watch(monkeypatch: pytest.MonkeyPatch, events: list[tuple[str, str]]) -> None:
    """Note each fsync (of the file's path) and each rename (of the target) in ``events``."""
    real_fsync, real_replace = os.fsync, os.replace
    lock = threading.Lock()

    def fsync(fd: int) -> None:
        real_fsync(fd)
        with lock:
            events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))

    def replace(source: str, target: str | Path) -> None:
        with lock:
            events.append(("fsync-before-rename", str(source)))
        real_replace(source, target)
        with lock:
            events.append(("rename", str(target)))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)


def test_each_file_is_fsynced_before_its_rename_and_the_directory_after_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[tuple[str, str]] = []
    _watch(monkeypatch, events)

    with AtomicFiles(tmp_path) as files:
        for name, data in PAGES.items():
            files.write(name, data)
    monkeypatch.undo()

    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == PAGES
    synced = set()
    renamed = []
    for kind, path in events:
        if kind == "fsync":
            synced.add(path)
        elif kind == "fsync-before-rename":
            assert path in synced, f"{path} renamed before its fsync"
            # Made in a folder of the writer's own, so writers in one directory never
            # wait for each other's file creations (its lock).
            assert Path(path).parent.parent == tmp_path.resolve() != Path(path).parent
        else:
            renamed.append(Path(path).name)
    assert sorted(renamed) == sorted(PAGES)
    assert events[-1] == (
        "fsync",
        str(tmp_path.resolve()),
    )  # the renames, made durable once all done
    umask = os.umask(0)
    os.umask(umask)
    assert {path.stat().st_mode & 0o777 for path in tmp_path.iterdir()} == {0o666 & ~umask}


def test_leaving_on_an_error_removes_what_is_not_renamed_and_leaves_no_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "page-0.html").write_bytes(b"the old page\n")
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        time.sleep(0.02)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    with pytest.raises(KeyboardInterrupt), AtomicFiles(tmp_path) as files:
        for name, data in PAGES.items():
            files.write(name, data)
        raise KeyboardInterrupt  # with most files written, not yet renamed

    left = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    assert [name for name in left if name.endswith(".tmp")] == []
    assert len(left) < len(PAGES)  # it did stop half-way
    assert left["page-0.html"] in (b"the old page\n", PAGES["page-0.html"])
    for name, data in left.items():
        assert data == PAGES[name] or name == "page-0.html"


def test_a_failed_fsync_is_raised_and_its_file_is_not_renamed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fsync = os.fsync

    def failing_fsync(fd: int) -> None:
        if Path(os.readlink(f"/proc/self/fd/{fd}")).name == "page-7.html":
            raise OSError(errno.EIO, "Input/output error")  # a disk failing this file
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="Input/output error"), AtomicFiles(tmp_path) as files:
        for name, data in PAGES.items():
            files.write(name, data)

    names = {path.name for path in tmp_path.iterdir()}
    assert names == set(PAGES) - {"page-7.html"}


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
