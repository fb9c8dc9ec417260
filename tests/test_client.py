"""Unit tests of ``casereport.api`` (client, settings, messages): httpx.MockTransport, virtual
time, loopback sockets.

Nothing here waits for real: ``sleep`` and ``clock`` are injected. Single requests use
``FakeTime`` (a sleep that just moves the clock); concurrent ones use ``VirtualTime``,
which runs the event loop until every task is blocked and then jumps to the next timer,
so simulated servers with latency and rate-limit windows behave as in real time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import logging
import math
import random
import re
import socket
import struct
import sys
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.loop_servers import loop_servers

from casereport import __version__
from casereport.api.client import CasesClient, aggregate_sync
from casereport.api.messages import (
    AggregateGroup,
    AggregateRequest,
    AggregateResult,
    describe_error_body,
    redact,
)
from casereport.api.ratelimit import MARGIN, RateLimiter, RateLimitHeaders, WaitTooLong
from casereport.api.settings import SITES, ClientSettings, Credentials
from casereport.errors import (
    ApiConnectionError,
    ApiError,
    AuthenticationError,
    BadRequestError,
    ConfigError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    ResponseFormatError,
    ServerError,
)

T = TypeVar("T")

# Distinctive fake secrets: none of them may ever show up in a message, log line or repr.
API_KEY = "apikey-0d15c0ff-ee5e-4a1b-9c2d-SECRET"
APP_KEY = "appkey-7a11ce5e-cafe-4bad-8d0e-SECRET"
TOKEN = "token-b3a7e7-5ca1ab1e-SECRET"
SECRETS = (API_KEY, APP_KEY, TOKEN)

BASE = "https://api.datadoghq.com"
URL = BASE + "/api/v2/cases/aggregate"
REQUEST = AggregateRequest("status:open service:case-api", ("status",), 14)
OK = {
    "data": {
        "id": "agg-result-001",
        "type": "aggregate",
        "attributes": {"total": 100.0, "groups": [{"group": "OPEN", "value": [42.0]}]},
    }
}
OK_RESULT = AggregateResult("agg-result-001", 100.0, (AggregateGroup("OPEN", (42.0,)),))


def make_settings(**overrides: Any) -> ClientSettings:
    values: dict[str, Any] = {
        "base_url": BASE,
        "site": "datadoghq.com",
        "credentials": Credentials(api_key=API_KEY, app_key=APP_KEY),
    }
    values.update(overrides)
    return ClientSettings(**values)


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


# -- time -----------------------------------------------------------------------------------


class FakeTime:
    """A clock and a sleep that only moves it: for one request at a time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        self.now += max(delay, 0.0)
        await asyncio.sleep(0)


class VirtualTime:
    """Clock and sleep for concurrent asyncio code without real waiting.

    ``run`` drives the event loop; whenever no task can make progress it jumps the clock
    to the earliest pending ``sleep`` and wakes that sleeper.
    """

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.now + max(delay, 0.0), next(self._order), future))
        await future

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        async def drive() -> T:
            loop = asyncio.get_running_loop()
            task = asyncio.ensure_future(coro)
            while not task.done():
                await asyncio.sleep(0)
                if task.done() or loop._ready:  # type: ignore[attr-defined]
                    continue  # something can still run at this instant
                if not self._timers:
                    await asyncio.sleep(0.001)  # waiting on real I/O (none in these tests)
                    continue
                when, _, future = heapq.heappop(self._timers)
                self.now = max(self.now, when)
                if not future.done():
                    future.set_result(None)
            return task.result()

        return asyncio.run(drive())


# -- simulated servers ----------------------------------------------------------------------


def json_response(
    status: int, payload: object, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(status, json=payload, headers=headers)


@dataclass
class WindowServer:
    """Datadog-like rate limiting: ``limit`` requests per calendar window of ``period`` s.

    ``phase`` shifts the window boundaries; ``rounding`` is how X-RateLimit-Reset is
    rounded (Datadog and the emulator send whole seconds, rounded up). Requests are counted
    on arrival, ``latency`` seconds before the response leaves, as the emulator does.
    """

    time: VirtualTime
    limit: int
    period: float
    phase: float = 0.0
    latency: float = 0.0
    rounding: str = "ceil"
    #: Up to this many seconds pass, at random, before a request is counted, and as many
    #: again before its answer leaves: requests are counted and answered out of order.
    jitter: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(1))
    counts: Counter[int] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    in_flight: int = 0
    max_in_flight: int = 0

    def headers(self, remaining: int, reset: float) -> dict[str, str]:
        if self.rounding == "exact":
            reset_text = f"{reset:.3f}"
        else:
            rounder: Callable[[float], int] = {"ceil": math.ceil, "floor": math.floor}[
                self.rounding
            ]
            reset_text = str(max(1, rounder(reset)) if self.rounding == "ceil" else rounder(reset))
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Period": f"{self.period:g}",
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": reset_text,
            "X-RateLimit-Name": "cases",
        }

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.jitter:
                await self.time.sleep(self.rng.uniform(0, self.jitter))
            now = self.time.now
            window = math.floor((now - self.phase) / self.period)
            reset = self.phase + (window + 1) * self.period - now
            self.counts[window] += 1
            used = self.counts[window]
            status = 200 if used <= self.limit else 429
            headers = self.headers(max(self.limit - used, 0), reset)
            self.statuses[status] += 1
            await self.time.sleep(self.latency + self.rng.uniform(0, self.jitter))
            if status == 429:
                return json_response(429, {"errors": ["Too Many Requests"]}, headers)
            return json_response(200, OK, headers)
        finally:
            self.in_flight -= 1


def window_client(server: WindowServer, **overrides: Any) -> CasesClient:
    return CasesClient(
        make_settings(**overrides),
        transport=httpx.MockTransport(server.handle),
        rng=random.Random(7),
        sleep=server.time.sleep,
        clock=server.time.clock,
    )


def distinct_requests(count: int) -> list[AggregateRequest]:
    return [
        AggregateRequest(f"priority:P{i % 5 + 1} -title:x{i}", ("status",), 10)
        for i in range(count)
    ]


# -- one request against a scripted server --------------------------------------------------

Step = Callable[[httpx.Request], httpx.Response] | BaseException


def respond(
    status: int,
    payload: object = None,
    *,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
) -> Callable[[httpx.Request], httpx.Response]:
    def make(request: httpx.Request) -> httpx.Response:
        if content is not None:
            return httpx.Response(status, content=content, headers=headers)
        return httpx.Response(status, json=payload, headers=headers)

    return make


@dataclass
class Outcome:
    result: AggregateResult | None
    error: ApiError | None
    requests: list[httpx.Request]
    sleeps: list[float]
    elapsed: float


def call(*steps: Step, request: AggregateRequest = REQUEST, **overrides: Any) -> Outcome:
    """One ``aggregate`` against a server answering ``steps`` in turn (the last one repeats)."""
    fake = FakeTime()
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        step = steps[min(len(seen), len(steps)) - 1]
        if isinstance(step, BaseException):
            raise step
        return step(request)

    async def go() -> AggregateResult:
        async with CasesClient(
            make_settings(**overrides),
            transport=httpx.MockTransport(handler),
            rng=random.Random(7),
            sleep=fake.sleep,
            clock=fake.clock,
        ) as client:
            return await client.aggregate(request)

    started = fake.now
    try:
        result, error = asyncio.run(go()), None
    except ApiError as exc:
        result, error = None, exc
    return Outcome(result, error, seen, fake.sleeps, fake.now - started)


def jitter(*ceilings: float) -> list[float]:
    """The full-jitter waits the client draws from ``random.Random(7)``."""
    rng = random.Random(7)
    return [ceiling * rng.random() for ceiling in ceilings]


# -- the request on the wire ----------------------------------------------------------------


def test_request_body_and_headers_are_exactly_datadogs() -> None:
    outcome = call(respond(200, OK))
    assert outcome.result == OK_RESULT
    [request] = outcome.requests
    assert request.method == "POST"
    assert str(request.url) == URL
    assert json.loads(request.content) == {
        "data": {
            "type": "aggregate",
            "attributes": {
                "query_filter": "status:open service:case-api",
                "group_by": {"groups": ["status"], "limit": 14},
            },
        }
    }
    headers = request.headers
    assert headers["DD-API-KEY"] == API_KEY
    assert headers["DD-APPLICATION-KEY"] == APP_KEY
    assert "authorization" not in headers
    assert headers["Accept"] == "application/json"
    assert headers["Content-Type"] == "application/json"
    assert headers["Accept-Encoding"] == "gzip"
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert (
        headers["User-Agent"]
        == f"casereport/{__version__} (python {python}; +https://github.com/casereport)"
    )


