"""``casereport output``, added to the command line by ``cli`` (kept apart from it, which
is near its size limit). As in ``cli``, the command parses its options and calls one
library function (``casereport.engine.output.report_output``)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from casereport.cli_backend import located_state, reading_options
from casereport.terminal import raw


@click.command("output")
@click.argument("report", metavar="REPORT")
@click.option(
    "--json",
    "data_format",
    flag_value="json",
    default=True,
    help="The report's data as JSON, as in site/REPORT.json (the default).",
)
@click.option(
    "--csv", "data_format", flag_value="csv", help="The report's data as CSV (site/REPORT.csv)."
)
@reading_options
def output_command(
    report: str,
    data_format: str,
    reports_dir: Path | None,
    state_path: Path | None,
    variables: tuple[str, ...],
    backend: str | None,
    workspace: str | None,
) -> None:
    """Print a report's data file (totals, groups, compared counts) from state.

    Never calls the API and takes no lock: the output is what `casereport render` writes
    as site/REPORT.json or site/REPORT.csv (docs/data-files.md), byte for byte when
    piped; on a terminal, control characters in the data are shown as escapes.

    \b
    Examples:
      casereport output support-backlog
      casereport output support-backlog --csv > support-backlog.csv
      casereport output support-backlog | jq '.aggregations[].total'
    """
    from casereport.engine.output import report_output
    from casereport.engine.workspace import Options
    from casereport.settings import parse_var_assignments

    with located_state(state_path, backend, workspace, None) as path:
        options = Options(
            reports_dir=reports_dir, state_path=path, cli_vars=parse_var_assignments(variables)
        )
        text = report_output(options, report, data_format, lambda line: click.echo(line, err=True))
    if sys.stdout.isatty():
        # For eyes: through the cleaning stream (an escape sequence in a group value must
        # not drive the terminal), with the CSV's CRLF row ends as plain line ends.
        click.echo(text.replace("\r\n", "\n"), nl=False)
    else:
        # For tools: the file's exact bytes, past the cleaning stream.
        click.echo(text.encode("utf-8"), nl=False, file=raw(sys.stdout))
