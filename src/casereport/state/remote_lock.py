"""The lock of a remote state: an object beside it, created only if absent.

As Terraform's S3 backend with ``use_lockfile`` (1.10): ``<key>.lock`` is written with
``If-None-Match: *``, so of two runs creating it at once exactly one succeeds, with no
database. It holds the same details as a local lock file (ID, operation, who, pid, when).
A second run fails at once naming the holder and how long ago it took the lock (or polls
until ``--lock-timeout``). Unlike ``flock``, an object outlives its writer: a lock whose
holder was a process of this machine that is gone is taken over by a compare-and-swap on
the lock's ETag (two runs taking it over at once: one wins); a lock from another machine
stays until ``casereport force-unlock ID``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import UTC, datetime

from casereport import clock
from casereport.errors import LockError
from casereport.state.lock import LockInfo  # the same `user@host` as a local lock
from casereport.state.objects import Bucket, Conflict, Stored

_POLL_SECONDS = 0.25


def age(created: str, now: datetime | None = None) -> str:
    """How long ago a lock was taken: ``40 s``, ``12 min``, ``3 h``, ``2 d``."""
    try:
        then = clock.parse(created)
    except ValueError:
        return "an unknown time"
    seconds = max(0, int(((now or datetime.now(UTC)) - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _held(bucket: Bucket, key: str) -> tuple[Stored, LockInfo | None] | None:
    found = bucket.read(key)
    return None if found is None else (found, LockInfo.parse(found.data))


def unreadable_id(data: bytes) -> str:
    """The ID ``force-unlock`` takes for a lock object that holds no lock's details (damaged,
    or another tool's): made of its content, so that the ID the error named removes that
    object, not another lock found there later (checked when it is read, as any lock's ID)."""
    return f"unreadable-{hashlib.sha256(data).hexdigest()[:12]}"


def _locked_error(
    where: str, held: Stored, holder: LockInfo | None, timeout: float, hint: str
) -> LockError:
    waited = f" after waiting {timeout:g} s" if timeout else ""
    if holder is None:
        return LockError(
            f"the state {where} is locked{waited} by an unreadable lock object {where}.lock; "
            f"if no run is going on: casereport force-unlock {unreadable_id(held.data)}{hint}"
        )
    return LockError(
        f"the state {where} is locked{waited} by {holder.describe()}, taken "
        f"{age(holder.created)} ago; wait for that run to finish (or pass --lock-timeout), "
        f"or if it is stuck: casereport force-unlock {holder.id}{hint}"
    )


@contextlib.contextmanager
def remote_lock(
    bucket: Bucket,
    key: str,
    operation: str,
    *,
    timeout: float = 0.0,
    notice: Callable[[str], None] | None = None,
    hint: str = "",
) -> Iterator[LockInfo]:
    """Hold the lock object ``key`` (``<state key>.lock``) for the block."""
    where = bucket.where(key.removesuffix(".lock"))
    info = LockInfo.taken_now(operation, where)
    data = (json.dumps(asdict(info), indent=2) + "\n").encode()
    deadline = time.monotonic() + timeout
    while True:
        try:
            bucket.put(key, data, expected=None)
            break
        except Conflict:
            pass
        held = _held(bucket, key)
        if held is None:
            continue  # released in between: try again at once
        found, holder = held
        if holder is not None and _abandoned(holder):
            try:
                bucket.put(key, data, expected=found.version)
            except Conflict:
                continue  # another run took it over first
            if notice is not None:
                notice(
                    f"Taking over the lock {holder.describe()}, whose run ended without "
                    "releasing it."
                )
            break
        if time.monotonic() >= deadline:
            raise _locked_error(where, found, holder, timeout, hint)
        time.sleep(_POLL_SECONDS)
    try:
        yield info
    finally:
        with contextlib.suppress(LockError):
            release(bucket, key, info.id)


def _abandoned(holder: LockInfo) -> bool:
    """A lock of a process of this machine (``LockInfo.on_this_machine``) that is no longer
    running."""
    return holder.on_this_machine() and not holder.alive_here()


def release(bucket: Bucket, key: str, lock_id: str) -> None:
    """Delete the lock object if it still is ours (force-unlock may have removed it)."""
    held = _held(bucket, key)
    if held is not None and held[1] is not None and held[1].id == lock_id:
        bucket.delete(key)


def verify_held(bucket: Bucket, key: str, lock_id: str) -> None:
    """Refuse to write when this run's lock object is gone or another's."""
    held = _held(bucket, key)
    if held is None or held[1] is None or held[1].id != lock_id:
        raise LockError(
            f"this run's lock on the state {bucket.where(key.removesuffix('.lock'))} "
            f"(ID {lock_id}) was removed, by force-unlock or another run; nothing more was "
            "written: run again"
        )


def force_unlock(bucket: Bucket, key: str, lock_id: str) -> tuple[LockInfo | None, str]:
    """Remove the lock object with ID ``lock_id``; returns it and its age (None and "" for
    an unreadable one, whose ID is ``unreadable_id``)."""
    where = bucket.where(key.removesuffix(".lock"))
    held = _held(bucket, key)
    if held is None:
        raise LockError(f"the state {where} is not locked; nothing to unlock")
    found, holder = held
    held_id = holder.id if holder is not None else unreadable_id(found.data)
    if held_id != lock_id:
        raise LockError(
            f"the lock on {where} has ID {held_id}, not {lock_id}; "
            "copy the ID from the lock error message"
        )
    bucket.delete(key)
    return (holder, age(holder.created)) if holder is not None else (None, "")
