"""The current time, pinned by ``SOURCE_DATE_EPOCH`` for reproducible runs and tests, or
by ``pinned`` for a block of code (``casereport demo`` runs each apply at a simulated time);
and ``monotonic``, the clock that durations and progress lines are measured on."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime

# A context variable rather than the environment: a pin holds for its block alone (and for
# the asyncio tasks started in it), never for another thread or a later command.
_pinned: ContextVar[datetime | None] = ContextVar("casereport_clock_pinned", default=None)


def now() -> datetime:
    """Now in UTC, to the second; ``pinned`` or ``SOURCE_DATE_EPOCH`` (seconds since 1970)
    pins it."""
    moment = _pinned.get()
    if moment is not None:
        return moment
    pinned_epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if pinned_epoch:
        try:
            return datetime.fromtimestamp(int(pinned_epoch), UTC)
        except ValueError:
            from casereport.errors import ConfigError

            raise ConfigError(
                f"SOURCE_DATE_EPOCH must be whole seconds since 1970, got {pinned_epoch!r}"
            ) from None
    return datetime.now(UTC).replace(microsecond=0)


def monotonic() -> float:
    """Seconds on a clock that never goes back (``time.monotonic``), for durations.

    Not pinned by ``SOURCE_DATE_EPOCH``: a reproducible run still says how long its requests
    took. Tests replace this function to pin the durations in ``apply --json``."""
    return time.monotonic()


def parse(text: str) -> datetime:
    """A stored timestamp (``2026-11-26T19:00:00Z``, or with an offset) as an aware datetime.
    One without a zone is UTC, as every time casereport writes is: never the machine's zone,
    which would move a hand-edited stamp by hours on one machine and not on another."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@contextlib.contextmanager
def pinned(moment: datetime) -> Iterator[None]:
    """Within the block, ``now()`` is ``moment`` (in UTC, to the second)."""
    token = _pinned.set(moment.astimezone(UTC).replace(microsecond=0))
    try:
        yield
    finally:
        _pinned.reset(token)
