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
from collections.abc import Sequence
from datetime import UTC, datetime
from math import ceil, floor, log10
from typing import Any, NamedTuple, cast

from markupsafe import Markup, escape

from casereport.render.filters import MONTHS, date, day, md_cell, number, spark
from casereport.state.history import History, epoch

CHART_ROW = 34  # px per bar: a label line, then the bar
CHART_LABEL = 28  # characters of a group label shown in the chart (the table has all)
TREND_GROUPS = 3  # groups a trend draws by default (``trend:`` may list up to 6)
TREND_GROUPS_LISTED = 6
_TREND_WIDTH = 600
_TREND_HEIGHT = 120
_TREND_AXIS = (
    f'<line class="axis" x1="0" y1="{_TREND_HEIGHT - 4}" x2="{_TREND_WIDTH}" '
    f'y2="{_TREND_HEIGHT - 4}"/>\n'
)
# Pixels from the axis (4 px above the bottom) to the top of the scale: 16 px are left
# above it, for the top tick's label to sit above its grid line as the others do.
_PLOT_RANGE = _TREND_HEIGHT - 20
_TREND_VIEWBOX = f"0 0 {_TREND_WIDTH} {_TREND_HEIGHT}"
_TREND_ATTRIBUTES = f'class="tplot" width="100%" height="{_TREND_HEIGHT + 22}"'
_SERIES_CSS = tuple(f"s{i}" for i in range(TREND_GROUPS_LISTED + 1))


def clear_caches() -> None:
    """Forget memoised path layouts and label forms (for benchmarks and tests)."""
    _x_positions.cache_clear()
    _time_layout.cache_clear()
    _path_format.cache_clear()
    _height_texts.cache_clear()
    nice_scale.cache_clear()
    _axes.cache_clear()
    _escaped.cache_clear()
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
    ident = _escaped(figure_id)
    return Markup(
        f'<svg {attributes} role="img" aria-labelledby="{ident}-{kind}t {ident}-{kind}d" '
        f'focusable="false">\n<title id="{ident}-{kind}t">{_escaped(title)}</title>\n'
        f'<desc id="{ident}-{kind}d">{escape(summary)}</desc>\n{content}\n</svg>'
    )


@functools.lru_cache(maxsize=8192, typed=True)  # ids and titles repeat across a site's reports
def _escaped(text: str) -> str:
    # typed: Markup (left as it is) and equal plain text (escaped) are cached apart.
    return str(escape(text))


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
    """``count`` points spread evenly over the plot (runs whose times are not known apart)."""
    if count == 1:
        return (_TREND_WIDTH // 2,)
    step = (_TREND_WIDTH - 8) / (count - 1)
    return tuple(round(4 + i * step) for i in range(count))


def _epoch(stamp: str) -> float | None:
    try:
        return epoch(stamp)  # a stamp without a zone is UTC, as stored
    except ValueError:
        return None


@functools.lru_cache(maxsize=256)  # the runs of one apply share their stamps
def _time_layout(stamps: tuple[str, ...]) -> tuple[tuple[int, ...], tuple[tuple[float, str], ...]]:
    """Where each run sits on the time axis (x in the viewBox, by its ``fetched_at``) and
    the axis's date ticks: (x, label) each, a few, evenly spread in time."""
    moments = [_epoch(stamp) for stamp in stamps]
    known = [m for m in moments if m is not None]
    if len(known) != len(stamps) or known[-1] <= known[0]:
        positions = _x_positions(len(stamps))
        return positions, ((float(positions[0]), day(stamps[0])),)
    first, span = known[0], known[-1] - known[0]
    inner = _TREND_WIDTH - 8
    positions = tuple(round(4 + (m - first) / span * inner) for m in known)
    days = span / 86400
    count = 4 if days >= 3 else max(2, min(4, int(days) + 1))
    ticks: list[tuple[float, str]] = []
    for index in range(count):
        moment = datetime.fromtimestamp(first + span * index / (count - 1), tz=UTC)
        label = (
            f"{moment.day} {MONTHS[moment.month - 1]}"
            if days >= 2
            else f"{moment.day} {MONTHS[moment.month - 1]} {moment.hour:02d}:{moment.minute:02d}"
        )
        if not ticks or ticks[-1][1] != label:
            ticks.append((4 + inner * index / (count - 1), label))
    return positions, tuple(ticks)


@functools.lru_cache(maxsize=256)
def _path_format(positions: tuple[int, ...]) -> str:
    # "M4 %s L24 %s ...": the x positions baked in, one % fills in the heights (a third
    # quicker than str.format, which reads its template again at every call).
    return "M" + " L".join(f"{x} %s" for x in positions)


@functools.lru_cache(maxsize=1024)
def nice_scale(top: float) -> tuple[float, tuple[float, ...]]:
    """The vertical axis for values up to ``top``: its end and its ticks, from 0 in steps
    of 1, 2 or 5 times a power of ten (whole numbers: counts), about five of them."""
    if not top > 0:
        return 1.0, (0.0, 1.0)
    rough = top / 5
    magnitude = 10 ** floor(log10(rough)) if rough >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= rough)
    end = ceil(top / step) * step
    return float(end), tuple(float(step * i) for i in range(int(end / step) + 1))


