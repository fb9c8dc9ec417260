"""Integration: ``casereport.api.client`` over real HTTP against the emulator (``emulator``
fixture).

Real sockets, real time: these check the client's requests, error messages, retries and
pacing against a server that answers like Datadog, counting what it served.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import httpx
import pytest

from casereport.api.client import CasesClient, aggregate_sync
from casereport.api.messages import AggregateRequest, AggregateResult
from casereport.api.settings import ClientSettings, Credentials
from casereport.emulator.server import RunningEmulator
from casereport.errors import ApiError, AuthenticationError, BadRequestError, ForbiddenError

Emulator = Callable[..., RunningEmulator]
AGGREGATE = "POST /api/v2/cases/aggregate"

API_KEY = "emu-api-5f1e2d3c-SECRET"
APP_KEY = "emu-app-9a8b7c6d-SECRET"
TOKEN = "emu-token-0badf00d-SECRET"


def settings_for(
    emu: RunningEmulator, credentials: Credentials | None = None, **overrides: Any
) -> ClientSettings:
    return ClientSettings.from_env(
        {"CASEREPORT_API_URL": emu.url},
        require_credentials=False,
        credentials=credentials or Credentials(API_KEY, APP_KEY),
        **overrides,
    )


def run_many(
    settings: ClientSettings, requests: Sequence[AggregateRequest]
) -> tuple[float, list[AggregateResult | ApiError]]:
    async def go() -> list[AggregateResult | ApiError]:
        async with CasesClient(settings) as client:
            return await client.aggregate_many(requests)

    started = time.perf_counter()
    results = asyncio.run(go())
    return time.perf_counter() - started, results


def distinct(count: int) -> list[AggregateRequest]:
    groups = ("status", "priority", "team", "services")
    return [
        AggregateRequest(
            f"priority:P{i % 5 + 1} -title:nomatch{i}", (groups[i % len(groups)],), i % 50 + 1
        )
        for i in range(count)
    ]


def served(emu: RunningEmulator) -> dict[str, int]:
    counts: dict[str, int] = emu.stats()["requests"].get(AGGREGATE, {})
    return counts


def test_success_has_the_documented_shape(emulator: Emulator) -> None:
    emu = emulator(cases=2000, seed=7)
    result = aggregate_sync(settings_for(emu), AggregateRequest("status:open", ("priority",), 1000))
    assert result.id
    assert result.total > 0
    assert result.groups
    assert all(len(group.value) == 1 for group in result.groups)
    # Every case has exactly one priority, so the groups add up to the total.
    assert sum(group.value[0] for group in result.groups) == result.total
    assert served(emu) == {"200": 1}


def test_large_gzip_responses_are_decoded(emulator: Emulator) -> None:
    emu = emulator(cases=2000, seed=7)
    request = AggregateRequest("", ("key",), 1000)  # one group per case: a large body
    # The emulator compresses this answer for a client that accepts gzip, as the client does.
    raw = httpx.post(
        f"{emu.url}/api/v2/cases/aggregate",
        json=request.to_body(),
        headers={"DD-API-KEY": API_KEY, "DD-APPLICATION-KEY": APP_KEY, "Accept-Encoding": "gzip"},
    )
    assert raw.headers["content-encoding"] == "gzip"
    result = aggregate_sync(settings_for(emu), request)
    assert len(result.groups) == 1000
    assert AggregateResult.from_response(raw.json(), emu.url) == result.__class__(
        raw.json()["data"]["id"], result.total, result.groups
    )


def test_bad_query_shows_the_servers_detail(emulator: Emulator) -> None:
    emu = emulator()
    url = f"{emu.url}/api/v2/cases/aggregate"
    try:
        aggregate_sync(settings_for(emu), AggregateRequest("status:(open", ("status",), 10))
    except BadRequestError as exc:
        assert exc.status == 400
        assert re.fullmatch(
            rf"Datadog rejected the request \(HTTP 400\) at {re.escape(url)}: Bad Request: "
            r"invalid query_filter at column \d+: .+: 'status:\(open' "
            r"\(at /data/attributes/query_filter\); fix the query, groups or limit",
            exc.message,
        ), exc.message
    else:
        raise AssertionError("expected a BadRequestError")
    assert served(emu) == {"400": 1}


def test_the_emulator_is_named_as_the_emulator(emulator: Emulator) -> None:
    emu = emulator()
    settings = replace(settings_for(emu), site="emulator")
    with pytest.raises(BadRequestError) as raised:
        aggregate_sync(settings, AggregateRequest("status:(open", ("status",), 10))
    assert raised.value.message.startswith("the emulator rejected the request (HTTP 400) at ")
    assert "Datadog" not in raised.value.message


def test_missing_keys_get_401(emulator: Emulator) -> None:
    emu = emulator()
    url = f"{emu.url}/api/v2/cases/aggregate"
    try:
        aggregate_sync(settings_for(emu, Credentials()), AggregateRequest("", ("status",), 5))
    except AuthenticationError as exc:
        assert exc.message == (
            f"Datadog did not accept the credentials (HTTP 401) at {url}: Unauthorized; "
            f"check DD_API_KEY and DD_APP_KEY (or DD_BEARER_TOKEN) are valid for site {emu.url}"
        )
    else:
        raise AssertionError("expected an AuthenticationError")
    assert served(emu) == {"401": 1}  # never retried


def test_wrong_keys_get_403_and_never_show(emulator: Emulator) -> None:
    emu = emulator(api_key="right-api-key", app_key="right-app-key")
    url = f"{emu.url}/api/v2/cases/aggregate"
    try:
        aggregate_sync(settings_for(emu), AggregateRequest("", ("status",), 5))
    except ForbiddenError as exc:
        assert exc.message == (
            f"Datadog refused access (HTTP 403) at {url}: Forbidden; the application key or token "
            f"needs the cases_read scope and access to Case Management on site {emu.url}"
        )
        assert API_KEY not in str(exc) and APP_KEY not in str(exc)
    else:
        raise AssertionError("expected a ForbiddenError")
    right = Credentials("right-api-key", "right-app-key")
    assert aggregate_sync(settings_for(emu, right), AggregateRequest("", ("status",), 5)).total > 0
    assert served(emu) == {"200": 1, "403": 1}


def test_bearer_token(emulator: Emulator) -> None:
    emu = emulator(bearer_token=TOKEN)
    good = aggregate_sync(
        settings_for(emu, Credentials(bearer_token=TOKEN)), AggregateRequest("", ("status",), 5)
    )
    assert good.total > 0
    try:
        aggregate_sync(
            settings_for(emu, Credentials(bearer_token="wrong-token")),
            AggregateRequest("", ("status",), 5),
        )
    except ForbiddenError as exc:
        assert "wrong-token" not in str(exc)
    else:
        raise AssertionError("expected a ForbiddenError")


def test_injected_server_errors_are_retried_until_all_succeed(emulator: Emulator) -> None:
    emu = emulator(error_rate=0.3)
    _, results = run_many(settings_for(emu, max_attempts=10), distinct(100))
    assert all(isinstance(r, AggregateResult) for r in results), [
        r for r in results if isinstance(r, ApiError)
    ]
    counts = served(emu)
    assert counts["200"] == 100
    assert counts.get("500", 0) + counts.get("503", 0) > 10  # the faults did happen


def test_rate_limit_is_respected_without_a_single_429(emulator: Emulator) -> None:
    emu = emulator(rate_limit=20, rate_period=1)
    elapsed, results = run_many(settings_for(emu, parallelism=16), distinct(60))
    assert all(isinstance(r, AggregateResult) for r in results)
    assert served(emu) == {"200": 60}
    # 60 requests at 20 per calendar second span at least three windows.
    assert elapsed > 1.0


def test_requests_run_concurrently_under_latency(emulator: Emulator) -> None:
    emu = emulator(latency_ms=50)
    elapsed, results = run_many(settings_for(emu, parallelism=16), distinct(64))
    assert all(isinstance(r, AggregateResult) for r in results)
    assert served(emu) == {"200": 64}
    # Four rounds of 16 at 50 ms each; one at a time would take 3.2 s.
    assert 0.2 <= elapsed < 1.6
