"""The state lock: one run at a time may write a state file.

A lock is an OS advisory lock (``flock``) on ``<state>.lock``, plus the holder's details
(ID, operation, who, when) written inside the file so a second run can name the holder.
``flock`` is released by the kernel when the holder dies, so a crashed or killed run never
leaves the workspace locked: the next run takes the lock over and says so. A run that is
still alive but stuck keeps its lock until ``casereport force-unlock ID`` removes the lock
file (the stuck run then holds a lock on a file nobody else will open).
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import shlex
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from casereport import __version__
from casereport.errors import LockError

_POLL_SECONDS = 0.1

# The descriptors of the locks this process holds.
_HELD: set[int] = set()


def _close_in_child() -> None:
    """In a forked child (a render worker): close its copies of the held locks.

    ``flock`` is released when the last descriptor of the lock is closed: a child that
    kept a copy would hold the lock after the parent was killed, and the next run would
    have to wait for it. Closing the child's copy leaves the parent's lock held.
    """
    for fd in _HELD:
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


os.register_at_fork(after_in_child=_close_in_child)


@dataclass(frozen=True)
class LockInfo:
    """Who holds a lock, as written in the lock file."""

    id: str
    operation: str
    who: str
    pid: int
    created: str
    path: str
    version: str = __version__

    def describe(self) -> str:
        """``ID 1234… (apply by alice@host, pid 42, since 2026-…Z)``."""
        return (
            f"ID {self.id} ({self.operation} by {self.who}, pid {self.pid}, since {self.created})"
        )


def lock_path(state_path: Path) -> Path:
    """The lock file beside a state file."""
    return state_path.with_name(state_path.name + ".lock")


def _read_info(path: Path) -> LockInfo | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return LockInfo(**{k: raw[k] for k in LockInfo.__dataclass_fields__ if k in raw})
    except (OSError, ValueError, TypeError):
        return None


def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name in containers without /etc/passwd entry
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def _try_lock(path: Path) -> int | None:
    """Open and flock ``path``; return the fd, or None when another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    # force-unlock may have removed the file between our open and flock: then we hold a lock
    # on an orphan inode, so start again on the path's current file.
    try:
        same = os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        same = False
    if not same:
        os.close(fd)
        return _try_lock(path)
    return fd


def _open_and_lock(path: Path) -> int | None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return _try_lock(path)
    except OSError as exc:
        raise LockError(f"cannot create the lock file {path}: {exc.strerror or exc}") from None


def _state_flag(state_path: Path) -> str:
    """`` --state PATH`` for hints, when the state is not at the default path."""
    from casereport.state.model import DEFAULT_STATE_PATH

    return "" if state_path == DEFAULT_STATE_PATH else f" --state {shlex.quote(str(state_path))}"


@contextlib.contextmanager
def state_lock(
    state_path: Path,
    operation: str,
    *,
    timeout: float = 0.0,
    notice: Callable[[str], None] | None = None,
) -> Iterator[LockInfo]:
    """Hold the lock of ``state_path`` for the block; wait up to ``timeout`` seconds for it."""
    path = lock_path(state_path)
    deadline = time.monotonic() + timeout
    while (fd := _open_and_lock(path)) is None:
        if time.monotonic() >= deadline:
            holder = _read_info(path)
            who = holder.describe() if holder else "another process"
            lock_id = holder.id if holder else "ID"
            hint = f"casereport force-unlock {lock_id}{_state_flag(state_path)}"
            waited = f" after waiting {timeout:g} s" if timeout else ""
            raise LockError(
                f"the state {state_path} is locked{waited} by {who}; wait for that run to "
                f"finish (or pass --lock-timeout), or if it is stuck: {hint}"
            )
        time.sleep(_POLL_SECONDS)
    abandoned = _read_info(path)
    if abandoned is not None and notice is not None:
        notice(
            f"Taking over the lock {abandoned.describe()}, whose run ended without releasing it."
        )
    info = LockInfo(
        id=str(uuid.uuid4()),
        operation=operation,
        who=_who(),
        pid=os.getpid(),
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        path=str(state_path),
    )
    _HELD.add(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(asdict(info), indent=2) + "\n").encode(), 0)
        os.fsync(fd)
        yield info
    finally:
        if fd in _HELD:  # not in a forked child unwinding its parent's stack
            _HELD.discard(fd)
            current = _read_info(path)
            if current is not None and current.id == info.id:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            os.close(fd)


def force_unlock(state_path: Path, lock_id: str) -> LockInfo:
    """Remove the lock with ID ``lock_id``; refuse when the lock has another ID or none."""
    path = lock_path(state_path)
    info = _read_info(path) if path.exists() else None
    if info is None:
        raise LockError(f"the state {state_path} is not locked; nothing to unlock")
    if info.id != lock_id:
        raise LockError(
            f"the lock on {state_path} has ID {info.id}, not {lock_id}; "
            f"copy the ID from the lock error message"
        )
    path.unlink()
    return info


def current_lock(state_path: Path) -> LockInfo | None:
    """The lock's holder if a live process holds it, else None."""
    path = lock_path(state_path)
    try:
        fd = os.open(path, os.O_RDWR)  # no O_CREAT: looking must not create a lock file
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_info(path)
    finally:
        os.close(fd)  # closing also releases the flock taken just to look
    return None
