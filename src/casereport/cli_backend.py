"""The command line of remote state (``[backend]``) and workspaces: the ``--backend`` and
``--workspace`` options, ``casereport workspace list|new|delete`` and ``casereport state
push|pull|migrate``, added to ``cli`` (which is at its size limit). As in ``cli``, each
command parses its options and calls one library function (``casereport.state.remote``,
``casereport.state.workspaces``); obstore is imported by those only for a remote backend.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from casereport.state.lock import LockInfo

BACKEND_OPTIONS = [
    click.option(
        "--backend",
        "backend",
        envvar="CASEREPORT_BACKEND",
        metavar="URL",
        help="Where the state lives: local or s3://BUCKET/PREFIX (overrides [backend] url; "
        "also CASEREPORT_BACKEND).",
    ),
    click.option(
        "--workspace",
        "workspace",
        envvar="CASEREPORT_WORKSPACE",
        metavar="NAME",
        help="Use workspace NAME's state and site (default: default; also CASEREPORT_WORKSPACE).",
    ),
]


def backend_options(function: Any) -> Any:
    """``--backend URL`` and ``--workspace NAME``."""
    for decorator in reversed(BACKEND_OPTIONS):
        function = decorator(function)
    return function


def _notice(line: str) -> None:
    click.echo(line, err=True)


def _settings() -> Any:
    from casereport.settings import load_settings

    return load_settings(Path("."))


@contextlib.contextmanager
def located_values(
    values: dict[str, Any], operation: str | None, notice: Callable[[str], None] | None = None
) -> Iterator[dict[str, Any]]:
    """plan, apply and render's options with the state and site of the chosen backend and
    workspace (a remote state: its local mirror, synced for the block); its notices go to
    ``notice`` (stderr by default)."""
    from casereport.state.remote import located

    backend, workspace = values.pop("backend", None), values.pop("workspace", None)
    with located(
        _settings(),
        backend_url=backend,
        workspace=workspace,
        state_path=values.get("state_path"),
        site_dir=values.get("site_dir"),
        operation=operation,
        timeout=values.get("lock_timeout", 0.0),
        notice=notice or _notice,
    ) as (state_path, site_dir):
        yield {**values, "state_path": state_path, "site_dir": site_dir}


@contextlib.contextmanager
def located_state(
    state_path: Path | None,
    backend: str | None,
    workspace: str | None,
    operation: str | None,
    lock_timeout: float = 0.0,
) -> Iterator[Path]:
    """The state file a state command works on (a remote state: its synced mirror)."""
    from casereport.state.remote import located

    settings = _settings()
    with located(
        settings,
        backend_url=backend,
        workspace=workspace,
        state_path=state_path,
        site_dir=None,
        operation=operation,
        timeout=lock_timeout,
        notice=_notice,
    ) as (path, _):
        yield path if path is not None else settings.state_path


def remote_force_unlock(lock_id: str, backend: str | None, workspace: str | None) -> bool:
    """``force-unlock`` of a remote state's lock object; False for a local state."""
    from casereport.state.backend import S3Backend, open_backend

    if backend is None and workspace is None and _settings().backend.url == "local":
        return False
    opened = open_backend(_settings(), backend, workspace or "default")
    if not isinstance(opened, S3Backend):
        return False
    info, age = opened.force_unlock(lock_id)
    what = (
        f"{info.describe()}, taken {age} ago"
        if info is not None
        else f"ID {lock_id} (an unreadable lock object)"
    )
    click.echo(f"Removed the lock {what}, from {opened.where}.")
    if info is not None:
        warn_if_still_running(info)
    return True


def warn_if_still_running(info: LockInfo) -> None:
    """After ``force-unlock``: a lock whose run still goes on here (local or remote) gets a
    warning, since removing it does not stop that run."""
    if info.alive_here():
        click.echo(
            f"Warning: process {info.pid} that took this lock is still running on this machine; "
            "it will refuse to write the state when it goes on, but stop it if it is stuck "
            f"(kill {info.pid}).",
            err=True,
        )


# -- workspace list | new | delete --------------------------------------------------------


@click.group("workspace")
def workspace_group() -> None:
    """Separate states (and sites) in the same backend: prod, staging, ...

    \b
    Example:
      casereport workspace list
    """


@workspace_group.command("list")
@backend_options
def workspace_list(backend: str | None, workspace: str | None) -> None:
    """List the backend's workspaces; the one in use is marked with *.

    \b
    Example:
      casereport workspace list --backend s3://reports-state/casereport
    """
    from casereport.state.workspaces import list_workspaces

    current = workspace or "default"
    for name in list_workspaces(_settings(), backend):
        click.echo(f"{'*' if name == current else ' '} {name}")


