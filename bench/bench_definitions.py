"""Benchmark: load, validate and expand 1,000 report files of 10 aggregations each.

The files are generated into a temporary directory in the style ``casereport fmt`` writes
(comments, vars, a for_each, literal and interpolated queries), then loaded, validated
and expanded the way ``casereport validate`` does it. Prints the time (target 1.0 s on a
2-core machine) and the peak memory of the process.

Run: ``.venv/bin/python bench/bench_definitions.py`` (or ``make bench``).
"""

from __future__ import annotations

import gc
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from common import figure, peak_rss_mib  # noqa: E402

REPORTS = 1000
AGGREGATIONS = 10
TARGET_SECONDS = 1.0

SERVICES = ("case-api", "billing", "checkout", "auth", "search", "payments")
PROJECTS = ("SUP", "SEC", "OPS", "ENG", "BIL")
GROUPS = (
    "[status]",
    "[priority]",
    "[status, priority]",
    "[services]",
    "[creation_source]",
    "[team]",
    "[environments]",
    "[project]",
    "[assignee]",
    "[priority, services]",
)


def report_text(number: int) -> str:
    """One realistic report file: 10 aggregations, one of them a 3-item for_each."""
    service = SERVICES[number % len(SERVICES)]
    project = PROJECTS[number % len(PROJECTS)]
    lines = [
        "# yaml-language-server: $schema=../schema/report.schema.json",
        f"# Generated report {number} for the definitions benchmark.",
        f"title: Report {number} on ${{var.service}}",
        f"description: Cases of the {project} project on ${{var.service}}.",
        f'owner: "@team-{number % 40}"',
        f"refresh: {1 + number % 12}h",
        "formats: [markdown, html]",
        "vars:",
        f"  service: {service}",
        f"  project: {project}",
        "aggregations:",
    ]
    for index in range(AGGREGATIONS):
        lines.append(f"  agg_{index}:")
        if index == 0:
            lines += [
                "    # One aggregation per service.",
                f"    for_each: [{', '.join(SERVICES[:3])}]",
                "    title: Open cases on ${each.key}",
                "    query_filter: service:${each.value} status:open",
            ]
        elif index % 2:
            lines += [
                f"    title: Aggregation {index} of report {number}",
                '    query_filter: "project:${var.project} -status:closed '
                f'priority:(P{index % 5 + 1} OR P{(index + 1) % 5 + 1})"',
            ]
        else:
            lines += [
                f"    title: Aggregation {index}",
                f"    query_filter: project:{project} service:case-api status:(open OR "
                f"in_progress) env:prod team:team-{number % 97}",
            ]
        lines += [f"    group_by: {GROUPS[index]}", f"    limit: {10 + index}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    from casereport.definitions.expand import expand_workspace

    with tempfile.TemporaryDirectory(prefix="casereport-bench-") as tmp:
        root = Path(tmp)
        reports = root / "reports"
        reports.mkdir()
        for number in range(REPORTS):
            (reports / f"report-{number:04d}.yaml").write_text(report_text(number))
        gc.collect()
        started = time.perf_counter()
        _, expansion = expand_workspace(root)
        elapsed = time.perf_counter() - started
        if not expansion.ok:
            raise SystemExit(f"benchmark reports did not validate: {expansion.diagnostics[0]}")
        specs = expansion.aggregations
        distinct = len({spec.fingerprint for spec in specs})
    figure(
        f"definitions.load_validate_expand_{REPORTS}x{AGGREGATIONS}",
        elapsed,
        "s",
        target=TARGET_SECONDS,
        note=f"{len(specs)} aggregations, {distinct} distinct requests",
    )
    print(f"definitions.peak_memory: {peak_rss_mib():.0f} MiB", flush=True)


if __name__ == "__main__":
    main()
