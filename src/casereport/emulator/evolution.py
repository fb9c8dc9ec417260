"""The synthetic cases over simulated time: when each case arrives, is worked, changes
priority and closes, so the data set seen at one moment differs from another's.

The emulator's default data set is a snapshot (``emulator.synthetic``, fixed at
``REFERENCE_TIME``). Given a simulated "now", it is instead a view of one *world*: every
case's life is drawn once from the seed (``world``), and ``World.at(now)`` says which cases
exist by then and in what state. The same seed and the same now always give the same
cases; two moments of one world agree on everything that happened before both.

The world tells a story a support lead would recognise, in the eight weeks after
``REFERENCE_TIME`` (Monday 1 June 2026), on top of a year of ordinary arrivals:

- cases arrive on weekdays more than at weekends, and faster from the first week of June
  to the third (a surge): the backlog grows;
- an incident on Tuesday 23 and Wednesday 24 June brings a burst of P1 cases, closed within
  days: a P1 spike one week;
- from 22 June a clean-up closes many long-stale cases: the backlog shrinks again;
- throughout, new cases move OPEN -> IN_PROGRESS -> CLOSED, unprioritised ones are triaged
  (NOT_DEFINED becomes P1..P5) and a few are escalated one priority up, and some closed
  cases are archived weeks later.

Everything is drawn with numpy from its own generator, so the snapshot's draws (and the
default data set) are untouched; a view costs a few vectorised operations per column.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

__all__ = ["NEVER", "Snapshot", "World", "world"]

_MINUTE_MS = 60_000
_DAY_MS = 86_400_000
#: A moment that never comes (a case never closed, never escalated).
NEVER = 2**62

# The world's days, counted from the reference time (a Monday): a year before it, and the
# eight weeks of the story after it. Cases are created in that span.
_FIRST_DAY = -365
_LAST_DAY = 56
_WEEKEND_RATE = 0.45  # arrivals at weekends, against a weekday
_SURGE = ((3, 1.0), (6, 2.2), (18, 2.2), (22, 1.0))  # (day, arrival factor), linear between
_INCIDENT_DAYS = (22.0, 23.5)  # Tuesday 23 June 00:00 to Wednesday 24 June 12:00
_INCIDENT_SHARE = 0.008
_CLEANUP_DAYS = (21.0, 45.0)  # stale cases closed between Monday 22 June and mid-July
_CLEANUP_SHARE = 0.55
_STALE_SHARE = 0.14  # cases nobody closes on their own
_WORKED_SHARE = 0.65  # cases that pass through IN_PROGRESS before closing
_TRIAGED_SHARE = 0.7  # NOT_DEFINED cases that are given a priority
_ESCALATED_SHARE = 0.07  # P2..P5 cases moved one priority up
_ARCHIVED_SHARE = 0.04

# Priority codes as ``emulator.synthetic`` lays them out: NOT_DEFINED, then P1..P5.
_NOT_DEFINED, _P1 = 0, 1
_PRIORITY_P = (0.12, 0.03, 0.10, 0.35, 0.32, 0.08)
# Codes of OPEN, IN_PROGRESS and CLOSED, in ``emulator.synthetic``'s order.
_OPEN, _IN_PROGRESS, _CLOSED = 0, 1, 2


@dataclass(frozen=True)
class Snapshot:
    """The world at one moment: its first ``size`` cases exist (creation order), with
    these codes and times (milliseconds; -1 where a case has none yet)."""

    size: int
    status: NDArray[np.int32]
    priority: NDArray[np.int32]
    closed_at: NDArray[np.int64]
    modified_at: NDArray[np.int64]
    archived: NDArray[np.bool_]
    archived_at: NDArray[np.int64]


@dataclass(frozen=True)
class World:
    """Every case's life, in creation order (``created`` is sorted)."""

    created: NDArray[np.int64]
    worked_at: NDArray[np.int64]  # OPEN -> IN_PROGRESS (NEVER: straight to closed)
    closed_at: NDArray[np.int64]  # NEVER: still open
    archived_at: NDArray[np.int64]
    priority: NDArray[np.int32]  # at creation
    shifted_priority: NDArray[np.int32]  # from ``shifted_at`` on
    shifted_at: NDArray[np.int64]

    def at(self, now: datetime) -> Snapshot:
        """The cases that exist at ``now``, as they are then."""
        now_ms = int(now.timestamp() * 1000)
        size = int(np.searchsorted(self.created, now_ms, side="right"))
        created = self.created[:size]

        def happened(times: NDArray[np.int64]) -> NDArray[np.bool_]:
            result: NDArray[np.bool_] = times[:size] <= now_ms
            return result

        closed, worked = happened(self.closed_at), happened(self.worked_at)
        shifted, archived = happened(self.shifted_at), happened(self.archived_at)
        status = np.where(closed, _CLOSED, np.where(worked, _IN_PROGRESS, _OPEN)).astype(np.int32)
        modified = created.copy()
        for done, times in (
            (worked, self.worked_at),
            (shifted, self.shifted_at),
            (closed, self.closed_at),
            (archived, self.archived_at),
        ):
            np.maximum(modified, np.where(done, times[:size], created), out=modified)
        return Snapshot(
            size=size,
            status=status,
            priority=np.where(shifted, self.shifted_priority[:size], self.priority[:size]).astype(
                np.int32
            ),
            closed_at=np.where(closed, self.closed_at[:size], -1),
            modified_at=modified,
            archived=archived,
            archived_at=np.where(archived, self.archived_at[:size], -1),
        )


