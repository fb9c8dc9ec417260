"""Checks (``checks:``): loading, offline validation of the CEL text, and evaluation from
state (``render.checks_view.report_results``), on hand-made state entries."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from casereport.checks.results import CheckResult
from casereport.checks.validate import check_diagnostics
from casereport.cli import cli
from casereport.definitions.expand import ReportSpec, expand
from casereport.definitions.fmt import format_text
from casereport.definitions.load import load_reports
from casereport.definitions.models import sort_diagnostics
from casereport.definitions.schema import report_schema
from casereport.render.checks_view import report_results
from casereport.state.model import AggregationState

NOW = "2026-11-26T07:00:00Z"


def load(tmp_path: Path, text: str, name: str = "r") -> tuple[ReportSpec, list[str]]:
    """The report in ``text`` expanded, and every diagnostic of loading and validation."""
    reports = tmp_path / "reports"
    reports.mkdir(exist_ok=True)
    (reports / f"{name}.yaml").write_text(text, encoding="utf-8")
    loaded = load_reports(reports)
    expansion = expand(loaded.reports)
    problems = [*loaded.diagnostics, *expansion.diagnostics]
    problems = [*sort_diagnostics([*problems, *check_diagnostics(expansion.reports)])]
    spec = expansion.reports[0] if expansion.reports else None
    return spec, [str(p).replace(str(reports), "reports") for p in problems]  # type: ignore[return-value]


def entry(
    spec: ReportSpec,
    aggregation: str,
    groups: Mapping[str, float],
    *,
    history: Sequence[tuple[str, Mapping[str, float]]] = (),
    fetched_at: str = NOW,
) -> AggregationState:
    """A state entry of ``spec``'s aggregation at address ``aggregation`` with these
    groups now, and ``history`` (stamp, groups) before, oldest first."""
    found = next(a for a in spec.aggregations if a.address == aggregation)
    return AggregationState(
        address=found.address,
        report=spec.name,
        title=found.title,
        request=found.request(),
        fingerprint=found.fingerprint,
        result={
            "id": "x",
            "total": float(sum(groups.values())),
            "groups": [{"group": g, "value": [float(c)]} for g, c in groups.items()],
        },
        fetched_at=fetched_at,
        history=[
            {"fetched_at": stamp, "total": sum(before.values()), "groups": dict(before)}
            for stamp, before in history
        ],
    )


def results(spec: ReportSpec, *entries: AggregationState) -> dict[str, CheckResult]:
    return {
        f"{r.address}:{r.name}": r for r in report_results(spec, {e.address: e for e in entries})
    }


AGGREGATION = """\
title: R
aggregations:
  open_by_priority:
    query_filter: status:open
    group_by: [priority]
    limit: 6
    checks:
{checks}
"""


def one_check(tmp_path: Path, assertion: str, **keys: str) -> ReportSpec:
    fields = ", ".join(f"{k}: {json.dumps(v)}" for k, v in keys.items())
    line = f"      - {{name: c, assert: {json.dumps(assertion)}{', ' + fields if fields else ''}}}"
    spec, problems = load(tmp_path, AGGREGATION.format(checks=line))
    assert problems == []
    return spec


def outcome(spec: ReportSpec, *entries: AggregationState) -> CheckResult:
    (result,) = report_results(spec, {e.address: e for e in entries})
    return result


# -- the four examples, failing and passing ---------------------------------------


def test_total_at_most_50(tmp_path: Path) -> None:
    spec = one_check(tmp_path, "total <= 50", message="Backlog too big")
    failing = outcome(spec, entry(spec, "r.open_by_priority", {"P1": 2, "P2": 50}))
    assert (failing.passed, failing.blocking, dict(failing.values)) == (False, True, {"total": 52})
    assert failing.message == "Backlog too big"
    assert (failing.file, failing.line, failing.column) == (
        str(tmp_path / "reports" / "r.yaml"),
        8,
        27,  # the assert string's start (its quote)
    )
    passing = outcome(spec, entry(spec, "r.open_by_priority", {"P1": 0, "P2": 50}))
    assert (passing.passed, passing.error, dict(passing.values)) == (True, None, {"total": 50})


def test_a_missing_group_reads_as_0(tmp_path: Path) -> None:
    spec = one_check(tmp_path, 'groups["P1"] == 0')
    absent = outcome(spec, entry(spec, "r.open_by_priority", {"P2": 3}))
    assert (absent.passed, dict(absent.values)) == (True, {'groups["P1"]': 0})
    present = outcome(spec, entry(spec, "r.open_by_priority", {"P1": 2, "P2": 3}))
    assert (present.passed, dict(present.values)) == (False, {'groups["P1"]': 2})


def test_a_missing_group_of_no_known_field_reads_as_0_too(tmp_path: Path) -> None:
    text = AGGREGATION.replace("[priority]", "[team]").format(
        checks='      - {name: c, assert: \'groups["ghosts"] == 0 && !("x" in groups) == false\'}'
    )
    spec, problems = load(tmp_path, text)
    assert problems == []
    result = outcome(spec, entry(spec, "r.open_by_priority", {"sre": 3}))
    assert result.passed, result


def test_change_ratio_at_most_ten_percent(tmp_path: Path) -> None:
    spec = one_check(tmp_path, "change_ratio <= 0.10")
    before = [("2026-11-25T07:00:00Z", {"P1": 100})]
    grew = outcome(spec, entry(spec, "r.open_by_priority", {"P1": 120}, history=before))
    assert (grew.passed, dict(grew.values)) == (False, {"change_ratio": 0.2})
    steady = outcome(spec, entry(spec, "r.open_by_priority", {"P1": 105}, history=before))
    assert (steady.passed, dict(steady.values)) == (True, {"change_ratio": 0.05})


def test_without_a_compared_run_change_ratio_is_null_and_the_check_says_so(
    tmp_path: Path,
) -> None:
    spec = one_check(tmp_path, "change_ratio <= 0.10")
    first = outcome(spec, entry(spec, "r.open_by_priority", {"P1": 120}))
    assert (first.passed, dict(first.values)) == (False, {"change_ratio": None})
    assert first.error == (
        "change_ratio is null: there is no compared run yet (write "
        "`change_ratio == null || ...` to pass without one)"
    )
    spec = one_check(tmp_path, "change_ratio == null || change_ratio <= 0.10")
    assert outcome(spec, entry(spec, "r.open_by_priority", {"P1": 120})).passed


REPORT_LEVEL = """\
title: R
checks:
  - name: few-p1
    assert: 'aggregations["open_by_priority"].groups["P1"] <= 3'
