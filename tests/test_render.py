"""Rendering: filters, queries in plain words, the template context, the pages' structure
and safety, template overrides, writing the site, and PDF (descriptions:
``test_render_markdown``)."""

from __future__ import annotations

import itertools
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from casereport.definitions.expand import AggregationSpec, ReportSpec, fingerprint
from casereport.definitions.query import parse, to_string
from casereport.errors import RenderError
from casereport.render import pdf
from casereport.render.context import aggregation_context, report_context
from casereport.render.filters import (
    date,
    day,
    delta,
    delta_percent,
    md,
    md_cell,
    md_code,
    number,
    percent,
    sparkline,
    textbar,
)
from casereport.render.pages import render_index, render_report
from casereport.render.templates import BUILTIN_TEMPLATES, environment, template_hashes
from casereport.render.words import describe_groups, describe_query, simple_query_tree
from casereport.render.write import (
    clean_partial_writes,
    content_hash,
    remove_site_files,
    write_site_files,
)
from casereport.settings import DEFAULT_REFRESH
from casereport.state.model import AggregationState, Source
from query_strategies import nodes
from test_render_golden import fixture_reports, fixture_state, render_fixture_site

EMULATOR = Source("emulator", "emulator", "5000 synthetic cases (seed 1)")
DATADOG = Source("datadog", "datadoghq.eu")


def spec(
    aggregation_id: str = "by_status",
    *,
    report: str = "r",
    title: str = "Cases by status",
    query: str = "project:SUP",
    groups: tuple[str, ...] = ("status",),
    limit: int = 5,
    key: str | None = None,
) -> AggregationSpec:
    address = f"{report}.{aggregation_id}" if key is None else f'{report}.{aggregation_id}["{key}"]'
    return AggregationSpec(
        address=address,
        report=report,
        aggregation_id=aggregation_id,
        key=key,
        title=title,
        query_filter=query,
        groups=groups,
        limit=limit,
        fingerprint=fingerprint(query, groups, limit),
    )


def report_spec(
    *aggregations: AggregationSpec,
    name: str = "r",
    formats: tuple[str, ...] = ("markdown", "html"),
    description: str | None = "Open **work**.",
    template: str = "report",
) -> ReportSpec:
    return ReportSpec(
        name=name,
        path=Path(f"reports/{name}.yaml"),
        title="Report title",
        description=description,
        owner="@team",
        refresh=DEFAULT_REFRESH,
        formats=formats,
        template=template,
        aggregations=aggregations,
        definition_hash="0" * 64,
    )


def state_of(
    agg: AggregationSpec,
    groups: list[tuple[str, list[float]]],
    *,
    total: float | None = None,
    history: tuple[dict[str, Any], ...] = (),
    fetched_at: str = "2026-11-26T07:00:00Z",
) -> AggregationState:
    return AggregationState(
        address=agg.address,
        report=agg.report,
        title=agg.title,
        request=agg.request(),
        fingerprint=agg.fingerprint,
        result={
            "id": "agg-1",
            "total": total if total is not None else sum(v[0] for _, v in groups),
            "groups": [{"group": g, "value": v} for g, v in groups],
        },
        fetched_at=fetched_at,
        history=history,
    )


def entry(fetched_at: str, total: float, groups: dict[str, float]) -> dict[str, Any]:
    return {"fetched_at": fetched_at, "total": total, "groups": groups}


# -- filters --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, "–"), (0.0, "0"), (1234.0, "1,234"), (1234567, "1,234,567"), (2.5, "2.5"),
     (2.125, "2.12"), (-3.0, "−3")],
)  # fmt: skip
def test_number(value: float | None, expected: str) -> None:
    assert number(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, "–"), (0.0, "0%"), (1.0, "100%"), (0.4234, "42.3%"), (0.00001, "<0.1%")],
)
def test_percent(value: float | None, expected: str) -> None:
    assert percent(value) == expected


def test_delta_and_delta_percent() -> None:
    assert [delta(v) for v in (None, 0.0, 12.0, -3.0, 1500.0)] == [
        "–",
        "±0",
        "+12",
        "−3",
        "+1,500",
    ]
    assert [delta_percent(v) for v in (None, 0.0, 0.042, -1.0)] == [
        "–",
        "±0%",
        "+4.2%",
        "−100%",
    ]


def test_dates_are_formatted_from_the_timestamp_alone() -> None:
    assert date("2026-11-26T19:05:00Z") == "26 Nov 2026, 19:05 UTC"
    assert date("2026-01-02T03:04:05+02:00") == "2 Jan 2026, 03:04 +0200"
    assert date("not a date") == "not a date"
    assert date(None) == "never"
    assert day("2026-11-26T19:05:00Z") == "26 Nov 2026"


