"""Apply end to end: the CLI against a real emulator over HTTP, counting every API call.

Each test works in a copy of the example workspace (``reports/``: 3 reports, 19
aggregations, 19 distinct requests) pointed at an emulator with ``CASEREPORT_API_URL``;
the emulator's ``/_emulator/stats`` says exactly how many requests each run sent. The
clock is pinned with ``SOURCE_DATE_EPOCH`` so freshness is decided by the test. Plans
are read as JSON (``plan --json``), whose shape is versioned, rather than as text.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from apply_workspace import (
    EPOCH,
    Workspace,
    actions,
    api_calls,
    changed,
    renders,
    reset_stats,
)
from casereport.emulator.server import EmulatorConfig, RunningEmulator, running_emulator
from casereport.render import workers
from casereport.render.pages import Pages, render_report
from casereport.state.journal import journal_path

Emulator = Callable[..., RunningEmulator]

ADDRESSES = 19
# Every report's pages, and its data files whatever its formats.
SITE_FILES = [
    "index.html",
    "index.md",
    "security-cases.csv",
    "security-cases.html",
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
SUPPORT_PAGES = {
    "support-backlog.csv",
    "support-backlog.html",
    "support-backlog.json",
    "support-backlog.md",
}
BY_STATUS = """\
  by_status:
    title: Support cases by status
    query_filter: project:${var.project}
    group_by: [status]
    limit: 3
"""
# One request equal to support-backlog.by_status (after its ${var.project} is SUP), one new.
SHARED_REPORT = """\
title: Shared requests
refresh: 6h
aggregations:
  sup_by_status:
    title: Same request as support-backlog.by_status
    query_filter: project:SUP
    group_by: [status]
    limit: 3
  sec_by_team:
    query_filter: project:SEC
    group_by: [team]
    limit: 5
