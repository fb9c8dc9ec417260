"""Page-level parts of a report: headline tiles, ``for_each`` family tables, the site title
and the PDF page (issue 13, points 6, 8 and 12).

Golden pages for tiles judged by ``better:`` and for a family are in
``tests/golden/pages/`` (regenerate with CASEREPORT_UPDATE_GOLDEN=1 and review the diff).
The reading keys are set on the specs directly (``dataclasses.replace``), as the report
files will once they accept them.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

import pytest
from markupsafe import Markup

from apply_workspace import Workspace as ApplyWorkspace
from casereport.definitions.expand import AggregationSpec, Expansion, ReportSpec
from casereport.definitions.reading import Reading
from casereport.engine.workspace import Workspace
from casereport.errors import ConfigError
from casereport.render import pdf
from casereport.render.context import aggregation_context, index_context, report_context
from casereport.render.families import MAX_COLUMNS, family, family_title, runs
from casereport.render.filters import spark
from casereport.render.pages import render_index, render_report
from casereport.render.templates import environment, template_hashes
from casereport.render.tiles import (
    Figures,
    change,
    family_figures,
    figures,
    page_figures,
    short_day,
    tile,
)
from casereport.settings import SETTINGS_FILE, load_settings, read_settings
from conftest import EmulatorFactory
from test_render import EMULATOR, entry, report_spec, spec, state_of
from test_render_golden import fixture_reports, fixture_state

GOLDEN = Path(__file__).parent / "golden" / "pages"
UPDATE = os.environ.get("CASEREPORT_UPDATE_GOLDEN") == "1"


def _read(specs: tuple[AggregationSpec, ...], **changes: Any) -> tuple[AggregationSpec, ...]:
    return tuple(
        dataclasses.replace(s, reading=dataclasses.replace(s.reading, **changes)) for s in specs
    )


def _golden_sites() -> dict[str, str]:
    """Two pages: a for_each family page whose changes are judged ``better: lower``, and
    a page judged ``better: higher`` comparing with a week before (and one aggregation
    with four weeks before, which the history does not reach)."""
    reports = {r.name: r for r in fixture_reports()}
    state = fixture_state()
    family_report = dataclasses.replace(
        reports["service-health"],
        formats=("markdown", "html"),
        aggregations=_read(reports["service-health"].aggregations, better="lower"),
    )
    # (without the fixture's checks: these pages pin the tiles and the reading keys; the
    # checks are pinned by tests/golden/render)
    backlog = reports["support-backlog"]
    unchecked = tuple(dataclasses.replace(a, checks=()) for a in backlog.aggregations)
    weekly = list(_read(unchecked, better="higher", compare="7d"))
    weekly[2] = dataclasses.replace(weekly[2], reading=Reading(compare="28d", better="higher"))
    weekly_report = dataclasses.replace(backlog, aggregations=tuple(weekly), checks=())
    env = environment(None)
    pages: dict[str, str] = {}
    for report, stem in (
        (family_report, "family-better-lower"),
        (weekly_report, "tiles-better-higher-7d"),
    ):
        rendered = render_report(report, state.aggregations, state.source, env)
        for name, text in rendered.items():
            assert isinstance(text, str)
            pages[f"{stem}{name[len(report.name) :]}"] = text
    return pages


PAGES = _golden_sites()


@pytest.mark.parametrize("name", sorted(PAGES))
def test_page_matches_its_golden_file(name: str) -> None:
    golden = GOLDEN / name
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(PAGES[name].encode("utf-8"))  # as rendered: a CSV's CRLF kept
    assert golden.exists(), f"no golden file {golden}; create it with CASEREPORT_UPDATE_GOLDEN=1"
    assert PAGES[name] == golden.read_bytes().decode("utf-8"), (
        f"{name} differs from {golden}; if the change is intended, regenerate with "
        "CASEREPORT_UPDATE_GOLDEN=1 and review the diff"
    )


def test_no_stray_golden_files() -> None:
    assert sorted(p.name for p in GOLDEN.iterdir()) == sorted(PAGES)


def test_the_golden_pages_show_what_they_are_for() -> None:
    lower, higher = PAGES["family-better-lower.html"], PAGES["tiles-better-higher-7d.html"]
    # Every change on the family page went up: worse, in red, with its arrow and sign.
    assert (
        '<p class="tile-change bad"><span class="delta">▲ +43 (+3.4%)</span> '
        '<span class="verdict">worse</span>' in lower
    )
    assert "good" not in re.findall(r"tile-change (\w+)", lower)
    assert '<section class="family" id="open-by-priority-all"' in lower
    # A week before 26 Nov is Thu 19 Nov; nothing is near four weeks before.
    assert '<p class="tile-change good"><span class="delta">▲ +' in higher
    assert "vs Thu 19 Nov" in higher and "no run near 28 days ago" in higher
    md = PAGES["tiles-better-higher-7d.md"]
    assert "| Open P1 and P2 cases by service | 115 | – | no run near 28 days ago |" in md
    assert re.search(
        r"\| Support cases by status \| 2,104 \| ▲ \+\d+ \(\+[\d.]+%\), better \| Thu 19 Nov \|", md
    )


# -- tiles ------------------------------------------------------------------------------


def _history(*days_totals: tuple[int, float]) -> tuple[dict[str, Any], ...]:
    return tuple(entry(f"2026-11-{d:02d}T06:00:00Z", t, {"OPEN": t}) for d, t in days_totals)


def _figures(compare: str = "previous", better: str | None = None, total: float = 50) -> Figures:
    agg = dataclasses.replace(spec(), reading=Reading(compare=compare, better=better))
    state = state_of(
        agg,
        [("OPEN", [total])],
        history=_history((16, 30), (19, 40), (25, 45)),
        fetched_at="2026-11-26T06:00:00Z",
    )
    return figures(agg, state)


def test_a_tile_compares_with_the_run_its_compare_key_picks() -> None:
    previous = _figures()
    assert previous.compared == ("2026-11-25T06:00:00Z", 45.0)
    assert previous.series == (30, 40, 45, 50)
    week = _figures("7d")
    assert week.compared == ("2026-11-19T06:00:00Z", 40.0)
    moved = change(week)
    assert (moved.change, moved.text, moved.compared_text) == (
        10,
        "▲ +10 (+25.0%)",
        "vs Thu 19 Nov",
    )
    month = change(_figures("28d"))
    assert (month.change, month.text, month.compared_text) == (None, "", "no run near 28 days ago")
    assert month.cell == "no run near 28 days ago"


@pytest.mark.parametrize(
    ("better", "total", "verdict", "text", "word"),
    [
        ("lower", 50, "bad", "▲ +5 (+11.1%)", "worse"),
        ("lower", 40, "good", "▼ −5 (−11.1%)", "better"),
        ("higher", 50, "good", "▲ +5 (+11.1%)", "better"),
        ("higher", 40, "bad", "▼ −5 (−11.1%)", "worse"),
        (None, 50, "neutral", "▲ +5 (+11.1%)", ""),
        ("lower", 45, "neutral", "= ±0", ""),
    ],
)
def test_a_change_is_judged_by_better_and_always_has_an_arrow_and_a_sign(
    better: str | None, total: float, verdict: str, text: str, word: str
) -> None:
    figs = _figures(better=better, total=total)
    shown = tile("Open cases", "#open", "open", figs)
    assert (shown["verdict"], shown["change_text"], shown["verdict_text"]) == (verdict, text, word)
    html = str(shown["html"])
    assert f'<p class="tile-change {verdict}"><span class="delta">{text}</span>' in html
    assert (f'<span class="verdict">{word}</span>' in html) == bool(word)
    cell = f"{text}, {word}" if word else text
    assert shown["md"] == f"| Open cases | {total:.0f} | {cell} | Wed 25 Nov | `{shown['spark']}` |"


def test_a_tile_without_a_run_to_compare_or_without_data() -> None:
    agg = spec()
    first = tile("T", "#t", "t", figures(agg, state_of(agg, [("OPEN", [3.0])])))
    assert (first["change"], first["compared_text"], first["spark_svg"]) == (
        None,
        "nothing to compare with yet",
        "",
    )
    assert first["md"] == "| T | 3 | – | nothing to compare with yet | – |"
    missing = tile("T", "#t", "t", figures(agg, None))
    assert missing["fetched"] is False and missing["compared_text"] == "not fetched yet"
    assert "<strong>–</strong>" in str(missing["html"])


def test_the_sparkline_is_an_labelled_svg_of_the_totals() -> None:
    shown = tile("Open <b>", "#open", "open", _figures())
    svg = str(shown["spark_svg"])
    assert svg.startswith('<svg class="spark" viewBox="0 0 120 32"')
    assert 'aria-labelledby="open-st open-sd"' in svg
    assert '<title id="open-st">Totals over the last 4 runs: Open &lt;b&gt;</title>' in svg
    assert "4 runs: from 30 to 50, lowest 30, highest 50." in svg
    # 30, 40, 45, 50: lowest at the bottom, highest at the top, evenly spaced.
    assert '<path class="line" d="M2 29 L41 16 L79 9 L118 3"/>' in svg
    flat = tile("Flat", "#f", "f", dataclasses.replace(_figures(), series=(4.0, 4.0, 4.0)))
    assert '<path class="line" d="M2 16 L60 16 L118 16"/>' in str(flat["spark_svg"])
    assert shown["spark"] == "▁▅▆█"


@pytest.mark.parametrize(
    ("compare", "history", "changed_at", "fetched"),
    [
        ("previous", _history((16, 30), (19, 40), (25, 45)), None, True),
        ("7d", _history((16, 30), (19, 40), (25, 45)), None, True),  # Thu 19 Nov
        ("28d", _history((16, 30), (19, 40), (25, 45)), None, True),  # no run near
        ("previous", _history((16, 30), (19, 40), (25, 45)), "2026-11-19T06:00:00Z", True),
        ("previous", _history((25, 45)), None, True),  # one earlier run: a line of two
        ("previous", (), None, True),  # the first run: no trend, no compared run
        ("previous", (), None, False),  # not fetched
    ],
)
def test_a_page_tile_reads_the_figures_its_aggregation_context_found(
    compare: str, history: tuple[dict[str, Any], ...], changed_at: str | None, fetched: bool
) -> None:
    agg = dataclasses.replace(spec(), reading=Reading(compare=compare, better="lower"))
    state = state_of(agg, [("OPEN", [50.0])], history=history, fetched_at="2026-11-26T06:00:00Z")
    state = dataclasses.replace(state, query_changed_at=changed_at) if fetched else None
    page = aggregation_context(agg, state=state, html_id="open")
    read = page_figures(agg, state, page)
    found = figures(agg, state)  # read from the history, as the index does
    assert dataclasses.replace(read, spark_text=None) == found
    # The trend's total line is the tile's text sparkline, on the same scale.
    if len(found.series) > 1:
        assert read.spark_text == spark(found.series, min(found.series), max(found.series), True)
    assert tile("T", "#t", "t", read) == tile("T", "#t", "t", found)


def test_a_tile_escapes_a_plain_title_every_time_and_leaves_markup_as_it_is() -> None:
    figs = _figures()
    for _ in range(2):  # the second time from the escaped forms kept
        assert "Open &lt;b&gt;</a>" in tile("Open <b>", "#o", "o", figs)["html"]
        assert "Open <b></a>" in tile(Markup("Open <b>"), "#o", "o", figs)["html"]


def test_short_day_adds_the_year_only_when_it_differs() -> None:
    assert short_day("2026-11-30T06:00:00Z", "2026-12-07T06:00:00Z") == "Mon 30 Nov"
    assert short_day("2025-12-29T06:00:00Z", "2026-01-05T06:00:00Z") == "Mon 29 Dec 2025"


# -- families ---------------------------------------------------------------------------


def _family_specs(limit: int = 6) -> tuple[AggregationSpec, ...]:
    return tuple(
        spec(
            "open_by_priority",
            key=key,
            title=f"Open on {key} by priority",
            groups=("priority",),
            limit=limit,
        )
        for key in ("api", "web", "db")
    )


def test_runs_split_families_from_plain_aggregations() -> None:
    lone = spec("lone", key="only")
    plain_a, plain_b = spec("a"), spec("b")
    members = _family_specs()
    split = runs((plain_a, *members, plain_b, lone))
    assert [(is_family, [s.address for s in specs]) for is_family, specs in split] == [
        (False, ["r.a"]),
        (True, [m.address for m in members]),
        (False, ["r.b", 'r.lone["only"]']),  # a for_each of one item reads as plain
    ]


def test_family_title_replaces_the_key() -> None:
    assert family_title(_family_specs()) == "Open on … by priority"
    untitled = [
        dataclasses.replace(s, title=f"Priority queue {n}") for n, s in enumerate(_family_specs())
    ]
    assert family_title(untitled) == "Priority queue …"


def test_a_family_table_has_an_item_per_row_and_groups_in_reading_order() -> None:
    specs = _family_specs()
    states = {
        specs[0].address: state_of(
            specs[0], [("P3", [10.0]), ("P1", [2.0]), ("NOT_DEFINED", [1.0])]
        ),
        specs[1].address: state_of(specs[1], [("P2", [4.0])], total=5),
    }
    ids = {s.address: s.key or "" for s in specs}
    table = family(specs, states, ids, "fam")
    assert [c["label"] for c in table["columns"]] == ["P1", "P2", "P3", "Not defined"]
    assert [row["counts"] for row in table["items"]] == [
        [2.0, 0.0, 10.0, 1.0],
        [0.0, 4.0, 0.0, 0.0],
        [None, None, None, None],  # not fetched yet
    ]
    assert table["column_totals"] == [2.0, 4.0, 10.0, 1.0]
    assert table["total"] == 18.0  # the items' totals (5, not the 4 in groups, for web)
    assert (
        '<tr><th scope="row"><a href="#web">web</a></th>'
        '<td class="num">0</td><td class="num">4</td>' in table["table_html"]
    )
    assert "| **All items** | 2 | 4 | 10 | 1 | **18** |" in table["table_md"]
    assert table["notes"] == [
        "A count shown as – is unknown: that item's groups filled its limit, "
        "or it is not fetched yet."
    ]
    ordered = family(_read(specs, order="count"), states, ids, "fam")
    assert [c["group"] for c in ordered["columns"]] == ["P3", "P2", "P1", "NOT_DEFINED"]
    labelled = family(_read(specs, labels=(("P1", "Urgent"),)), states, ids, "fam")
    assert labelled["columns"][0]["label"] == "Urgent"


def test_a_full_item_leaves_absent_groups_unknown_and_columns_are_capped() -> None:
    specs = _family_specs(limit=1)
    states = {
        specs[0].address: state_of(specs[0], [("P1", [3.0])]),
        specs[1].address: state_of(specs[1], [("P2", [1.0])]),
    }
    table = family(specs[:2], states, {s.address: "x" for s in specs}, "fam")
    assert [row["counts"] for row in table["items"]] == [[3.0, None], [None, 1.0]]
    many = tuple(spec("svc", key=k, groups=("services",), limit=100) for k in ("a", "b"))
    groups = [(f"s{n:02d}", [float(n + 1)]) for n in range(MAX_COLUMNS + 3)]
    wide = family(
        many, {many[0].address: state_of(many[0], groups)}, {s.address: "x" for s in many}, "fam"
    )
    assert len(wide["columns"]) == MAX_COLUMNS
    assert wide["columns"][0]["group"] == f"s{MAX_COLUMNS + 2:02d}"  # the largest, by count
    assert wide["notes"][0].startswith(
        f"Only the {MAX_COLUMNS} largest groups are columns here (3 more"
    )


def test_a_family_tile_sums_its_items_and_compares_only_when_all_can() -> None:
    specs = _family_specs()
    history = _history((24, 5), (25, 6))
    states = {
        s.address: state_of(s, [("P1", [float(n + 7)])], history=history)
        for n, s in enumerate(specs)
    }
    summed = family_figures([figures(s, states.get(s.address)) for s in specs])
    assert (summed.total, summed.compared, summed.series) == (
        24.0,
        ("2026-11-25T06:00:00Z", 18.0),
        (15, 18, 24),
    )
    assert tile("F", "#f", "f", summed)["scope"] == "sum of 3 items"
    states[specs[2].address] = state_of(specs[2], [("P1", [1.0])])  # no history: no sum to compare
    partial = family_figures([figures(s, states.get(s.address)) for s in specs])
    # The runs every item has: only this one (the third item has no history).
    assert (partial.total, partial.compared, partial.series) == (16.0, None, (16,))
    del states[specs[2].address]
    pending = tile(
        "F", "#f", "f", family_figures([figures(s, states.get(s.address)) for s in specs])
    )
    assert pending["scope"] == "sum of 2 of 3 items (the others not fetched yet)"


def test_a_report_page_shows_tiles_then_each_family_table_before_its_items() -> None:
    specs = (spec("first", title="First"), *_family_specs(), spec("last", title="Last"))
    states = {s.address: state_of(s, [("P1", [1.0])]) for s in specs}
    report = report_spec(*specs)
    context = report_context(report, states, EMULATOR)
    assert [t["title"] for t in context["tiles"]] == ["First", "Open on … by priority", "Last"]
    assert [(s["family"] or {}).get("id") for s in context["sections"]] == [
        None,
        "open-by-priority-all",
        None,
    ]
    assert [len(s["aggregations"]) for s in context["sections"]] == [1, 3, 1]
    pages = render_report(report, states, EMULATOR, environment(None))
    html, md = str(pages["r.html"]), str(pages["r.md"])
    order = [
        html.index(marker)
        for marker in (
            'class="tiles"',
            'id="first"',
            'id="open-by-priority-all"',
            'id="open-by-priority-api"',
            'id="last"',
        )
    ]
    assert order == sorted(order)
    headings = re.findall(r"^## (.+)$", md, re.MULTILINE)
    assert headings == [
        "Headlines",
        "First",
        "Open on … by priority",
        "Open on api by priority",
        "Open on web by priority",
        "Open on db by priority",
        "Last",
    ]


def test_the_index_shows_each_reports_headline_tile_and_compared_changes() -> None:
    agg = dataclasses.replace(spec(), reading=Reading(compare="7d", better="lower"))
    state = state_of(
        agg,
        [("OPEN", [50.0])],
        history=_history((19, 40), (25, 45)),
        fetched_at="2026-11-26T06:00:00Z",
    )
    context = index_context([report_spec(agg)], {agg.address: state}, EMULATOR)
    entry_ = context["reports"][0]
    assert entry_["headline"]["link"] == "r.html#by-status"
    assert entry_["aggregations"][0]["delta"] == 10  # against 19 Nov, not the run of 25 Nov
    assert "▲ +10 (+25.0%), worse" in entry_["table_md"]
    pages = render_index([report_spec(agg)], {agg.address: state}, EMULATOR, environment(None))
    assert 'id="r-headline-st"' in str(pages["index.html"])
    assert "| Cases by status | 50 | ▲ +10 (+25.0%), worse | Thu 19 Nov |" in str(pages["index.md"])


# -- site title and PDF page size -------------------------------------------------------


def test_site_title_and_pdf_page_size_settings(tmp_path: Path) -> None:
    assert (read_settings(tmp_path)[0].site_title, read_settings(tmp_path)[0].pdf_page_size) == (
        "Case reports",
        "A4",
    )
    (tmp_path / SETTINGS_FILE).write_text(
        'site_title = "  Support reports "\npdf_page_size = "Letter"\n'
    )
    settings = load_settings(tmp_path)
    assert (settings.site_title, settings.pdf_page_size) == ("Support reports", "Letter")
    (tmp_path / SETTINGS_FILE).write_text(
        'strict = true\nsite_title = ""\npdf_page_size = "letter"\n'
    )
    with pytest.raises(ConfigError) as raised:
        load_settings(tmp_path)
    path = tmp_path / SETTINGS_FILE
    assert raised.value.message.splitlines() == [
        f'{path}:2:1: error: "site_title" must be a non-empty string, '
        'e.g. site_title = "Support reports"',
        f'{path}:3:1: error: "pdf_page_size" must be "A4" or "Letter", '
        "got 'letter' (did you mean \"Letter\"?)",
    ]
    (tmp_path / SETTINGS_FILE).write_text(f'site_title = "{"x" * 101}"\n')
    assert "one line of at most 100 characters" in str(read_settings(tmp_path)[1][0])


def test_the_site_title_shows_on_every_page_and_re_renders_them() -> None:
    agg = spec()
    report = report_spec(agg)
    states = {agg.address: state_of(agg, [("OPEN", [1.0])])}
    env = environment(None, site_title="Support <desk>", pdf_page_size="Letter")
    pages = {
        **render_report(report, states, EMULATOR, env),
        **render_index([report], states, EMULATOR, env),
    }
    assert "<title>Report title · Support &lt;desk&gt;</title>" in str(pages["r.html"])
    assert "<h1>Support &lt;desk&gt;</h1>" in str(pages["index.html"])
    assert "# Support \\<desk\\>" in str(pages["index.md"])
    assert "@page{size:Letter;" in str(pages["r.html"])
    assert "@page{size:A4;" in str(
        render_report(report, states, EMULATOR, environment(None))["r.html"]
    )
    default = template_hashes(None, ["report"])
    assert (
        template_hashes(None, ["report"], site_title="Case reports", pdf_page_size="A4") == default
    )
    assert template_hashes(None, ["report"], site_title="Support") != default
    assert template_hashes(None, ["report"], pdf_page_size="Letter") != default


def test_the_workspace_hashes_its_site_settings(tmp_path: Path) -> None:
    expansion = Expansion(fixture_reports(), ())

    def hashes() -> dict[str, str]:
        settings = read_settings(tmp_path)[0]
        site = tmp_path / "site"
        return Workspace(
            settings, expansion, tmp_path / "s.json", site, tmp_path / "t", 1
        ).template_hashes

    default = hashes()
    assert default == template_hashes(tmp_path / "t", ["report"])
    (tmp_path / SETTINGS_FILE).write_text('site_title = "Support"\n')
    assert hashes() != default  # a new title re-renders every page


def _pdf_pages(data: bytes) -> list[bytes]:
    return re.findall(rb"/MediaBox\s*\[([^\]]*)\]", data)


@pytest.mark.skipif(pdf.find_browser() is None, reason="no Chromium installed to print PDFs")
@pytest.mark.parametrize(("size", "width"), [("A4", b"594.9"), ("Letter", b"612")])
def test_the_pdf_page_size_and_aggregations_share_pages(size: str, width: bytes) -> None:
    reports = {r.name: r for r in fixture_reports()}
    state = fixture_state()
    report: ReportSpec = dataclasses.replace(reports["service-health"], formats=("pdf",))
    printed = render_report(
        report, state.aggregations, state.source, environment(None, pdf_page_size=size)
    )
    data = printed["service-health.pdf"]
    assert isinstance(data, bytes)
    boxes = _pdf_pages(data)
    assert boxes and all(box.split()[2].startswith(width) for box in boxes)
    # Kept whole, each aggregation (a table, a chart and a trend) starts a page of its
    # own wherever it does not fit below the one before; split between its parts, the
    # same page prints on fewer pages.
    html = render_report(
        dataclasses.replace(report, formats=("html",)),
        state.aggregations,
        state.source,
        environment(None, pdf_page_size=size),
    )["service-health.html"]
    assert isinstance(html, str)
    whole = html.replace("</style>", "@media print{section.agg{break-inside:avoid}}</style>")
    assert len(boxes) < len(_pdf_pages(pdf.print_pdf(whole)))


def test_apply_uses_the_site_settings_and_a_new_title_re_renders_every_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: EmulatorFactory
) -> None:
    monkeypatch.chdir(tmp_path)
    ws = ApplyWorkspace(tmp_path, emulator())
    (tmp_path / SETTINGS_FILE).write_text('site_title = "Support desk"\n')
    assert ws.apply().exit_code == 0
    index = (tmp_path / "site" / "index.html").read_text()
    assert "<title>Support desk</title>" in index and "<h1>Support desk</h1>" in index
    page = (tmp_path / "site" / "support-backlog.html").read_text()
    assert "<title>Support backlog · Support desk</title>" in page
    assert '<ul class="tiles">' in page and "@page{size:A4;" in page
    assert ws.plan().output.rstrip().endswith("No changes. Reports are up to date.")
    (tmp_path / SETTINGS_FILE).write_text('site_title = "Support"\npdf_page_size = "Letter"\n')
    planned = ws.plan().output
    assert (
        "Plan: 0 to fetch (0 new, 0 changed, 0 stale), 3 reports to render, 0 to delete." in planned
    )
    assert ws.apply().exit_code == 0
    page = (tmp_path / "site" / "support-backlog.html").read_text()
    assert "<title>Support backlog · Support</title>" in page and "@page{size:Letter;" in page


def test_the_index_headline_of_a_family_links_to_its_table() -> None:
    specs = (*_family_specs(), spec("last", title="Last"))
    states = {s.address: state_of(s, [("P1", [2.0])]) for s in specs}
    report = report_spec(*specs)
    headline = index_context([report], states, EMULATOR)["reports"][0]["headline"]
    page = report_context(report, states, EMULATOR)
    assert headline["link"] == f"r.html{page['tiles'][0]['link']}" == "r.html#open-by-priority-all"
    assert (headline["title"], headline["total"], headline["scope"]) == (
        "Open on … by priority",
        6.0,
        "sum of 3 items",
    )
