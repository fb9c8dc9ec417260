"""Expansion: variables, for_each, addresses and request fingerprints."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from casereport.definitions.expand import (
    AggregationSpec,
    Expansion,
    address,
    expand,
    expand_workspace,
    fingerprint,
    validation_output,
)
from casereport.definitions.load import load_report
from casereport.definitions.models import ReportDefinition
from casereport.settings import Refresh

REPORT = """\
title: Support ${var.service}
vars:
  service: case-api
aggregations:
  by_status:
    title: Cases on ${var.service} by status
    query_filter: "service:${var.service}"
    group_by: [status]
    limit: 14
  open_by_priority:
    for_each: [case-api, billing, checkout]
    title: "Open cases by priority: ${each.key}"
    query_filter: "service:${each.value} status:open"
    group_by: [priority]
    limit: 6
"""


def definition(text: str, name: str = "support-weekly") -> ReportDefinition:
    report, diagnostics = load_report(Path(f"reports/{name}.yaml"), text)
    assert [d for d in diagnostics if d.severity == "error"] == []
    assert report is not None
    return report


def expanded(text: str, name: str = "support-weekly", **options: object) -> Expansion:
    return expand([definition(text, name)], **options)  # type: ignore[arg-type]


def errors(result: Expansion) -> list[str]:
    return [str(d) for d in result.diagnostics if d.severity == "error"]


def test_the_design_example_expands_to_stable_addresses() -> None:
    result = expanded(REPORT)
    assert result.ok and result.diagnostics == ()
    (report,) = result.reports
    assert report.title == "Support case-api"
    assert report.refresh == Refresh(3600, "1h")
    assert [spec.address for spec in report.aggregations] == [
        "support-weekly.by_status",
        'support-weekly.open_by_priority["case-api"]',
        'support-weekly.open_by_priority["billing"]',
        'support-weekly.open_by_priority["checkout"]',
    ]
    by_status, _, billing, _ = report.aggregations
    assert by_status == AggregationSpec(
        address="support-weekly.by_status",
        report="support-weekly",
        aggregation_id="by_status",
        key=None,
        title="Cases on case-api by status",
        query_filter="service:case-api",
        groups=("status",),
        limit=14,
        fingerprint=fingerprint("service:case-api", ["status"], 14),
    )
    assert billing.key == "billing"
    assert billing.title == "Open cases by priority: billing"
    assert billing.query_filter == "service:billing status:open"
    assert billing.request() == {
        "query_filter": "service:billing status:open",
        "groups": ["priority"],
        "limit": 6,
    }


def test_for_each_mapping_gives_key_and_value() -> None:
    text = REPORT.replace(
        "for_each: [case-api, billing, checkout]",
        "for_each:\n      api: case-api\n      bill: billing",
    )
    specs = expanded(text).aggregations[1:]
    assert [(s.address, s.key, s.query_filter) for s in specs] == [
        ('support-weekly.open_by_priority["api"]', "api", "service:case-api status:open"),
        ('support-weekly.open_by_priority["bill"]', "bill", "service:billing status:open"),
    ]
    assert specs[0].title == "Open cases by priority: api"


def test_default_title_is_the_aggregation_id() -> None:
    text = REPORT.replace("    title: Cases on ${var.service} by status\n", "").replace(
        '    title: "Open cases by priority: ${each.key}"\n', ""
    )
    titles = [spec.title for spec in expanded(text).aggregations]
    assert titles[:2] == ["by_status", "open_by_priority: case-api"]


def test_fingerprint_is_sha256_of_canonical_json() -> None:
    canonical = '{"groups":["status","priority"],"limit":14,"query_filter":"service:caf\u00e9"}'
    assert fingerprint("service:caf\u00e9", ("status", "priority"), 14) == (
        hashlib.sha256(canonical.encode()).hexdigest()
    )


@given(st.text(), st.lists(st.text(), max_size=3), st.integers(1, 1000))
@example('\x00\x1f\x7f"\\\u2028\U0001f600', ["\t", "\n"], 3)
def test_fingerprint_json_is_what_json_dumps_writes(
    query: str, groups: list[str], limit: int
) -> None:
    try:
        canonical = json.dumps(
            {"query_filter": query, "groups": groups, "limit": limit},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        with pytest.raises(UnicodeEncodeError):
            fingerprint(query, groups, limit)
    else:
        assert fingerprint(query, groups, limit) == hashlib.sha256(canonical).hexdigest()


def test_changing_query_groups_or_limit_changes_the_fingerprint() -> None:
    base = fingerprint("status:open", ["status"], 14)
    assert fingerprint("status:open", ("status",), 14) == base
    assert (
        len(
            {
                base,
                fingerprint("status:closed", ["status"], 14),
                fingerprint("status:open", ["priority"], 14),
                fingerprint("status:open", ["status", "priority"], 14),
                fingerprint("status:open", ["priority", "status"], 14),  # order is meaningful
                fingerprint("status:open", ["status"], 15),
            }
        )
        == 6
    )


def test_equal_requests_in_different_reports_share_a_fingerprint() -> None:
    other = """\