def test_bearer_token_is_sent_as_authorization() -> None:
    outcome = call(respond(200, OK), credentials=Credentials(bearer_token=TOKEN))
    [request] = outcome.requests
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert "dd-api-key" not in request.headers
    assert "dd-application-key" not in request.headers


def test_keys_are_used_when_both_keys_and_a_token_are_set() -> None:
    credentials = Credentials(api_key=API_KEY, app_key=APP_KEY, bearer_token=TOKEN)
    [request] = call(respond(200, OK), credentials=credentials).requests
    assert request.headers["DD-API-KEY"] == API_KEY
    assert "authorization" not in request.headers


def test_gzip_response_is_decoded() -> None:
    import gzip

    body = gzip.compress(json.dumps(OK).encode())
    outcome = call(respond(200, content=body, headers={"Content-Encoding": "gzip"}))
    assert outcome.result == OK_RESULT


def test_aggregate_request_body() -> None:
    request = AggregateRequest("status:open", ("status", "priority"), 1000)
    assert request.to_body() == {
        "data": {
            "type": "aggregate",
            "attributes": {
                "query_filter": "status:open",
                "group_by": {"groups": ["status", "priority"], "limit": 1000},
            },
        }
    }


def test_aggregate_request_accepts_a_list_of_groups_and_stays_hashable() -> None:
    request = AggregateRequest("status:open", ["status"], 5)  # type: ignore[arg-type]
    assert request.groups == ("status",)
    assert hash(request) == hash(AggregateRequest("status:open", ("status",), 5))


@pytest.mark.parametrize(
    ("groups", "limit", "message"),
    [
        (("status",), 0, "limit must be between 1 and 1000, got 0"),
        (("status",), 1001, "limit must be between 1 and 1000, got 1001"),
        (("status",), True, "limit must be an integer, got True"),
        (("status",), "10", "limit must be an integer, got '10'"),
        ((), 10, "groups must name at least one field to group by"),
        ("status", 10, "groups must be a list of field names, not 'status'"),
        (("status", " "), 10, "group ' ' is not a field name"),
    ],
)
def test_aggregate_request_is_validated(groups: Any, limit: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        AggregateRequest("status:open", groups, limit)
    assert caught.value.message == f"aggregate request for query 'status:open': {message}"


# -- statuses ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"errors": ["Bad Request"]}, ": Bad Request"),
        (
            {
                "errors": [
                    {
                        "status": "400",
                        "title": "Bad Request",
                        "detail": "invalid query at column 8: unexpected ')'",
                        "source": {"pointer": "/data/attributes/query_filter"},
                    }
                ]
            },
            ": Bad Request: invalid query at column 8: unexpected ')' "
            "(at /data/attributes/query_filter)",
        ),
        (
            {"errors": [{"code": "invalid_limit", "title": "limit too large"}]},
            ": limit too large (invalid_limit)",
        ),
        (
            {"errors": ["Bad Request", {"detail": "limit must be <= 1000"}]},
            ": Bad Request; limit must be <= 1000",
        ),
        ({"errors": []}, ': {"errors":[]}'),
        ({"message": "bad things"}, ": bad things"),
        (b"oops,\n  not JSON", ": oops, not JSON"),
        (b"<html><body><h1>400 Bad Request</h1>\n</body></html>", ": 400 Bad Request"),
        (b"", ""),
    ],
)
def test_400_shows_the_servers_detail_from_any_body_shape(body: object, said: str) -> None:
    step = respond(400, content=body) if isinstance(body, bytes) else respond(400, body)
    outcome = call(step)
    assert isinstance(outcome.error, BadRequestError)
    assert outcome.error.message == (
        f"Datadog rejected the request (HTTP 400) at {URL}{said}; fix the query, groups or limit"
    )
    assert (outcome.error.status, outcome.error.url) == (400, URL)
    assert len(outcome.requests) == 1


def test_long_error_details_are_cut_to_one_short_line() -> None:
    detail = describe_error_body(json.dumps({"errors": ["x" * 1000]}).encode())
    assert len(detail) == 300
    assert detail.endswith("…")


def test_401_names_the_variables_and_the_site() -> None:
    outcome = call(respond(401, {"errors": ["Unauthorized"]}), site="datadoghq.eu")
    assert isinstance(outcome.error, AuthenticationError)
    assert outcome.error.message == (
        f"Datadog did not accept the credentials (HTTP 401) at {URL}: Unauthorized; "
        "check DD_API_KEY and DD_APP_KEY (or DD_BEARER_TOKEN) are valid for site datadoghq.eu"
    )
    assert len(outcome.requests) == 1


def test_403_mentions_the_cases_read_scope() -> None:
    outcome = call(respond(403, {"errors": ["Forbidden"]}))
    assert isinstance(outcome.error, ForbiddenError)
    assert outcome.error.message == (
        f"Datadog refused access (HTTP 403) at {URL}: Forbidden; the application key or token "
        "needs the cases_read scope and access to Case Management on site datadoghq.com"
    )
    assert len(outcome.requests) == 1


def test_404_names_the_url_and_the_site() -> None:
    body = {"errors": [{"code": "resource_not_found", "title": "not found"}]}
    outcome = call(respond(404, body), site="us3.datadoghq.com")
    assert isinstance(outcome.error, NotFoundError)
    assert outcome.error.message == (
        f"not found (HTTP 404) at {URL}: not found (resource_not_found); check DD_SITE "
        "(site us3.datadoghq.com) or CASEREPORT_API_URL points at the Datadog API"
    )
    assert len(outcome.requests) == 1


@pytest.mark.parametrize("status", [405, 409, 422])
def test_other_client_errors_are_reported_once(status: int) -> None:
    outcome = call(respond(status, {"errors": ["Nope"]}))
    assert type(outcome.error) is ApiError
    assert outcome.error.message == f"unexpected answer (HTTP {status}) from {URL}: Nope"
    assert len(outcome.requests) == 1


def test_redirect_is_not_followed() -> None:
    outcome = call(respond(301, headers={"Location": "https://app.datadoghq.com/"}))
    assert type(outcome.error) is ApiError
    assert outcome.error.message == (
        f"unexpected redirect (HTTP 301) from {URL} to https://app.datadoghq.com/; "
        "set CASEREPORT_API_URL to the API's own base URL"
    )


def test_429_then_success_waits_the_reset() -> None:
    outcome = call(
        respond(429, {"errors": ["Too Many Requests"]}, headers={"X-RateLimit-Reset": "2"}),
        respond(200, OK),
    )
    assert outcome.result == OK_RESULT
    assert outcome.sleeps == [2.0]
    assert len(outcome.requests) == 2


def test_429_reset_may_be_fractional() -> None:
    outcome = call(respond(429, headers={"X-RateLimit-Reset": " 0.75 "}), respond(200, OK))
    assert outcome.result == OK_RESULT
    assert outcome.sleeps == [0.75]


def test_429_wait_is_the_reset_whole_up_to_the_cap() -> None:
    # max_retry_wait caps backoff, not a reset the server asks for within the cap.
    outcome = call(
        respond(429, headers={"X-RateLimit-Reset": "90"}), respond(200, OK), max_retry_wait=60.0
    )
    assert outcome.result == OK_RESULT
    assert outcome.sleeps == [90.0]


CAP_MESSAGE = (
    "rate limited at {url}: the limit resets in {wait} s, longer than the {cap} s casereport "
    "waits; try again later, or raise the cap with --max-rate-limit-wait (max_rate_limit_wait "
    "in casereport.toml)"
)


def test_429_with_a_reset_past_the_cap_fails_at_once() -> None:
    outcome = call(respond(429, headers={"X-RateLimit-Reset": "500"}), respond(200, OK))
    assert isinstance(outcome.error, RateLimitedError)
    assert outcome.error.message == CAP_MESSAGE.format(url=URL, wait=500, cap=120)
    assert outcome.sleeps == []
    assert len(outcome.requests) == 1


def test_the_rate_limit_cap_is_a_setting() -> None:
    waited = call(
        respond(429, headers={"X-RateLimit-Reset": "500"}),
        respond(200, OK),
        max_rate_limit_wait=600.0,
        deadline=900.0,
    )
    assert waited.result == OK_RESULT
    assert waited.sleeps == [500.0]
    never = call(respond(429, headers={"X-RateLimit-Reset": "1"}), max_rate_limit_wait=0.0)
    assert isinstance(never.error, RateLimitedError)
    assert never.error.message == CAP_MESSAGE.format(url=URL, wait=1, cap=0)


