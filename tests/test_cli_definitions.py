"""validate, fmt, schema and init as a user runs them (click's CliRunner)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from casereport.cli import cli
from casereport.definitions.schema import schema_json

ROOT = Path(__file__).resolve().parent.parent
BROKEN = Path(__file__).resolve().parent / "definitions" / "broken"
CORPUS = sorted(BROKEN.glob("*.yaml"))
COMMANDS = ["validate", "fmt", "schema", "init"]
# The source snippet under a located diagnostic (its golden file: test_diagnostics.py).
SNIPPET = re.compile(r"^ *\d* \|( |$)")


def run(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args))
    # A user error ends in SystemExit with a message, never in another exception.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reports").mkdir()
    return tmp_path


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_an_example(command: str) -> None:
    result = run(command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.output
    assert f"casereport {command}" in result.output


def test_validate_the_example_workspace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = run("validate")
    assert result.exit_code == 0
    assert result.output.startswith("Valid: 3 reports, ")
    assert len(result.output.splitlines()) == 1


def test_validate_prints_every_error_and_exits_1(workspace: Path) -> None:
    for file in CORPUS:
        shutil.copy(file, workspace / "reports" / file.name)
    # Templates the corpus's reports use: their problems are listed in the same run.
    shutil.copytree(BROKEN / "templates", workspace / "templates")
    expected: list[str] = []
    for file in CORPUS:
        expected += file.with_suffix(".expected").read_text().splitlines()
    result = run("validate")
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if not SNIPPET.match(line)]
    assert sorted(lines[:-1]) == sorted(expected)
    errors = sum(": error: " in line for line in expected)
    warnings = len(expected) - errors
    assert lines[-1] == f"Not valid: {errors} errors, {warnings} warning{'s' * (warnings != 1)}."

    data = json.loads(run("validate", "--json").output)
    assert data["valid"] is False
    assert (data["error_count"], data["warning_count"]) == (errors, warnings)
    assert len(data["diagnostics"]) == len(expected)
    first = data["diagnostics"][0]
    assert set(first) == {"severity", "summary", "detail", "file", "line", "column", "span"}
    assert first["file"].startswith("reports/")


def test_validate_json_when_valid_with_a_warning(workspace: Path) -> None:
    shutil.copy(BROKEN / "group-by-typo-warning.yaml", workspace / "reports" / "typo.yaml")
    result = run("validate", "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert (data["valid"], data["error_count"], data["warning_count"]) == (True, 0, 1)
    assert data["diagnostics"][0] == {
        "severity": "warning",
        "summary": 'group_by field "priorty" is not a known case field, so it is read from '
        'the case attributes (did you mean "priority"?)',
        "detail": "",
        "file": "reports/typo.yaml",
        "line": 5,
        "column": 16,
        "span": {"start": {"line": 5, "column": 16}, "end": {"line": 5, "column": 23}},
    }
    human = run("validate")
    assert human.exit_code == 0
    assert human.output.splitlines()[-1] == (
        "Valid: 1 report, 1 aggregation (1 distinct request), 1 warning."
    )


def test_validate_with_vars_and_reports_dir(workspace: Path) -> None:
    other = workspace / "defs"
    other.mkdir()
    (other / "svc.yaml").write_text(
        "title: T\naggregations:\n  a:\n    query_filter: service:${var.service}\n"
        "    group_by: [status]\n    limit: 3\n"
    )
    result = run("validate", "--reports-dir", "defs")
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == (
        'defs/svc.yaml:4:27: error: query_filter: undefined variable "service": define it '
        "under vars:, in casereport.toml [vars], or pass --var service=VALUE"
    )
    assert run("validate", "--reports-dir", "defs", "--var", "service=billing").exit_code == 0


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("../x=1", 'Error: invalid --var name "../x"'),
        ("novalue", 'Error: invalid --var "novalue": use --var NAME=VALUE'),
    ],
)
def test_bad_var_option_is_one_line(workspace: Path, option: str, message: str) -> None:
    result = run("validate", "--var", option)
    assert result.exit_code == 1
    assert result.output.startswith(message)
    assert len(result.output.splitlines()) == 1


def test_settings_errors_are_diagnostics(workspace: Path) -> None:
    (workspace / "casereport.toml").write_text('reports = "defs"\n')
    result = run("validate")
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == (
        'casereport.toml:1:1: error: unknown setting "reports" (did you mean "reports_dir"?)'
    )


def test_missing_reports_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("validate")
    assert result.exit_code == 1
    assert result.output.splitlines()[0].startswith(
        "reports: error: reports directory does not exist"
    )


@pytest.mark.parametrize("file", CORPUS, ids=[f.stem for f in CORPUS])
def test_no_command_prints_a_traceback_for_any_corpus_file(workspace: Path, file: Path) -> None:
    target = workspace / "reports" / file.name
    shutil.copy(file, target)
    expected_valid = ": error: " not in file.with_suffix(".expected").read_text()
    assert run("validate").exit_code == (0 if expected_valid else 1)
    assert run("validate", "--json").exit_code == (0 if expected_valid else 1)
    check = run("fmt", "--check", "--diff")
    assert check.exit_code in (0, 1)
    before = target.read_bytes()
    result = run("fmt")
    if result.exit_code == 1:  # does not parse: reported, left untouched
        assert "(file left unchanged)" in result.output
        assert target.read_bytes() == before
    else:
        assert run("fmt", "--check").exit_code == 0


def test_fmt_check_diff_and_write(workspace: Path) -> None:
    path = workspace / "reports" / "r.yaml"
    path.write_text("title:   T   # note\ngroup_by:\n- status\n")
    check = run("fmt", "--check")
    assert check.exit_code == 1
    assert check.stdout == "reports/r.yaml\n"
    assert "1 file of 1 needs formatting" in check.stderr
    diff = run("fmt", "--check", "--diff")
    assert diff.stdout.splitlines()[1:] == [
        "--- a/reports/r.yaml",
        "+++ b/reports/r.yaml",
        "@@ -1,3 +1,2 @@",
        "-title:   T   # note",
        "-group_by:",
        "-- status",
        "+title: T  # note",
        "+group_by: [status]",
    ]
    assert path.read_text() == "title:   T   # note\ngroup_by:\n- status\n"
    written = run("fmt")
    assert written.exit_code == 0
    assert written.stdout == "reports/r.yaml\n"
    assert path.read_text() == "title: T  # note\ngroup_by: [status]\n"
    assert run("fmt", "--check").exit_code == 0
    assert run("fmt", "reports/r.yaml").stdout == ""


def test_fmt_reports_broken_files_and_missing_ones(workspace: Path) -> None:
    (workspace / "reports" / "bad.yaml").write_text("a: 1\na: 2\n")
    result = run("fmt", "reports/bad.yaml", "nope.yaml")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "nope.yaml: error: no such file or directory",
        'reports/bad.yaml:2:1: error: duplicate key "a" (first defined at line 1) '
        "(file left unchanged)",
    ]


def test_schema_prints_the_committed_schema() -> None:
    result = run("schema")
    assert result.exit_code == 0
    assert result.output == schema_json() == (ROOT / "schema/report.schema.json").read_text()


def test_init_then_validate_then_refuse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("init", "ws")
    assert result.exit_code == 0
    assert result.output.splitlines() == [
        "created ws/casereport.toml",
        "created ws/reports/open-cases.yaml",
        "created ws/schema/report.schema.json",
        "created ws/templates/README.md",
        "created ws/.gitignore",
        "Next: cd ws && casereport validate && casereport apply --emulator",
    ]
    monkeypatch.chdir(tmp_path / "ws")
    assert run("validate").exit_code == 0
    again = run("init")
    assert again.exit_code == 1
    assert again.output.startswith("Error: refusing to overwrite existing files in .: ")
    assert len(again.output.splitlines()) == 1


@pytest.mark.parametrize(
    "command", [["plan", "--emulator"], ["apply", "--emulator", "--auto-approve"]]
)
def test_a_yml_report_file_stops_plan_and_apply(workspace: Path, command: list[str]) -> None:
    shutil.copy(ROOT / "reports" / "security-cases.yaml", workspace / "reports" / "extra.yml")
    shutil.copy(ROOT / "reports" / "support-backlog.yaml", workspace / "reports" / "ok.yaml")
    result = run(*command)
    assert result.exit_code == 1
    assert result.stderr == (
        'Error: reports/extra.yml: error: report files end in ".yaml", so this one would be '
        "left out: rename it to extra.yaml\n"
    )
    assert not (workspace / ".casereport").exists() and not (workspace / "site").exists()
