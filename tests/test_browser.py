"""The rendered site in a real browser: Chromium driven by Playwright.

Two sites are opened from ``file://``: the fixture site (``test_render_golden``: the
example reports with history, and hostile and empty data) and the repository's own example
workspace as ``casereport apply --emulator`` renders it. Every page must load with no
console error and no network request, show its charts, show hostile group values as text
without running them, and fit a 375 px phone screen. Screenshots go to
``test-artifacts/browser/``.

Needs Debian's Chromium (``/usr/bin/chromium``, installed by ``.ci/run``) and the
``playwright`` package (the ``dev`` extra); without either the tests are skipped, saying why.
``playwright install`` is never needed: the system browser is used.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from casereport.render.pages import render_index, render_report
from casereport.render.templates import environment
from casereport.render.write import write_site_files
from test_render_golden import fixture_reports, fixture_state, write_fixture_site

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "browser"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

try:
    from playwright.sync_api import Browser, Page, sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    sync_playwright = None

if sync_playwright is None:
    SKIP_REASON = "playwright is not installed (pip install -e '.[dev]')"
elif not CHROMIUM.exists():
    SKIP_REASON = f"{CHROMIUM} is missing (apt-get install chromium; .ci/run does it)"
else:
    SKIP_REASON = ""

pytestmark = pytest.mark.skipif(bool(SKIP_REASON), reason=SKIP_REASON or "runs")
if SKIP_REASON:  # pragma: no cover - say it even without -rs
    print(f"test_browser: skipped: {SKIP_REASON}", file=sys.stderr)


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The fixture site and the example workspace's site, rendered to disk."""
    fixture_site = tmp_path_factory.mktemp("fixture-site")
    write_fixture_site(fixture_site)
    workspace = tmp_path_factory.mktemp("example-workspace")
    shutil.copytree(ROOT / "reports", workspace / "reports")
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1795676400"}
    env.pop("DD_API_KEY", None)
    completed = subprocess.run(
        [sys.executable, "-m", "casereport", "apply", "--auto-approve", "--emulator"],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return {"fixture": fixture_site, "example": workspace / "site"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert sync_playwright is not None
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield launched
        launched.close()


@dataclass
class Visit:
    """What one page did while it loaded and was looked at."""

    page: Page
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


def _open(browser: Browser, path: Path, *, width: int = 1280, scheme: str = "light") -> Visit:
    context = browser.new_context(
        viewport={"width": width, "height": 900},
        color_scheme=scheme,  # type: ignore[arg-type]
        java_script_enabled=True,  # so that an injected script would run, and be caught
    )
    page = context.new_page()
    visit = Visit(page)
    page.on("console", lambda m: visit.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: visit.console_errors.append(str(e)))
    page.on("request", lambda r: visit.requests.append(r.url))

    def dialog(d: Any) -> None:
        visit.dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", dialog)
    # Anything that is not the page itself would leave the machine: refuse it.
    page.route(
        "**/*",
        lambda route: route.continue_() if route.request.url == path.as_uri() else route.abort(),
    )
    page.goto(path.as_uri(), wait_until="load")
    return visit


def _pages(site: Path) -> list[Path]:
    return sorted(site.glob("*.html"))


def _close(visit: Visit) -> None:
    visit.page.context.close()


def _shot(visit: Visit, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    visit.page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_both_sites_have_pages(sites: dict[str, Path]) -> None:
    assert [p.name for p in _pages(sites["fixture"])] == [
        "edge-cases.html",
        "index.html",
        "security-cases.html",
        "service-health.html",
        "support-backlog.html",
    ]
    assert [p.name for p in _pages(sites["example"])] == [
        "index.html",
        "security-cases.html",
        "service-health.html",
        "support-backlog.html",
    ]


@pytest.mark.parametrize("site_name", ["fixture", "example"])
def test_every_page_loads_offline_without_errors_and_shows_its_charts(
    browser: Browser, sites: dict[str, Path], site_name: str
) -> None:
    for path in _pages(sites[site_name]):
        visit = _open(browser, path)
        try:
            page = visit.page
            assert visit.console_errors == [], path.name
            assert visit.requests == [path.as_uri()], path.name
            assert visit.dialogs == [], path.name
            assert page.locator("h1").count() == 1
            assert page.locator(".demo").first.is_visible()  # emulator data: the banner
            charts = page.locator('svg[role="img"]')
            if path.name != "index.html":
                assert charts.count() > 0, path.name
            for index in range(charts.count()):
                box = charts.nth(index).bounding_box()
                assert box is not None and box["width"] > 100 and box["height"] > 20, (
                    path.name,
                    index,
                    box,
                )
            for selector in ("rect.bar", "path.line"):
                shapes = page.locator(selector)
                for index in range(shapes.count()):
                    box = shapes.nth(index).bounding_box()
                    assert box is not None and (box["width"] > 0 or box["height"] > 0), (
                        path.name,
                        selector,
                        index,
                    )
            _shot(visit, f"{site_name}-{path.stem}-1280.png")
        finally:
            _close(visit)


def test_hostile_group_values_are_shown_as_text_and_run_nothing(
    browser: Browser, sites: dict[str, Path]
) -> None:
    visit = _open(browser, sites["fixture"] / "edge-cases.html")
    try:
        page = visit.page
        for hostile in ("<img src=x onerror=alert(1)>", "<script>alert(1)</script>"):
            cell = page.locator("tbody th", has_text=hostile).first
            assert cell.is_visible()
            assert cell.inner_text() == hostile
        assert page.locator("img").count() == 0
        assert page.locator("script").count() == 0
        page.wait_for_timeout(300)  # time for an onerror handler to have fired
        assert visit.dialogs == []
        assert visit.console_errors == []
        assert visit.requests == [(sites["fixture"] / "edge-cases.html").as_uri()]
        # The description's javascript: link is text, not a link.
        hrefs = page.eval_on_selector_all("a", "links => links.map(a => a.href)")
        assert all(href.startswith(("file:", "https:")) for href in hrefs), hrefs
        assert (
            page.title() == 'Edge cases: <b>"bold"</b> & <script>alert(1)</script> · Case reports'
        )
    finally:
        _close(visit)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_pages_fit_a_375_px_phone_screen(
    browser: Browser, sites: dict[str, Path], scheme: str
) -> None:
    for site_name, site in sites.items():
        for path in _pages(site):
            visit = _open(browser, path, width=375, scheme=scheme)
            try:
                scroll_width, client_width = visit.page.evaluate(
                    "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
                )
                assert scroll_width <= client_width, (path.name, scroll_width, client_width)
                _shot(visit, f"{site_name}-{path.stem}-375-{scheme}.png")
            finally:
                _close(visit)


def test_dark_mode_and_print_styles_apply(browser: Browser, sites: dict[str, Path]) -> None:
    path = sites["fixture"] / "support-backlog.html"
    light = _open(browser, path)
    dark = _open(browser, path, scheme="dark")
    try:
        background = "getComputedStyle(document.body).backgroundColor"
        assert light.page.evaluate(background) == "rgb(255, 255, 255)"
        assert dark.page.evaluate(background) == "rgb(15, 20, 25)"
        dark.page.emulate_media(media="print")
        assert dark.page.evaluate(background) == "rgb(255, 255, 255)"
        assert not dark.page.locator(".crumbs").is_visible()
        assert dark.page.locator(".demo").is_visible()  # the banner is printed too
        _shot(dark, "fixture-support-backlog-print.png")
    finally:
        _close(light)
        _close(dark)


def test_links_between_pages_resolve_to_rendered_files(
    browser: Browser, sites: dict[str, Path]
) -> None:
    site = sites["fixture"]
    for path in _pages(site):
        visit = _open(browser, path)
        try:
            hrefs = visit.page.eval_on_selector_all("a", "links => links.map(a => a.href)")
        finally:
            _close(visit)
        for href in hrefs:
            if not href.startswith("file:"):
                continue
            target = Path(href.removeprefix("file://").split("#", 1)[0])
            assert target.exists(), (path.name, href)
            if "#" in href and target.suffix == ".html":
                anchor = href.split("#", 1)[1]
                assert f'id="{anchor}"' in target.read_text(), (path.name, href)


RICH_DESCRIPTION = (
    "## Why <script>alert(1)</script>\n\n"
    "Owned by the *support* team: see https://runbook.example/support_backlog.\n\n"
    "### Steps\n\n"
    "1. Open the [queue](https://queue.example/q) and not [this](javascript:alert(1)).\n"
    "2. Check:\n"
    "   - <img src=x onerror=alert(1)>\n"
    "   - ![tracker](https://tracker.example/pixel.png)\n\n"
    "| Priority | What it means, in a cell long enough to need more than one line |\n"
    "|---|---|\n"
    "| <b>P1</b> | Customers cannot work; someone is paged and the case is looked at now. |\n\n"
    "```\n" + "a_long_line_of_code_that_does_not_wrap " * 6 + "\n```\n\n"
    "> <svg onload=alert(1)>"
)


@pytest.mark.parametrize("width", [1280, 375])
def test_a_rich_description_shows_as_written_and_runs_nothing(
    browser: Browser, tmp_path: Path, width: int
) -> None:
    (report,) = [r for r in fixture_reports() if r.name == "support-backlog"]
    report = dataclasses.replace(report, description=RICH_DESCRIPTION)
    state = fixture_state()
    env = environment(None)
    pages = render_report(report, state.aggregations, state.source, env)
    pages.update(render_index([report], state.aggregations, state.source, env))
    write_site_files(tmp_path, pages)
    for name, top in (("support-backlog.html", 2), ("index.html", 3)):
        path = tmp_path / name
        visit = _open(browser, path, width=width)
        try:
            page = visit.page
            page.wait_for_timeout(300)  # time for an onerror or onload handler to have fired
            assert visit.dialogs == [] and visit.console_errors == [], name
            assert visit.requests == [path.as_uri()], name  # the image was not fetched
            lede = page.locator(".lede")
            assert lede.locator("img, script, svg, iframe").count() == 0
            assert lede.locator(f"h{top}").first.inner_text() == "Why <script>alert(1)</script>"
            assert lede.locator(f"h{top + 1}").inner_text() == "Steps"
            assert lede.locator("ol > li").count() == 2 and lede.locator("ol ul > li").count() == 2
            assert "tracker" in lede.inner_text() and "[this](javascript:alert(1))" in (
                lede.inner_text()
            )
            hrefs = page.eval_on_selector_all(".lede a", "links => links.map(a => a.href)")
            assert hrefs == [
                "https://runbook.example/support_backlog",
                "https://queue.example/q",
            ]
            levels = page.eval_on_selector_all(
                "h1, h2, h3, h4, h5, h6", "hs => hs.map(h => Number(h.tagName[1]))"
            )
            assert levels.count(1) == 1 and levels[0] == 1
            assert all(b <= a + 1 for a, b in itertools.pairwise(levels)), levels
            scroll_width, client_width = page.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
            )
            assert scroll_width <= client_width, (name, scroll_width, client_width)
            _shot(visit, f"rich-description-{path.stem}-{width}.png")
        finally:
            _close(visit)