"""
NO_CHANGES = "No changes. Reports are up to date."


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: Emulator) -> Workspace:
    monkeypatch.chdir(tmp_path)
    return Workspace(tmp_path, emulator())


@pytest.fixture
def applied(ws: Workspace) -> Workspace:
    """The workspace after a first, complete apply (stats reset)."""
    result = ws.apply()
    assert last_line(result.output) == (
        f"Apply complete: {ADDRESSES} fetched ({ADDRESSES} API calls), "
        "3 reports rendered, 0 deleted."
    )
    reset_stats(ws.emulator)
    return ws


def last_line(output: str) -> str:
    return output.rstrip("\n").splitlines()[-1]


def rewritten(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> set[str]:
    """Site files written (or removed, or added) between two ``site_stamps``."""
    return changed(before, after)


def assert_converged(ws: Workspace, *args: str, **env: str | None) -> None:
    code, plan = ws.plan_json(*args, **env)
    assert (code, plan["summary"]) == (0, NO_CHANGES), plan["summary"]


# -- first and second apply -------------------------------------------------------------


def test_first_apply_fetches_every_distinct_request_once(ws: Workspace) -> None:
    ws.write_report("shared", SHARED_REPORT)

    result, calls = ws.counted("apply", "--auto-approve")

    assert result.exit_code == 0, result.output
    # 21 addresses, 20 distinct requests: shared.sup_by_status rides on by_status's fetch.
    assert calls == 20
    assert ws.emulator.stats()["requests"]["POST /api/v2/cases/aggregate"] == {"200": 20}
    assert "Plan: 21 to fetch (21 new, 0 changed, 0 stale), 4 reports to render" in result.output
    assert last_line(result.output) == (
        "Apply complete: 21 fetched (20 API calls), 4 reports rendered, 0 deleted."
    )
    state = ws.state()
    assert len(state.aggregations) == 21
    shared = state.aggregations["shared.sup_by_status"]
    original = state.aggregations["support-backlog.by_status"]
    assert shared.fingerprint == original.fingerprint
    assert shared.result == original.result and shared.result["total"] > 0
    assert {a.fetched_at for a in state.aggregations.values()} == {"2027-01-15T08:00:00Z"}
    assert state.source is not None and state.source.site == ws.emulator.url
    assert sorted(ws.site_files()) == sorted(
        [*SITE_FILES, "shared.csv", "shared.html", "shared.json", "shared.md"]
    )
    assert set(state.reports) == {"security-cases", "service-health", "shared", "support-backlog"}
    assert not journal_path(ws.state_path).exists()
    assert_converged(ws)


def test_second_apply_and_plan_change_nothing_and_call_nothing(applied: Workspace) -> None:
    ws = applied
    state_bytes = ws.state_path.read_bytes()
    stamps = ws.site_stamps()

    plan = ws.plan()
    apply = ws.apply()

    assert plan.exit_code == 0, plan.output
    assert last_line(plan.output) == NO_CHANGES
    assert last_line(apply.output) == NO_CHANGES
    assert api_calls(ws.emulator) == 0
    assert ws.state_path.read_bytes() == state_bytes  # not even the serial moved
    assert ws.site_stamps() == stamps


# -- changed, new and removed definitions -----------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "change"),
    [
        ("query_filter: project:${var.project}\n    group_by: [status]",
         "query_filter: project:${var.project} -status:closed\n    group_by: [status]",
         {"field": "query_filter", "old": "project:SUP", "new": "project:SUP -status:closed"}),
        ("group_by: [status]\n    limit: 3", "group_by: [status, team]\n    limit: 3",
         {"field": "groups", "old": ["status"], "new": ["status", "team"]}),
        ("group_by: [status]\n    limit: 3", "group_by: [status]\n    limit: 2",
         {"field": "limit", "old": 3, "new": 2}),
    ],
    ids=["query", "group_by", "limit"],
)  # fmt: skip
def test_a_changed_request_updates_only_its_address(
    applied: Workspace, old: str, new: str, change: dict[str, Any]
) -> None:
    ws = applied
    before = ws.state_json()
    stamps = ws.site_stamps()
    ws.edit("support-backlog", old, new)

    code, plan = ws.plan_json()
    result, calls = ws.counted("apply", "--auto-approve")

    assert code == 2
    assert actions(plan) == {"support-backlog.by_status": "update"}
    (update,) = [c for c in plan["aggregations"] if c["actions"] == ["update"]]
    assert update["changes"] == [change]
    assert list(renders(plan)) == ["support-backlog"]
    assert "definition changed" in renders(plan)["support-backlog"]
    assert plan["summary"] == (
        "Plan: 1 to fetch (0 new, 1 changed, 0 stale), 1 report to render, 0 to delete."
    )
    assert result.exit_code == 0, result.output
    assert calls == 1
    assert last_line(result.output) == (
        "Apply complete: 1 fetched (1 API call), 1 report rendered, 0 deleted."
    )
    after = ws.state_json()
    assert changed(before["aggregations"], after["aggregations"]) == {"support-backlog.by_status"}
    # The earlier result stays in history, marked as from before the request changed.
    entry = after["aggregations"]["support-backlog.by_status"]
    assert entry["history"]["fetched_at"] == "2027-01-15T08:00:00Z"
    assert entry["query_changed_at"] == "2027-01-15T08:00:00Z"
    assert "query_changed_at" not in before["aggregations"]["support-backlog.by_status"]
    assert changed(before["reports"], after["reports"]) == {"support-backlog"}
    assert after["serial"] == before["serial"] + 1  # one write per apply
    # Only the changed report's pages were written again (and the index, if it changed).
    assert rewritten(stamps, ws.site_stamps()) - {"index.html", "index.md"} == SUPPORT_PAGES
    assert_converged(ws)


def test_a_new_report_fetches_only_its_own_requests(applied: Workspace) -> None:
    ws = applied
    before = ws.state_json()
    stamps = ws.site_stamps()
    ws.write_report(
        "triage",
        "title: Triage\nformats: [markdown]\naggregations:\n"
        "  by_team:\n    query_filter: status:open\n    group_by: [team]\n    limit: 7\n"
        "  by_type:\n    query_filter: status:open\n    group_by: [type]\n    limit: 4\n",
    )

    code, plan = ws.plan_json()
    result, calls = ws.counted("apply", "--auto-approve")

    assert code == 2
    assert actions(plan) == {"triage.by_team": "create", "triage.by_type": "create"}
    assert renders(plan) == {"triage": ["render", "new report"]}
    assert result.exit_code == 0, result.output
    assert calls == 2
    after = ws.state_json()
    assert changed(before["aggregations"], after["aggregations"]) == {
        "triage.by_team",
        "triage.by_type",
    }
    assert changed(before["reports"], after["reports"]) == {"triage"}
    assert (ws.site / "triage.md").exists() and not (ws.site / "triage.html").exists()
    assert "Triage" in (ws.site / "index.md").read_text(encoding="utf-8")
    assert rewritten(stamps, ws.site_stamps()) == {
        "triage.csv",
        "triage.json",
        "triage.md",
        "index.html",
        "index.md",
    }
    assert_converged(ws)


def test_removing_an_aggregation_deletes_it_from_state(applied: Workspace) -> None:
    ws = applied
    ws.edit("support-backlog", BY_STATUS, "")

    code, plan = ws.plan_json()
    result, calls = ws.counted("apply", "--auto-approve")

    assert code == 2
    assert actions(plan) == {"support-backlog.by_status": "delete"}
    assert plan["summary"] == (
        "Plan: 0 to fetch (0 new, 0 changed, 0 stale), 1 report to render, 1 to delete."
    )
    assert result.exit_code == 0, result.output
    assert calls == 0
    assert last_line(result.output) == (
        "Apply complete: 0 fetched (0 API calls), 1 report rendered, 1 deleted."
    )
    state = ws.state()
    assert "support-backlog.by_status" not in state.aggregations
    assert len(state.aggregations) == ADDRESSES - 1
    page = (ws.site / "support-backlog.md").read_text(encoding="utf-8")
    assert "Support cases by status" not in page
    assert "Open support cases by priority" in page
    assert_converged(ws)


def test_removing_a_report_deletes_its_state_and_files(applied: Workspace) -> None:
    ws = applied
    (ws.reports / "support-backlog.yaml").unlink()

    code, plan = ws.plan_json()
    result, calls = ws.counted("apply", "--auto-approve")

    assert code == 2
    assert actions(plan) == {f"support-backlog.{name}": "delete" for name in (
        "by_status", "open_by_priority", "urgent_by_service", "open_by_source",
        "status_by_priority")}  # fmt: skip
    assert renders(plan) == {"support-backlog": ["delete", "report removed"]}
    assert plan["summary"] == (
        "Plan: 0 to fetch (0 new, 0 changed, 0 stale), 0 reports to render, 6 to delete."
    )
    assert result.exit_code == 0, result.output
    assert calls == 0
    state = ws.state()
    assert not [a for a in state.aggregations if a.startswith("support-backlog.")]
    assert "support-backlog" not in state.reports
    assert sorted(ws.site_files()) == [f for f in SITE_FILES if f not in SUPPORT_PAGES]
    assert "support-backlog" not in (ws.site / "index.html").read_text(encoding="utf-8")
    assert_converged(ws)


def test_dropping_a_format_removes_its_page(applied: Workspace) -> None:
    ws = applied
    ws.edit("support-backlog", "formats: [markdown, html]", "formats: [html]")

    result, calls = ws.counted("apply", "--auto-approve")

    assert result.exit_code == 0, result.output
    assert calls == 0
    assert not (ws.site / "support-backlog.md").exists()
    assert list(ws.state().reports["support-backlog"].outputs) == [
        "support-backlog.csv",
        "support-backlog.html",
        "support-backlog.json",
    ]
    assert_converged(ws)


# -- freshness -------------------------------------------------------------------------


def test_results_older_than_refresh_are_fetched_again(applied: Workspace) -> None:
    ws = applied
    # 20 minutes on: nothing is older than its report's refresh (30m, 1h, 6h).
    ws.epoch = EPOCH + 20 * 60
    assert_converged(ws)

    # Two hours on: security-cases (30m, 4 results) and service-health (1h, 10) are stale.
    ws.epoch = EPOCH + 2 * 3600
    code, plan = ws.plan_json()
    result, calls = ws.counted("apply", "--auto-approve")

    assert code == 2
    stale = {a for a in ws.state().aggregations if not a.startswith("support-backlog.")}
    assert actions(plan) == dict.fromkeys(stale, "refresh")
    reasons = sorted({c["reason"] for c in plan["aggregations"] if c["actions"] == ["refresh"]})
    assert len(reasons) == 2 and "1h" in reasons[0] and "30m" in reasons[1], reasons
    assert plan["summary"] == (
        "Plan: 14 to fetch (0 new, 0 changed, 14 stale), 2 reports to render, 0 to delete."
    )
    assert result.exit_code == 0, result.output
    assert calls == 14
    state = ws.state()
    refreshed = {a for a, s in state.aggregations.items() if s.fetched_at == "2027-01-15T10:00:00Z"}
    assert refreshed == stale
    # The previous result moved into history.
    entry = state.aggregations["security-cases.open_by_priority"]
    assert [h["fetched_at"] for h in entry.history] == ["2027-01-15T08:00:00Z"]
    assert state.aggregations["support-backlog.by_status"].history == ()
    assert_converged(ws)


def test_refresh_always_fetches_on_every_apply(applied: Workspace) -> None:
    ws = applied
    ws.edit("support-backlog", "refresh: 6h", "refresh: always")

    first, first_calls = ws.counted("apply", "--auto-approve")
    code, plan = ws.plan_json()
    second, second_calls = ws.counted("apply", "--auto-approve")

    assert first.exit_code == 0 and second.exit_code == 0
    assert (first_calls, second_calls) == (5, 5)
    assert code == 2
    assert set(actions(plan).values()) == {"refresh"} and len(actions(plan)) == 5
    assert {c["reason"] for c in plan["aggregations"] if c["actions"] == ["refresh"]} == {
        "refresh: always"
    }
    assert len(ws.state().aggregations["support-backlog.by_status"].history) == 2


def test_refresh_flag_fetches_everything(applied: Workspace) -> None:
    ws = applied

    code, plan = ws.plan_json("--refresh")
    result, calls = ws.counted("apply", "--auto-approve", "--refresh")

    assert code == 2
    assert plan["summary"] == (
        f"Plan: {ADDRESSES} to fetch (0 new, 0 changed, {ADDRESSES} stale), "
        "3 reports to render, 0 to delete."
    )
    assert result.exit_code == 0, result.output
    assert calls == ADDRESSES
    assert_converged(ws)


# -- data source -----------------------------------------------------------------------


def test_another_api_url_replaces_every_aggregation(applied: Workspace, emulator: Emulator) -> None:
    ws = applied
    other = emulator()
    first = ws.emulator

    code, plan = ws.plan_json(CASEREPORT_API_URL=other.url)
    result = ws.apply("--allow-source-change", CASEREPORT_API_URL=other.url)

    assert code == 2
    assert actions(plan) == dict.fromkeys(ws.state().aggregations, "replace")
    assert all(c["reason"].startswith("data source changed") for c in plan["aggregations"])
    assert plan["source"]["site"] == other.url
    assert (api_calls(first), api_calls(other)) == (0, ADDRESSES)
    assert last_line(result.output).startswith("Apply complete: 19 fetched (19 API calls)")
    state = ws.state()
    assert state.source is not None and state.source.site == other.url
    # Numbers from another source are not comparable: history restarts.
    assert all(entry.history == () for entry in state.aggregations.values())
    assert_converged(ws, CASEREPORT_API_URL=other.url)
    assert ws.plan_json()[0] == 2


def test_switching_to_the_builtin_emulator_and_back_restores_the_results(
    applied: Workspace,
) -> None:
    ws = applied
    datadog = ws.state()

    code, plan = ws.plan_json("--emulator")
    result = ws.apply("--emulator", "--allow-source-change")

    assert code == 2
    assert set(actions(plan).values()) == {"replace"} and len(actions(plan)) == ADDRESSES
    assert last_line(result.output).startswith("Apply complete: 19 fetched (19 API calls)")
    assert api_calls(ws.emulator) == 0
    state = ws.state()
    assert state.source is not None and state.source.kind == "emulator"
    emulated = state.source.describe()
    assert emulated.startswith("local emulator")
    assert emulated in (ws.site / "support-backlog.html").read_text(encoding="utf-8")
    # The Datadog results are kept aside, as they were.
    assert list(state.previous_sources) == [f"datadog:{ws.emulator.url}"]
    assert state.previous_sources[f"datadog:{ws.emulator.url}"].aggregations == (
        datadog.aggregations
    )
    assert_converged(ws, "--emulator")

    human = ws.run("plan").output
    assert f"The data source changed (was {emulated}): results kept from an earlier run" in human
    code, plan = ws.plan_json()
    result, calls = ws.counted("apply", "--auto-approve", "--allow-source-change")
    # Switching back brings the Datadog results back, history and all: nothing to fetch.
    assert plan["previous_source"]["kind"] == "emulator"
    assert actions(plan) == {} and len(plan["aggregations"]) == ADDRESSES  # all no-ops
    assert calls == 0
    back = ws.state()
    assert back.source is not None and back.source.identity == datadog.source.identity  # type: ignore[union-attr]
    assert back.aggregations == datadog.aggregations
    assert list(back.previous_sources) == ["emulator:emulator"]
    page = (ws.site / "support-backlog.html").read_text(encoding="utf-8")
    assert emulated not in page and f"Datadog ({ws.emulator.url})" in page
    assert_converged(ws)


def test_an_unattended_apply_refuses_a_change_of_source(
    applied: Workspace, emulator: Emulator
) -> None:
    ws = applied
    ws.apply("--refresh")  # a backup too
    reset_stats(ws.emulator)
    other = emulator()
    files = {p: p.read_bytes() for p in sorted(ws.root.rglob("*")) if p.is_file()}

    refused = ws.run("apply", "--auto-approve", CASEREPORT_API_URL=other.url)

    assert refused.exit_code == 1
    assert refused.stderr == (
        f"Error: the data source would change from Datadog ({ws.emulator.url}) (the source of "
        f".casereport/state.json) to Datadog ({other.url}); check DD_SITE and "
        "CASEREPORT_API_URL, or pass --allow-source-change to switch (the old results are "
        "kept for a switch back)\n"
    )
    assert (api_calls(ws.emulator), api_calls(other)) == (0, 0)
    assert {p: p.read_bytes() for p in sorted(ws.root.rglob("*")) if p.is_file()} == files


def test_an_apply_whose_every_fetch_fails_keeps_the_states_source_and_results(
    applied: Workspace,
) -> None:
    ws = applied
    before = ws.state()
    dead = "http://127.0.0.1:9"  # the discard port: nothing listens

    result = ws.run("apply", "--auto-approve", "--allow-source-change", CASEREPORT_API_URL=dead)

    assert result.exit_code == 1
    after = ws.state()
    assert after.source == before.source
    assert after.aggregations == before.aggregations
    assert after.previous_sources == {}
    # The workspace still plans against its source: nothing to fetch.
    assert ws.plan_json()[1]["summary"] == NO_CHANGES


def test_missing_credentials_stop_a_source_change_before_it_changes_anything(
    applied: Workspace, emulator: Emulator
) -> None:
    ws = applied
    other = emulator()
    # Not even a plan: without keys there is nothing an apply could do with it.
    planned = ws.run("plan", CASEREPORT_API_URL=other.url, DD_API_KEY=None)
    assert planned.exit_code == 1
    assert "DD_API_KEY" in planned.stderr and "--emulator" in planned.stderr

    failed = ws.run("apply", "--auto-approve", CASEREPORT_API_URL=other.url, DD_API_KEY=None)

    assert failed.exit_code == 1
    assert "DD_API_KEY" in failed.stderr
    assert ws.state().source is not None
    assert ws.state().source.site == ws.emulator.url  # type: ignore[union-attr]
    assert len(ws.state().aggregations) == ADDRESSES
    assert api_calls(other) == 0


# -- drift of the rendered site --------------------------------------------------------


@pytest.mark.parametrize("how", ["edited", "deleted"])
def test_a_drifted_output_file_is_rendered_again(applied: Workspace, how: str) -> None:
    ws = applied
    page = ws.site / "support-backlog.md"
    original = page.read_bytes()
    if how == "edited":
        page.write_text("# edited by hand\n", encoding="utf-8")
        reason = "output support-backlog.md was edited by hand"
    else:
        page.unlink()
        reason = "output support-backlog.md is missing"
    stamps = ws.site_stamps()

    code, plan = ws.plan_json()
    result, calls = ws.counted("apply", "--auto-approve")

    assert code == 2
    assert actions(plan) == {}
    assert renders(plan) == {"support-backlog": ["render", reason]}
    assert result.exit_code == 0, result.output
    assert calls == 0
    assert page.read_bytes() == original
    assert rewritten(stamps, ws.site_stamps()) == {"support-backlog.md"}
    assert_converged(ws)


@pytest.mark.skipif(
    sys.platform != "linux", reason="casereport forks render processes on Linux only"
)
def test_rendering_in_several_processes_writes_the_same_site(
    applied: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large site is rendered and written by forked workers: same files, same state,
    0 API calls."""
    ws = applied
    site, state = ws.site_files(), ws.state_json()
    for page in ws.site.iterdir():
        page.unlink()
    renderers = ws.root / "renderers"
    real = render_report

    def noting_the_process(*args: Any, **kwargs: Any) -> Pages:
        with renderers.open("a") as note:
            note.write(f"{os.getpid()}\n")
        # Until all three render: one worker cannot take another's share on this small site.
        deadline = time.monotonic() + 30
        while len(set(renderers.read_text().split())) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        return real(*args, **kwargs)

    monkeypatch.setattr(workers, "render_report", noting_the_process)
    monkeypatch.setattr(workers, "process_count", lambda reports: 3)
    result, calls = ws.counted("render")

    assert result.exit_code == 0, result.output
    assert calls == 0
    pids = renderers.read_text().split()
    assert len(set(pids)) == 3 and len(pids) == 3  # a report each, none rendered twice
    assert ws.site_files() == site
    assert ws.state_json() == state
    assert_converged(ws)


