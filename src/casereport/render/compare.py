"""Which earlier run a page compares a result with (``compare:``), and how it names it.

``previous`` compares with the newest earlier run, as pages always did, and says so in
the same words ("since the previous run on …"). A duration compares with the run
``History.compared_index`` picks, nearest to that long before, and names it by its day
("vs Mon 30 Nov", with the time when another run shares that day). When no run is near
enough, nothing is compared: changes are unknown, never 0.
"""

from __future__ import annotations

from dataclasses import dataclass

from casereport.definitions.reading import COMPARE_PREVIOUS, DURATION_RE, Reading
from casereport.render.filters import weekday
from casereport.state.history import History

PREVIOUS_RUN = "the previous run"
_UNIT_WORDS = {"h": "hour", "d": "day", "w": "week"}


@dataclass(frozen=True, slots=True)
class Compared:
    """The earlier run a result is compared with, or why there is none.

    ``groups``: what that run recorded (name -> count); ``capacity``: how many groups it
    could record (a group absent from a run that recorded fewer had no cases then);
    ``name``: the run in words ("the previous run", "Mon 30 Nov"), empty when there is
    none; ``missing``: why there is none, for a duration ("no run near 7 days ago").
    """

    stamp: str | None = None
    total: float | None = None
    groups: dict[str, float] | None = None
    capacity: int = 0
    name: str = ""
    missing: str = ""

    @property
    def found(self) -> bool:
        return self.stamp is not None


NOTHING = Compared()


def duration_words(compare: str) -> str:
    """``7d`` -> ``7 days``, ``1w`` -> ``1 week``."""
    match = DURATION_RE.fullmatch(compare)
    if match is None:
        return compare
    amount, unit = int(match.group(1)), _UNIT_WORDS[match.group(2)]
    return f"{amount} {unit}{'' if amount == 1 else 's'}"


def run_name(stamps: list[str], index: int, fetched_at: str) -> str:
    """An earlier run named by its day (``Mon 30 Nov``), with its year when that is not this
    run's, and its time when another run (or this one) falls on the same day."""
    stamp = stamps[index]
    same_day = sum(1 for s in stamps if s[:10] == stamp[:10]) > 1 or fetched_at[:10] == stamp[:10]
    return weekday(stamp, year=stamp[:4] != fetched_at[:4], time=same_day)


def compared_run(history: History, fetched_at: str, reading: Reading, limit: int) -> Compared:
    """The run in ``history`` (earlier results, oldest first) that a result fetched at
    ``fetched_at`` is compared with, per ``reading.compare``."""
    if not len(history):
        return NOTHING
    if reading.compare == COMPARE_PREVIOUS:
        # The newest run, read from the ends of the columns (no entry built).
        return Compared(
            stamp=history.latest_fetched_at(),
            total=history.latest_total(),
            groups=history.latest_groups(),
            capacity=history.latest_capacity(limit),
            name=PREVIOUS_RUN,
        )
    index = history.compared_index(fetched_at, reading.compare_seconds)
    if index is None:
        return Compared(missing=f"no run near {duration_words(reading.compare)} ago")
    stamps = history.stamps()
    return Compared(
        stamp=stamps[index],
        total=history.total_at(index),
        groups=history.groups_at(index),
        capacity=history.capacity_at(index, limit),
        name=run_name(stamps, index, fetched_at),
    )
