"""What a message about one run of one report says, whatever carries it (``Digest``).

Built from the report's data file (``render.data.report_data``: the numbers its pages show,
compared with the run its ``compare:`` picks) and its check results; Slack, email and
webhooks each lay the same digest out their own way.

``run_changed`` is the ``change`` trigger. A run *changed* a report when, for at least one
of its aggregations with a result, the total or a group's count (the first value, as the
pages show it; a group missing on one side reads as 0) differs from the aggregation's
previous result, the newest one in its history since its query last changed; an
aggregation with no such previous result (new, or its query changed) changed too, since
every number it shows is new. It compares with the previous run, not with the run
``compare:`` picks: against "7 days ago" every run would have changed. For a target that
was sent an earlier run, it compares with what that run showed instead (``since``), so a
change whose message failed is still sent with the next run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from casereport.checks.results import CheckResult
from casereport.definitions.expand import ReportSpec
from casereport.render.data import report_data
from casereport.state.comparable import comparable_history
from casereport.state.history import count, epoch
from casereport.state.model import AggregationState, Source

__all__ = ["MAX_LINES", "Change", "Digest", "Headline", "make_digest", "run_changed"]

#: The most headline numbers and group changes a message lists (the page has the rest).
MAX_LINES = 10


@dataclass(frozen=True)
class Headline:
    """One aggregation's total, and the total it is compared with (None: unknown)."""

    title: str
    total: float | None
    compared: float | None


@dataclass(frozen=True)
class Change:
    """A group whose count differs from the compared run's."""

    aggregation: str
    label: str
    before: float
    after: float


@dataclass(frozen=True)
class Digest:
    """One report's run as a message tells it."""

    report: str
    title: str
    run: str  # the run's data hash (``ReportState.data_hash``)
    triggers: tuple[str, ...]  # why it is sent: always, change, check_failed
    demo: bool  # emulator data: every message says it is demo data
    source: str
    page_url: str | None
    headlines: tuple[Headline, ...]
    more_headlines: int  # aggregations not listed
    changes: tuple[Change, ...]
    more_changes: int
    checks: tuple[CheckResult, ...]
    data: Mapping[str, Any]  # the data file's content, as site/<report>.json

    @property
    def failing(self) -> tuple[CheckResult, ...]:
        return tuple(check for check in self.checks if not check.passed)

    def summary(self) -> str:
        """One line: the title and what happened, for subjects and notification texts."""
        parts = []
        if self.changes or self.more_changes:
            n = len(self.changes) + self.more_changes
            parts.append(f"{n} {'group' if n == 1 else 'groups'} changed")
        if self.failing:
            n = len(self.failing)
            parts.append(f"{n} failing {'check' if n == 1 else 'checks'}")
        demo = "[demo data] " if self.demo else ""
        return f"{demo}{self.title}" + (f": {', '.join(parts)}" if parts else "")


def _counts(result: Mapping[str, Any]) -> dict[str, float]:
    counts: dict[str, float] = {}
    for group in result.get("groups") or ():
        values = group.get("value") or [0]
        if values[0]:
            counts[str(group.get("group"))] = values[0]
    return counts


def _aggregation_changed(entry: AggregationState, limit: int, since: float | None) -> bool:
    history = comparable_history(entry)
    index = len(history) - 1  # the previous result
    if since is not None:
        fetched = epoch(entry.fetched_at)
        if fetched < since:
            return False  # this result was in the run sent
        if fetched > since:
            # The newest earlier result as old as the run sent: what that run showed.
            stamps = history.stamps()
            while index >= 0 and epoch(stamps[index]) > since:
                index -= 1
        # Fetched in the same second as the run sent: compared with the previous result.
    if index < 0:
        return True
    if history.total_at(index) != count(entry.result["total"]):
        return True
    before = {name: n for name, n in history.groups_at(index).items() if n}
    after = _counts(entry.result)
    if history.capacity_at(index, limit) < limit:
        # An entry from before every group was kept recorded only the largest few.
        return any(after.get(name, 0) != n for name, n in before.items())
    return before != after


def run_changed(
    report: ReportSpec, aggregations: Mapping[str, AggregationState], since: str | None = None
) -> bool:
    """Whether the report's latest run changed a number a reader sees (module docstring):
    since the previous run, or with ``since`` (when the run last sent to a target was
    fetched), since what that run showed."""
    at = None if since is None else epoch(since)
    return any(
        _aggregation_changed(entry, spec.limit, at)
        for spec in report.aggregations
        if (entry := aggregations.get(spec.address)) is not None
    )


def page_url(site_url: str | None, report: ReportSpec) -> str | None:
    """The report's published page: its HTML when it has one, else its Markdown."""
    if site_url is None:
        return None
    suffix = "html" if "html" in report.formats else "md"
    return f"{site_url}/{report.name}.{suffix}"


def make_digest(
    report: ReportSpec,
    aggregations: Mapping[str, AggregationState],
    source: Source | None,
    *,
    run: str,
    triggers: Sequence[str],
    checks: Sequence[CheckResult],
    site_url: str | None,
) -> Digest:
    """The digest of the report's latest run."""
    data = report_data(report, aggregations, source)
    headlines = []
    changes = []
    for item in data["aggregations"]:
        compared = item["compared_with"]
        headlines.append(
            Headline(item["title"], item["total"], compared["total"] if compared else None)
        )
        for group in item["groups"]:
            before = group["compared_count"]
            if before is not None and before != group["count"]:
                changes.append(Change(item["title"], group["label"], before, group["count"]))
    # The largest moves first; ties in the page's order.
    changes.sort(key=lambda c: -abs(c.after - c.before))
    return Digest(
        report=report.name,
        title=report.title,
        run=run,
        triggers=tuple(triggers),
        demo=source is not None and source.kind == "emulator",
        source=source.describe() if source is not None else "no data yet",
        page_url=page_url(site_url, report),
        headlines=tuple(headlines[:MAX_LINES]),
        more_headlines=max(0, len(headlines) - MAX_LINES),
        changes=tuple(changes[:MAX_LINES]),
        more_changes=max(0, len(changes) - MAX_LINES),
        checks=tuple(c for c in checks if c.report == report.name),
        data=data,
    )


def number(value: float | None) -> str:
    """A count as messages write it: ``1,234``, ``—`` when there is none."""
    if value is None:
        return "—"
    value = count(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


def delta(after: float | None, before: float | None) -> str:
    """``+3``, ``-2``, ``±0``; empty when either side is unknown."""
    if after is None or before is None:
        return ""
    difference = count(after - before)
    return "±0" if difference == 0 else f"{'+' if difference > 0 else '-'}{number(abs(difference))}"


def check_line(check: CheckResult) -> str:
    """A failing check in words: its name, message (or assertion) and the values it saw."""
    said = check.message or check.assertion
    seen = ", ".join(f"{k} = {v}" for k, v in check.values.items())
    why = check.error or (f"saw {seen}" if seen else "")
    return f"{check.severity}: {check.address}: {check.name}: {said}" + (f" ({why})" if why else "")
