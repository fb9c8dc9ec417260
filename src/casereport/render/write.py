"""Writing the site: pages written atomically and durably, with their content hashes.

Every process that renders pages writes them (``write_pages``), each through its own
``AtomicFiles`` (see there why): its pages are staged, made durable together when its
share is done, and only then renamed over their names; the directory is fsynced last.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Container, Iterable, Mapping
from pathlib import Path

from casereport.fsutil import STAGING_DIR_RE, TEMP_FILE_RE, AtomicFiles
from casereport.render.pages import Pages
from casereport.site import is_site_file_name
from casereport.state.model import file_sha256


def content_hash(content: str | bytes) -> str:
    """sha256 of a page as written (UTF-8 for text)."""
    return hashlib.sha256(_encoded(content)).hexdigest()


def _encoded(content: str | bytes) -> bytes:
    return content.encode("utf-8") if isinstance(content, str) else content


def write_pages(
    files: AtomicFiles,
    pages: Pages,
    recorded: Mapping[str, str],
    present: Container[str] | None = None,
) -> dict[str, str]:
    """Write the pages that differ from the files on disk; return name -> content hash.

    A page equal to what the state records (``recorded``: name -> hash) and to what its
    file holds is left alone, so a run touches only the files whose content changes.
    ``present``: the names in the folder, when listed before (a page not among them is
    written without trying to read its file).
    """
    hashes = {}
    for name, content in pages.items():
        data = _encoded(content)
        hashes[name] = digest = hashlib.sha256(data).hexdigest()
        if (
            recorded.get(name) != digest
            or (present is not None and name not in present)
            or file_sha256(files.directory / name) != digest
        ):
            files.write(name, data)
    return hashes


def site_listing(site_dir: Path) -> frozenset[str]:
    """The names in the site folder (none if it is missing): one listing instead of a
    failed open per page when a site is rebuilt from scratch."""
    try:
        return frozenset(os.listdir(site_dir))
    except (FileNotFoundError, NotADirectoryError):
        return frozenset()


def write_site_files(
    site_dir: Path, files: Pages, recorded: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Write each file atomically (only those that differ from ``recorded`` and the disk,
    when given); return name -> sha256 of each."""
    with AtomicFiles(site_dir) as writer:
        return write_pages(writer, {name: files[name] for name in sorted(files)}, recorded or {})


def remove_site_files(site_dir: Path, names: Iterable[str]) -> None:
    """Remove those site files; one already gone is fine.

    Only plain site file names are ever removed (state and saved plans are checked when
    they are read; this is the last guard): a link is removed, never what it points at.
    """
    for name in names:
        if not is_site_file_name(name):
            raise ValueError(f"{name!r} is not a site file name")
        with contextlib.suppress(FileNotFoundError):
            (site_dir / name).unlink()


def clean_partial_writes(site_dir: Path) -> None:
    """Remove what interrupted atomic writes of pages left, and only that.

    That is exactly what casereport's own writers make: ``.<page>.<random>.tmp`` files
    (``atomic_write_bytes``) and ``.writing-<random>.tmp`` folders of page files
    (``AtomicFiles``), where each page is a site file name. The caller holds the state
    lock, so no other casereport run is writing them: they are a killed run's. Any other
    file is left alone, however it is named, and a link is never followed.
    """
    try:
        entries = list(os.scandir(site_dir))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        temporary = TEMP_FILE_RE.fullmatch(entry.name)
        if temporary is not None and is_site_file_name(temporary["name"]):
            if entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
        elif STAGING_DIR_RE.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False):
            _clean_staging(Path(entry.path))


def _clean_staging(staging: Path) -> None:
    """Remove the pages a killed ``AtomicFiles`` left in its folder, then the folder if
    nothing else is in it."""
    for entry in os.scandir(staging):
        if is_site_file_name(entry.name) and entry.is_file(follow_symlinks=False):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
    with contextlib.suppress(OSError):  # not empty: something else is in it, left alone
        staging.rmdir()
