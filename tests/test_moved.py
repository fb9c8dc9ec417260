"""``moved:`` entries as a user meets them: the plan shows moves, not delete + create, and
apply keeps results and history, against a real emulator over HTTP (``apply_workspace``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from apply_workspace import Workspace, actions, reset_stats
from casereport.emulator.server import RunningEmulator

Emulator = Callable[..., RunningEmulator]
DAY = 86_400


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: Emulator) -> Workspace:
    """The example workspace after two applies a day apart (stats reset)."""
    monkeypatch.chdir(tmp_path)
    ws = Workspace(tmp_path, emulator())
    # Runs a day apart, compared with the run before (the example compares with a week before).
    ws.edit("support-backlog", "\ncompare: 7d", "\ncompare: previous")
    ws.apply()
    ws.epoch += DAY
    ws.apply()
    reset_stats(ws.emulator)
    return ws


def add_moved(ws: Workspace, report: str, entries: str) -> None:
    ws.edit(report, "aggregations:\n", f"moved:\n{entries}aggregations:\n")


def test_a_renamed_aggregation_is_moved_with_its_history(ws: Workspace) -> None:
    before = ws.state().aggregations["support-backlog.by_status"]
    ws.edit("support-backlog", "  by_status:\n", "  by_state:\n")
    add_moved(ws, "support-backlog", "  - {from: by_status, to: by_state}\n")

    code, plan = ws.plan_json()
    human = ws.plan().output
    markdown = ws.run("plan", "--markdown").output

    assert code == 2
    assert actions(plan) == {}  # no delete, no create: a move with nothing to fetch
    (moved,) = [c for c in plan["aggregations"] if "moved_from" in c]
    assert (moved["address"], moved["moved_from"]) == (
        "support-backlog.by_state",
        "support-backlog.by_status",
    )
    assert plan["counts"]["moved"] == 1
    # The moved result is counted as a move, not as unchanged too.
    unchanged = [c for c in plan["aggregations"] if c["actions"] == ["no-op"]]
    assert len(unchanged) > 1
    assert plan["counts"]["unchanged_aggregations"] == len(unchanged) - 1
    assert plan["summary"] == (
        "Plan: 0 to fetch (0 new, 0 changed, 0 stale), 1 report to render, 0 to delete, 1 to move."
    )
    assert " ~> support-backlog.by_status moved to support-backlog.by_state\n" in human
    assert "will be deleted" not in human and "will be created" not in human
    assert (
        "| `~>` | `support-backlog.by_state` | moved from `support-backlog.by_status`, "
        "results and history kept |"
    ) in markdown

    result, calls = ws.counted("apply", "--auto-approve")

    assert result.exit_code == 0, result.output
    assert calls == 0
    assert result.output.splitlines()[-1] == (
        "Apply complete: 0 fetched (0 API calls), 1 report rendered, 0 deleted, 1 moved."
    )
    after = ws.state().aggregations
    assert "support-backlog.by_status" not in after
    moved_entry = after["support-backlog.by_state"]
    assert (moved_entry.result, moved_entry.fetched_at) == (before.result, before.fetched_at)
    assert list(moved_entry.history) == list(before.history) and len(before.history) == 1
    page = (ws.site / "support-backlog.md").read_text(encoding="utf-8")
    section = page.split("## Support cases by status\n", 1)[1].split("\n## ", 1)[0]
    assert "since the previous run on 15 Jan 2027" in section  # compared, not a first run
    # Done once: the entry stays harmlessly, as Terraform's moved blocks do.
    code, plan = ws.plan_json()
    assert (code, plan["summary"]) == (0, "No changes. Reports are up to date.")


def test_a_renamed_report_moves_every_address_and_replaces_its_pages(ws: Workspace) -> None:
    before = ws.state().aggregations
    own = sorted(a for a in before if a.startswith("support-backlog."))
    (ws.reports / "support-backlog.yaml").rename(ws.reports / "support-queue.yaml")
    add_moved(ws, "support-queue", "  - {from: support-backlog}\n")

    code, plan = ws.plan_json()

    assert code == 2
    moves = {c["moved_from"]: c["address"] for c in plan["aggregations"] if "moved_from" in c}
    assert moves == {a: a.replace("support-backlog.", "support-queue.") for a in own}
    assert actions(plan) == {}
    reports = {r["name"]: r["actions"][0] for r in plan["reports"]}
    assert (reports["support-backlog"], reports["support-queue"]) == ("delete", "render")

    result, calls = ws.counted("apply", "--auto-approve")

    assert result.exit_code == 0, result.output
    assert calls == 0
    after = ws.state().aggregations
    for old, new in moves.items():
        assert list(after[new].history) == list(before[old].history)
        assert after[new].report == "support-queue"
        assert old not in after
    assert not (ws.site / "support-backlog.html").exists()
    assert (ws.site / "support-queue.html").exists()


def test_a_moved_for_each_aggregation_moves_every_key(ws: Workspace) -> None:
    keys = sorted(a for a in ws.state().aggregations if a.startswith("service-health.open_by_"))
    ws.edit("service-health", "  open_by_priority:\n", "  by_priority:\n")
    add_moved(ws, "service-health", "  - {from: open_by_priority, to: by_priority}\n")

    code, plan = ws.plan_json()

    assert code == 2
    moved = {c["moved_from"] for c in plan["aggregations"] if "moved_from" in c}
    assert moved == {a for a in keys if a.startswith("service-health.open_by_priority[")}
    assert len(moved) > 1
    assert actions(plan) == {}


def test_a_move_with_a_changed_query_fetches_once_and_keeps_history(ws: Workspace) -> None:
    ws.edit(
        "support-backlog",
        "  by_status:\n    title: Support cases by status\n"
        "    query_filter: project:${var.project}",
        "  by_state:\n    title: Support cases by status\n"
        "    query_filter: project:${var.project} -status:closed",
    )
    add_moved(ws, "support-backlog", "  - {from: by_status, to: by_state}\n")
    ws.epoch += 60

    code, plan = ws.plan_json()
    assert (code, actions(plan)) == (2, {"support-backlog.by_state": "update"})
    result, calls = ws.counted("apply", "--auto-approve")

    assert result.exit_code == 0, result.output
    assert calls == 1
    entry = ws.state().aggregations["support-backlog.by_state"]
    assert len(entry.history) == 2
    assert entry.query_changed_at == entry.fetched_at
    page = (ws.site / "support-backlog.md").read_text(encoding="utf-8")
    assert "query changed on 16 Jan 2027: nothing to compare with yet" in page


def test_a_saved_plan_carries_its_moves(ws: Workspace) -> None:
    ws.edit("support-backlog", "  by_status:\n", "  by_state:\n")
    add_moved(ws, "support-backlog", "  - {from: by_status, to: by_state}\n")
    assert ws.run("plan", "--out", "plan.json").exit_code == 0

    result = ws.run("apply", "plan.json")

    assert result.exit_code == 0, result.output
    assert "support-backlog.by_state" in ws.state().aggregations
    assert "support-backlog.by_status" not in ws.state().aggregations


def test_a_target_that_leaves_out_a_moves_destination_never_deletes_its_source(
    ws: Workspace,
) -> None:
    before = ws.state().aggregations
    own = sorted(a for a in before if a.startswith("support-backlog."))
    (ws.reports / "support-backlog.yaml").rename(ws.reports / "support-queue.yaml")
    add_moved(ws, "support-queue", "  - {from: support-backlog}\n")

    # The old name is still in state, so it can be targeted: nothing of it may be deleted.
    ws.apply("--target", "support-backlog")

    kept = ws.state().aggregations
    assert all(address in kept for address in own)
    assert all(list(kept[a].history) == list(before[a].history) for a in own)
    # A later apply moves them, history and all.
    ws.apply()
    after = ws.state().aggregations
    for old in own:
        new = old.replace("support-backlog.", "support-queue.")
        assert old not in after and list(after[new].history) == list(before[old].history)
