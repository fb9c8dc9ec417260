"""Print a report's HTML page to PDF with headless Chromium (the optional ``pdf`` format).

The browser is a program on the machine, not a Python dependency: Chromium's own
``--print-to-pdf`` prints exactly what the HTML page looks like with its print
stylesheet, and nothing needs installing when no report asks for PDF. The page is
self-contained (inline CSS and SVG, no JavaScript), so the browser loads nothing else.
The paper is the print stylesheet's ``@page`` size (``pdf_page_size`` in casereport.toml,
A4 or Letter), which Chromium prints on; the stylesheet keeps each part of an aggregation
(its heading, its table and chart, each figure) on one page, not the whole aggregation.

The browser is the first of: ``$CASEREPORT_CHROMIUM``, then ``chromium``,
``chromium-browser``, ``google-chrome``, ``google-chrome-stable`` on ``PATH``. Chromium
stamps the print time into the PDF; it is replaced by the data's own time so the same
state prints the same bytes with the same browser.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from casereport.errors import RenderError

BROWSER_ENV = "CASEREPORT_CHROMIUM"
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT_SECONDS = 120.0
# Quiet, offline, throw-away: no first-run UI, no update or network chatter.
_FLAGS = (
    "--headless",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-extensions",
    "--disable-sync",
    "--no-pdf-header-footer",
)
_PDF_DATE = re.compile(rb"\(D:\d{14}[^)]{0,8}\)")
# Links to other pages of the site: Chromium would make them absolute links into the
# scratch folder the page is printed from (wrong, and different on every run).
_SITE_LINK = re.compile(r'<a href="(?![a-zA-Z][a-zA-Z0-9+.-]*:|#)[^"]*"')


def find_browser(env: Mapping[str, str] | None = None) -> str | None:
    """The path of the browser that prints PDFs, or None when none is installed."""
    env = os.environ if env is None else env
    chosen = env.get(BROWSER_ENV)
    if chosen:
        return chosen if Path(chosen).is_file() else None
    for name in BROWSER_NAMES:
        found = shutil.which(name, path=env.get("PATH"))
        if found:
            return found
    return None


def missing_browser_message(env: Mapping[str, str] | None = None) -> str:
    """What to do when no browser can print a PDF."""
    env = os.environ if env is None else env
    chosen = env.get(BROWSER_ENV)
    if chosen:
        return (
            f"format pdf needs Chromium, but {BROWSER_ENV}={chosen} is not a file; "
            f"point {BROWSER_ENV} at the chromium (or google-chrome) program"
        )
    return (
        "format pdf needs Chromium (or Google Chrome) to print the HTML page, and none was "
        f"found on PATH (looked for {', '.join(BROWSER_NAMES)}); install it (Debian/Ubuntu: "
        f"apt-get install chromium), set {BROWSER_ENV} to its path, or remove pdf from the "
        "report's formats"
    )


def _pdf_date(fixed_date: str | None) -> bytes:
    moment = None
    if fixed_date:
        try:
            moment = datetime.fromisoformat(fixed_date)
        except ValueError:
            moment = None
    stamp = moment.strftime("%Y%m%d%H%M%S") if moment else "19700101000000"
    return f"(D:{stamp}+00'00')".encode()


def print_pdf(
    html: str, *, fixed_date: str | None = None, env: Mapping[str, str] | None = None
) -> bytes:
    """The PDF of an HTML page, printed by headless Chromium.

    ``fixed_date`` (ISO 8601, the data's freshness) replaces the print time in the PDF's
    metadata, so the output does not depend on the wall clock.
    """
    browser = find_browser(env)
    if browser is None:
        raise RenderError(missing_browser_message(env))
    with tempfile.TemporaryDirectory(prefix="casereport-pdf-") as scratch:
        folder = Path(scratch)
        page = folder / "page.html"
        out = folder / "page.pdf"
        page.write_text(_SITE_LINK.sub("<a", html), encoding="utf-8")
        command = [
            browser,
            *_FLAGS,
            f"--user-data-dir={folder / 'profile'}",
            f"--print-to-pdf={out}",
            page.as_uri(),
        ]
        # Chromium refuses to start as root with its sandbox on (containers, CI).
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.insert(1, "--no-sandbox")
        try:
            completed = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=TIMEOUT_SECONDS,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise RenderError(
                f"{browser} did not print the PDF within {TIMEOUT_SECONDS:g} s"
            ) from None
        except OSError as exc:
            raise RenderError(f"cannot run {browser}: {exc.strerror}") from None
        if completed.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
            detail = (completed.stderr.strip().splitlines() or ["no output"])[-1]
            raise RenderError(
                f"{browser} failed to print the PDF (exit {completed.returncode}): {detail}"
            )
        data = out.read_bytes()
    # Same length in, same length out: the PDF's cross-reference offsets stay valid.
    stamp = _pdf_date(fixed_date)
    return _PDF_DATE.sub(lambda m: stamp if len(m.group(0)) == len(stamp) else m.group(0), data)