def world(n: int, seed: int, reference_ms: int) -> World:
    """The lives of ``n`` cases drawn from ``seed``, around ``reference_ms`` (a Monday)."""
    # A generator of its own (seed and a fixed stream number): the snapshot's draws stay as
    # they are, and the two never share a sequence.
    rng = np.random.default_rng([seed, 13])
    incidents = min(n, round(n * _INCIDENT_SHARE))
    ordinary = _arrivals(rng, n - incidents, reference_ms)
    low, high = (reference_ms + int(day * _DAY_MS) for day in _INCIDENT_DAYS)
    burst = rng.integers(low, high, incidents, dtype=np.int64)
    created_all = np.concatenate([ordinary, burst])
    order = np.argsort(created_all, kind="stable")
    created = created_all[order]
    incident = (order >= n - incidents).astype(np.bool_)

    # Time to close: log-normal around three and a half days (an incident's: three days).
    duration = np.where(
        incident,
        np.exp(rng.normal(np.log(3 * _DAY_MS), 0.45, n)),
        np.exp(rng.normal(np.log(3.5 * _DAY_MS), 1.1, n)),
    ).astype(np.int64) + (10 * _MINUTE_MS)
    stale = ~incident & (rng.random(n) < _STALE_SHARE)
    closed_at = np.where(stale, NEVER, created + duration)
    # The clean-up: stale cases created before it starts are closed during it.
    start, end = (reference_ms + int(day * _DAY_MS) for day in _CLEANUP_DAYS)
    cleaned = stale & (created < start - 7 * _DAY_MS) & (rng.random(n) < _CLEANUP_SHARE)
    closed_at = np.where(cleaned, rng.integers(start, end, n, dtype=np.int64), closed_at)
    worked = incident | (rng.random(n) < _WORKED_SHARE)
    worked_at = created + (duration * rng.uniform(0.1, 0.6, n)).astype(np.int64)
    worked_at = np.where(worked & (worked_at < closed_at), worked_at, NEVER)
    archived = rng.random(n) < _ARCHIVED_SHARE
    delay = rng.integers(_DAY_MS, 30 * _DAY_MS, n, dtype=np.int64)
    archived_at = np.where(archived & (closed_at < NEVER), closed_at + delay, NEVER)

    priority = np.where(incident, _P1, rng.choice(len(_PRIORITY_P), n, p=_PRIORITY_P)).astype(
        np.int32
    )
    ranked = np.asarray(_PRIORITY_P[1:]) / sum(_PRIORITY_P[1:])
    triaged = rng.choice(len(ranked), n, p=ranked).astype(np.int32) + _P1
    undefined = priority == _NOT_DEFINED
    shifts = np.where(
        undefined, rng.random(n) < _TRIAGED_SHARE, rng.random(n) < _ESCALATED_SHARE
    ) & (priority != _P1)
    shifted_priority = np.where(undefined, triaged, priority - 1).astype(np.int32)
    shifted_at = created + rng.exponential(1.5 * _DAY_MS, n).astype(np.int64)
    shifted_at = np.where(shifts & (shifted_at < closed_at), shifted_at, NEVER)
    return World(
        created=created,
        worked_at=worked_at,
        closed_at=closed_at,
        archived_at=archived_at,
        priority=priority,
        shifted_priority=shifted_priority,
        shifted_at=shifted_at,
    )


def _arrivals(rng: np.random.Generator, n: int, reference_ms: int) -> NDArray[np.int64]:
    """``n`` creation times, sorted, drawn from the daily arrival rate (weekends and the
    surge included): uniform within a day, days in proportion to their rate."""
    days = np.arange(_FIRST_DAY, _LAST_DAY)
    rate = np.where(days % 7 >= 5, _WEEKEND_RATE, 1.0)  # day 0 is a Monday
    surge_days, surge = zip(*_SURGE, strict=True)
    rate = rate * np.interp(days, surge_days, surge)
    cumulative = np.concatenate([[0.0], np.cumsum(rate)])
    bounds = np.append(days, _LAST_DAY).astype(np.float64) * _DAY_MS
    drawn = np.interp(rng.random(n) * cumulative[-1], cumulative, bounds)
    return np.sort(reference_ms + drawn.astype(np.int64))
