"""Evaluated checks written for people and for CI: a summary, JSON, JUnit XML, and GitHub
Actions annotations with a step summary.

All of them read only ``CheckResult`` values (evaluated from state elsewhere), in the order
given; none depends on the clock, so the same state gives the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from xml.etree import ElementTree

from casereport.checks.results import CheckResult

__all__ = [
    "CHECKS_FORMAT_VERSION",
    "annotation_lines",
    "counts_line",
    "every_line",
    "failure_lines",
    "junit_xml",
    "results_json",
    "step_summary",
    "values_text",
]

#: The version of ``casereport check --json`` (docs/checks.md).
CHECKS_FORMAT_VERSION = 1


def values_text(values: Mapping[str, Any]) -> str:
    """The values a check saw, as a line: ``total = 52, groups["P1"] = 0``."""
    return ", ".join(f"{name} = {_value(value)}" for name, value in values.items())


def _value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _where(result: CheckResult) -> str:
    if result.file is None:
        return ""
    return ":".join(str(p) for p in (result.file, result.line, result.column) if p is not None)


def _what(result: CheckResult) -> str:
    """``backlog on support.by_status`` (a report-level check: its name alone)."""
    on = "" if result.address == result.report else f" on {result.address}"
    return f"{result.name}{on}"


def _why(result: CheckResult) -> str:
    """``total <= 50 (saw total = 52): Backlog too big``."""
    saw = values_text(result.values)
    detail = "; ".join(part for part in (f"saw {saw}" if saw else "", result.error or "") if part)
    text = result.assertion.strip().replace("\n", " ")
    return (
        text
        + (f" ({detail})" if detail else "")
        + (f": {result.message}" if result.message else "")
    )


def counts_line(results: Sequence[CheckResult]) -> str:
    """``Checks: 6 of 8 passed, 1 failed, 1 warning.``"""
    failed = sum(1 for r in results if r.blocking)
    warned = sum(1 for r in results if not r.passed and not r.blocking)
    passed = len(results) - failed - warned
    line = f"Checks: {passed} of {len(results)} passed"
    if failed:
        line += f", {failed} failed"
    if warned:
        line += f", {warned} {'warning' if warned == 1 else 'warnings'}"
    return line + "."


def _line(result: CheckResult) -> str:
    label = "PASS" if result.passed else "FAIL" if result.blocking else "WARN"
    where = _where(result)
    return f"{label} {_what(result)}: {_why(result)}" + (f" [{where}]" if where else "")


def failure_lines(results: Sequence[CheckResult]) -> list[str]:
    """One line per failing check, errors first: what, why and where."""
    return [_line(r) for r in sorted((r for r in results if not r.passed), key=_failing_order)]


def every_line(results: Sequence[CheckResult]) -> list[str]:
    """One line per check, in definition order (``PASS``, ``FAIL`` or ``WARN`` first)."""
    return [_line(r) for r in results]


def _failing_order(result: CheckResult) -> bool:
    return not result.blocking


def results_json(results: Sequence[CheckResult]) -> str:
    """``casereport check --json``: ``{format_version, passed, counts, checks}``."""
    failed = sum(1 for r in results if r.blocking)
    warned = sum(1 for r in results if not r.passed and not r.blocking)
    document = {
        "format_version": CHECKS_FORMAT_VERSION,
        "passed": failed == 0,
        "counts": {
            "total": len(results),
            "passed": len(results) - failed - warned,
            "failed": failed,
            "warned": warned,
        },
        "checks": [r.as_json() for r in results],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def junit_xml(results: Sequence[CheckResult]) -> str:
    """JUnit XML as Jenkins, GitLab and GitHub test reporters read it: a ``testsuite`` per
    report, a ``testcase`` per check (``classname``: the address checked). A failing error
    check is a ``failure``; a failing warning passes, with the warning in ``system-out``."""
    by_report: dict[str, list[CheckResult]] = {}
    for result in results:
        by_report.setdefault(result.report, []).append(result)
    root = ElementTree.Element(
        "testsuites",
        name="casereport checks",
        tests=str(len(results)),
        failures=str(sum(1 for r in results if r.blocking)),
        errors="0",
        time="0",
    )
    for report, own in by_report.items():
        suite = ElementTree.SubElement(
            root,
            "testsuite",
            name=report,
            tests=str(len(own)),
            failures=str(sum(1 for r in own if r.blocking)),
            errors="0",
            skipped="0",
            time="0",
        )
        if own[0].file is not None:
            suite.set("file", own[0].file)
        for result in own:
            case = ElementTree.SubElement(
                suite, "testcase", name=result.name, classname=result.address, time="0"
            )
            text = f"{_why(result)}" + (f" [{_where(result)}]" if _where(result) else "")
            if result.blocking:
                failure = ElementTree.SubElement(
                    case, "failure", type="check", message=result.message or result.assertion
                )
                failure.text = text
            elif not result.passed:
                ElementTree.SubElement(case, "system-out").text = f"warning: {text}"
    ElementTree.indent(root)
    body = ElementTree.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'


def _escape_data(text: str) -> str:
    """A workflow command's message, escaped as the runner reads it."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation_lines(results: Sequence[CheckResult]) -> list[str]:
    """A GitHub Actions workflow command per failing check: ``::error file=…,line=…,col=…,
    title=…::message`` (a warning: ``::warning``), so each shows at its line in the diff."""
    lines = []
    for result in results:
        if result.passed:
            continue
        level = "error" if result.blocking else "warning"
        props = []
        if result.file is not None:
            props.append(f"file={_escape_property(result.file)}")
            if result.line is not None:
                props.append(f"line={result.line}")
            if result.column is not None:
                props.append(f"col={result.column}")
        props.append(f"title={_escape_property(f'check {_what(result)} failed')}")
        lines.append(f"::{level} {','.join(props)}::{_escape_data(_why(result))}")
    return lines


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ") or " "


def step_summary(results: Sequence[CheckResult]) -> str:
    """A Markdown summary for ``$GITHUB_STEP_SUMMARY``: the counts, then a table of the
    failing checks (errors first)."""
    lines = ["### casereport checks", "", counts_line(results)]
    failing = sorted((r for r in results if not r.passed), key=lambda r: not r.blocking)
    if failing:
        lines += ["", "| Status | Check | Assertion | Saw | Message |", "|---|---|---|---|---|"]
        for r in failing:
            saw = values_text(r.values) + (f" ({r.error})" if r.error else "")
            lines.append(
                f"| {'❌ fail' if r.blocking else '⚠️ warn'} | {_cell(_what(r))} | "
                f"`{_cell(r.assertion.strip())}` | {_cell(saw)} | {_cell(r.message)} |"
            )
    return "\n".join(lines) + "\n"
