"""Loading report files: the broken-file corpus (with and without libyaml), models."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from casereport.definitions.expand import expand_workspace
from casereport.definitions.load import check_group, load_report, load_reports
from casereport.definitions.models import Diagnostic, diagnostics_json
from casereport.render.check import check_templates

ROOT = Path(__file__).resolve().parent.parent
BROKEN = Path(__file__).resolve().parent / "definitions" / "broken"
CORPUS = sorted(BROKEN.glob("*.yaml"))


def validate_copy(tmp_path: Path, *files: Path) -> list[str]:
    """Copy files into a fresh workspace's reports/ and validate it; diagnostics as lines,
    paths relative to the workspace."""
    reports = tmp_path / "reports"
    reports.mkdir(exist_ok=True)
    for file in files:
        shutil.copy(file, reports / file.name)
    # The templates the corpus's reports name, checked as validate checks them.
    shutil.copytree(BROKEN / "templates", tmp_path / "templates", dirs_exist_ok=True)
    settings, expansion = expand_workspace(tmp_path)
    problems = check_templates(expansion.every_report, settings.templates_dir)
    return [str(d).replace(f"{tmp_path}/", "") for d in (*expansion.diagnostics, *problems)]


# --------------------------------------------------------------------------- the corpus


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 30
    for file in CORPUS:
        assert file.with_suffix(".expected").is_file(), f"{file.name} has no .expected"


@pytest.mark.parametrize("file", CORPUS, ids=[f.stem for f in CORPUS])
def test_broken_file_gives_exact_diagnostics(tmp_path: Path, file: Path) -> None:
    expected = file.with_suffix(".expected").read_text().splitlines()
    assert expected, "every corpus file expects at least one diagnostic"
    assert validate_copy(tmp_path, file) == expected


@pytest.mark.parametrize("file", CORPUS, ids=[f.stem for f in CORPUS])
def test_without_libyaml_a_broken_file_gives_the_same_diagnostics(
    without_libyaml: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], file: Path
) -> None:
    expected = file.with_suffix(".expected").read_text().splitlines()
    assert validate_copy(tmp_path, file) == expected
    assert capsys.readouterr().err == (
        "casereport: libyaml is not available, so YAML is read by PyYAML's slower "
        "pure-Python parser\n"
    )


def test_every_error_of_every_file_in_one_run(tmp_path: Path) -> None:
    expected: list[str] = []
    for file in CORPUS:
        expected += file.with_suffix(".expected").read_text().splitlines()
    got = validate_copy(tmp_path, *CORPUS)
    assert sorted(got) == sorted(expected)
    assert len(got) == len(expected)


def test_diagnostics_have_the_shape_path_line_col_severity_message(tmp_path: Path) -> None:
    lines = validate_copy(tmp_path, *CORPUS)
    for line in lines:
        if line.startswith("templates/"):  # a template has lines, not columns, to point at
            path, row, rest = line.split(":", 2)
            assert path.endswith(".j2") and int(row) >= 1
        else:
            path, row, column, rest = line.split(":", 3)
            assert path.startswith("reports/") and path.endswith(".yaml")
            assert int(row) >= 1 and int(column) >= 1
        assert rest.startswith((" error: ", " warning: "))
        assert "\n" not in line and "Traceback" not in line


# --------------------------------------------------------------------------- examples


def test_example_reports_validate_without_warnings() -> None:
    _, expansion = expand_workspace(ROOT)
    assert expansion.diagnostics == ()
    names = [report.name for report in expansion.reports]
    assert len(names) >= 3
    assert {"support-backlog", "service-health", "security-cases"} <= set(names)
    assert any(len(spec.groups) > 1 for spec in expansion.aggregations)
    assert any(spec.key is not None for spec in expansion.aggregations)


def test_example_reports_point_editors_at_the_schema() -> None:
    for file in sorted((ROOT / "reports").glob("*.yaml")):
        first = file.read_text().splitlines()[0]
        assert first == "# yaml-language-server: $schema=../schema/report.schema.json"


# --------------------------------------------------------------------------- models

GOOD = """\
# yaml-language-server: $schema=../schema/report.schema.json
title: Support ${var.service}
description: Open work.
owner: "@support"
refresh: 6h
formats: [html]
template: weekly
vars:
  service: case-api
  threshold: 5
aggregations:
  by_status:
    title: Cases by status
    query_filter: "service:${var.service}"
    group_by: [status]
    limit: 14
  open_by_priority:
    for_each:
      api: case-api
      bill: billing
    query_filter: service:${each.value} status:open
    group_by:
      - priority
      - team
    limit: 6
