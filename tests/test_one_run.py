"""One run reports everything: schema, variable, query and template problems of a file
together (issue 12, point 2)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from casereport.cli import cli
from casereport.definitions.expand import expand_workspace
from casereport.definitions.load import load_reports

BROKEN = Path(__file__).resolve().parent / "definitions" / "broken"


def test_every_kind_of_mistake_in_one_validate_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reports").mkdir()
    shutil.copy(BROKEN / "every-kind-at-once.yaml", tmp_path / "reports")
    shutil.copytree(BROKEN / "templates", tmp_path / "templates")
    result = CliRunner().invoke(cli, ["validate"])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    kinds = [
        'refresh: invalid duration "6x"',  # schema
        'query_filter: undefined variable "servce"',  # a variable, in a file with a schema error
        "invalid query_filter: expected a term after 'AND'",  # query syntax
        'query field "staus" is not a known case field',  # query field
        'group_by: undefined variable "nope"',  # a variable, in an aggregation left out
        '"limit" must be from 1 to 1000, got 0',  # schema, aggregation level
        "templates/every-kind.md.j2:2: error: 'dict object' has no attribute 'titel'",  # template
    ]
    for kind in kinds:
        assert sum(kind in line for line in lines) == 1, kind
    assert lines[-1] == "Not valid: 6 errors, 1 warning."


def write(root: Path, name: str, text: str) -> None:
    (root / "reports").mkdir(exist_ok=True)
    (root / "reports" / f"{name}.yaml").write_text(text)


GOOD_AGGREGATION = """\
aggregations:
  a:
    query_filter: "service:${var.service}"
    group_by: [status]
    limit: 5
"""


def test_a_file_with_errors_is_checked_but_never_planned(tmp_path: Path) -> None:
    write(tmp_path, "index", "title: T\nvars:\n  service: api\n" + GOOD_AGGREGATION)
    write(tmp_path, "Bad", "title: T\n" + GOOD_AGGREGATION)
    loaded = load_reports(tmp_path / "reports")
    assert loaded.reports == ()
    assert [r.name for r in loaded.check_only] == ["Bad", "index"]
    _, expansion = expand_workspace(tmp_path)
    assert expansion.reports == ()
    # Both expand as far as they can, for their templates' check.
    assert [r.name for r in expansion.checked] == ["Bad", "index"]
    assert [a.address for a in expansion.checked[1].aggregations] == ["index.a"]
    messages = [d.summary for d in expansion.diagnostics]
    assert sum("undefined variable" in m for m in messages) == 1  # Bad's, not index's


def test_broken_vars_do_not_make_every_use_undefined(tmp_path: Path) -> None:
    write(tmp_path, "r", "title: T\nvars:\n  service: [a, b]\nrefresh: 1x\n" + GOOD_AGGREGATION)
    _, expansion = expand_workspace(tmp_path)
    messages = [d.summary for d in expansion.diagnostics]
    assert len(messages) == 2
    assert messages[0].startswith('variable "service" must be a string')
    assert messages[1].startswith('refresh: invalid duration "1x"')


def test_a_broken_for_each_does_not_make_each_undefined(tmp_path: Path) -> None:
    text = GOOD_AGGREGATION.replace("${var.service}", "${each.value}")
    text = text.replace("  a:\n", "  a:\n    for_each: 3\n")
    write(tmp_path, "r", "title: T\n" + text)
    _, expansion = expand_workspace(tmp_path)
    assert [d.summary for d in expansion.diagnostics] == [
        '"for_each" must be a list or a mapping, not an integer'
    ]
