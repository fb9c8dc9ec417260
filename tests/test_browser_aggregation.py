"""One aggregation's reading in a real browser (issue 13): the matrix and the trend's
axes visible on a desktop and a 375 px phone screen without horizontal page scroll, dark
mode readable, changes readable without colour, nothing fetched.

The pages are ``aggregation_pages``' (the golden pages of ``test_render_aggregation``).
Uses ``test_browser``'s Chromium and page helpers, and skips as it does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregation_pages import render_pages
from casereport.render.write import write_site_files
from test_browser import SKIP_REASON, _close, _open, _shot
from test_browser import browser as browser  # the module-scoped fixture

pytestmark = pytest.mark.skipif(bool(SKIP_REASON), reason=SKIP_REASON or "runs")

if SKIP_REASON:  # pragma: no cover - the fixture is not usable then
    Browser = object
else:
    from playwright.sync_api import Browser


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("aggregation-site")
    write_site_files(folder, render_pages())
    yield folder


def _luminance(rgb: str) -> float:
    channels = [int(c) / 255 for c in re.findall(r"\d+", rgb)[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(first: str, second: str) -> float:
    high, low = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("width", [1280, 375])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_matrix_and_trend_axes_fit_and_read(
    browser: Browser, site: Path, width: int, scheme: str
) -> None:
    for name in ("matrix.html", "weekly.html"):
        path = site / name
        visit = _open(browser, path, width=width, scheme=scheme)
        try:
            page = visit.page
            assert visit.requests == [path.as_uri()], name  # nothing else fetched
            assert visit.console_errors == [] and visit.dialogs == []
            scroll = page.evaluate("document.documentElement.scrollWidth")
            assert scroll <= width, f"{name} scrolls sideways at {width} px: {scroll}"
            matrix = page.locator("table.matrix").first
            matrix.scroll_into_view_if_needed()
            assert matrix.is_visible()
            box = matrix.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
            assert matrix.locator("tfoot th").inner_text() == "Total"
            # The first trend's axis labels (dates along, counts up) are on screen and
            # inside the page, the last date being this run's.
            trend = page.locator("figure.trend svg.tplot").first
            trend.scroll_into_view_if_needed()
            dates = trend.locator("text.tick[text-anchor]")
            counts = trend.locator("text.tick:not([text-anchor])")
            assert dates.count() >= 2 and counts.count() >= 2
            assert dates.last.text_content() == "30 Nov"
            for label in [dates.nth(i) for i in range(dates.count())] + [counts.last]:
                assert label.is_visible(), name
                tick_box = label.bounding_box()
                assert tick_box is not None
                assert tick_box["x"] >= 0 and tick_box["x"] + tick_box["width"] <= width
            # Text reads against its background in either scheme.
            background = page.evaluate("getComputedStyle(document.body).backgroundColor")
            for selector in ("td.good", "td.bad", ".chg.bad", "table.matrix td", "text.tick"):
                found = page.locator(selector)
                if not found.count():
                    continue
                colour = found.first.evaluate(
                    "e => getComputedStyle(e)[e instanceof SVGElement ? 'fill' : 'color']"
                )
                assert _contrast(colour, background) >= 4.5, (name, selector, colour, scheme)
            if scheme == "dark":
                assert _luminance(background) < 0.05  # the dark scheme applied
            _shot(visit, f"aggregation-{name[:-5]}-{width}-{scheme}.png")
        finally:
            _close(visit)


def test_changes_read_without_colour(browser: Browser, site: Path) -> None:
    path = site / "weekly.html"
    visit = _open(browser, path)
    try:
        page = visit.page
        judged = page.locator("td.good, td.bad, .chg.good, .chg.bad")
        assert judged.count() > 0
        for index in range(judged.count()):
            text = judged.nth(index).inner_text()
            # An arrow and a sign: the direction is in the text, not only the colour.
            assert re.fullmatch(r"[▲▼] [+−]\d[\d,]*", text), text
        # And which way is good is written down, next to the table.
        assert "lower is better" in page.locator("section.agg caption").first.inner_text()
    finally:
        _close(visit)


def test_datadog_links_point_at_the_app_and_nothing_loads(browser: Browser, site: Path) -> None:
    path = site / "matrix.html"
    visit = _open(browser, path)
    try:
        page = visit.page
        links = page.locator('a[href^="https://"]')
        assert links.count() > 10
        hrefs = {links.nth(i).get_attribute("href") or "" for i in range(links.count())}
        assert all(h.startswith("https://app.datadoghq.eu/cases?query=") for h in hrefs)
        assert visit.requests == [path.as_uri()]
    finally:
        _close(visit)
