"""The layout of the rendered site: which files each report owns.

Kept apart from ``render`` (which imports Jinja2) so planning can name output files
without loading the template engine.
"""

from __future__ import annotations

from collections.abc import Sequence

FORMAT_SUFFIXES = {"markdown": ".md", "html": ".html", "pdf": ".pdf"}
INDEX_FILES = ("index.html", "index.md")
DEFAULT_SITE_DIR = "site"


def output_names(report: str, formats: Sequence[str]) -> tuple[str, ...]:
    """Site-relative file names of a report's outputs, in a stable order."""
    return tuple(sorted(f"{report}{FORMAT_SUFFIXES[f]}" for f in formats))
