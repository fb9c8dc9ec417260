"""``for_each`` families: the aggregations one ``for_each`` expands to, read side by side.

A family (two or more consecutive aggregations with the same aggregation id and a key)
is shown first as one combined table, one row per item and the groups as columns in
the aggregation's ``order:``, with each item's total and the column totals; each item's
own section follows, as for any aggregation. ``sections`` splits a report's aggregations
into runs: a family, or the plain aggregations between families.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup, escape

from casereport.definitions.expand import AggregationSpec
from casereport.definitions.reading import display_label, order_key
from casereport.render.filters import md_cell, number
from casereport.state.model import AggregationState

__all__ = ["MAX_COLUMNS", "family", "family_title", "runs"]

#: Groups shown as columns of a family's table at most (the largest over the family);
#: each item's own table lists every group.
MAX_COLUMNS = 12


def runs(specs: Sequence[AggregationSpec]) -> list[tuple[bool, list[AggregationSpec]]]:
    """The aggregations in order, split into families (``True, items``) and the runs of
    plain aggregations between them (``False, specs``). A ``for_each`` of one item reads
    as a plain aggregation: no table of one row."""
    alike: list[list[AggregationSpec]] = []
    for spec in specs:
        last = alike[-1][0] if alike else None
        if (
            last is not None
            and spec.key is not None
            and last.key is not None
            and (last.aggregation_id == spec.aggregation_id)
        ):
            alike[-1].append(spec)
        else:
            alike.append([spec])
    split: list[tuple[bool, list[AggregationSpec]]] = []
    for run in alike:
        is_family = len(run) > 1
        if not is_family and split and not split[-1][0]:
            split[-1][1].extend(run)
        else:
            split.append((is_family, run))
    return split


def family_title(specs: Sequence[AggregationSpec]) -> str:
    """A family's title: its items' title with the item's key as "…" when every title
    names its key ("Open cases on … by priority"), else their common start, else the
    first title."""
    first = specs[0]
    if all(s.key and s.key in s.title for s in specs):
        assert first.key is not None
        return first.title.replace(first.key, "…", 1)
    titles = [s.title for s in specs]
    start = titles[0]
    for title in titles[1:]:
        while not title.startswith(start):
            start = start[:-1]
    start = start.rstrip(" :-–(")
    return f"{start} …" if len(start) >= 8 else first.title


def _counts(state: AggregationState) -> dict[str, float]:
    counts: dict[str, float] = {}
    for group in state.result.get("groups") or ():
        raw = group.get("group")
        label = raw if type(raw) is str else "" if raw is None else str(raw)
        counts[label] = float((group.get("value") or (0.0,))[0])
    return counts


def family(
    specs: Sequence[AggregationSpec],
    states: Mapping[str, AggregationState],
    ids: Mapping[str, str],
    family_id: str,
) -> dict[str, Any]:
    """A family's context: its items, columns and totals, and the table ready-made.

    ``ids`` maps each item's address to its section's id on the page.
    """
    first = specs[0]
    fields, reading = first.groups, first.reading
    items = []
    column_sums: dict[str, float] = {}
    for spec in specs:
        state = states.get(spec.address)
        counts = _counts(state) if state is not None else {}
        for raw, count in counts.items():
            column_sums[raw] = column_sums.get(raw, 0.0) + count
        # A group absent from an item had no cases there, unless the item's groups filled
        # its limit (a smaller group may have been cut): then it is unknown.
        full = state is not None and len(counts) >= spec.limit
        items.append((spec, state, counts, full))
    key = order_key(fields, reading)
    chosen = list(column_sums)
    omitted = 0
    if len(chosen) > MAX_COLUMNS:
        chosen = sorted(chosen, key=lambda raw: (-column_sums[raw], raw))[:MAX_COLUMNS]
        omitted = len(column_sums) - MAX_COLUMNS
    chosen.sort()  # a fixed order under equal sort keys
    chosen.sort(key=lambda raw: key(raw, column_sums[raw]))
    columns = [
        {"group": raw, "label": display_label(raw, fields, reading) or "(empty)"} for raw in chosen
    ]
    rows: list[dict[str, Any]] = []
    unknown = False
    html_rows = []
    md_rows = []
    grand = 0.0
    for spec, state, counts, full in items:
        cells: list[float | None] = [
            counts.get(raw, None if full or state is None else 0.0) for raw in chosen
        ]
        if state is None:
            cells = [None] * len(chosen)
        unknown = unknown or None in cells
        total = float(state.result["total"]) if state is not None else None
        grand += total or 0.0
        link = f"#{ids[spec.address]}"
        item_key = spec.key or spec.aggregation_id
        rows.append(
            {"key": item_key, "title": spec.title, "link": link, "total": total, "counts": cells}
        )
        shown = "".join([f'<td class="num">{number(c)}</td>' for c in cells])
        total_text = number(total) if total is not None else "not fetched"
        html_rows.append(
            f'<tr><th scope="row"><a href="{escape(link)}">{escape(item_key)}</a></th>'
            f'{shown}<td class="num"><strong>{total_text}</strong></td></tr>'
        )
        md_cells = "".join([f" {number(c)} |" for c in cells])
        md_rows.append(f"| {md_cell(item_key)} |{md_cells} **{total_text}** |")
    sums = [column_sums[raw] for raw in chosen]
    sums_html = "".join([f'<td class="num">{number(s)}</td>' for s in sums])
    html_rows.append(
        f'<tr class="sum"><th scope="row">All items</th>{sums_html}'
        f'<td class="num"><strong>{number(grand)}</strong></td></tr>'
    )
    md_rows.append(
        f"| **All items** |{''.join([f' {number(s)} |' for s in sums])} **{number(grand)}** |"
    )
    header_html = "".join(
        [f'<th scope="col" class="num">{escape(c["label"])}</th>' for c in columns]
    )
    header_md = "".join([f" {md_cell(c['label'])} |" for c in columns])
    title = family_title(specs)
    notes = []
    if omitted:
        notes.append(
            f"Only the {MAX_COLUMNS} largest groups are columns here ({omitted} more are "
            "left out); each item's own table below lists every group."
        )
    if unknown:
        notes.append(
            "A count shown as – is unknown: that item's groups filled its limit, or it is "
            "not fetched yet."
        )
    return {
        "id": family_id,
        "aggregation_id": first.aggregation_id,
        "title": title,
        "caption": f"{title}: one row per item, cases per group and in total",
        "columns": columns,
        "items": rows,
        "column_totals": sums,
        "total": grand,
        "notes": notes,
        "header_html": Markup(header_html),
        "header_md": header_md,
        "align_md": "---:|" * len(columns),
        "table_html": Markup("\n".join(html_rows)),
        "table_md": "\n".join(md_rows),
    }
