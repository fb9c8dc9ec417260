"""Which run of each report every delivery target was sent: ``notified`` in state.

A report's run is what its pages show, named by the hash ``ReportState.data_hash`` (the
results and their history: it changes with every fetch of the report, never with a
re-render). A target is sent a report's run once; recording it here is what makes a
re-run of ``apply`` or of ``casereport notify`` send nothing again::

    "notified": {"team": {"support-weekly": "<data_hash of the run sent>"}}

The key is only present once something was sent (states without it read as before); an
older casereport ignores it and drops it on its next write, which can only cause a
message to be sent again, never lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: target -> report -> the run (data hash) last sent to it.
Notified = Mapping[str, Mapping[str, str]]


def parse_notified(raw: Any) -> dict[str, dict[str, str]]:
    """The ``notified`` section; ``ValueError`` says what is wrong with it."""
    if not isinstance(raw, dict) or not all(
        isinstance(runs, dict) and all(isinstance(run, str) for run in runs.values())
        for runs in raw.values()
    ):
        raise ValueError("is not an object of target -> report -> run")
    return {target: dict(runs) for target, runs in raw.items()}


def notified_json(notified: Notified) -> dict[str, dict[str, str]]:
    """Sorted, for a deterministic state file."""
    return {target: dict(sorted(notified[target].items())) for target in sorted(notified)}


def was_sent(notified: Notified, target: str, report: str, run: str) -> bool:
    """Whether ``target`` was already sent this run of ``report``."""
    return notified.get(target, {}).get(report) == run


def with_sent(notified: Notified, sent: Mapping[str, Mapping[str, str]]) -> Notified:
    """``notified`` with the runs just sent (target -> report -> run) recorded."""
    merged = {target: dict(runs) for target, runs in notified.items()}
    for target, runs in sent.items():
        merged.setdefault(target, {}).update(runs)
    return merged