@workspace_group.command("new")
@click.argument("name")
@backend_options
def workspace_new(name: str, backend: str | None, workspace: str | None) -> None:
    """Create workspace NAME with an empty state; use it with --workspace NAME.

    \b
    Example:
      casereport workspace new staging && casereport plan --workspace staging --emulator
    """
    from casereport.state.workspaces import new_workspace

    where = new_workspace(_settings(), backend, name)
    click.echo(f"Created workspace {name} ({where}); use it with --workspace {name}.")


@workspace_group.command("delete")
@click.argument("name")
@backend_options
@click.option("--force", is_flag=True, help="Delete it even though it holds results.")
def workspace_delete(name: str, backend: str | None, workspace: str | None, force: bool) -> None:
    """Delete workspace NAME's state (its site directory is left alone).

    \b
    Example:
      casereport workspace delete staging
    """
    from casereport.state.workspaces import delete_workspace

    where = delete_workspace(
        _settings(), backend, name, current=workspace or "", force=force, notice=_notice
    )
    click.echo(f"Deleted workspace {name} ({where}).")


# -- state push | pull | migrate -------------------------------------------------------------

# Options of many commands, written once (each use makes its own click.Option).
REPORTS_DIR_OPTION = click.option(
    "--reports-dir", type=click.Path(path_type=Path), help="Report files (reports/)."
)
STATE_OPTION = click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="State file (.casereport/state.json).",
)
VAR_OPTION = click.option(
    "--var",
    "variables",
    multiple=True,
    metavar="NAME=VALUE",
    help="Set ${var.NAME} in every report (repeatable).",
)
LOCK_TIMEOUT_OPTION = click.option(
    "--lock-timeout",
    type=click.FloatRange(0),
    default=0.0,
    metavar="SECONDS",
    help="Wait this long for another run's state lock (default: fail at once).",
)


def reading_options(function: Any) -> Any:
    """--reports-dir, --state, --var and the backend's: a command that reads reports and
    state without writing (check, output)."""
    function = backend_options(function)
    for decorator in (VAR_OPTION, STATE_OPTION, REPORTS_DIR_OPTION):
        function = decorator(function)
    return function


_COPY_OPTIONS = [
    click.option(
        "--force", is_flag=True, help="Replace another or a newer state (kept as .backup)."
    ),
    LOCK_TIMEOUT_OPTION,
]


def _copy_options(function: Any) -> Any:
    for decorator in reversed(_COPY_OPTIONS):
        function = decorator(function)
    return backend_options(function)


@click.command("push")
@STATE_OPTION
@_copy_options
def state_push(state_path: Path | None, **values: Any) -> None:
    """Upload the local state file to the remote backend (a first move to a bucket).

    \b
    Example:
      casereport state push --backend s3://reports-state/casereport
    """
    from casereport.state.workspaces import push

    click.echo(push(_settings(), **_copy_values(values), state_path=state_path))


@click.command("pull")
@STATE_OPTION
@_copy_options
def state_pull(state_path: Path | None, **values: Any) -> None:
    """Download the remote state into the local state file (back from a bucket).

    \b
    Example:
      casereport state pull --backend s3://reports-state/casereport
    """
    from casereport.state.workspaces import pull

    click.echo(pull(_settings(), **_copy_values(values), state_path=state_path))


@click.command("migrate")
@click.option("--to", "to_url", required=True, metavar="URL", help="local or s3://BUCKET/PREFIX.")
@_copy_options
def state_migrate(to_url: str, **values: Any) -> None:
    """Copy the state of the backend in use to another backend (URL), lineage checked.

    \b
    Examples:
      casereport state migrate --to s3://reports-state/casereport
      casereport state migrate --backend s3://reports-state/casereport --to local
    """
    from casereport.state.backend import backend_settings
    from casereport.state.workspaces import migrate

    settings = _settings()
    backend_settings(settings, to_url)  # a bad URL is one line, before anything is read
    line = migrate(settings, to_url=to_url, **_copy_values(values))
    click.echo(line)
    click.echo(
        f"Set [backend] url = {to_url!r} in casereport.toml (or CASEREPORT_BACKEND) to use it; "
        "the source state is left as it was."
    )


def _copy_values(values: dict[str, Any]) -> dict[str, Any]:
    return {
        "url": values["backend"],
        "workspace": values["workspace"] or "default",
        "force": values["force"],
        "timeout": values["lock_timeout"],
    }