# Each height on the plot as text, by pixels above the axis: "116" (0 px) up to "4".
_HEIGHTS = tuple(str(_TREND_HEIGHT - 4 - pixels) for pixels in range(_TREND_HEIGHT - 7))


# Largest scale end whose heights are tabled: a table is made once per end, and ends are
# few (round numbers: ``nice_scale``), but each holds an entry per whole number below it.
_TABLED_END = 2000


@functools.lru_cache(maxsize=64)
def _height_texts(top: float) -> dict[float | None, str]:
    """The text of the height of each whole number from 0 to ``top`` on a scale ending at
    ``top``, as ``_paths`` computes it (so equal whatever the type of the value looked up);
    empty when ``top`` is not a whole number from 1 to ``_TABLED_END``."""
    if not (1 <= top <= _TABLED_END and top == int(top)):
        return {}
    scale = _PLOT_RANGE / top
    return {v: _HEIGHTS[floor(v * scale + 0.5)] for v in range(int(top) + 1)}


def _path(
    values: Sequence[float | None],
    top: float,
    low: float,
    complete: bool,
    positions: tuple[int, ...] | None = None,
) -> str:
    """SVG path data of a line through ``values`` (a gap where a value is unknown), the
    lowest of them ``low``; ``complete``: no value is unknown (one unbroken line);
    ``positions``: the x of each (evenly spread when not given)."""
    positions = positions or _x_positions(len(values))
    return _paths(values, top, low, complete, positions, _path_format(positions))[0]


def _paths(
    values: Sequence[float | None],
    top: float,
    low: float,
    complete: bool,
    positions: tuple[int, ...],
    line_format: str,
) -> tuple[str, str]:
    """The line's path data (see ``_path``) and its points': a zero-length stroke at each
    known value, which a round cap draws as a dot that stays round however the plot is
    stretched. ``line_format``: ``_path_format(positions)``, found once per chart."""
    scale = _PLOT_RANGE / top if top > 0 else 0.0
    if complete and low >= 0:
        # The common case: counts, no gap. Whole numbers read their height from a table,
        # with no arithmetic per value.
        try:
            heights = tuple(map(_height_texts(top).__getitem__, values))
        except KeyError:  # a fraction (or a scale no table is kept for)
            # int(v * scale + 0.5) rounds to the nearest pixel, 0 to 100 here (no value is
            # above ``top``), where floor() is the same and the quicker call, and the text
            # of each height is made once.
            heights = tuple([_HEIGHTS[floor(v * scale + 0.5)] for v in values])  # type: ignore[operator]
        line = line_format % heights
        # The points are the line's vertices, each its own zero-length stroke: "M4 78 L25
        # 80" -> "M4 78h0M25 80h0" (a replace costs a fifth of formatting them again).
        return line, line.replace(" L", "h0M") + "h0"
    parts = []
    points = []
    pen_down = False
    for x, value in zip(positions, values, strict=True):
        if value is None:
            pen_down = False
            continue
        y = _TREND_HEIGHT - 4 - int(value * scale + 0.5)
        parts.append(f"{'L' if pen_down else 'M'}{x} {y}")
        points.append(f"M{x} {y}h0")
        pen_down = True
    return " ".join(parts), "".join(points)


@functools.lru_cache(maxsize=1024)  # scales and run times repeat across a site
def _axes(
    ticks_y: tuple[float, ...], end: float, ticks_x: tuple[tuple[float, str], ...]
) -> tuple[str, str]:
    """The plot's grid (a line per y tick) inside the stretched plot, and the ticks' text
    outside it, in pixels (text in a stretched viewBox would stretch too)."""
    scale = _PLOT_RANGE / end
    base = _TREND_HEIGHT - 4
    heights = [base - round(t * scale) for t in ticks_y]
    grid = "".join(f"M0 {y}H{_TREND_WIDTH}" for y in heights[1:])
    y_text = "".join(
        f'<text class="tick" x="4" y="{y - 3}">{number(t)}</text>'
        for t, y in zip(ticks_y, heights, strict=True)
        if t
    )
    last = len(ticks_x) - 1
    x_text = "".join(
        f'<text class="tick" x="{x / _TREND_WIDTH:.1%}" y="{_TREND_HEIGHT + 15}" '
        f'text-anchor="{"start" if i == 0 and last else "end" if i == last and last else "middle"}"'
        f">{label}</text>"
        for i, (x, label) in enumerate(ticks_x)
    )
    return (
        f'<svg class="plot" width="100%" height="{_TREND_HEIGHT}" viewBox="{_TREND_VIEWBOX}" '
        f'preserveAspectRatio="none" aria-hidden="true">\n<rect class="bg" width="{_TREND_WIDTH}" '
        f'height="{_TREND_HEIGHT}"/>\n<path class="grid" d="{grid}"/>\n{_TREND_AXIS}',
        f'</svg>\n<g aria-hidden="true">{y_text}{x_text}</g>',
    )


