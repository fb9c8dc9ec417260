"""`casereport state mv`: a report or an address moves in state with its results and history.

Each test works in a copy of the example workspace with a real state made by
`apply --emulator --auto-approve` (the emulator runs in-process) and the clock pinned.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from casereport.cli import cli
from casereport.state.model import State, backup_path, load_state
from casereport.state.moves import apply_moves, moves_for
from test_state import aggregation

REPO = Path(__file__).resolve().parent.parent
STATE = Path(".casereport/state.json")
OLD_MTIME_NS = 1_000_000_000 * 1_000_000_000


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def loaded() -> State:
    state = load_state(STATE)
    assert state is not None
    return state


@pytest.fixture
def applied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[State]:
    """The example workspace after two applies a day apart: every address has history."""
    shutil.copytree(REPO / "reports", tmp_path / "reports")
    monkeypatch.chdir(tmp_path)
    for name in ("DD_API_KEY", "DD_APP_KEY", "DD_BEARER_TOKEN", "CASEREPORT_API_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1795719600")  # 2026-11-26T19:00:00Z
    assert run("apply", "--emulator", "--auto-approve").exit_code == 0
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1795806000")  # a day later: all stale
    assert run("apply", "--emulator", "--auto-approve").exit_code == 0
    yield loaded()


def plan_actions() -> dict[str, list[str]]:
    result = run("plan", "--emulator", "--json")
    assert result.exit_code == 0, result.output
    return {c["address"]: c["actions"] for c in json.loads(result.output)["aggregations"]}


def test_mv_of_an_aggregation_keeps_its_results_and_history(applied: State) -> None:
    old, new = "support-backlog.by_status", "support-backlog.by_state"
    entry = applied.aggregations[old]
    assert len(entry.history) == 1

    result = run("state", "mv", old, new)

    assert result.exit_code == 0, result.output
    assert result.output == f"Moved {old} to {new} in state:\n  {old} -> {new}\n"
    after = loaded()
    assert old not in after.aggregations
    moved = after.aggregations[new]
    assert (moved.result, moved.fetched_at, moved.fingerprint) == (
        entry.result,
        entry.fetched_at,
        entry.fingerprint,
    )
    assert list(moved.history) == list(entry.history)
    assert moved.report == "support-backlog"
    assert after.serial == applied.serial + 1
    assert backup_path(STATE).exists()
    assert not Path(".casereport/state.json.lock").exists()

    # Renamed in the report file too, the plan has nothing to fetch for it.
    path = Path("reports/support-backlog.yaml")
    path.write_text(path.read_text().replace("  by_status:", "  by_state:"))
    actions = plan_actions()
    assert actions[new] == ["no-op"]
    assert old not in actions


def test_mv_of_a_report_moves_every_address_and_its_pages(applied: State) -> None:
    own = sorted(a for a in applied.aggregations if a.startswith("support-backlog."))

    result = run("state", "mv", "support-backlog", "support-queue")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Moved support-backlog to support-queue in state:"
    assert lines[1] == "  support-backlog -> support-queue"
    assert lines[2:] == [f"  {a} -> {a.replace('support-backlog', 'support-queue')}" for a in own]
    after = loaded()
    for address in own:
        new = address.replace("support-backlog", "support-queue")
        assert after.aggregations[new].result == applied.aggregations[address].result
        assert list(after.aggregations[new].history) == list(applied.aggregations[address].history)
        assert after.aggregations[new].report == "support-queue"
    assert "support-backlog" not in after.reports
    assert after.forgotten_pages["support-backlog"] == applied.reports["support-backlog"].outputs

    # With the file renamed: nothing fetched, the old pages go, the new ones are written.
    Path("reports/support-backlog.yaml").rename("reports/support-queue.yaml")
    assert all(
        actions == ["no-op"]
        for address, actions in plan_actions().items()
        if address.startswith("support-queue.")
    )
    planned = run("plan", "--emulator", "--json")
    (gone,) = [r for r in json.loads(planned.output)["reports"] if r["name"] == "support-backlog"]
    assert (gone["actions"], gone["reasons"]) == (
        ["delete"],
        ["left in state by `state rm` or `state mv`"],
    )
    result = run("apply", "--emulator", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].startswith("Apply complete: 0 fetched (0 API calls)")
    assert not Path("site/support-backlog.html").exists()
    assert Path("site/support-queue.html").exists()
    final = loaded()
    assert "support-queue" in final.reports and not final.forgotten_pages


def test_mv_of_a_for_each_base_moves_every_key(applied: State) -> None:
    old = "service-health.open_by_priority"
    keyed = sorted(a for a in applied.aggregations if a.startswith(f"{old}["))
    assert keyed

    result = run("state", "mv", old, "service-health.by_priority")

    assert result.exit_code == 0, result.output
    after = loaded()
    for address in keyed:
        new = address.replace("open_by_priority", "by_priority")
        assert list(after.aggregations[new].history) == list(applied.aggregations[address].history)
        assert address not in after.aggregations


def test_mv_of_one_for_each_key(applied: State) -> None:
    old = 'service-health.open_by_priority["billing"]'
    new = 'service-health.open_by_priority["invoicing"]'

    result = run("state", "mv", old, new)

    assert result.exit_code == 0, result.output
    after = loaded()
    assert after.aggregations[new].result == applied.aggregations[old].result
    assert old not in after.aggregations
    assert 'service-health.open_by_priority["auth"]' in after.aggregations


@pytest.mark.parametrize(
    ("source", "destination", "message"),
    [
        (
            "support-backlog.no_such",
            "support-backlog.other",
            "no report or aggregation 'support-backlog.no_such' in .casereport/state.json; "
            "nothing moved",
        ),
        (
            "support-backlog.by_status",
            "support-backlog.by_status",
            "'support-backlog.by_status' is both the source and the destination; "
            "give the address to move it to",
        ),
        (
            "support-backlog",
            "support-backlog",
            "'support-backlog' is both the source and the destination; "
            "give the address to move it to",
        ),
        (
            "support-backlog.by_status",
            "support-backlog.open_by_source",
            "'support-backlog.open_by_source' is already in .casereport/state.json; "
            "`casereport state rm` it first if it is to be replaced",
        ),
        (
            "support-backlog",
            "service-health",
            "'service-health' is already in .casereport/state.json; "
            "`casereport state rm` it first if it is to be replaced",
        ),
        (
            "support-backlog.by_status",
            "support-queue",
            "cannot move an aggregation ('support-backlog.by_status') to 'support-queue': "
            "move a report to a report, an aggregation to an aggregation",
        ),
        (
            "support-backlog",
            "support-queue.by_status",
            "cannot move a report ('support-backlog') to 'support-queue.by_status': "
            "move a report to a report, an aggregation to an aggregation",
        ),
        (
            "service-health.open_by_priority",
            'service-health.other["x"]',
            "cannot move an aggregation ('service-health.open_by_priority') to "
            "'service-health.other[\"x\"]': move a report to a report, "
            "an aggregation to an aggregation",
        ),
        (
            "Support Backlog",
            "x",
            "source 'Support Backlog' is not a report or an address "
            '(report, report.aggregation or report.aggregation["key"])',
        ),
    ],
)
def test_mv_refuses_with_one_line_and_changes_nothing(
    applied: State, source: str, destination: str, message: str
) -> None:
    for path in STATE.parent.iterdir():
        os.utime(path, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in STATE.parent.iterdir()}

    result = run("state", "mv", source, destination)

    assert result.exit_code == 1
    assert result.output == f"Error: {message}\n"
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in STATE.parent.iterdir()}
    assert after == before


def test_mv_without_a_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("state", "mv", "a.b", "a.c")
    assert result.exit_code == 1
    assert result.output == (
        "Error: no state at .casereport/state.json; run `casereport apply` first\n"
    )


def test_moving_an_aggregation_moves_its_keys_unless_it_becomes_one_key() -> None:
    addresses = dict.fromkeys(["r.agg", 'r.agg["a"]', 'r.agg["b"]', "r.aggregate", "r.other"])

    assert moves_for(addresses, "r.agg", "r.renamed") == {  # type: ignore[arg-type]
        "r.agg": "r.renamed",
        'r.agg["a"]': 'r.renamed["a"]',
        'r.agg["b"]': 'r.renamed["b"]',
    }
    # An instance holds one key: the aggregation alone becomes it, its keys stay.
    assert moves_for(addresses, "r.agg", 'r.one["x"]') == {  # type: ignore[arg-type]
        "r.agg": 'r.one["x"]'
    }


def test_a_move_happens_only_from_an_address_in_state_to_one_not_in_it() -> None:
    old, new, kept = aggregation("r.old", 1.0), aggregation("r.new", 2.0), aggregation("r.kept")
    moves = {"r.old": "r.new", "r.gone": "r.other"}

    # The new address already has results: both stay as they are.
    assert apply_moves({"r.old": old, "r.new": new}, moves) == {"r.old": old, "r.new": new}
    # The old address is not in state (moved already): nothing to do.
    assert apply_moves({"r.kept": kept}, moves) == {"r.kept": kept}
    moved = apply_moves({"r.old": old, "r.kept": kept}, moves)
    assert moved == {"r.new": replace(old, address="r.new"), "r.kept": kept}
