"""Checks over a whole workspace, from state: what ``apply``, ``render`` and ``casereport
check`` evaluate (never calling the API), and the exit decision they share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from casereport.checks.results import CheckResult
from casereport.engine.workspace import Notice, Options, Workspace, load_workspace
from casereport.errors import CaseReportError, UsageError
from casereport.state import journal
from casereport.state.model import State

__all__ = [
    "CheckRun",
    "OnChecks",
    "has_checks",
    "run_check",
    "tell_checks",
    "workspace_results",
]

#: What apply and render hand their evaluated checks to (the CLI prints them).
OnChecks = Callable[[Sequence[CheckResult], Workspace], None]


def has_checks(workspace: Workspace) -> bool:
    """True when any report of the workspace has ``checks:``."""
    return any(report.has_checks for report in workspace.reports)


def workspace_results(workspace: Workspace, state: State | None) -> tuple[CheckResult, ...]:
    """Every check of every report (in report order), evaluated from ``state``; () without
    checks, without importing the CEL library."""
    if not has_checks(workspace):
        return ()
    from casereport.render.checks_view import report_results

    aggregations = state.aggregations if state is not None else {}
    return tuple(r for report in workspace.reports for r in report_results(report, aggregations))


def tell_checks(
    workspace: Workspace,
    state: State | None,
    listener: Callable[[Any], None],
    on_checks: OnChecks | None,
) -> tuple[CheckResult, ...]:
    """The end of an apply or render: every check evaluated from ``state``, each told to
    ``listener`` as a ``Check`` event (``apply --json``), all handed to ``on_checks``."""
    if not has_checks(workspace):
        return ()
    from casereport.engine.events import Check

    results = workspace_results(workspace, state)
    for result in results:
        listener(Check.of(result))
    if on_checks is not None:
        on_checks(results, workspace)
    return results


@dataclass(frozen=True)
class CheckRun:
    """What ``casereport check`` evaluated, and the settings it read."""

    results: tuple[CheckResult, ...]
    workspace: Workspace

    @property
    def failed(self) -> bool:
        """True when an error-severity check failed (exit 1)."""
        return any(r.blocking for r in self.results)


def run_check(
    options: Options, *, targets: Sequence[str] = (), notice: Notice | None = None
) -> CheckRun:
    """``casereport check``: load the workspace, read its state (no lock: nothing is
    written) and evaluate every check, or those of ``targets`` (report names or
    aggregation addresses)."""
    workspace = load_workspace(options, notice)
    state = journal.load_with_journal(workspace.state_path)
    if state is None:
        raise CaseReportError(
            f"no state at {workspace.state_path}: nothing to check yet; run `casereport apply`"
        )
    results = workspace_results(workspace, state)
    if targets:
        files = {r.name: r.path for r in workspace.reports}
        checked = {r.report for r in results}
        addresses = {r.address for r in results} | set(files)
        for target in targets:
            if target not in addresses:
                raise UsageError(
                    f"--target {target}: no report or checked aggregation has this address "
                    "(see the report files' checks:)"
                )
            if target in files and target not in checked:
                # Passing with nothing checked would let a CI gate on it pass unnoticed.
                raise UsageError(
                    f"--target {target}: the report has no checks; add checks: to "
                    f"{files[target]} (docs/checks.md)"
                )
        results = tuple(r for r in results if r.report in targets or r.address in targets)
    return CheckRun(results, workspace)
