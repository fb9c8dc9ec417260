"""Query parser: time to parse a ~200-character query (report loading parses 10,000 of them)."""

from __future__ import annotations

import time

from casereport.definitions.query import parse
from common import figure

QUERY = (
    "status:open (team:case-management OR team:event-management) priority:(P1 OR P2) "
    '-title:"flaky test" service:case-api* NOT project:SEC "kubernetes pods" '
    'creation_source:"Event Management" a\\:b'
)
RUNS = 5000


def main() -> None:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(RUNS):
            parse(QUERY)
        best = min(best, time.perf_counter() - started)
    figure("query.parse_200_chars", best / RUNS * 1e6, "us", target=1000)


if __name__ == "__main__":
    main()
