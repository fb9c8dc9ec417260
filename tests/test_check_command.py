"""Checks from the command line: the summary at the end of ``apply`` and ``render``,
``--fail-on-checks`` and ``fail_on_checks``, ``casereport check`` (exit codes, ``--json``,
``--junit`` validated against a JUnit schema), GitHub Actions annotations and step
summary, and the CEL library left unimported where no report has checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import xmlschema
from tests.apply_workspace import Workspace
from tests.conftest import EmulatorFactory

JUNIT_XSD = Path(__file__).parent / "junit.xsd"

REPORT = """\
title: Support
checks:
  - name: few-p1
    assert: 'aggregations["open_by_priority"].groups["P1"] <= {cap}'
    message: At most {cap} open P1 cases
aggregations:
  open_by_priority:
    query_filter: status:open
    group_by: [priority]
    limit: 6
    checks:
      - name: backlog
        assert: total <= {backlog}
        message: Backlog too big
      - name: no-p9
        assert: groups["P9"] == 0
        severity: warn
      - name: p1-warn
        assert: groups["P1"] < 0
        severity: warn
        message: Any P1 is worth a look
"""

# A report without checks.
QUIET = """\
title: Quiet
aggregations:
  open_by_status:
    query_filter: status:open
    group_by: [status]
    limit: 3
