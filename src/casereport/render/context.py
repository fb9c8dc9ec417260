"""The template context: what a template sees of a report, its aggregations and the index.

Every name is documented in ``docs/templates.md``; a test checks that every name the
built-in templates use is listed there.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape

from casereport.checks.results import CheckResult
from casereport.definitions.expand import AggregationSpec, ReportSpec
from casereport.definitions.fields import all_single_valued
from casereport.definitions.reading import DEFAULT_READING, Reading, display_label
from casereport.numbers import count_of
from casereport.render import charts, filters, markdown, tiles, words
from casereport.render import groups as ordering
from casereport.render.charts import (
    CHART_ROW,
    TREND_GROUPS,
    TREND_GROUPS_LISTED,
    label_forms,
    labelled_svg,
    trend,
)
from casereport.render.checks_view import index_checks, page_checks, report_results
from casereport.render.compare import PREVIOUS_RUN, Compared, compared_run
from casereport.render.filters import (
    date,
    delta,
    delta_arrow,
    delta_percent,
    judged,
    md_cell,
    number,
    percent,
    textbar,
)
from casereport.render.groups import Labels, labeller, ordered, raw_value
from casereport.render.headlines import headlines, index_headline
from casereport.render.links import app_host, case_list_url, group_url
from casereport.render.markdown import (
    description_html,
    description_md,
    description_text,
    parse_description,
)
from casereport.render.matrix import Linker, field_headers, matrix, split_rows
from casereport.render.tiles import figures, tiles_markup
from casereport.render.words import (
    describe_groups,
    describe_query,
    field_words,
    group_header,
    join_words,
)
from casereport.settings import DEFAULT_SITE_TITLE
from casereport.site import FORMAT_SUFFIXES
from casereport.state.comparable import comparable_history
from casereport.state.history import epoch
from casereport.state.model import AggregationState, Source

if TYPE_CHECKING:
    from markdown_it.token import Token

SITE_TITLE = DEFAULT_SITE_TITLE  # the default; ``site_title`` in casereport.toml sets it
DEMO_NOTICE = "Demo data from the local emulator: these numbers are synthetic, not from Datadog."
_NO_VALUES = (0.0,)
_NO_ROWS = Markup()


def clear_caches() -> None:
    """Forget memoised formatting, query descriptions and labels (for benchmarks and tests)."""
    filters.clear_caches()
    charts.clear_caches()
    words.clear_caches()
    ordering.clear_caches()
    markdown.clear_caches()
    _bar_markup.cache_clear()
    _id_base.cache_clear()
    _group_words.cache_clear()
    _title_cells.cache_clear()
    _parsed.cache_clear()
    _description.cache_clear()
    epoch.cache_clear()
    tiles.clear_caches()


def _source_context(source: Source | None) -> dict[str, Any]:
    if source is None:
        return {
            "kind": "none",
            "site": "",
            "detail": "",
            "description": "no data fetched yet",
            "is_demo": False,
        }
    return {
        "kind": source.kind,
        "site": source.site,
        "detail": source.detail,
        "description": source.describe(),
        "is_demo": source.kind == "emulator",
    }


_ID_UNSAFE = re.compile(r"[^a-z0-9]+")


@functools.lru_cache(maxsize=8192)  # aggregation ids repeat across reports (by_status, ...)
def _id_base(spec_id: str) -> str:
    return _ID_UNSAFE.sub("-", spec_id.lower()).strip("-") or "aggregation"


# Ids the built-in pages give their own elements (the skip link's target, the headline
# tiles, the checks sections): an aggregation named like one gets the next free id.
PAGE_IDS = frozenset({"content", "headlines", "report-checks", "failing-checks"})


def _html_id(spec_id: str, taken: set[str]) -> str:
    base = _id_base(spec_id)
    candidate, counter = base, 1
    while candidate in taken:
        counter += 1
        candidate = f"{base}-{counter}"
    taken.add(candidate)
    return candidate


def _spec_anchor(spec: AggregationSpec, taken: set[str]) -> str:
    key = spec.aggregation_id if spec.key is None else f"{spec.aggregation_id}-{spec.key}"
    return _html_id(key, taken)


@functools.lru_cache(maxsize=1024)  # a site groups by a handful of fields
def _group_words(groups: tuple[str, ...]) -> tuple[str, str, str, str]:
    """Group-by fields in words: as a list ("status and priority"), as the table's header,
    one row's meaning ("one row per ...") and what a case outside every group lacks."""
    text = describe_groups(groups)
    per = f"one row per combination of {text}" if len(groups) > 1 else f"one row per {text}"
    return text, group_header(groups), per, join_words([field_words(g) for g in groups], "or")


