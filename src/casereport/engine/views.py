"""Views of a plan: for people at a terminal, for a pull-request comment, for machines.

Views only read the ``Plan``; nothing here decides anything, and every count comes from
``Plan.counts()``, so the three views always agree.

The human view reads like ``terraform plan``: one block per change, the symbol in a
three-column gutter (``+`` create, ``~`` update, ``↻`` refresh, ``-/+`` replace, ``-``
delete, ``~>`` a result moved to a new address; a report rendered for the first time is
``+``, a re-render ``~``), stale results
counted per report rather than listed, unchanged items counted, then the summary line.
It escapes every value it shows (names, titles, queries, reasons, file names and sources
come from report files, state and plans) with ``casereport.terminal.escape``, so that its
own colour is the only control sequence in it.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from casereport import terminal
from casereport.engine.plan import (
    CREATE,
    DELETE,
    NOOP,
    REFRESH,
    RENDER,
    REPLACE,
    UPDATE,
    AggregationChange,
    Plan,
    PlanCounts,
    ReportChange,
)
from casereport.errors import PlanError
from casereport.numbers import count_of, format_number
from casereport.terminal import escape

SYMBOLS = {CREATE: "+", UPDATE: "~", REFRESH: "↻", REPLACE: "-/+", DELETE: "-", RENDER: "~"}
MOVE_SYMBOL = "~>"
_COLOURS = {CREATE: "32", UPDATE: "33", REFRESH: "36", REPLACE: "35", DELETE: "31", RENDER: "33"}
_BOLD = "1"
_HEADERS = {
    CREATE: "will be created",
    UPDATE: "will be updated",
    REPLACE: "must be replaced",
    DELETE: "will be deleted",
}
# Markdown tables fold into <details> past this many rows, to keep a PR comment short.
MARKDOWN_FOLD_ROWS = 20

Paint = Callable[[str, str], str]


def use_colour(stream_is_tty: bool) -> bool:
    """Colour only on a terminal, never with --no-color, NO_COLOR or TERM=dumb."""
    return terminal.use_colour(stream_is_tty)


def _painter(colour: bool) -> Paint:
    """``paint(text, style)``: the text in an action's colour (or bold), or as is."""
    if not colour:
        return lambda text, action: text

    def paint(text: str, style: str) -> str:
        return f"\x1b[{_COLOURS.get(style, style)}m{text}\x1b[0m"

    return paint


def _value(value: Any) -> str:
    return escape(json.dumps(value, ensure_ascii=False))  # (JSON leaves DEL and C1 raw)


def _plural(count: int, word: str) -> str:
    return count_of(count, word)


def _unchanged(counts: PlanCounts) -> str | None:
    if not (counts.unchanged_aggregations or counts.unchanged_reports):
        return None
    return (
        f"Unchanged: {_plural(counts.unchanged_aggregations, 'aggregation')}, "
        f"{_plural(counts.unchanged_reports, 'report')}."
    )


# -- human ----------------------------------------------------------------------------


def _gutter(symbol: str, action: str, paint: Paint) -> str:
    """The symbol right-aligned in three columns, as Terraform does (``  +``, ``-/+``)."""
    return " " * (3 - len(symbol)) + paint(symbol, action)


def _field_line(marker: str, name: str, value: str) -> str:
    return f"      {marker} {escape(name):<12} = {value}"


def _aggregation_block(change: AggregationChange, paint: Paint) -> list[str]:
    address = escape(change.address)
    header = f"  # {address} {_HEADERS[change.action]}"
    if change.action != CREATE:
        header += f": {escape(change.reason)}"
    lines = [paint(header, _BOLD)]
    opening = f"{_gutter(SYMBOLS[change.action], change.action, paint)} aggregation {address}"
    if change.action == DELETE or (change.action == REPLACE and not change.changes):
        return [*lines, opening]
    lines.append(opening + " {")
    if change.action == CREATE:
        plus = paint("+", CREATE)
        fields = {"title": change.title, **(change.request or {})}
        lines += [_field_line(plus, name, _value(value)) for name, value in fields.items()]
    else:
        tilde = paint("~", UPDATE)
        lines += [
            _field_line(tilde, c.name, f"{_value(c.old)} -> {_value(c.new)}")
            for c in change.changes
        ]
        changed = {c.name for c in change.changes}
        hidden = sum(1 for name in change.request or {} if name not in changed)
        if hidden:
            lines.append(f"        # ({_plural(hidden, 'unchanged field')} hidden)")
    lines.append("    }")
    return lines


def _move_block(change: AggregationChange, paint: Paint) -> list[str]:
    """A result kept under a new address (``moved:``), before any action on it."""
    old, new = escape(change.moved_from or ""), escape(change.address)
    return [
        paint(f"  # {old} has moved to {new}", _BOLD),
        f"{_gutter(MOVE_SYMBOL, UPDATE, paint)} {old} moved to {new}",
    ]