"""


@pytest.fixture
def workspace(
    tmp_path: Path, emulator: EmulatorFactory, monkeypatch: pytest.MonkeyPatch
) -> Workspace:
    """A workspace of one report with checks, applied once: 2000 synthetic cases."""
    space = Workspace(tmp_path, emulator(cases=2000, seed=7), examples=False)
    space.reports.mkdir()
    monkeypatch.chdir(tmp_path)
    # (a suite run under GitHub Actions: the runs here are not, but where a test says so)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    space.write_report("support", REPORT.format(cap=100_000, backlog=100_000))
    result = space.run("apply", "--auto-approve")
    assert result.exit_code == 0, result.output
    return space


def fail_backlog(space: Workspace) -> None:
    space.write_report("support", REPORT.format(cap=100_000, backlog=5))


def test_apply_reports_checks_and_exits_0_unless_asked_to_fail(workspace: Workspace) -> None:
    first = workspace.run("apply", "--auto-approve")  # nothing to do: checks still run
    assert first.exit_code == 0
    assert "Checks: 3 of 4 passed, 1 warning." in first.stderr
    fail_backlog(workspace)
    result = workspace.run("apply", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert "Checks: 2 of 4 passed, 1 failed, 1 warning." in result.stderr
    assert ("  FAIL backlog on support.open_by_priority: total <= 5 (saw total = ") in result.stderr
    assert "): Backlog too big [reports/support.yaml:13:17]" in result.stderr
    strict = workspace.run("apply", "--auto-approve", "--fail-on-checks")
    assert strict.exit_code == 1
    assert "Checks: 2 of 4 passed, 1 failed, 1 warning." in strict.stderr
    Path("casereport.toml").write_text("fail_on_checks = true\n", encoding="utf-8")
    assert workspace.run("apply", "--auto-approve").exit_code == 1
    rendered = workspace.run("render")
    assert rendered.exit_code == 0  # render reports, never fails on checks
    assert "Checks: 2 of 4 passed, 1 failed, 1 warning." in rendered.stderr


def test_check_exits_0_1_and_2(workspace: Workspace) -> None:
    passing = workspace.run("check")
    assert passing.exit_code == 0, passing.output  # warnings never fail
    assert passing.stdout.splitlines()[-1] == "Checks: 3 of 4 passed, 1 warning."
    assert 'WARN p1-warn on support.open_by_priority: groups["P1"] < 0 (saw groups[' in (
        passing.stdout
    )
    fail_backlog(workspace)
    failing = workspace.run("check")
    assert failing.exit_code == 1
    assert failing.stdout.splitlines()[0].startswith(
        "FAIL backlog on support.open_by_priority: total <= 5 (saw total = "
    )
    only_report = workspace.run("check", "--target", "support.open_by_priority")
    assert only_report.exit_code == 1
    assert "few-p1" not in only_report.stdout
    unknown = workspace.run("check", "--target", "support.nope")
    assert unknown.exit_code == 2
    assert unknown.output == (
        "Error: --target support.nope: no report or checked aggregation has this address "
        "(see the report files' checks:)\n"
    )
    assert workspace.run("check", "--no-such-flag").exit_code == 2
    workspace.write_report("quiet", QUIET)
    unchecked = workspace.run("check", "--target", "quiet")
    assert unchecked.exit_code == 2, unchecked.output  # not a pass: it would check nothing
    assert unchecked.output == (
        "Error: --target quiet: the report has no checks; add checks: to reports/quiet.yaml "
        "(docs/checks.md)\n"
    )
    assert workspace.run("check", "--target", "quiet", "--target", "support").exit_code == 2


def test_check_needs_a_state(
    tmp_path: Path, emulator: EmulatorFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    space = Workspace(tmp_path, emulator(cases=10), examples=False)
    space.reports.mkdir()
    space.write_report("support", REPORT.format(cap=1, backlog=1))
    monkeypatch.chdir(tmp_path)
    result = space.run("check")
    assert result.exit_code == 1
    assert "no state at .casereport/state.json: nothing to check yet" in result.output


def test_check_json(workspace: Workspace) -> None:
    fail_backlog(workspace)
    result = workspace.run("check", "--json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["format_version"] == 1
    assert document["passed"] is False
    assert document["counts"] == {"total": 4, "passed": 2, "failed": 1, "warned": 1}
    backlog = document["checks"][0]
    assert set(backlog) == {
        "report", "address", "name", "severity", "assert", "message", "passed", "values",
        "error", "file", "line", "column",
    }  # fmt: skip
    assert (backlog["name"], backlog["passed"], backlog["severity"]) == ("backlog", False, "error")
    assert (backlog["file"], backlog["line"], backlog["column"]) == ("reports/support.yaml", 13, 17)
    assert backlog["values"]["total"] > 5
    assert document["checks"][-1]["address"] == "support"  # the report's own, last


def test_check_junit_is_valid_junit_xml(workspace: Workspace, tmp_path: Path) -> None:
    fail_backlog(workspace)
    target = tmp_path / "out" / "checks.xml"
    target.parent.mkdir()
    result = workspace.run("check", "--junit", str(target))
    assert result.exit_code == 1
    schema = xmlschema.XMLSchema(str(JUNIT_XSD))
    schema.validate(str(target))
    tree = schema.to_dict(str(target))
    assert (tree["@tests"], tree["@failures"]) == ("4", "1")
    cases = tree["testsuite"][0]["testcase"]
    assert [c["@name"] for c in cases] == ["backlog", "no-p9", "p1-warn", "few-p1"]
    assert cases[0]["failure"][0]["@message"] == "Backlog too big"
    assert "system-out" in cases[2] and "failure" not in cases[2]
    assert "failure" not in cases[1] and "failure" not in cases[3]
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    unwritable = tmp_path / "a-file" / "x.xml"
    missing = workspace.run("check", "--junit", str(unwritable))
    assert missing.exit_code == 1
    assert missing.stderr == (
        f"Error: {tmp_path / 'a-file'}: is not a folder; move it away or choose another path\n"
    )


def test_github_actions_annotations_and_step_summary(workspace: Workspace, tmp_path: Path) -> None:
    fail_backlog(workspace)
    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    github = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    result = workspace.run("check", **github)
    assert result.exit_code == 1
    annotations = [line for line in result.stdout.splitlines() if line.startswith("::")]
    assert annotations[0] == (
        "::error file=reports/support.yaml,line=13,col=17,title=check backlog on "
        "support.open_by_priority failed::total <= 5 (saw total = "
        + annotations[0].split("saw total = ")[1]
    )
    assert annotations[0].endswith("): Backlog too big")
    assert annotations[1].startswith(
        "::warning file=reports/support.yaml,line=19,col=17,title=check p1-warn on "
        "support.open_by_priority failed::"
    )
    assert len(annotations) == 2
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("earlier step\n### casereport checks\n\n")
    assert "Checks: 2 of 4 passed, 1 failed, 1 warning." in text
    assert "| ❌ fail | backlog on support.open_by_priority | `total <= 5` |" in text
    applied = workspace.run("apply", "--auto-approve", **github)
    assert applied.exit_code == 0
    assert "::error file=reports/support.yaml,line=13,col=17," in applied.stdout
    assert text.count("### casereport checks") == 1
    assert summary.read_text(encoding="utf-8").count("### casereport checks") == 2
    as_json = workspace.run("check", "--json", **github)
    assert json.loads(as_json.stdout)["passed"] is False  # stdout stays JSON
    assert "::error file=reports/support.yaml,line=13,col=17," in as_json.stderr
    assert summary.read_text(encoding="utf-8").count("### casereport checks") == 3
    quiet = workspace.run("check", GITHUB_ACTIONS=None, GITHUB_STEP_SUMMARY=str(summary))
    assert "::error" not in quiet.stdout
    assert summary.read_text(encoding="utf-8").count("### casereport checks") == 3


def test_data_files_and_pages_carry_the_checks(workspace: Workspace) -> None:
    fail_backlog(workspace)
    workspace.run("render")
    data = json.loads((workspace.site / "support.json").read_text(encoding="utf-8"))
    assert [(c["name"], c["passed"]) for c in data["checks"]] == [
        ("backlog", False),
        ("no-p9", True),
        ("p1-warn", False),
        ("few-p1", True),
    ]
    html = (workspace.site / "support.html").read_text(encoding="utf-8")
    assert '<span class="badge fail">FAIL</span> <strong>backlog</strong>' in html
    assert '<span class="badge pass">PASS</span> <strong>few-p1</strong>' in html
    index = (workspace.site / "index.md").read_text(encoding="utf-8")
    assert index.index("## Failing checks") < index.index("## [Support](support.md)")


PROBE = (
    "import sys\n"
    "from casereport.cli import cli\n"
    "try:\n"
    "    cli.main(sys.argv[1:], standalone_mode=False)\n"
    "except SystemExit:\n"
    "    pass\n"
    "print('cel' in sys.modules, file=sys.stderr)\n"
)


def _imports_cel(cwd: Path, *args: str) -> bool:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    return done.stderr.strip().splitlines()[-1] == "True"


def test_cel_is_imported_only_where_a_report_has_checks(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    (plain / "reports").mkdir(parents=True)
    (plain / "reports" / "r.yaml").write_text(
        "title: R\naggregations:\n  a:\n    query_filter: status:open\n"
        "    group_by: [priority]\n    limit: 5\n",
        encoding="utf-8",
    )
    assert not _imports_cel(plain, "--version")
    assert not _imports_cel(plain, "plan", "--emulator")
    assert not _imports_cel(plain, "validate")
    checked = tmp_path / "checked"
    (checked / "reports").mkdir(parents=True)
    (checked / "reports" / "r.yaml").write_text(REPORT.format(cap=1, backlog=1), encoding="utf-8")
    assert _imports_cel(checked, "validate")  # (the probe sees an import when there is one)


def test_fail_on_checks_must_be_a_boolean(tmp_path: Path) -> None:
    from casereport.settings import read_settings

    (tmp_path / "casereport.toml").write_text('fail_on_checks = "yes"\n', encoding="utf-8")
    settings, problems = read_settings(tmp_path)
    assert [p.message for p in problems] == ["\"fail_on_checks\" must be true or false, got 'yes'"]
    assert settings.fail_on_checks is False
    (tmp_path / "casereport.toml").write_text("fail_on_checks = true\n", encoding="utf-8")
    assert read_settings(tmp_path)[0].fail_on_checks is True


def test_apply_json_streams_each_check_before_the_summary(workspace: Workspace) -> None:
    fail_backlog(workspace)
    result = workspace.run("apply", "--auto-approve", "--json", "--refresh")
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    checks = [e for e in events if e["type"] == "check"]
    assert [(c["name"], c["passed"], c["severity"]) for c in checks] == [
        ("backlog", False, "error"),
        ("no-p9", True, "warn"),
        ("p1-warn", False, "warn"),
        ("few-p1", True, "error"),
    ]
    assert checks[0]["message"] == "Backlog too big"
    assert events[-1]["type"] == "summary" and events[-1]["exit_code"] == 0
    assert "Checks:" not in result.stderr  # (the stream has them)
    strict = workspace.run("apply", "--auto-approve", "--json", "--fail-on-checks")
    assert strict.exit_code == 1
    summary = json.loads(strict.stdout.splitlines()[-1])
    assert (summary["type"], summary["exit_code"]) == ("summary", 1)
    assert summary["message"].endswith(" 1 error check failed.")


def test_a_failing_check_makes_a_check_failed_delivery_due(workspace: Workspace) -> None:
    Path("casereport.toml").write_text(
        '[notify.hook]\ntype = "webhook"\nurl = "http://127.0.0.1:9/hook"\n'
        'secret_env = "HOOK_SECRET"\non = ["check_failed"]\n',
        encoding="utf-8",
    )
    quiet = workspace.run("notify", "--dry-run", "--force", HOOK_SECRET="s")
    assert quiet.exit_code == 0, quiet.output
    assert "(check_failed)" in quiet.output  # a warning failed: p1-warn
    workspace.write_report(
        "support",
        REPORT.format(cap=100_000, backlog=100_000).replace(
            'groups["P1"] < 0', 'groups["P1"] >= 0'
        ),
    )
    passing = workspace.run("notify", "--dry-run", "--force", HOOK_SECRET="s")
    assert passing.exit_code == 0, passing.output
    assert "check_failed" not in passing.output
