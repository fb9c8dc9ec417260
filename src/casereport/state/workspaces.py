"""``casereport workspace list|new|delete`` and ``state push|pull|migrate``.

Each works on whole states through ``backend.StateBackend``, the same for a local file
and an object in a bucket: reading a state with its version, writing it with
compare-and-swap under the destination's lock (the previous version kept), so a copy
never overwrites a state that moved on meanwhile. A copy refuses a destination holding
another state (another ``lineage``) or a newer one (a higher ``serial``) unless forced:
moving prod's state over staging's history by mistake is the accident to prevent.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from casereport.errors import ConfigError, DamagedStateError, StateError, UnreadableStateError
from casereport.numbers import count_of
from casereport.settings import Settings
from casereport.state.backend import (
    DEFAULT_WORKSPACE,
    STATE_KEY,
    WORKSPACE_RE,
    LocalBackend,
    S3Backend,
    StateBackend,
    backend_settings,
    check_workspace,
    local_state_path,
    open_backend,
    open_bucket,
)
from casereport.state.journal import journal_path, recover
from casereport.state.model import State, new_state, parse_state, serialise
from casereport.state.remote import Notice, forget_mirror


def _parse(backend: StateBackend, data: bytes, local: Path | None = None) -> State:
    """``backend``'s state; a problem with it names the file, or the object by its address
    (``local``: the local state file that would mend a damaged one, if known)."""
    if isinstance(backend, LocalBackend):
        return parse_state(backend.path, data)
    assert isinstance(backend, S3Backend)
    try:
        return parse_state(Path(backend.where), data)  # (the error below names it right)
    except UnreadableStateError as exc:
        raise backend.state_error(exc, local) from None


def list_workspaces(settings: Settings, url: str | None) -> list[str]:
    """Every workspace of the backend, ``default`` first."""
    chosen = backend_settings(settings, url)
    if chosen.url == "local":
        folder = settings.state_path.parent / "workspaces"
        names = sorted(
            entry.name
            for entry in (folder.iterdir() if folder.is_dir() else ())
            if WORKSPACE_RE.fullmatch(entry.name) and (entry / settings.state_path.name).is_file()
        )
    else:
        bucket = open_bucket(chosen)
        names = [n for n in bucket.folders("workspaces", STATE_KEY) if WORKSPACE_RE.fullmatch(n)]
    return [DEFAULT_WORKSPACE, *(n for n in names if n != DEFAULT_WORKSPACE)]


def new_workspace(settings: Settings, url: str | None, name: str) -> str:
    """Create workspace ``name`` with an empty state; returns where it lives."""
    if check_workspace(name) == DEFAULT_WORKSPACE:
        raise ConfigError("the workspace 'default' always exists; nothing to create")
    backend = open_backend(settings, url, name)
    with backend.lock("workspace new", timeout=0.0, notice=None):
        if backend.read() is not None:
            raise StateError(f"workspace {name!r} already exists ({backend.where})")
        backend.write(serialise(new_state()).encode(), None)
    return backend.where


def delete_workspace(
    settings: Settings,
    url: str | None,
    name: str,
    *,
    current: str,
    force: bool = False,
    notice: Notice | None = None,
) -> str:
    """Delete workspace ``name``'s state (and its backup); refuse one holding results
    unless ``force``, the default workspace, and the workspace in use. ``notice`` is told
    of this machine's copy of it kept aside (one never uploaded)."""
    check_workspace(name)
    if name == DEFAULT_WORKSPACE:
        raise ConfigError("the workspace 'default' cannot be deleted")
    if name == current:
        raise ConfigError(
            f"workspace {name!r} is the one in use (--workspace or CASEREPORT_WORKSPACE); "
            "switch to another before deleting it"
        )
    backend = open_backend(settings, url, name)
    with backend.lock("workspace delete", timeout=0.0, notice=None):
        found = backend.read()
        if found is None:
            raise StateError(f"workspace {name!r} does not exist ({backend.where})")
        try:
            state = _parse(backend, found.data)
        except DamagedStateError as exc:
            if not force:  # what it holds is unknown: maybe results and their history
                raise DamagedStateError(
                    exc.where, exc.problem, "pass --force to delete it and its .backup"
                ) from None
        else:
            if (state.aggregations or state.reports) and not force:
                raise StateError(
                    f"workspace {name!r} holds {count_of(len(state.aggregations), 'result')} and "
                    f"{count_of(len(state.reports), 'report')} ({backend.where}); "
                    "pass --force to delete them and their history"
                )
        backend.delete()
        if isinstance(backend, S3Backend):  # under the lock: no run is syncing it now
            forget_mirror(settings, backend, notice)
    if isinstance(backend, LocalBackend):
        with contextlib.suppress(OSError):
            backend.path.parent.rmdir()  # the workspace's own directory, now empty
    return backend.where


