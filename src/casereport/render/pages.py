"""A report's pages and the site index, rendered in memory from state.

Output is deterministic: the same state renders byte-identical files (no wall-clock
time, only the ``fetched_at`` of each result; groups, reports and history in a fixed
order; no randomness in ids).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from casereport.definitions.expand import ReportSpec
from casereport.errors import RenderError
from casereport.fsutil import collector_paused
from casereport.render.checks_view import report_results
from casereport.render.context import index_context, report_context
from casereport.render.data import data_files
from casereport.render.templates import render_template
from casereport.site import FORMAT_SUFFIXES, INDEX_FILES
from casereport.state.model import AggregationState, Source

if TYPE_CHECKING:
    import jinja2

# Formats rendered by a template, and the template extension of each.
_TEMPLATE_EXTENSIONS = {"markdown": "md", "html": "html"}
_RENDERED_FORMATS = ("markdown", "html", "pdf")

# The rendered pages, keyed by site-relative file name; a PDF is bytes.
Pages = Mapping[str, str | bytes]


def render_report(
    report: ReportSpec,
    aggregations: Mapping[str, AggregationState],
    source: Source | None,
    env: jinja2.Environment,
    *,
    printed: bool = True,
) -> Pages:
    """A report's pages and data files in memory: site-relative file name -> content
    (bytes for PDF). The data files (``render.data``) are written whatever the formats.
    ``printed=False`` renders a PDF's HTML page without printing it (the template check)."""
    for fmt in report.formats:
        if fmt not in _RENDERED_FORMATS:
            raise RenderError(
                f"{report.path}: format {fmt!r} cannot be rendered; "
                f"use {', '.join(_RENDERED_FORMATS)}"
            )
    with collector_paused():
        # Evaluated once for the page and the data file (none: at no cost).
        checks = report_results(report, aggregations)
        context = report_context(report, aggregations, source, checks)
        pages: dict[str, str | bytes] = {}
        html: str | None = None
        for fmt in report.formats:
            name = f"{report.name}{FORMAT_SUFFIXES[fmt]}"
            if fmt == "pdf":
                continue
            text = render_template(
                env, f"{report.template}.{_TEMPLATE_EXTENSIONS[fmt]}.j2", context
            )
            if fmt == "html":
                html = text
            pages[name] = text
        pages.update(data_files(report, aggregations, source, checks))
    if "pdf" in report.formats:
        if html is None:
            html = render_template(env, f"{report.template}.html.j2", context)
        if printed:
            from casereport.render.pdf import print_pdf

            pages[f"{report.name}.pdf"] = print_pdf(html, fixed_date=context["freshness"]["newest"])
    return {name: pages[name] for name in sorted(pages)}


def render_index(
    reports: Sequence[ReportSpec],
    aggregations: Mapping[str, AggregationState],
    source: Source | None,
    env: jinja2.Environment,
) -> dict[str, str]:
    """``index.html`` and ``index.md`` listing every report."""
    with collector_paused():
        context = index_context(reports, aggregations, source)
        return {name: render_template(env, f"{name}.j2", context) for name in INDEX_FILES}
