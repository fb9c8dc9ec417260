"""Plan, apply, render and the state commands on a remote state, through a local mirror.

The engine reads and writes a state file (with its journal and lock beside it); for a
remote backend that file is a mirror, ``.casereport/remote/<url hash>/<workspace>/state.json``,
and this module moves it between the bucket and the engine:

1. A run that writes takes the lock object first (``remote_lock``); a plan takes none.
2. It syncs down: a conditional GET (``If-None-Match`` on the ETag this machine last saw)
   downloads the state only when another machine changed it. ``state.json.remote`` records
   that ETag and the hash of its bytes.
3. The command runs on the mirror exactly as on a local state: results are journaled as
   they arrive, and a killed apply's next run on this machine finishes from the journal.
4. A run that wrote pushes the mirror back with compare-and-swap on the ETag it synced
   down (``If-Match``), after the previous version is copied to ``state.json.backup``; a
   lost race overwrites nothing and says so in one line.

A mirror newer than the remote state at the same ETag is a run killed between its write
and its push: it is kept and pushed by the next run that writes. A mirror newer than a
remote state another machine changed since cannot be merged: it is put aside as
``state.json.unpushed`` with a notice, and the remote state wins (a mirror damaged since
it was downloaded, as ``state.json.damaged``, saying so). A remote state deleted since
leaves this machine's copy as ``state.json.deleted``. A copy put aside never replaces an
earlier one of other bytes (``state.json.unpushed.1``, ...).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from casereport.errors import (
    CaseReportError,
    ConfigError,
    DamagedStateError,
    StateError,
    UnreadableStateError,
)
from casereport.fsutil import atomic_write_bytes, atomic_write_text
from casereport.settings import Settings
from casereport.state.backend import (
    DEFAULT_WORKSPACE,
    Found,
    S3Backend,
    backend_settings,
    check_workspace,
    local_state_path,
    open_backend,
    workspace_site_dir,
)
from casereport.state.model import parse_state, state_dir_gitignore

Notice = Callable[[str], None]


@dataclass(frozen=True)
class Synced:
    """The remote state as this machine last saw it: its ETag (None: there was none) and
    the sha256 of its bytes."""

    etag: str | None
    sha256: str | None


def _sha(data: bytes | None) -> str | None:
    return hashlib.sha256(data).hexdigest() if data is not None else None


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"{path}: cannot read the state: {exc.strerror}") from None


def mirror_path(settings: Settings, backend: S3Backend) -> Path:
    digest = hashlib.sha256(backend.bucket.url.encode()).hexdigest()[:12]
    return settings.state_path.parent / "remote" / digest / backend.workspace / "state.json"


def forget_mirror(settings: Settings, backend: S3Backend, notice: Notice | None) -> None:
    """Remove this machine's mirror of a state this machine is deleting (a cache of it,
    its backup, and the record of the version seen), so a later run is not told of the
    deletion as news; a copy that is not a version the bucket held (a run's state whose
    upload was refused) is kept, as a sync would keep it."""
    mirror = mirror_path(settings, backend)
    local = _read(mirror)
    known = _known(mirror, backend.where)
    if local is not None and (known is None or _sha(local) != known.sha256):
        kept, damage = _set_aside(mirror, local)
        if notice is not None:
            what = f"was damaged: {damage}" if damage else "holds a state never uploaded"
            notice(f"this machine's copy of {backend.where} {what}; it is kept in {kept}")
    for suffix in ("", ".remote", ".backup"):
        mirror.with_name(mirror.name + suffix).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        mirror.parent.rmdir()  # the workspace's own directory, unless something is kept


def _sidecar(mirror: Path) -> Path:
    return mirror.with_name(mirror.name + ".remote")


def _known(mirror: Path, where: str) -> Synced | None:
    try:
        raw = json.loads(_sidecar(mirror).read_text(encoding="utf-8"))
        if raw["where"] == where:
            return Synced(raw["etag"], raw["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _remember(mirror: Path, where: str, synced: Synced) -> None:
    record = {"where": where, "etag": synced.etag, "sha256": synced.sha256}
    atomic_write_text(_sidecar(mirror), json.dumps(record, sort_keys=True) + "\n")


def sync_down(backend: S3Backend, mirror: Path, notice: Notice | None) -> Synced:
    """Bring the mirror up to the remote state; returns the remote state's version."""
    from casereport.state.objects import NOT_MODIFIED

    known = _known(mirror, backend.where)
    remote: Any
    if known is not None and known.etag is not None and mirror.is_file():
        remote = backend.read_if_changed(known.etag)
        if remote is NOT_MODIFIED:
            return known  # the mirror is the remote state, or a newer one not yet pushed
    else:
        # No version to ask with, or the mirror was removed (by hand, as a cache): download.
        # (Taking a missing mirror for "no state" would start afresh and push over it.)
        remote = backend.read()
        if remote is None and known is not None and known.etag is None:
            return known  # still none remote: the mirror, if any, is a first run's
    local = _read(mirror)
    remote_sha = _sha(remote.data) if remote is not None else None
    local_sha = _sha(local)
    mirror.parent.mkdir(parents=True, exist_ok=True)
    if local is not None and local_sha not in (remote_sha, known.sha256 if known else None):
        _put_aside(
            backend, mirror, local, notice, deleted=remote is None, recorded=known is not None
        )
    elif local is not None and remote is None:
        # Deleted since this machine last saw it (by hand, by a bucket rule, its workspace
        # deleted elsewhere): the copy this machine holds may be the last of that history.
        kept = _keep(mirror, "deleted", local)
        if notice is not None:
            notice(
                f"{backend.where} was deleted since this machine's last run; this machine's "
                f"copy of the deleted state is kept in {kept}"
            )
    if remote is None:
        mirror.unlink(missing_ok=True)
    elif local_sha != remote_sha:
        atomic_write_bytes(mirror, remote.data)
    synced = Synced(remote.version if remote is not None else None, remote_sha)
    _remember(mirror, backend.where, synced)
    return synced