aggregations:
  open_by_priority:
    query_filter: status:open
    group_by: [priority]
    limit: 6
"""


def test_a_report_level_check_reads_an_aggregation(tmp_path: Path) -> None:
    spec, problems = load(tmp_path, REPORT_LEVEL)
    assert problems == []
    four = outcome(spec, entry(spec, "r.open_by_priority", {"P1": 4}))
    assert (four.address, four.passed) == ("r", False)
    assert dict(four.values) == {'aggregations["open_by_priority"].groups["P1"]': 4}
    three = outcome(spec, entry(spec, "r.open_by_priority", {"P1": 3}))
    assert three.passed
    absent = outcome(spec, entry(spec, "r.open_by_priority", {"P2": 9}))
    assert absent.passed  # a missing group reads as 0 here too


def test_a_check_of_an_aggregation_not_fetched_yet_fails_and_says_why(tmp_path: Path) -> None:
    spec = one_check(tmp_path, "total <= 50")
    result = outcome(spec)
    assert (result.passed, result.error) == (False, "r.open_by_priority not fetched yet")
    spec, _ = load(tmp_path, REPORT_LEVEL)
    result = outcome(spec)
    assert (result.passed, result.error) == (False, "not fetched yet: r.open_by_priority")


# -- what the names hold ----------------------------------------------------------------

FOR_EACH = """\
title: R
checks:
  - {name: billing-small, assert: 'aggregations["by_service"]["billing"].total < 10'}
aggregations:
  by_service:
    for_each: [billing, search]
    query_filter: service:${each.value}
    group_by: [status, priority]
    limit: 20
    checks:
      - {name: open-p1, assert: 'groups["OPEN / P1"] <= 2'}