def test_render_records_the_pages_it_writes_and_a_render_changing_nothing_writes_no_state(
    applied: Workspace,
) -> None:
    ws = applied
    (ws.root / "templates").mkdir(exist_ok=True)
    (ws.root / "templates" / "report.md.j2").write_text("# {{ report.title }}\n")
    before = ws.state_json()

    result, calls = ws.counted("render")

    assert result.exit_code == 0, result.output
    assert calls == 0
    state = ws.state_json()
    assert state["serial"] == before["serial"] + 1
    page = ws.site / "support-backlog.md"
    assert page.read_text() == "# Support backlog\n"
    outputs = state["reports"]["support-backlog"]["outputs"]
    assert outputs["support-backlog.md"] == hashlib.sha256(page.read_bytes()).hexdigest()
    assert_converged(ws)
    written = ws.state_path.stat().st_mtime_ns

    result, calls = ws.counted("render")

    assert result.exit_code == 0, result.output
    assert ws.state_json() == state
    assert ws.state_path.stat().st_mtime_ns == written  # not even rewritten the same


def test_a_drifted_index_is_rendered_again(applied: Workspace) -> None:
    ws = applied
    index = ws.site / "index.html"
    original = index.read_bytes()
    index.write_text("<p>edited</p>\n", encoding="utf-8")

    result, calls = ws.counted("apply", "--auto-approve")

    assert result.exit_code == 0, result.output
    assert calls == 0
    assert index.read_bytes() == original
    assert_converged(ws)


