"""Rendering figures (issue 5): the pages of 1,000 reports from a state held in memory.

Each report has 10 aggregations, each with 10 groups and a full history (``HISTORY_LIMIT``
earlier runs), the worst case for the tables, charts and trends. History is held as a
loaded state holds it (its stored columns, nothing parsed yet), so the figure is what
``casereport render`` pays in a fresh process. Rendered as apply renders
(``render_reports``: one process per core on a large site) with the built-in
templates, to Markdown and HTML, plus the index; the best of three runs. The CPU figure
adds up every process.
Writing the files is timed apart (it depends on the disk, not on casereport).
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

from casereport.definitions.expand import AggregationSpec, ReportSpec, fingerprint
from casereport.render.context import clear_caches
from casereport.render.pages import render_index
from casereport.render.templates import environment
from casereport.render.workers import process_count, render_reports
from casereport.render.write import write_site_files
from casereport.settings import DEFAULT_REFRESH
from casereport.state.history import HISTORY_LIMIT, History
from casereport.state.model import AggregationState, Source
from common import figure

REPORTS = 1000
AGGREGATIONS = 10
GROUPS = 10
SERVICES = ["case-api", "billing", "checkout", "auth", "search", "payments", "notifications"]
FIELDS = ["status", "priority", "services", "team", "assignee", "project", "creation_source"]


def build() -> tuple[list[ReportSpec], dict[str, AggregationState], Source]:
    """1,000 report specs and a state in which every aggregation has a full history."""
    reports = []
    states: dict[str, AggregationState] = {}
    for number in range(REPORTS):
        name = f"bench-{number:04d}"
        specs = []
        for index in range(AGGREGATIONS):
            serial = number * AGGREGATIONS + index
            query = f"service:{SERVICES[serial % len(SERVICES)]} -status:closed project:P{serial}"
            groups = (FIELDS[serial % len(FIELDS)],)
            limit = 10 + serial % 5
            spec = AggregationSpec(
                address=f"{name}.agg_{index}",
                report=name,
                aggregation_id=f"agg_{index}",
                key=None,
                title=f"Open cases on {SERVICES[serial % len(SERVICES)]} by {groups[0]}",
                query_filter=query,
                groups=groups,
                limit=limit,
                fingerprint=fingerprint(query, groups, limit),
            )
            specs.append(spec)
            values = [float(100 + serial % 17 - 7 * g) for g in range(GROUPS)]
            result = {
                "id": f"agg-{serial}",
                "total": sum(values) + 13.0,
                "groups": [{"group": f"value-{g}", "value": [values[g]]} for g in range(GROUPS)],
            }
            entries = tuple(
                {
                    "fetched_at": f"2026-10-{1 + run % 28:02d}T06:00:00Z",
                    "total": result["total"] - HISTORY_LIMIT + run,
                    "groups": {f"value-{g}": values[g] - (run + g) % 5 for g in range(GROUPS)},
                }
                for run in range(HISTORY_LIMIT)
            )
            # As a loaded state holds it: the stored columns only, no entries built yet.
            history = History(History.from_entries(entries).columns())
            states[spec.address] = AggregationState(
                address=spec.address,
                report=name,
                title=spec.title,
                request=spec.request(),
                fingerprint=spec.fingerprint,
                result=result,
                fetched_at="2026-11-26T06:00:00Z",
                history=history,
            )
        reports.append(
            ReportSpec(
                name=name,
                path=Path(f"reports/{name}.yaml"),
                title=f"Benchmark report {number}",
                description=f"Report **{number}** of the benchmark, with `code` and a "
                "[link](https://example.com).",
                owner="@bench",
                refresh=DEFAULT_REFRESH,
                formats=("markdown", "html"),
                template="report",
                aggregations=tuple(specs),
                definition_hash=f"{number:064x}",
            )
        )
    return reports, states, Source("emulator", "emulator", "benchmark data")


def render_all(
    reports: list[ReportSpec], states: dict[str, AggregationState], source: Source
) -> dict[str, str | bytes]:
    env = environment(None)
    pages: dict[str, str | bytes] = {}
    for name, rendered in render_reports(reports, states, source, env).items():
        if isinstance(rendered, Exception):
            raise SystemExit(f"{name}: {rendered}")
        pages.update(rendered)
    pages.update(render_index(reports, states, source, env))
    return pages


def _cpu_seconds() -> float:
    """CPU time of this process and of the render processes it has waited for."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    reports, states, source = build()
    best = best_cpu = float("inf")
    pages: dict[str, str | bytes] = {}
    for _ in range(3):
        # A fresh process renders once: clear the caches that would flatter a second run.
        clear_caches()
        started, cpu = time.perf_counter(), _cpu_seconds()
        pages = render_all(reports, states, source)
        best = min(best, time.perf_counter() - started)
        best_cpu = min(best_cpu, _cpu_seconds() - cpu)
    size = sum(len(p) for p in pages.values()) / 1e6
    figure(
        f"render.{REPORTS}_reports",
        best,
        "s",
        target=2.0,
        note=f"{AGGREGATIONS} aggregations each, {len(pages)} files, {size:.0f} MB, "
        f"{process_count(REPORTS)} processes, CPU {best_cpu:.2f} s",
    )
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        write_site_files(Path(folder), pages)
        figure(f"render.write_{len(pages)}_files", time.perf_counter() - started, "s")


if __name__ == "__main__":
    main()
