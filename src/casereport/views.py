"""Views of a plan: for people at a terminal, for a pull-request comment, for machines.

Views only read the ``Plan``; nothing here decides anything.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable
from typing import Any

from casereport.plan import (
    CREATE,
    DELETE,
    NOOP,
    REFRESH,
    RENDER,
    REPLACE,
    UPDATE,
    AggregationChange,
    Plan,
    ReportChange,
)

SYMBOLS = {CREATE: "+", UPDATE: "~", REFRESH: "↻", REPLACE: "-/+", DELETE: "-", RENDER: "~"}
_COLOURS = {CREATE: "32", UPDATE: "33", REFRESH: "36", REPLACE: "35", DELETE: "31", RENDER: "33"}
_VERBS = {
    CREATE: "fetched (new)",
    UPDATE: "fetched again",
    REPLACE: "replaced",
    DELETE: "removed from state",
}


def use_colour(stream_is_tty: bool) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    return stream_is_tty and not os.environ.get("NO_COLOR")


def _painter(colour: bool) -> Callable[[str, str], str]:
    if not colour:
        return lambda text, action: text
    return lambda text, action: f"\x1b[{_COLOURS.get(action, '0')}m{text}\x1b[0m"


def _value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _aggregation_block(change: AggregationChange, paint: Callable[[str, str], str]) -> list[str]:
    symbol = paint(SYMBOLS[change.action], change.action)
    header = f"  # {change.address} will be {_VERBS[change.action]}"
    if change.action in (UPDATE, REPLACE):
        header += f": {change.reason}"
    if change.action == DELETE:
        return [f"{header} ({change.reason})", f"  {symbol} aggregation {_value(change.address)}"]
    lines = [header, f"  {symbol} aggregation {_value(change.address)} {{"]
    request = dict(change.request or {})
    if change.action == UPDATE:
        changed = {c.name for c in change.changes}
        for field in change.changes:
            tilde = paint("~", UPDATE)
            lines.append(
                f"      {tilde} {field.name:<12} = {_value(field.old)} -> {_value(field.new)}"
            )
        hidden = len([k for k in request if k not in changed])
        if hidden:
            lines.append(f"        # ({hidden} unchanged fields hidden)")
    else:
        fields = {"title": change.title, **request}
        plus = paint("+", CREATE) if change.action == CREATE else " "
        for name, value in fields.items():
            lines.append(f"      {plus} {name:<12} = {_value(value)}")
    lines.append("    }")
    return lines


def _report_line(change: ReportChange, paint: Callable[[str, str], str], kind: str) -> list[str]:
    symbol = paint(SYMBOLS[change.action], change.action)
    if change.action == DELETE:
        files = ", ".join(change.outputs) or "no files"
        return [
            f"  # {kind} {_value(change.name)} will be deleted ({'; '.join(change.reasons)})",
            f"  {symbol} {kind} {_value(change.name)}: removes {files}",
        ]
    return [
        f"  # {kind} {_value(change.name)} will be rendered: {'; '.join(change.reasons)}",
        f"  {symbol} {kind} {_value(change.name)}: writes {', '.join(change.outputs)}",
    ]


def render_human(plan: Plan, *, colour: bool = False) -> str:
    """Terraform-like text: changes only, unchanged items counted, then the summary line."""
    paint = _painter(colour)
    lines: list[str] = []
    if not plan.has_changes:
        return f"Source: {plan.source.describe()}\n\n{plan.summary()}\n"
    lines.append(f"Source: {plan.source.describe()}")
    if plan.targets:
        lines.append(f"Targeting only: {', '.join(plan.targets)} (other changes are not shown)")
    lines += ["", "casereport will perform the following actions:", ""]
    stale: list[AggregationChange] = []
    for change in plan.aggregations:
        if change.action == REFRESH:
            stale.append(change)
        elif change.action != NOOP:
            lines += _aggregation_block(change, paint)
            lines.append("")
    if stale:
        by_report = Counter(change.report for change in stale)
        detail = ", ".join(f"{name}: {count}" for name, count in sorted(by_report.items()))
        reasons = sorted({change.reason for change in stale})
        why = reasons[0] if len(reasons) == 1 else f"{len(reasons)} different reasons"
        lines += [
            f"  {paint(SYMBOLS[REFRESH], REFRESH)} {len(stale)} stale "
            f"{'result' if len(stale) == 1 else 'results'} will be refreshed ({detail}; {why})",
            "",
        ]
    for report in plan.reports:
        if report.action != NOOP:
            lines += [*_report_line(report, paint, "report"), ""]
    if plan.index.action != NOOP:
        lines += [*_report_line(plan.index, paint, "site"), ""]
    unchanged_aggregations = sum(1 for c in plan.aggregations if c.action == NOOP)
    unchanged_reports = sum(1 for r in plan.reports if r.action == NOOP)
    if unchanged_aggregations or unchanged_reports:
        lines += [
            f"Unchanged: {unchanged_aggregations} aggregations, {unchanged_reports} reports.",
            "",
        ]
    lines.append(plan.summary())
    return "\n".join(lines) + "\n"


def render_json(plan: Plan) -> str:
    """The versioned machine-readable plan."""
    return json.dumps(plan.to_json(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _md(text: str) -> str:
    return "`" + text.replace("`", "'").replace("|", "\\|") + "`"


def render_markdown(plan: Plan) -> str:
    """A concise plan for a pull-request comment (GitHub-flavoured Markdown)."""
    lines = ["### casereport plan", "", f"**{plan.summary()}**", ""]
    if not plan.has_changes:
        lines.append(f"Source: {plan.source.describe()}.")
        return "\n".join(lines) + "\n"
    listed = [c for c in plan.aggregations if c.action not in (NOOP, REFRESH)]
    if listed:
        lines += ["| | Aggregation | Change |", "|---|---|---|"]
        for change in listed:
            if change.action == UPDATE:
                what = "; ".join(
                    f"{c.name}: {_md(_value(c.old))} → {_md(_value(c.new))}" for c in change.changes
                )
            else:
                what = change.reason
            lines.append(f"| `{SYMBOLS[change.action]}` | {_md(change.address)} | {what} |")
        lines.append("")
    stale = [c for c in plan.aggregations if c.action == REFRESH]
    if stale:
        lines += [f"↻ {len(stale)} stale results will be refreshed.", ""]
    renders = [r for r in plan.reports if r.action == RENDER]
    if renders:
        lines.append(
            "Reports to render: "
            + ", ".join(f"{_md(r.name)} ({'; '.join(r.reasons)})" for r in renders)
            + "."
        )
    deletes = [r for r in plan.reports if r.action == DELETE]
    if deletes:
        lines.append("Reports to delete: " + ", ".join(_md(r.name) for r in deletes) + ".")
    lines += ["", f"Source: {plan.source.describe()}."]
    return "\n".join(lines) + "\n"