def test_markdown_escaping_keeps_text_readable() -> None:
    assert md("IN_PROGRESS / P1") == "IN_PROGRESS / P1"  # intraword _ is plain
    assert md("<script>alert(1)</script>") == "\\<script\\>alert(1)\\</script\\>"
    assert md("a | b *c* _d_ [e](f) `g` ~h~") == (
        "a \\| b \\*c\\* \\_d\\_ \\[e\\](f) \\`g\\` \\~h\\~"
    )
    assert md("1. first") == "1\\. first"
    assert md("# not a heading") == "\\# not a heading"
    assert md("R&D &amp; more") == "R&D \\&amp; more"
    assert md("two\nlines") == "two lines"
    assert md_cell("") == " "
    assert md_code("a `b` c") == "``a `b` c``"
    assert md_code("`x") == "`` `x ``"


def test_text_bar_and_sparkline() -> None:
    assert textbar(0.42) == "████████░░░░░░░░░░░░"
    assert textbar(0.001) == "█" + "░" * 19  # a non-zero share is always visible
    assert textbar(None, 4) == "░░░░"
    assert textbar(1.5, 4) == "████"
    assert sparkline([1, 2, 3, 4, 5, 6, 7, 8]) == "▁▂▃▄▅▆▇█"
    assert sparkline([5, None, 5]) == "▄ ▄"
    assert sparkline([]) == ""


# -- queries in plain words --------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("", "All cases"),
        ("project:SEC -status:closed", "Cases in project SEC whose status is not closed"),
        (
            "project:SUP -status:closed priority:(P1 OR P2)",
            "Cases in project SUP whose status is not closed and priority is P1 or P2",
        ),
        (
            "service:case-api env:prod status:open",
            "Cases whose service is case-api, environment is prod and status is open",
        ),
        (
            'service:case-api* "kubernetes pods"',
            "Cases whose service starts with case-api and title or description mentions "
            '"kubernetes pods"',
        ),
        (
            "NOT priority:(P4 OR P5) -service:*",
            "Cases whose priority is neither P4 nor P5 and service is not set",
        ),
        (
            "-(status:closed OR priority:P5)",
            "All cases except those where either status is closed or priority is P5",
        ),
        ("status:open OR priority:P1", "Cases where either status is open or priority is P1"),
        ("project:(SEC OR OPS) status:open", "Cases in project SEC or OPS whose status is open"),
        ("creation_source:SECURITY_SIGNAL", "Cases whose source is SECURITY_SIGNAL"),
        ('title:"flaky test"', 'Cases whose title is "flaky test"'),
        ("b:*x*y", "Cases whose b matches the pattern *x*y (* stands for any text)"),
        ("service:*api", "Cases whose service ends with api"),
        ("-service:*api*", "Cases whose service does not contain api"),
    ],
)
def test_queries_read_as_plain_words(query: str, words: str) -> None:
    assert describe_query(query) == words


@given(nodes())
def test_the_quick_reading_of_simple_queries_agrees_with_the_parser(tree: Any) -> None:
    query = to_string(tree)
    quick = simple_query_tree(query)
    assert quick is None or quick == parse(query)