# -- failures, approval and targets ----------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def _emulator_on(port: int, error_rate: float = 0.0) -> Iterator[RunningEmulator]:
    config = EmulatorConfig(port=port, cases=2000, seed=7, error_rate=error_rate)
    with running_emulator(config) as emu:
        yield emu


def test_a_failed_fetch_fails_only_its_report_and_keeps_its_last_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    port = _free_port()
    with _emulator_on(port) as healthy:
        ws = Workspace(tmp_path, healthy)
        ws.apply()
    kept = ws.site_files()
    before = ws.state_json()
    ws.edit(
        "support-backlog",
        "project:${var.project}\n    group_by: [status]\n",
        "project:XYZ\n    group_by: [status]\n",
    )
    (ws.site / "security-cases.html").unlink()

    # The same URL (so the same source), now answering every API request with 500 or 503.
    with _emulator_on(port, error_rate=1.0) as failing:
        assert failing.url == healthy.url
        ws.emulator = failing
        result = ws.run("apply", "--auto-approve")
        attempts = api_calls(failing)

    assert result.exit_code == 1, result.output
    assert attempts > 1  # the client retried
    assert last_line(result.stdout) == (
        "Apply finished with errors: 0 fetched (1 API call), 1 report rendered, 0 deleted. "
        "1 failed:"
    )
    (failure,) = result.stderr.splitlines()
    assert failure.startswith("  support-backlog.by_status: Datadog server error (HTTP 5")
    assert failure.endswith("(report support-backlog keeps its last good output)")
    # The failed report kept its pages and its state; the other report completed.
    assert ws.site_files() == kept
    after = ws.state_json()
    assert after["aggregations"] == before["aggregations"]
    assert changed(before["reports"], after["reports"]) == set()
    assert not journal_path(ws.state_path).exists()
    code, plan = ws.plan_json()
    assert code == 2
    assert actions(plan) == {"support-backlog.by_status": "update"}
    assert list(renders(plan)) == ["support-backlog"]