title: Other
aggregations:
  statuses:
    title: A different title
    query_filter: service:case-api
    group_by: [status]
    limit: 14
"""
    result = expand([definition(REPORT), definition(other, "other")])
    shared = result.by_fingerprint()[fingerprint("service:case-api", ["status"], 14)]
    assert [spec.address for spec in shared] == ["other.statuses", "support-weekly.by_status"]
    assert len(result.by_fingerprint()) == 4  # 5 aggregations, 4 distinct requests


def test_addresses_and_fingerprints_survive_reordering_and_reformatting() -> None:
    reordered = """\
# the same report, keys in another order, other quoting and layout
aggregations:
  by_status:
    limit: 14
    group_by:
      - status
    query_filter: 'service:${var.service}'
    title: "Cases on ${var.service} by status"
  open_by_priority:
    limit: 6
    group_by: [ priority ]
    query_filter: service:${each.value} status:open
    title: 'Open cases by priority: ${each.key}'
    for_each:
      - case-api
      - billing
      - checkout
vars: {service: case-api}
title: "Support ${var.service}"
"""
    first, second = expanded(REPORT), expanded(reordered)
    assert first.aggregations == second.aggregations
    assert first.reports[0].definition_hash == second.reports[0].definition_hash


def test_definition_hash_changes_with_what_is_rendered() -> None:
    base = expanded(REPORT).reports[0].definition_hash
    assert expanded(REPORT.replace("limit: 14", "limit: 15")).reports[0].definition_hash != base
    assert expanded(REPORT.replace("Support ", "Help ")).reports[0].definition_hash != base


def test_variable_precedence_cli_over_report_over_workspace() -> None:
    text = REPORT.replace("  service: case-api\n", "  service: case-api\n  env: staging\n")
    text = text.replace(
        "service:${var.service}", "service:${var.service} env:${var.env} ${var.team}"
    )
    result = expanded(
        text,
        workspace_vars={"service": "ignored", "env": "ignored", "team": "team:support"},
        cli_vars={"service": "billing"},
    )
    assert result.ok
    assert result.aggregations[0].query_filter == "service:billing env:staging team:support"


def test_dollar_dollar_brace_is_a_literal() -> None:
    title = "title: Cases on ${var.service} by status"
    result = expanded(REPORT.replace(title, 'title: "Use $${var.x} for ${var.service}"'))
    assert result.ok
    assert result.aggregations[0].title == "Use ${var.x} for case-api"
    # Left to right, as in Terraform: "$" then the escape "$${".
    result = expanded(REPORT.replace(title, 'title: "$$${var.service}"'))
    assert result.aggregations[0].title == "$${var.service}"


def test_a_lone_dollar_is_kept() -> None:
    result = expanded(REPORT.replace("Cases on ${var.service}", "Cases at $5 on ${var.service}"))
    assert result.aggregations[0].title == "Cases at $5 on case-api by status"


USE = "use ${var.NAME}, ${each.key} or ${each.value}"


@pytest.mark.parametrize(
    ("replace", "message"),
    [
        (
            "${var.servce}",
            'title: undefined variable "servce" (did you mean "service"?): define it under '
            "vars:, in casereport.toml [vars], or pass --var servce=VALUE",
        ),
        ("${var}", 'title: "${var}" needs a variable name: use ${var.NAME}'),
        ("${each}", 'title: "${each}" needs an attribute: use ${each.key} or ${each.value}'),
        ("${var.my-var}", 'title: invalid variable name in "${var.my-var}": use ${var.NAME}'),
        ("${}", f'title: unknown reference "${{}}": {USE}'),
        (
            "${vars.service}",
            f'title: unknown reference "${{vars.service}}" (did you mean "var"?): {USE}',
        ),
        ("${each.key}", 'title: "${each.key}" can only be used in an aggregation with for_each'),
        ("${env.HOME}", f'title: unknown reference "${{env.HOME}}": {USE}'),
        (
            "${var.service",
            'title: unterminated "${": close it with "}", or write "$${" for a literal "${"',
        ),
    ],
)
def test_interpolation_errors_point_at_the_reference(replace: str, message: str) -> None:
    text = REPORT.replace(
        "title: Cases on ${var.service} by status", f'title: "Cases on {replace} x"'
    )
    result = expanded(text)
    assert errors(result) == [f"reports/support-weekly.yaml:6:22: error: {message}"]
    assert result.reports == ()


def test_every_error_in_a_string_is_reported() -> None:
    text = REPORT.replace(
        "title: Cases on ${var.service} by status", "title: ${var.a} and ${var.b}"
    )
    assert [d.column for d in expanded(text).diagnostics] == [12, 25]


def test_query_error_after_expansion_points_into_the_file() -> None:
    text = REPORT.replace(
        'query_filter: "service:${each.value} status:open"',
        'query_filter: "service:${each.value} status:(open"',
    )
    result = expanded(text)
    # Each for_each item's query is different, so each is reported, naming its address.
    assert errors(result) == [
        f"reports/support-weekly.yaml:13:49: error: invalid query_filter: unbalanced '(' after "
        f"'status:' (expanded for support-weekly.open_by_priority[\"{key}\"]: "
        f'"service:{key} status:(open")'
        for key in ("case-api", "billing", "checkout")
    ]


def test_group_by_entries_are_interpolated_and_checked() -> None:
    text = REPORT.replace("group_by: [status]", 'group_by: [status, "${var.field}"]')
    result = expanded(text, cli_vars={"field": "priority"})
    assert result.aggregations[0].groups == ("status", "priority")
    result = expanded(text, cli_vars={"field": "status"})
    assert errors(result) == [
        'reports/support-weekly.yaml:8:24: error: "group_by" lists "status" twice (after expansion)'
    ]
    result = expanded(text, cli_vars={"field": "priorty"})
    assert result.ok
    assert [d.summary for d in result.diagnostics] == [
        'group_by field "priorty" is not a known case field, so it is read from the case '
        'attributes (did you mean "priority"?)'
    ]


def test_unused_cli_variable_is_a_warning() -> None:
    result = expanded(REPORT, cli_vars={"servce": "billing"})
    assert result.ok
    assert [str(d) for d in result.diagnostics] == [
        '--var: warning: --var "servce" is not used by any report (no ${var.servce} anywhere; '
        'did you mean "service"? the reports\' variables: service)'
    ]


def test_unused_cli_variable_when_no_report_has_one() -> None:
    plain = REPORT.replace("${var.service}", "billing")
    result = expanded(plain.replace("vars:\n  service: case-api\n", ""), cli_vars={"x": "1"})
    assert [str(d) for d in result.diagnostics] == [
        '--var: warning: --var "x" is not used by any report (no ${var.x} anywhere; none has one)'
    ]


def test_reports_are_sorted_and_refresh_defaults_from_settings() -> None:
    other = REPORT.replace("title: Support", "refresh: always\ntitle: Support")
    result = expand(
        [definition(REPORT, "zeta"), definition(other, "alpha")],
        default_refresh=Refresh(1800, "30m"),
    )
    assert [(r.name, r.refresh.text) for r in result.reports] == [
        ("alpha", "always"),
        ("zeta", "30m"),
    ]


def test_expand_workspace_reads_settings_and_reports(tmp_path: Path) -> None:
    (tmp_path / "casereport.toml").write_text('refresh = "6h"\n[vars]\nservice = "auth"\n')
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "mine.yaml").write_text(
        REPORT.replace("vars:\n  service: case-api\n", "")
    )
    settings, result = expand_workspace(tmp_path)
    assert settings.refresh.text == "6h"
    assert result.ok
    assert result.aggregations[0].query_filter == "service:auth"
    assert result.reports[0].refresh.text == "6h"
    assert validation_output(result) == ("Valid: 1 report, 4 aggregations (4 distinct requests).\n")
    data = json.loads(validation_output(result, as_json=True))
    assert data == {"valid": True, "error_count": 0, "warning_count": 0, "diagnostics": []}


def test_expand_workspace_reports_settings_errors(tmp_path: Path) -> None:
    (tmp_path / "casereport.toml").write_text('refrsh = "6h"\n')
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "mine.yaml").write_text(REPORT)
    _, result = expand_workspace(tmp_path)
    assert [str(d) for d in result.diagnostics] == [
        f'{tmp_path}/casereport.toml:1:1: error: unknown setting "refrsh" (did you mean "refresh"?)'
    ]
    assert validation_output(result).splitlines()[-1] == "Not valid: 1 error, 0 warnings."


def test_address_quoting() -> None:
    assert address("r", "a") == "r.a"
    assert address("r", "a", "case-api") == 'r.a["case-api"]'
