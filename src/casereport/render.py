"""Render report pages (Markdown and HTML) from state with Jinja2, and write the site.

One environment factory: the workspace's ``templates/`` is searched before the templates
shipped in the package, ``StrictUndefined`` turns a typo in a template into an error, and
HTML is autoescaped because group values come from the API. Pages are built in memory,
then each file is written atomically. Output is deterministic: the same state renders
byte-identical files (no wall-clock time; only ``fetched_at`` from state is shown).

Jinja2 is imported inside the functions that render, so planning does not pay for it.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from casereport.errors import RenderError
from casereport.expand import ReportSpec
from casereport.fsutil import atomic_write_text
from casereport.site import FORMAT_SUFFIXES, INDEX_FILES
from casereport.state import AggregationState, Source

if TYPE_CHECKING:
    import jinja2

BUILTIN_TEMPLATES = Path(__file__).resolve().parent / "templates"
_RENDERED_FORMATS = ("markdown", "html")
_EXTENSIONS = {"markdown": "md", "html": "html"}


def _template_files(templates_dir: Path | None) -> list[Path]:
    folders = [BUILTIN_TEMPLATES]
    if templates_dir is not None and templates_dir.is_dir():
        folders.insert(0, templates_dir)
    files: list[Path] = []
    for folder in folders:
        files += sorted(p for p in folder.rglob("*.j2") if p.is_file())
    return files


def template_hashes(templates_dir: Path | None, names: Iterable[str]) -> dict[str, str]:
    """A hash per template name of every template file it could use.

    Templates include and extend each other, so any change to any template file
    re-renders every report (cheap next to guessing the include graph wrong).
    """
    digest = hashlib.sha256()
    for path in _template_files(templates_dir):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    shared = digest.hexdigest()
    return {
        name: hashlib.sha256(f"{name}\0{shared}".encode()).hexdigest()
        for name in sorted(set(names))
    }


# -- the Jinja2 environment -------------------------------------------------------------


def _number(value: float | int | None) -> str:
    if value is None:
        return "–"
    number = float(value)
    return f"{int(number):,}" if number.is_integer() else f"{number:,.2f}"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _delta(value: float | None) -> str:
    if value is None:
        return "–"
    if value == 0:
        return "±0"
    return ("+" if value > 0 else "−") + _number(abs(value))


def _md_cell(value: object) -> str:
    """Escape text for a Markdown table cell (pipes, newlines and HTML-looking text)."""
    text = str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
    return text.replace("<", "&lt;").replace(">", "&gt;")


def environment(templates_dir: Path | None) -> jinja2.Environment:
    """The one Jinja2 environment: workspace templates first, then the built-in ones."""
    import jinja2

    folders = [str(BUILTIN_TEMPLATES)]
    if templates_dir is not None and templates_dir.is_dir():
        folders.insert(0, str(templates_dir))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folders),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2", "html")),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(number=_number, percent=_percent, delta=_delta, md_cell=_md_cell)
    return env


# -- template context -----------------------------------------------------------------


def _source_context(source: Source | None) -> dict[str, str]:
    if source is None:
        return {"kind": "none", "site": "", "description": "no data fetched yet"}
    return {"kind": source.kind, "site": source.site, "description": source.describe()}


def aggregation_context(
    spec_title: str, request: Mapping[str, Any], state: AggregationState | None
) -> dict[str, Any]:
    """What a template sees of one aggregation."""
    context: dict[str, Any] = {
        "title": spec_title,
        "query_filter": request["query_filter"],
        "groups": list(request["groups"]),
        "limit": request["limit"],
        "result": None,
        "total": None,
        "delta": None,
        "fetched_at": None,
        "groups_rows": [],
        "history": [],
    }
    if state is None:
        return context
    total = float(state.result["total"])
    rows = []
    for group in state.result["groups"]:
        values = [float(v) for v in group["value"]]
        share = values[0] / total if total and values else None
        rows.append({"group": str(group["group"]), "counts": values, "share": share})
    previous = state.history[-1] if state.history else None
    context.update(
        result=state.result,
        total=total,
        delta=(total - float(previous["total"])) if previous is not None else None,
        fetched_at=state.fetched_at,
        groups_rows=rows,
        history=list(state.history),
    )
    return context


def report_context(
    report: ReportSpec, aggregations: Mapping[str, AggregationState], source: Source | None
) -> dict[str, Any]:
    """The documented context of a report page: ``report``, ``source``, ``aggregations``."""
    return {
        "report": {
            "name": report.name,
            "title": report.title,
            "description": report.description,
            "owner": report.owner,
            "formats": list(report.formats),
        },
        "source": _source_context(source),
        "aggregations": [
            {
                "address": spec.address,
                **aggregation_context(spec.title, spec.request(), aggregations.get(spec.address)),
            }
            for spec in report.aggregations
        ],
    }


def index_context(
    reports: Sequence[ReportSpec],
    aggregations: Mapping[str, AggregationState],
    source: Source | None,
) -> dict[str, Any]:
    """The documented context of the index page: ``reports`` and ``source``."""
    entries = []
    for report in sorted(reports, key=lambda r: r.name):
        fetched = [
            aggregations[a.address].fetched_at
            for a in report.aggregations
            if a.address in aggregations
        ]
        entries.append(
            {
                "name": report.name,
                "title": report.title,
                "aggregation_count": len(report.aggregations),
                "latest_fetch": max(fetched) if fetched else None,
                "link_html": f"{report.name}.html" if "html" in report.formats else None,
                "link_md": f"{report.name}.md"
                if "markdown" in report.formats
                else (f"{report.name}.html"),
            }
        )
    return {"reports": entries, "source": _source_context(source)}


# -- rendering ------------------------------------------------------------------------


def _render(env: jinja2.Environment, template_name: str, context: Mapping[str, Any]) -> str:
    import jinja2

    try:
        return env.get_template(template_name).render(context)
    except jinja2.TemplateNotFound as exc:
        raise RenderError(
            f"template {exc.name} not found in the workspace templates/ or the built-in ones; "
            f"create it or fix the report's `template:`"
        ) from None
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError(f"{exc.filename or template_name}:{exc.lineno}: {exc.message}") from None
    except jinja2.TemplateError as exc:
        # Runtime errors (an undefined name under StrictUndefined) carry no position.
        raise RenderError(f"{template_name}: {exc}") from None


def render_report(
    report: ReportSpec,
    aggregations: Mapping[str, AggregationState],
    source: Source | None,
    env: jinja2.Environment,
) -> dict[str, str]:
    """A report's pages in memory: site-relative file name -> content."""
    context = report_context(report, aggregations, source)
    pages = {}
    for fmt in report.formats:
        if fmt not in _RENDERED_FORMATS:
            raise RenderError(
                f"{report.path}: format {fmt!r} cannot be rendered yet; "
                f"use {' or '.join(_RENDERED_FORMATS)}"
            )
        name = f"{report.name}{FORMAT_SUFFIXES[fmt]}"
        pages[name] = _render(env, f"{report.template}.{_EXTENSIONS[fmt]}.j2", context)
    return pages


def render_index(
    reports: Sequence[ReportSpec],
    aggregations: Mapping[str, AggregationState],
    source: Source | None,
    env: jinja2.Environment,
) -> dict[str, str]:
    """``index.html`` and ``index.md`` listing every report."""
    context = index_context(reports, aggregations, source)
    return {name: _render(env, f"{name}.j2", context) for name in INDEX_FILES}


# -- writing the site -----------------------------------------------------------------


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def write_site_files(site_dir: Path, files: Mapping[str, str]) -> dict[str, str]:
    """Write each file atomically; return name -> sha256 of what was written."""
    hashes = {}
    for name in sorted(files):
        atomic_write_text(site_dir / name, files[name])
        hashes[name] = content_hash(files[name])
    return hashes


def remove_site_files(site_dir: Path, names: Iterable[str]) -> None:
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            (site_dir / name).unlink()


def clean_partial_writes(site_dir: Path) -> None:
    """Remove temporary files left by an interrupted atomic write (``.<name>.*.tmp``)."""
    if site_dir.is_dir():
        for leftover in site_dir.glob(".*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
