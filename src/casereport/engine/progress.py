"""Progress lines for logs: where a long apply or render is, every ten seconds.

On a terminal the progress bar shows where a run is; in a CI log there is no bar, and a
run of many minutes would say nothing until its summary. So, without a terminal, a run
that takes longer than ``INTERVAL`` seconds prints one line per interval::

    fetched 340/1,000, 2 failed, 12 s
    rendered 340/1,000 reports, 42 s

``ProgressLines`` counts the run's events (``engine.events``) and writes a line whenever
one is due: when an event arrives, and from a background thread while none does (a
request waiting out a rate limit sends no event for minutes). Its clock and interval are
parameters, so tests pin them; by default the clock is ``casereport.clock.monotonic``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from casereport import clock
from casereport.engine.events import Event, Failed, Fetched, Rendered, Started

#: Seconds between two progress lines (and before the first).
INTERVAL = 10.0
#: How often, in seconds, the background thread looks whether a line is due (None: no thread).
POLL: float | None = 1.0


class ProgressLines:
    """A listener that writes a progress line with ``write`` once per ``interval``."""

    def __init__(
        self,
        write: Callable[[str], None],
        *,
        monotonic: Callable[[], float] | None = None,
        interval: float | None = None,
        waiting: str = "planning",
    ) -> None:
        self._write = write
        self._clock = monotonic if monotonic is not None else clock.monotonic
        self._interval = INTERVAL if interval is None else interval
        self._waiting = waiting  # what the run does before its first stage
        self._lock = threading.Lock()
        self._started = self._clock()
        self._due = self._started + self._interval
        self._stage: str | None = None
        self._total = 0
        self._done = 0
        self._failed = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __call__(self, event: Event) -> None:
        with self._lock:
            if isinstance(event, Started):
                self._stage, self._total, self._done, self._failed = event.stage, event.total, 0, 0
            elif isinstance(event, Fetched) or (
                isinstance(event, Rendered) and event.report is not None
            ):
                self._done += 1
            elif isinstance(event, Failed) and event.address is not None:
                self._done += 1
                self._failed += 1
        self.tick()

    def tick(self) -> None:
        """Write the progress line if one is due."""
        with self._lock:
            now = self._clock()
            if now < self._due:
                return
            while self._due <= now:  # one line however late, then on the interval again
                self._due += self._interval
            line = self.line(now)
        self._write(line)

    def line(self, now: float) -> str:
        """Where the run is at ``now`` (on the clock it was given)."""
        elapsed = f"{int(now - self._started):,} s"
        failed = f", {self._failed:,} failed" if self._failed else ""
        if self._stage == "fetch":
            return f"fetched {self._done:,}/{self._total:,}{failed}, {elapsed}"
        if self._stage == "render":
            return f"rendered {self._done:,}/{self._total:,} reports{failed}, {elapsed}"
        return f"{self._waiting}, {elapsed}"

    # -- the background thread --------------------------------------------------------

    def __enter__(self) -> ProgressLines:
        if POLL is not None:
            # A daemon: a run that ends without leaving the block (os._exit) is not held up.
            # Render workers are forked while it runs; it only waits or writes to stderr,
            # which a worker never does, so a fork never finds it holding a lock the child needs.
            self._thread = threading.Thread(
                target=self._poll, args=(POLL,), name="casereport-progress", daemon=True
            )
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _poll(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                self.tick()
            except OSError:  # stderr went away (a closed pipe): the run itself goes on
                return
