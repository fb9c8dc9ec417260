"""Every id on a page is unique, whatever the aggregations are called: an aggregation
named like one of the page's own sections (``headlines``, ``report_checks``,
``content``) gets an id of its own, and each link or label points at one element."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from tests.cli_workspace import example_workspace, run

REPORT = """\
title: Names that the page uses
checks:
  - name: few
    assert: aggregations["headlines"].total >= 0
aggregations:
  headlines:
    title: Cases by status
    query_filter: "*"
    group_by: [status]
    limit: 5
  report_checks:
    title: Cases by priority
    query_filter: "*"
    group_by: [priority]
    limit: 6
  content:
    title: Open cases by priority
    query_filter: -status:closed
    group_by: [priority]
    limit: 6
"""


def test_ids_are_unique_when_aggregations_are_named_like_the_pages_sections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    example_workspace(tmp_path, monkeypatch)
    (tmp_path / "reports" / "clash.yaml").write_text(REPORT, encoding="utf-8")
    result = run("apply", "--emulator", "--auto-approve")
    assert result.exit_code == 0, result.output

    for page in ("clash.html", "index.html"):
        html = (tmp_path / "site" / page).read_text(encoding="utf-8")
        ids = Counter(re.findall(r'\sid="([^"]+)"', html))
        assert [name for name, count in ids.items() if count > 1] == [], page
        pointed = re.findall(r'href="#([^"]+)"', html) + [
            name
            for names in re.findall(r'aria-labelledby="([^"]+)"', html)
            for name in names.split()
        ]
        assert [name for name in pointed if name not in ids] == [], page
    html = (tmp_path / "site" / "clash.html").read_text(encoding="utf-8")
    # The sections keep their ids; the aggregations get the next free ones.
    assert '<h2 id="report-checks">Checks</h2>' in html
    assert 'id="report-checks-2"' in html and 'id="headlines-2"' in html
