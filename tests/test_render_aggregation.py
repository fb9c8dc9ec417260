"""How one aggregation reads (issue 13): the run it is compared with, the order and labels
of its groups, good and bad changes, the two-field matrix, the trend's axes and the
drill-down links into the Datadog app.

Golden pages are in ``tests/golden/aggregation/`` (regenerate with
``CASEREPORT_UPDATE_GOLDEN=1`` and review the diff).
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from aggregation_pages import (
    DATADOG,
    EMULATOR,
    NOW,
    WEEKLY,
    aggregation,
    gap_report,
    matrix_report,
    render_pages,
    state_for,
    weekly_report,
)
from casereport.definitions.reading import Reading
from casereport.render.charts import nice_scale
from casereport.render.context import aggregation_context, report_context
from casereport.render.filters import delta_arrow, judged, weekday
from casereport.render.links import case_list_url, group_query
from casereport.state.model import Source

GOLDEN = Path(__file__).parent / "golden" / "aggregation"
UPDATE = os.environ.get("CASEREPORT_UPDATE_GOLDEN") == "1"
PAGES = render_pages()


def _context(spec: Any, days: Any = range(1, 8), source: Source | None = EMULATOR) -> Any:
    return aggregation_context(spec, state=state_for(spec, days), source=source)


# -- compare -------------------------------------------------------------------------


def test_compare_7d_uses_the_run_a_week_before_and_names_it() -> None:
    spec = aggregation("by_status", ("status",), Reading(compare="7d"))
    context = _context(spec, range(1, 15))
    assert context["previous"] == {"fetched_at": "2026-11-23T06:00:00Z", "total": 109.0}
    assert context["delta"] == 122.0 - 109.0
    assert context["compared_text"] == "Mon 23 Nov"
    assert context["change_header"] == "Change vs Mon 23 Nov"
    assert context["change_text"] == "+13 (+11.9%) vs Mon 23 Nov"
    rows = {row["group"]: row for row in context["rows"]}
    # Closed: 80 today, 80 - 2 * 7 = 66 a week ago (not 78, the day before).
    assert rows["CLOSED"]["previous"] == 66.0 and rows["CLOSED"]["change"] == 14.0
    assert "vs Mon 23 Nov" in context["caption"]


def test_previous_keeps_the_words_pages_always_used() -> None:
    spec = aggregation("by_status", ("status",))
    context = _context(spec)
    assert context["previous"]["fetched_at"] == "2026-11-29T06:00:00Z"
    assert context["change_text"].endswith("since the previous run on 29 Nov 2026, 06:00 UTC")
    assert context["change_header"] == "Change"
    assert context["compared_text"] == "the previous run"


def test_two_runs_on_the_compared_day_name_it_by_its_time() -> None:
    spec, states, _ = weekly_report()
    first = spec.aggregations[0]
    context = aggregation_context(first, state=states[first.address])
    assert context["compared_text"] == "Mon 23 Nov, 06:00 UTC"
    assert weekday("2025-12-29T06:00:00Z", year=True) == "Mon 29 Dec 2025"


def test_no_run_near_the_comparison_shows_no_change_never_zero() -> None:
    spec = aggregation("by_status", ("status",), Reading(compare="7d"))
    context = _context(spec, [1, 2, 3, 12, 13])
    assert context["previous"] is None and context["delta"] is None
    assert context["change_text"] == "no run near 7 days ago: nothing to compare with"
    assert context["change_cell"] == "no run near 7 days ago"
    assert all(row["change"] is None and row["previous"] is None for row in context["rows"])
    assert context["trend"] is not None  # the runs are still drawn
    html, markdown = PAGES["gap.html"], PAGES["gap.md"]
    sections = (
        html.split('<section class="agg" id="by-priority"')[1].split("</section>")[0],
        markdown.split("## Cases by priority")[1].split("Trend")[0],
    )
    for section in sections:
        assert "no run near 7 days ago: nothing to compare with" in section
        assert "Change" not in section
    assert '<td class="num">±0</td>' not in html and "| ±0 |" not in markdown


# -- order and labels --------------------------------------------------------------------


def test_natural_order_and_words_by_default_everywhere() -> None:
    spec = aggregation("by_priority", ("priority",))
    context = _context(spec)
    assert [r["group"] for r in context["rows"]] == ["P1", "P2", "P3", "NOT_DEFINED"]
    assert [r["label"] for r in context["rows"]] == ["P1", "P2", "P3", "Not defined"]
    bars = re.findall(r'<text x="0" y="\d+">([^<]+)</text>', context["chart"]["svg_html"])
    assert bars == ["P1", "P2", "P3", "Not defined"]
    # P1 is the smallest group, yet the trend draws it: series follow the page's order.
    assert [s["label"] for s in context["trend"]["series"]] == ["Total", "P1", "P2", "P3"]
    assert context["table_md"].splitlines()[-1].startswith("| Not defined | 4 |")


def test_count_and_explicit_orders_and_labels() -> None:
    by_count = _context(aggregation("p", ("priority",), Reading(order="count")))
    assert [r["group"] for r in by_count["rows"]] == ["P3", "P2", "NOT_DEFINED", "P1"]
    explicit = _context(
        aggregation("p", ("priority",), Reading(order=("P3", "P1"), labels=(("P1", "Urgent"),)))
    )
    assert [r["group"] for r in explicit["rows"]] == ["P3", "P1", "P2", "NOT_DEFINED"]
    assert explicit["rows"][1]["label"] == "Urgent"
    assert '<th scope="row">Urgent</th>' in explicit["table_html"]
    team = _context(aggregation("t", ("team",)))  # no known enum: by count
    assert [r["group"] for r in team["rows"]] == ["Case Management", "billing", "edge"]


def test_trend_list_picks_the_series() -> None:
    spec = aggregation("s", ("status",), Reading(trend=("CLOSED", "IN_PROGRESS")))
    series = _context(spec)["trend"]["series"]
    assert [(s["group"], s["label"]) for s in series] == [
        (None, "Total"), ("CLOSED", "Closed"), ("IN_PROGRESS", "In progress"),
    ]  # fmt: skip


# -- better ------------------------------------------------------------------------------


def test_better_colours_changes_and_always_gives_an_arrow_and_a_sign() -> None:
    assert judged(3.0, "lower") == ("▲ +3", "bad")
    assert judged(-3.0, "lower") == ("▼ −3", "good")
    assert judged(3.0, "higher") == ("▲ +3", "good")
    assert judged(0.0, "higher") == ("±0", "")
    assert judged(3.0, None) == ("+3", "")
    assert delta_arrow(None, "lower") == "–"
    lower = _context(aggregation("s", ("status",), Reading(better="lower")))
    assert '<td class="num bad">▲ +2</td>' in lower["table_html"]  # closed: 78 -> 80
    assert '<td class="num good">▼ −1</td>' in lower["table_html"]  # in progress: 13 -> 12
    assert '<td class="num">±0</td>' in lower["table_html"]  # open: 30 -> 30
    assert "| ▲ +2 |" in lower["table_md"]
    assert lower["delta_class"] == "bad" and lower["change_text"].startswith("▲ +")
    assert lower["caption"].endswith("; lower is better")
    neutral = _context(aggregation("s", ("status",)))
    assert "▲" not in neutral["table_html"] + neutral["table_md"] + neutral["change_text"]
    assert 'class="num good"' not in neutral["table_html"] and neutral["delta_class"] == ""


# -- matrix and several fields ------------------------------------------------------------


def test_two_fields_read_as_a_matrix_with_totals() -> None:
    context = _context(aggregation("m", ("status", "priority"), Reading(better="lower")))
    grid = context["matrix"]
    assert [v["label"] for v in grid["row_values"]] == ["Open", "In progress", "Closed"]
    assert [v["label"] for v in grid["column_values"]] == ["P1", "P2", "P3", "Not defined"]
    assert [v["total"] for v in grid["row_values"]] == [26.0, 9.0, 72.0]
    assert grid["total"] == context["groups_sum"] == 107.0
    # IN_PROGRESS / NOT_DEFINED is not listed, and nothing is cut: it had no cases.
    assert grid["cells"][1][3]["count"] is None
    html = str(grid["html"])
    assert html.startswith('<table class="matrix">\n<caption>')
    assert '<th scope="col" class="num">Not defined</th>' in html
    assert '<tfoot><tr><th scope="row">Total</th>' in html
    assert '<td class="num muted">0</td>' in html
    assert '<span class="chg bad">▲ +1</span>' in html  # closed / P1: 5 -> 6
    assert "| Open | 2 | 6 | 15 | 3 | 26 |" in grid["md"]
    assert grid["md"].splitlines()[-1] == "| **Total** | 9 | 26 | 61 | 11 | 107 |"
    assert context["chart"] is not None  # for templates of one's own; the page shows the matrix


def test_groups_that_do_not_split_fall_back_to_the_list() -> None:
    spec = aggregation("m", ("status", "priority"))
    state = state_for(spec, [1])
    groups = [*state.result["groups"], {"group": "odd value", "value": [1]}]
    state = replace(state, result={**state.result, "groups": groups, "total": 108})
    context = aggregation_context(spec, state=state)
    assert context["matrix"] is None
    assert context["group_columns"] == ["Status / priority"]
    assert "odd value" in context["table_html"]


def test_three_fields_read_as_one_column_per_field() -> None:
    context = _context(aggregation("t", ("status", "priority", "team")))
    assert context["matrix"] is None
    assert context["group_columns"] == ["Status", "Priority", "Team"]
    first = context["table_html"].splitlines()[0]
    assert first.startswith('<tr><th scope="row">Open</th><td>P1</td><td>billing</td>')
    assert context["table_md"].splitlines()[0].startswith("| Open | P1 | billing | 3 |")
    markdown = PAGES["matrix.md"]
    assert "| Status | Priority | Team | Cases | % of total | Change |" in markdown


# -- trend ----------------------------------------------------------------------------


def test_nice_scale_steps_one_two_five() -> None:
    assert nice_scale(2104) == (2500.0, (0.0, 500.0, 1000.0, 1500.0, 2000.0, 2500.0))
    assert nice_scale(20)[0] == 20.0 and nice_scale(20)[1][1] == 5.0
    assert nice_scale(3) == (3.0, (0.0, 1.0, 2.0, 3.0))
    assert nice_scale(0) == (1.0, (0.0, 1.0))


def test_trend_has_a_time_axis_ticks_and_points() -> None:
    spec = aggregation("s", ("status",))
    trend = _context(spec, [1, 2, 3, 10, 20])["trend"]
    assert trend["ticks_x"] == ["10 Nov", "16 Nov", "23 Nov", "30 Nov"]
    assert trend["ticks_y"] == [0.0, 50.0, 100.0, 150.0]  # the total reaches 122
    svg = str(trend["svg_html"])
    for label in ("10 Nov", "30 Nov", ">150<", ">50<"):
        assert label in svg
    # Time, not run number, spaces the points: 20 days back is at the left edge, 10 days
    # back halfway, and the daily runs at the right.
    xs = [int(x) for x in re.findall(r"M(\d+) \d+h0", trend["series"][0]["points"])]
    assert xs == [4, 300, 507, 537, 566, 596]
    assert trend["series"][0]["path"].startswith("M4 ")
    assert svg.count('class="dots ') == len(trend["series"])
    assert "Total from" in trend["summary"]


# -- drill-down -------------------------------------------------------------------------


def test_datadog_data_links_to_the_case_list_and_each_group() -> None:
    spec = aggregation("t", ("team",), query="project:SUP -status:closed")
    context = _context(spec, source=DATADOG)
    assert context["link"] == (
        "https://app.datadoghq.eu/cases?query=project%3ASUP%20-status%3Aclosed"
    )
    link = context["rows"][0]["link"]
    assert parse_qs(urlsplit(link).query)["query"] == [
        'project:SUP -status:closed team:"Case Management"'
    ]
    assert f'<a href="{link}">Case Management</a>' in context["table_html"]
    assert f"[Case Management]({link})" in context["table_md"]
    assert group_query("a OR b", ("status", "priority"), "OPEN / P1") == (
        "(a OR b) status:OPEN priority:P1"
    )
    assert group_query("", ("status",), "") is None
    assert case_list_url("us3.datadoghq.com", 'a:"b c"') == (
        "https://us3.datadoghq.com/cases?query=a%3A%22b%20c%22"
    )


def test_no_links_for_emulator_data_or_an_unknown_api_url() -> None:
    spec = aggregation("t", ("team",))
    for source in (EMULATOR, Source("datadog", "https://dd.example.test"), None):
        context = _context(spec, source=source)
        assert context["link"] is None and all(r["link"] is None for r in context["rows"])
        assert "<a " not in context["table_html"]
    assert "datadoghq" not in PAGES["weekly.html"] and "datadoghq" not in PAGES["gap.md"]


def test_links_reach_the_page_escaped() -> None:
    html = PAGES["matrix.html"]
    assert '<a href="https://app.datadoghq.eu/cases?query=project%3ASUP">these cases in' in html
    assert "status%3AOPEN%20priority%3AP1" in html
    spec, states, _ = matrix_report()
    context = report_context(spec, states, DATADOG)
    assert context["aggregations"][0]["link"].startswith("https://app.datadoghq.eu/cases?")


# -- pages -----------------------------------------------------------------------------


def test_summary_table_says_when_no_run_is_near() -> None:
    spec, states, source = gap_report()
    context = report_context(spec, states, source)
    assert "no run near 7 days ago" in context["summary_md"]
    assert "first run" not in context["summary_md"]


def test_a_weekly_schedule_compares_monday_with_monday() -> None:
    weekdays = [d for d in range(1, 22) if (NOW.weekday() - d) % 7 < 5]
    spec = aggregation("s", ("status",), WEEKLY)
    context = _context(spec, weekdays)
    assert context["compared_text"] == "Mon 23 Nov"


@pytest.mark.parametrize("name", sorted(PAGES))
def test_page_matches_its_golden_file(name: str) -> None:
    golden = GOLDEN / name
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(PAGES[name].encode("utf-8"))
    assert golden.exists(), f"no golden file {golden}; create it with CASEREPORT_UPDATE_GOLDEN=1"
    # Bytes, not text: the data files' CRLF line ends (CSV) are part of what is checked.
    assert PAGES[name] == golden.read_bytes().decode("utf-8"), (
        f"{name} differs from {golden}; if the change is intended, regenerate with "
        "CASEREPORT_UPDATE_GOLDEN=1 and review the diff"
    )


def test_no_stray_golden_files() -> None:
    assert sorted(p.name for p in GOLDEN.iterdir()) == sorted(PAGES)