def _stale_block(stale: list[AggregationChange], paint: Paint) -> list[str]:
    """Stale results counted per report and reason, not listed one by one."""
    groups = Counter((change.report, change.reason) for change in stale)
    counted = count_of(len(stale), "stale result")
    lines = [f"{_gutter(SYMBOLS[REFRESH], REFRESH, paint)} {counted} to refresh:"]
    lines += [
        f"      {escape(report)}: {format_number(count)} ({escape(reason)})"
        for (report, reason), count in sorted(groups.items())
    ]
    return lines


def _report_block(change: ReportChange, paint: Paint, *, index: bool = False) -> list[str]:
    label = "site index" if index else f"report {escape(change.name)}"
    name = f"the {label}" if index else label
    files = escape(", ".join(change.outputs)) or "no files"
    reasons = escape(", ".join(change.reasons))
    if change.action == DELETE:
        header = f"  # {name} will be deleted: {reasons}"
        body = f"{_gutter(SYMBOLS[DELETE], DELETE, paint)} {label}: removes {files}"
    elif change.new:
        header = f"  # {name} will be created"
        body = f"{_gutter(SYMBOLS[CREATE], CREATE, paint)} {label}: writes {files}"
    else:
        header = f"  # {name} will be re-rendered: {reasons}"
        body = f"{_gutter(SYMBOLS[RENDER], RENDER, paint)} {label}: writes {files}"
    return [paint(header, _BOLD), body]


def render_human(plan: Plan, *, colour: bool = False) -> str:
    """Terraform-like text: changes only, unchanged items counted, then the summary line."""
    paint = _painter(colour)
    lines = [f"Source: {escape(plan.source.describe())}"]
    if plan.previous_source is not None:
        lines.append(
            f"The data source changed (was {escape(plan.previous_source.describe())}): "
            f"{plan.source_note()}"
        )
    if plan.targets:
        targets = escape(", ".join(plan.targets))
        lines.append(f"Targeting only: {targets} (other changes are not shown).")
    if not plan.has_changes:
        return "\n".join([*lines, "", plan.summary()]) + "\n"
    lines += ["", "casereport will perform the following actions:", ""]
    stale = [c for c in plan.aggregations if c.action == REFRESH]
    for change in plan.aggregations:
        if change.moved_from is not None:
            lines += [*_move_block(change, paint), ""]
        if change.action not in (NOOP, REFRESH):
            lines += [*_aggregation_block(change, paint), ""]
    if stale:
        lines += [*_stale_block(stale, paint), ""]
    for report in plan.reports:
        if report.action != NOOP:
            lines += [*_report_block(report, paint), ""]
    if plan.index.action != NOOP:
        lines += [*_report_block(plan.index, paint, index=True), ""]
    unchanged = _unchanged(plan.counts())
    if unchanged is not None:
        lines += [unchanged, ""]
    lines.append(paint(plan.summary(), _BOLD))
    return "\n".join(lines) + "\n"


# -- JSON -----------------------------------------------------------------------------


def render_json(plan: Plan) -> str:
    """The versioned machine-readable plan, keys in ``Plan.to_json``'s fixed order."""
    return json.dumps(plan.to_json(), indent=2, ensure_ascii=False) + "\n"


# -- Markdown -------------------------------------------------------------------------


def _cell(text: str) -> str:
    """Plain text safe in a GitHub table cell: no pipe, newline or HTML-looking text."""
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
    return text.replace("<", "&lt;").replace(">", "&gt;")


def _code(text: str) -> str:
    """An inline code span for a table cell, whatever backticks or pipes ``text`` holds.

    The fence is one backtick longer than the longest run inside (CommonMark), padded with
    a space when the text starts or ends with a backtick; pipes are escaped for the table
    (GitHub unescapes ``\\|`` inside code spans in tables).
    """
    text = text.replace("\n", " ")
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text.replace('|', chr(92) + '|')}{pad}{fence}"


def _md_value(value: Any) -> str:
    if isinstance(value, list):
        return _code(", ".join(str(v) for v in value))
    if isinstance(value, str):
        return _code(value)
    return _code(_value(value))


def _md_request(request: Mapping[str, Any]) -> str:
    return (
        f"{_md_value(request.get('query_filter'))} by {_md_value(request.get('groups'))}, "
        f"limit {request.get('limit')}"
    )


def _md_aggregation(change: AggregationChange) -> str:
    fields = [f"{c.name} {_md_value(c.old)} → {_md_value(c.new)}" for c in change.changes]
    if change.action == CREATE:
        what = f"create: {_md_request(change.request or {})}"
    elif change.action == UPDATE and fields:
        what = "update: " + "; ".join(fields)
    else:
        what = "; ".join([f"{change.action}: {_cell(change.reason)}", *fields])
    return f"| `{SYMBOLS[change.action]}` | {_code(change.address)} | {what} |"


def _md_report(change: ReportChange, label: str) -> str:
    reasons = _cell(", ".join(change.reasons))
    if change.action == DELETE:
        files = ", ".join(_code(name) for name in change.outputs) or "no files"
        symbol, what = SYMBOLS[DELETE], f"delete ({reasons}): removes {files}"
    elif change.new:
        symbol, what = SYMBOLS[CREATE], "create"
    else:
        symbol, what = SYMBOLS[RENDER], f"render: {reasons}"
    return f"| `{symbol}` | {label} | {what} |"


