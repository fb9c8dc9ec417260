"""``casereport demo DIR``: a workspace with weeks of simulated history, its pages showing
changes and trends, the same site for the same seed, and a non-empty DIR left alone."""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from tests.cli_workspace import API_ENVIRONMENT

from casereport.cli import cli
from casereport.engine.demo import DEMO_REPORT, run_times
from casereport.render.context import DEMO_NOTICE
from casereport.state.model import load_state

# Without the variables that would point a run at Datadog; the demo pins its own clock,
# so a pinned SOURCE_DATE_EPOCH must make no difference.
ENV: Mapping[str, str | None] = {
    **dict.fromkeys(API_ENVIRONMENT),
    "SOURCE_DATE_EPOCH": "1790000000",
}
RUN_STAMPS = [f"{when:%Y-%m-%dT%H:%M:%SZ}" for when in run_times()]


def demo(*args: str) -> Result:
    return CliRunner().invoke(cli, ["demo", *args], env=ENV)


def site_files(directory: Path) -> dict[str, bytes]:
    site = directory / "site"
    return {str(p.relative_to(site)): p.read_bytes() for p in sorted(site.rglob("*"))}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Result]:
    directory = tmp_path_factory.mktemp("demo") / "reports-demo"
    result = demo(str(directory))
    assert result.exit_code == 0, result.output
    return directory, result


def test_the_demo_says_what_it_built_and_how_to_go_on(built: tuple[Path, Result]) -> None:
    directory, result = built
    lines = result.output.splitlines()
    assert len(RUN_STAMPS) == 13
    assert lines[0].startswith("Mon 01 Jun 2026 09:00 UTC: Apply complete: ")
    assert lines[12].startswith("Mon 13 Jul 2026 09:00 UTC: Apply complete: ")
    assert lines[13:] == [
        f"Built a demo workspace in {directory}: 13 simulated runs from Mon 01 Jun to "
        "Mon 13 Jul 2026 (seed 1), demo data only.",
        f"Site: {directory / 'site' / 'index.html'}",
        f"Next: cd {directory} && casereport plan --emulator",
    ]
    assert (directory / "casereport.toml").is_file()
    assert (directory / DEMO_REPORT).is_file()
    assert (directory / "reports" / "open-cases.yaml").is_file()
    # Built beside DIR and moved in: nothing left over.
    assert sorted(p.name for p in directory.parent.iterdir()) == ["reports-demo"]


def test_every_aggregation_has_a_history_at_the_simulated_times(
    built: tuple[Path, Result],
) -> None:
    directory, _ = built
    state = load_state(directory / ".casereport" / "state.json")
    assert state is not None and state.source is not None
    assert state.source.kind == "emulator"
    assert state.source.detail == (
        "synthetic cases over simulated time (seed 1), as of 2026-07-13 09:00 UTC"
    )
    assert len(state.aggregations) == 11
    changed = set()
    for address, entry in state.aggregations.items():
        history = entry.history
        assert len(history) >= 6
        assert history.stamps() == RUN_STAMPS[:-1]
        assert entry.fetched_at == RUN_STAMPS[-1]
        totals = [*history.totals(), entry.result["total"]]
        if len(set(totals)) > 1:
            changed.add(address)
    # Every aggregation but none at all changes over six weeks; most change every week.
    assert len(changed) == len(state.aggregations)
    backlog = state.aggregations["support-weekly.backlog"]
    totals = [*backlog.history.totals(), backlog.result["total"]]
    assert max(totals) > totals[0] and totals[-1] < max(totals)  # grows, then shrinks
    assert totals[-1] != totals[-2]  # a change since the previous run


def test_the_pages_show_changes_trends_and_the_demo_banner(built: tuple[Path, Result]) -> None:
    directory, _ = built
    files = site_files(directory)
    assert set(files) >= {
        "index.html",
        "index.md",
        "open-cases.html",
        "open-cases.md",
        "support-weekly.html",
        "support-weekly.md",
    }
    for name in ("index.html", "open-cases.html", "support-weekly.html", "support-weekly.md"):
        assert DEMO_NOTICE.split(":")[0] in files[name].decode(), name
    markdown = files["support-weekly.md"].decode()
    assert "Trend over the last 13 runs (1 Jun 2026 – 13 Jul 2026)" in markdown
    assert "since the previous run on 9 Jul 2026, 09:00 UTC" in markdown
    assert "Data as of:** 13 Jul 2026, 09:00 UTC" in markdown
    # The summary table: every aggregation changed since the previous run.
    summary = markdown.split("## Summary", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|") for line in summary.splitlines() if line.startswith("| ")][1:]
    assert len(rows) == 6
    assert all(row[3].strip() not in ("", "±0") for row in rows), rows


def test_the_same_seed_builds_the_same_site_and_another_seed_another(
    built: tuple[Path, Result], tmp_path: Path
) -> None:
    directory, _ = built
    again = demo(str(tmp_path / "again"))
    assert again.exit_code == 0, again.output
    assert again.output.replace(str(tmp_path / "again"), str(directory)) == built[1].output
    assert site_files(tmp_path / "again") == site_files(directory)
    other = demo(str(tmp_path / "other"), "--seed", "2")
    assert other.exit_code == 0, other.output
    assert (
        site_files(tmp_path / "other")["support-weekly.md"]
        != (site_files(directory)["support-weekly.md"])
    )


def test_a_directory_that_is_not_empty_is_refused_and_left_alone(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine\n", encoding="utf-8")
    result = demo(str(tmp_path))
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {tmp_path} is not empty; casereport demo builds a new workspace: give a new "
        "or empty directory, or pass --force to replace the demo's files in it\n"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    a_file = tmp_path / "notes.txt"
    result = demo(str(a_file))
    assert result.exit_code == 2  # click: not a directory
    assert "is a file" in result.output


def test_force_replaces_the_demo_files_and_keeps_the_others(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine\n", encoding="utf-8")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "old.yaml").write_text("title: old\n", encoding="utf-8")
    (tmp_path / ".gitignore").write_text("*.log\n", encoding="utf-8")
    result = demo(str(tmp_path), "--force", "--cases", "600")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine\n"
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == [
        "open-cases.yaml",
        "support-weekly.yaml",
    ]
    assert (tmp_path / ".gitignore").read_text(
        encoding="utf-8"
    ) == "# casereport\nsite/\n.casereport/\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [
        ".casereport",
        ".gitignore",
    ]


def test_the_help_example_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = demo("--help")
    assert result.exit_code == 0
    example = result.output.split("Example:\n", 1)[1].splitlines()[0].strip()
    assert (
        example == "casereport demo demo-reports && cd demo-reports && casereport plan --emulator"
    )
    monkeypatch.chdir(tmp_path)
    for command in example.split(" && "):
        words = shlex.split(command)
        if words[0] == "cd":
            monkeypatch.chdir(words[1])
            continue
        ran = CliRunner().invoke(cli, words[1:], env=ENV)
        assert ran.exit_code == 0, ran.output
    # The plan after the demo: every result stale (the pinned clock is months later).
    assert ran.output.endswith(
        "Plan: 11 to fetch (0 new, 0 changed, 11 stale), 2 reports to render, 0 to delete.\n"
    )
    assert json.loads((tmp_path / "demo-reports" / ".casereport" / "state.json").read_text())


def test_the_current_directory_when_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = demo(".", "--cases", "300")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-2:] == [
        "Site: site/index.html",
        "Next: casereport plan --emulator",
    ]
    assert (tmp_path / "site" / "index.html").is_file()
    assert sorted(p.name for p in tmp_path.parent.iterdir() if ".demo-" in p.name) == []