def _notes(
    groups: Sequence[str],
    limit: int,
    total: float,
    groups_sum: float,
    truncated: bool,
    extra: int,
    unknown_change: int,
    *,
    capped: bool = True,
    run: str = "the previous run",
) -> list[str]:
    """Plain-text explanations of what the table cannot say by itself, each only where it
    can be true of these groups.

    ``truncated``: whether groups past the limit may have been left out (see
    :func:`_may_have_more`). ``unknown_change``: how many groups the previous run recorded,
    when a group's change is unknown because it was not among them (0 otherwise).
    ``capped``: that run recorded only its largest groups (an entry written before history
    recorded every group), not every group it fetched.
    """
    notes = []
    if truncated:
        notes.append(
            f"{count_of(limit, 'group')} came back, as many as the limit allows: there may be "
            "more, smaller ones that are not shown."
        )
    if total and groups_sum != total:
        notes.append(
            f"The groups add up to {number(groups_sum)}, not {number(total)}: "
            f"{join_words(_sum_reasons(groups, total, groups_sum, truncated))}."
        )
    if unknown_change and capped:
        notes.append(
            f"A change shown as – is unknown: {run} recorded only its largest "
            f"{count_of(unknown_change, 'group')}, and this group was not among them."
        )
    elif unknown_change:
        notes.append(
            f"A change shown as – is unknown: {run} fetched {count_of(unknown_change, 'group')}, "
            "as many as the limit allows, and this group was not among them."
        )
    if extra:
        notes.append(
            "Some groups came with more than one number from the API: the first is the "
            "count, the others are shown as returned."
        )
    return notes


def _may_have_more(groups: Sequence[str], limit: int, rows: int, total: float, sum_: float) -> bool:
    """Whether groups past the limit may exist: only when the groups fill the limit and,
    for fields with one value per case (each case in one group at most), they add up to
    less than the total (otherwise every case is in a listed group)."""
    return rows >= limit and (sum_ < total or not all_single_valued(groups))


def _sum_reasons(
    groups: Sequence[str], total: float, groups_sum: float, truncated: bool
) -> list[str]:
    """Why the groups add up to ``groups_sum`` rather than ``total``: only the reasons that
    can be true of these fields (a case in no group, or in several, and groups left out)."""
    single = all_single_valued(groups)
    if single and groups_sum > total:  # one value per case: no case is in two groups
        return ["the API counted some cases in more than one group"]
    reasons = [f"a case with no {_group_words(tuple(groups))[3]} is in no group"]
    if truncated:
        reasons.insert(0, "groups past the limit are not listed")
    if not single:
        reasons.append("a case with several values is counted in each")
    return reasons


@functools.lru_cache(maxsize=256)
def _bar_markup(index: int) -> tuple[str, str, str]:
    """The markup of the bar chart's ``index``-th bar around its label, its value and its
    width, with the bar's positions in (the same for every chart: made once)."""
    y = 13 + index * CHART_ROW  # the label's baseline; the bar is under it
    return (
        f'<text x="0" y="{y}">',
        f'</text><text class="value" x="100%" y="{y}" text-anchor="end">',
        f'</text><rect class="track" x="0" y="{y + 5}" width="100%" height="10" rx="2"/>'
        f'<rect class="bar" x="0" y="{y + 5}" width="',
    )


