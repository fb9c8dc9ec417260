"""Writing the site: pages written atomically, with their content hashes."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable
from pathlib import Path

from casereport.fsutil import atomic_write_bytes, atomic_write_text
from casereport.render.pages import Pages


def content_hash(content: str | bytes) -> str:
    """sha256 of a page as written (UTF-8 for text)."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    return hashlib.sha256(data).hexdigest()


def write_site_files(site_dir: Path, files: Pages) -> dict[str, str]:
    """Write each file atomically; return name -> sha256 of what was written."""
    hashes = {}
    for name in sorted(files):
        content = files[name]
        if isinstance(content, bytes):
            atomic_write_bytes(site_dir / name, content)
        else:
            atomic_write_text(site_dir / name, content)
        hashes[name] = content_hash(content)
    return hashes


def remove_site_files(site_dir: Path, names: Iterable[str]) -> None:
    """Remove those site files; one already gone is fine."""
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            (site_dir / name).unlink()


def clean_partial_writes(site_dir: Path) -> None:
    """Remove temporary files left by an interrupted atomic write (``.<name>.*.tmp``)."""
    if site_dir.is_dir():
        for leftover in site_dir.glob(".*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
