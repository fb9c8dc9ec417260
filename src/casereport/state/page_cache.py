"""What this machine last read of the site's pages: each page's ``stat`` and content hash,
so a plan reads again only the pages whose ``stat`` changed since (as Git's index does).

A plan checks every page the state records for hand edits and deletions (``engine.plan``'s
drift) by hashing it against the recorded hash: a third of a no-change plan of 1,000
reports was reading and hashing its 4,002 pages. The page cache keeps each page's hash
with its size, modification and change times, inode and device, and a page whose ``stat``
is the same is not read again. It is a cache of this machine's files (inodes and times
mean nothing on another), never part of the state: a missing, damaged or foreign cache
costs only the hashing it would have saved, and one that cannot be written is no error.

It lives beside the state file of the workspace's settings, one per site folder
(``state.json.pages-<12 hex digits of the site folder's path>``): workspaces with sites
of their own keep theirs apart, and none is in a workspace's or a remote mirror's own
folder, which ``workspace delete`` removes.

A hash is kept only for a page whose last change is ``SETTLED_NS`` older than the run
that read it. File times are coarse (one clock tick; whole seconds, or two, on some file
systems), so a page written again within the tick of the change the run read would keep
its ``stat``; a page settled before the run began cannot change again without its change
time moving. That holds where file times come from this machine's clock and the change
time is the kernel's own; as with Git's index, it does not on a network file system whose
server clock lags, nor where the change time is copied from the modification time (sshfs,
FAT), nor across the system clock being set back. A page written in the last few seconds
is read again next time.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import time
from collections.abc import Mapping
from pathlib import Path

import orjson

from casereport.errors import CaseReportError
from casereport.fsutil import atomic_write_bytes, file_stat_sha256

FORMAT = 1
# Longer than the coarsest file time (FAT's two seconds) plus a clock tick.
SETTLED_NS = 3_000_000_000
# A cache bigger than this is not one this code wrote (about 150 bytes a page).
MAX_BYTES = 64 * 2**20

# size, mtime_ns, ctime_ns, inode, device: what changes when a file's content can have.
Stat = tuple[int, int, int, int, int]
Entry = tuple[Stat, str]


def _key(found: os.stat_result) -> Stat:
    return (found.st_size, found.st_mtime_ns, found.st_ctime_ns, found.st_ino, found.st_dev)


class PageCache:
    """The site's pages' content hashes, each read from disk only when its ``stat``
    differs from what the cache recorded."""

    def __init__(self, site_dir: Path, known: Mapping[str, Entry] | None = None) -> None:
        self.site_dir = site_dir
        self._known = dict(known or {})
        self._seen: dict[str, Entry] = {}  # what this run read or confirmed
        self._looked: set[str] = set()
        # Taken before any page is looked at: a change after that moves its change time
        # to at least this (less a tick and the file system's granularity).
        self._settled_before = time.time_ns() - SETTLED_NS

    def sha256(self, name: str) -> str | None:
        """sha256 of the page ``name``'s bytes, or None when it does not exist; a folder
        (or anything but a file) in its place is an error, as when it is written."""
        self._looked.add(name)
        path = self.site_dir / name
        try:
            found = os.stat(path)
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(found.st_mode):
            raise CaseReportError(f"{path}: is not a file; move it away to write the page")
        entry = self._known.get(name)
        if entry is not None and entry[0] == _key(found):
            self._seen[name] = entry
            return entry[1]
        read = file_stat_sha256(path)
        if read is None:
            return None
        opened, digest = read
        if stat.S_ISREG(opened.st_mode) and opened.st_ctime_ns < self._settled_before:
            self._seen[name] = (_key(opened), digest)
        return digest

    def entries(self, *, complete: bool) -> dict[str, Entry]:
        """What the cache should hold after this run: the pages it read or confirmed, and
        (unless it looked at every page the site has, ``complete``) the earlier entries of
        pages it did not look at."""
        if complete:
            return dict(self._seen)
        kept = {name: e for name, e in self._known.items() if name not in self._looked}
        return {**kept, **self._seen}

    def save(self, path: Path, *, complete: bool) -> None:
        """Write the cache to ``path`` if it changed, when ``path``'s folder exists (a plan
        leaves no trace in a fresh workspace). Never an error: a folder it cannot write
        to, or a link or folder in its place, only leaves the next run to hash again."""
        entries = self.entries(complete=complete)
        if entries == self._known or not path.parent.is_dir():
            return
        files = {name: [*key, digest] for name, (key, digest) in sorted(entries.items())}
        data = orjson.dumps({"format": FORMAT, "site": _where(self.site_dir), "files": files})
        with contextlib.suppress(OSError, CaseReportError):
            atomic_write_bytes(path, data + b"\n")


def page_cache_path(state_path: Path, site_dir: Path) -> Path:
    """Where the page cache of ``site_dir`` is kept, beside the state file ``state_path``
    (the settings' one: see the module docstring)."""
    digest = hashlib.sha256(_where(site_dir).encode()).hexdigest()[:12]
    return state_path.with_name(f"{state_path.name}.pages-{digest}")


def load_page_cache(path: Path, site_dir: Path) -> PageCache:
    """The cache at ``path`` for the site in ``site_dir``; an empty one if it is missing,
    damaged, another site's, or not a plain file."""
    return PageCache(site_dir, _read(path, site_dir))


def _read(path: Path, site_dir: Path) -> dict[str, Entry]:
    try:
        found = os.lstat(path)
        if not stat.S_ISREG(found.st_mode) or found.st_size > MAX_BYTES:
            return {}
        raw = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    if (
        type(raw) is not dict
        or type(raw.get("format")) is not int
        or raw["format"] != FORMAT
        or raw.get("site") != _where(site_dir)
        or type(raw.get("files")) is not dict
    ):
        return {}
    known = {}
    for name, entry in raw["files"].items():
        if (
            type(entry) is not list
            or len(entry) != 6
            or any(type(number) is not int for number in entry[:5])
            or type(entry[5]) is not str
        ):
            return {}  # not a cache this code wrote: none at all
        known[name] = ((entry[0], entry[1], entry[2], entry[3], entry[4]), entry[5])
    return known


def _where(site_dir: Path) -> str:
    return str(site_dir.resolve())


__all__ = ["SETTLED_NS", "PageCache", "load_page_cache", "page_cache_path"]