def test_a_first_apply_refused_by_the_api_stops_at_the_first_refusal(
    ws: Workspace, emulator: Emulator
) -> None:
    ws.emulator = emulator(api_key="another-key")  # answers every request with 403

    result, calls = ws.counted("apply", "--auto-approve")

    assert result.exit_code == 1
    # At most those in flight (parallelism 16) when the first 403 came back; none after.
    assert 1 <= calls <= 16
    failures = result.stderr.splitlines()
    assert len(failures) == 1, failures
    assert failures[0].startswith("  Datadog refused access (HTTP 403) at ")
    assert failures[0].endswith(
        "; the apply stopped there: 19 of 19 requests not fetched, every result fetched "
        "before it kept (0 reports keep their last good output, 3 not rendered)"
    )
    assert "DD_API_KEY" not in result.output and "fake-api-key" not in result.output
    state = ws.state()
    assert state.aggregations == {} and state.reports == {}
    assert not [name for name in ws.site_files() if not name.startswith("index.")]


def test_apply_on_a_non_terminal_needs_auto_approve(ws: Workspace) -> None:
    result, calls = ws.counted("apply")

    assert result.exit_code == 1
    assert result.stderr == (
        "Error: apply needs approval: run it on a terminal, pass --auto-approve, "
        "or apply a saved plan (`casereport plan --out plan.json`)\n"
    )
    assert calls == 0
    assert not ws.state_path.exists()
    assert not ws.site.exists()