def test_429_with_a_reset_of_0_still_waits_a_little() -> None:
    outcome = call(respond(429, headers={"X-RateLimit-Reset": "0"}), respond(200, OK))
    assert outcome.result == OK_RESULT
    assert outcome.sleeps == [0.25]


def test_429_without_reset_backs_off() -> None:
    outcome = call(
        respond(429), respond(429, headers={"X-RateLimit-Reset": "soon"}), respond(200, OK)
    )
    assert outcome.result == OK_RESULT
    assert outcome.sleeps == jitter(0.25, 0.5)


def test_429_with_full_headers_pauses_until_the_window_has_surely_ended() -> None:
    headers = {
        "X-RateLimit-Limit": "100",
        "X-RateLimit-Period": "60",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "2",
    }
    outcome = call(respond(429, headers=headers), respond(200, OK))
    assert outcome.result == OK_RESULT
    # The retry waits the reset; the limiter then adds the second Reset may be rounded
    # down by, plus its margin.
    assert outcome.sleeps == [2.0, pytest.approx(1.0 + MARGIN)]


def test_429s_are_not_failures_and_only_the_deadline_bounds_them() -> None:
    # Another client sharing the limit: each wait is worth it, however many it takes.
    throttled = respond(429, {"errors": ["Too Many Requests"]}, headers={"X-RateLimit-Reset": "1"})
    outcome = call(*[throttled] * 9, respond(200, OK))
    assert outcome.result == OK_RESULT
    assert outcome.sleeps == [1.0] * 9
    storm = call(throttled, deadline=20.0)
    assert isinstance(storm.error, RateLimitedError)
    assert storm.error.message == (
        f"still rate limited (HTTP 429) at {URL} after 21 attempts (the 20 s deadline leaves "
        "no time for another): Too Many Requests; lower the parallelism or try again later"
    )
    assert len(storm.requests) == 21  # at 0, 1, ... 20 s: one more wait passes the deadline


def test_a_server_that_only_ever_says_429_is_given_up_on_after_a_deadline() -> None:
    # The first request waits out its deadline; the next, on the same client, sees that no
    # request got through for a deadline and stops at its first 429, so a queue of requests
    # never waits a deadline each.
    fake = FakeTime()
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            429, json={"errors": ["Too Many Requests"]}, headers={"X-RateLimit-Reset": "1"}
        )

    async def go() -> list[ApiError]:
        errors = []
        async with CasesClient(
            make_settings(deadline=10.0),
            transport=httpx.MockTransport(handler),
            sleep=fake.sleep,
            clock=fake.clock,
        ) as client:
            for request in distinct_requests(2):
                with pytest.raises(RateLimitedError) as caught:
                    await client.aggregate(request)
                errors.append(caught.value)
        return errors

    first, second = asyncio.run(go())
    assert first.message.startswith(f"still rate limited (HTTP 429) at {URL} after 11 attempts (")
    assert second.message == (
        f"still rate limited (HTTP 429) at {URL} after 1 attempt (no request has got through "
        "for 10 s): Too Many Requests; lower the parallelism or try again later"
    )
    assert len(seen) == 12


def test_a_rate_limit_window_past_the_cap_fails_at_once() -> None:
    headers = {
        "X-RateLimit-Limit": "100",
        "X-RateLimit-Period": "3600",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "3000",
    }
    # Told by a 200: the budget is spent, and the next request would wait for the window.
    outcome = call(respond(200, OK, headers=headers), request=REQUEST)
    assert outcome.result == OK_RESULT
    second = call(respond(429, headers=headers), respond(200, OK))
    assert isinstance(second.error, RateLimitedError)
    assert second.error.message == CAP_MESSAGE.format(url=URL, wait=3000, cap=120)
    assert len(second.requests) == 1


def test_rate_limit_window_beyond_the_deadline_fails_at_once() -> None:
    headers = {
        "X-RateLimit-Limit": "100",
        "X-RateLimit-Period": "3600",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "100",
    }
    outcome = call(respond(429, headers=headers), respond(200, OK), deadline=60.0)
    assert isinstance(outcome.error, RateLimitedError)
    assert outcome.error.message == (
        f"still rate limited (HTTP 429) at {URL} after 1 attempt (the 60 s deadline leaves no "
        "time for another); lower the parallelism or try again later"
    )
    assert len(outcome.requests) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_then_success_back_off_with_full_jitter(status: int) -> None:
    outcome = call(respond(status), respond(status), respond(200, OK))
    assert outcome.result == OK_RESULT
    assert outcome.sleeps == jitter(0.25, 0.5)
    assert len(outcome.requests) == 3


def test_server_errors_exhaust_the_attempts() -> None:
    outcome = call(respond(500, {"errors": ["Internal Server Error"]}))
    assert isinstance(outcome.error, ServerError)
    assert outcome.error.message == (
        f"Datadog server error (HTTP 500) at {URL} after 6 attempts: Internal Server Error; "
        "try again later"
    )
    assert outcome.error.status == 500
    assert outcome.sleeps == jitter(0.25, 0.5, 1.0, 2.0, 4.0)


def test_backoff_ceiling_is_capped_by_max_retry_wait() -> None:
    outcome = call(respond(503), max_attempts=5, max_retry_wait=0.6)
    assert outcome.sleeps == jitter(0.25, 0.5, 0.6, 0.6)


def test_501_is_not_retried() -> None:
    outcome = call(respond(501))
    assert isinstance(outcome.error, ServerError)
    assert outcome.error.message == f"unexpected answer (HTTP 501) from {URL}"
    assert len(outcome.requests) == 1


def test_deadline_bounds_the_retries() -> None:
    outcome = call(respond(503), max_attempts=50, deadline=3.0)
    assert isinstance(outcome.error, ServerError)
    attempts = len(outcome.requests)
    assert 1 < attempts < 50
    assert outcome.elapsed <= 3.0
    assert outcome.error.message == (
        f"Datadog server error (HTTP 503) at {URL} after {attempts} attempts "
        "(the 3 s deadline leaves no time for another); try again later"
    )


@pytest.mark.parametrize(
    "error",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.WriteTimeout("w"),
        httpx.PoolTimeout("p"),
    ],
)
def test_timeouts_are_retried(error: httpx.TimeoutException) -> None:
    outcome = call(error, respond(200, OK))
    assert outcome.result == OK_RESULT
    assert outcome.sleeps == jitter(0.25)


def test_timeouts_exhaust_the_attempts() -> None:
    outcome = call(httpx.ReadTimeout("read timed out"), max_attempts=3)
    assert isinstance(outcome.error, ApiConnectionError)
    assert outcome.error.message == (
        f"could not reach {URL} after 3 attempts: timed out after 30 s (ReadTimeout); "
        "check the network, DD_SITE or CASEREPORT_API_URL, or raise --timeout"
    )
    assert outcome.error.status is None


def test_timeout_message_gives_the_timeout_the_deadline_left() -> None:
    outcome = call(httpx.ReadTimeout("read timed out"), max_attempts=2, deadline=2.0)
    assert isinstance(outcome.error, ApiConnectionError)
    left = 2.0 - jitter(0.25)[0]  # the second attempt had what the first wait left
    assert outcome.error.message == (
        f"could not reach {URL} after 2 attempts: timed out after {left:.3g} s (ReadTimeout); "
        "check the network, DD_SITE or CASEREPORT_API_URL, or raise --timeout"
    )


@pytest.mark.parametrize(
    "error",
    [
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ConnectError("[Errno 104] Connection reset by peer"),
        httpx.ReadError("[Errno 104] Connection reset by peer"),
    ],
)
def test_connection_resets_are_retried(error: httpx.TransportError) -> None:
    outcome = call(error, error, respond(200, OK))
    assert outcome.result == OK_RESULT
    assert len(outcome.requests) == 3


def _caused(failure: httpx.TransportError, cause: BaseException) -> httpx.TransportError:
    failure.__cause__ = cause
    return failure


