"""Headline tiles: each aggregation's total, its change against the comparison run and a
sparkline of its totals, at the top of a report page and on the index.

The run compared with is the one ``compare:`` picks (``History.compared_index``): the
previous run, or the run nearest to that long before. A ``for_each`` family gets one tile
for the sum of its items (its combined table, below the tiles, has one row per item).

``better: lower | higher`` makes a change good or bad; the change always carries its
sign and an arrow, and a word ("better", "worse"), so colour is never the only sign of
it. Like the tables, the tiles come ready-made (``tiles_html``, ``tiles_md``): 1,000
reports of 10 aggregations are 10,000 tiles, too many for a Jinja2 expression per field.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from math import floor
from typing import Any

from markupsafe import Markup, escape

from casereport.definitions.expand import AggregationSpec
from casereport.definitions.reading import COMPARE_PREVIOUS
from casereport.numbers import count_of
from casereport.render.charts import labelled_svg
from casereport.render.compare import duration_words
from casereport.render.filters import delta, delta_percent, md_cell, number, spark, weekday
from casereport.state.comparable import comparable_history
from casereport.state.model import AggregationState

__all__ = ["Change", "Figures", "change", "family_figures", "figures", "tile", "tiles_markup"]

# The sparkline's drawing box; the image is stretched to the tile's width.
_SPARK_WIDTH = 120
_SPARK_HEIGHT = 32
_SPARK_ATTRIBUTES = (
    f'class="spark" viewBox="0 0 {_SPARK_WIDTH} {_SPARK_HEIGHT}" preserveAspectRatio="none"'
)


@dataclass(frozen=True, slots=True)
class Figures:
    """What a tile shows of one aggregation (or the sum of a family): None ``total`` when
    nothing was fetched; ``compared`` the run compared with as ``(fetched_at, total)``;
    ``series`` the totals of the earlier runs and this one, oldest first."""

    total: float | None
    fetched_at: str | None
    compared: tuple[str, float] | None
    series: tuple[float, ...]
    compare: str
    better: str | None
    items: int = 0  # a family's item count (0 for one aggregation)
    fetched_items: int = 0
    # The series as a text sparkline when it was drawn already (the trend's total line,
    # on the same scale), else None: drawn by ``tile``.
    spark_text: str | None = None


_NO_MARKUP = Markup()


def figures(
    spec: AggregationSpec, state: AggregationState | None, *, series: bool = True
) -> Figures:
    """One aggregation's figures, compared as its ``compare:`` says; ``series``: with the
    totals of every run (the sparkline), else only this one (the index's table rows)."""
    reading = spec.reading
    if state is None:
        return Figures(None, None, None, (), reading.compare, reading.better)
    total = float(state.result["total"])
    history = comparable_history(state)
    seconds = reading.compare_seconds
    compared: tuple[str, float] | None = None
    if seconds is None:  # the previous run: the newest in the stored columns, no split
        stamp, before = history.latest_fetched_at(), history.latest_total()
        if stamp is not None and before is not None:
            compared = (stamp, float(before))
    else:
        index = history.compared_index(state.fetched_at, seconds)
        if index is not None:
            compared = (history.stamps()[index], float(history.total_at(index)))
    return Figures(
        total,
        state.fetched_at,
        compared,
        (*history.totals(), total) if series else (total,),
        reading.compare,
        reading.better,
    )


def page_figures(
    spec: AggregationSpec, state: AggregationState | None, page: Mapping[str, Any]
) -> Figures:
    """``figures(spec, state)`` read from the aggregation's page context (``page``, made by
    ``context.aggregation_context`` from that state): the run it compared with and the
    totals its trend drew are found there, not read from the history a second time."""
    trend = page["trend"]
    line = trend["series"][0] if trend is not None else None
    # Not fetched, or no earlier run (no trend): there is nothing to read twice.
    if state is None or line is None or line["kind"] != "total":
        return figures(spec, state)
    previous = page["previous"]
    reading = spec.reading
    return Figures(
        page["total"],
        page["fetched_at"],
        None if previous is None else (previous["fetched_at"], previous["total"]),
        tuple(line["values"]),
        reading.compare,
        reading.better,
        spark_text=line["spark"],
    )


def family_figures(members: Sequence[Figures]) -> Figures:
    """A family's figures: the sums of its fetched items. It is compared only when every
    fetched item has a run to compare with (a partial sum would show a change that is not
    one); the series adds the items' runs newest first, as far back as every item goes."""
    first = members[0]
    fetched = [m for m in members if m.total is not None]
    if not fetched:
        return Figures(None, None, None, (), first.compare, first.better, len(members), 0)
    compared = None
    if all(m.compared is not None for m in fetched):
        compared = (
            min(m.compared[0] for m in fetched if m.compared),
            sum(m.compared[1] for m in fetched if m.compared),
        )
    depth = min(len(m.series) for m in fetched)
    series = tuple(sum(m.series[len(m.series) - depth + i] for m in fetched) for i in range(depth))
    return Figures(
        sum(m.total for m in fetched if m.total is not None),
        max(m.fetched_at for m in fetched if m.fetched_at),
        compared,
        series,
        first.compare,
        first.better,
        len(members),
        len(fetched),
    )


def short_day(stamp: str, fetched_at: str | None) -> str:
    """The run compared with by its day, as the aggregation's own sections name it
    (``Mon 30 Nov``), with its year when that is not this run's."""
    return weekday(stamp, year=fetched_at is not None and stamp[:4] != fetched_at[:4])


@functools.lru_cache(maxsize=64)
def _spark_format(count: int) -> str:
    """Path data of ``count`` evenly spaced points, a ``%s`` for each height: the x
    positions baked in once (a tile is drawn 10,000 times on a large site)."""
    step = (_SPARK_WIDTH - 4) / (count - 1)
    return "M" + " L".join(f"{round(2 + i * step)} %s" for i in range(count))


# Each height as text, by pixels above the lowest point: "29" (0 px) up to "3".
_SPARK_HEIGHTS = tuple(str(_SPARK_HEIGHT - 3 - pixels) for pixels in range(_SPARK_HEIGHT - 5))
_SPARK_RANGE = _SPARK_HEIGHT - 6


def _spark_path(values: Sequence[float], low: float, high: float) -> str:
    """SVG path data of a line through ``values``, ``low`` to ``high`` (their least and
    greatest) on the box's height (a flat line across the middle when they are equal)."""
    if high == low:
        return _spark_format(len(values)) % ((str(_SPARK_HEIGHT // 2),) * len(values))
    scale = _SPARK_RANGE / (high - low)
    # floor(x + 0.5) rounds to the nearest pixel: x is never below 0 (nothing is below low).
    offset = 0.5 - low * scale
    heights = tuple([_SPARK_HEIGHTS[floor(v * scale + offset)] for v in values])
    return _spark_format(len(values)) % heights


def _sparkline(
    figure_id: str, title: str, values: Sequence[float], low: float, high: float
) -> Markup:
    """The tile's sparkline image of ``values`` (two or more, ``low`` to ``high``), with
    its text alternative."""
    summary = (
        f"{len(values)} runs: from {number(values[0])} to {number(values[-1])}, "
        f"lowest {number(low)}, highest {number(high)}."
    )
    content = f'<path class="line" d="{_spark_path(values, low, high)}"/>'
    caption = f"Totals over the last {len(values)} runs: {title}"
    return labelled_svg(_SPARK_ATTRIBUTES, figure_id, "s", caption, summary, content)


@dataclass(frozen=True, slots=True)
class Change:
    """A total's change against the run compared with, in numbers and in words."""

    change: float | None = None
    ratio: float | None = None
    direction: str | None = None  # up, down or flat
    verdict: str | None = None  # good, bad or neutral
    text: str = ""  # "▲ +12 (+4.2%)"
    verdict_text: str = ""  # "better", "worse" or nothing
    compared_text: str = ""  # "vs Mon 30 Nov", "no run near 7 days ago", ...

    @property
    def cell(self) -> str:
        """The change for a table cell: "▲ +12 (+4.2%), worse", or why there is none."""
        if not self.text:
            return "first run" if self.compared_text == _NOTHING_YET else self.compared_text
        return f"{self.text}, {self.verdict_text}" if self.verdict_text else self.text


_NOTHING_YET = "nothing to compare with yet"
_ARROWS = {"up": "▲", "down": "▼", "flat": "="}


def change(figs: Figures) -> Change:
    """How ``figs``' total moved since the run compared with (judged by ``better:``)."""
    total = figs.total
    if total is None:
        return Change(compared_text="not fetched yet")
    if figs.compared is None:
        if figs.compare != COMPARE_PREVIOUS:
            return Change(compared_text=f"no run near {duration_words(figs.compare)} ago")
        return Change(compared_text=_NOTHING_YET)
    stamp, before = figs.compared
    moved = total - before
    ratio = moved / before if before else None
    direction = "up" if moved > 0 else "down" if moved < 0 else "flat"
    text = f"{_ARROWS[direction]} {delta(moved)}" + (
        f" ({delta_percent(ratio)})" if ratio is not None and moved else ""
    )
    verdict, verdict_text = "neutral", ""
    if figs.better is not None and moved:
        good = (moved < 0) == (figs.better == "lower")
        verdict, verdict_text = ("good", "better") if good else ("bad", "worse")
    return Change(
        moved,
        ratio,
        direction,
        verdict,
        text,
        verdict_text,
        f"vs {short_day(stamp, figs.fetched_at)}",
    )


def tile(title: str, link: str, figure_id: str, figs: Figures) -> dict[str, Any]:
    """A tile's context: the plain figures and ready-made ``html`` and ``md`` forms.

    ``link`` is where its title leads (the aggregation's section); ``figure_id`` names its
    sparkline's ids, unique on the page.
    """
    total = figs.total
    moved = change(figs)
    if figs.items and total is not None:
        fetched = figs.fetched_items
        scope = (
            f"sum of {count_of(fetched, 'item')}"
            if fetched == figs.items
            else (
                f"sum of {fetched} of {count_of(figs.items, 'item')} (the others not fetched yet)"
            )
        )
    else:
        scope = count_of(figs.items, "item") if figs.items else ""
    values = figs.series
    text_spark, spark_svg = "", _NO_MARKUP
    if len(values) > 1:  # a line of one run is no line
        low, high = min(values), max(values)  # once, for both sparklines and the summary
        drawn = figs.spark_text
        text_spark = drawn if drawn is not None else spark(values, low, high, True)
        if total is not None:
            spark_svg = _sparkline(figure_id, title, values, low, high)
    context: dict[str, Any] = {
        "title": title,
        "link": link,
        "fetched": total is not None,
        "total": total,
        "fetched_at": figs.fetched_at,
        "compared": (
            None
            if figs.compared is None
            else {"fetched_at": figs.compared[0], "total": figs.compared[1]}
        ),
        "change": moved.change,
        "change_ratio": moved.ratio,
        "direction": moved.direction,
        "verdict": moved.verdict,
        "better": figs.better,
        "change_text": moved.text,
        "verdict_text": moved.verdict_text,
        "compared_text": moved.compared_text,
        "items": figs.items,
        "scope": scope,
        "series": list(values),
        "spark": text_spark,
        "spark_svg": spark_svg,
    }
    context["html"] = _tile_html(context)
    context["md"] = _tile_md(context)
    return context


# Titles, links ("#agg_0") and the runs compared with ("vs Mon 30 Nov") repeat across a
# site's 10,000 tiles: each text is escaped once. ``typed``: a Markup equal to a plain
# text is already markup, and must not share the text's escaped form.
@functools.lru_cache(maxsize=65536, typed=True)
def _escaped_html(text: str) -> str:
    return str(escape(text))


@functools.lru_cache(maxsize=65536, typed=True)
def _md_cell(text: str) -> str:
    return md_cell(text)


def _tile_html(t: dict[str, Any]) -> Markup:
    total = number(t["total"]) if t["fetched"] else "–"
    word = "case" if t["total"] == 1 else "cases"
    scope = f'<p class="tile-scope muted">{_escaped_html(t["scope"])}</p>' if t["scope"] else ""
    if t["change_text"]:
        verdict = f' <span class="verdict">{t["verdict_text"]}</span>' if t["verdict_text"] else ""
        change = (
            f'<p class="tile-change {t["verdict"]}">'
            f'<span class="delta">{t["change_text"]}</span>{verdict}</p>'
        )
    else:
        change = ""
    return Markup(
        f'<li class="tile"><a class="tile-title" href="{_escaped_html(t["link"])}">'
        f"{_escaped_html(t['title'])}</a>{scope}"
        f'<p class="tile-total"><strong>{total}</strong>{" " + word if t["fetched"] else ""}</p>'
        f'{change}<p class="tile-vs muted">{_escaped_html(t["compared_text"])}</p>'
        f"{t['spark_svg']}</li>"
    )


def _tile_md(t: dict[str, Any]) -> str:
    total = number(t["total"]) if t["fetched"] else "not fetched"
    change = t["change_text"] or "–"
    if t["verdict_text"]:
        change += f", {t['verdict_text']}"
    title = _md_cell(t["title"] + (f" ({t['scope']})" if t["scope"] else ""))
    compared = _md_cell(t["compared_text"].removeprefix("vs "))
    trend = f"`{t['spark']}`" if t["spark"] else "–"
    return f"| {title} | {total} | {change} | {compared} | {trend} |"


def tiles_markup(tiles: Sequence[dict[str, Any]]) -> tuple[Markup, str]:
    """The tiles as one HTML list's items and as Markdown table rows."""
    return Markup("\n".join([t["html"] for t in tiles])), "\n".join([t["md"] for t in tiles])


def clear_caches() -> None:
    """Forget memoised sparkline layouts and escaped texts (for benchmarks and tests)."""
    _spark_format.cache_clear()
    _escaped_html.cache_clear()
    _md_cell.cache_clear()