def _reading_of(spec: AggregationSpec | str) -> Reading:
    return spec.reading if isinstance(spec, AggregationSpec) else DEFAULT_READING


def _change_text(
    state: AggregationState,
    total: float,
    compared: Compared,
    better: str | None,
    has_history: bool,
) -> str:
    """The total's change in words, naming the run it is compared with (or why none is)."""
    if compared.total is None:
        if has_history and compared.missing:
            return f"{compared.missing}: nothing to compare with"
        if state.query_changed_at is not None:
            changed_on = filters.day(state.query_changed_at)
            return f"query changed on {changed_on}: nothing to compare with yet"
        return "the first run: nothing to compare with yet"
    was = compared.total
    moved = total - was
    ratio = f" ({delta_percent(moved / was)})" if was else ""
    text = f"{delta_arrow(moved, better)}{ratio}" if moved else "no change"
    if compared.name == PREVIOUS_RUN:  # the words pages always used
        return f"{text} since the previous run on {date(compared.stamp)}"
    return f"{text} vs {compared.name}"


def aggregation_context(
    spec: AggregationSpec | str,
    request: Mapping[str, Any] | None = None,
    state: AggregationState | None = None,
    *,
    html_id: str = "",
    source: Source | None = None,
) -> dict[str, Any]:
    """What a template sees of one aggregation (see docs/templates.md).

    Takes the aggregation's spec, or (the older form) its title and request; ``source``
    (where the data came from) gives Datadog data its drill-down links.
    """
    reading = _reading_of(spec)
    if isinstance(spec, AggregationSpec):
        title, address = spec.title, spec.address
        query_filter, groups, limit = spec.query_filter, list(spec.groups), spec.limit
    else:
        assert request is not None
        title, address = spec, ""
        query_filter = str(request["query_filter"])
        groups, limit = [str(g) for g in request["groups"]], int(request["limit"])
    fields = tuple(groups)
    query_text = describe_query(query_filter)
    group_text, header, per, _ = _group_words(fields)
    ident = html_id or _html_id(address or title, set())
    host = app_host(source.kind, source.site) if source is not None else None
    better = reading.better
    context: dict[str, Any] = {
        "id": ident,
        "address": address,
        "title": title,
        "query_filter": query_filter,
        "query_text": query_text,
        "group_by": groups,
        "group_by_text": group_text,
        "group_header": header,
        "group_columns": [header],
        "limit": limit,
        "summary": f"{query_text}, counted by {group_text} ({per}, at most {limit}).",
        "link": case_list_url(host, query_filter) if host else None,
        "compare": reading.compare,
        "better": better,
        "fetched": False,
        "fetched_at": None,
        "total": None,
        "previous": None,
        "compared_text": "",
        "change_header": "Change",
        "delta": None,
        "delta_ratio": None,
        "delta_class": "",
        "change_cell": "",
        "rows": [],
        "extra_value_count": 0,
        "groups_sum": 0.0,
        "truncated": False,
        "dropped": [],
        "notes": [],
        "chart": None,
        "matrix": None,
        "trend": None,
        "table_html": _NO_ROWS,
        "table_md": "",
        "cases_word": "cases",
        "change_text": "",
        "caption": "",
    }
    if state is None:
        return context
    result = state.result
    total = float(result["total"])
    history = comparable_history(state)  # since the query last changed
    earlier_totals = history.totals()
    stamps = history.stamps()
    compared = compared_run(history, state.fetched_at, reading, limit)
    compare = compared.found
    before = compared.groups or {}
    # Absent from the compared run when it recorded as many groups as it could (its limit,
    # or its largest few in an entry written before entries were complete): maybe cut, so
    # unknown; else it had no cases.
    capacity = compared.capacity if compare else limit
    absent_is_zero = compare and len(before) < capacity
    raw_groups, largest = ordered(result.get("groups") or (), fields, reading)
    extra = max([len(g.get("value") or ()) for g in raw_groups], default=1) - 1
    label_of = labeller(fields, reading)
    split = len(fields) >= 3 and not extra
    field_parts: list[tuple[str, ...]] = []
    if split:
        field_parts = split_rows(fields, [{"group": raw_value(g)} for g in raw_groups])
        split = bool(field_parts)

    rows = []
    html_rows = []
    svg_bars = []
    md_rows = []
    described = []
    groups_sum = 0.0
    unknown_change = 0
    for index, group in enumerate(raw_groups):
        raw = group.get("group")
        raw = raw if type(raw) is str else "" if raw is None else str(raw)
        label = raw if label_of is None else label_of[raw]
        values = group.get("value") or _NO_VALUES
        count = values[0]
        groups_sum += count
        share = count / total if total else None
        was = before.get(raw)
        previous_count: float | None
        change: float | None
        if was is not None:
            previous_count, change = was, count - was
        elif absent_is_zero:
            previous_count, change = 0.0, count
        else:
            previous_count = change = None
        bar = count / largest if largest else 0.0
        link = group_url(host, query_filter, fields, raw) if host else None
        rows.append(
            {
                "group": raw,
                "label": label,
                "values": values,
                "count": count,
                "extra_values": values[1:],
                "share": share,
                "previous": previous_count,
                "change": change,
                "is_new": compare and was is None and absent_is_zero,
                "bar": bar,
                "link": link,
            }
        )
        shown, cell, md_label, short = label_forms(label)
        if split:
            head, md_label = _field_cells(field_parts[index], fields, reading, link)
        elif link is not None:
            head = f'<th scope="row"><a href="{escape(link)}">{cell}</a></th>'
            md_label = f"[{md_label}]({link})"
        else:
            head = f'<th scope="row">{cell}</th>'
        count_text = number(count)
        share_text = percent(share)
        cells = md_cells = ""
        if compare:
            if was is None and absent_is_zero:
                change_text, css = "new", ""
            elif better is None:
                change_text, css = delta(change), ""
            else:
                change_text, css = judged(change, better)
            if change is None:
                unknown_change = len(before)
            cells = (
                f'<td class="num {css}">{change_text}</td>'
                if css
                else f'<td class="num">{change_text}</td>'
            )
            md_cells = f" {change_text} |"
        if extra:
            others = ", ".join([number(v) for v in values[1:]]) or "–"
            cells += f'<td class="num">{others}</td>'
            md_cells += f" {others} |"
        html_rows.append(
            f'<tr>{head}<td class="num">{count_text}</td>'
            f'<td class="num">{share_text}</td>{cells}</tr>'
        )
        # The bar on the chart's scale (the largest group is a whole bar), as on the HTML page.
        md_rows.append(f"| {md_label} | {count_text} | `{textbar(bar)}` {share_text} |{md_cells}")
        before_label, before_value, before_width = _bar_markup(index)
        svg_bars.append(
            # A tooltip only where the label is cut short (the table has every label).
            f"<g>{f'<title>{shown}</title>' if short is not shown else ''}"
            f"{before_label}{short}{before_value}{count_text} ({share_text}){before_width}"
            f'{max(bar * 100, 0.5):.1f}%" height="10" rx="2"/></g>'
        )
        described.append(f"{label or '(empty)'}: {count_text}")
    listed = {row["group"] for row in rows}
    dropped = (
        [
            {
                "group": str(raw),
                "label": str(raw) if label_of is None else label_of[str(raw)],
                "previous": float(count),
            }
            for raw, count in sorted(before.items(), key=lambda kv: (-float(kv[1]), str(kv[0])))
            if str(raw) not in listed
        ]
        if not listed.issuperset(before)  # usually every group is still listed
        else []
    )
    truncated = _may_have_more(groups, limit, len(rows), total, groups_sum)
    previous_total = compared.total
    chart = None
    if rows:
        height = len(rows) * CHART_ROW + 2
        chart_title = f"Bar chart: {title}"
        summary = f"Cases per group, out of {number(total)} in total: {'; '.join(described)}."
        bars_svg = Markup("\n".join(svg_bars))
        chart = {
            "height": height,
            "title": chart_title,
            "summary": summary,
            "bars_svg": bars_svg,
            "svg_html": labelled_svg(
                f'width="100%" height="{height}"', ident, "b", chart_title, summary, bars_svg
            ),
        }
    previous_name = compared.name == PREVIOUS_RUN
    since = (date(compared.stamp) if previous_name else compared.name) if compare else ""
    caption = f"Cases by {group_text}" + (
        f"; change {'since' if previous_name else 'vs'} {since}" if compare else ""
    )
    if better is not None and compare:
        caption += f"; {better} is better"
    moved = None if previous_total is None else total - previous_total
    context.update(
        fetched=True,
        fetched_at=state.fetched_at,
        cases_word="case" if total == 1 else "cases",
        change_text=_change_text(state, total, compared, better, bool(stamps)),
        caption=caption,
        total=total,
        previous=(
            {"fetched_at": compared.stamp, "total": float(previous_total)}
            if previous_total is not None
            else None
        ),
        compared_text=compared.name,
        change_header="Change" if previous_name or not compare else f"Change vs {compared.name}",
        delta=moved,
        delta_ratio=(moved / previous_total if previous_total and moved is not None else None),
        delta_class=judged(moved, better)[1],
        change_cell=(
            delta_arrow(moved, better) if moved is not None else compared.missing or "first run"
        ),
        rows=rows,
        extra_value_count=extra,
        groups_sum=groups_sum,
        truncated=truncated,
        dropped=dropped,
        notes=_notes(
            groups,
            limit,
            total,
            groups_sum,
            truncated,
            extra,
            unknown_change,
            capped=capacity < limit,
            run=PREVIOUS_RUN if previous_name else f"the run of {compared.name}",
        ),
        chart=chart,
        group_columns=field_headers(fields) if split else [header],
        matrix=(
            matrix(
                fields,
                rows,
                reading,
                caption=caption,
                compared=compare,
                truncated=truncated,
                link=_linker(host, query_filter) if host else None,
            )
            if len(fields) == 2 and not extra and rows
            else None
        ),
        trend=trend(
            title,
            history,
            stamps,
            earlier_totals,
            state.fetched_at,
            total,
            _trend_candidates(reading, rows, label_of, truncated),
            limit,
            ident,
            TREND_GROUPS_LISTED if reading.trend else TREND_GROUPS,
        ),
        table_html=Markup("\n".join(html_rows)),
        table_md="\n".join(md_rows),
    )
    return context