@pytest.mark.parametrize(
    ("failure", "named"),
    [
        (
            httpx.ConnectError("[Errno 111] Connection refused"),
            "ConnectError: [Errno 111] Connection refused",
        ),
        # The OS error under httpx's own words names it better.
        (
            _caused(
                httpx.ConnectError("All connection attempts failed"),
                ConnectionRefusedError(111, "Connect call failed ('10.0.0.1', 443)"),
            ),
            "ConnectError: [Errno 111] Connection refused",
        ),
        (
            _caused(httpx.ConnectError(""), socket.gaierror(-2, "Name or service not known")),
            "ConnectError: [Errno -2] Name or service not known",
        ),
    ],
)
def test_connection_errors_exhaust_the_attempts(failure: httpx.TransportError, named: str) -> None:
    assert_unreachable(failure, named, attempts=2)


def assert_unreachable(failure: httpx.TransportError, named: str, *, attempts: int) -> None:
    """Each of ``attempts`` attempts fails with ``failure``: the error names it as ``named``."""
    outcome = call(failure, max_attempts=attempts)
    assert isinstance(outcome.error, ApiConnectionError)
    tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
    assert outcome.error.message == (
        f"could not reach {URL} after {tries}: {named}; "
        "check the network, DD_SITE or CASEREPORT_API_URL"
    )


def test_a_server_that_answers_no_attempt_is_given_up_on() -> None:
    # Three attempts in a row without an answer: the fourth is not made.
    outcome = call(httpx.ConnectTimeout("connect timed out"), max_attempts=6)
    assert isinstance(outcome.error, ApiConnectionError)
    assert outcome.error.message == (
        f"could not reach {URL}: it answered none of the last 3 attempts (timed out after 30 s "
        "(ConnectTimeout)), so no more are made; check the network, DD_SITE or "
        "CASEREPORT_API_URL, or raise --timeout"
    )
    assert len(outcome.requests) == 3
    # An answer of any kind in between shows the server is there.
    mixed = call(
        httpx.ConnectError("refused"),
        httpx.ConnectError("refused"),
        respond(503),
        httpx.ConnectError("refused"),
        httpx.ConnectError("refused"),
        respond(200, OK),
    )
    assert mixed.result == OK_RESULT


def test_unsupported_protocol_is_not_retried() -> None:
    outcome = call(httpx.UnsupportedProtocol("Request URL has an unsupported protocol 'ftp://'."))
    assert isinstance(outcome.error, ApiConnectionError)
    assert outcome.error.message == (
        f"could not call {URL}: UnsupportedProtocol: Request URL has an unsupported protocol "
        "'ftp://'.; check DD_SITE or CASEREPORT_API_URL"
    )
    assert len(outcome.requests) == 1


# -- response parsing -------------------------------------------------------------------------


def test_malformed_json_is_a_format_error_and_not_retried() -> None:
    outcome = call(
        respond(200, content=b'{"data": {', headers={"Content-Type": "application/json"})
    )
    assert isinstance(outcome.error, ResponseFormatError)
    assert outcome.error.message == (
        f"unexpected response from {URL} (HTTP 200): the body is not valid JSON "
        "(application/json: Expecting property name enclosed in double quotes: line 1 column 11 "
        "(char 10)); check CASEREPORT_API_URL points at the Datadog API"
    )
    assert len(outcome.requests) == 1


def test_undecodable_gzip_is_a_format_error() -> None:
    outcome = call(respond(200, content=b"not gzip", headers={"Content-Encoding": "gzip"}))
    assert isinstance(outcome.error, ResponseFormatError)
    assert outcome.error.message.startswith(f"unreadable response from {URL}: ")


def without(path: str) -> dict[str, Any]:
    payload = json.loads(json.dumps(OK))
    *parents, last = path.split(".")
    node = payload
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    del node[last]
    return payload


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ("data", "data"),
        ("data.id", "data.id"),
        ("data.attributes", "data.attributes"),
        ("data.attributes.total", "data.attributes.total"),
        ("data.attributes.groups", "data.attributes.groups"),
        ("data.attributes.groups.0.group", "data.attributes.groups[0].group"),
        ("data.attributes.groups.0.value", "data.attributes.groups[0].value"),
    ],
)
def test_each_missing_required_field_is_named(path: str, named: str) -> None:
    with pytest.raises(ResponseFormatError) as caught:
        AggregateResult.from_response(without(path), URL)
    assert caught.value.message == (
        f"unexpected response from {URL} (HTTP 200): missing required field {named}; "
        "the aggregate endpoint may have changed, please report it"
    )
    assert (caught.value.status, caught.value.url) == (200, URL)


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ([], "the body is a list, expected a JSON object"),
        ({"data": None}, "data is null, expected an object"),
        ({"data": {"id": None, "attributes": {}}}, "data.id is null, expected a string"),
        (
            {"data": {"id": "a", "attributes": {"total": "12", "groups": []}}},
            "data.attributes.total is a string, expected a number",
        ),
        (
            {"data": {"id": "a", "attributes": {"total": True, "groups": []}}},
            "data.attributes.total is a boolean, expected a number",
        ),
        (
            {"data": {"id": "a", "attributes": {"total": 1, "groups": {}}}},
            "data.attributes.groups is an object, expected a list",
        ),
        (
            {"data": {"id": "a", "attributes": {"total": 1, "groups": ["OPEN"]}}},
            "data.attributes.groups[0] is a string, expected an object",
        ),
        (
            {
                "data": {
                    "id": "a",
                    "attributes": {"total": 1, "groups": [{"group": "A", "value": 3}]},
                }
            },
            "data.attributes.groups[0].value is a number, expected a list of numbers",
        ),
        (
            {
                "data": {
                    "id": "a",
                    "attributes": {"total": 1, "groups": [{"group": "A", "value": [1, None]}]},
                }
            },
            "data.attributes.groups[0].value[1] is null, expected a number",
        ),
        (
            {
                "data": {
                    "id": "a",
                    "attributes": {"total": 1, "groups": [{"group": ["A"], "value": []}]},
                }
            },
            "data.attributes.groups[0].group is a list, expected a string",
        ),
    ],
)
def test_wrong_types_are_named(payload: object, problem: str) -> None:
    with pytest.raises(ResponseFormatError) as caught:
        AggregateResult.from_response(payload, URL)
    assert caught.value.message == (
        f"unexpected response from {URL} (HTTP 200): {problem}; "
        "the aggregate endpoint may have changed, please report it"
    )


def test_parser_is_tolerant_of_the_preview_endpoint() -> None:
    payload = {
        "meta": {"elapsed": 12},
        "data": {
            "id": "agg-2",
            "type": "case_aggregate",  # any string
            "attributes": {
                "total": 7,  # an int
                "groups": [
                    {"group": "P1", "value": [], "extra": True},
                    {"group": "P2", "value": [3]},
                    {"group": "P3", "value": [1, 2.5, 3], "labels": ["a", "b", "c"]},
                    {"group": 4, "value": [0]},
                ],
                "new_field": {"nested": [1, 2]},
            },
            "relationships": {},
        },
        "included": [],
    }
    assert AggregateResult.from_response(payload, URL) == AggregateResult(
        "agg-2",
        7.0,
        (
            AggregateGroup("P1", ()),
            AggregateGroup("P2", (3.0,)),
            AggregateGroup("P3", (1.0, 2.5, 3.0)),
            AggregateGroup("4", (0.0,)),
        ),
    )


@given(
    st.lists(
        st.tuples(
            st.text(max_size=20),
            st.lists(
                st.integers(-(10**12), 10**12) | st.floats(allow_nan=False, allow_infinity=False),
                max_size=6,
            ),
        ),
        max_size=8,
    )
)
def test_parser_keeps_every_group_and_value(groups: list[tuple[str, list[float]]]) -> None:
    payload = {
        "data": {
            "id": "x",
            "type": "aggregate",
            "attributes": {"total": 1.5, "groups": [{"group": g, "value": v} for g, v in groups]},
        }
    }
    result = AggregateResult.from_response(json.loads(json.dumps(payload)), URL)
    assert [(g.group, list(g.value)) for g in result.groups] == [
        (g, [float(x) for x in v]) for g, v in groups
    ]


# -- secrets never show -----------------------------------------------------------------------


def echo(secrets: tuple[str, ...]) -> str:
    """Text a careless server might send back: the secrets, plain and URL-encoded."""
    return " and ".join(f"{secret} ({secret.replace('-', '%2D')})" for secret in secrets)