def _put_aside(
    backend: S3Backend,
    mirror: Path,
    local: bytes,
    notice: Notice | None,
    *,
    deleted: bool,
    recorded: bool,
) -> None:
    """Keep a mirror that another run's state (or its deletion) is about to replace: a
    state this machine never uploaded (its push lost a race, or the run was killed), or a
    copy damaged since it was downloaded (hand-edited, cut short), which holds nothing the
    bucket lacks. ``deleted``: the remote state is gone (its workspace deleted elsewhere);
    ``recorded``: this machine has a record of the version it last saw."""
    kept, damage = _set_aside(mirror, local)
    if notice is None:
        return
    if damage:
        # What replaces the copy: the state another run wrote since, or, deleted, none.
        now = (
            "the state was deleted from the bucket since, so none is used"
            if deleted
            else "the state another run wrote since is used"
        )
        notice(
            f"this machine's copy of {backend.where} was damaged: {damage}; {now}, and the "
            f"damaged copy is kept in {kept}"
        )
    elif not recorded:
        # The record removed, or written for another URL: whether the copy was ever
        # uploaded is not known, so the notice claims neither.
        now = "the remote state is gone" if deleted else "it is not the remote state"
        notice(
            f"this machine's copy of {backend.where} is kept in {kept}: {now}, and nothing "
            f"records which version of it this machine last saw"
        )
    else:
        done = "deleted" if deleted else "written by another run"
        notice(
            f"{backend.where} was {done} since this machine's last run, whose state was "
            f"never uploaded; that state is kept in {kept}"
        )


def _set_aside(mirror: Path, local: bytes) -> tuple[Path, str | None]:
    """Keep this machine's copy of a state that is not a version the bucket held: as
    ``.damaged`` with what is wrong with it, else (a state, one of a newer casereport
    included) as ``.unpushed``; where it is kept, and the damage."""
    try:
        parse_state(mirror, local)
    except DamagedStateError as exc:
        return _keep(mirror, "damaged", local), exc.problem
    except UnreadableStateError:  # a newer casereport's state: a state all the same
        pass
    return _keep(mirror, "unpushed", local), None


def _keep(mirror: Path, kind: str, data: bytes) -> Path:
    """Write ``data`` beside the mirror as ``state.json.<kind>``, never over an earlier
    copy of other bytes (then ``state.json.<kind>.1``, ``.2``, ...): each may be the only
    one of its history."""
    kept = mirror.with_name(f"{mirror.name}.{kind}")
    number = 0
    while (earlier := _read(kept)) is not None and earlier != data:
        number += 1
        kept = mirror.with_name(f"{mirror.name}.{kind}.{number}")
    atomic_write_bytes(kept, data)
    return kept