"""


def test_for_each_checks_run_per_key_and_multi_field_groups_read_joined(tmp_path: Path) -> None:
    spec, problems = load(tmp_path, FOR_EACH)
    assert problems == []
    billing = entry(spec, 'r.by_service["billing"]', {"OPEN / P1": 3, "CLOSED / P2": 4})
    search = entry(spec, 'r.by_service["search"]', {"OPEN / P2": 30})
    found = results(spec, billing, search)
    assert list(found) == [
        'r.by_service["billing"]:open-p1',
        'r.by_service["search"]:open-p1',
        "r:billing-small",
    ]
    assert not found['r.by_service["billing"]:open-p1'].passed
    assert dict(found['r.by_service["billing"]:open-p1'].values) == {'groups["OPEN / P1"]': 3}
    assert found['r.by_service["search"]:open-p1'].passed  # absent: 0
    assert found["r:billing-small"].passed
    assert dict(found["r:billing-small"].values) == {
        'aggregations["by_service"]["billing"].total': 7
    }


def test_compared_is_the_run_compare_selects_as_on_the_page(tmp_path: Path) -> None:
    history = [
        ("2026-11-19T07:00:00Z", {"P1": 50}),
        ("2026-11-25T07:00:00Z", {"P1": 100}),
    ]
    assertion = "compared.total == 50 && change == 60 && limit == 6"
    weekly = AGGREGATION.replace("limit: 6\n", "limit: 6\n    compare: 7d\n")
    text = weekly.format(checks=f"      - {{name: c, assert: {json.dumps(assertion)}}}")
    spec, problems = load(tmp_path, text)
    assert problems == []
    result = outcome(spec, entry(spec, "r.open_by_priority", {"P1": 110}, history=history))
    assert result.passed, result
    assert dict(result.values) == {"compared.total": 50, "change": 60, "limit": 6}
    previous = one_check(tmp_path, assertion)
    state = entry(previous, "r.open_by_priority", {"P1": 110}, history=history)
    assert dict(outcome(previous, state).values) == {
        "compared.total": 100,
        "change": 10,
        "limit": 6,
    }


def test_a_non_boolean_result_on_real_numbers_fails_with_its_value(tmp_path: Path) -> None:
    spec = one_check(tmp_path, 'groups["P1"] > 0 ? true : 0')  # not caught offline (a bool here)
    result = outcome(spec, entry(spec, "r.open_by_priority", {"P2": 1}))
    assert (result.passed, result.error) == (False, "assert gave 0, not true or false")


# -- loading and offline validation -----------------------------------------------------


def test_a_check_entry_is_checked_for_its_shape(tmp_path: Path) -> None:
    text = AGGREGATION.format(
        checks=(
            "      - {nam: a, assert: total > 1}\n"
            "      - {name: b, assert: total > 1, severity: fatal}\n"
            "      - {name: c}\n"
            "      - {name: d, assert: total > 1}\n"
            "      - {name: d, assert: total > 2}\n"
            "      - just text"
        )
    )
    _, problems = load(tmp_path, text)
    assert problems == [
        'reports/r.yaml:8:10: error: unknown key "nam" in a check (did you mean "name"?)',
        'reports/r.yaml:9:48: error: unknown severity "fatal": use error or warn',
        'reports/r.yaml:10:9: error: a check needs "assert": an assert (a CEL expression '
        "such as total <= 50)",
        'reports/r.yaml:12:16: error: duplicate check name "d" (first at line 11)',
        'reports/r.yaml:13:9: error: a "checks" entry must be a mapping: {name: NAME, assert: CEL}',
    ]


SYNTAX = """\
title: R
checks:
  - name: typo-id
    assert: aggregations["open_by_prio"].total <= 3
  - name: wrong-name
    assert: total <= 3
aggregations:
  open_by_priority:
    query_filter: status:open
    group_by: [priority]
    limit: 6
    checks:
      - {name: syntax, assert: "total <= "}
      - name: spread
        assert: |
          total > 1 &&
            totl < 5
      - {name: number, assert: total + 1}
      - {name: unknown, assert: frobnicate > 1}
