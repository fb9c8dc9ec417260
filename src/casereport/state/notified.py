"""Which run of each report every delivery target was sent: ``notified`` in state.

A report's run is what its pages show, named by the hash ``ReportState.data_hash`` (the
results and their history: it changes with every fetch of the report, never with a
re-render). A target is sent a report's run once; recording it here is what makes a
re-run of ``apply`` or of ``casereport notify`` send nothing again::

    "notified": {"team": {"support-weekly": "<data_hash of the run sent>"}}
    "notified_at": {"team": {"support-weekly": "2026-11-30T08:00:03Z"}}

``notified_at`` says when that run was fetched (the newest ``fetched_at`` of its results),
so that a target's ``change`` trigger compares with what the target was last sent, not
with the previous run: a change in a run whose message failed is still sent by the next.

The keys are only present once something was sent (states without them read as before);
an older casereport ignores them and drops them on its next write, which can only cause a
message to be sent again, never lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: target -> report -> the run (data hash) last sent to it; in ``notified_at``, the
#: ``fetched_at`` of that run.
Notified = Mapping[str, Mapping[str, str]]


def parse_notified(raw: Any, what: str) -> dict[str, dict[str, str]]:
    """The ``notified`` section (``what``: "run"), or ``notified_at`` ("time");
    ``ValueError`` says what is wrong with it."""
    if not isinstance(raw, dict) or not all(
        isinstance(runs, dict) and all(isinstance(run, str) for run in runs.values())
        for runs in raw.values()
    ):
        raise ValueError(f"is not an object of target -> report -> {what}")
    return {target: dict(runs) for target, runs in raw.items()}


def parse_sections(
    raw: Mapping[str, Any],
) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """``notified`` and ``notified_at`` of a state file; ``ValueError`` names the one
    that is wrong."""
    return _section(raw, "notified", "run"), _section(raw, "notified_at", "time")


def _section(raw: Mapping[str, Any], key: str, what: str) -> dict[str, dict[str, str]]:
    try:
        return parse_notified(raw.get(key, {}), what)
    except ValueError as exc:
        raise ValueError(f"{key} {exc}") from None


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
