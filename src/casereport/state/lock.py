"""The state lock: one run at a time may write a state file.

A lock is an OS advisory lock (``flock``) on ``<state>.lock``, plus the holder's details
(ID, operation, who, when) written inside the file so a second run can name the holder.
``flock`` is released by the kernel when the holder dies, so a crashed or killed run never
leaves the workspace locked: the next run takes the lock over and says so. A run that is
still alive but stuck keeps its lock until ``casereport force-unlock ID`` removes the lock
file (the stuck run then holds a lock on a file nobody else will open). Such a run must
not write afterwards: ``verify_held`` tells it, right before it writes, that its lock file
is gone or another's (``write_state`` calls it).

A read-only ``plan`` takes a shared lock (``shared_state_lock``): plans run side by side,
and wait only for a run that writes. The lock file is opened with ``O_NOFOLLOW`` and must
be a regular file: a symlink planted at its path is refused, never followed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import getpass
import json
import os
import shlex
import socket
import stat
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from casereport import __version__
from casereport.errors import LockError

_POLL_SECONDS = 0.1

# model.DEFAULT_STATE_PATH (model imports this module, so it cannot import model).
_DEFAULT_STATE_PATH = Path(".casereport/state.json")

# The descriptors of the locks this process holds.
_HELD: set[int] = set()

# The exclusive locks this process holds: lock file path -> (descriptor, lock ID).
_OWN: dict[str, tuple[int, str]] = {}

# No symlink is followed, no descriptor leaks into a child process, and opening a FIFO
# planted at the path does not block (it is refused as not a regular file).
_OPEN_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


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
    _OWN.clear()


os.register_at_fork(after_in_child=_close_in_child)


# The fields of a lock's details (``LockInfo``): text, all but the last three required.
_REQUIRED_TEXT = ("id", "operation", "who", "created", "path")
_TEXT_FIELDS = (*_REQUIRED_TEXT, "version", "boot_id", "pid_namespace")
_PID_MAX = 2**31 - 1  # a pid_t


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
    # Where ``pid`` means something (see ``machine``); "" in an older casereport's locks.
    boot_id: str = ""
    pid_namespace: str = ""

    @classmethod
    def taken_now(cls, operation: str, path: str) -> LockInfo:
        """The lock this process takes now for ``operation`` on ``path`` (a new ID)."""
        boot_id, pid_namespace = machine()
        return cls(
            id=str(uuid.uuid4()),
            operation=operation,
            who=_who(),
            pid=os.getpid(),
            created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            path=path,
            boot_id=boot_id,
            pid_namespace=pid_namespace,
        )

    @classmethod
    def parse(cls, data: bytes) -> LockInfo | None:
        """The details a lock file or object holds, or None when they are not a lock's
        (damaged, another tool's, planted): a JSON object with every required field, each
        of its type, the pid a whole number a pid can be (``kill`` must not fail on it)."""
        try:
            raw = json.loads(data.decode("utf-8"))
        except (ValueError, RecursionError):  # (UnicodeDecodeError is a ValueError)
            return None  # RecursionError: nested past the parser's depth, as only a plant is
        if not isinstance(raw, dict):
            return None
        texts = {k: raw[k] for k in _TEXT_FIELDS if k in raw}
        pid = raw.get("pid")
        if (
            not all(k in texts for k in _REQUIRED_TEXT)
            or not all(type(v) is str for v in texts.values())
            or type(pid) is not int
            or not 0 <= pid <= _PID_MAX
        ):
            return None
        return cls(pid=pid, **texts)

    @property
    def hostname(self) -> str:
        """The holder's host: ``who`` is ``user@host``."""
        return self.who.rpartition("@")[2]

    def on_this_machine(self) -> bool:
        """Whether the holder's pid names a process this one can see: the same host name,
        boot and PID namespace. A host name alone is not enough: CI runners on different
        machines often share one (``runner-…-concurrent-0``), and processes in containers
        have small, repeating pids, so a live run elsewhere would look dead here. On Linux
        a lock that does not say where it was taken (an older casereport's) is never judged
        here; where the system does not say either (not Linux), the host name is all there
        is, as before. A run killed before a reboot, or in a container since replaced, is
        not "here" any more: its lock needs ``force-unlock``."""
        where = (self.boot_id, self.pid_namespace)
        return self.hostname == socket.gethostname() and where == machine()

    def alive_here(self) -> bool:
        """Whether the holder is a running process on this machine."""
        if not self.on_this_machine() or self.pid <= 0:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # alive, under another user
            return True
        return True

    def describe(self) -> str:
        """``ID 1234… (apply by alice@host, pid 42, since 2026-…Z)``."""
        return (
            f"ID {self.id} ({self.operation} by {self.who}, pid {self.pid}, since {self.created})"
        )


@functools.cache
def machine() -> tuple[str, str]:
    """This process's boot (the kernel's random boot ID) and PID namespace: where its pid
    names it. Two empty strings where the system does not say (not Linux): the host name
    is all there is to go by there."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except (OSError, UnicodeDecodeError):
        return "", ""
    return boot, namespace


def lock_path(state_path: Path) -> Path:
    """The lock file beside a state file."""
    return state_path.with_name(state_path.name + ".lock")


class _NotRegular(OSError):
    """The lock path is a symlink, a directory, a FIFO or a device."""


def _open_regular(path: Path, flags: int) -> int:
    """Open ``path`` without following a symlink; refuse anything but a regular file."""
    try:
        fd = os.open(path, flags | _OPEN_FLAGS, 0o644)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
            raise _NotRegular(exc.errno, exc.strerror) from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise _NotRegular(errno.EINVAL, "not a regular file")
    return fd


def _not_regular(path: Path) -> LockError:
    return LockError(
        f"the lock file {path} is a symlink or not a regular file; remove it "
        "(casereport creates it as a plain file) and run again"
    )


def _read_info(path: Path) -> LockInfo | None:
    try:
        fd = _open_regular(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as handle:
            return LockInfo.parse(handle.read(65536))
    except OSError:
        return None


def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name in containers without /etc/passwd entry
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def _try_lock(path: Path, mode: int = fcntl.LOCK_EX) -> int | None:
    """Open and flock ``path``; return the fd, or None when another process holds it."""
    fd = _open_regular(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
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
        return _try_lock(path, mode)
    return fd


def _open_and_lock(path: Path, mode: int = fcntl.LOCK_EX) -> int | None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return _try_lock(path, mode)
    except _NotRegular:
        raise _not_regular(path) from None
    except OSError as exc:
        raise LockError(f"cannot create the lock file {path}: {exc.strerror or exc}") from None


def _state_flag(state_path: Path) -> str:
    """`` --state PATH`` for hints, when the state is not at the default path."""
    if state_path == _DEFAULT_STATE_PATH:
        return ""
    return f" --state {shlex.quote(str(state_path))}"


def _locked_error(state_path: Path, path: Path, timeout: float, *, reading: bool) -> LockError:
    """Why the lock could not be taken, and what to do: wait, or unlock a stuck run."""
    holder = _read_info(path)
    waited = f" after waiting {timeout:g} s" if timeout else ""
    if holder is None or (holder.on_this_machine() and not holder.alive_here()):
        # Shared (plan) locks write no details: the file is empty or names a past holder.
        return LockError(
            f"the state {state_path} is locked{waited} by another run (a plan reads it); "
            "wait for it to finish, or pass --lock-timeout SECONDS to wait"
        )
    who = holder.describe()
    if reading and holder.alive_here():
        # A plan waits for a writer; unlocking a running apply would let both write.
        return LockError(
            f"the state {state_path} is locked{waited} by {who}, which is still running; "
            f"wait for that {holder.operation} to finish, or pass --lock-timeout SECONDS to wait"
        )
    hint = f"casereport force-unlock {holder.id}{_state_flag(state_path)}"
    return LockError(
        f"the state {state_path} is locked{waited} by {who}; wait for that run to "
        f"finish (or pass --lock-timeout), or if it is stuck: {hint}"
    )


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
            raise _locked_error(state_path, path, timeout, reading=False)
        time.sleep(_POLL_SECONDS)
    abandoned = _read_info(path)
    if abandoned is not None and notice is not None:
        notice(
            f"Taking over the lock {abandoned.describe()}, whose run ended without releasing it."
        )
    info = LockInfo.taken_now(operation, str(state_path))
    _HELD.add(fd)
    key = str(path.absolute())
    outer = _OWN.get(key)  # a lock this process took before on a file since removed
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(asdict(info), indent=2) + "\n").encode(), 0)
        os.fsync(fd)
        _OWN[key] = (fd, info.id)
        yield info
    finally:
        if fd in _HELD:  # not in a forked child unwinding its parent's stack
            _HELD.discard(fd)
            if outer is not None:
                _OWN[key] = outer
            else:
                _OWN.pop(key, None)
            current = _read_info(path)
            if current is not None and current.id == info.id:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            os.close(fd)


@contextlib.contextmanager
def shared_state_lock(
    state_path: Path, *, timeout: float = 0.0, notice: Callable[[str], None] | None = None
) -> Iterator[None]:
    """A shared lock for a read-only run (``plan``): readers together, never with a writer.

    A shared holder writes no details (the file is one for all readers); on release the
    last reader removes the file, as a writer does.
    """
    path = lock_path(state_path)
    deadline = time.monotonic() + timeout
    while (fd := _open_and_lock(path, fcntl.LOCK_SH)) is None:
        if time.monotonic() >= deadline:
            raise _locked_error(state_path, path, timeout, reading=True)
        time.sleep(_POLL_SECONDS)
    _HELD.add(fd)
    try:
        yield
    finally:
        if fd in _HELD:
            _HELD.discard(fd)
            try:
                # The last reader out (no one else holds the file) removes it.
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if os.fstat(fd).st_ino == os.stat(path, follow_symlinks=False).st_ino:
                    path.unlink()
            except OSError:
                pass
            os.close(fd)


def verify_held(state_path: Path) -> None:
    """Refuse to go on when this process locked ``state_path`` but no longer holds it.

    ``force-unlock`` (or a run taking a removed lock over) leaves a stopped run holding a
    lock on a file nobody else opens: the lock path now names another file, or none. Such
    a run must not write. A process that took no lock on the path has nothing to check.
    """
    path = lock_path(state_path)
    own = _OWN.get(str(path.absolute()))
    if own is None:
        return
    fd, lock_id = own
    try:
        current = os.stat(path, follow_symlinks=False)
        same = current.st_ino == os.fstat(fd).st_ino and current.st_dev == os.fstat(fd).st_dev
    except OSError:
        same = False
    info = _read_info(path) if same else None
    if info is None or info.id != lock_id:
        raise LockError(
            f"this run's lock on the state {state_path} (ID {lock_id}) was removed, by "
            "force-unlock or another run; nothing more was written: run again"
        )


def force_unlock(state_path: Path, lock_id: str) -> LockInfo:
    """Remove the lock with ID ``lock_id``; refuse when the lock has another ID or none."""
    path = lock_path(state_path)
    info = _read_info(path) if path.exists() or path.is_symlink() else None
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
        # No O_CREAT: looking must not create a lock file.
        fd = _open_regular(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    except _NotRegular:
        raise _not_regular(path) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_info(path)
    finally:
        os.close(fd)  # closing also releases the flock taken just to look
    return None
