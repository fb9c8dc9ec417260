"""Rendering figures (issues 5 and 10): the site of 1,000 reports, from state to files.

Each report has 10 aggregations, each with 10 groups and a full history (``HISTORY_LIMIT``
earlier runs), the worst case for the tables, charts and trends. History is held as a
loaded state holds it (its stored columns, nothing parsed yet).

- ``render.1000_reports``: the site rendered and written (into an empty folder) as apply
  renders it (``render_reports``: one process per core on a large site, each writing its
  pages) from a state held in memory, plus the index; the best of three. The CPU figure
  adds up every process.
- ``render.write_2002_files``: the same files written again by one process, durably, as
  the renderers write them (staged, one ``syncfs``, renamed); and one fsync at a time,
  as ``atomic_write_bytes`` writes a single file.
- ``render.data_files_1000x10``: the reports' data files (``<report>.json`` and ``.csv``,
  part of every render above) built alone in one process, in CPU seconds, with their share
  of the render's CPU: what they add to a rebuild.
- ``render.rebuild_1000x10_command``: ``rm -rf site && casereport render`` in a real
  workspace (1,000 report files, the state file), the whole process timed, interpreter
  start included; the median of five, the removal's share of it, and the peak RSS of its
  largest process.
"""

from __future__ import annotations

import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

from casereport.definitions.expand import AggregationSpec, ReportSpec, expand_workspace, fingerprint
from casereport.fsutil import atomic_write_bytes
from casereport.render import data
from casereport.render.context import clear_caches
from casereport.render.pages import render_index
from casereport.render.templates import environment
from casereport.render.workers import process_count, render_reports
from casereport.render.write import write_site_files
from casereport.settings import DEFAULT_REFRESH
from casereport.state.history import HISTORY_LIMIT, History
from casereport.state.model import AggregationState, Source, new_state, serialise
from common import CASEREPORT, aggregation_state, figure

REPORTS = 1000
AGGREGATIONS = 10
GROUPS = 10
SERVICES = ["case-api", "billing", "checkout", "auth", "search", "payments", "notifications"]
FIELDS = ["status", "priority", "services", "team", "assignee", "project", "creation_source"]
SOURCE = Source("emulator", "emulator", "benchmark data")


def _aggregation(number: int, index: int) -> tuple[str, str, tuple[str, ...], int]:
    """The title, query, group-by fields and limit of a report's ``index``-th aggregation."""
    serial = number * AGGREGATIONS + index
    service = SERVICES[serial % len(SERVICES)]
    groups = (FIELDS[serial % len(FIELDS)],)
    query = f"service:{service} -status:closed project:P{serial}"
    return f"Open cases on {service} by {groups[0]}", query, groups, 10 + serial % 5


def _aggregation_state(spec: AggregationSpec, serial: int) -> AggregationState:
    """A result of 10 groups and a full history, held as a loaded state holds it."""
    values = [float(100 + serial % 17 - 7 * g) for g in range(GROUPS)]
    result = {
        "id": f"agg-{serial}",
        "total": sum(values) + 13.0,
        "groups": [{"group": f"value-{g}", "value": [values[g]]} for g in range(GROUPS)],
    }
    entries = tuple(
        {
            # One run a day from 1 October, in order, as apply records them.
            "fetched_at": f"{date(2026, 10, 1) + timedelta(days=run):%Y-%m-%d}T06:00:00Z",
            "total": result["total"] - HISTORY_LIMIT + run,
            "groups": {f"value-{g}": values[g] - (run + g) % 5 for g in range(GROUPS)},
            "complete": True,  # every group, as history now records them
        }
        for run in range(HISTORY_LIMIT)
    )
    # As a loaded state holds it: the stored columns only, no entries built yet.
    history = History(History.from_entries(entries).columns())
    return aggregation_state(spec, result, history, "2026-11-26T06:00:00Z")


DESCRIPTION = "Report **{number}** of the benchmark, with `code` and a [link](https://example.com)."


