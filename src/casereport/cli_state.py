"""``casereport state list|show|rm|mv`` (with push, pull and migrate from ``cli_backend``),
added to the command line by ``cli`` (kept apart from it, which is at its size limit). As
in ``cli``, each command parses options and calls one library function
(``casereport.state.ops``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from casereport.cli_backend import (
    LOCK_TIMEOUT_OPTION,
    STATE_OPTION,
    backend_options,
    located_state,
    state_migrate,
    state_pull,
    state_push,
)


@click.group("state")
def state_group() -> None:
    """Inspect and edit the state (.casereport/state.json).

    \b
    Example:
      casereport state list
    """


def state_options(function: Any) -> Any:
    """--state and the backend options of the commands that read or edit the state."""
    return STATE_OPTION(backend_options(function))


@state_group.command("list")
@click.argument("prefixes", nargs=-1, metavar="[ADDR]...")
@state_options
def state_list(prefixes: tuple[str, ...], state_path: Path | None, **at: Any) -> None:
    """List aggregation addresses in state (those under ADDR if given).

    \b
    Example:
      casereport state list support-backlog
    """
    from casereport.state.ops import list_addresses

    with located_state(state_path, at["backend"], at["workspace"], None) as path:
        for address in list_addresses(path, prefixes):
            click.echo(address)


@state_group.command("show")
@click.argument("address")
@state_options
def state_show(address: str, state_path: Path | None, **at: Any) -> None:
    """Show one aggregation's state: request, result, fetch time, history.

    \b
    Example:
      casereport state show 'service-health.open_by_priority["billing"]'
    """
    from casereport.state.ops import show_address

    with located_state(state_path, at["backend"], at["workspace"], None) as path:
        click.echo(show_address(path, address))


@state_group.command("rm")
@click.argument("addresses", nargs=-1, required=True, metavar="ADDR...")
@state_options
@LOCK_TIMEOUT_OPTION
def state_rm(
    addresses: tuple[str, ...], state_path: Path | None, lock_timeout: float, **at: Any
) -> None:
    """Forget aggregations or whole reports; the next apply fetches them again.

    \b
    Example:
      casereport state rm support-backlog.by_status
    """
    from casereport.state.ops import remove

    with located_state(
        state_path, at["backend"], at["workspace"], "state rm", lock_timeout
    ) as path:
        removed = remove(path, addresses, lock_timeout=lock_timeout)
    click.echo(f"Removed {len(removed)} from state: {', '.join(removed)}")


@state_group.command("mv")
@click.argument("source", metavar="SOURCE")
@click.argument("destination", metavar="DESTINATION")
@STATE_OPTION
@LOCK_TIMEOUT_OPTION
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


for _command in (state_push, state_pull, state_migrate):
    state_group.add_command(_command)