def _field_cells(
    parts: tuple[str, ...], fields: tuple[str, ...], reading: Reading, link: str | None
) -> tuple[str, str]:
    """A group of three or more fields as cells, one per field (HTML: the first is the
    row's header cell), and as Markdown cells; the first links to the group's cases when
    there is a ``link``."""
    labels = [display_label(p, (f,), reading) for p, f in zip(parts, fields, strict=True)]
    html = [label_forms(label)[1] for label in labels]
    md = [label_forms(label)[2] for label in labels]
    if link is not None:
        html[0] = f'<a href="{escape(link)}">{html[0]}</a>'
        md[0] = f"[{md[0]}]({link})"
    rest = "".join(f"<td>{cell}</td>" for cell in html[1:])
    return f'<th scope="row">{html[0]}</th>{rest}', " | ".join(md)


def _linker(host: str, query_filter: str) -> Linker:
    return lambda fields, raw: group_url(host, query_filter, fields, raw)


def _trend_candidates(
    reading: Reading,
    rows: Sequence[Mapping[str, Any]],
    label_of: Labels | None,
    truncated: bool,
) -> list[tuple[str, str, float | None]]:
    """The groups a trend may draw, in order: ``trend:``'s values (this run's count 0 when
    not listed, unknown when groups may be missing), else the page's rows in their order."""
    if reading.trend is None:
        return [(row["group"], row["label"], row["count"]) for row in rows]
    counts = {row["group"]: row["count"] for row in rows}
    return [
        (
            raw,
            raw if label_of is None else label_of[raw],
            counts.get(raw, None if truncated else 0.0),
        )
        for raw in reading.trend
    ]