def build() -> tuple[list[ReportSpec], dict[str, AggregationState], Source]:
    """1,000 report specs and a state in which every aggregation has a full history."""
    reports = []
    states: dict[str, AggregationState] = {}
    for number in range(REPORTS):
        name = f"bench-{number:04d}"
        specs = []
        for index in range(AGGREGATIONS):
            title, query, groups, limit = _aggregation(number, index)
            spec = AggregationSpec(
                address=f"{name}.agg_{index}",
                report=name,
                aggregation_id=f"agg_{index}",
                key=None,
                title=title,
                query_filter=query,
                groups=groups,
                limit=limit,
                fingerprint=fingerprint(query, groups, limit),
            )
            specs.append(spec)
            states[spec.address] = _aggregation_state(spec, number * AGGREGATIONS + index)
        reports.append(
            ReportSpec(
                name=name,
                path=Path(f"reports/{name}.yaml"),
                title=f"Benchmark report {number}",
                description=DESCRIPTION.format(number=number),
                owner="@bench",
                refresh=DEFAULT_REFRESH,
                formats=("markdown", "html"),
                template="report",
                aggregations=tuple(specs),
                definition_hash=f"{number:064x}",
            )
        )
    return reports, states, SOURCE


def write_workspace(root: Path) -> None:
    """The same site as a real workspace: 1,000 report files and a full state beside them."""
    (root / "reports").mkdir(parents=True)
    for number in range(REPORTS):
        lines = [
            f"title: Benchmark report {number}",
            f"description: {json.dumps(DESCRIPTION.format(number=number))}",
            'owner: "@bench"',
            "aggregations:",
        ]
        for index in range(AGGREGATIONS):
            title, query, groups, limit = _aggregation(number, index)
            lines += [
                f"  agg_{index}:",
                f"    title: {json.dumps(title)}",
                f"    query_filter: {json.dumps(query)}",
                f"    group_by: [{', '.join(groups)}]",
                f"    limit: {limit}",
            ]
        (root / "reports" / f"bench-{number:04d}.yaml").write_text("\n".join(lines) + "\n")
    _, expansion = expand_workspace(root)
    assert expansion.ok and len(expansion.aggregations) == REPORTS * AGGREGATIONS
    aggregations = {}
    for spec in expansion.aggregations:
        number = int(spec.report.removeprefix("bench-"))
        serial = number * AGGREGATIONS + int(spec.aggregation_id.removeprefix("agg_"))
        aggregations[spec.address] = _aggregation_state(spec, serial)
    state = replace(new_state(), serial=1, source=SOURCE, aggregations=aggregations)
    path = root / ".casereport" / "state.json"
    path.parent.mkdir(parents=True)
    path.write_text(serialise(state), encoding="utf-8")


def render_all(
    reports: list[ReportSpec], states: dict[str, AggregationState], source: Source, site: Path
) -> dict[str, str]:
    """Render and write the site into ``site``; every page's hash."""
    env = environment(None)
    hashes: dict[str, str] = {}
    for name, written in render_reports(reports, states, source, env, site, {}).items():
        if isinstance(written, Exception):
            raise SystemExit(f"{name}: {written}")
        hashes.update(written)
    hashes.update(write_site_files(site, render_index(reports, states, source, env)))
    return hashes


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
    with tempfile.TemporaryDirectory() as folder:
        for run in range(3):
            # A fresh process renders once: clear the caches that would flatter a second run.
            clear_caches()
            data.clear_caches()
            site = Path(folder) / f"site-{run}"
            started, cpu = time.perf_counter(), _cpu_seconds()
            render_all(reports, states, source, site)
            best = min(best, time.perf_counter() - started)
            best_cpu = min(best_cpu, _cpu_seconds() - cpu)
        pages = {path.name: path.read_bytes() for path in sorted(site.iterdir())}
    size = sum(len(p) for p in pages.values()) / 1e6
    figure(
        f"render.{REPORTS}_reports",
        best,
        "s",
        target=2.0,
        note=f"rendered and written, {AGGREGATIONS} aggregations each, {len(pages)} files, "
        f"{size:.0f} MB, {process_count(REPORTS)} processes, CPU {best_cpu:.2f} s",
    )
    bench_data_files(reports, states, source, best_cpu)
    bench_write(pages)
    bench_rebuild()


