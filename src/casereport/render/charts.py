"""Inline SVG charts: the trend of a result's history, and the bar chart's layout.

The bar chart's rows are built in ``context`` in the same pass over the groups as the
table rows; its layout constants and label shortening live here with the trend.
Both are ready-made fragments (``paths_svg``, ``legend_html``, ``bars_svg``): a Jinja2
expression costs about a microsecond, and 1,000 reports of 10 aggregations of 10 groups
are a million of them. So is each whole ``<svg>`` element (``svg_html``: the image with its
title and text alternative, a dozen expressions per aggregation in a template); the
templates keep the figures around them and their captions. The plain data (``title``,
``summary``, ``trend.series``) is there for templates of one's own.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from math import floor
from typing import Any, cast

from markupsafe import Markup, escape

from casereport.render.filters import date, day, md_cell, number, spark
from casereport.state.history import History

CHART_ROW = 34  # px per bar: a label line, then the bar
CHART_LABEL = 28  # characters of a group label shown in the chart (the table has all)
_TREND_GROUPS = 3
_TREND_WIDTH = 600
_TREND_HEIGHT = 120
_TREND_AXIS = (
    f'<line class="axis" x1="0" y1="{_TREND_HEIGHT - 4}" x2="{_TREND_WIDTH}" '
    f'y2="{_TREND_HEIGHT - 4}"/>\n'
)
_TREND_VIEWBOX = f"0 0 {_TREND_WIDTH} {_TREND_HEIGHT}"
_TREND_ATTRIBUTES = f'class="plot" viewBox="{_TREND_VIEWBOX}" preserveAspectRatio="none"'
_SERIES_CSS = tuple(f"s{i}" for i in range(_TREND_GROUPS + 1))


def clear_caches() -> None:
    """Forget memoised path layouts and label forms (for benchmarks and tests)."""
    _x_positions.cache_clear()
    _path_format.cache_clear()
    _LABELS.clear()


def short_label(label: str, width: int = CHART_LABEL) -> str:
    """A label cut to ``width`` characters with an ellipsis, for the chart."""
    return label if len(label) <= width else label[: width - 1].rstrip() + "…"


# Where a long group label may wrap in a narrow table (after _ - / . in identifiers).
_BREAKS = re.compile(r"([_/.-])(?=[^\s])")
# Group values repeat across a site (statuses, priorities, services): their forms, once each.
_LABELS: dict[str, tuple[str, str, str, str]] = {}
_EMPTY_FORMS = ("(empty)",) * 4


def labelled_svg(
    attributes: str, figure_id: str, kind: str, title: str, summary: str, content: str
) -> Markup:
    """An ``<svg>`` image labelled by its title and its text alternative (``<desc>``), whose
    ids are ``figure_id`` and ``-{kind}t`` / ``-{kind}d``; ``attributes`` and ``content``
    are markup, ``title`` and ``summary`` text."""
    ident = escape(figure_id)
    return Markup(
        f'<svg {attributes} role="img" aria-labelledby="{ident}-{kind}t {ident}-{kind}d" '
        f'focusable="false">\n<title id="{ident}-{kind}t">{escape(title)}</title>\n'
        f'<desc id="{ident}-{kind}d">{escape(summary)}</desc>\n{content}\n</svg>'
    )


def label_forms(label: str) -> tuple[str, str, str, str]:
    """A group label escaped for HTML, as a table cell (may wrap), as a Markdown table
    cell, and cut short for the chart (escaped); ``(empty)`` for the empty label."""
    forms = _LABELS.get(label)
    if forms is not None:
        return forms
    if not label:
        return _EMPTY_FORMS
    shown = str(escape(label))
    short = shown if len(label) <= CHART_LABEL else str(escape(short_label(label)))
    forms = (shown, _BREAKS.sub(r"\1<wbr>", shown), md_cell(label), short)
    if len(_LABELS) < 65536:
        _LABELS[label] = forms
    return forms


@functools.lru_cache(maxsize=64)
def _x_positions(count: int) -> tuple[int, ...]:
    if count == 1:
        return (_TREND_WIDTH // 2,)
    step = (_TREND_WIDTH - 8) / (count - 1)
    return tuple(round(4 + i * step) for i in range(count))


@functools.lru_cache(maxsize=64)
def _path_format(count: int) -> str:
    # "M4 %s L24 %s ...": the x positions baked in, one % fills in the heights (a third
    # quicker than str.format, which reads its template again at every call).
    return "M" + " L".join(f"{x} %s" for x in _x_positions(count))


# Each height on the plot as text, by pixels above the axis: "116" (0 px) up to "4".
_HEIGHTS = tuple(str(_TREND_HEIGHT - 4 - pixels) for pixels in range(_TREND_HEIGHT - 7))


def _path(values: Sequence[float | None], top: float, low: float, complete: bool) -> str:
    """SVG path data of a line through ``values`` (a gap where a value is unknown), the
    lowest of them ``low``; ``complete``: no value is unknown (one unbroken line)."""
    base = _TREND_HEIGHT - 4
    scale = (_TREND_HEIGHT - 8) / top if top > 0 else 0.0
    if complete and low >= 0:
        # The common case: counts, no gap. int(v * scale + 0.5) rounds to the nearest
        # pixel, 0 to 112 here (no value is above ``top``), where floor() is the same and
        # the quicker call, and the text of each height is made once.
        heights = tuple([_HEIGHTS[floor(v * scale + 0.5)] for v in values])  # type: ignore[operator]
        return _path_format(len(values)) % heights
    parts = []
    pen_down = False
    for x, value in zip(_x_positions(len(values)), values, strict=True):
        if value is None:
            pen_down = False
            continue
        parts.append(f"{'L' if pen_down else 'M'}{x} {base - int(value * scale + 0.5)}")
        pen_down = True
    return " ".join(parts)


def trend(
    title: str,
    history: History,
    stamps: Sequence[str],
    earlier_totals: Sequence[float],
    fetched_at: str,
    total: float,
    rows: Sequence[Mapping[str, Any]],
    limit: int,
    figure_id: str = "",
) -> dict[str, Any] | None:
    """The trend of the total and the top groups: earlier results, then this one
    (``figure_id``: the aggregation's id on the page, which ``svg_html`` names it by)."""
    if not earlier_totals:
        return None
    totals: list[float | None] = [*earlier_totals, total]
    # Each series: label, kind, values, and whether every value is known (the common case,
    # found once here: each scan for None compares every value).
    series_values: list[tuple[str, str, list[float | None], bool]] = [
        ("Total", "total", totals, True)
    ]
    # A group missing from a run had no cases then, unless that run recorded as many
    # groups as it could hold (its limit, or its largest few in an entry written before
    # entries were complete): then it may have been cut, and its count is unknown.
    recorded: list[int] | None = None
    capacities: list[int] | None = None
    for row in rows:
        if len(series_values) > _TREND_GROUPS:
            break
        label = row["label"]
        values = history.group_counts(label)
        if values is None:
            continue
        complete = None not in values
        if not complete:
            recorded = recorded or history.recorded_counts()
            capacities = capacities or history.capacities(limit)
            values = [
                count if count is not None else None if held >= capacity else 0.0
                for count, held, capacity in zip(values, recorded, capacities, strict=True)
            ]
            complete = None not in values
        values.append(row["count"])
        series_values.append((label, "group", values, complete))
    ranges = []
    for _, _, values, complete in series_values:
        known = cast(list[float], values) if complete else [v for v in values if v is not None]
        ranges.append((known[0], known[-1], min(known), max(known)))
    top = max([high for _, _, _, high in ranges])
    series = []
    summaries = []
    paths = []
    legend = []
    md_rows = []
    for index, ((label, kind, values, complete), (first, last, low, high)) in enumerate(
        zip(series_values, ranges, strict=True)
    ):
        css = _SERIES_CSS[index]
        path = _path(values, top, low, complete)
        sparks = spark(values, low, high, complete)
        series.append(
            {
                "label": label,
                "kind": kind,
                "css": css,
                "values": values,
                "first": first,
                "last": last,
                "path": path,
                "spark": sparks,
            }
        )
        shown, _, md_label, _ = label_forms(label)
        first_text, last_text = number(first), number(last)
        md_rows.append(f"| {md_label} | `{sparks}` | {first_text} | {last_text} |")
        summaries.append(f"{label or '(empty)'} from {first_text} to {last_text}")
        paths.append(f'<path class="line {css}" d="{path}"/>')
        legend.append(
            f'<li><svg width="26" height="10" aria-hidden="true" focusable="false">'
            f'<line class="line {css}" x1="1" y1="5" x2="25" y2="5"/></svg>'
            f"{shown}: {first_text} → {last_text}</li>"
        )
    runs = len(totals)
    start = stamps[0]
    legend.append(f'<li class="muted">Scale 0 to {number(top)}</li>')
    caption_title = f"Trend over the last {runs} runs: {title}"
    summary = (
        f"Over {runs} runs from {date(start)} to {date(fetched_at)}: "
        f"{'; '.join(summaries)}. The vertical axis runs from 0 to {number(top)}."
    )
    # The total is drawn last, on top of the groups.
    paths_svg = Markup(_TREND_AXIS + "\n".join(reversed(paths)))
    return {
        "runs": runs,
        "caption": f"Trend over the last {runs} runs ({day(start)} – {day(fetched_at)})",
        "viewbox": _TREND_VIEWBOX,
        "start": start,
        "end": fetched_at,
        "width": _TREND_WIDTH,
        "height": _TREND_HEIGHT,
        "max": top,
        "title": caption_title,
        "summary": summary,
        "series": series,
        "paths_svg": paths_svg,
        "svg_html": labelled_svg(
            _TREND_ATTRIBUTES, figure_id, "t", caption_title, summary, paths_svg
        ),
        "legend_html": Markup("\n".join(legend)),
        "table_md": "\n".join(md_rows),
    }