@functools.lru_cache(maxsize=4096)
def _parsed(text: str) -> tuple[tuple[Token, ...], bool]:
    """A description's tokens, parsed once for the report page and the index entry, and
    whether it has a heading (the only thing that differs between their heading levels)."""
    tokens = parse_description(text)
    return tokens, any(token.type == "heading_open" for token in tokens)


@functools.lru_cache(maxsize=4096)  # a report's page and the index show the same text
def _description(text: str | None, heading_level: int) -> dict[str, Any]:
    """The description's context; its headings start at ``heading_level``, below the page's."""
    tokens, headed = _parsed(text) if text else ((), False)
    if not headed and heading_level != 2:
        return _description(text, 2)  # no heading: the same at every level, written once
    return {
        "description": text,
        "description_html": description_html(tokens, heading_level),
        "description_md": description_md(tokens, heading_level),
        "description_text": description_text(tokens),
    }


def _files(report: ReportSpec) -> dict[str, str]:
    return {fmt: f"{report.name}{FORMAT_SUFFIXES[fmt]}" for fmt in report.formats}


def _freshness(aggregations: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    fetched = [a["fetched_at"] for a in aggregations if a["fetched"]]
    return {
        "newest": max(fetched) if fetched else None,
        "oldest": min(fetched) if fetched else None,
        "fetched": len(fetched),
        "pending": len(aggregations) - len(fetched),
    }


def _totals_rows(
    items: Sequence[Mapping[str, Any]],
    links: Sequence[str],
    changes: Sequence[str] | None = None,
) -> tuple[Markup, str]:
    """Rows of a "total per aggregation" table, as HTML (linked titles) and Markdown;
    ``changes``: each row's change cell, when not the plain delta since the previous run."""
    html = []
    md_rows = []
    for index, (item, href) in enumerate(zip(items, links, strict=True)):
        if not item["fetched"]:
            total, change = "not fetched", "–"
        else:
            total = number(item["total"])
            if changes is not None:
                change = changes[index]
            else:
                change = item.get("change_cell") or (
                    delta(item["delta"]) if item["delta"] is not None else "first run"
                )
        title_html, title_md = _title_cells(item["title"])
        html.append(
            f'<tr><th scope="row"><a href="{escape(href)}">{title_html}</a></th>'
            f'<td class="num">{total}</td><td class="num">{change}</td></tr>'
        )
        md_rows.append(f"| {title_md} | {total} | {change} |")
    return Markup("\n".join(html)), "\n".join(md_rows)


@functools.lru_cache(maxsize=8192)  # titles repeat across reports ("Cases by status")
def _title_cells(title: str) -> tuple[str, str]:
    """An aggregation's title escaped for an HTML cell and as a Markdown cell."""
    return str(escape(title)), md_cell(title)


def report_context(
    report: ReportSpec,
    aggregations: Mapping[str, AggregationState],
    source: Source | None,
    checks: Sequence[CheckResult] | None = None,
) -> dict[str, Any]:
    """The context of a report page (every name is listed in docs/templates.md);
    ``checks``: the report's check results, when the caller has them evaluated already."""
    taken: set[str] = set(PAGE_IDS)
    entries = [
        aggregation_context(
            spec,
            state=aggregations.get(spec.address),
            html_id=_spec_anchor(spec, taken),
            source=source,
        )
        for spec in report.aggregations
    ]
    files = _files(report)
    source_context = _source_context(source)
    summary_html, summary_md = _totals_rows(entries, [f"#{entry['id']}" for entry in entries])
    headline_tiles, sections = headlines(report, aggregations, entries, taken, _html_id)
    tiles_html, tiles_md = tiles_markup(headline_tiles)
    return {
        "report": {
            "name": report.name,
            "title": report.title,
            **_description(report.description, 2),  # under the page's <h1>
            "owner": report.owner,
            "formats": list(report.formats),
            "template": report.template,
            "files": files,
        },
        "source": source_context,
        "demo_notice": DEMO_NOTICE,
        "freshness": _freshness(entries),
        "compared": any(entry["previous"] for entry in entries),
        "links": {
            "index_html": "index.html",
            "index_md": "index.md",
            "html": files.get("html"),
            "markdown": files.get("markdown"),
            "pdf": files.get("pdf"),
        },
        "aggregations": entries,
        "summary_html": summary_html,
        "summary_md": summary_md,
        "tiles": headline_tiles,
        "tiles_html": tiles_html,
        "tiles_md": tiles_md,
        "sections": sections,
        "checks": page_checks(report_results(report, aggregations) if checks is None else checks),
    }


def _index_entry(
    report: ReportSpec, aggregations: Mapping[str, AggregationState]
) -> dict[str, Any]:
    files = _files(report)
    page_html = files.get("html") or files.get("markdown") or files.get("pdf") or ""
    page_md = files.get("markdown") or page_html
    taken: set[str] = set(PAGE_IDS)
    entries: list[dict[str, Any]] = []
    changes: list[str] = []
    for spec in report.aggregations:
        state = aggregations.get(spec.address)
        anchor = _spec_anchor(spec, taken)
        figs = figures(spec, state, series=False)
        moved = tiles.change(figs)
        changes.append(moved.cell)
        total = figs.total
        entries.append(
            {
                "id": anchor,
                "title": spec.title,
                "fetched": state is not None,
                "fetched_at": state.fetched_at if state is not None else None,
                "total": total,
                "delta": moved.change,
                "change_text": moved.cell,
                "link_html": f"{page_html}#{anchor}" if "html" in files else page_html,
                "link_md": page_md,
            }
        )
    table_html, table_md = _totals_rows(entries, [entry["link_html"] for entry in entries], changes)
    headline = index_headline(
        report, aggregations, entries, page_html, "html" in files, taken, _html_id
    )
    return {
        "name": report.name,
        "title": report.title,
        **_description(report.description, 3),  # under the entry's <h2>
        "owner": report.owner,
        "files": files,
        "link_html": page_html,
        "link_md": page_md,
        "freshness": _freshness(entries),
        "aggregations": entries,
        "table_html": table_html,
        "table_md": table_md,
        "headline": headline,
    }


def index_context(
    reports: Sequence[ReportSpec],
    aggregations: Mapping[str, AggregationState],
    source: Source | None,
) -> dict[str, Any]:
    """The context of the index pages (every name is listed in docs/templates.md)."""
    entries = [_index_entry(r, aggregations) for r in sorted(reports, key=lambda r: r.name)]
    every = [a for entry in entries for a in entry["aggregations"]]
    return {
        "source": _source_context(source),
        "demo_notice": DEMO_NOTICE,
        "freshness": _freshness(every),
        "links": {"index_html": "index.html", "index_md": "index.md"},
        "reports": entries,
        "checks": _index_checks(reports, aggregations, entries),
    }


def _index_checks(
    reports: Sequence[ReportSpec],
    aggregations: Mapping[str, AggregationState],
    entries: Sequence[Mapping[str, Any]],
) -> dict[str, Any] | None:
    """The index's ``checks`` (``render.checks_view.index_checks``), None without any."""
    if not any(report.has_checks for report in reports):
        return None
    results = [r for report in reports for r in report_results(report, aggregations)]
    links = {entry["name"]: (entry["link_html"], entry["link_md"]) for entry in entries}
    return index_checks(results, links)