ERROR_PATHS: dict[str, Callable[[str], tuple[Step, ...]]] = {
    "400 echoing keys": lambda e: (
        respond(400, {"errors": [{"title": "Bad Request", "detail": e}]}),
    ),
    "401": lambda e: (respond(401, {"errors": [e]}),),
    "403": lambda e: (respond(403, content=e.encode()),),
    "404": lambda e: (respond(404, {"errors": [{"code": e, "title": "x"}]}),),
    "429 storm": lambda e: (respond(429, {"errors": [e]}, headers={"X-RateLimit-Reset": "1"}),),
    "5xx storm": lambda e: (respond(503, {"errors": [{"detail": e}]}),),
    "other status": lambda e: (respond(418, {"message": e}),),
    "redirect": lambda e: (respond(302, headers={"Location": f"https://x/?k={e}"}),),
    "timeout": lambda e: (httpx.ReadTimeout(e),),
    "connection": lambda e: (httpx.ConnectError(e),),
    "unsupported": lambda e: (httpx.UnsupportedProtocol(e),),
    "bad json": lambda e: (respond(200, content=e.encode()),),
    "missing field": lambda e: (respond(200, {"data": {"id": e}}),),
    "gzip": lambda e: (respond(200, content=e.encode(), headers={"Content-Encoding": "gzip"}),),
    "429 past the cap": lambda e: (
        respond(429, {"errors": [e]}, headers={"X-RateLimit-Reset": "9999"}),
    ),
    "NaN": lambda e: (respond(200, content=f'{{"x": "{e}", "data": NaN}}'.encode()),),
    "deep": lambda e: (respond(200, content=b"[" * 100_000 + e.encode()),),
    "deep error": lambda e: (respond(400, content=b"[" * 100_000 + e.encode()),),
    "too many groups": lambda e: (
        respond(200, {"data": {"id": e, "attributes": {"total": 1, "groups": [1] * 20}}}),
    ),
}


@pytest.mark.parametrize("name", sorted(ERROR_PATHS))
@pytest.mark.parametrize(
    "credentials",
    [
        Credentials(API_KEY, APP_KEY),
        Credentials(bearer_token=TOKEN),
        Credentials(API_KEY, APP_KEY, TOKEN),
    ],
    ids=["keys", "token", "all"],
)
def test_keys_never_appear_in_errors_or_logs(
    name: str, credentials: Credentials, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = credentials.secrets()
    outcome = call(*ERROR_PATHS[name](echo(secrets)), credentials=credentials, max_attempts=2)
    error = outcome.error
    assert error is not None
    assert caplog.records  # the debug log was on
    for text in (
        str(error),
        repr(error),
        error.message,
        error.url,
        error.format_message(),
        caplog.text,
    ):
        for secret in secrets:
            assert secret not in text


def test_settings_and_credentials_never_show_keys() -> None:
    credentials = Credentials(api_key=API_KEY, app_key=APP_KEY, bearer_token=None)
    assert repr(credentials) == "Credentials(api_key=***, app_key=***, bearer_token=None)"
    assert str(credentials) == repr(credentials)
    settings = make_settings(credentials=Credentials(API_KEY, APP_KEY, TOKEN))
    assert_no_secret(repr(settings), str(settings), f"{settings}", repr([settings]))
    assert "credentials=Credentials(api_key=***, app_key=***, bearer_token=***)" in repr(settings)


def test_redact_replaces_plain_and_url_encoded_secrets() -> None:
    text = "a=sk/1+2 b=sk%2F1%2B2 c=other"
    assert redact(text, ["sk/1+2", None, ""]) == "a=*** b=*** c=other"


def test_redact_replaces_the_longer_of_overlapping_secrets_whole() -> None:
    assert redact("xx-abcdef-xx", ["abc", "abcdef"]) == "xx-***-xx"


@given(
    st.text(),
    st.lists(st.text(alphabet="abcdefABCDEF0123456789-_/+", min_size=1, max_size=40), max_size=3),
)
def test_redact_leaves_no_secret(text: str, secrets: list[str]) -> None:
    mixed = text.join([*secrets, text]) + "".join(secrets)
    redacted = redact(mixed, secrets)
    for secret in secrets:
        assert secret not in redacted


# -- settings from the environment ------------------------------------------------------------

KEYS = {"DD_API_KEY": API_KEY, "DD_APP_KEY": APP_KEY}
NO_CREDENTIALS = (
    "no Datadog credentials: set DD_API_KEY and DD_APP_KEY (or DD_BEARER_TOKEN), or use --emulator"
)


@pytest.mark.parametrize("site", SITES)
def test_every_site_maps_to_its_api_host(site: str) -> None:
    settings = ClientSettings.from_env({**KEYS, "DD_SITE": site})
    assert (settings.site, settings.base_url) == (site, f"https://api.{site}")
    assert settings.aggregate_url == f"https://api.{site}/api/v2/cases/aggregate"


def test_default_site_and_settings() -> None:
    settings = ClientSettings.from_env(KEYS)
    assert settings == ClientSettings(
        base_url="https://api.datadoghq.com",
        site="datadoghq.com",
        credentials=Credentials(API_KEY, APP_KEY, None),
        timeout=30.0,
        max_attempts=6,
        deadline=300.0,
        max_retry_wait=60.0,
        parallelism=16,
    )


def test_site_is_case_and_space_insensitive() -> None:
    assert ClientSettings.from_env({**KEYS, "DD_SITE": " DatadogHQ.EU/ "}).site == "datadoghq.eu"


def test_unknown_site_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        ClientSettings.from_env({**KEYS, "DD_SITE": "datadoghq.co"})
    assert caught.value.message == (
        "unknown DD_SITE 'datadoghq.co': use one of datadoghq.com, us3.datadoghq.com, "
        "us5.datadoghq.com, ap1.datadoghq.com, ap2.datadoghq.com, uk1.datadoghq.com, "
        "datadoghq.eu, ddog-gov.com, us2.ddog-gov.com"
    )


def test_unknown_site_suggests_the_bare_site() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^unknown DD_SITE 'https://app.datadoghq.eu' "
        r"\(did you mean 'datadoghq.eu'\?\): use one of ",
    ):
        ClientSettings.from_env({**KEYS, "DD_SITE": "https://app.datadoghq.eu"})


def test_caserreport_api_url_overrides_the_site() -> None:
    settings = ClientSettings.from_env(
        {**KEYS, "DD_SITE": "not-a-site", "CASEREPORT_API_URL": "http://127.0.0.1:8710/"}
    )
    assert settings.base_url == "http://127.0.0.1:8710"
    assert settings.site == "http://127.0.0.1:8710"
    assert settings.aggregate_url == "http://127.0.0.1:8710/api/v2/cases/aggregate"


@pytest.mark.parametrize("url", ["127.0.0.1:8710", "ftp://host", "http://", "not a url"])
def test_malformed_api_url_is_refused(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ClientSettings.from_env({**KEYS, "CASEREPORT_API_URL": url})
    assert caught.value.message == (
        f"CASEREPORT_API_URL must be an http(s) URL such as http://127.0.0.1:8710, got {url!r}"
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://u:hunter2@127.0.0.1:8710", "http://***@127.0.0.1:8710"),
        ("https://hunter2@proxy.example/dd/", "https://***@proxy.example/dd/"),
        ("http://:hunter2@host", "http://***@host"),
    ],
)
def test_credentials_in_the_api_url_are_refused_unshown(url: str, shown: str) -> None:
    for name, build in (
        (
            "CASEREPORT_API_URL",
            lambda: ClientSettings.from_env({**KEYS, "CASEREPORT_API_URL": url}),
        ),
        ("base_url", lambda: make_settings(base_url=url)),
    ):
        with pytest.raises(ConfigError) as caught:
            build()
        assert caught.value.message == (
            f"{name} must not carry credentials (user:password@), since the URL is recorded in "
            f"state and plans: remove them from {shown!r} and set DD_API_KEY and DD_APP_KEY "
            "(or DD_BEARER_TOKEN) instead"
        )
        assert "hunter2" not in caught.value.message


