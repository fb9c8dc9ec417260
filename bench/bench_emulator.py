"""Emulator: median aggregate latency over HTTP with 1,000,000 cases and a two-term filter.

Target (issue 2): a median of 100 ms or less per request.
"""

from __future__ import annotations

import json
import statistics
import time

import httpx

from common import emulator_process, figure

CASES = 1_000_000
QUERIES = [
    ("service:case-api status:open", ["priority"]),
    ("team:support priority:P2", ["status"]),
    ("status:closed -service:billing", ["services"]),
    ("priority:(P1 OR P2) status:open", ["assignee"]),
]
ROUNDS = 15


def body(query_filter: str, groups: list[str]) -> bytes:
    attributes = {"query_filter": query_filter, "group_by": {"groups": groups, "limit": 50}}
    return json.dumps({"data": {"type": "aggregate", "attributes": attributes}}).encode()


def main() -> None:
    started = time.perf_counter()
    with emulator_process("--cases", str(CASES)) as url:
        figure("emulator.startup_1m_cases", time.perf_counter() - started, "s")
        headers = {"DD-API-KEY": "bench", "DD-APPLICATION-KEY": "bench"}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            for query_filter, groups in QUERIES:  # warm-up
                client.post("/api/v2/cases/aggregate", content=body(query_filter, groups))
            timings = []
            for _ in range(ROUNDS):
                for query_filter, groups in QUERIES:
                    t0 = time.perf_counter()
                    response = client.post(
                        "/api/v2/cases/aggregate", content=body(query_filter, groups)
                    )
                    timings.append(time.perf_counter() - t0)
                    response.raise_for_status()
    median_ms = statistics.median(timings) * 1000
    p90_ms = statistics.quantiles(timings, n=10)[-1] * 1000
    figure(
        "emulator.aggregate_median_1m_cases",
        median_ms,
        "ms",
        target=100,
        note=f"p90 {p90_ms:.1f} ms, {len(timings)} requests",
    )


if __name__ == "__main__":
    main()