class _Series(NamedTuple):
    """A line the trend draws, with what is found once as its values are read."""

    label: str
    group: str | None  # the raw value (None: the total)
    kind: str  # "total" or "group"
    values: list[float | None]
    # Every value is known (the common case: each scan for None compares every value).
    complete: bool
    # Its first, last, lowest and highest known values.
    first: float
    last: float
    low: float
    high: float


def trend(
    title: str,
    history: History,
    stamps: Sequence[str],
    earlier_totals: Sequence[float],
    fetched_at: str,
    total: float,
    candidates: Sequence[tuple[str, str, float | None]],
    limit: int,
    figure_id: str = "",
    groups: int = TREND_GROUPS,
) -> dict[str, Any] | None:
    """The trend of the total and of up to ``groups`` groups: earlier results, then this
    one (``figure_id``: the aggregation's id on the page, which ``svg_html`` names it by).

    ``candidates``: the groups that may be drawn, in the order to draw them (``trend:`` or
    the page's order): raw value, display label and this run's count (None if unknown);
    those no earlier run recorded are passed over.
    """
    if not earlier_totals:
        return None
    totals: list[float | None] = [*earlier_totals, total]
    drawn = [
        _Series(
            "Total",
            None,
            "total",
            totals,
            True,
            earlier_totals[0],
            total,
            min(min(earlier_totals), total),
            max(max(earlier_totals), total),
        )
    ]
    # A group missing from a run had no cases then, unless that run recorded as many
    # groups as it could hold (its limit, or its largest few in an entry written before
    # entries were complete): then it may have been cut, and its count is unknown.
    recorded: list[int] | None = None
    capacities: list[int] | None = None
    for raw, label, count in candidates:
        if len(drawn) > groups:
            break
        values = history.group_counts(raw)
        if values is None:
            continue
        complete = count is not None
        if None in values:
            recorded = recorded or history.recorded_counts()
            capacities = capacities or history.capacities(limit)
            values = [
                value if value is not None else None if held >= capacity else 0.0
                for value, held, capacity in zip(values, recorded, capacities, strict=True)
            ]
            complete = complete and None not in values
        values.append(count)
        known = cast(list[float], values) if complete else [v for v in values if v is not None]
        drawn.append(
            _Series(
                label, raw, "group", values, complete, known[0], known[-1], min(known), max(known)
            )
        )
    top = max([line.high for line in drawn])
    end, ticks_y = nice_scale(top)
    positions, ticks_x = _time_layout((*stamps, fetched_at))
    line_format = _path_format(positions)  # the x positions, shared by every line
    series = []
    summaries = []
    paths = []
    legend = []
    md_rows = []
    for index, (label, group, kind, values, complete, first, last, low, high) in enumerate(drawn):
        css = _SERIES_CSS[index]
        path, dots = _paths(values, end, low, complete, positions, line_format)
        sparks = spark(values, low, high, complete)
        series.append(
            {
                "label": label,
                "group": group,
                "kind": kind,
                "css": css,
                "values": values,
                "first": first,
                "last": last,
                "path": path,
                "points": dots,
                "spark": sparks,
            }
        )
        shown, _, md_label, _ = label_forms(label)
        first_text, last_text = number(first), number(last)
        md_rows.append(f"| {md_label} | `{sparks}` | {first_text} | {last_text} |")
        summaries.append(f"{label or '(empty)'} from {first_text} to {last_text}")
        paths.append(f'<path class="line {css}" d="{path}"/><path class="dots {css}" d="{dots}"/>')
        legend.append(
            f'<li><svg width="26" height="10" aria-hidden="true" focusable="false">'
            f'<line class="line {css}" x1="1" y1="5" x2="25" y2="5"/></svg>'
            f"{shown}: {first_text} → {last_text}</li>"
        )
    runs = len(totals)
    start = stamps[0]
    caption_title = f"Trend over the last {runs} runs: {title}"
    summary = (
        f"Over {runs} runs from {date(start)} to {date(fetched_at)}: "
        f"{'; '.join(summaries)}. The vertical axis runs from 0 to {number(end)}."
    )
    plot_start, plot_end = _axes(ticks_y, end, ticks_x)
    # The total is drawn last, on top of the groups.
    paths_svg = Markup(plot_start + "\n".join(reversed(paths)) + plot_end)
    return {
        "runs": runs,
        "caption": f"Trend over the last {runs} runs ({day(start)} – {day(fetched_at)})",
        "viewbox": _TREND_VIEWBOX,
        "start": start,
        "end": fetched_at,
        "width": _TREND_WIDTH,
        "height": _TREND_HEIGHT,
        "max": top,
        "axis_max": end,
        "ticks_y": list(ticks_y),
        "ticks_x": [label for _, label in ticks_x],
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
