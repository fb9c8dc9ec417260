"""Evaluate checks over an aggregation's numbers, or a report's (``aggregations``).

The numbers come from state through the caller (``casereport.render.checks_view`` picks the
compared run exactly as the page does); nothing here calls the API.

What an aggregation's checks read (docs/checks.md):

- ``total``: its total; ``groups``: raw group value -> count, where a group of several
  fields is named by its values joined with " / " in ``group_by`` order (``"OPEN / P1"``,
  as the data files name it);
- ``compared``: ``{total, groups}`` of the run ``compare:`` selects, or null;
- ``change`` (``total - compared.total``) and ``change_ratio`` (``change /
  compared.total``), null without a compared run (``change_ratio`` also when it had 0);
- ``limit``.

A missing group reads as 0: CEL maps have no default, so every ``groups`` map holds, beside
the groups the run recorded, each string the check's text names (``groups["P1"]``) and each
known value of its field (``priority``: P1..P5, NOT_DEFINED) at 0. A report's checks read
``aggregations["id"]`` (``aggregations["id"]["key"]`` for ``for_each``), each holding the
names above.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from casereport.checks.expressions import (
    CelSyntaxError,
    Expression,
    compile_expression,
)
from casereport.checks.results import CheckResult
from casereport.definitions.models import CheckDefinition
from casereport.definitions.reading import ENUM_ORDERS

__all__ = [
    "CEL_ERRORS",
    "Numbers",
    "aggregation_variables",
    "checks_defaults",
    "evaluate",
    "known_groups",
]

_NOTHING: Mapping[str, float] = {}
#: What the CEL library raises for an expression it cannot evaluate on these numbers (a
#: division by zero, a null compared, a missing key): the check fails, saying why.
CEL_ERRORS = (ArithmeticError, LookupError, TypeError, ValueError, RuntimeError)


@dataclass(frozen=True, slots=True)
class Numbers:
    """An aggregation's numbers as its checks see them; ``total`` None: not fetched yet."""

    total: float | None
    groups: Mapping[str, float]
    limit: int
    compared_total: float | None = None
    compared_groups: Mapping[str, float] | None = None  # None: no compared run


def known_groups(fields: Sequence[str]) -> tuple[str, ...]:
    """The values a one-field ``group_by`` is known to take (``priority``: P1..P5, ...)."""
    return ENUM_ORDERS.get(fields[0], ()) if len(fields) == 1 else ()


def _number(value: float) -> float | int:
    """A count as CEL should see it: an int when whole (``total <= 50``, ``== 0``)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _groups(recorded: Mapping[str, float], defaults: Iterable[str]) -> dict[str, float | int]:
    groups: dict[str, float | int] = dict.fromkeys(defaults, 0)
    for name, count in recorded.items():
        groups[name] = _number(count)
    return groups


def aggregation_variables(numbers: Numbers, defaults: Iterable[str]) -> dict[str, Any] | None:
    """The names an aggregation's checks read, or None when it has no result yet;
    ``defaults``: group values that read as 0 when absent."""
    if numbers.total is None:
        return None
    defaults = tuple(defaults)
    total = _number(numbers.total)
    compared: dict[str, Any] | None = None
    change: float | int | None = None
    ratio: float | None = None
    if numbers.compared_total is not None and numbers.compared_groups is not None:
        before = _number(numbers.compared_total)
        compared = {"total": before, "groups": _groups(numbers.compared_groups, defaults)}
        change = total - before
        ratio = change / before if before else None
    return {
        "total": total,
        "groups": _groups(numbers.groups, defaults),
        "compared": compared,
        "change": change,
        "change_ratio": None if ratio is None else float(ratio),
        "limit": numbers.limit,
    }


def _seen(expression: Expression, variables: Mapping[str, Any]) -> dict[str, Any]:
    """The values ``expression`` reads, by path (``groups["P1"]``): scalars and nulls."""
    seen: dict[str, Any] = {}
    for path in expression.paths:
        if path.root not in variables or path.text in seen:
            continue
        value: Any = variables[path.root]
        for step in path.steps:
            if not isinstance(value, dict) or step not in value:
                value = _NOTHING
                break
            value = value[step]
        if value is None or isinstance(value, bool | int | float | str):
            seen[path.text] = value
    return seen


def _failure(exc: Exception, seen: Mapping[str, Any]) -> str:
    """One line on why a check could not be evaluated."""
    nulls = [name for name, value in seen.items() if value is None]
    if nulls:
        return (
            f"{', '.join(nulls)} is null: there is no compared run yet (write "
            f"`{nulls[0]} == null || ...` to pass without one)"
        )
    if isinstance(exc, KeyError):
        return f"no such key: {exc}"
    if isinstance(exc, ZeroDivisionError):
        return "division by zero"
    first = str(exc).split(". ", 1)[0].strip().rstrip(".")
    return first or type(exc).__name__


def evaluate(
    checks: Sequence[CheckDefinition],
    variables: Mapping[str, Any] | None,
    *,
    report: str,
    address: str,
    file: str,
    missing: str = "not fetched yet",
) -> list[CheckResult]:
    """Each check run against ``variables`` (None: no data, every check fails with
    ``missing``). ``variables`` must already hold the groups the checks name (see
    ``checks_defaults``)."""
    import cel

    context = None if variables is None else cel.Context(variables=dict(variables))
    results = []
    for check in checks:
        where = check.assertion
        line, column = where.line, where.column
        common: dict[str, Any] = {
            "report": report,
            "address": address,
            "name": check.name,
            "severity": check.severity,
            "assertion": where.value,
            "message": check.message,
            "file": file,
            "line": line,
            "column": column,
        }
        if variables is None or context is None:
            results.append(CheckResult(**common, passed=False, error=f"{address} {missing}"))
            continue
        try:
            expression = compile_expression(where.value)
        except CelSyntaxError as exc:
            results.append(CheckResult(**common, passed=False, error=exc.reason))
            continue
        seen = _seen(expression, variables)
        try:
            outcome = expression.program.execute(context)
        except CEL_ERRORS as exc:
            results.append(
                CheckResult(**common, passed=False, values=seen, error=_failure(exc, seen))
            )
            continue
        if not isinstance(outcome, bool):
            error = f"assert gave {outcome!r}, not true or false"
            results.append(CheckResult(**common, passed=False, values=seen, error=error))
            continue
        results.append(CheckResult(**common, passed=outcome, values=seen))
    return results


def checks_defaults(checks: Iterable[CheckDefinition], fields: Sequence[str] = ()) -> set[str]:
    """The group values that must read as 0 when absent for ``checks``: every string their
    text names, and the known values of a one-field ``group_by``."""
    defaults = set(known_groups(fields)) if fields else set()
    for check in checks:
        try:
            defaults |= compile_expression(check.assertion.value).literals
        except CelSyntaxError:
            continue
    return defaults
