"""An ``apply --refresh`` not finished yet: recorded in state until every result it covers
was fetched again.

``apply --refresh`` makes every result (of its ``--target``s) stale. Killed or stopped
halfway, it leaves some results new and the rest as old as they were, and those look fresh
to a plain ``apply`` under the reports' ``refresh``: the site would show a mix of old and
new data for good. So the apply records the refresh it started, in its journal's header and
in the state it writes (``unfinished_refresh``), and planning treats every result it covers
that was fetched before it started as stale, until none is left; then the record goes.

    "unfinished_refresh": {"started_at": "2027-01-15T09:00:00Z", "targets": []}

``targets`` are the ``--target``s it was given (none: every aggregation). A result that
failed to fetch keeps the record too, so the next apply fetches it again. The key is only
present while a refresh is unfinished (states without it read as before); an older
casereport ignores it, losing only the finishing of that refresh.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from casereport import clock


class _Fetched(Protocol):
    @property
    def report(self) -> str: ...
    @property
    def fetched_at(self) -> str: ...


def _moment(text: str) -> datetime:
    # As every stored time is read: one without a zone is UTC (and compares with one that
    # has a zone, where two datetimes of which one is naive would raise).
    return clock.parse(text)


@dataclass(frozen=True)
class UnfinishedRefresh:
    """A forced refresh that started at ``started_at`` (of ``targets``; none: everything)."""

    started_at: str
    targets: tuple[str, ...] = ()

    def covers(self, address: str, report: str) -> bool:
        """Whether the refresh was for this aggregation (as ``--target`` selects it)."""
        if not self.targets:
            return True
        return any(
            target in (report, address) or address.startswith(f"{target}[")
            for target in self.targets
        )

    def due(self, address: str, report: str, fetched_at: str) -> bool:
        """Whether this result is one the refresh has still to fetch."""
        return self.covers(address, report) and _moment(fetched_at) < _moment(self.started_at)

    def reason(self) -> str:
        """Why a plan fetches such a result again (one text for all of them)."""
        return f"--refresh of {self.started_at} not finished"

    def left(self, aggregations: Mapping[str, _Fetched]) -> UnfinishedRefresh | None:
        """This record while some result it covers is still to fetch, else None."""
        started = _moment(self.started_at)
        for address, entry in aggregations.items():
            if self.covers(address, entry.report) and _moment(entry.fetched_at) < started:
                return self
        return None

    def to_json(self) -> dict[str, Any]:
        return {"started_at": self.started_at, "targets": list(self.targets)}


def started(
    started_at: str, targets: Iterable[str], earlier: UnfinishedRefresh | None
) -> UnfinishedRefresh:
    """The record of a refresh starting now, taking over an earlier unfinished one.

    One record is kept: it starts now and covers what both cover. That may fetch again a
    result of the earlier one fetched in between (a call too many), never leaves one old.
    """
    new = tuple(dict.fromkeys(targets))
    if earlier is not None:
        new = () if not new or not earlier.targets else tuple(dict.fromkeys(earlier.targets + new))
    return UnfinishedRefresh(started_at, new)


def parse_unfinished_refresh(raw: Any) -> UnfinishedRefresh:
    """Read ``to_json``'s form; ValueError names what is wrong."""
    if type(raw) is not dict or set(raw) != {"started_at", "targets"}:
        raise ValueError("is not an object of started_at and targets")
    stamp, targets = raw["started_at"], raw["targets"]
    try:
        # Written by casereport, so with its zone: one without is not ours.
        if type(stamp) is not str or datetime.fromisoformat(stamp).tzinfo is None:
            raise ValueError
    except ValueError:
        raise ValueError(f"started_at {stamp!r} is not a timestamp") from None
    if type(targets) is not list or not all(type(t) is str and t for t in targets):
        raise ValueError("targets is not a list of addresses")
    return UnfinishedRefresh(stamp, tuple(targets))
