"""``validate`` (and every command that loads a workspace) checks each ``assert`` offline.

Reported at the file, line and column of the ``assert`` string (the column of the problem
inside it where the CEL library gives one): syntax errors, names a check cannot read (with
"did you mean"), report-level ``aggregations["id"]`` naming no aggregation of the report,
and expressions that give something other than true or false. The last is found by
running the expression on sample numbers; an expression that fails only on some numbers
(a division by zero) is left to evaluation, which reports it then.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace
from typing import Any

from casereport.checks.evaluate import CEL_ERRORS
from casereport.checks.expressions import (
    AGGREGATION_NAMES,
    REPORT_NAMES,
    CelSyntaxError,
    compile_expression,
)
from casereport.definitions.expand import Expansion, ReportSpec
from casereport.definitions.models import CheckDefinition, Diagnostic, sort_diagnostics
from casereport.settings import did_you_mean

__all__ = ["check_diagnostics", "with_check_diagnostics"]

_AGGREGATION_KEY = re.compile(r"""aggregations\s*\[\s*(["'])((?:(?!\1)[^\\\n]|\\.)*)\1""")


def with_check_diagnostics(expansion: Expansion) -> Expansion:
    """``expansion`` with the diagnostics of every ``assert``; itself, at no cost (the CEL
    library not even imported), when no report has checks."""
    reports = expansion.every_report
    if not any(report.has_checks for report in reports):
        return expansion
    # Files with errors: their broken aggregations are left out of the reports here.
    partial = {d.file for d in expansion.diagnostics if d.severity == "error" and d.file}
    found = check_diagnostics(reports, partial=partial)
    if not found:
        return expansion
    return replace(expansion, diagnostics=sort_diagnostics([*expansion.diagnostics, *found]))


def check_diagnostics(
    reports: Iterable[ReportSpec], *, partial: Collection[str] = ()
) -> list[Diagnostic]:
    """A diagnostic per problem of every check of ``reports`` (once per ``assert``, not
    once per ``for_each`` key). In the reports of ``partial`` files (files with errors,
    whose broken aggregations are left out) a report-level check is checked for its
    syntax and names only: the aggregations it reads may be among those left out."""
    found: list[Diagnostic] = []
    for report in reports:
        file = str(report.path)
        seen: set[tuple[int, int]] = set()
        for spec in report.aggregations:
            for check in spec.checks:
                if (check.line, check.column) not in seen:
                    seen.add((check.line, check.column))
                    sample = _sample(spec.limit)
                    found += _problems(check, file, AGGREGATION_NAMES, sample)
        if report.checks:
            ids = _sample_aggregations(report)
            for check in report.checks:
                if file in partial:
                    found += _problems(check, file, REPORT_NAMES, None)
                    continue
                # (an unknown id first: the sample run would only say "no key")
                unknown = _unknown_ids(check, file, ids)
                found += unknown or _problems(check, file, REPORT_NAMES, {"aggregations": ids})
    return found


def _sample(limit: int, keys: Iterable[str] = ()) -> dict[str, Any]:
    groups = dict.fromkeys(keys, 1)
    return {
        "total": 1,
        "groups": groups,
        "compared": {"total": 1, "groups": groups},
        "change": 0,
        "change_ratio": 0.0,
        "limit": limit,
    }


def _sample_aggregations(report: ReportSpec) -> dict[str, Any]:
    ids: dict[str, Any] = {}
    for spec in report.aggregations:
        if spec.key is None:
            ids[spec.aggregation_id] = _sample(spec.limit)
        else:
            ids.setdefault(spec.aggregation_id, {})[spec.key] = _sample(spec.limit)
    return ids


def _problems(
    check: CheckDefinition, file: str, names: Sequence[str], sample: dict[str, Any] | None
) -> list[Diagnostic]:
    """Syntax and names, then (given a ``sample``) what a run on sample numbers shows."""
    source = check.assertion
    try:
        expression = compile_expression(source.value)
    except CelSyntaxError as exc:
        line, column = source.location_of(exc.offset)
        message = f'check "{check.name}": invalid assert: {exc.reason}'
        return [Diagnostic("error", message, file, line, column, source.value)]
    problems = []
    for name in sorted(expression.names - set(names)):
        line, column = source.location_of(expression.positions.get(name, 0))
        hint = did_you_mean(name, names) or f" (use {', '.join(names)})"
        message = f'check "{check.name}": unknown name "{name}" in assert{hint}'
        problems.append(Diagnostic("error", message, file, line, column, source.value))
    if problems or sample is None:
        return problems
    _fill_groups(sample, expression.literals)
    import cel

    try:
        outcome = expression.program.execute(cel.Context(variables=sample))
    except (KeyError, TypeError) as exc:  # the same on any numbers: the names' shapes
        message = f'check "{check.name}": {_shape_problem(exc)}'
        return [Diagnostic("error", message, file, source.line, source.column, source.value)]
    except CEL_ERRORS:
        return []  # (depends on the numbers, as a division by zero: evaluation says so)
    if isinstance(outcome, bool):
        return []
    kind = _KINDS.get(type(outcome), "a value")
    message = (
        f'check "{check.name}": assert must be true or false, but gives {kind} '
        "(compare it, as in total <= 50)"
    )
    return [Diagnostic("error", message, file, source.line, source.column, source.value)]


def _shape_problem(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return (
            f"assert reads a key that is not there: {exc} (a for_each aggregation is read "
            'per key: aggregations["id"]["key"].total)'
        )
    first = str(exc).split(". ", 1)[0].strip().rstrip(".")
    return f"assert cannot be evaluated: {first} (convert with double(x) or int(x))"


_KINDS = {
    int: "a number",
    float: "a number",
    str: "a string",
    bytes: "bytes",
    list: "a list",
    dict: "a map",
    type(None): "null",
}


def _fill_groups(sample: dict[str, Any], literals: Iterable[str]) -> None:
    """Every string the expression names as a group, in every sample ``groups`` map."""
    for value in sample.values():
        if isinstance(value, dict):
            if "groups" in value and isinstance(value["groups"], dict):
                value["groups"].update(dict.fromkeys(literals, 1))
            _fill_groups(value, literals)


def _unknown_ids(check: CheckDefinition, file: str, ids: dict[str, Any]) -> list[Diagnostic]:
    source = check.assertion
    problems = []
    for found in _AGGREGATION_KEY.finditer(source.value):
        name = found.group(2)
        if name in ids:
            continue
        line, column = source.location_of(found.start(2) - 1)
        hint = did_you_mean(name, ids) or f" (this report's: {', '.join(ids)})"
        message = f'check "{check.name}": no aggregation "{name}" in this report{hint}'
        problems.append(Diagnostic("error", message, file, line, column, source.value))
    return problems
