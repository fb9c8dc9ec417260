"""``casereport check``, added to the command line by ``cli`` (kept apart from it, which is
near its size limit), and how apply, render and check report checks.

As in ``cli``, the command parses its options and calls one library function
(``casereport.engine.checks.run_check``). Under GitHub Actions (``GITHUB_ACTIONS=true``)
failing checks also become workflow annotations at their ``assert`` line, and a Markdown
summary is appended to ``$GITHUB_STEP_SUMMARY``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from casereport.cli_backend import located_values, reading_options
from casereport.terminal import raw

if TYPE_CHECKING:  # (only names here: `casereport --version` imports this module)
    from casereport.checks.results import CheckResult
    from casereport.engine.workspace import Workspace


def report_checks(
    results: Sequence[CheckResult], *, every: bool = False, quiet: bool = False
) -> None:
    """The checks' summary: on stderr, the counts and each failing check (apply, render);
    with ``every``, on stdout, each check (``casereport check``); with ``quiet``, nothing
    (``check --json``). Under GitHub Actions, their annotations too (on stdout, or on
    stderr when ``quiet`` keeps stdout for JSON; the runner reads both) and the step
    summary."""
    from casereport.checks import outputs

    if every:
        for line in outputs.every_line(results):
            click.echo(line)
        click.echo(outputs.counts_line(results))
    elif not quiet:
        click.echo(outputs.counts_line(results), err=True)
        for line in outputs.failure_lines(results):
            click.echo(f"  {line}", err=True)
    if os.environ.get("GITHUB_ACTIONS") == "true":
        for line in outputs.annotation_lines(results):
            click.echo(line, file=raw(sys.stderr if quiet else sys.stdout))
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with open(summary, "a", encoding="utf-8") as stream:
                stream.write(outputs.step_summary(results))


class ChecksSeen:
    """The checks an apply or render evaluated (its ``on_checks``), reported once the
    command has said what it did."""

    def __init__(self, fail_on_checks: bool = False) -> None:
        self.results: Sequence[CheckResult] = ()
        self.fail = fail_on_checks

    def record(self, results: Sequence[CheckResult], workspace: Workspace) -> None:
        self.results = results
        self.fail = self.fail or workspace.settings.fail_on_checks

    @property
    def failing(self) -> int:
        """How many error checks failed when failing is asked for (``--fail-on-checks`` or
        ``fail_on_checks = true``): the apply then exits 1; else 0."""
        return sum(1 for r in self.results if r.blocking) if self.fail else 0

    def report(self, *, quiet: bool = False) -> None:
        """Print them (``quiet``: only GitHub's annotations and summary, for ``--json``,
        whose stream has them as ``check`` events)."""
        if self.results:
            report_checks(self.results, quiet=quiet)


@click.command("check")
@reading_options
@click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="ADDR",
    help="Only the checks of this report or aggregation address (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as versioned JSON.")
@click.option(
    "--junit",
    "junit_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the results as JUnit XML to this file (for CI test reports).",
)
def check_command(
    as_json: bool, junit_file: Path | None, targets: tuple[str, ...], **values: Any
) -> None:
    """Evaluate every report's checks from state. Never calls the API.

    Exits 0 when no error-severity check fails, 1 when one does (or on an error), 2 on a
    usage error. Warnings are reported and never fail. Under GitHub Actions failing checks
    are annotated at their line and summarised in the job's step summary.

    \b
    Examples:
      casereport check
      casereport check --junit checks.xml   # for a CI test report
      casereport check --json | jq '.checks[] | select(.passed | not)'
    """
    from casereport.checks.outputs import junit_xml, results_json
    from casereport.engine.checks import run_check
    from casereport.engine.workspace import Options
    from casereport.errors import CaseReportError
    from casereport.fsutil import atomic_write_text
    from casereport.settings import parse_var_assignments

    variables = values.pop("variables", ())
    values.pop("lock_timeout", None)
    with located_values(values, None) as located:
        options = Options(cli_vars=parse_var_assignments(variables), **located)
        run = run_check(options, targets=targets, notice=lambda line: click.echo(line, err=True))
    if junit_file is not None:
        try:
            atomic_write_text(junit_file, junit_xml(run.results))
        except OSError as exc:
            raise CaseReportError(f"--junit {junit_file}: {exc.strerror or exc}") from None
    if as_json:
        click.echo(results_json(run.results), nl=False)
        if os.environ.get("GITHUB_ACTIONS") == "true":
            report_checks(run.results, quiet=True)
    elif not run.results:
        click.echo("No checks: add checks: to a report (docs/checks.md).")
    else:
        report_checks(run.results, every=True)
    if run.failed:
        sys.exit(1)
