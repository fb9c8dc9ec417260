"""Saved plans, `plan --detailed-exitcode`, and what `plan` must never do, through the CLI.

Each test runs the real command line (click's CliRunner, in process) in a temporary
workspace holding a copy of the example reports, with ``--emulator`` as the data source
and the clock pinned by ``SOURCE_DATE_EPOCH``. A refused apply must change nothing: the
state and site files are compared byte for byte before and after.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from casereport.engine.plan import Plan
from casereport.render.templates import BUILTIN_TEMPLATES
from cli_workspace import example_workspace, ok, run

STATE = Path(".casereport/state.json")
FIX = "run `casereport plan --out` again"


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace with the example reports, as the current directory; no credentials."""
    return example_workspace(tmp_path, monkeypatch)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file of the state directory and the site, by path, with its bytes."""
    files = {}
    for folder in (root / ".casereport", root / "site"):
        if folder.is_dir():
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    files[str(path.relative_to(root))] = path.read_bytes()
    return files


def refused(args: tuple[str, ...], root: Path) -> str:
    """Run a command that must fail on one line and change nothing; return that line."""
    before = snapshot(root)
    result = run(*args)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert snapshot(root) == before
    return lines[0]


def lineage() -> str:
    return str(json.loads(STATE.read_text())["lineage"])


# -- a saved plan is applied exactly --------------------------------------------------------


def test_apply_a_saved_plan_does_exactly_what_it_says(workspace: Path) -> None:
    saved = ok("plan", "--emulator", "--target", "support-backlog", "--out", "plan.json")
    assert saved.stdout.endswith(
        "\nSaved the plan to plan.json. Apply exactly it with: casereport apply plan.json\n"
    )
    plan = Plan.from_json(json.loads(Path("plan.json").read_text()))
    assert plan.summary() == (
        "Plan: 5 to fetch (5 new, 0 changed, 0 stale), 1 report to render, 0 to delete."
    )

    # No --target and no --emulator here: the saved plan carries both.
    applied = ok("apply", "plan.json")
    assert applied.stdout == (
        "Apply complete: 5 fetched (5 API calls), 1 report rendered, 0 deleted.\n"
    )
    state = json.loads(STATE.read_text())
    assert sorted(state["aggregations"]) == [c.address for c in plan.aggregations]
    assert sorted(state["reports"]) == ["support-backlog"]
    assert state["source"]["kind"] == "emulator"
    assert sorted(p.name for p in Path("site").iterdir()) == [
        "index.html",
        "index.md",
        "support-backlog.csv",
        "support-backlog.html",
        "support-backlog.json",
        "support-backlog.md",
    ]
    # The other reports were not part of that plan: they are still to do.
    assert run("plan", "--emulator", "--detailed-exitcode").exit_code == 2


def test_a_saved_plan_is_applied_once(workspace: Path) -> None:
    ok("plan", "--emulator", "--out", "plan.json")
    ok("apply", "plan.json")
    serial = json.loads(STATE.read_text())["serial"]

    line = refused(("apply", "plan.json"), workspace)
    assert line == (
        "Error: Saved plan plan.json is stale: it was made with no state, but "
        f".casereport/state.json now exists; {FIX}"
    )
    assert json.loads(STATE.read_text())["serial"] == serial


def test_a_saved_plan_with_vars_applies_with_the_same_vars(workspace: Path) -> None:
    ok("apply", "--emulator", "--auto-approve")
    ok("plan", "--emulator", "--var", "environment=staging", "--out", "plan.json")

    applied = ok("apply", "plan.json", "--var", "environment=staging")
    # The 7 service-health requests that use ${var.environment}; nothing else.
    assert (
        applied.stdout == "Apply complete: 7 fetched (7 API calls), 1 report rendered, 0 deleted.\n"
    )
    state = json.loads(STATE.read_text())
    assert state["aggregations"]["service-health.open_by_service"]["request"]["query_filter"] == (
        "env:staging status:open"
    )


# -- every stale case is refused ------------------------------------------------------------


def _change_lineage(root: Path) -> str:
    state = json.loads(STATE.read_text())
    state["lineage"] = "00000000-0000-4000-8000-000000000000"
    STATE.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    return "it was made for another state (lineage {old}, the state is " + state["lineage"] + ")"


def _apply_in_between(root: Path) -> str:
    before = json.loads(STATE.read_text())["serial"]
    ok("apply", "--emulator", "--auto-approve", "--refresh", "--target", "security-cases")
    assert json.loads(STATE.read_text())["serial"] > before
    return "the state changed since it was made (serial {serial} -> {new_serial})"


def _edit_definition(root: Path) -> str:
    path = root / "reports" / "support-backlog.yaml"
    path.write_text(path.read_text().replace("limit: 3", "limit: 4"))
    return "report definitions, variables or templates changed since it was made"


def _override_template(root: Path) -> str:
    (root / "templates").mkdir()
    text = (BUILTIN_TEMPLATES / "report.md.j2").read_text()
    (root / "templates" / "report.md.j2").write_text(text + "\nFooter of this workspace.\n")
    return "report definitions, variables or templates changed since it was made"


@pytest.mark.parametrize(
    "change",
    [_change_lineage, _apply_in_between, _edit_definition, _override_template],
    ids=["lineage", "serial", "definition", "template"],
)
def test_a_stale_saved_plan_is_refused(workspace: Path, change: Callable[[Path], str]) -> None:
    ok("apply", "--emulator", "--auto-approve")
    old, serial = lineage(), json.loads(STATE.read_text())["serial"]
    ok("plan", "--emulator", "--refresh", "--out", "plan.json")

    why = change(workspace)
    new_serial = json.loads(STATE.read_text())["serial"]
    line = refused(("apply", "plan.json"), workspace)

    expected = why.format(old=old, serial=serial, new_serial=new_serial)
    assert line == f"Error: Saved plan plan.json is stale: {expected}; {FIX}"


def test_a_saved_plan_made_with_another_var_is_refused(workspace: Path) -> None:
    ok("apply", "--emulator", "--auto-approve")
    ok("plan", "--emulator", "--var", "environment=staging", "--out", "plan.json")

    line = refused(("apply", "plan.json"), workspace)
    assert line == (
        "Error: Saved plan plan.json is stale: report definitions, variables or templates "
        f"changed since it was made; {FIX}"
    )


def test_a_plan_made_without_state_is_refused_once_a_state_exists(workspace: Path) -> None:
    ok("plan", "--emulator", "--out", "plan.json")
    ok("apply", "--emulator", "--auto-approve")

    line = refused(("apply", "plan.json"), workspace)
    assert line == (
        "Error: Saved plan plan.json is stale: it was made with no state, but "
        f".casereport/state.json now exists; {FIX}"
    )


def test_a_plan_made_against_a_state_is_refused_once_the_state_is_gone(workspace: Path) -> None:
    ok("apply", "--emulator", "--auto-approve")
    serial = json.loads(STATE.read_text())["serial"]
    ok("plan", "--emulator", "--refresh", "--out", "plan.json")
    STATE.unlink()

    line = refused(("apply", "plan.json"), workspace)
    assert line == (
        f"Error: Saved plan plan.json is stale: it was made against a state (serial {serial}), "
        f"but .casereport/state.json no longer exists; {FIX}"
    )
    assert not STATE.exists()


# -- plan files that are not plans ------------------------------------------------------------


def _real_plan() -> dict[str, Any]:
    ok("plan", "--emulator", "--refresh", "--out", "real.json")
    return dict(json.loads(Path("real.json").read_text()))


def _unknown_action() -> str:
    plan = _real_plan()
    plan["aggregations"][0]["actions"] = ["drop"]
    return json.dumps(plan)


def _no_request() -> str:
    plan = _real_plan()
    plan["aggregations"][0]["request"] = {"query_filter": "status:open"}
    return json.dumps(plan)


def _serial_as(value: object) -> Callable[[], str]:
    def made() -> str:
        plan = _real_plan()
        plan["state"]["serial"] = value
        return json.dumps(plan)

    return made


def _truncated() -> str:
    ok("plan", "--emulator", "--refresh", "--out", "real.json")
    text = Path("real.json").read_text()
    return text[: len(text) // 2]


NOT_FORMAT_1 = (
    "Error: plan.json: not a casereport plan of format 1; "
    "make a new one with `casereport plan --out`"
)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            lambda: "not json {",
            "Error: plan.json: not a casereport plan (Expecting value: line 1 column 1 (char 0))",
        ),
        (lambda: "\udcff\x00binary", r"Error: plan\.json: not a casereport plan \(.+\)"),
        (_truncated, r"Error: plan\.json: not a casereport plan \(.+ line \d+ column \d+ .+\)"),
        (lambda: json.dumps({"format_version": "1.2", "terraform_version": "1.9.5"}), NOT_FORMAT_1),
        (lambda: json.dumps({"format_version": 2, "aggregations": []}), NOT_FORMAT_1),
        (lambda: json.dumps([1, 2, 3]), NOT_FORMAT_1),
        (
            lambda: json.dumps({"format_version": 1}),
            "Error: plan.json: malformed plan (missing field 'tool_version'); make a new one",
        ),
        (
            _unknown_action,
            "Error: plan.json: malformed plan (security-cases.critical_by_service: unknown "
            "actions ['drop']); make a new one",
        ),
        (
            _no_request,
            "Error: plan.json: malformed plan (security-cases.critical_by_service: no valid "
            "request to fetch); make a new one",
        ),
        (
            _serial_as("7"),
            "Error: plan.json: malformed plan (state serial '7' is not an integer); make a new one",
        ),
        (
            _serial_as(True),
            "Error: plan.json: malformed plan (state serial True is not an integer); "
            "make a new one",
        ),
        (
            _serial_as(7.0),
            "Error: plan.json: malformed plan (state serial 7.0 is not an integer); make a new one",
        ),
    ],
    ids=[
        "garbage",
        "binary",
        "truncated",
        "terraform-plan",
        "newer-format",
        "json-list",
        "missing-fields",
        "unknown-action",
        "no-request",
        "serial-text",
        "serial-bool",
        "serial-float",
    ],
)
def test_a_corrupt_or_foreign_plan_file_is_a_clear_error(
    workspace: Path, content: Callable[[], str], expected: str
) -> None:
    ok("apply", "--emulator", "--auto-approve")
    Path("plan.json").write_text(content(), errors="surrogateescape")

    line = refused(("apply", "plan.json"), workspace)
    if expected.startswith("Error: plan.json"):
        assert line == expected
    else:
        assert re.fullmatch(expected, line), line


def test_a_missing_plan_file_is_a_clear_error(workspace: Path) -> None:
    ok("apply", "--emulator", "--auto-approve")
    line = refused(("apply", "missing.json"), workspace)
    assert line == "Error: missing.json: no such plan file; create one with `casereport plan --out`"


def test_target_a_removed_report_to_delete_it(workspace: Path) -> None:
    ok("apply", "--emulator", "--auto-approve")
    (workspace / "reports" / "security-cases.yaml").unlink()

    result = ok("plan", "--emulator", "--target", "security-cases")
    lines = result.stdout.splitlines()
    assert (
        "  - report security-cases: removes security-cases.csv, security-cases.html, "
        "security-cases.json"
    ) in lines
    assert lines[-1] == (
        "Plan: 0 to fetch (0 new, 0 changed, 0 stale), 0 reports to render, 5 to delete."
    )
    # Untargeted, the other reports stay as they are.
    assert not any(line.startswith("  # service-health") for line in lines)


# -- --detailed-exitcode ----------------------------------------------------------------------


def test_detailed_exitcode(workspace: Path) -> None:
    first = run("plan", "--emulator", "--detailed-exitcode")
    assert first.exit_code == 2, first.output
    assert first.stdout.endswith(
        "Plan: 19 to fetch (19 new, 0 changed, 0 stale), 3 reports to render, 0 to delete.\n"
    )
    # Without the flag, changes are not an error.
    assert run("plan", "--emulator").exit_code == 0

    ok("apply", "--emulator", "--auto-approve")
    settled = run("plan", "--emulator", "--detailed-exitcode")
    assert settled.exit_code == 0, settled.output
    assert settled.stdout.endswith("\nNo changes. Reports are up to date.\n")

    (workspace / "site" / "index.md").write_text("edited by hand\n")
    assert run("plan", "--emulator", "--detailed-exitcode").exit_code == 2


def test_detailed_exitcode_is_1_on_an_error(workspace: Path) -> None:
    (workspace / "reports" / "broken.yaml").write_text("title: [unclosed\n")
    result = run("plan", "--emulator", "--detailed-exitcode")

    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert re.fullmatch(r"Error: reports/broken\.yaml:\d+:\d+: .+", lines[0]), lines[0]


# -- plan writes nothing and calls nothing ------------------------------------------------------


def test_plan_never_writes_state_or_site(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Keys for the plan against Datadog (a plan needs them; it never calls the API).
    monkeypatch.setenv("DD_API_KEY", "plan-test-api-key")
    monkeypatch.setenv("DD_APP_KEY", "plan-test-app-key")
    ok("apply", "--emulator", "--auto-approve")
    # Leave plenty for a plan to find: a changed definition, drift, stale results.
    path = workspace / "reports" / "security-cases.yaml"
    path.write_text(path.read_text().replace("limit: 10", "limit: 11"))
    (workspace / "site" / "support-backlog.md").write_text("edited by hand\n")
    before = snapshot(workspace)
    listing = sorted(p.name for p in (workspace / ".casereport").iterdir())

    for args in (
        ("plan", "--emulator"),
        ("plan", "--emulator", "--refresh"),
        ("plan", "--emulator", "--json"),
        ("plan", "--emulator", "--markdown"),
        ("plan", "--emulator", "--detailed-exitcode", "--target", "security-cases"),
        ("plan", "--out", "plan.json"),  # against Datadog now: every aggregation replaced
    ):
        result = run(*args)
        assert result.exit_code in (0, 2), result.output
        assert snapshot(workspace) == before, args
        assert sorted(p.name for p in (workspace / ".casereport").iterdir()) == listing


def test_plan_on_a_new_workspace_creates_no_state(workspace: Path) -> None:
    ok("plan", "--emulator")
    ok("plan", "--emulator", "--out", "plan.json")
    assert snapshot(workspace) == {}
    assert not (workspace / "site").exists()


def test_plan_never_calls_the_api(
    workspace: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = emulator()
    monkeypatch.setenv("CASEREPORT_API_URL", server.url)
    monkeypatch.setenv("DD_API_KEY", "fake-api-key")
    monkeypatch.setenv("DD_APP_KEY", "fake-app-key")

    ok("plan")
    ok("plan", "--refresh", "--json")
    assert server.stats()["total"] == 0

    ok("apply", "--auto-approve")
    fetched = server.stats()["total"]
    assert fetched == 19  # the counter does count this workspace's calls

    ok("plan", "--refresh")
    ok("plan", "--refresh", "--out", "plan.json")
    assert server.stats()["total"] == fetched


def test_plan_with_emulator_starts_no_emulator(
    workspace: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import casereport.emulator.server as server_module

    server = emulator()
    started: list[object] = []

    def no_emulator(*args: object, **kwargs: object) -> None:
        started.append(args)
        raise AssertionError("an emulator was started")

    monkeypatch.setattr(server_module, "running_emulator", no_emulator)
    monkeypatch.setenv("CASEREPORT_API_URL", server.url)

    ok("plan", "--emulator")
    ok("plan", "--emulator", "--refresh", "--out", "plan.json")
    assert started == []
    assert server.stats()["total"] == 0

    # The guard is where apply starts its emulator: applying trips it.
    assert run("apply", "plan.json").exit_code == 1
    assert len(started) == 1
