"""Client-side pacing against Datadog's rate limits (private to ``casereport.api.client``).

Datadog counts requests per calendar-aligned window of ``X-RateLimit-Period`` seconds and
reports on every response ``X-RateLimit-Limit`` (requests per window), ``-Remaining`` and
``-Reset`` (whole seconds until the window ends); past the limit it answers 429. One
:class:`RateLimiter` is shared by every concurrent request of a client. It keeps a local
estimate of the budget left in the current window so that requests stop *before* the
server refuses them, wait together for the reset, and otherwise add no delay at all.

The estimate stays at or below what the server has left, whatever order the server
counts concurrent requests in, as long as this client is the one spending the budget:

* Each request sent takes one unit. A response to request ``i`` proves the budget is at
  least its ``Remaining`` minus the requests sent after ``i`` and minus those still
  unanswered when ``i`` was sent: only those can have been counted after it. The best such
  bound is kept, and ``Remaining`` caps the estimate (so other clients' use shows too).
* ``Reset`` is rounded to whole seconds in an undocumented direction, so a response
  received at ``t`` bounds its window's end by ``t + min(Reset + 1, Period)`` (a reset with
  a fractional part is taken as exact). Windows repeat every ``Period`` seconds, so the
  bound carries over from one window to the next.
* When that bound passes, the budget refills to ``Limit`` minus every request that might
  already count in the new window (those sent since the last refill, and those still in
  flight). If that leaves nothing, one request goes alone (a probe) and its answer sets
  the budget. The same probe goes first before any rate-limit header has been seen, so a
  nearly spent budget is never overrun by a first burst.
* Within one window ``Remaining`` only falls. A response whose ``Remaining`` is not below
  the lowest value seen before that request was sent shows the window rolled over sooner
  than estimated: the limiter moves to the new window at once and tightens its bound.
* A 429 empties the budget until its window ends.

Generic limiters (token and leaky buckets such as ``aiolimiter``) pace to a fixed local
rate; they cannot follow a server-side, calendar-aligned window and its ``Remaining``
header, hence this module.
"""

from __future__ import annotations

import asyncio
import enum
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]

#: Extra wait past the estimated end of a window, for clock granularity.
MARGIN = 0.005