@pytest.mark.parametrize(
    "url", ["http://u:hunter2@", "http://host/?api_key=hunter2", "http://host/#hunter2"]
)
def test_a_url_that_is_no_base_url_is_refused_unshown(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ClientSettings.from_env({**KEYS, "CASEREPORT_API_URL": url})
    assert "hunter2" not in caught.value.message
    assert caught.value.message.startswith("CASEREPORT_API_URL must be ")


def test_credentials_built_in_code_are_checked_too() -> None:
    with pytest.raises(ConfigError) as caught:
        Credentials(api_key=API_KEY, app_key="x\ny")
    assert caught.value.message == (
        "DD_APP_KEY holds a control character (a line break, NUL or escape code?), which no "
        "Datadog key or token has: set DD_APP_KEY to the key alone (check how it was pasted or "
        "read from a file)"
    )


def test_application_key_alias() -> None:
    settings = ClientSettings.from_env({"DD_API_KEY": API_KEY, "DD_APPLICATION_KEY": APP_KEY})
    assert settings.credentials == Credentials(API_KEY, APP_KEY, None)
    both = ClientSettings.from_env({**KEYS, "DD_APPLICATION_KEY": "other"})
    assert both.credentials.app_key == APP_KEY


def test_bearer_token_alone_is_enough() -> None:
    settings = ClientSettings.from_env({"DD_BEARER_TOKEN": f" {TOKEN}\n"})
    assert settings.credentials == Credentials(None, None, TOKEN)


def test_keys_are_stripped_and_empty_ones_ignored() -> None:
    settings = ClientSettings.from_env(
        {"DD_API_KEY": f"{API_KEY}\n", "DD_APP_KEY": f" {APP_KEY}", "DD_BEARER_TOKEN": ""}
    )
    assert settings.credentials == Credentials(API_KEY, APP_KEY, None)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {},
            NO_CREDENTIALS,
        ),
        (
            {"DD_API_KEY": " "},
            NO_CREDENTIALS,
        ),
        (
            {"DD_API_KEY": API_KEY},
            "incomplete Datadog credentials: DD_API_KEY is set but DD_APP_KEY is not; "
            "set DD_APP_KEY (or DD_APPLICATION_KEY), or DD_BEARER_TOKEN, or use --emulator",
        ),
        (
            {"DD_APP_KEY": APP_KEY},
            "incomplete Datadog credentials: DD_APP_KEY is set but DD_API_KEY is not; "
            "set DD_API_KEY, or DD_BEARER_TOKEN, or use --emulator",
        ),
        (
            {"DD_APPLICATION_KEY": APP_KEY},
            "incomplete Datadog credentials: DD_APPLICATION_KEY is set but DD_API_KEY is not; "
            "set DD_API_KEY, or DD_BEARER_TOKEN, or use --emulator",
        ),
    ],
)
def test_missing_credentials_say_what_to_set(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ClientSettings.from_env(env)
    assert caught.value.message == message
    assert_no_secret(caught.value.message)


def test_credentials_are_optional_when_not_required() -> None:
    settings = ClientSettings.from_env(
        {"CASEREPORT_API_URL": "http://127.0.0.1:1"}, require_credentials=False
    )
    assert settings.credentials == Credentials()


def test_overrides_win_over_the_environment() -> None:
    settings = ClientSettings.from_env(
        {**KEYS, "DD_SITE": "datadoghq.eu"}, parallelism=4, timeout=5.0, deadline=60.0
    )
    assert (settings.parallelism, settings.timeout, settings.deadline) == (4, 5.0, 60.0)
    emulator = ClientSettings.from_env(KEYS, base_url="http://127.0.0.1:9/")
    assert (emulator.base_url, emulator.site) == ("http://127.0.0.1:9", "http://127.0.0.1:9")
    eu = ClientSettings.from_env(KEYS, site="datadoghq.eu")
    assert eu.base_url == "https://api.datadoghq.eu"
    with pytest.raises(TypeError, match="unknown client settings: paralelism"):
        ClientSettings.from_env(KEYS, paralelism=4)


def test_from_env_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DD_SITE", "CASEREPORT_API_URL", "DD_BEARER_TOKEN", "DD_APPLICATION_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DD_API_KEY", API_KEY)
    monkeypatch.setenv("DD_APP_KEY", APP_KEY)
    monkeypatch.setenv("DD_SITE", "us5.datadoghq.com")
    assert ClientSettings.from_env().base_url == "https://api.us5.datadoghq.com"


@pytest.mark.parametrize(
    ("field_name", "value", "message"),
    [
        ("timeout", 0, "client setting timeout must be a positive number of seconds, got 0"),
        (
            "deadline",
            -1.0,
            "client setting deadline must be a positive number of seconds, got -1.0",
        ),
        (
            "max_retry_wait",
            -0.5,
            "client setting max_retry_wait must be 0 or more of seconds, got -0.5",
        ),
        (
            "timeout",
            float("nan"),
            "client setting timeout must be a positive number of seconds, got nan",
        ),
        ("max_attempts", 0, "client setting max_attempts must be an integer of 1 or more, got 0"),
        ("parallelism", 2.5, "client setting parallelism must be an integer of 1 or more, got 2.5"),
    ],
)
def test_settings_are_validated(field_name: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make_settings(**{field_name: value})
    assert caught.value.message == message


# -- the rate limiter on its own --------------------------------------------------------------


def rl_headers(limit: int, period: float, remaining: int, reset: str) -> dict[str, str]:
    return {
        "x-ratelimit-limit": str(limit),
        "x-ratelimit-period": f"{period:g}",
        "x-ratelimit-remaining": str(remaining),
        "x-ratelimit-reset": reset,
    }


def test_rate_limit_headers_parse() -> None:
    parsed = RateLimitHeaders.parse(rl_headers(100, 1, 42, "1"))
    assert parsed == RateLimitHeaders(100, 1.0, 42, 1.0, reset_exact=False)
    assert parsed.window_end_bound(10.0) == 11.0  # min(reset + 1, period)
    ten = RateLimitHeaders.parse(rl_headers(100, 10, 42, "7"))
    assert ten is not None and ten.window_end_bound(10.0) == 18.0  # reset may be rounded down
    exact = RateLimitHeaders.parse(rl_headers(100, 10, 42, "0.250"))
    assert exact is not None and exact.reset_exact and exact.window_end_bound(10.0) == 10.25
    assert RateLimitHeaders.parse(rl_headers(100, 1, 500, "1")) == RateLimitHeaders(
        100, 1.0, 100, 1.0
    )
    for broken in (
        {},
        {**rl_headers(100, 1, 5, "1"), "x-ratelimit-limit": "many"},
        {**rl_headers(100, 1, 5, "1"), "x-ratelimit-period": "0"},
        {**rl_headers(100, 1, 5, "1"), "x-ratelimit-period": "inf"},
        {**rl_headers(100, 1, 5, "1"), "x-ratelimit-reset": "-1"},
        {k: v for k, v in rl_headers(100, 1, 5, "1").items() if k != "x-ratelimit-period"},
    ):
        assert RateLimitHeaders.parse(broken) is None


def test_limiter_sends_one_probe_before_it_knows_the_limit() -> None:
    vt = VirtualTime()
    limiter = RateLimiter(vt.clock, vt.sleep)
    order: list[str] = []

    async def scenario() -> None:
        probe = await limiter.acquire()
        waiting = asyncio.ensure_future(limiter.acquire())
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert not waiting.done()  # held back until the probe's answer
        order.append("probe answered")
        limiter.done(probe, rl_headers(10, 1, 9, "1"), 200, vt.now)
        second = await waiting
        order.append("second sent")
        assert second.seq == 2
        assert limiter.budget == 8

    vt.run(scenario())
    assert order == ["probe answered", "second sent"]


def test_limiter_does_not_pace_a_server_without_headers() -> None:
    vt = VirtualTime()
    limiter = RateLimiter(vt.clock, vt.sleep)

    async def scenario() -> None:
        probe = await limiter.acquire()
        limiter.done(probe, {}, 200, vt.now)
        tickets = [await limiter.acquire() for _ in range(1000)]
        assert len(tickets) == 1000
        assert limiter.budget is None

    vt.run(scenario())
    assert vt.now == 0.0


def test_limiter_retries_the_probe_after_a_network_error() -> None:
    vt = VirtualTime()
    limiter = RateLimiter(vt.clock, vt.sleep)

    async def scenario() -> None:
        probe = await limiter.acquire()
        limiter.done(probe, None, None, vt.now)  # no response
        again = await limiter.acquire()  # becomes the new probe at once
        assert again.seq == 2
        assert limiter.budget is None

    vt.run(scenario())


def test_exhausted_budget_makes_everyone_wait_for_the_window() -> None:
    vt = VirtualTime(start=100.0)
    limiter = RateLimiter(vt.clock, vt.sleep)
    sent: list[float] = []

    async def scenario() -> None:
        probe = await limiter.acquire()
        vt.now = 100.2
        limiter.done(probe, rl_headers(3, 1, 2, "1"), 200, vt.now)  # window ends by 101.2

        remaining = iter([1, 0, 2, 1, 0])  # what the server counts down, window by window

        async def worker() -> None:
            ticket = await limiter.acquire()
            sent.append(vt.now)
            limiter.done(ticket, rl_headers(3, 1, next(remaining), "1"), 200, vt.now)

        await asyncio.gather(*(worker() for _ in range(5)))

    vt.run(scenario())
    refill = 101.2 + MARGIN
    assert sent == [
        100.2,
        100.2,
        pytest.approx(refill),
        pytest.approx(refill),
        pytest.approx(refill),
    ]


def test_ample_budget_adds_no_wait() -> None:
    vt = VirtualTime()
    limiter = RateLimiter(vt.clock, vt.sleep)

    async def scenario() -> None:
        probe = await limiter.acquire()
        limiter.done(probe, rl_headers(100_000, 60, 99_999, "37"), 200, vt.now)
        for n in range(5000):
            ticket = await limiter.acquire()
            limiter.done(ticket, rl_headers(100_000, 60, 99_998 - n, "37"), 200, vt.now)

    vt.run(scenario())
    assert vt.now == 0.0


def test_budget_follows_the_servers_remaining_when_others_spend_it() -> None:
    vt = VirtualTime()
    limiter = RateLimiter(vt.clock, vt.sleep)

    async def scenario() -> None:
        probe = await limiter.acquire()
        limiter.done(probe, rl_headers(100, 10, 99, "5"), 200, vt.now)
        assert limiter.budget == 99
        ticket = await limiter.acquire()
        limiter.done(ticket, rl_headers(100, 10, 10, "5"), 200, vt.now)  # another client spent 88
        assert limiter.budget == 10

    vt.run(scenario())


def test_rollover_seen_in_remaining_starts_the_new_window_at_once() -> None:
    vt = VirtualTime()
    limiter = RateLimiter(vt.clock, vt.sleep)

    async def scenario() -> None:
        probe = await limiter.acquire()
        vt.now = 0.5
        limiter.done(probe, rl_headers(10, 1, 1, "1"), 200, vt.now)
        assert (limiter.budget, limiter.window_end) == (1, 1.5)
        late = await limiter.acquire()  # sent after the probe's answer, floor 1
        vt.now = 0.6
        # Remaining did not fall below the floor: counted in a new window that began
        # before 0.6, so that one ends by 1.6 at the latest, and at once had 9 left.
        limiter.done(late, rl_headers(10, 1, 9, "1"), 200, vt.now)
        assert (limiter.budget, limiter.window_end) == (9, pytest.approx(1.6))

    vt.run(scenario())


def test_429_pauses_everyone_until_its_window_ends() -> None:
    vt = VirtualTime()
    limiter = RateLimiter(vt.clock, vt.sleep)

    async def scenario() -> None:
        probe = await limiter.acquire()
        limiter.done(probe, rl_headers(10, 10, 5, "4"), 200, vt.now)
        refused = await limiter.acquire()
        vt.now = 1.0
        limiter.done(refused, rl_headers(10, 10, 0, "4"), 429, vt.now)
        assert limiter.budget == 0
        await limiter.acquire()
        assert vt.now == pytest.approx(1.0 + 5.0 + MARGIN)  # reset + 1 for rounding

    vt.run(scenario())


def test_wait_past_the_deadline_raises() -> None:
    vt = VirtualTime()
    limiter = RateLimiter(vt.clock, vt.sleep)

    async def scenario() -> None:
        probe = await limiter.acquire()
        limiter.done(probe, rl_headers(1, 60, 0, "30"), 200, vt.now)
        with pytest.raises(WaitTooLong) as caught:
            await limiter.acquire(deadline=10.0)
        assert caught.value.wait == pytest.approx(31 + MARGIN)

    vt.run(scenario())


class _WouldWait(Exception):
    pass


async def _refuse_to_wait(delay: float) -> None:
    raise _WouldWait


@settings(max_examples=300, deadline=None)
@given(
    limit=st.integers(1, 12),
    steps=st.lists(
        st.tuples(st.sampled_from(["send", "count", "answer"]), st.integers(0, 30)), max_size=120
    ),
)
def test_limiter_never_overspends_whatever_order_requests_are_counted_and_answered(
    limit: int, steps: list[tuple[str, int]]
) -> None:
    """One window; the server counts in-flight requests in any order and answers counted
    ones in any order. However it goes, the limiter never lets more than ``limit`` out."""
    limiter = RateLimiter(lambda: 0.0, _refuse_to_wait)
    sent: list[Any] = []  # tickets sent, not yet counted
    counted: list[tuple[Any, int]] = []  # (ticket, Remaining) counted, not yet answered
    total = 0

    async def try_send() -> bool:
        task = asyncio.ensure_future(limiter.acquire())
        await asyncio.sleep(0)
        if not task.done():  # waiting for the probe's answer
            task.cancel()
            return False
        try:
            sent.append(task.result())
        except _WouldWait:  # waiting for the window to end
            return False
        return True

    async def scenario() -> None:
        nonlocal total
        for action, index in steps:
            if action == "send" and await try_send():
                total += 1
                assert total <= limit
            elif action == "count" and sent:
                ticket = sent.pop(index % len(sent))
                counted.append((ticket, limit - (total - len(sent))))
            elif action == "answer" and counted:
                ticket, remaining = counted.pop(index % len(counted))
                limiter.done(ticket, rl_headers(limit, 60, remaining, "30"), 200, 0.0)

    asyncio.run(scenario())


def test_limiter_budget_survives_a_request_counted_late_but_answered_early() -> None:
    """Seen with the emulator: request 2 is counted after request 3 yet answered first."""
    limiter = RateLimiter(lambda: 0.0, _refuse_to_wait)

    async def scenario() -> None:
        probe = await limiter.acquire()
        limiter.done(probe, rl_headers(3, 60, 2, "30"), 200, 0.0)
        second, third = await limiter.acquire(), await limiter.acquire()
        # The server counts the third (Remaining 1), then the second (Remaining 0) and
        # answers the third first: 3 was not the last one counted, 2 was.
        limiter.done(third, rl_headers(3, 60, 1, "30"), 200, 0.0)
        assert limiter.budget == 0
        with pytest.raises(_WouldWait):
            await limiter.acquire()
        limiter.done(second, rl_headers(3, 60, 0, "30"), 200, 0.0)
        assert limiter.budget == 0

    asyncio.run(scenario())


# -- pacing against a simulated rate-limited server -------------------------------------------


def run_many(
    server: WindowServer, count: int, **overrides: Any
) -> tuple[float, list[AggregateResult | ApiError]]:
    async def go() -> tuple[float, list[AggregateResult | ApiError]]:
        async with window_client(server, **overrides) as client:
            started = server.time.now
            results = await client.aggregate_many(distinct_requests(count))
            return server.time.now - started, results

    return server.time.run(go())


@pytest.mark.parametrize(
    ("phase", "latency", "rounding", "jitter"),
    [
        (0.0, 0.0, "ceil", 0.0),
        (0.37, 0.05, "ceil", 0.0),
        (0.81, 0.02, "floor", 0.0),
        (0.5, 0.05, "exact", 0.0),
        (0.13, 0.0, "ceil", 0.005),  # counted and answered out of order, as the emulator does
        (0.66, 0.02, "ceil", 0.03),
    ],
)
def test_1000_requests_at_100_per_second_never_see_a_429(
    phase: float, latency: float, rounding: str, jitter: float
) -> None:
    server = WindowServer(
        VirtualTime(start=12.345),
        limit=100,
        period=1.0,
        phase=phase,
        latency=latency,
        rounding=rounding,
        jitter=jitter,
    )
    elapsed, results = run_many(server, 1000)
    assert server.statuses[429] == 0
    assert all(isinstance(r, AggregateResult) for r in results)
    assert max(server.counts.values()) <= 100
    # 1000 requests need at least 10 windows (9 waits); pacing wastes a fraction of one.
    assert 8.0 < elapsed < 11.0


@pytest.mark.parametrize(
    ("limit", "period", "count", "jitter"),
    [
        (5, 1.0, 30, 0.0),
        (20, 1.0, 60, 0.0),
        (20, 1.0, 60, 0.05),
        (7, 2.0, 30, 0.02),
        (50, 10.0, 120, 0.01),
    ],
)
def test_small_limits_never_see_a_429(limit: int, period: float, count: int, jitter: float) -> None:
    server = WindowServer(
        VirtualTime(start=3.7), limit=limit, period=period, phase=0.3, latency=0.01, jitter=jitter
    )
    _, results = run_many(server, count)
    assert server.statuses[429] == 0
    assert all(isinstance(r, AggregateResult) for r in results)


def test_ample_budget_adds_no_delay_to_concurrent_requests() -> None:
    server = WindowServer(VirtualTime(), limit=100_000, period=60.0, latency=0.05)
    elapsed, results = run_many(server, 1000, parallelism=16)
    assert all(isinstance(r, AggregateResult) for r in results)
    ideal = 1000 * 0.05 / 16
    assert elapsed == pytest.approx(ideal + 0.05, abs=0.06)  # + the first request, alone


def test_a_429_received_anyway_is_retried_after_the_reset() -> None:
    # Another client spends the whole budget: the first answer is a 429.
    server = WindowServer(VirtualTime(start=0.5), limit=10, period=1.0, latency=0.01)
    server.counts[0] = 10
    elapsed, results = run_many(server, 5)
    assert all(isinstance(r, AggregateResult) for r in results)
    assert server.statuses == Counter({429: 1, 200: 5})
    # The 429 arrives at 0.51 and its window ends by 1.51; the retry then takes 0.01 s.
    assert elapsed == pytest.approx(0.01 + 1.0 + MARGIN + 0.01, abs=0.005)


# -- aggregate_many ----------------------------------------------------------------------------


def test_aggregate_many_is_bounded_by_parallelism_and_keeps_order() -> None:
    server = WindowServer(VirtualTime(), limit=100_000, period=60.0, latency=0.01)
    _, results = run_many(server, 50, parallelism=4)
    assert server.max_in_flight == 4
    assert len(results) == 50


def test_aggregate_many_failures_do_not_stop_the_others() -> None:
    vt = VirtualTime()

    async def handler(request: httpx.Request) -> httpx.Response:
        query = json.loads(request.content)["data"]["attributes"]["query_filter"]
        await vt.sleep(0.01)
        if query.startswith("bad"):
            return json_response(
                400, {"errors": [{"title": "Bad Request", "detail": f"cannot parse {query}"}]}
            )
        return json_response(200, {"data": {"id": query, "attributes": {"total": 1, "groups": []}}})

    queries = ["a", "bad 1", "b", "c", "bad 2", "d"]

    async def go() -> list[AggregateResult | ApiError]:
        async with CasesClient(
            make_settings(parallelism=2),
            transport=httpx.MockTransport(handler),
            sleep=vt.sleep,
            clock=vt.clock,
        ) as client:
            return await client.aggregate_many(
                [AggregateRequest(q, ("status",), 5) for q in queries]
            )

    results = vt.run(go())
    assert [r.id if isinstance(r, AggregateResult) else type(r).__name__ for r in results] == [
        "a",
        "BadRequestError",
        "b",
        "c",
        "BadRequestError",
        "d",
    ]
    assert isinstance(results[4], BadRequestError)
    assert results[4].message.endswith(
        ": Bad Request: cannot parse bad 2; fix the query, groups or limit"
    )


def test_aggregate_many_of_nothing() -> None:
    async def go() -> list[AggregateResult | ApiError]:
        async with CasesClient(
            make_settings(), transport=httpx.MockTransport(respond(200, OK))
        ) as client:
            return await client.aggregate_many([])

    assert asyncio.run(go()) == []


def test_aggregate_many_passes_on_unexpected_exceptions_and_stops() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("bug in a transport")

    async def go() -> list[AggregateResult | ApiError]:
        async with CasesClient(make_settings(), transport=httpx.MockTransport(handler)) as client:
            return await client.aggregate_many(distinct_requests(5))

    with pytest.raises(RuntimeError, match="bug in a transport"):
        asyncio.run(go())


def test_client_works_without_async_with_and_closes() -> None:
    async def go() -> AggregateResult:
        client = CasesClient(make_settings(), transport=httpx.MockTransport(respond(200, OK)))
        try:
            return await client.aggregate(REQUEST)
        finally:
            await client.aclose()
            await client.aclose()  # twice is fine

    assert asyncio.run(go()) == OK_RESULT


# -- logging -----------------------------------------------------------------------------------


def test_debug_log_tells_the_story_of_a_retry(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="casereport.api.client")
    call(respond(503), respond(200, OK))
    wait = jitter(0.25)[0]
    assert [r.getMessage() for r in caplog.records if r.name == "casereport.api.client"] == [
        f"POST {URL} attempt 1: HTTP 503",
        f"POST {URL}: retrying in {wait:.3f} s",
        f"POST {URL} attempt 2: HTTP 200",
    ]
    assert all(
        r.levelno == logging.DEBUG for r in caplog.records if r.name == "casereport.api.client"
    )


def test_nothing_is_logged_above_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="casereport.api.client")
    call(respond(503), respond(200, OK))
    assert [r for r in caplog.records if r.name == "casereport.api.client"] == []


# -- real sockets: resets, truncation, garbage ------------------------------------------------


@dataclass
class RawServer:
    """A loopback TCP server misbehaving as ``behaviour`` says; counts its connections."""

    behaviour: str
    url: str = ""
    connections: int = 0


OK_BYTES = json.dumps(OK).encode()


def _http_response(body: bytes, *, length: int | None = None) -> bytes:
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body) if length is None else length}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


