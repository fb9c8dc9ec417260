"""What this machine last read of the site's pages: each page's ``stat`` and content hash,
so a plan reads again only the pages whose ``stat`` changed since (as Git's index does).

A plan checks every page for hand edits and deletions (``engine.plan``'s drift) by
hashing it against the hash the state records: a third of a no-change plan of 1,000
reports was reading and hashing its 4,002 pages. ``.casereport/site-index.json`` keeps
each page's hash with its size, modification and change times, inode and device, and a
page whose ``stat`` is the same is not read again. It is a cache of this machine's files
(inodes and times mean nothing on another), never part of the state: a missing, damaged
or foreign index costs only the hashing it would have saved.

A hash is kept only for a page whose last change is ``SETTLED_NS`` older than the run
that read it. File times are coarse (one clock tick; whole seconds, or two, on some file
systems), so a page written again within the tick of the change the run read would keep
its ``stat``; a page settled before the run began cannot change again without its change
time moving (which no program can set back). A page written in the last few seconds is
simply read again next time.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Mapping
from pathlib import Path

import orjson

from casereport.fsutil import atomic_write_bytes
from casereport.state.model import file_sha256

INDEX_NAME = "site-index.json"
FORMAT = 1
# Longer than the coarsest file time (FAT's two seconds) plus a clock tick.
SETTLED_NS = 3_000_000_000

# size, mtime_ns, ctime_ns, inode, device: what changes when a file's content can have.
Stat = tuple[int, int, int, int, int]
Entry = tuple[Stat, str]


def _key(found: os.stat_result) -> Stat:
    return (found.st_size, found.st_mtime_ns, found.st_ctime_ns, found.st_ino, found.st_dev)


class SiteIndex:
    """The site's pages' content hashes, each read from disk only when its ``stat``
    differs from what the index recorded."""

    def __init__(self, site_dir: Path, known: Mapping[str, Entry] | None = None) -> None:
        self.site_dir = site_dir
        self._known = dict(known or {})
        self._seen: dict[str, Entry] = {}  # what this run read or confirmed
        self._looked: set[str] = set()
        # Taken before any page is looked at: a change after that moves its change time
        # to at least this (less a tick and the file system's granularity).
        self._settled_before = time.time_ns() - SETTLED_NS

    def sha256(self, name: str) -> str | None:
        """sha256 of the page ``name``'s bytes, or None when it does not exist."""
        self._looked.add(name)
        path = self.site_dir / name
        try:
            found = os.stat(path)
        except FileNotFoundError:
            return None
        key = _key(found)
        entry = self._known.get(name)
        if entry is not None and entry[0] == key:
            self._seen[name] = entry
            return entry[1]
        digest = file_sha256(path)
        if (
            digest is not None
            and stat.S_ISREG(found.st_mode)
            and found.st_ctime_ns < self._settled_before
        ):
            self._seen[name] = (key, digest)
        return digest

    def entries(self, *, complete: bool) -> dict[str, Entry]:
        """What the index should hold after this run: the pages it read or confirmed, and
        (unless it looked at every page the site has, ``complete``) the earlier entries of
        pages it did not look at."""
        if complete:
            return dict(self._seen)
        kept = {name: e for name, e in self._known.items() if name not in self._looked}
        return {**kept, **self._seen}

    def save(self, path: Path, *, complete: bool) -> None:
        """Write the index to ``path`` if it changed, when ``path``'s folder exists (a plan
        leaves no trace in a fresh workspace); a folder it cannot write to is no error."""
        entries = self.entries(complete=complete)
        if entries == self._known or not path.parent.is_dir():
            return
        files = {name: [*key, digest] for name, (key, digest) in sorted(entries.items())}
        data = orjson.dumps({"format": FORMAT, "site": _where(self.site_dir), "files": files})
        with contextlib.suppress(OSError):  # a cache: the next run hashes the pages again
            atomic_write_bytes(path, data + b"\n")


def load_site_index(path: Path, site_dir: Path) -> SiteIndex:
    """The index at ``path`` for the site in ``site_dir``; an empty one if it is missing,
    damaged, or another site's."""
    return SiteIndex(site_dir, _read(path, site_dir))


def _read(path: Path, site_dir: Path) -> dict[str, Entry]:
    try:
        raw = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    if (
        type(raw) is not dict
        or raw.get("format") != FORMAT
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
            return {}  # not an index this code wrote: none at all
        known[name] = ((entry[0], entry[1], entry[2], entry[3], entry[4]), entry[5])
    return known


def _where(site_dir: Path) -> str:
    return str(site_dir.resolve())


def site_index_path(state_dir: Path) -> Path:
    """Where the index of a workspace whose state folder is ``state_dir`` is kept."""
    return state_dir / INDEX_NAME


__all__ = ["INDEX_NAME", "SETTLED_NS", "SiteIndex", "load_site_index", "site_index_path"]
