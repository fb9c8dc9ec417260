"""Writing the site: pages written atomically and durably, with their content hashes.

Every process that renders pages writes them (``write_pages``), each through its own
``AtomicFiles`` (see there why): a page is fsynced before it is renamed over its name,
the fsyncs run while the next page renders, and the directory is fsynced at the end.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

from casereport.fsutil import AtomicFiles
from casereport.render.pages import Pages
from casereport.state.model import file_sha256


def content_hash(content: str | bytes) -> str:
    """sha256 of a page as written (UTF-8 for text)."""
    return hashlib.sha256(_encoded(content)).hexdigest()


def _encoded(content: str | bytes) -> bytes:
    return content.encode("utf-8") if isinstance(content, str) else content


def write_pages(files: AtomicFiles, pages: Pages, recorded: Mapping[str, str]) -> dict[str, str]:
    """Write the pages that differ from the files on disk; return name -> content hash.

    A page equal to what the state records (``recorded``: name -> hash) and to what its
    file holds is left alone, so a run touches only the files whose content changes.
    """
    hashes = {}
    for name, content in pages.items():
        data = _encoded(content)
        hashes[name] = digest = hashlib.sha256(data).hexdigest()
        if recorded.get(name) != digest or file_sha256(files.directory / name) != digest:
            files.write(name, data)
    return hashes


def write_site_files(
    site_dir: Path, files: Pages, recorded: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Write each file atomically (only those that differ from ``recorded`` and the disk,
    when given); return name -> sha256 of each."""
    with AtomicFiles(site_dir) as writer:
        return write_pages(writer, {name: files[name] for name in sorted(files)}, recorded or {})


def remove_site_files(site_dir: Path, names: Iterable[str]) -> None:
    """Remove those site files; one already gone is fine."""
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            (site_dir / name).unlink()


def clean_partial_writes(site_dir: Path) -> None:
    """Remove what interrupted atomic writes left: ``.<name>.*.tmp`` files and the
    ``.writing-*.tmp`` folders of ``AtomicFiles``."""
    if site_dir.is_dir():
        for leftover in site_dir.glob(".*.tmp"):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