"""


def test_validate_reports_bad_cel_at_its_line_and_column(tmp_path: Path) -> None:
    _, problems = load(tmp_path, SYNTAX)
    assert problems == [
        'reports/r.yaml:4:26: error: check "typo-id": no aggregation "open_by_prio" in this '
        'report (did you mean "open_by_priority"?)',
        'reports/r.yaml:6:13: error: check "wrong-name": unknown name "total" in assert (use '
        "aggregations)",
        'reports/r.yaml:13:42: error: check "syntax": invalid assert: Syntax error: '
        "mismatched input '<EOF>'",
        'reports/r.yaml:17:13: error: check "spread": unknown name "totl" in assert (did you '
        'mean "total"?)',
        'reports/r.yaml:18:32: error: check "number": assert must be true or false, but gives '
        "a number (compare it, as in total <= 50)",
        'reports/r.yaml:19:33: error: check "unknown": unknown name "frobnicate" in assert '
        "(use total, groups, compared, change, change_ratio, limit)",
    ]


def test_validate_json_carries_the_check_diagnostics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load(tmp_path, SYNTAX)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["validate", "--json"])
    assert result.exit_code == 1, result.output
    found = json.loads(result.stdout)["diagnostics"]
    spread = next(d for d in found if '"spread"' in d["summary"])
    assert (spread["file"], spread["line"], spread["column"]) == ("reports/r.yaml", 17, 13)
    assert spread["severity"] == "error"
    human = CliRunner().invoke(cli, ["validate"])
    assert 'reports/r.yaml:13:42: error: check "syntax": invalid assert' in human.output


def test_valid_checks_validate_clean_and_plan_refuses_invalid_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load(tmp_path, FOR_EACH)
    monkeypatch.chdir(tmp_path)
    assert CliRunner().invoke(cli, ["validate"]).exit_code == 0
    load(tmp_path, SYNTAX)
    planned = CliRunner().invoke(cli, ["plan", "--emulator"])
    assert planned.exit_code == 1
    assert 'reports/r.yaml:4:26: error: check "typo-id"' in planned.output


def test_fmt_keeps_checks_and_the_schema_accepts_them(tmp_path: Path) -> None:
    text = FOR_EACH.replace("- {name: open-p1", "-   {name: open-p1")
    formatted = format_text(text)
    assert "checks:" in formatted and 'assert: groups["OPEN / P1"] <= 2' in formatted
    assert yaml.safe_load(formatted) == yaml.safe_load(FOR_EACH)
    jsonschema.validate(yaml.safe_load(FOR_EACH), report_schema())
    bad: dict[str, Any] = yaml.safe_load(REPORT_LEVEL)
    bad["checks"][0]["severity"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, report_schema())


def test_checks_change_the_definition_hash_only_where_they_exist(tmp_path: Path) -> None:
    plain = (
        REPORT_LEVEL.split("checks:")[0] + "aggregations:" + REPORT_LEVEL.split("aggregations:")[1]
    )
    without, _ = load(tmp_path, plain)
    with_checks, _ = load(tmp_path, REPORT_LEVEL)
    again, _ = load(tmp_path, REPORT_LEVEL.replace("<= 3", "<= 4"))
    assert len({without.definition_hash, with_checks.definition_hash, again.definition_hash}) == 3


def test_a_division_by_zero_fails_the_check_and_says_so(tmp_path: Path) -> None:
    spec = one_check(tmp_path, 'total / groups["P1"] < 5')
    result = outcome(spec, entry(spec, "r.open_by_priority", {"P2": 4}))
    assert (result.passed, result.error) == (False, "division by zero")
    assert outcome(spec, entry(spec, "r.open_by_priority", {"P1": 1, "P2": 2})).passed


def test_validate_reports_a_for_each_read_without_its_key_and_mixed_types(
    tmp_path: Path,
) -> None:
    text = FOR_EACH.replace(
        '\'aggregations["by_service"]["billing"].total < 10\'',
        "'aggregations[\"by_service\"].total < 10'",
    ).replace("'groups[\"OPEN / P1\"] <= 2'", "'total * 1.5 > 2'")
    _, problems = load(tmp_path, text)
    assert problems == [
        'reports/r.yaml:3:35: error: check "billing-small": assert reads a key that is not '
        "there: 'total' (a for_each aggregation is read per key: "
        'aggregations["id"]["key"].total)',
        'reports/r.yaml:11:33: error: check "open-p1": assert cannot be evaluated: No such '
        "overload: the operation is not defined for the given operand types (convert with "
        "double(x) or int(x))",
    ]


def test_a_broken_aggregation_gives_its_own_error_not_one_at_the_report_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = REPORT_LEVEL.replace(
        "limit: 6", "limit: 6\n    checks:\n      - {name: b, assert: true}"
    )
    load(tmp_path, broken)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["validate"])
    assert result.output == (
        'reports/r.yaml:11:27: error: a check\'s "assert" must be a string, not a boolean\n'
        "   |\n"
        "11 |       - {name: b, assert: true}\n"
        "   |                           ^^^^\n"
        "Not valid: 1 error, 0 warnings.\n"
    )


def test_a_page_and_its_data_file_share_one_evaluation_of_each_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from casereport.render import checks_view
    from casereport.render.pages import render_report
    from casereport.render.templates import environment

    spec = one_check(tmp_path, "total <= 50", message="Backlog too big")
    evaluated: list[str] = []
    real_evaluate = checks_view.evaluate

    def evaluate(*args: Any, **kwargs: Any) -> list[CheckResult]:
        evaluated.append(kwargs["address"])
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(checks_view, "evaluate", evaluate)
    state = entry(spec, "r.open_by_priority", {"P1": 2, "P2": 50})

    pages = render_report(spec, {state.address: state}, None, environment(None))

    assert evaluated == ["r.open_by_priority"]  # once, for the page and the data file
    (written,) = json.loads(pages["r.json"])["checks"]
    assert (written["passed"], written["message"]) == (False, "Backlog too big")
    assert "Backlog too big" in str(pages["r.html"])