def _md_table(header: str, rows: list[str], noun: str, total: int | None = None) -> list[str]:
    """A table of changes, folded when long; ``total`` counts rows left out too."""
    table = [f"| | {header} | Change |", "|---|---|---|", *rows]
    if len(rows) <= MARKDOWN_FOLD_ROWS:
        return [*table, ""]
    # GitHub renders Markdown inside <details> only after a blank line.
    counted = _plural(len(rows) if total is None else total, noun)
    if total is not None and total != len(rows):
        counted += f", {format_number(len(rows))} shown"
    summary = f"<details><summary>{counted}</summary>"
    return [summary, "", *table, "", "</details>", ""]


#: GitHub refuses a comment longer than this many characters.
GITHUB_COMMENT_LIMIT = 65_536


def render_markdown(
    plan: Plan, *, max_chars: int | None = GITHUB_COMMENT_LIMIT, warnings: Sequence[str] = ()
) -> str:
    """A concise plan for a pull-request comment (GitHub-flavoured Markdown), with the
    definitions' ``warnings`` (a query field typo) listed under the summary.

    Longer than ``max_chars`` (GitHub's limit by default; None for no limit), the tables
    keep as many rows as fit and a line counts the rest and points at the full plan.
    """
    text = _markdown(plan, None, max_chars, warnings)
    if max_chars is None or len(text) <= max_chars:
        return text
    low, high = 0, text.count("\n| ")  # the most table rows that fit, by bisection
    while low < high:
        middle = (low + high + 1) // 2
        if len(_markdown(plan, middle, max_chars, warnings)) <= max_chars:
            low = middle
        else:
            high = middle - 1
    shorter = _markdown(plan, low, max_chars, warnings)
    if len(shorter) > max_chars:
        raise PlanError(
            f"--max-chars {max_chars} is too small for even the plan's summary "
            f"({len(shorter)} characters without a table row); raise it"
        )
    return shorter


def _markdown(
    plan: Plan, keep: int | None, max_chars: int | None, warnings: Sequence[str] = ()
) -> str:
    """The Markdown plan with at most ``keep`` table rows (all with None); the note on
    rows left out names ``max_chars``."""
    counts = plan.counts()
    lines = ["### casereport plan", "", f"**{plan.summary()}**", ""]
    if warnings:  # in a code block: nothing in them is read as Markdown or HTML
        runs = [len(run) + 1 for run in re.findall("`+", "".join(warnings))]
        fence = "`" * max([3, *runs])
        lines += [f"{_plural(len(warnings), 'warning')}:", "", fence, *warnings, fence, ""]
    notes = [f"Source: {_cell(plan.source.describe())}."]
    if plan.previous_source is not None:
        notes.append(
            f"The data source changed (was {_cell(plan.previous_source.describe())}): "
            f"{plan.source_note()}"
        )
    if plan.targets:
        notes.append("Targeting only: " + ", ".join(_code(t) for t in plan.targets) + ".")
    if not plan.has_changes:
        return "\n".join([*lines, " ".join(notes)]) + "\n"
    rows = []
    for change in plan.aggregations:
        if change.moved_from is not None:
            moved = f"moved from {_code(change.moved_from)}, results and history kept"
            rows.append(f"| `{MOVE_SYMBOL}` | {_code(change.address)} | {moved} |")
        if change.action not in (NOOP, REFRESH):
            rows.append(_md_aggregation(change))
    left_out, all_rows = 0, len(rows)
    if keep is not None:
        left_out, rows = max(0, len(rows) - keep), rows[:keep]
        keep -= len(rows)
    if rows:
        lines += _md_table("Aggregation", rows, "aggregation change", all_rows)
    stale = Counter(c.report for c in plan.aggregations if c.action == REFRESH)
    if stale:
        per_report = ", ".join(
            f"{_code(name)}: {format_number(count)}" for name, count in sorted(stale.items())
        )
        lines += [
            f"`↻` {_plural(counts.stale, 'stale result')} to refresh ({per_report}).",
            "",
        ]
    report_rows = [_md_report(r, _code(r.name)) for r in plan.reports if r.action != NOOP]
    index = plan.index
    # The index follows report changes; it gets a row only for reasons of its own.
    if index.action != NOOP and (not report_rows or set(index.reasons) != {"reports changed"}):
        report_rows.append(_md_report(index, "site index"))
    all_reports = len(report_rows)
    if keep is not None:
        left_out, report_rows = left_out + max(0, len(report_rows) - keep), report_rows[:keep]
    if report_rows:
        lines += _md_table("Report", report_rows, "report change", all_reports)
    if left_out:
        lines += [
            f"_{_plural(left_out, 'more change')} not shown: this comment holds at most "
            f"{max_chars or 0:,} characters. The full plan: `casereport plan`, or the plan "
            "uploaded with this run._",
            "",
        ]
    unchanged = _unchanged(counts)
    if unchanged is not None:
        notes.insert(0, unchanged)
    return "\n".join([*lines, " ".join(notes)]) + "\n"
