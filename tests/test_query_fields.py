"""Query fields are checked: unknown fields, declared attributes, undocumented syntax,
strict mode (issue 12, point 1)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings

from casereport.cli import cli
from casereport.definitions.expand import expand_workspace
from casereport.definitions.fields import (
    _CANDIDATE_FIELD,
    KNOWN_FIELDS,
    SINGLE_VALUED_FIELDS,
    check_query_fields,
    known_fields,
)
from casereport.definitions.load import check_group, load_report
from casereport.definitions.query import FieldTerm, Node, field_terms, fields, to_string
from query_strategies import nodes

AGGREGATION = "title: T\naggregations:\n  a:\n    query_filter: {query}\n"
AGGREGATION += "    group_by: [{group}]\n    limit: 5\n"


def report(query: str, group: str = "status") -> str:
    return AGGREGATION.format(query=query, group=group)


def warnings(text: str, attributes: tuple[str, ...] = ()) -> list[str]:
    found, diagnostics = load_report(Path("reports/r.yaml"), text, attributes)
    assert found is not None
    return [str(d) for d in diagnostics]


def test_one_list_of_known_fields() -> None:
    assert set(SINGLE_VALUED_FIELDS) <= set(KNOWN_FIELDS)
    assert len(set(KNOWN_FIELDS)) == len(KNOWN_FIELDS)
    assert known_fields() == frozenset(KNOWN_FIELDS)
    assert known_fields(["region"]) == frozenset([*KNOWN_FIELDS, "region"])


def test_field_terms_locate_fields_and_values() -> None:
    assert field_terms('staus:open -p:(P1 OR "P 2") free "a:b"') == [
        FieldTerm("staus", 0, "open", 6, False),
        FieldTerm("p", 12, "P1", 15, False),
        FieldTerm("p", 12, "P 2", 21, True),
    ]


def test_an_unknown_query_field_is_a_warning_at_its_column() -> None:
    assert warnings(report('"service:api staus:open"')) == [
        'reports/r.yaml:4:32: warning: query field "staus" is not a known case field or a '
        'declared attribute (did you mean "status"?)'
    ]


def test_a_field_with_no_near_name_says_how_to_declare_it() -> None:
    assert warnings(report("region:emea")) == [
        'reports/r.yaml:4:19: warning: query field "region" is not a known case field or a '
        'declared attribute: declare it in casereport.toml (attributes = ["region"]) if cases '
        "have it"
    ]


def test_declared_attributes_are_accepted_and_suggested() -> None:
    assert warnings(report("region:emea", "region"), ("region",)) == []
    assert warnings(report("regoin:emea", "regoin"), ("region",)) == [
        'reports/r.yaml:4:19: warning: query field "regoin" is not a known case field or a '
        'declared attribute (did you mean "region"?)',
        'reports/r.yaml:5:16: warning: group_by field "regoin" is not a known case field, so '
        'it is read from the case attributes (did you mean "region"?)',
    ]
    assert check_group("regoin") is None
    assert check_group("regoin", known_fields(["region"])) is not None


def test_each_unknown_field_once_per_query_and_known_fields_pass() -> None:
    assert check_query_fields("status:open -priority:(P1 OR P2) team:x service:y") == ()
    assert check_query_fields("title:x created_at:2026-01-01 free text") == ()
    problems = check_query_fields("x:1 OR x:2 -y:(a OR b)")
    assert [p[1] for p in problems] == [0, 12]


@pytest.mark.parametrize(
    ("query", "message", "column"),
    [
        (
            "created_at:>now-7d",
            'undocumented search syntax: "created_at:>now-7d" compares, and Datadog documents '
            "no comparison operators for Case Management search (casereport reads "
            '">now-7d" as a plain value, as its emulator does)',
            11,
        ),
        (
            "status:open created_at:[now-7d TO now]",
            'undocumented search syntax: "created_at:[now-7d TO now]" is a range, and Datadog '
            "documents no ranges for Case Management search (casereport reads it as the "
            'words "[now-7d", "TO", "now]", as its emulator does)',
            23,
        ),
        (
            "comment_count:(<=3)",
            'query field "comment_count" is not a known case field or a declared attribute: '
            'declare it in casereport.toml (attributes = ["comment_count"]) if cases have it',
            0,
        ),
    ],
)
def test_undocumented_syntax_is_a_warning(query: str, message: str, column: int) -> None:
    problems = check_query_fields(query)
    assert problems[0] == (message, column)


def test_quoted_values_are_literal() -> None:
    assert check_query_fields('title:">3" title:"[a TO b]"') == ()


def test_a_query_with_variables_is_checked_after_expansion(tmp_path: Path) -> None:
    (tmp_path / "reports").mkdir()
    text = report('"${var.f}:open"').replace("title: T\n", "title: T\nvars:\n  f: staus\n")
    text = text.replace("  a:\n", "  a:\n    for_each: [x, y]\n")
    (tmp_path / "reports" / "r.yaml").write_text(text)
    _, expansion = expand_workspace(tmp_path)
    # Once for the aggregation, not once per for_each item; at the "${" it came from.
    assert [str(d).replace(f"{tmp_path}/", "") for d in expansion.diagnostics] == [
        'reports/r.yaml:7:20: warning: query field "staus" is not a known case field or a '
        'declared attribute (did you mean "status"?) (expanded for r.a["x"]: "staus:open")'
    ]


def write_workspace(root: Path, toml: str = "") -> None:
    (root / "reports").mkdir()
    (root / "reports" / "r.yaml").write_text(report("staus:open"))
    if toml:
        (root / "casereport.toml").write_text(toml)


WARNING = (
    'reports/r.yaml:4:19: {severity}: query field "staus" is not a known case field or a '
    'declared attribute (did you mean "status"?)'
)


def test_validate_warns_and_strict_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_workspace(tmp_path)
    result = CliRunner().invoke(cli, ["validate"])
    assert result.exit_code == 0
    assert result.output.splitlines()[0] == WARNING.format(severity="warning")
    result = CliRunner().invoke(cli, ["validate", "--strict"])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert [lines[0], lines[-1]] == [
        WARNING.format(severity="error"),
        "Not valid: 1 error, 0 warnings.",
    ]
    assert lines[1:-1] == ["  |", "4 |     query_filter: staus:open", "  |                   ^^^^^"]


def test_strict_in_settings_fails_validate_and_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_workspace(tmp_path, "strict = true\n")
    result = CliRunner().invoke(cli, ["validate"])
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == WARNING.format(severity="error")
    result = CliRunner().invoke(cli, ["plan", "--emulator"])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "Error: " + WARNING.format(severity="error") + " (strict = true in casereport.toml)"
    ]
    assert "Traceback" not in result.output


def test_plan_prints_warnings_on_stderr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_workspace(tmp_path)
    result = CliRunner().invoke(cli, ["plan", "--emulator"])
    assert result.exit_code == 0, result.output
    assert WARNING.format(severity="warning") in result.stderr.splitlines()
    assert "warning" not in result.stdout


def test_declared_attributes_silence_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_workspace(tmp_path, 'attributes = ["staus"]\nstrict = true\n')
    result = CliRunner().invoke(cli, ["validate"])
    assert result.exit_code == 0 and result.output.startswith("Valid: 1 report")


def test_query_command_warns_on_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    from casereport.engine import adhoc

    seen: list[str] = []
    request = adhoc.query_request("staus:open", ("status",), 5, warn=seen.append)
    assert request.query_filter == "staus:open"
    assert seen == [
        'warning: at column 1: query field "staus" is not a known case field or a declared '
        'attribute (did you mean "status"?)'
    ]


@settings(max_examples=300, deadline=None)
@given(nodes())
def test_the_quick_check_never_misses_a_field(tree: Node) -> None:
    # The regular expression that spares most queries a parse must find every field the
    # parser finds: a printed tree naming a field outside the known set always warns.
    text = to_string(tree)
    named = {term.field for term in field_terms(text)}
    assert named == set(fields(tree))
    assert named <= set(_CANDIDATE_FIELD.findall(text))
    problems = check_query_fields(text, frozenset())
    assert len([p for p in problems if p[0].startswith("query field")]) == len(named)