def test_apply_without_approval_leaves_an_existing_workspace_alone(applied: Workspace) -> None:
    ws = applied
    ws.edit("support-backlog", BY_STATUS, "")
    state_bytes = ws.state_path.read_bytes()
    files = ws.site_files()

    result, calls = ws.counted("apply")

    assert result.exit_code == 1
    assert result.stderr.startswith("Error: apply needs approval:")
    assert len(result.stderr.splitlines()) == 1
    assert calls == 0
    assert ws.state_path.read_bytes() == state_bytes
    assert ws.site_files() == files


def test_target_limits_the_apply(applied: Workspace) -> None:
    ws = applied
    ws.edit("support-backlog", "limit: 3\n  open_by_priority", "limit: 2\n  open_by_priority")
    ws.edit("security-cases", "limit: 10", "limit: 9")

    result, calls = ws.counted("apply", "--auto-approve", "--target", "support-backlog")

    assert result.exit_code == 0, result.output
    assert calls == 1
    code, plan = ws.plan_json()
    assert code == 2
    assert actions(plan) == {"security-cases.critical_by_service": "update"}
    assert list(renders(plan)) == ["security-cases"]

    one, calls = ws.counted(
        "apply", "--auto-approve", "--target", "security-cases.critical_by_service"
    )
    assert one.exit_code == 0, one.output
    assert calls == 1
    assert_converged(ws)