async def _misbehave(
    state: RawServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    state.connections += 1
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)content-length: *(\d+)", head)
        await reader.readexactly(int(length.group(1)) if length else 0)
        behaviour = state.behaviour
        if behaviour == "reset-then-ok":
            behaviour = "reset" if state.connections == 1 else "ok"
        if behaviour == "reset":
            # SO_LINGER 0: closing sends a TCP RST instead of a FIN.
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return
        if behaviour == "truncated":
            writer.write(_http_response(OK_BYTES[:20], length=len(OK_BYTES)))
        elif behaviour == "garbage":
            writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        elif behaviour == "ok":
            writer.write(_http_response(OK_BYTES))
        await writer.drain()  # "close" writes nothing at all
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    writer.close()


@pytest.fixture
def raw_server() -> Iterator[Callable[[str], RawServer]]:
    """Factory of misbehaving servers on 127.0.0.1, run in a background loop, closed at teardown."""
    with loop_servers("raw-server") as serve:

        def start(behaviour: str) -> RawServer:
            state = RawServer(behaviour)
            state.url = serve(lambda r, w: _misbehave(state, r, w))
            return state

        yield start


async def _no_wait(delay: float) -> None:
    await asyncio.sleep(0)


def call_real(url: str, **overrides: Any) -> AggregateResult | ApiError:
    async def go() -> AggregateResult:
        settings = make_settings(base_url=url, site=url, timeout=5.0, **overrides)
        async with CasesClient(settings, sleep=_no_wait, rng=random.Random(7)) as client:
            return await client.aggregate(REQUEST)

    try:
        return asyncio.run(go())
    except ApiError as exc:
        return exc


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [
        ("reset", r"ReadError: \[Errno 104\] Connection reset by peer|RemoteProtocolError: .*"),
        ("close", r"RemoteProtocolError: Server disconnected without sending a response\."),
        (
            "truncated",
            r"RemoteProtocolError: peer closed connection without sending complete message body.*",
        ),
        ("garbage", r"RemoteProtocolError: .*"),
    ],
)
def test_network_failures_are_retried_then_reported(
    raw_server: Callable[[str], RawServer], behaviour: str, reason: str
) -> None:
    server = raw_server(behaviour)
    error = call_real(server.url, max_attempts=3)
    url = server.url + "/api/v2/cases/aggregate"
    assert isinstance(error, ApiConnectionError)
    assert re.fullmatch(
        rf"could not reach {re.escape(url)} after 3 attempts: ({reason}); "
        r"check the network, DD_SITE or CASEREPORT_API_URL",
        error.message,
    ), error.message
    assert server.connections == 3


def test_a_reset_connection_is_retried_on_a_new_one(raw_server: Callable[[str], RawServer]) -> None:
    server = raw_server("reset-then-ok")
    assert call_real(server.url) == OK_RESULT
    assert server.connections == 2


def test_connection_refused_is_reported(raw_server: Callable[[str], RawServer]) -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]  # bound but not listening: refused
        error = call_real(f"http://127.0.0.1:{port}", max_attempts=2)
    assert isinstance(error, ApiConnectionError)
    url = f"http://127.0.0.1:{port}/api/v2/cases/aggregate"
    assert error.message.startswith(f"could not reach {url} after 2 attempts: ConnectError: ")


def test_aggregate_sync_over_real_http(raw_server: Callable[[str], RawServer]) -> None:
    server = raw_server("ok")
    settings = make_settings(base_url=server.url, site=server.url)
    assert aggregate_sync(settings, REQUEST) == OK_RESULT
