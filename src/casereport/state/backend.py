"""Where a workspace's state lives: a backend, and the workspaces it holds.

``[backend] url`` (or ``--backend`` / ``CASEREPORT_BACKEND``) picks one:

- ``local`` (the default): the state file, written as ``model.write_state`` writes it
  (atomically, ``.backup`` kept) under the ``flock`` lock of ``state.lock``. Nothing here
  is used for it by plan, apply or render: a fresh clone works exactly as before.
- ``s3://bucket/prefix``: the state is the object ``prefix/state.json``, locked by the
  object ``state.json.lock`` (``state.remote_lock``) and written with compare-and-swap on
  the ETag it was read at, after its previous version is copied to ``state.json.backup``.
  ``state.remote`` runs the engine's commands on a local mirror of it.

Workspaces (``--workspace NAME`` / ``CASEREPORT_WORKSPACE``) are separate states in the
same backend: ``default`` is the state above; another NAME is ``workspaces/NAME/state.json``
beside it (a local state: ``.casereport/workspaces/NAME/state.json``), with its own site
directory (``site-NAME``). A workspace other than ``default`` exists once
``casereport workspace new NAME`` created it, so a mistyped name is refused, not created.

Every backend offers the same few operations (``StateBackend``), which ``state push``,
``pull``, ``migrate`` and the ``workspace`` commands use without knowing which it is.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from casereport.errors import ConfigError, DamagedStateError, StateError, UnreadableStateError
from casereport.fsutil import atomic_write_bytes
from casereport.settings import BackendSettings, Settings, backend_url_problem
from casereport.state import lock as local_lock
from casereport.state.lock import LockInfo
from casereport.state.model import backup_path

if TYPE_CHECKING:
    from casereport.state.objects import Bucket, Stored

DEFAULT_WORKSPACE = "default"
WORKSPACE_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
STATE_KEY = "state.json"


@dataclass(frozen=True)
class Found:
    """A state's bytes and their version (a local file: its sha256; an object: its ETag)."""

    data: bytes
    version: str


class StateBackend(Protocol):
    """One workspace's state in one backend."""

    where: str

    def read(self) -> Found | None: ...

    def write(self, data: bytes, expected: Found | None, *, keep_previous: bool = True) -> object:
        """Replace the state if it still is ``expected``, keeping the previous version as the
        backup unless ``keep_previous`` is false (a damaged state: the backup already holds
        the last good one, which the damaged one must not replace)."""

    def lock(
        self, operation: str, *, timeout: float, notice: Callable[[str], None] | None
    ) -> contextlib.AbstractContextManager[Any]: ...

    def delete(self) -> None: ...


def conflict(where: str, kept: str = "") -> StateError:
    """The one line of a lost race: someone else wrote the state after this run read it."""
    return StateError(
        f"{where}: the state changed since this run read it (another run wrote it); "
        f"nothing was overwritten{kept}; run again"
    )


# -- settings: which backend, which workspace ---------------------------------------------


def backend_settings(settings: Settings, url: str | None) -> BackendSettings:
    """The ``[backend]`` settings with ``--backend`` / ``CASEREPORT_BACKEND`` applied."""
    if url is None:
        return settings.backend
    problem = backend_url_problem(url)
    if problem is not None:
        raise ConfigError(f"--backend: {problem}")
    return replace(settings.backend, url=url)


def check_workspace(name: str) -> str:
    if not WORKSPACE_RE.fullmatch(name):
        raise ConfigError(
            f"workspace {name!r}: a workspace name is 1 to 64 lower-case letters, digits, "
            '"-" or "_", starting with a letter or digit'
        )
    return name


def workspace_site_dir(site_dir: Path, workspace: str) -> Path:
    """A workspace's site directory: ``site`` for ``default``, else ``site-NAME`` beside it."""
    if workspace == DEFAULT_WORKSPACE:
        return site_dir
    return site_dir.with_name(f"{site_dir.name}-{workspace}")


def local_state_path(state_path: Path, workspace: str) -> Path:
    """A workspace's state file in the local backend."""
    if workspace == DEFAULT_WORKSPACE:
        return state_path
    return state_path.parent / "workspaces" / workspace / state_path.name


def state_key(workspace: str) -> str:
    """A workspace's state object under the backend's prefix."""
    return STATE_KEY if workspace == DEFAULT_WORKSPACE else f"workspaces/{workspace}/{STATE_KEY}"


def workspace_hint(workspace: str) -> str:
    return "" if workspace == DEFAULT_WORKSPACE else f" --workspace {workspace}"


# -- the two backends ----------------------------------------------------------------------


