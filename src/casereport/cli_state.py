"""``casereport state mv``, added to ``casereport state`` by ``cli`` (kept apart from it,
which is at its size limit). As in ``cli``, the command parses options and calls one
library function (``casereport.state.ops.move``)."""

from __future__ import annotations

from pathlib import Path

import click

from casereport.cli_backend import backend_options, located_state


@click.command("mv")
@click.argument("source", metavar="SOURCE")
@click.argument("destination", metavar="DESTINATION")
@click.option(
    "--state", "state_path", type=click.Path(dir_okay=False, path_type=Path), help="State file."
)
@click.option("--lock-timeout", type=click.FloatRange(0), default=0.0, metavar="SECONDS")
@backend_options
def state_mv(
    source: str,
    destination: str,
    state_path: Path | None,
    lock_timeout: float,
    backend: str | None,
    workspace: str | None,
) -> None:
    """Move a report or an aggregation to a new address, keeping results and history.

    \b
    Examples:
      casereport state mv support-backlog support-queue
      casereport state mv support-backlog.by_status support-backlog.by_state
    """
    from casereport.state.ops import move

    with located_state(state_path, backend, workspace, "state mv", lock_timeout) as path:
        moves = move(path, source, destination, lock_timeout=lock_timeout)
    click.echo(f"Moved {source} to {destination} in state:")
    for old, new in moves:
        click.echo(f"  {old} -> {new}")
