"""What ``apply`` and ``render`` show of their events (``casereport.engine.events``).

Two views of the same events. For a person (``HumanView``): nothing while it works but a
progress bar on a terminal, or a progress line every ten seconds in a log
(``engine.progress``), then the summary line, and each failure on stderr. For a program
(``JsonView``, ``--json``): one JSON object per line on stdout and nothing else there,
first a ``version`` event, last a ``summary`` (also when an error stops the run; the error
line itself still goes to stderr, and the exit code is the same as without ``--json``).
Notices, which the human view prints on stderr, are ``notice`` events in the stream.
See docs/apply-json.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import click

from casereport.engine.events import (
    Event,
    Failed,
    Fetched,
    Notice,
    Started,
    Summary,
    Version,
    json_line,
)
from casereport.errors import CaseReportError
from casereport.numbers import count_of
from casereport.terminal import raw

if TYPE_CHECKING:
    from casereport.engine.apply import Outcome
    from casereport.engine.plan import Plan

#: Fewer fetches than this finish before a progress bar would tell anything.
BAR_MIN_FETCHES = 20

INTERRUPTED = "interrupted: results that arrived are kept in state; run apply again to finish"


def _err(line: str) -> None:
    click.echo(line, err=True)


class HumanView:
    """The events for a person: a progress bar on a terminal, progress lines elsewhere,
    and the summary."""

    def __init__(self, *, stderr_tty: bool, waiting: str) -> None:
        self._stderr_tty = stderr_tty
        self._waiting = waiting
        self._stack = contextlib.ExitStack()
        self._bar: Any = None
        self._fetches = 0
        self._lines: Any = None

    def __enter__(self) -> HumanView:
        if not self._stderr_tty:
            from casereport.engine.progress import ProgressLines

            self._lines = self._stack.enter_context(ProgressLines(_err, waiting=self._waiting))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def notice(self, line: str) -> None:
        _err(line)

    def __call__(self, event: Event) -> None:
        if self._lines is not None:
            self._lines(event)
        if isinstance(event, Started) and event.stage == "fetch":
            self._fetches = event.total
        elif isinstance(event, Fetched) or (
            isinstance(event, Failed) and event.stage == "fetch" and event.address is not None
        ):
            self._advance()
        elif isinstance(event, Summary):
            self._stack.close()  # the bar ends before the summary
            click.echo(event.message)
            for failure in event.failures:
                _err(f"  {failure}")

    def _advance(self) -> None:
        if not self._stderr_tty or self._fetches < BAR_MIN_FETCHES:
            return
        if self._bar is None:
            self._bar = self._stack.enter_context(
                click.progressbar(length=self._fetches, label="Fetching", file=raw(sys.stderr))
            )
        self._bar.update(1)


class JsonView:
    """The events as JSON lines on stdout (``--json``)."""

    def __init__(self, command: str) -> None:
        self._command = command
        self._ended = False

    def __enter__(self) -> JsonView:
        self(Version(self._command))
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._ended or exc is None:
            return
        # The stream ends with a summary whatever stopped the run.
        if isinstance(exc, KeyboardInterrupt):
            self(Summary("Error: interrupted", 1, interrupted=True, error="interrupted"))
        elif isinstance(exc, click.ClickException):
            message = exc.format_message()
            stopped = message == INTERRUPTED
            self(Summary(f"Error: {message}", exc.exit_code, interrupted=stopped, error=message))
        elif isinstance(exc, Exception):
            message = f"internal error: {type(exc).__name__}: {exc}"
            self(Summary(f"Error: {message}", 1, error=message))

    def notice(self, line: str) -> None:
        self(Notice(line))

    def __call__(self, event: Event) -> None:
        click.echo(json_line(event))
        sys.stdout.flush()  # a reader follows the run line by line, even through a pipe
        if isinstance(event, Summary):
            self._ended = True


View = HumanView | JsonView


def view_for(command: str, *, as_json: bool, waiting: str = "planning") -> View:
    """The view a command's events go to; ``waiting`` names what the run does before
    its first stage, in progress lines."""
    if as_json:
        return JsonView(command)
    return HumanView(stderr_tty=sys.stderr.isatty(), waiting=waiting)


def require_approval(as_json: bool, auto_approve: bool, plan_given: bool) -> None:
    """``apply --json`` cannot ask: it needs ``--auto-approve`` or a saved plan."""
    if as_json and not auto_approve and not plan_given:
        raise CaseReportError(
            "apply --json cannot ask for approval: pass --auto-approve, "
            "or apply a saved plan (`casereport plan --out plan.json`)"
        )


def apply_summary(
    view: View, plan: Plan, outcome: Outcome | None, *, failing_checks: int = 0
) -> int:
    """Tell ``view`` how the apply ended; its exit code. ``failing_checks``: error checks
    that failed where that fails the apply (``--fail-on-checks``): exit 1, said so."""
    if outcome is not None:
        summary = outcome.summary_event()
    elif isinstance(view, JsonView):
        summary = Summary(plan.summary(), 0)
    else:
        if not plan.has_changes:  # (a cancelled apply said so already)
            from casereport.engine.views import render_human

            click.echo(render_human(plan), nl=False)
        return 1 if failing_checks else 0
    if failing_checks and not summary.exit_code:
        checks = "check" if failing_checks == 1 else "checks"
        message = f"{summary.message} {failing_checks} error {checks} failed."
        summary = dataclasses.replace(summary, message=message, exit_code=1)
    view(summary)
    return summary.exit_code


def render_summary(view: View, rendered: Sequence[str]) -> None:
    """Tell ``view`` that the render ended."""
    line = f"Rendered {count_of(len(rendered), 'report')} and the index."
    view(Summary(line, 0, rendered=len(rendered)))


def interrupted() -> CaseReportError:
    """The error of an apply stopped by Ctrl-C."""
    return CaseReportError(INTERRUPTED)