def bench_data_files(
    reports: list[ReportSpec],
    states: dict[str, AggregationState],
    source: Source,
    render_cpu: float,
) -> None:
    """The data files of every report, built in memory by one process (best of three)."""
    best = float("inf")
    size = 0
    for _ in range(3):
        data.clear_caches()
        started = time.process_time()
        files = [data.data_files(report, states, source) for report in reports]
        best = min(best, time.process_time() - started)
        size = sum(len(text) for built in files for text in built.values())
    figure(
        f"render.data_files_{REPORTS}x{AGGREGATIONS}",
        best,
        "s",
        note=f"CPU, {2 * len(reports)} files, {size / 1e6:.1f} MB, "
        f"{best / render_cpu:.1%} of the render's CPU ({render_cpu:.2f} s, all processes)",
    )


def bench_write(pages: dict[str, bytes]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        write_site_files(Path(folder) / "site", pages)
        batched = time.perf_counter() - started
        started = time.perf_counter()
        for name, data in pages.items():
            atomic_write_bytes(Path(folder) / "one-by-one" / name, data)
        one_by_one = time.perf_counter() - started
    figure(
        f"render.write_{len(pages)}_files",
        batched,
        "s",
        note=f"staged, synced at once, renamed; one fsync at a time {one_by_one:.2f} s",
    )


def _timed_render(root: Path) -> tuple[float, float]:
    """``rm -rf site && casereport render``: wall seconds of the whole, and of the removal
    alone (on a file system mounted with ``discard``, each durably written file's blocks
    are trimmed as it is removed: a fixed cost per file, whatever its size)."""
    started = time.perf_counter()
    shutil.rmtree(root / "site", ignore_errors=True)
    removed = time.perf_counter() - started
    subprocess.run([*CASEREPORT, "render"], cwd=root, check=True, capture_output=True)
    return time.perf_counter() - started, removed


# `casereport render` run in-process, then its peak RSS and that of its largest render
# worker. Not the rusage of a child of this benchmark: a process forked from a large one
# counts the large one's memory in its own peak (Linux folds it in at exec).
PEAK_RSS = """
import resource, sys
from casereport.cli import cli
try:
    cli.main(["render"], prog_name="casereport")
finally:
    with open("/proc/self/status") as status:
        kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(kib, worker, file=sys.stderr)
"""


def _peak_rss(root: Path) -> tuple[float, float]:
    """The peak RSS (MiB) of ``casereport render`` rebuilding the site, and of its largest
    worker (0 without workers)."""
    shutil.rmtree(root / "site", ignore_errors=True)
    done = subprocess.run(
        [sys.executable, "-c", PEAK_RSS], cwd=root, capture_output=True, text=True, check=True
    )
    command, worker = done.stderr.split()[-2:]
    return int(command) / 1024, int(worker) / 1024


def bench_rebuild() -> None:
    """The whole site rebuilt from state by the command, interpreter start included."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        write_workspace(root)
        _timed_render(root)  # records the pages in state, as a workspace that was rendered has
        runs = [_timed_render(root) for _ in range(5)]
        timings = [whole for whole, _ in runs]
        removal = statistics.median(removed for _, removed in runs)
        files = len(list((root / "site").iterdir()))
        command, worker = _peak_rss(root)
    figure(
        f"render.rebuild_{REPORTS}x{AGGREGATIONS}_command",
        statistics.median(timings),
        "s",
        target=2.5,
        note=f"`rm -rf site && casereport render`, median of {len(timings)} "
        f"({', '.join(f'{t:.2f}' for t in timings)}), {files} files, "
        f"of which `rm -rf site` {removal:.2f} s, "
        f"peak RSS {command:.0f} MiB (largest worker {worker:.0f} MiB)",
    )


if __name__ == "__main__":
    main()
