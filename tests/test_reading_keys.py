"""The reading keys in report files (compare, order, labels, better, trend): loading,
expansion into each aggregation's Reading, the definition hash, validate (the warning about
history retention included), fmt and the schema. Bad values are in the broken-file corpus
(tests/definitions/broken/reading-*.yaml)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from casereport.cli import cli
from casereport.definitions.expand import expand, expand_workspace
from casereport.definitions.fmt import format_text
from casereport.definitions.load import load_report
from casereport.definitions.models import ReadingKey
from casereport.definitions.reading import DEFAULT_READING, Reading
from casereport.definitions.schema import report_schema

REPORT = """\
title: Support backlog
compare: 7d
better: lower
labels: {NOT_DEFINED: No priority}
aggregations:
  by_priority:
    query_filter: project:SUP
    group_by: [priority]
    limit: 6
    order: [P2, P1]
    labels: {P1: Urgent, NOT_DEFINED: Unset}
    trend: [P1, P2]
  by_status:
    query_filter: project:SUP
    group_by: [status]
    limit: 3
    compare: previous
    better: higher
    order: count
  per_service:
    for_each: [billing, checkout]
    query_filter: service:${each.value}
    group_by: [status]
    limit: 3
    order: label
"""

PLAIN = """\
title: Support backlog
aggregations:
  by_status:
    query_filter: project:SUP
    group_by: [status]
    limit: 3
"""


def readings(text: str) -> dict[str, Reading]:
    report, diagnostics = load_report(Path("reports/support.yaml"), text)
    assert diagnostics == [] and report is not None
    expansion = expand([report])
    assert expansion.ok
    return {spec.address: spec.reading for spec in expansion.aggregations}


def definition_hash(text: str) -> tuple[str, tuple[str, ...]]:
    report, diagnostics = load_report(Path("reports/support.yaml"), text)
    assert diagnostics == [] and report is not None
    (spec,) = expand([report]).reports
    return spec.definition_hash, tuple(a.fingerprint for a in spec.aggregations)


def test_keys_are_loaded_with_their_places() -> None:
    report, diagnostics = load_report(Path("reports/support.yaml"), REPORT)
    assert diagnostics == [] and report is not None
    # In the order of READING_KEYS, each at its value.
    assert report.reading == (
        ReadingKey("compare", "7d", 2, 10),
        ReadingKey("labels", (("NOT_DEFINED", "No priority"),), 4, 9),
        ReadingKey("better", "lower", 3, 9),
    )
    by_priority = report.aggregations[0]
    assert by_priority.reading == (
        ReadingKey("order", ("P2", "P1"), 10, 12),
        ReadingKey("labels", (("P1", "Urgent"), ("NOT_DEFINED", "Unset")), 11, 13),
        ReadingKey("trend", ("P1", "P2"), 12, 12),
    )


def test_aggregations_take_the_report_defaults_and_override_them() -> None:
    got = readings(REPORT)
    assert got["support.by_priority"] == Reading(
        compare="7d",
        order=("P2", "P1"),
        # An aggregation's labels add to the report's; its own win for the same value.
        labels=(("NOT_DEFINED", "Unset"), ("P1", "Urgent")),
        better="lower",
        trend=("P1", "P2"),
    )
    assert got["support.by_status"] == Reading(
        compare="previous",
        order="count",
        labels=(("NOT_DEFINED", "No priority"),),
        better="higher",
    )
    for key in ("billing", "checkout"):  # every for_each instance
        assert got[f'support.per_service["{key}"]'] == Reading(
            compare="7d", order="label", labels=(("NOT_DEFINED", "No priority"),), better="lower"
        )
    assert got["support.by_status"].compare_seconds is None
    assert got["support.by_priority"].compare_seconds == 7 * 86400


def test_without_keys_every_aggregation_reads_the_default_way() -> None:
    assert readings(PLAIN) == {"support.by_status": DEFAULT_READING}
    assert next(iter(readings(PLAIN).values())) is DEFAULT_READING


@pytest.mark.parametrize(
    "change",
    [
        "compare: 7d\n",
        "compare: 12h\n",
        "order: count\n",
        "order: [CLOSED, OPEN]\n",
        "labels: {OPEN: Waiting}\n",
        "better: lower\n",
        "trend: [OPEN]\n",
    ],
)
def test_a_reading_key_changes_the_definition_hash_but_never_the_request(change: str) -> None:
    before, requests = definition_hash(PLAIN)
    at_report = PLAIN.replace("aggregations:\n", f"{change}aggregations:\n")
    in_aggregation = PLAIN + "    " + change
    for text in (at_report, in_aggregation):
        after, same_requests = definition_hash(text)
        assert after != before
        assert same_requests == requests


def test_what_reads_the_same_hashes_the_same() -> None:
    plain, _ = definition_hash(PLAIN)
    # The default written out, and labels in another order or style: the same pages.
    assert definition_hash(PLAIN + "    compare: previous\n    order: natural\n")[0] == plain
    one = PLAIN + "    labels: {OPEN: Waiting, CLOSED: Done}\n"
    other = PLAIN + "    labels:\n      CLOSED: Done\n      OPEN: Waiting\n"
    assert definition_hash(one)[0] == definition_hash(other)[0] != plain


def test_the_example_reports_keys_validate_against_the_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from ruamel.yaml import YAML

    data = YAML(typ="safe", pure=True).load(REPORT)
    assert list(jsonschema.Draft202012Validator(report_schema()).iter_errors(data)) == []


def test_fmt_keeps_the_keys_in_the_house_style() -> None:
    messy = """\