def test_target_a_removed_report_deletes_only_it(applied: Workspace) -> None:
    ws = applied
    (ws.reports / "security-cases.yaml").unlink()
    (ws.reports / "support-backlog.yaml").unlink()

    result, calls = ws.counted("apply", "--auto-approve", "--target", "security-cases")

    assert result.exit_code == 0, result.output
    assert calls == 0
    assert last_line(result.output) == (
        "Apply complete: 0 fetched (0 API calls), 0 reports rendered, 5 deleted."
    )
    assert "security-cases.html" not in ws.site_files()
    assert {"support-backlog.html", "support-backlog.md"} <= set(ws.site_files())
    code, plan = ws.plan_json()
    assert code == 2
    assert renders(plan) == {"support-backlog": ["delete", "report removed"]}


def test_an_unknown_target_is_an_error(applied: Workspace) -> None:
    result = applied.run("apply", "--auto-approve", "--target", "no-such-report")

    assert result.exit_code == 1
    assert result.stderr == (
        "Error: --target no-such-report: no report or aggregation has this address; "
        "see `casereport state list` or the report files\n"
    )


# -- credentials refused mid-apply ------------------------------------------------------


def test_the_first_refusal_of_the_keys_stops_the_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: Emulator
) -> None:
    monkeypatch.chdir(tmp_path)
    keys = {"DD_API_KEY": "right-api-key", "DD_APP_KEY": "right-app-key"}
    ws = Workspace(tmp_path, emulator(api_key=keys["DD_API_KEY"], app_key=keys["DD_APP_KEY"]))
    (tmp_path / "casereport.toml").write_text("parallelism = 2\n")
    ws.apply(**keys)
    before_state, before_site = ws.state_json(), ws.site_files()

    result, calls = ws.counted("apply", "--auto-approve", "--refresh", DD_API_KEY="revoked-key")

    assert result.exit_code == 1
    # At most the two requests in flight when the first 403 came back; none after.
    assert 1 <= calls <= 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("  Datadog refused access (HTTP 403) at ")
    assert lines[0].endswith(
        "; the apply stopped there: 19 of 19 requests not fetched, every result fetched "
        "before it kept (3 reports keep their last good output)"
    )
    assert last_line(result.stdout) == (
        f"Apply finished with errors: 0 fetched ({calls} API call{'s' * (calls != 1)}), "
        "0 reports rendered, 0 deleted. 1 failed:"
    )
    assert ws.state_json()["aggregations"] == before_state["aggregations"]
    assert ws.site_files() == before_site
