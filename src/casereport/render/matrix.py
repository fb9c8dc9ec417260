"""Groups of several fields as tables a reader can scan.

Two fields (``group_by: [status, priority]``) read as a matrix: the first field's values
down, the second's across, a count per cell, with row and column totals. Three or more
read as a table with one column per field. Either needs every group to split into one
value per field (``reading.split_group``); otherwise the page keeps the plain list.

Both axes follow ``order:`` field by field (``reading.order_key`` of that field, by the
axis totals), so the matrix agrees with the list, the chart and the trend.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from markupsafe import Markup, escape

from casereport.definitions.reading import Reading, display_label, order_key, split_group
from casereport.render.filters import judged, md_cell, number
from casereport.render.words import field_words

#: A link for a group's values of some of the fields: ``(fields, raw) -> URL or None``.
Linker = Callable[[Sequence[str], str], "str | None"]


def split_rows(fields: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, ...]]:
    """Each row's value per field, or ``[]`` when some group does not split."""
    parts = []
    for row in rows:
        split = split_group(row["group"], fields)
        if split is None:
            return []
        parts.append(split)
    return parts


def field_headers(fields: Sequence[str]) -> list[str]:
    """One column header per field: ``[status, priority]`` -> ``["Status", "Priority"]``."""
    return [(words[:1].upper() + words[1:]) for words in map(field_words, fields)]


def _linked(text: str, url: str | None) -> str:
    return f'<a href="{escape(url)}">{text}</a>' if url else text


def _md_linked(text: str, url: str | None) -> str:
    return f"[{text}]({url})" if url else text


def _axis(field: str, values: dict[str, float], reading: Reading) -> list[tuple[str, str, float]]:
    """An axis's values in ``order:``, by their totals: (raw, display label, total)."""
    key = order_key((field,), reading)
    ordered = sorted(values, key=lambda raw: key(raw, values[raw]))
    return [(raw, display_label(raw, (field,), reading), values[raw]) for raw in ordered]


def matrix(
    fields: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    reading: Reading,
    *,
    caption: str,
    compared: bool,
    truncated: bool,
    link: Linker | None = None,
) -> dict[str, Any] | None:
    """The matrix of a two-field aggregation's ``rows`` (see ``aggregation_context``), or
    None when some group does not split into two values. A combination that is not listed
    had no cases, unless groups past the limit may be missing (``truncated``): then its
    count is unknown (``–``). ``compared``: show each cell's change (when known, not 0)."""
    parts = split_rows(fields, rows)
    if not parts or len(fields) != 2:
        return None
    across_field, down_field = fields[1], fields[0]
    cells: dict[tuple[str, str], Mapping[str, Any]] = {}
    down_totals: dict[str, float] = {}
    across_totals: dict[str, float] = {}
    for (down, across), listed in zip(parts, rows, strict=True):
        cells[down, across] = listed
        down_totals[down] = down_totals.get(down, 0.0) + listed["count"]
        across_totals[across] = across_totals.get(across, 0.0) + listed["count"]
    downs = _axis(down_field, down_totals, reading)
    acrosses = _axis(across_field, across_totals, reading)
    missing = "–" if truncated else "0"
    better = reading.better
    header_cells = "".join(
        f'<th scope="col" class="num">'
        f"{_linked(str(escape(label)), link((across_field,), raw) if link else None)}</th>"
        for raw, label, _ in acrosses
    )
    corner = " / ".join(field_headers(fields))
    html = [
        f'<table class="matrix">\n<caption>{escape(caption)}</caption>\n'
        f'<thead><tr><th scope="col">{escape(corner)}</th>{header_cells}'
        '<th scope="col" class="num">Total</th></tr></thead>\n<tbody>'
    ]
    md = [
        f"| {md_cell(corner)} | "
        + " | ".join(md_cell(label) for _, label, _ in acrosses)
        + " | Total |",
        "|---|" + "---:|" * (len(acrosses) + 1),
    ]
    grid: list[list[dict[str, Any]]] = []
    for down, down_label, down_total in downs:
        line = []
        html_cells = []
        md_cells = []
        for across, _, _ in acrosses:
            row = cells.get((down, across))
            if row is None:
                line.append({"group": None, "count": None, "change": None, "link": None})
                html_cells.append(f'<td class="num muted">{missing}</td>')
                md_cells.append(missing)
                continue
            count_text = number(row["count"])
            change = row["change"]
            change_text, css = judged(change, better)
            html_change = md_change = ""
            if change or (compared and change is None):  # not 0: unknown (–) or a change
                html_change = f'<span class="chg{" " + css if css else ""}">{change_text}</span>'
                md_change = f" ({change_text})"
            line.append(
                {
                    "group": row["group"],
                    "count": row["count"],
                    "change": change,
                    "link": row["link"],
                }
            )
            html_cells.append(
                f'<td class="num">{_linked(count_text, row["link"])}{html_change}</td>'
            )
            md_cells.append(_md_linked(count_text, row["link"]) + md_change)
        grid.append(line)
        down_cell = _linked(str(escape(down_label)), link((down_field,), down) if link else None)
        html.append(
            f'<tr><th scope="row">{down_cell}</th>{"".join(html_cells)}'
            f'<td class="num total">{number(down_total)}</td></tr>'
        )
        md.append(f"| {md_cell(down_label)} | {' | '.join(md_cells)} | {number(down_total)} |")
    grand = sum(down_totals.values())
    column_totals = "".join(f'<td class="num">{number(t)}</td>' for _, _, t in acrosses)
    html.append(
        f'</tbody>\n<tfoot><tr><th scope="row">Total</th>{column_totals}'
        f'<td class="num">{number(grand)}</td></tr></tfoot>\n</table>'
    )
    md.append(
        "| **Total** | " + " | ".join(number(t) for _, _, t in acrosses) + f" | {number(grand)} |"
    )
    return {
        "row_field": down_field,
        "column_field": across_field,
        "row_values": [{"group": r, "label": lb, "total": t} for r, lb, t in downs],
        "column_values": [{"group": r, "label": lb, "total": t} for r, lb, t in acrosses],
        "cells": grid,
        "total": grand,
        "caption": caption,
        "html": Markup("\n".join(html)),
        "md": "\n".join(md),
    }
