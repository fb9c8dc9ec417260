"""The layout of the rendered site: which files each report owns.

Kept apart from ``render`` (which imports Jinja2) so planning can name output files
without loading the template engine.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

FORMAT_SUFFIXES = {"markdown": ".md", "html": ".html", "pdf": ".pdf"}
# Every report's data files, whatever its ``formats`` (docs/data-files.md).
DATA_SUFFIXES = (".csv", ".json")
# Every suffix a report's output may have.
OUTPUT_SUFFIXES = frozenset((*FORMAT_SUFFIXES.values(), *DATA_SUFFIXES))
INDEX_FILES = ("index.html", "index.md")
DEFAULT_SITE_DIR = "site"
# A report's name is its file name without .yaml, and names its pages: so it is a plain
# file name part, never a path (no separator, no dot, not empty).
REPORT_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}\Z")
# The site index uses this name, so no report may.
RESERVED_REPORT_NAMES = frozenset({"index"})


def output_names(report: str, formats: Sequence[str]) -> tuple[str, ...]:
    """Site-relative file names of a report's outputs (its pages and its data files), in a
    stable order."""
    suffixes = [FORMAT_SUFFIXES[f] for f in formats]
    return tuple(sorted({f"{report}{suffix}" for suffix in (*suffixes, *DATA_SUFFIXES)}))


def is_report_name(name: object) -> bool:
    """Whether ``name`` can name a report (and so its pages)."""
    return (
        isinstance(name, str)
        and REPORT_NAME_RE.match(name) is not None
        and name not in RESERVED_REPORT_NAMES
    )


def output_name_problem(name: object, report: str | None) -> str | None:
    """Why ``name`` cannot be a page of ``report`` (None: the site index), or None if it can.

    State and saved plans come from caches and artifacts, so the file names they hold are
    checked before any is written or removed: a page or data file is ``<report><suffix>``
    in the site directory itself, an index file one of ``INDEX_FILES``; nothing else (no separator,
    no ``..``, no absolute path) is ever a site file.
    """
    if report is None:
        if name in INDEX_FILES:
            return None
        return f"{name!r} is not a site index file ({', '.join(INDEX_FILES)})"
    if isinstance(name, str) and name in {f"{report}{s}" for s in OUTPUT_SUFFIXES}:
        return None
    suffixes = ", ".join(sorted(OUTPUT_SUFFIXES))
    return f"{name!r} is not a page of report {report} ({report} + one of {suffixes})"


def is_site_file_name(name: str) -> bool:
    """Whether ``name`` could be a file casereport writes in a site: an index file or a
    page or data file of some report (``<report><suffix>``)."""
    if name in INDEX_FILES:
        return True
    report, dot, rest = name.partition(".")
    return bool(dot) and is_report_name(report) and f".{rest}" in OUTPUT_SUFFIXES