class WaitTooLong(Exception):
    """Raised by :meth:`RateLimiter.acquire` when the budget returns only after the deadline,
    or later than the longest wait allowed."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"rate-limit budget returns in {wait:.1f} s")
        self.wait = wait


@dataclass(frozen=True, slots=True)
class RateLimitHeaders:
    """The ``X-RateLimit-*`` headers of one response."""

    limit: int
    period: float
    remaining: int
    reset: float
    #: Whether ``reset`` had a fractional part (then it is taken as exact, not rounded).
    reset_exact: bool = False

    @classmethod
    def parse(cls, headers: Mapping[str, str]) -> RateLimitHeaders | None:
        """Read the headers; None when one is missing or not a usable number."""
        try:
            raw_reset = headers["x-ratelimit-reset"].strip()
            limit = int(float(headers["x-ratelimit-limit"]))
            period = float(headers["x-ratelimit-period"])
            remaining = int(float(headers["x-ratelimit-remaining"]))
            reset = float(raw_reset)
        except (KeyError, ValueError, OverflowError):
            return None
        if limit < 1 or not (0 < period < math.inf) or not (0 <= reset < math.inf):
            return None
        return cls(limit, period, min(max(remaining, 0), limit), reset, "." in raw_reset)

    def window_end_bound(self, received: float) -> float:
        """A time no earlier than the end of the window this response was counted in."""
        slack = 0.0 if self.reset_exact else 1.0
        return received + min(self.reset + slack, self.period)


@dataclass(frozen=True, slots=True)
class Ticket:
    """One granted request: its send order and what the limiter knew when it was sent."""

    seq: int
    gen: int
    floor: int | None  # lowest Remaining seen in the window so far
    unanswered: int  # requests sent before this one and not answered yet


class _Mode(enum.Enum):
    UNKNOWN = "no rate-limit headers seen yet: one probe at a time"
    PACED = "paced by the headers"
    UNPACED = "the server sends no rate-limit headers: no pacing"


class RateLimiter:
    """Budget shared by concurrent requests; see the module docstring for the model."""

    def __init__(self, clock: Clock, sleep: Sleep) -> None:
        self._clock = clock
        self._sleep = sleep
        self._mode = _Mode.UNKNOWN
        self._probe: asyncio.Event | None = None  # set while a probe is in flight
        self._probe_seq = 0
        self._need_probe = False  # the window's budget is unknown: probe before sending
        self._limit = 0
        self._period = 0.0
        self._seq = 0  # requests granted so far
        self._base = 0  # proven budget plus ``_seq``: the budget is ``_base - _seq``
        self._floor: int | None = None  # lowest Remaining seen in the current window
        self._gen = 0  # current window generation
        self._gen_start = 1  # first request (seq) that belongs to the current window
        self._window_end = 0.0  # upper bound on the end of the current window
        self._unanswered = 0
        self._paused_until = 0.0

    @property
    def budget(self) -> int | None:
        """Requests the current window still allows, or None while not pacing."""
        if self._mode is not _Mode.PACED:
            return None
        budget = self._base - self._seq
        return budget if self._floor is None else min(budget, self._floor)

    @property
    def window_end(self) -> float | None:
        """Upper bound on the end of the current window, or None while not pacing."""
        return self._window_end if self._mode is _Mode.PACED else None

    def pause(self, until: float) -> None:
        """Hold every request until ``until`` (a 429 without usable headers)."""
        self._paused_until = max(self._paused_until, until)

    async def acquire(self, deadline: float = math.inf, max_wait: float = math.inf) -> Ticket:
        """Wait until a request may be sent; raise :class:`WaitTooLong` rather than wait
        past ``deadline`` or longer than ``max_wait`` seconds."""
        while True:
            now = self._clock()
            wake = self._paused_until
            if now >= wake:
                if self._mode is _Mode.UNPACED:
                    return self._grant()
                if self._mode is _Mode.PACED and now >= self._window_end:
                    self._roll(now)
                if self._mode is _Mode.UNKNOWN or self._need_probe:
                    if self._probe is None:
                        self._probe = asyncio.Event()
                        ticket = self._grant()
                        self._probe_seq = ticket.seq
                        return ticket
                    await self._probe.wait()
                    continue
                budget = self.budget
                if budget is not None and budget > 0:
                    return self._grant()
                wake = self._window_end + MARGIN
            if wake > deadline or wake - now > max_wait:
                raise WaitTooLong(wake - now)
            await self._sleep(wake - now)

    def done(
        self,
        ticket: Ticket,
        headers: Mapping[str, str] | None,
        status: int | None,
        received: float,
    ) -> None:
        """Record how ``ticket`` went (``headers`` and ``status`` are None without a response)."""
        self._unanswered -= 1
        try:
            parsed = RateLimitHeaders.parse(headers) if headers is not None else None
            if parsed is not None:
                self._limit, self._period = parsed.limit, parsed.period
                if status == 429:
                    self._throttled(ticket, parsed, received)
                else:
                    self._observe(ticket, parsed, received)
            elif headers is not None and self._mode is _Mode.UNKNOWN and status != 429:
                self._mode = _Mode.UNPACED
        finally:
            if self._probe is not None and ticket.seq == self._probe_seq:
                self._probe.set()
                self._probe = None

    # -- internals ----------------------------------------------------------------------

    def _grant(self) -> Ticket:
        self._seq += 1
        ticket = Ticket(self._seq, self._gen, self._floor, self._unanswered)
        self._unanswered += 1
        return ticket

    def _start_window(self, first: int, base: int, floor: int, window_end: float) -> None:
        self._mode = _Mode.PACED
        self._gen += 1
        self._gen_start = first
        self._base = base
        self._floor = floor
        self._window_end = window_end
        self._need_probe = False

    def _observe(self, ticket: Ticket, h: RateLimitHeaders, received: float) -> None:
        bound = h.window_end_bound(received)
        # Only requests sent after this one, or unanswered when it was sent, can have been
        # counted after it: a lower bound on the budget, in any order of counting.
        proven = h.remaining + ticket.seq - ticket.unanswered
        if self._mode is not _Mode.PACED:
            self._start_window(ticket.seq, proven, h.remaining, bound)
            return
        if ticket.seq < self._gen_start:
            return  # sent before the current window began: says nothing about it
        if ticket.gen == self._gen and ticket.floor is not None and h.remaining >= ticket.floor:
            # Remaining went up: the window rolled over before this request was counted.
            self._start_window(
                ticket.seq, proven, h.remaining, min(self._window_end + self._period, bound)
            )
            return
        self._base = max(self._base, proven)
        self._floor = h.remaining if self._floor is None else min(self._floor, h.remaining)
        self._window_end = min(self._window_end, bound)
        self._need_probe = False

    def _throttled(self, ticket: Ticket, h: RateLimitHeaders, received: float) -> None:
        if self._mode is _Mode.PACED and ticket.seq < self._gen_start:
            return  # refused in an earlier window
        # The server has nothing left: no request until this window has surely ended.
        self._start_window(self._gen_start, self._seq, 0, h.window_end_bound(received))

    def _roll(self, now: float) -> None:
        """The current window has ended: refill the budget for the next one."""
        periods = int((now - self._window_end) // self._period) + 1
        self._window_end += periods * self._period
        # Requests that may already count in the new window: those still in flight and,
        # unless a whole window went by since, those sent in the one that just ended.
        at_risk = self._unanswered
        if periods == 1:
            at_risk += self._seq - self._gen_start + 1
        budget = self._limit - at_risk
        self._gen += 1
        self._gen_start = self._seq + 1
        self._floor = None
        self._base = self._seq + max(budget, 0)
        self._need_probe = budget <= 0