title: Support backlog
compare:   7d
labels: {NOT_DEFINED: 'No priority', P1: "Urgent"}
aggregations:
  by_priority:
    query_filter: project:SUP
    group_by: [priority]
    limit: 6
    order:
    - P2
    - P1
    better: 'lower'   # fewer is better
    trend: [ P1 ]
"""
    formatted = format_text(messy)
    assert (
        formatted
        == """\
title: Support backlog
compare: 7d
labels:
  NOT_DEFINED: No priority
  P1: Urgent
aggregations:
  by_priority:
    query_filter: project:SUP
    group_by: [priority]
    limit: 6
    order: [P2, P1]
    better: lower  # fewer is better
    trend: [P1]
"""
    )
    assert format_text(formatted) == formatted
    assert readings(formatted) == readings(messy)
    assert format_text(REPORT) == REPORT.replace(
        "labels: {NOT_DEFINED: No priority}", "labels:\n  NOT_DEFINED: No priority"
    ).replace(
        "    labels: {P1: Urgent, NOT_DEFINED: Unset}",
        "    labels:\n      P1: Urgent\n      NOT_DEFINED: Unset",
    )


# -- validate ---------------------------------------------------------------------------


def workspace(root: Path, report: str, settings: str | None = None) -> Path:
    (root / "reports").mkdir(parents=True)
    (root / "reports" / "support.yaml").write_text(report)
    if settings is not None:
        (root / "casereport.toml").write_text(settings)
    return root


WEEKLY = PLAIN.replace("aggregations:\n", "compare: 28d\naggregations:\n") + "    compare: 7d\n"


def test_validate_warns_when_history_cannot_reach_what_compare_asks_for(tmp_path: Path) -> None:
    root = workspace(tmp_path, WEEKLY, 'history = "14d"\n')
    _, expansion = expand_workspace(root)
    file = root / "reports" / "support.yaml"
    # 28d looks up to 32 days back (its tolerance is 4 days); 7d, up to 8 days: fine.
    assert [str(d) for d in expansion.diagnostics] == [
        f'{file}:2:10: warning: compare: 28d looks for a run up to 32d back, but history = "14d" '
        'in casereport.toml keeps runs for 14d only: set history = "32d" or longer'
    ]
    assert expansion.ok  # a warning: validate --strict makes it an error


@pytest.mark.parametrize("settings", ['history = "32d"\n', "history = 60\n", None])
def test_no_warning_when_history_reaches_far_enough_or_counts_runs(
    tmp_path: Path, settings: str | None
) -> None:
    _, expansion = expand_workspace(workspace(tmp_path, WEEKLY, settings))
    assert expansion.diagnostics == ()


def test_hours_are_rounded_up_in_the_warning(tmp_path: Path) -> None:
    daily = PLAIN + "    compare: 1d\n"
    _, expansion = expand_workspace(workspace(tmp_path, daily, 'history = "1d"\n'))
    (warning,) = expansion.diagnostics
    assert warning.summary.startswith("compare: 1d looks for a run up to 28h back")
    assert (warning.line, warning.column) == (7, 14)


def test_validate_json_and_strict_carry_the_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace(tmp_path, WEEKLY.replace("compare: 7d", "better: lowr"), 'history = "14d"\n')
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["validate", "--json"])
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert (data["valid"], data["error_count"], data["warning_count"]) == (False, 1, 1)
    assert [(d["severity"], d["line"], d["column"]) for d in data["diagnostics"]] == [
        ("warning", 2, 10),
        ("error", 8, 13),
    ]
    assert data["diagnostics"][1]["summary"] == 'unknown better "lowr" (did you mean "lower"?)'
    (tmp_path / "reports" / "support.yaml").write_text(WEEKLY)
    assert CliRunner().invoke(cli, ["validate"]).exit_code == 0
    strict = CliRunner().invoke(cli, ["validate", "--strict"])
    assert strict.exit_code == 1
    assert "reports/support.yaml:2:10: error: compare: 28d looks for a run" in strict.output