"""


def test_good_file_loads_into_a_model() -> None:
    report, diagnostics = load_report(Path("reports/support-weekly.yaml"), GOOD)
    assert diagnostics == []
    assert report is not None
    assert report.name == "support-weekly"
    assert report.title.value == "Support ${var.service}"
    assert report.owner == "@support"
    assert report.refresh is not None and report.refresh.seconds == 6 * 3600
    assert report.formats == ("html",)
    assert report.template == "weekly"
    assert [(v.name, v.value) for v in report.vars] == [("service", "case-api"), ("threshold", "5")]
    first, second = report.aggregations
    assert (first.id, first.limit, first.line, first.column) == ("by_status", 14, 12, 3)
    assert [g.value for g in first.group_by] == ["status"]
    assert first.query_filter.value == "service:${var.service}"
    assert first.query_filter.style == '"'
    assert second.for_each is not None
    assert [(i.key, i.value) for i in second.for_each.items] == [
        ("api", "case-api"),
        ("bill", "billing"),
    ]
    assert [g.value for g in second.group_by] == ["priority", "team"]


def test_defaults_when_optional_keys_are_absent() -> None:
    text = "title: T\naggregations:\n  a:\n    query_filter: ''\n    group_by: [status]\n"
    text += "    limit: 1\n"
    report, diagnostics = load_report(Path("minimal.yaml"), text)
    assert diagnostics == [] and report is not None
    assert report.formats == ("markdown", "html")
    assert report.template == "report"
    assert report.refresh is None and report.description is None and report.vars == ()
    assert report.aggregations[0].title is None


def test_broken_aggregation_is_dropped_but_the_report_stays() -> None:
    text = GOOD.replace("limit: 6", "limit: 6000")
    report, diagnostics = load_report(Path("r.yaml"), text)
    assert [d.summary for d in diagnostics] == ['"limit" must be from 1 to 1000, got 6000']
    assert report is not None
    assert [a.id for a in report.aggregations] == ["by_status"]


def test_missing_directory_is_one_error(tmp_path: Path) -> None:
    result = load_reports(tmp_path / "nope")
    assert not result.ok
    assert [str(d) for d in result.diagnostics] == [
        f"{tmp_path}/nope: error: reports directory does not exist (create it, pass "
        "--reports-dir, or set reports_dir in casereport.toml)"
    ]


def test_an_empty_directory_is_a_warning_and_a_yml_file_an_error(tmp_path: Path) -> None:
    assert [d.summary for d in load_reports(tmp_path).diagnostics] == [
        "no report files (*.yaml) found"
    ]
    (tmp_path / "old.yml").write_text("title: x\n")
    result = load_reports(tmp_path)
    assert not result.ok  # plan and apply stop on it too, never leave the report out unseen
    assert [str(d) for d in result.diagnostics] == [
        f'{tmp_path}/old.yml: error: report files end in ".yaml", so this one would be left '
        "out: rename it to old.yaml"
    ]


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"title: caf\xe9\n")
    report, diagnostics = load_report(path)
    assert report is None
    assert [(d.line, d.column, d.summary) for d in diagnostics] == [
        (1, 1, "not UTF-8 text: invalid continuation byte")
    ]


def test_diagnostics_json_shape() -> None:
    diagnostics = [
        Diagnostic("error", "bad", "reports/a.yaml", 3, 5, "more"),
        Diagnostic("warning", "hmm", "reports/b.yaml", 1, 1),
    ]
    assert diagnostics_json(diagnostics) == {
        "valid": False,
        "error_count": 1,
        "warning_count": 1,
        "diagnostics": [
            {
                "severity": "error",
                "summary": "bad",
                "detail": "more",
                "file": "reports/a.yaml",
                "line": 3,
                "column": 5,
                # (no such file to read the span from: the one character)
                "span": {"start": {"line": 3, "column": 5}, "end": {"line": 3, "column": 6}},
            },
            {
                "severity": "warning",
                "summary": "hmm",
                "detail": "",
                "file": "reports/b.yaml",
                "line": 1,
                "column": 1,
                "span": {"start": {"line": 1, "column": 1}, "end": {"line": 1, "column": 2}},
            },
        ],
    }
    assert str(Diagnostic("warning", "x", "--var")) == "--var: warning: x"


def test_group_fields() -> None:
    assert check_group("status") is None
    assert check_group("services") is None and check_group("service") is None
    assert check_group("region") is None  # any attribute key
    assert check_group("priorty") == (
        "warning",
        'group_by field "priorty" is not a known case field, so it is read from the case '
        'attributes (did you mean "priority"?)',
    )
    problem = check_group("has space")
    assert problem is not None and problem[0] == "error"
