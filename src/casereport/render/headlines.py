"""What a report page shows first: its headline tiles, and its aggregations in sections
(each ``for_each`` family's combined table before its items), and the index's headline
tile of each report. The parts themselves are made in ``tiles`` and ``families``; this
module lays them out in page order, with the page's ids (made by the caller's
``html_id``, so the index links to the ids the report page has).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from casereport.definitions.expand import ReportSpec
from casereport.render.families import family, family_title, runs
from casereport.render.tiles import family_figures, figures, page_figures, tile
from casereport.state.model import AggregationState

__all__ = ["IdMaker", "headlines", "index_headline"]

#: Makes an id unique on a page: the wanted id, and the ids already taken (updated).
IdMaker = Callable[[str, set[str]], str]


def headlines(
    report: ReportSpec,
    states: Mapping[str, AggregationState],
    entries: Sequence[dict[str, Any]],
    taken: set[str],
    html_id: IdMaker,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The page's headline tiles (one per aggregation, one per ``for_each`` family) and
    its sections: each family's combined table with its items, or plain aggregations.
    ``entries``: the aggregations' contexts, whose figures the tiles show."""
    headline: list[dict[str, Any]] = []
    sections: list[dict[str, Any]] = []
    position = 0
    for is_family, specs in runs(report.aggregations):
        chunk = list(entries[position : position + len(specs)])
        position += len(specs)
        if not is_family:
            for spec, entry in zip(specs, chunk, strict=True):
                figs = page_figures(spec, states.get(spec.address), entry)
                headline.append(tile(spec.title, f"#{entry['id']}", entry["id"], figs))
            sections.append({"family": None, "aggregations": chunk})
            continue
        family_id = html_id(f"{specs[0].aggregation_id}-all", taken)
        ids = {spec.address: entry["id"] for spec, entry in zip(specs, chunk, strict=True)}
        table = family(specs, states, ids, family_id)
        summed = family_figures(
            [
                page_figures(spec, states.get(spec.address), entry)
                for spec, entry in zip(specs, chunk, strict=True)
            ]
        )
        headline.append(tile(table["title"], f"#{family_id}", family_id, summed))
        sections.append({"family": table, "aggregations": chunk})
    return headline, sections


def index_headline(
    report: ReportSpec,
    aggregations: Mapping[str, AggregationState],
    entries: Sequence[Mapping[str, Any]],
    page: str,
    has_html: bool,
    taken: set[str],
    html_id: IdMaker,
) -> dict[str, Any] | None:
    """The report's first headline tile (its first aggregation, or its first ``for_each``
    family's sum) for the index: one tile per report keeps an index of 1,000 reports light.
    ``taken``: the report page's ids of its aggregations, so a family's table gets the id
    it has there."""
    if not report.aggregations:
        return None
    is_family, specs = runs(report.aggregations)[0]
    count = len(specs) if is_family else 1
    # The rows' figures have no series: the tile's sparkline needs them all.
    members = [figures(spec, aggregations.get(spec.address)) for spec in specs[:count]]
    figs = family_figures(members) if is_family else members[0]
    title = family_title(specs) if is_family else specs[0].title
    target = html_id(f"{specs[0].aggregation_id}-all", taken) if is_family else entries[0]["id"]
    anchor = f"#{target}" if has_html else ""
    return tile(title, f"{page}{anchor}", f"{report.name}-headline", figs)
