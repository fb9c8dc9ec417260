"""Benchmark: evaluate 10,000 checks over a state of 1,000 aggregations of 10 groups.

100 reports of 10 aggregations, each aggregation with the same 10 checks (every name a
check reads: totals, groups present and absent, the compared run, change and
change_ratio, limit) and 30 earlier runs in history; each distinct expression is compiled
once and each aggregation's numbers are made into one CEL context for its checks. The time
is what ``casereport check`` (and the end of ``apply`` and ``render``) spends evaluating,
from loaded state: target 0.5 s on a 2-core machine.

Run: ``.venv/bin/python bench/bench_checks.py`` (or ``make bench BENCH=checks``).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from casereport.definitions.expand import expand  # noqa: E402
from casereport.definitions.load import load_reports  # noqa: E402
from casereport.render.checks_view import report_results  # noqa: E402
from common import aggregation_state, figure  # noqa: E402

REPORTS = 100
AGGREGATIONS = 10
GROUPS = ("P1", "P2", "P3", "P4", "P5", "NOT_DEFINED", "X1", "X2", "X3", "X4")
RUNS = 30
TARGET_SECONDS = 0.5

CHECKS = (
    "total <= 5000",
    'groups["P1"] == 0',
    "change_ratio == null || change_ratio <= 0.10",
    'groups["P1"] + groups["P2"] <= 40',
    'compared == null || compared.groups["P1"] <= groups["P1"]',
    "change == null || change <= 100",
    'groups["missing"] == 0',
    "size(groups) <= limit + 10",
    'total > 0 && groups["X4"] >= 0',
    "groups.exists(g, groups[g] > 1000) == false",
)


def report_text(number: int) -> str:
    lines = [f"title: Report {number}", "aggregations:"]
    for index in range(AGGREGATIONS):
        lines += [
            f"  agg_{index}:",
            f"    query_filter: service:s{number} team:t{index}",
            "    group_by: [priority]",
            "    limit: 10",
            "    checks:",
        ]
        lines += [f"      - {{name: c{i}, assert: '{text}'}}" for i, text in enumerate(CHECKS)]
    return "\n".join(lines) + "\n"


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for number in range(REPORTS):
            (root / f"r{number:03d}.yaml").write_text(report_text(number), encoding="utf-8")
        expansion = expand(load_reports(root).reports)
    assert expansion.ok, expansion.diagnostics[:3]
    stamps = [f"2026-10-{day:02d}T07:00:00Z" for day in range(1, RUNS + 1)]
    state = {}
    for report in expansion.reports:
        for spec in report.aggregations:
            seed = sum(map(ord, spec.address)) % 50
            counts = {g: float(seed + 5 * i) for i, g in enumerate(GROUPS)}
            history = [
                {"fetched_at": stamp, "total": sum(counts.values()) - run, "groups": counts}
                for run, stamp in enumerate(stamps)
            ]
            result = {
                "id": "bench",
                "total": sum(counts.values()),
                "groups": [{"group": g, "value": [c]} for g, c in counts.items()],
            }
            state[spec.address] = aggregation_state(spec, result, history, "2026-11-01T07:00:00Z")
    report_results(expansion.reports[0], state)  # the CEL library imported, as in a run
    started = time.perf_counter()
    results = [r for report in expansion.reports for r in report_results(report, state)]
    elapsed = time.perf_counter() - started
    assert len(results) == REPORTS * AGGREGATIONS * len(CHECKS), len(results)
    assert not any(r.error for r in results), next(r for r in results if r.error)
    figure(
        "evaluating 10,000 checks over a 1,000x10 state",
        elapsed,
        "s",
        target=TARGET_SECONDS,
        note=f"{sum(not r.passed for r in results)} failing",
    )


if __name__ == "__main__":
    main()
