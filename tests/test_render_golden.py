"""Golden files: the Markdown and HTML site rendered from a fixed state.

The fixture is ``tests/fixtures/render_state.json`` (real emulator results for the
example reports, with history added, plus hand-made hostile and empty results for
``edge-cases``) and the report files in ``tests/fixtures/render_reports/``. The expected
pages are in ``tests/golden/render/``. After a deliberate change to the templates or the
context, regenerate them and review the diff:

    CASEREPORT_UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_render_golden.py
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest

from casereport.definitions.expand import ReportSpec, expand
from casereport.definitions.load import load_reports
from casereport.render.pages import render_index, render_report
from casereport.render.templates import environment
from casereport.render.write import write_site_files
from casereport.state.model import State, load_state

FIXTURES = Path(__file__).parent / "fixtures"
GOLDEN = Path(__file__).parent / "golden" / "render"
UPDATE = os.environ.get("CASEREPORT_UPDATE_GOLDEN") == "1"


def fixture_reports() -> tuple[ReportSpec, ...]:
    expansion = expand(load_reports(FIXTURES / "render_reports").reports)
    assert expansion.ok, [str(d) for d in expansion.diagnostics]
    return expansion.reports


def fixture_state() -> State:
    state = load_state(FIXTURES / "render_state.json")
    assert state is not None
    return state


def render_fixture_site(templates_dir: Path | None = None) -> dict[str, str | bytes]:
    """Every page of the fixture site, in memory."""
    reports = fixture_reports()
    state = fixture_state()
    env = environment(templates_dir)
    pages: dict[str, str | bytes] = {}
    for report in reports:
        pages.update(render_report(report, state.aggregations, state.source, env))
    pages.update(render_index(reports, state.aggregations, state.source, env))
    return pages


def write_fixture_site(site_dir: Path) -> list[str]:
    """Render the fixture site into ``site_dir``; return the file names."""
    pages = render_fixture_site()
    write_site_files(site_dir, pages)
    return sorted(pages)


def _text(pages: Mapping[str, str | bytes], name: str) -> str:
    page = pages[name]
    assert isinstance(page, str)
    return page


PAGES = render_fixture_site()


def test_the_fixture_renders_every_expected_page() -> None:
    # Every report has its data files (.csv, .json), whatever its formats.
    assert sorted(PAGES) == [
        "edge-cases.csv",
        "edge-cases.html",
        "edge-cases.json",
        "edge-cases.md",
        "index.html",
        "index.md",
        "security-cases.csv",
        "security-cases.html",  # html only: its definition says formats: [html]
        "security-cases.json",
        "service-health.csv",
        "service-health.html",
        "service-health.json",
        "service-health.md",
        "support-backlog.csv",
        "support-backlog.html",
        "support-backlog.json",
        "support-backlog.md",
    ]


@pytest.mark.parametrize("name", sorted(PAGES))
def test_page_matches_its_golden_file(name: str) -> None:
    golden = GOLDEN / name
    text = _text(PAGES, name)
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(text.encode("utf-8"))
    assert golden.exists(), f"no golden file {golden}; create it with CASEREPORT_UPDATE_GOLDEN=1"
    # Bytes, not text: the CSV files' CRLF line ends are part of what is checked.
    expected = golden.read_bytes().decode("utf-8")
    assert text == expected, (
        f"{name} differs from {golden}; if the change is intended, regenerate with "
        "CASEREPORT_UPDATE_GOLDEN=1 and review the diff"
    )


def test_no_stray_golden_files() -> None:
    assert sorted(p.name for p in GOLDEN.iterdir()) == sorted(PAGES)


def test_rendering_twice_gives_identical_bytes(tmp_path: Path) -> None:
    first = write_fixture_site(tmp_path / "a")
    second = write_fixture_site(tmp_path / "b")
    assert first == second
    for name in first:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert render_fixture_site() == PAGES


def test_output_does_not_depend_on_the_wall_clock_or_the_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    monkeypatch.setenv("TZ", "Pacific/Auckland")
    assert render_fixture_site() == PAGES
    for page in PAGES.values():
        assert isinstance(page, str)
        assert str(FIXTURES) not in page