@given(
    st.lists(
        st.tuples(
            st.booleans(),
            st.sampled_from(["status", "project", "service", "a.b", "x-y", "_z"]),
            st.sampled_from(["open", "SEC", "case-api", "P1", "a.b-c", "OR", "NOT"]),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_simple_queries_take_the_quick_path(terms: list[tuple[bool, str, str]]) -> None:
    query = " ".join(f"{'-' if negated else ''}{field}:{value}" for negated, field, value in terms)
    quick = simple_query_tree(query)
    assert quick is not None and quick == parse(query)


def test_unparsable_and_empty_queries_still_read() -> None:
    assert describe_query("status:(open") == "Cases matching the search 'status:(open'"
    assert describe_query("   ") == "All cases"


def test_group_by_in_plain_words() -> None:
    assert describe_groups(["status"]) == "status"
    assert describe_groups(["services", "priority"]) == "service and priority"
    assert describe_groups(["a", "b", "c"]) == "a, b and c"


# -- the template context --------------------------------------------------------------


def test_rows_changes_shares_and_notes() -> None:
    agg = spec(limit=3)
    history = (
        entry("2026-11-24T07:00:00Z", 90.0, {"OPEN": 50.0, "CLOSED": 30.0}),
        entry("2026-11-25T07:00:00Z", 95.0, {"OPEN": 55.0, "CLOSED": 35.0}),
    )
    state = state_of(
        agg, [("OPEN", [60.0]), ("IN_PROGRESS", [25.0]), ("CLOSED", [15.0])], history=history
    )
    context = aggregation_context(agg, state=state)
    assert context["total"] == 100.0
    assert context["delta"] == 5.0
    assert context["delta_ratio"] == pytest.approx(5 / 95)
    assert context["previous"] == {"fetched_at": "2026-11-25T07:00:00Z", "total": 95.0}
    rows = {row["group"]: row for row in context["rows"]}
    assert [row["group"] for row in context["rows"]] == ["OPEN", "IN_PROGRESS", "CLOSED"]
    assert [row["label"] for row in context["rows"]] == ["Open", "In progress", "Closed"]
    assert rows["OPEN"]["change"] == 5.0
    assert rows["OPEN"]["share"] == 0.6
    assert rows["OPEN"]["bar"] == 1.0
    assert rows["CLOSED"]["change"] == -20.0
    # Absent from a previous run that recorded fewer groups than it could: it had none.
    assert rows["IN_PROGRESS"]["is_new"] and rows["IN_PROGRESS"]["change"] == 25.0
    # The groups fill the limit, but a status is one value per case and they add up to the
    # total: every case is in a listed group, so no note says there may be more.
    assert not context["truncated"]
    assert context["notes"] == []
    assert context["summary"] == (
        "Cases in project SUP, counted by status (one row per status, at most 3)."
    )


def test_a_group_missing_from_a_full_history_entry_has_an_unknown_change() -> None:
    agg = spec(limit=2)
    history = (entry("2026-11-25T07:00:00Z", 10.0, {"A": 6.0, "B": 4.0}),)
    state = state_of(agg, [("A", [7.0]), ("C", [5.0])], history=history)
    context = aggregation_context(agg, state=state)
    row_c = context["rows"][1]
    assert row_c["change"] is None and not row_c["is_new"]
    assert context["dropped"] == [{"group": "B", "label": "B", "previous": 4.0}]
    assert any(note.startswith("A change shown as – is unknown") for note in context["notes"])
    assert '<td class="num">–</td>' in context["table_html"]


SEVEN = {f"G{i}": float(20 - i) for i in range(7)}


def test_a_group_absent_from_a_complete_history_entry_had_no_cases() -> None:
    """History records every group now: seven groups of a limit of 14 were all there were,
    so H, absent then, is new, and G6 (beyond the largest five) has a known change."""
    agg = spec(limit=14)
    complete = ({**entry("2026-11-25T07:00:00Z", 119.0, SEVEN), "complete": True},)
    groups = [(name, [count + 1]) for name, count in SEVEN.items()] + [("H", [3.0])]
    context = aggregation_context(agg, state=state_of(agg, groups, history=complete))
    rows = {row["label"]: row for row in context["rows"]}
    assert rows["H"]["is_new"] and rows["H"]["change"] == 3.0 and rows["H"]["previous"] == 0.0
    assert rows["G6"]["change"] == 1.0 and rows["G6"]["previous"] == 14.0
    assert not any(note.startswith("A change shown as – is unknown") for note in context["notes"])
    assert '<td class="num">–</td>' not in context["table_html"]


def test_a_group_absent_from_an_old_capped_history_entry_has_an_unknown_change() -> None:
    """A state written when history kept the largest five groups: H may have been cut."""
    agg = spec(limit=14)
    capped = (entry("2026-11-25T07:00:00Z", 119.0, dict(list(SEVEN.items())[:5])),)
    groups = [(name, [count + 1]) for name, count in SEVEN.items()] + [("H", [3.0])]
    context = aggregation_context(agg, state=state_of(agg, groups, history=capped))
    rows = {row["label"]: row for row in context["rows"]}
    assert rows["G6"]["change"] is None and not rows["G6"]["is_new"]
    assert rows["H"]["change"] is None and not rows["H"]["is_new"]
    assert rows["G0"]["change"] == 1.0
    assert (
        "A change shown as – is unknown: the previous run recorded only its largest 5 "
        "groups, and this group was not among them."
    ) in context["notes"]


def test_a_group_absent_from_a_complete_entry_that_filled_the_limit_is_unknown() -> None:
    agg = spec(limit=7)
    complete = ({**entry("2026-11-25T07:00:00Z", 200.0, SEVEN), "complete": True},)
    groups = [(name, [count]) for name, count in list(SEVEN.items())[:6]] + [("H", [15.0])]
    context = aggregation_context(agg, state=state_of(agg, groups, total=200.0, history=complete))
    rows = {row["label"]: row for row in context["rows"]}
    assert rows["H"]["change"] is None and not rows["H"]["is_new"]
    assert (
        "A change shown as – is unknown: the previous run fetched 7 groups, as many as the "
        "limit allows, and this group was not among them."
    ) in context["notes"]


def test_a_trend_reads_absent_groups_as_zero_only_in_complete_entries() -> None:
    agg = spec(limit=14)
    five = dict(list(SEVEN.items())[:5])
    history = (
        entry("2026-11-23T07:00:00Z", 119.0, five),  # capped: G6 may have been cut
        {**entry("2026-11-24T07:00:00Z", 119.0, five), "complete": True},  # G6 had none
        {**entry("2026-11-25T07:00:00Z", 119.0, SEVEN), "complete": True},
    )
    groups = [("G5", [50.0]), ("G0", [20.0])]  # G5 the largest now: its line is drawn
    trend = aggregation_context(agg, state=state_of(agg, groups, history=history))["trend"]
    values = {s["label"]: s["values"] for s in trend["series"]}
    assert values["G5"] == [None, 0.0, 15.0, 50.0]
    assert values["G0"] == [20.0, 20.0, 20.0, 20.0]


def test_groups_that_do_not_add_up_to_the_total_are_explained() -> None:
    agg = spec(groups=("services",), limit=10)
    state = state_of(agg, [("a", [6.0]), ("b", [6.0])], total=10.0)
    notes = aggregation_context(agg, state=state)["notes"]
    assert notes == [
        "The groups add up to 12, not 10: a case with no service is in no group and a case "
        "with several values is counted in each."
    ]


def test_groups_filling_the_limit_may_hide_more_only_where_they_can() -> None:
    more = (
        "2 groups came back, as many as the limit allows: there may be more, smaller ones "
        "that are not shown."
    )
    # One value per case, short of the total: the rest may be in groups past the limit.
    single = spec(groups=("priority",), limit=2)
    notes = aggregation_context(
        single, state=state_of(single, [("P1", [6.0]), ("P2", [3.0])], total=10.0)
    )["notes"]
    assert notes == [
        more,
        "The groups add up to 9, not 10: groups past the limit are not listed and a case "
        "with no priority is in no group.",
    ]
    # Several fields of one value each: combinations are disjoint too; adding up means all.
    pair = spec(groups=("status", "project"), limit=2)
    full = state_of(pair, [("OPEN / A", [6.0]), ("CLOSED / A", [4.0])], total=10.0)
    assert aggregation_context(pair, state=full)["notes"] == []
    # A multi-valued field: a case counted twice can hide a group left out, whatever the sum.
    multi = spec(groups=("services",), limit=2)
    context = aggregation_context(
        multi, state=state_of(multi, [("a", [6.0]), ("b", [4.0])], total=10.0)
    )
    assert context["truncated"] and context["notes"] == [more]
    # A field the tool does not know may hold several values: the caveat stays.
    custom = spec(groups=("region",), limit=2)
    assert aggregation_context(
        custom, state=state_of(custom, [("eu", [6.0]), ("us", [4.0])], total=10.0)
    )["truncated"]
    # Fewer groups than the limit: nothing was left out.
    assert not aggregation_context(multi, state=state_of(multi, [("a", [6.0])], total=10.0))[
        "truncated"
    ]


def test_one_value_per_case_never_blamed_on_several_values() -> None:
    agg = spec(groups=("title",), limit=10)
    notes = aggregation_context(agg, state=state_of(agg, [("x", [6.0]), ("y", [6.0])], total=10.0))[
        "notes"
    ]
    assert notes == [
        "The groups add up to 12, not 10: the API counted some cases in more than one group."
    ]
    short = aggregation_context(agg, state=state_of(agg, [("x", [6.0])], total=10.0))["notes"]
    assert short == ["The groups add up to 6, not 10: a case with no title is in no group."]


def test_every_number_of_a_group_is_kept() -> None:
    agg = spec(groups=("status", "priority"))
    state = state_of(agg, [("OPEN / P1", [5.0, 2.0, 1.5]), ("OPEN / P2", [3.0])])
    context = aggregation_context(agg, state=state)
    assert context["extra_value_count"] == 2
    assert context["rows"][0]["values"] == [5.0, 2.0, 1.5]
    assert context["rows"][0]["extra_values"] == [2.0, 1.5]
    assert '<td class="num">2, 1.5</td>' in context["table_html"]
    assert context["table_md"].splitlines()[0].endswith("| 2, 1.5 |")
    assert context["group_header"] == "Status / priority"


def test_trend_series_follow_history_and_top_groups() -> None:
    agg = spec(limit=5)
    history = tuple(
        entry(f"2026-11-{20 + i}T07:00:00Z", 10.0 + i, {"A": 5.0 + i, "B": 5.0}) for i in range(4)
    )
    state = state_of(agg, [("A", [10.0]), ("B", [4.0]), ("C", [1.0])], history=history)
    trend = aggregation_context(agg, state=state)["trend"]
    assert trend["runs"] == 5
    assert (trend["start"], trend["end"]) == ("2026-11-20T07:00:00Z", "2026-11-26T07:00:00Z")
    labels = [(s["label"], s["values"]) for s in trend["series"]]
    assert labels == [
        ("Total", [10.0, 11.0, 12.0, 13.0, 15.0]),
        ("A", [5.0, 6.0, 7.0, 8.0, 10.0]),
        ("B", [5.0, 5.0, 5.0, 5.0, 4.0]),
    ]  # C was never recorded: no line for it
    assert trend["max"] == 15.0
    assert trend["series"][0]["path"].startswith("M4 ")
    assert trend["series"][1]["spark"] == "▁▂▄▅█"
    assert "Total from 10 to 15" in trend["summary"]


def test_a_trend_line_breaks_where_a_count_is_unknown() -> None:
    agg = spec(limit=1)  # each run recorded one group: a missing one may have been cut
    history = (
        entry("2026-11-23T07:00:00Z", 9.0, {"A": 5.0}),
        entry("2026-11-24T07:00:00Z", 9.0, {"B": 6.0}),
        entry("2026-11-25T07:00:00Z", 9.0, {"A": 7.0}),
    )
    state = state_of(agg, [("A", [8.0])], total=9.0, history=history)
    series = aggregation_context(agg, state=state)["trend"]["series"]
    assert series[1]["values"] == [5.0, None, 7.0, 8.0]
    assert series[1]["path"].count("M") == 2  # two pieces of line around the gap
    assert series[1]["spark"] == "▁ ▆█"


def test_unfetched_and_empty_aggregations() -> None:
    agg = spec()
    context = aggregation_context(agg)
    assert not context["fetched"] and context["rows"] == [] and context["trend"] is None
    empty = aggregation_context(agg, state=state_of(agg, [], total=0.0))
    assert empty["fetched"] and empty["total"] == 0.0 and empty["chart"] is None


def test_html_ids_are_unique_and_safe() -> None:
    first = spec("open_by_priority", key="Billing & Co")
    second = spec("open_by_priority", key="billing-co")
    report = report_spec(first, second)
    ids = [a["id"] for a in report_context(report, {}, None)["aggregations"]]
    assert ids == ["open-by-priority-billing-co", "open-by-priority-billing-co-2"]


def test_dict_keys_win_over_dict_methods_in_templates() -> None:
    env = environment(None)
    template = env.from_string("{{ row.values | join(',') }} {{ row.items }}")
    assert template.render(row={"values": [1, 2], "items": "x"}) == "1,2 x"


# -- pages ------------------------------------------------------------------------------


class _Structure(HTMLParser):
    """Collects headings, and checks that every non-void element is closed in order."""

    VOID = frozenset({"meta", "br", "wbr", "img", "link", "rect", "line", "path", "input", "hr"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.headings: list[int] = []
        self.errors: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()


def _structure(html: str) -> _Structure:
    parser = _Structure()
    parser.feed(html)
    parser.close()
    assert parser.errors == [] and parser.stack == []
    return parser


SITE = render_fixture_site()
HTML_PAGES = sorted(name for name in SITE if name.endswith(".html"))
MD_PAGES = sorted(name for name in SITE if name.endswith(".md"))


def _page(name: str) -> str:
    page = SITE[name]
    assert isinstance(page, str)
    return page


@pytest.mark.parametrize("name", HTML_PAGES)
def test_html_pages_are_well_formed_accessible_and_self_contained(name: str) -> None:
    html = _page(name)
    parsed = _structure(html)
    assert parsed.headings.count(1) == 1 and parsed.headings[0] == 1
    for before, after in zip(parsed.headings, parsed.headings[1:], strict=False):
        assert after <= before + 1, f"heading level jumps from h{before} to h{after}"
    tables = html.count("<table")
    assert html.count("<caption>") == tables
    for tag, attrs in parsed.tags:
        if tag == "th":
            assert attrs.get("scope") in ("col", "row")
        if tag == "svg" and attrs.get("aria-hidden") != "true":
            assert attrs.get("role") == "img" and attrs.get("aria-labelledby")
        # No script, no frame, nothing fetched: every URL is a link a reader follows.
        assert tag not in ("script", "iframe", "object", "embed", "link", "img")
        assert not any(key.startswith("on") for key in attrs), (tag, attrs)
        if tag != "a":
            assert "src" not in attrs and "href" not in attrs, (tag, attrs)
    assert "url(" not in html and "@import" not in html
    assert '<html lang="en">' in html and '<meta name="viewport"' in html
    assert "prefers-color-scheme:dark" in html and "@media print" in html


RICH_DESCRIPTION = (
    "## Context\n\nWhy this report exists.\n\n#### Detail <b>\n\n# Steps\n\n1. one\n2. two\n\n"
    "| a | b |\n|---|---|\n| <i>x</i> | [y](javascript:alert(1)) |\n\n"
    "```\n# not a heading <script>\n```"
)


def _md_headings(markdown: str) -> list[tuple[int, str]]:
    tokens = MarkdownIt("commonmark").parse(markdown)
    return [
        (int(token.tag[1]), tokens[i + 1].content)
        for i, token in enumerate(tokens)
        if token.type == "heading_open"
    ]


def test_description_headings_sit_below_the_page_headings_and_skip_no_level() -> None:
    aggs = (spec(), spec("by_priority", title="Cases by priority", groups=("priority",)))
    report = report_spec(*aggs, description=RICH_DESCRIPTION)
    pages = {
        **render_report(report, {}, None, environment(None)),
        **render_index([report], {}, None, environment(None)),
    }
    headings = {}
    for name, page in pages.items():
        assert isinstance(page, str)
        if name.endswith((".csv", ".json")):
            continue  # the data files have no headings
        if name.endswith(".html"):
            parsed = _structure(page)
            levels = parsed.headings
            assert all(attrs.get("scope") for tag, attrs in parsed.tags if tag == "th")
        else:
            levels = [level for level, _ in _md_headings(page)]
        assert levels.count(1) == 1 and levels[0] == 1, name
        for before, after in itertools.pairwise(levels):
            assert after <= before + 1, f"{name}: heading level jumps from {before} to {after}"
        headings[name] = levels
    # The report: its title, the description from <h2>, then the summary and aggregations.
    assert headings["r.html"] == headings["r.md"] == [1, 2, 3, 2, 2, 2, 2]
    # The index: the site, the report's <h2>, the description from <h3>.
    assert headings["index.html"] == headings["index.md"] == [1, 2, 3, 4, 3]
    assert "<h2>Context</h2>" in pages["r.html"] and "<h3>Context</h3>" in pages["index.html"]
    assert _md_headings(str(pages["r.md"]))[1:4] == [
        (2, "Context"), (3, "Detail \\<b\\>"), (2, "Steps")
    ]  # fmt: skip


def _contrast(first: str, second: str) -> float:
    def luminance(colour: str) -> float:
        digits = colour.lstrip("#")
        if len(digits) == 3:
            digits = "".join(c * 2 for c in digits)
        channels = [int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(first), luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_colours_have_sufficient_contrast_in_both_schemes() -> None:
    css = (BUILTIN_TEMPLATES / "partials" / "style.css.j2").read_text()
    light_block = re.search(r":root\{(color-scheme[^}]*)\}", css)
    dark_block = re.search(r"prefers-color-scheme:dark\)\{:root\{([^}]*)\}", css)
    assert light_block and dark_block
    for block in (light_block[1], dark_block[1]):
        colours = dict(re.findall(r"--([a-z0-9-]+):(#[0-9a-f]+)", block))
        for text, background in [
            ("fg", "bg"), ("fg", "soft"), ("muted", "bg"), ("muted", "soft"),
            ("link", "bg"), ("link", "soft"), ("note-fg", "note-bg"),
        ]:  # fmt: skip
            assert _contrast(colours[text], colours[background]) >= 4.5, (text, background)
        for shape, background in [
            ("bar", "track"), ("bar", "bg"), ("s0", "soft"), ("s1", "soft"), ("s2", "soft"),
            ("s3", "soft"),
        ]:  # fmt: skip
            assert _contrast(colours[shape], colours[background]) >= 3.0, (shape, background)


def test_every_svg_chart_has_a_title_and_a_text_alternative() -> None:
    html = _page("support-backlog.html")
    charts = re.findall(r'<svg[^>]*role="img"[^>]*aria-labelledby="([^"]+)"', html)
    # Five aggregations with a trend and a headline tile's sparkline each, and a bar chart
    # each but the status x priority one, shown as a matrix.
    assert len(charts) == 14
    for ids in charts:
        title_id, desc_id = ids.split()
        assert re.search(rf'<title id="{title_id}">[^<]+</title>', html)
        assert re.search(rf'<desc id="{desc_id}">[^<]+</desc>', html)


def test_hostile_group_values_are_escaped_everywhere() -> None:
    html = _page("edge-cases.html")
    assert "<script>alert(1)</script>" not in html
    assert "<img src=x onerror=alert(1)>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    markdown = _page("edge-cases.md")
    assert "\\<img src=x onerror=alert(1)\\>" in markdown
    assert "| \\| pipe \\| \\*stars\\* \\_under\\_" in markdown  # the cell stays one cell
    index = _page("index.html")
    assert "<script>" not in index and "&lt;script&gt;" in index


def test_the_demo_banner_is_on_every_page_of_emulator_data() -> None:
    for name in HTML_PAGES:
        assert '<p class="demo" role="note"><strong>Demo data from the local emulator' in (
            _page(name)
        )
    for name in MD_PAGES:
        assert _page(name).startswith(
            "> [!WARNING]\n> **Demo data from the local emulator: these numbers are synthetic"
        )


def test_no_banner_for_datadog_data() -> None:
    agg = spec()
    report = report_spec(agg)
    pages = render_report(
        report, {agg.address: state_of(agg, [("OPEN", [3.0])])}, DATADOG, environment(None)
    )
    for name, page in pages.items():
        assert isinstance(page, str)
        assert "Demo data" not in page
        if name.endswith((".html", ".md")):
            assert "Datadog (datadoghq.eu)" in page
    assert json.loads(pages["r.json"])["source"] == DATADOG.to_json()


def _visible(html: str) -> str:
    """The text of a page as a reader sees it (tags dropped, entities kept)."""
    return re.sub(r"<[^>]+>", "", html)


def test_each_aggregation_shows_what_a_reader_needs() -> None:
    html = _page("support-backlog.html")
    markdown = _page("support-backlog.md")
    for text in (_visible(html), markdown):
        assert "Cases in project SUP whose status is not closed and priority is P1 or P2, " in text
        assert "counted by service (one row per service, at most 10)" in text
        assert "2,104" in text  # a total
        assert "since the previous run on 25 Nov 2026, 07:00 UTC" in text
        assert "Trend over the last 13 runs (14 Nov 2026 – 26 Nov 2026)" in text
        assert "Owner" in text and "@support" in text
    assert '<a href="index.html">← All reports</a>' in html
    assert "[← All reports](index.md)" in markdown
    # Bars on the chart's scale: Closed, the largest of the three, is a whole bar.
    assert "| Open | 728 | `████████████░░░░░░░░` 34.6% | +18 |" in markdown
    assert "| Closed | 1,169 | `████████████████████` 55.6% | +46 |" in markdown


def test_markdown_bars_and_html_bars_share_one_scale() -> None:
    html, markdown = _page("support-backlog.html"), _page("support-backlog.md")
    widths = [float(w) for w in re.findall(r'<rect class="bar" [^>]*width="([\d.]+)%"', html)]
    bars = re.findall(r"`([█░]{20})`", markdown)
    assert len(widths) == len(bars) > 10
    for width, bar in zip(widths, bars, strict=True):
        # The same fraction; a text bar rounds to twentieths, a non-zero one shows a block.
        assert bar.count("█") == max(1, round(width / 5)), (width, bar)


def test_empty_results_say_so() -> None:
    html = _page("edge-cases.html")
    assert "No cases match this query." in html
    assert "None of the 12 matching cases has a custom field" in html
    assert "Not fetched yet: the next <code>casereport apply</code> fetches it." in html


def test_the_index_lists_every_report_with_totals_and_freshness() -> None:
    html = _page("index.html")
    markdown = _page("index.md")
    for report in fixture_reports():
        assert f'<h2 id="report-{report.name}">' in html
    assert '<a href="security-cases.html">Security cases</a>' in html
    # security-cases has no Markdown page: the Markdown index links to its HTML page.
    assert "## [Security cases](security-cases.html)" in markdown
    assert "## [Support backlog](support-backlog.md)" in markdown
    assert '<a href="support-backlog.html#by-status">Support cases by status</a>' in html
    assert "(oldest result: 26 Nov 2026, 02:00 UTC)" in _visible(html)
    assert "(oldest result: 26 Nov 2026, 02:00 UTC)" in markdown


def test_an_empty_site_and_a_report_never_fetched_still_render() -> None:
    env = environment(None)
    index = render_index([], {}, None, env)
    assert "No reports yet: add one under" in index["index.html"]
    assert "_No reports yet: add one under `reports/`" in index["index.md"]
    assert "nothing fetched yet" in index["index.md"]
    pages = render_report(report_spec(spec()), {}, None, env)
    html = pages["r.html"]
    assert isinstance(html, str)
    _structure(html)
    assert "no data fetched yet" in html and "Not fetched yet" in html
    assert "Demo data" not in html


# -- templates and the environment ---------------------------------------------------------


def test_workspace_templates_override_the_built_in_ones(tmp_path: Path) -> None:
    (tmp_path / "report.md.j2").write_text("# {{ report.title }} ({{ aggregations | length }})\n")
    (tmp_path / "partials").mkdir()
    (tmp_path / "partials" / "banner.html.j2").write_text("<p>custom banner</p>\n")
    agg = spec()
    pages = render_report(report_spec(agg), {}, EMULATOR, environment(tmp_path))
    assert pages["r.md"] == "# Report title (1)\n"
    html = pages["r.html"]
    assert isinstance(html, str) and "<p>custom banner</p>" in html


def test_a_report_template_picks_another_pair(tmp_path: Path) -> None:
    (tmp_path / "brief.md.j2").write_text("{{ report.name }}: {{ aggregations[0].query_text }}\n")
    agg = spec()
    pages = render_report(
        report_spec(agg, formats=("markdown",), template="brief"),
        {},
        None,
        environment(tmp_path),
    )
    assert pages["r.md"] == "r: Cases in project SUP\n"
    assert sorted(pages) == ["r.csv", "r.json", "r.md"]  # the data files, whatever the template


def test_missing_template_and_undefined_names_are_clear_errors(tmp_path: Path) -> None:
    agg = spec()
    with pytest.raises(RenderError) as missing:
        render_report(report_spec(agg, template="nope"), {}, None, environment(tmp_path))
    assert missing.value.message == (
        "template nope.md.j2 not found in the workspace templates/ or the built-in ones; "
        "create it or fix the report's `template:`"
    )
    (tmp_path / "typo.md.j2").write_text("# Title\n\n{{ report.titel }}\n")
    with pytest.raises(RenderError) as undefined:
        render_report(
            report_spec(agg, formats=("markdown",), template="typo"),
            {},
            None,
            environment(tmp_path),
        )
    # The file and line of the typo, and the name that was meant.
    assert undefined.value.message == (
        f"{tmp_path}/typo.md.j2:3: error: 'dict object' has no attribute 'titel' "
        '(did you mean "title"?)'
    )


def test_a_template_that_is_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "report.md.j2").write_bytes(b"\xff\xfe{{ report.title }}")
    with pytest.raises(RenderError) as error:
        render_report(report_spec(spec(), formats=("markdown",)), {}, None, environment(tmp_path))
    assert error.value.message == (
        "report.md.j2: a template is not UTF-8 text (byte 0xff at offset 0); "
        "save the templates as UTF-8"
    )


def test_autoescape_is_on_for_html_and_off_for_markdown(tmp_path: Path) -> None:
    for name in ("x.html.j2", "x.svg.j2", "x.md.j2"):
        (tmp_path / name).write_text("{{ value }}")
    env = environment(tmp_path)
    assert env.get_template("x.html.j2").render(value="<b>") == "&lt;b&gt;"
    assert env.get_template("x.svg.j2").render(value="<b>") == "&lt;b&gt;"
    assert env.get_template("x.md.j2").render(value="<b>") == "<b>"


def test_the_repo_templates_folder_is_the_packaged_one() -> None:
    root = Path(__file__).resolve().parent.parent
    link = root / "templates"
    assert link.is_symlink() and not Path(link.readlink()).is_absolute()
    assert link.resolve() == BUILTIN_TEMPLATES
    names = {p.name for p in BUILTIN_TEMPLATES.glob("*.j2")}
    assert {"base.html.j2", "report.html.j2", "report.md.j2", "index.html.j2"} <= names
    assert "index.md.j2" in names


def test_template_hashes_change_with_any_template(tmp_path: Path) -> None:
    before = template_hashes(tmp_path, ["report"])
    (tmp_path / "partials").mkdir()
    (tmp_path / "partials" / "x.html.j2").write_text("x")
    assert template_hashes(tmp_path, ["report"]) != before


# -- writing the site -------------------------------------------------------------------


def test_write_site_files_writes_text_and_bytes_atomically(tmp_path: Path) -> None:
    hashes = write_site_files(tmp_path, {"a.md": "é\n", "b.pdf": b"%PDF-1.4"})
    assert (tmp_path / "a.md").read_bytes() == "é\n".encode()
    assert (tmp_path / "b.pdf").read_bytes() == b"%PDF-1.4"
    assert hashes == {
        "a.md": content_hash("é\n"),
        "b.pdf": content_hash(b"%PDF-1.4"),
    }
    assert not list(tmp_path.glob(".*.tmp"))
    # Named exactly as the writers name them (8 random characters), as a killed run leaves.
    (tmp_path / ".a.md.x1y2z3_4.tmp").write_text("partial")
    (tmp_path / ".writing-x2y3z4_5.tmp").mkdir()  # a killed writer's folder of temporary files
    (tmp_path / ".writing-x2y3z4_5.tmp" / "a.md").write_text("partial")
    clean_partial_writes(tmp_path)
    remove_site_files(tmp_path, ["a.md", "gone.html"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.pdf"]


def test_unknown_format_is_an_error() -> None:
    with pytest.raises(RenderError, match="format 'docx' cannot be rendered"):
        render_report(report_spec(spec(), formats=("docx",)), {}, None, environment(None))


def test_rendering_pauses_the_garbage_collector_only_while_it_runs() -> None:
    import gc

    agg = spec()
    assert gc.isenabled()
    render_report(report_spec(agg), {}, None, environment(None))
    assert gc.isenabled()
    gc.disable()
    try:
        render_report(report_spec(agg), {}, None, environment(None))
        assert not gc.isenabled()
    finally:
        gc.enable()


# -- PDF --------------------------------------------------------------------------------


def test_links_to_other_site_pages_are_dropped_before_printing() -> None:
    html = (
        '<a href="index.html">All</a> <a href="#by-status">S</a> '
        '<a href="https://example.com/x">E</a> <a href="x.md">M</a>'
    )
    assert pdf._SITE_LINK.sub("<a", html) == (
        '<a>All</a> <a href="#by-status">S</a> <a href="https://example.com/x">E</a> <a>M</a>'
    )


def test_pdf_without_a_browser_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv(pdf.BROWSER_ENV, raising=False)
    agg = spec()
    with pytest.raises(RenderError) as error:
        render_report(report_spec(agg, formats=("html", "pdf")), {}, None, environment(None))
    assert error.value.message == (
        "format pdf needs Chromium (or Google Chrome) to print the HTML page, and none was "
        "found on PATH (looked for chromium, chromium-browser, google-chrome, "
        "google-chrome-stable); install it (Debian/Ubuntu: apt-get install chromium), set "
        "CASEREPORT_CHROMIUM to its path, or remove pdf from the report's formats"
    )
    monkeypatch.setenv(pdf.BROWSER_ENV, "/nonexistent/chrome")
    with pytest.raises(RenderError, match="CASEREPORT_CHROMIUM=/nonexistent/chrome is not a file"):
        pdf.print_pdf("<p>x</p>")


@pytest.mark.skipif(pdf.find_browser() is None, reason="no Chromium installed to print PDFs")
def test_pdf_is_printed_by_chromium_and_deterministic() -> None:
    agg = spec()
    state = {agg.address: state_of(agg, [("OPEN", [3.0])])}
    report = report_spec(agg, formats=("html", "pdf"))
    env = environment(None)
    first = render_report(report, state, EMULATOR, env)
    second = render_report(report, state, EMULATOR, env)
    printed = first["r.pdf"]
    assert isinstance(printed, bytes) and printed.startswith(b"%PDF-")
    assert printed == second["r.pdf"]
    assert b"(D:20261126070000+00'00')" in printed


def test_fixture_state_loads() -> None:
    state = fixture_state()
    assert state.source is not None and state.source.kind == "emulator"
