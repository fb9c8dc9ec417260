"""`plan --markdown` stays under GitHub's comment limit (65,536 characters)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from casereport.cli import cli


def _workspace(root: Path, reports: int) -> None:
    (root / "reports").mkdir()
    for number in range(reports):
        aggregations = "".join(
            f"  agg_{i}:\n    title: Open cases {i}\n"
            f"    query_filter: status:open project:P{number}x{i}\n"
            "    group_by: [priority]\n    limit: 6\n"
            for i in range(10)
        )
        (root / "reports" / f"report-{number}.yaml").write_text(
            f"title: Report {number}\naggregations:\n{aggregations}"
        )


def _rows(markdown: str) -> int:
    """Table rows of changes (not headers or separators)."""
    return sum(
        1
        for line in markdown.splitlines()
        if line.startswith("| ") and not line.startswith("| | ") and not line.startswith("|---")
    )


def test_a_large_plan_is_cut_to_the_limit_with_a_count_of_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _workspace(tmp_path, 120)  # 1,200 new aggregations: ~110,000 characters in full
    full = CliRunner().invoke(cli, ["plan", "--emulator", "--markdown", "--max-chars", "1000000"])
    assert full.exit_code == 0 and len(full.stdout) > 65_536
    cut = CliRunner().invoke(cli, ["plan", "--emulator", "--markdown"])
    assert cut.exit_code == 0, cut.output
    assert 60_000 < len(cut.stdout) <= 65_536
    match = re.search(
        r"_(\d[\d,]*) more changes not shown: this comment holds at most 65,536", cut.stdout
    )
    assert match, cut.stdout[-500:]
    # Every change is a row or counted in the note: none is lost without a word.
    assert 0 < _rows(cut.stdout) < _rows(full.stdout)
    assert _rows(cut.stdout) + int(match.group(1).replace(",", "")) == _rows(full.stdout)
    # The summary first, as in full; the folded table counts every change, and those shown.
    assert cut.stdout.splitlines()[:4] == full.stdout.splitlines()[:4]
    # (numbers as everywhere: with thousands separators)
    assert f"<details><summary>1,200 aggregation changes, {_rows(cut.stdout)} shown</summary>" in (
        cut.stdout
    )


def test_a_small_plan_is_unchanged_and_a_tiny_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _workspace(tmp_path, 2)
    default = CliRunner().invoke(cli, ["plan", "--emulator", "--markdown"])
    unlimited = CliRunner().invoke(
        cli, ["plan", "--emulator", "--markdown", "--max-chars", "10000000"]
    )
    assert default.stdout == unlimited.stdout
    tiny = CliRunner().invoke(cli, ["plan", "--emulator", "--markdown", "--max-chars", "10"])
    assert tiny.exit_code == 1
    assert tiny.stderr.startswith("Error: --max-chars 10 is too small for even the plan's summary")


def test_the_pull_request_plan_shows_the_definitions_warnings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _workspace(tmp_path, 1)
    path = tmp_path / "reports" / "report-0.yaml"
    path.write_text(path.read_text().replace("status:open project:P0x3", "staus:open project:P0x3"))
    result = CliRunner().invoke(cli, ["plan", "--emulator", "--markdown"])
    assert result.exit_code == 0, result.output
    warning = (
        'reports/report-0.yaml:20:19: warning: query field "staus" is not a known case field '
        'or a declared attribute (did you mean "status"?)'
    )
    assert f"1 warning:\n\n```\n{warning}\n```\n" in result.stdout
    assert warning in result.stderr  # and in the log, as for every plan
