"""Client: 1,000 distinct aggregates against the emulator at --latency-ms 50.

Figures (issue 2):
- wall time as a ratio to the ideal 1000 x 0.05 s / parallelism (target: within 1.25x);
- speed-up over the official datadog-api-client doing the same calls in a loop (target >= 10x);
- the same 1,000 calls under --rate-limit 100 --rate-period 1: zero failed calls.
"""

from __future__ import annotations

import asyncio
import time

from casereport.api.client import CasesClient
from casereport.api.messages import AggregateRequest
from casereport.api.settings import ClientSettings, Credentials
from casereport.errors import ApiError
from common import emulator_process, emulator_stats, figure

CALLS = 1000
LATENCY_S = 0.05
PARALLELISM = 16
GROUPS = ["status", "priority", "services", "team", "assignee", "project", "creation_source"]


def requests() -> list[AggregateRequest]:
    """1,000 distinct requests: (i mod 5, i mod 7) repeats every 35 calls, the limit never."""
    return [
        AggregateRequest(
            query_filter=f"status:open priority:P{i % 5 + 1}",
            groups=(GROUPS[i % len(GROUPS)],),
            limit=i // 35 + 1,
        )
        for i in range(CALLS)
    ]


def run_casereport(url: str) -> tuple[float, int]:
    settings = ClientSettings(
        base_url=url,
        site="emulator",
        credentials=Credentials(api_key="bench", app_key="bench", bearer_token=None),
        parallelism=PARALLELISM,
    )

    async def go() -> list[object]:
        async with CasesClient(settings) as client:
            return list(await client.aggregate_many(requests()))

    started = time.perf_counter()
    results = asyncio.run(go())
    elapsed = time.perf_counter() - started
    failed = sum(isinstance(r, ApiError) for r in results)
    return elapsed, failed


def run_official(url: str) -> float:
    from datadog_api_client import ApiClient, Configuration
    from datadog_api_client.v2.api.case_management_api import CaseManagementApi
    from datadog_api_client.v2.model.case_aggregate_group_by import CaseAggregateGroupBy
    from datadog_api_client.v2.model.case_aggregate_request import CaseAggregateRequest
    from datadog_api_client.v2.model.case_aggregate_request_attributes import (
        CaseAggregateRequestAttributes,
    )
    from datadog_api_client.v2.model.case_aggregate_request_data import CaseAggregateRequestData
    from datadog_api_client.v2.model.case_aggregate_resource_type import (
        CaseAggregateResourceType,
    )

    configuration = Configuration(host=url)
    configuration.api_key["apiKeyAuth"] = "bench"
    configuration.api_key["appKeyAuth"] = "bench"
    started = time.perf_counter()
    with ApiClient(configuration) as api_client:
        api = CaseManagementApi(api_client)
        for request in requests():
            body = CaseAggregateRequest(
                data=CaseAggregateRequestData(
                    type=CaseAggregateResourceType.AGGREGATE,
                    attributes=CaseAggregateRequestAttributes(
                        query_filter=request.query_filter,
                        group_by=CaseAggregateGroupBy(
                            groups=list(request.groups), limit=request.limit
                        ),
                    ),
                )
            )
            api.aggregate_cases(body=body)
    return time.perf_counter() - started


def main() -> None:
    assert len({(r.query_filter, r.groups, r.limit) for r in requests()}) == CALLS
    ideal = CALLS * LATENCY_S / PARALLELISM
    with emulator_process("--latency-ms", "50") as url:
        ours, failed = run_casereport(url)
        figure(
            "client.1000_aggregates_latency50",
            ours,
            "s",
            note=f"ideal {ideal:.3f} s at parallelism {PARALLELISM}, "
            f"ratio to ideal {ours / ideal:.3f} (target <= 1.25), failed {failed}",
        )
        official = run_official(url)
        figure(
            "client.official_datadog_api_client_loop",
            official,
            "s",
            note=f"casereport is {official / ours:.1f}x faster (target >= 10x)",
        )
    with emulator_process("--latency-ms", "50", "--rate-limit", "100", "--rate-period", "1") as url:
        limited, failed = run_casereport(url)
        stats = emulator_stats(url)
        requests_by_status = stats["requests"]
        assert isinstance(requests_by_status, dict)
        aggregate = requests_by_status.get("POST /api/v2/cases/aggregate", {})
        figure(
            "client.1000_aggregates_rate_limit_100_per_s",
            limited,
            "s",
            note=f"failed calls {failed} (target 0), 429 responses {aggregate.get('429', 0)}, "
            f"ideal {CALLS / 100:.1f} s, ratio {limited / (CALLS / 100):.2f}",
        )


if __name__ == "__main__":
    main()
