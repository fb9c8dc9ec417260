"""``casereport notify``, and what ``apply`` prints of its delivery, added to the command
line by ``cli`` (kept apart from it, which is near its size limit). As in ``cli``, the
command parses its options and calls one library function
(``casereport.engine.delivery.run_notify``); ``cli`` adds the workspace options it shares
with plan, apply and render."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from casereport.cli_backend import located_values


def echo_delivery(outcome: Any, notice: Callable[[str], None] | None = None) -> None:
    """After an apply: what was sent, and a warning line per target that failed (through
    ``notice`` when given: ``apply --json`` makes them events)."""
    if outcome is None:
        return
    if outcome.sent:
        (notice or click.echo)(outcome.sent_line())
    for failure in outcome.failures:
        if notice is not None:
            notice(f"warning: {failure}")
        else:
            click.echo(f"warning: {failure}", err=True)


@click.command("notify")
@click.option("--dry-run", is_flag=True, help="Print what would be sent; send nothing.")
@click.option(
    "--force", is_flag=True, help="Send the last run to every target again, whatever `on` says."
)
def notify_command(dry_run: bool, force: bool, **values: Any) -> None:
    """Send the last run's reports to the [notify.NAME] targets of casereport.toml.

    Sends what `apply` would have sent at its end and has not: each target gets a
    report's run once (recorded in state), when one of its `on` triggers fires (always,
    change, check_failed). Exits 1 when a target could not be reached. Never calls the
    Datadog API. Secrets come from the environment only (see docs/notify.md).

    \b
    Examples:
      casereport notify --dry-run
      casereport notify
      casereport notify --force   # send the last run again, e.g. to try a new target
    """
    from casereport.engine.delivery import run_notify
    from casereport.engine.workspace import Options
    from casereport.settings import parse_var_assignments

    def notice(line: str) -> None:
        click.echo(line, err=True)

    variables = values.pop("variables", ())
    with located_values(values, None if dry_run else "notify") as located:
        options = Options(cli_vars=parse_var_assignments(variables), **located)
        outcome = run_notify(options, dry_run=dry_run, force=force, notice=notice)
    if dry_run:
        for text in outcome.described:
            click.echo(text)
        if not outcome.described:
            click.echo(
                "Nothing to send: each target was sent the last run of its reports, or none of "
                "its `on` triggers fired (--force sends anyway)."
            )
        return
    click.echo(outcome.sent_line())
    for failure in outcome.failures:
        click.echo(failure, err=True)
    if outcome.failures:
        sys.exit(1)