def copy_state(
    source: StateBackend,
    destination: StateBackend,
    *,
    operation: str,
    force: bool = False,
    timeout: float = 0.0,
) -> str:
    """Copy ``source``'s state to ``destination``; returns a line saying what was done."""
    if source.where == destination.where:
        raise ConfigError(f"{source.where} is both the source and the destination")
    found = source.read()
    if found is None:
        raise StateError(f"no state at {source.where}; nothing to copy")
    local = destination.path if isinstance(destination, LocalBackend) else None
    state = _parse(source, found.data, local)
    damaged = False
    with destination.lock(operation, timeout=timeout, notice=None):
        current = destination.read()
        if current is not None:
            if current.data == found.data:
                return f"{destination.where} already holds this state (serial {state.serial})."
            try:
                there = _parse(destination, current.data)
            except DamagedStateError as exc:
                if not force:  # replacing a damaged state is how it is mended
                    raise DamagedStateError(
                        exc.where,
                        exc.problem,
                        "nothing was copied (pass --force to replace it; its .backup is kept)",
                    ) from None
                damaged = True  # its backup holds the last good state: keep that one
            else:
                refusal = None
                if there.lineage != state.lineage:
                    refusal = f"holds another state (lineage {there.lineage}, not {state.lineage})"
                elif there.serial > state.serial:
                    refusal = f"holds a newer state (serial {there.serial}, not {state.serial})"
                if refusal is not None and not force:
                    raise StateError(
                        f"{destination.where} {refusal}; nothing was copied (pass --force to "
                        "replace it: its previous version is kept as a .backup)"
                    )
        destination.write(found.data, current, keep_previous=not damaged)
    return (
        f"Copied the state (lineage {state.lineage}, serial {state.serial}, "
        f"{count_of(len(state.aggregations), 'result')}) "
        f"from {source.where} to {destination.where}."
    )


def _local(settings: Settings, workspace: str, state_path: Path | None) -> LocalBackend:
    return LocalBackend(local_state_path(state_path or settings.state_path, workspace))


def _remote(settings: Settings, url: str | None, workspace: str, command: str) -> StateBackend:
    backend = open_backend(settings, url, workspace)
    if isinstance(backend, LocalBackend):
        raise ConfigError(
            f"{command} moves a state between this machine and a bucket: set [backend] url "
            "in casereport.toml, or pass --backend s3://BUCKET/PREFIX"
        )
    return backend


def push(
    settings: Settings,
    url: str | None,
    workspace: str,
    *,
    state_path: Path | None = None,
    force: bool = False,
    timeout: float = 0.0,
) -> str:
    """``state push``: the local state file to the remote backend.

    A killed apply's results may wait in the journal beside the local state, which the
    next local command would fold in: push folds them in first, under the local lock (so
    no local run writes the state meanwhile), and pushes the state that command would see.
    """
    destination = _remote(settings, url, workspace, "state push")
    source = _local(settings, workspace, state_path)
    if not source.path.exists():  # nothing to lock: copy_state says there is no state
        return copy_state(source, destination, operation="state push", force=force)
    with source.lock("state push", timeout=timeout, notice=None):
        if journal_path(source.path).exists():
            recover(source.path)
        return copy_state(source, destination, operation="state push", force=force, timeout=timeout)


def pull(
    settings: Settings,
    url: str | None,
    workspace: str,
    *,
    state_path: Path | None = None,
    force: bool = False,
    timeout: float = 0.0,
) -> str:
    """``state pull``: the remote state into the local state file."""
    source = _remote(settings, url, workspace, "state pull")
    return copy_state(
        source,
        _local(settings, workspace, state_path),
        operation="state pull",
        force=force,
        timeout=timeout,
    )


def migrate(
    settings: Settings,
    url: str | None,
    to_url: str,
    workspace: str,
    *,
    force: bool = False,
    timeout: float = 0.0,
) -> str:
    """``state migrate --to URL``: the state of the backend in use to another backend."""
    return copy_state(
        open_backend(settings, url, workspace),
        open_backend(settings, to_url, workspace),
        operation="state migrate",
        force=force,
        timeout=timeout,
    )
