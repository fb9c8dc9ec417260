"""Headline tiles and ``for_each`` family tables in a real browser (Chromium, Playwright).

The pages are those of ``test_render_pages`` (tiles judged ``better: lower`` on a family
page, ``better: higher`` against a week before) and the fixture site's index. Each must
show its tiles at 1280 px and on a 375 px phone without horizontal scrolling, in light
and dark mode with readable colours, with every change readable without colour, and
load nothing from the network. Uses ``test_browser``'s browser and helpers, and is
skipped as it is (no Chromium or no Playwright). Screenshots go to
``test-artifacts/browser/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from casereport.render.pages import render_index
from casereport.render.templates import environment
from casereport.render.write import write_site_files
from test_browser import SKIP_REASON, Visit, _close, _open, _shot
from test_browser import browser as browser  # the module's browser fixture
from test_render import _contrast
from test_render_golden import fixture_reports, fixture_state
from test_render_pages import PAGES

pytestmark = pytest.mark.skipif(bool(SKIP_REASON), reason=SKIP_REASON or "runs")

if not SKIP_REASON:
    from playwright.sync_api import Browser

TILE_PAGES = ("family-better-lower.html", "tiles-better-higher-7d.html", "index.html")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("pages-site")
    state = fixture_state()
    index = render_index(fixture_reports(), state.aggregations, state.source, environment(None))
    write_site_files(folder, {**PAGES, **index})
    yield folder


def _rgb(text: str) -> str:
    """``rgb(26, 127, 55)`` as ``#1a7f37``."""
    numbers = [int(n) for n in re.findall(r"\d+", text)[:3]]
    return "#" + "".join(f"{n:02x}" for n in numbers)


def _fits(visit: Visit) -> tuple[int, int]:
    return visit.page.evaluate(  # type: ignore[no-any-return]
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [1280, 375])
@pytest.mark.parametrize("name", TILE_PAGES)
def test_tiles_show_at_desktop_and_phone_widths_without_scrolling(
    browser: Browser, site: Path, name: str, width: int, scheme: str
) -> None:
    path = site / name
    visit = _open(browser, path, width=width, scheme=scheme)
    try:
        tiles = visit.page.locator(".tile")
        assert tiles.count() >= 1
        scroll_width, client_width = _fits(visit)
        assert scroll_width <= client_width, (name, scroll_width, client_width)
        for index in range(tiles.count()):
            tile = tiles.nth(index)
            assert tile.is_visible()
            box = tile.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= client_width
            total = tile.locator(".tile-total strong")
            assert total.is_visible() and re.fullmatch(r"[\d,]+|–", total.inner_text())
            spark = tile.locator("svg.spark")
            if spark.count():
                spark_box = spark.bounding_box()
                assert (
                    spark_box is not None and spark_box["width"] > 50 and spark_box["height"] > 20
                )
        # Nothing but the page itself was asked for, and nothing failed.
        assert visit.requests == [path.as_uri()]
        assert visit.console_errors == []
        _shot(visit, f"pages-{path.stem}-{width}-{scheme}.png")
    finally:
        _close(visit)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_changes_are_readable_in_both_schemes_and_without_colour(
    browser: Browser, site: Path, scheme: str
) -> None:
    seen = set()
    for name in TILE_PAGES:
        visit = _open(browser, site / name, scheme=scheme)
        try:
            changes = visit.page.locator(".tile-change")
            for index in range(changes.count()):
                change = changes.nth(index)
                verdict = change.get_attribute("class") or ""
                text = change.inner_text()
                # An arrow and a sign always; a word where colour says good or bad.
                assert re.match(r"[▲▼=] [+−±]", text), text
                if "good" in verdict:
                    assert text.endswith("better"), text
                if "bad" in verdict:
                    assert text.endswith("worse"), text
                colour = _rgb(change.evaluate("e => getComputedStyle(e).color"))
                background = _rgb(
                    change.evaluate("e => getComputedStyle(e.closest('.tile')).backgroundColor")
                )
                assert _contrast(colour, background) >= 4.5, (name, verdict, colour, background)
                seen.update(v for v in ("good", "bad", "neutral") if v in verdict.split())
            if scheme == "dark":
                assert (
                    visit.page.evaluate("getComputedStyle(document.body).backgroundColor")
                    == "rgb(15, 20, 25)"
                )
        finally:
            _close(visit)
    assert seen == {"good", "bad", "neutral"}  # the pages show every kind of change


def test_the_family_table_fits_a_phone_and_prints_without_a_page_per_aggregation(
    browser: Browser, site: Path
) -> None:
    path = site / "family-better-lower.html"
    visit = _open(browser, path, width=375)
    try:
        table = visit.page.locator("section.family table").first
        assert table.is_visible()
        assert table.locator("tbody tr").count() == 7  # six items and the totals row
        scroll_width, client_width = _fits(visit)
        assert scroll_width <= client_width
        visit.page.emulate_media(media="print")
        styles = visit.page.evaluate(
            """[getComputedStyle(document.querySelector('section.agg')).breakInside,
                getComputedStyle(document.querySelector('.pair')).breakInside,
                getComputedStyle(document.querySelector('.tile')).breakInside,
                getComputedStyle(document.querySelector('section.agg')).breakBefore]"""
        )
        assert styles == ["auto", "avoid", "avoid", "auto"]
        _shot(visit, "pages-family-print.png")
    finally:
        _close(visit)
