"""A report's checks evaluated from state, and how pages and data files show them.

The numbers a check reads are the page's own: the stored result, and the run ``compare:``
selects picked by ``render.compare.compared_run`` (the page's choice), so a badge never
disagrees with the table above it. Nothing here calls the API. ``casereport check``,
``apply`` and ``render`` evaluate through ``report_results``; the pages' context is
``page_checks`` and ``index_checks``, the data files' ``data_checks``.

Reports without checks cost nothing: no CEL import, no context key (their pages stay
byte-identical).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from casereport.checks.evaluate import (
    Numbers,
    aggregation_variables,
    checks_defaults,
    evaluate,
)
from casereport.checks.outputs import values_text
from casereport.checks.results import CheckResult
from casereport.definitions.expand import AggregationSpec, ReportSpec
from casereport.render.compare import compared_run
from casereport.state.comparable import comparable_history
from casereport.state.model import AggregationState

__all__ = [
    "data_checks",
    "failing_first",
    "index_checks",
    "numbers",
    "page_checks",
    "report_results",
]


def numbers(spec: AggregationSpec, state: AggregationState | None) -> Numbers:
    """What an aggregation's checks read of its state entry (total None: not fetched)."""
    if state is None:
        return Numbers(None, {}, spec.limit)
    result = state.result
    groups: dict[str, float] = {}
    for group in result.get("groups") or ():
        raw = group.get("group")
        name = raw if type(raw) is str else "" if raw is None else str(raw)
        value = group.get("value") or (0,)
        groups[name] = float(value[0])
    compared = compared_run(comparable_history(state), state.fetched_at, spec.reading, spec.limit)
    found = compared.found and compared.total is not None and compared.groups is not None
    return Numbers(
        total=float(result.get("total") or 0),
        groups=groups,
        limit=spec.limit,
        compared_total=compared.total if found else None,
        compared_groups=compared.groups if found else None,
    )


def report_results(
    report: ReportSpec, aggregations: Mapping[str, AggregationState]
) -> tuple[CheckResult, ...]:
    """Every check of ``report`` (each aggregation's, per ``for_each`` key, then the
    report's), evaluated from state; () at no cost when it has none."""
    if not report.has_checks:
        return ()
    file = str(report.path)
    results: list[CheckResult] = []
    every: dict[str, Any] = {}
    report_defaults = checks_defaults(report.checks)
    for spec in report.aggregations:
        own = spec.checks
        defaults = checks_defaults(own, spec.groups) | report_defaults
        variables = aggregation_variables(numbers(spec, aggregations.get(spec.address)), defaults)
        if spec.key is None:
            every[spec.aggregation_id] = variables
        else:
            every.setdefault(spec.aggregation_id, {})[spec.key] = variables
        if own:
            results += evaluate(own, variables, report=report.name, address=spec.address, file=file)
    if report.checks:
        own_results = evaluate(
            report.checks,
            {"aggregations": every},
            report=report.name,
            address=report.name,
            file=file,
        )
        missing = [s.address for s in report.aggregations if aggregations.get(s.address) is None]
        if missing:  # (an unfetched aggregation reads as null: say which, not a CEL error)
            note = f"not fetched yet: {', '.join(missing)}"
            own_results = [r if r.passed else replace(r, error=note) for r in own_results]
        results += own_results
    return tuple(results)


def _entry(result: CheckResult) -> dict[str, Any]:
    """A check as a page shows it (docs/templates.md, ``checks``)."""
    return {
        "name": result.name,
        "address": result.address,
        "report": result.report,
        "severity": result.severity,
        "assertion": result.assertion,
        "message": result.message,
        "passed": result.passed,
        "status": "pass" if result.passed else ("fail" if result.severity == "error" else "warn"),
        "values": values_text(result.values),
        "error": result.error,
    }


def failing_first(results: Iterable[CheckResult]) -> list[CheckResult]:
    """Failing error checks, then failing warnings, then passing ones (stable within)."""
    return sorted(results, key=lambda r: (r.passed, r.severity != "error"))


def page_checks(results: Sequence[CheckResult]) -> dict[str, Any] | None:
    """A report page's ``checks``: every result (failing first) and the counts; None
    when the report has no checks."""
    if not results:
        return None
    failed = [r for r in results if not r.passed]
    return {
        "results": [_entry(r) for r in failing_first(results)],
        "total": len(results),
        "passed": len(results) - len(failed),
        "failed": sum(1 for r in failed if r.severity == "error"),
        "warned": sum(1 for r in failed if r.severity != "error"),
    }


def index_checks(
    results: Sequence[CheckResult], links: Mapping[str, tuple[str, str]]
) -> dict[str, Any]:
    """The index's ``checks``: every failing check of every report (errors first), each
    with ``link_html`` and ``link_md`` to its report's page (``links``: report name ->
    both)."""
    failing = failing_first(r for r in results if not r.passed)
    entries = [
        {**_entry(r), "link_html": links[r.report][0], "link_md": links[r.report][1]}
        for r in failing
    ]
    return {"failing": entries, "total": len(results), "failed": len(failing)}


def data_checks(results: Sequence[CheckResult]) -> list[dict[str, Any]]:
    """A data file's ``checks`` (docs/data-files.md), in definition order."""
    return [
        {
            "address": r.address,
            "name": r.name,
            "severity": r.severity,
            "assert": r.assertion,
            "message": r.message,
            "passed": r.passed,
            "values": dict(r.values),
            "error": r.error,
        }
        for r in results
    ]