def push(backend: S3Backend, mirror: Path, synced: Synced, lock_id: str) -> Synced:
    """Upload the mirror if a run changed it; compare-and-swap on ``synced.etag``."""
    data = _read(mirror)
    sha = _sha(data)
    if data is None or sha == synced.sha256:
        return synced
    backend.verify_held(lock_id)
    expected = Found(b"", synced.etag) if synced.etag is not None else None
    etag = backend.write(data, expected, kept=f"; this run's state is kept in {mirror}")
    pushed = Synced(etag, sha)
    _remember(mirror, backend.where, pushed)
    return pushed


@contextlib.contextmanager
def mirrored(
    settings: Settings,
    backend: S3Backend,
    operation: str | None,
    *,
    timeout: float = 0.0,
    notice: Notice | None = None,
) -> Iterator[Path]:
    """The mirror of ``backend``'s state for the block; ``operation`` (a run that may
    write) holds the lock and pushes what changed, ``None`` (a plan) only reads."""
    mirror = mirror_path(settings, backend)
    state_dir_gitignore(settings.state_path)
    lock: Any = (
        backend.lock(operation, timeout=timeout, notice=notice)
        if operation is not None
        else contextlib.nullcontext()
    )
    with lock as info:
        synced = sync_down(backend, mirror, notice)
        if synced.etag is None and backend.workspace != DEFAULT_WORKSPACE:
            raise _no_workspace(backend.workspace, backend.bucket.url)
        try:
            yield mirror
        except BaseException as exc:
            if isinstance(exc, UnreadableStateError) and exc.where == mirror:
                # Nothing was written over a state that could not be read: nothing to push.
                raise _unreadable_mirror(settings, backend, mirror, synced, exc) from None
            if info is not None:
                # What the run wrote before it failed (results that arrived) is kept.
                with contextlib.suppress(CaseReportError):
                    push(backend, mirror, synced, info.id)
            raise
        if info is not None:
            push(backend, mirror, synced, info.id)


def _unreadable_mirror(
    settings: Settings, backend: S3Backend, mirror: Path, synced: Synced, exc: UnreadableStateError
) -> UnreadableStateError:
    """The mirror could not be read as a state: if it is the remote state as downloaded,
    the problem is the bucket's, named by its address; else this machine's copy was
    damaged since, and a new download mends it."""
    with contextlib.suppress(StateError):
        if _sha(_read(mirror)) == synced.sha256:
            return backend.state_error(
                exc, local_state_path(settings.state_path, backend.workspace)
            )
    if not isinstance(exc, DamagedStateError):
        return exc
    return DamagedStateError(
        mirror,
        exc.problem,
        f"it is this machine's copy of {backend.where}, damaged since it was downloaded: "
        "move it away, and the next run downloads the state again",
    )


def _no_workspace(name: str, where: str) -> StateError:
    return StateError(
        f"workspace {name!r} does not exist in {where}; create it with "
        f"`casereport workspace new {name}` (`casereport workspace list` shows them)"
    )


@contextlib.contextmanager
def located(
    settings: Settings,
    *,
    backend_url: str | None,
    workspace: str | None,
    state_path: Path | None,
    site_dir: Path | None,
    operation: str | None,
    timeout: float = 0.0,
    notice: Notice | None = None,
) -> Iterator[tuple[Path | None, Path | None]]:
    """The state file and site directory a command works on (None: the settings' own).

    With the local backend and the default workspace this yields ``state_path`` and
    ``site_dir`` untouched: nothing differs from a workspace without a backend.
    """
    name = check_workspace(workspace or DEFAULT_WORKSPACE)
    chosen = backend_settings(settings, backend_url)
    site = site_dir
    if site is None and name != DEFAULT_WORKSPACE:
        site = workspace_site_dir(settings.site_dir, name)
    if chosen.url == "local":
        if name == DEFAULT_WORKSPACE:
            yield state_path, site_dir
            return
        if state_path is not None:
            raise ConfigError("--state names one state file: drop it to use --workspace")
        path = local_state_path(settings.state_path, name)
        if not path.exists():
            raise _no_workspace(name, "the local backend")
        yield path, site
        return
    backend = open_backend(settings, backend_url, name, state_path=state_path)
    assert isinstance(backend, S3Backend)
    with mirrored(settings, backend, operation, timeout=timeout, notice=notice) as mirror:
        yield mirror, site
