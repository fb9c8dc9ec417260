"""Reports that show how one aggregation reads: ``compare:``, ``order:``, ``labels:``,
``better:``, ``trend:``, the two-field matrix and drill-down links (issue 13).

Built in code (the YAML keys are wired into definitions separately), with four weeks of
daily runs, so that every reading key has something to show. Shared by
``test_render_aggregation`` (golden pages) and ``test_browser_aggregation``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from casereport.definitions.expand import AggregationSpec, ReportSpec, fingerprint
from casereport.definitions.reading import DEFAULT_READING, Reading
from casereport.render.pages import render_report
from casereport.render.templates import environment
from casereport.settings import DEFAULT_REFRESH
from casereport.state.model import AggregationState, Source

DATADOG = Source("datadog", "datadoghq.eu")
EMULATOR = Source("emulator", "emulator", "synthetic")
NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)  # a Monday


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def aggregation(
    aggregation_id: str,
    groups: tuple[str, ...],
    reading: Reading = DEFAULT_READING,
    *,
    report: str = "weekly",
    title: str | None = None,
    query: str = "project:SUP",
    limit: int = 30,
) -> AggregationSpec:
    return AggregationSpec(
        address=f"{report}.{aggregation_id}",
        report=report,
        aggregation_id=aggregation_id,
        key=None,
        title=title or f"Cases by {' and '.join(groups)}",
        query_filter=query,
        groups=groups,
        limit=limit,
        fingerprint=fingerprint(query, groups, limit),
        reading=reading,
    )


def report(name: str, title: str, *aggregations: AggregationSpec) -> ReportSpec:
    return ReportSpec(
        name=name,
        path=Path(f"reports/{name}.yaml"),
        title=title,
        description="The support team's Monday look at its queue.",
        owner="@support",
        refresh=DEFAULT_REFRESH,
        formats=("markdown", "html"),
        template="report",
        aggregations=tuple(replace(a, report=name, address=f"{name}.{a.aggregation_id}")
                           for a in aggregations),
        definition_hash="0" * 64,
    )  # fmt: skip


def counts_on(groups: tuple[str, ...], day: int) -> dict[str, float]:
    """Deterministic counts of each group ``day`` days before ``NOW`` (0: today): open work
    grows slowly, P1 shrinks, closed grows fast."""
    statuses = {"OPEN": 30 - day // 3, "IN_PROGRESS": 12 + day % 4, "CLOSED": 80 - 2 * day}
    priorities = {"P1": 3 + day // 4, "P2": 9, "P3": 20 - day // 5, "NOT_DEFINED": 4}
    if groups == ("priority",):
        return {k: float(v) for k, v in priorities.items()}
    if groups == ("status",):
        return {k: float(v) for k, v in statuses.items()}
    if groups == ("team",):
        return {"Case Management": 14.0 - day % 3, "billing": 9.0 + day % 2, "edge": 2.0}
    if groups == ("status", "priority"):
        return {
            f"{s} / {p}": float(max(1, (sv * pv) // 40))
            for s, sv in statuses.items()
            for p, pv in priorities.items()
            if not (s == "IN_PROGRESS" and p == "NOT_DEFINED")
        }
    if groups == ("status", "priority", "team"):
        return {
            "OPEN / P1 / billing": 3.0 + day % 2,
            "OPEN / P2 / Case Management": 5.0,
            "CLOSED / P3 / billing": 11.0 - day % 3,
        }
    raise ValueError(groups)


def state_for(
    spec: AggregationSpec, days: Iterable[int], *, today: datetime = NOW
) -> AggregationState:
    """The aggregation's state after a daily run ``day`` days before ``today`` for each of
    ``days`` (earlier runs in history), and a run today."""
    runs = sorted(set(days), reverse=True)
    history = []
    for day in runs:
        counts = counts_on(spec.groups, day)
        history.append(
            {
                "fetched_at": stamp(today - timedelta(days=day)),
                "total": sum(counts.values()),
                "groups": counts,
                "complete": True,
            }
        )
    counts = counts_on(spec.groups, 0)
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))  # as the API sends them
    return AggregationState(
        address=spec.address,
        report=spec.report,
        title=spec.title,
        request=spec.request(),
        fingerprint=spec.fingerprint,
        result={
            "id": "agg",
            "total": sum(counts.values()),
            "groups": [{"group": g, "value": [v]} for g, v in ordered],
        },
        fetched_at=stamp(today),
        history=tuple(history),
    )


WEEKLY = Reading(compare="7d", better="lower")


def matrix_report() -> tuple[ReportSpec, dict[str, AggregationState], Source]:
    """A matrix (status x priority), three fields as columns, labels and better, from
    Datadog (drill-down links), compared with the previous run."""
    specs = (
        aggregation("status_by_priority", ("status", "priority"), Reading(better="lower")),
        aggregation("by_three", ("status", "priority", "team")),
        aggregation(
            "by_team",
            ("team",),
            Reading(labels=(("edge", "Edge team"),), better="higher"),
            query="project:SUP status:open OR status:in_progress",
        ),
    )
    spec = report("matrix", "Status by priority", *specs)
    days = range(1, 8)
    return spec, {a.address: state_for(a, days) for a in spec.aggregations}, DATADOG


def weekly_report() -> tuple[ReportSpec, dict[str, AggregationState], Source]:
    """``compare: 7d`` on four weeks of daily runs, two of them on one day (its time shown)."""
    specs = (
        aggregation("by_priority", ("priority",), WEEKLY),
        aggregation("by_status", ("status",), replace(WEEKLY, trend=("CLOSED", "OPEN"))),
        aggregation("status_by_priority", ("status", "priority"), WEEKLY),
    )
    spec = report("weekly", "Weekly support review", *specs)
    states = {a.address: state_for(a, range(1, 29)) for a in spec.aggregations}
    # A second run on the day compared with: the page names the run by its time too.
    address = spec.aggregations[0].address
    extra = dict(states[address].history[21])
    extra["fetched_at"] = stamp(NOW - timedelta(days=7) + timedelta(hours=3))
    history = list(states[address].history)
    history.insert(22, extra)
    states[address] = replace(states[address], history=tuple(history))
    return spec, states, EMULATOR


def gap_report() -> tuple[ReportSpec, dict[str, AggregationState], Source]:
    """``compare: 7d`` with no run near 7 days ago (runs 1-3 and 12-20 days back)."""
    specs = (
        aggregation("by_priority", ("priority",), WEEKLY),
        aggregation("status_by_priority", ("status", "priority"), WEEKLY),
    )
    spec = report("gap", "Weekly review after a pause", *specs)
    days = [*range(1, 4), *range(12, 21)]
    return spec, {a.address: state_for(a, days) for a in spec.aggregations}, EMULATOR


PAGES = {"matrix": matrix_report, "weekly": weekly_report, "gap": gap_report}


def render_pages() -> dict[str, str]:
    """Every page of the reports above: file name -> text."""
    env = environment(None)
    pages: dict[str, str] = {}
    for build in PAGES.values():
        spec, states, source = build()
        for name, page in render_report(spec, states, source, env).items():
            assert isinstance(page, str)
            pages[name] = page
    return pages