class LocalBackend:
    """The state file, as the engine reads and writes it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)

    def read(self) -> Found | None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(f"{self.path}: cannot read the state: {exc.strerror}") from None
        return Found(data, hashlib.sha256(data).hexdigest())

    def write(self, data: bytes, expected: Found | None, *, keep_previous: bool = True) -> None:
        """Under this backend's lock: check, back up, write atomically."""
        current = self.read()
        if (current.version if current else None) != (expected.version if expected else None):
            raise conflict(self.where)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if current is not None and keep_previous:
                # The previous version, whole, before the new one replaces it.
                atomic_write_bytes(backup_path(self.path), current.data)
            atomic_write_bytes(self.path, data)
        except OSError as exc:
            raise StateError(f"{self.path}: cannot write the state: {exc.strerror}") from None

    def lock(
        self, operation: str, *, timeout: float, notice: Callable[[str], None] | None
    ) -> contextlib.AbstractContextManager[Any]:
        return local_lock.state_lock(self.path, operation, timeout=timeout, notice=notice)

    def delete(self) -> None:
        for path in (self.path, backup_path(self.path)):
            path.unlink(missing_ok=True)


class S3Backend:
    """The state object ``<prefix>/<key>`` and its lock object ``<key>.lock``."""

    def __init__(self, bucket: Bucket, key: str, workspace: str) -> None:
        self.bucket = bucket
        self.key = key
        self.workspace = workspace
        self.where = bucket.where(key)
        self.lock_key = key + ".lock"
        self.backup_key = key + ".backup"

    def _found(self, stored: Stored | None) -> Found | None:
        return None if stored is None else Found(stored.data, stored.version)

    def read(self) -> Found | None:
        return self._found(self.bucket.read(self.key))

    def read_if_changed(self, version: str) -> Found | object | None:
        """As ``read``; ``objects.NOT_MODIFIED`` when the ETag still is ``version``."""
        from casereport.state.objects import NOT_MODIFIED

        found = self.bucket.get(self.key, if_changed_from=version)
        return found if found is NOT_MODIFIED else self._found(found)  # type: ignore[arg-type]

    def write(
        self, data: bytes, expected: Found | None, *, kept: str = "", keep_previous: bool = True
    ) -> str:
        """Compare-and-swap on the ETag ``expected`` was read at; returns the new ETag."""
        from casereport.state.objects import Conflict

        if expected is not None and keep_previous:
            # The previous version, kept as Terraform keeps it (bucket versioning, when on,
            # keeps every one besides).
            self.bucket.copy(self.key, self.backup_key)
        try:
            return self.bucket.put(
                self.key, data, expected=expected.version if expected is not None else None
            )
        except Conflict:
            raise conflict(self.where, kept) from None

    def state_error(self, exc: UnreadableStateError, local: Path | None) -> UnreadableStateError:
        """``exc``, raised of a copy of this state read from the bucket, told of the state
        itself: its address, and for a damaged one the fix that mends it there (moving the
        copy away would only download it again): a good state uploaded over it from
        ``local``, the local state file ``state push`` reads for this workspace."""
        if not isinstance(exc, DamagedStateError):
            return UnreadableStateError(self.where, exc.problem, exc.fix)
        command = (
            f"casereport state push --force --backend {self.bucket.url}"
            f"{workspace_hint(self.workspace)}"
        )
        return DamagedStateError(
            self.where,
            exc.problem,
            f"put a good state in {local or 'the local state file'} and run `{command}` "
            f"({self.where}.backup, if it exists, holds the state before casereport's last "
            "write, and is kept)",
        )

    def lock(
        self, operation: str, *, timeout: float, notice: Callable[[str], None] | None
    ) -> contextlib.AbstractContextManager[LockInfo]:
        from casereport.state.remote_lock import remote_lock

        hint = workspace_hint(self.workspace)
        return remote_lock(
            self.bucket, self.lock_key, operation, timeout=timeout, notice=notice, hint=hint
        )

    def verify_held(self, lock_id: str) -> None:
        from casereport.state.remote_lock import verify_held

        verify_held(self.bucket, self.lock_key, lock_id)

    def force_unlock(self, lock_id: str) -> tuple[LockInfo | None, str]:
        from casereport.state.remote_lock import force_unlock

        return force_unlock(self.bucket, self.lock_key, lock_id)

    def delete(self) -> None:
        for key in (self.key, self.backup_key):
            self.bucket.delete(key)


def open_bucket(settings: BackendSettings) -> Bucket:
    from casereport.state.objects import Bucket  # obstore, only for a remote backend

    return Bucket(settings)


def open_backend(
    settings: Settings, url: str | None, workspace: str, *, state_path: Path | None = None
) -> StateBackend:
    """The backend holding ``workspace``'s state (``state_path``: ``--state``, local only)."""
    chosen = backend_settings(settings, url)
    check_workspace(workspace)
    if chosen.url == "local":
        return LocalBackend(local_state_path(state_path or settings.state_path, workspace))
    if state_path is not None:
        raise ConfigError(
            f"--state names a local state file, but the state is in {chosen.url}; "
            "drop --state, or pass --backend local"
        )
    return S3Backend(open_bucket(chosen), state_key(workspace), workspace)
