"""Messages, logs and corner cases of the API client that mutation testing found unpinned.

Each test pins what a user sees or relies on (docs/mutation.md); the helpers are those
of test_client.py: a scripted server, virtual time, nothing waits for real.
"""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import pytest
from tests.test_client import (
    OK,
    OK_RESULT,
    REQUEST,
    URL,
    FakeTime,
    VirtualTime,
    assert_unreachable,
    call,
    distinct_requests,
    jitter,
    make_settings,
    respond,
)

from casereport.api.client import CasesClient
from casereport.api.messages import AggregateRequest, AggregateResult
from casereport.errors import (
    ApiConnectionError,
    ApiError,
    RateLimitedError,
    ResponseFormatError,
    ServerError,
)


def _client_log(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "casereport.api.client"]


def test_a_redirect_without_a_location_says_elsewhere() -> None:
    outcome = call(respond(302))
    assert type(outcome.error) is ApiError
    assert outcome.error.message == (
        f"unexpected redirect (HTTP 302) from {URL} to elsewhere; "
        "set CASEREPORT_API_URL to the API's own base URL"
    )


def test_300_multiple_choices_is_a_redirect_too() -> None:
    outcome = call(respond(300, OK, headers={"Location": "https://example.com/"}))
    assert type(outcome.error) is ApiError
    assert outcome.error.status == 300
    assert outcome.error.message == (
        f"unexpected redirect (HTTP 300) from {URL} to https://example.com/; "
        "set CASEREPORT_API_URL to the API's own base URL"
    )
    assert len(outcome.requests) == 1


def test_a_300_with_a_large_body_is_still_named_a_redirect() -> None:
    # Only 2xx bodies are read whole (up to max_response_bytes); any other status is
    # named by its status, whatever its body.
    outcome = call(
        respond(300, headers={"Location": "https://example.com/"}, content=b"x" * 2048),
        max_response_bytes=1024,
    )
    assert type(outcome.error) is ApiError
    assert outcome.error.message == (
        f"unexpected redirect (HTTP 300) from {URL} to https://example.com/; "
        "set CASEREPORT_API_URL to the API's own base URL"
    )


def test_a_failure_without_any_text_is_named_by_its_kind_alone() -> None:
    outcome = call(httpx.UnsupportedProtocol(""))
    assert isinstance(outcome.error, ApiConnectionError)
    assert outcome.error.message == (
        f"could not call {URL}: UnsupportedProtocol; check DD_SITE or CASEREPORT_API_URL"
    )
    assert outcome.error.url == URL


def test_a_body_that_is_no_json_and_has_no_content_type_says_so() -> None:
    outcome = call(respond(200, content=b"<html>"))
    assert isinstance(outcome.error, ResponseFormatError)
    assert outcome.error.message == (
        f"unexpected response from {URL} (HTTP 200): the body is not valid JSON "
        "(no content type: Expecting value: line 1 column 1 (char 0)); "
        "check CASEREPORT_API_URL points at the Datadog API"
    )
    assert (outcome.error.status, outcome.error.url) == (200, URL)


def test_a_429_after_another_failure_backs_off_from_the_start() -> None:
    # 429s in a row back off further and further; any other answer starts them over.
    outcome = call(respond(429), respond(429), respond(503), respond(429), respond(200, OK))
    assert outcome.result == OK_RESULT
    assert outcome.sleeps == jitter(0.25, 0.5, 0.25, 0.25)


def test_debug_log_tells_the_story_of_a_rate_limit(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="casereport.api.client")
    call(respond(429, headers={"X-RateLimit-Reset": "2"}), respond(200, OK))
    assert _client_log(caplog) == [
        f"POST {URL} attempt 1: HTTP 429",
        f"POST {URL}: rate limited, retrying in 2.000 s",
        f"POST {URL} attempt 2: HTTP 200",
    ]


def test_debug_log_tells_the_story_of_a_network_failure(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="casereport.api.client")
    call(httpx.ReadError("[Errno 104] Connection reset by peer"), respond(200, OK))
    wait = jitter(0.25)[0]
    assert _client_log(caplog) == [
        f"POST {URL} attempt 1: ReadError: [Errno 104] Connection reset by peer",
        f"POST {URL}: retrying in {wait:.3f} s",
        f"POST {URL} attempt 2: HTTP 200",
    ]


def test_each_error_names_its_status_and_url() -> None:
    # What `apply` reports per failure comes from these as much as from the message.
    too_large = call(respond(200, content=b"x" * 2048), max_response_bytes=1024).error
    assert isinstance(too_large, ResponseFormatError)
    assert (too_large.status, too_large.url) == (200, URL)
    unreadable = call(respond(200, content=b"not gzip", headers={"Content-Encoding": "gzip"}))
    assert isinstance(unreadable.error, ResponseFormatError)
    assert (unreadable.error.status, unreadable.error.url) == (200, URL)
    over_cap = call(respond(429, headers={"X-RateLimit-Reset": "500"})).error
    assert isinstance(over_cap, RateLimitedError)
    assert (over_cap.status, over_cap.url) == (429, URL)
    silent = call(httpx.ConnectTimeout("connect timed out"), max_attempts=6).error
    assert isinstance(silent, ApiConnectionError)
    assert (silent.status, silent.url) == (None, URL)


def test_a_reset_of_exactly_the_cap_is_waited_out() -> None:
    outcome = call(respond(429, headers={"X-RateLimit-Reset": "120"}), respond(200, OK))
    assert outcome.result == OK_RESULT
    assert outcome.sleeps == [120.0]


def test_a_429_holds_back_the_requests_sent_with_it() -> None:
    """A 429 without the other rate-limit headers still says the server is over its limit:
    the requests waiting to go wait out its reset too, not only the one refused."""
    vt = VirtualTime(start=50.0)
    sent: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(vt.now)
        if len(sent) == 1:
            return httpx.Response(429, headers={"X-RateLimit-Reset": "2"})
        return httpx.Response(200, json=OK)

    async def go() -> list[AggregateResult | ApiError]:
        async with CasesClient(
            make_settings(parallelism=2),
            transport=httpx.MockTransport(handler),
            sleep=vt.sleep,
            clock=vt.clock,
        ) as client:
            return await client.aggregate_many(distinct_requests(2))

    results = vt.run(go())
    assert all(isinstance(r, AggregateResult) for r in results)
    assert sent == [50.0, 52.0, 52.0]


def test_an_answer_httpx_could_not_decode_is_unreadable_and_not_retried() -> None:
    problem = "Error -3 while decompressing data: incorrect header check"
    outcome = call(httpx.DecodingError(problem), respond(200, OK))
    assert isinstance(outcome.error, ResponseFormatError)
    assert outcome.error.message == (
        f"unreadable response from {URL}: {problem}; "
        "check CASEREPORT_API_URL points at the Datadog API"
    )
    assert (outcome.error.status, outcome.error.url) == (200, URL)
    assert len(outcome.requests) == 1


def test_an_attempt_has_only_what_is_left_of_a_short_deadline() -> None:
    outcome = call(httpx.ReadTimeout("read timed out"), max_attempts=1, deadline=0.5)
    assert isinstance(outcome.error, ApiConnectionError)
    assert outcome.error.message == (
        f"could not reach {URL} after 1 attempt: timed out after 0.5 s (ReadTimeout); "
        "check the network, DD_SITE or CASEREPORT_API_URL, or raise --timeout"
    )


def test_requests_waiting_to_go_stop_once_the_server_is_found_down() -> None:
    """Four requests at once against a server that accepts no connection: the first goes
    alone (nothing is known of the rate limit yet), each failure lets the next one try,
    and once three in a row went unanswered the fourth is not sent at all."""
    vt = VirtualTime()
    seen: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        await vt.sleep(0.01)  # refused after a while: the others are waiting by then
        raise httpx.ConnectError("[Errno 111] Connection refused")

    async def go() -> list[AggregateResult | ApiError]:
        async with CasesClient(
            make_settings(parallelism=4),
            transport=httpx.MockTransport(handler),
            sleep=vt.sleep,
            clock=vt.clock,
        ) as client:
            return await client.aggregate_many(distinct_requests(4))

    results = vt.run(go())
    assert len(seen) == 3
    for error in results:
        assert isinstance(error, ApiConnectionError)
        assert error.message == (
            f"could not reach {URL}: it answered none of the last 3 attempts (ConnectError: "
            "[Errno 111] Connection refused), so no more are made; check the network, "
            "DD_SITE or CASEREPORT_API_URL"
        )


@pytest.mark.parametrize("reset", ["inf", "nan", "-inf"])
def test_a_reset_that_is_no_finite_number_is_as_none(reset: str) -> None:
    outcome = call(respond(429, headers={"X-RateLimit-Reset": reset}), respond(200, OK))
    assert outcome.result == OK_RESULT
    assert outcome.sleeps == jitter(0.25)


def test_a_spent_budget_past_the_deadline_but_within_the_cap_says_so() -> None:
    # Told by a 200 that the budget is spent for 100 s (plus a second for rounding): the
    # next request would wait past its 60 s deadline, though within the 120 s cap.
    headers = {
        "X-RateLimit-Limit": "100",
        "X-RateLimit-Period": "3600",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "100",
    }
    fake = FakeTime()

    async def go() -> ApiError:
        async with CasesClient(
            make_settings(deadline=60.0),
            transport=httpx.MockTransport(respond(200, OK, headers=headers)),
            sleep=fake.sleep,
            clock=fake.clock,
        ) as client:
            assert await client.aggregate(REQUEST) == OK_RESULT
            with pytest.raises(RateLimitedError) as caught:
                await client.aggregate(REQUEST)
            return caught.value

    error = asyncio.run(go())
    assert error.message == (
        f"rate limit budget exhausted at {URL}: it returns in 101 s, after this request's "
        "60 s deadline; lower the parallelism or try again later"
    )
    assert (error.status, error.url) == (429, URL)
    assert fake.sleeps == []


def _chain(depth: int, last: BaseException) -> httpx.ConnectError:
    """A ConnectError whose causes are ``depth`` plain errors, then ``last``."""
    failure = httpx.ConnectError("All connection attempts failed")
    link: BaseException = failure
    for n in range(depth):
        link.__cause__ = RuntimeError(f"link {n}")
        link = link.__cause__
    link.__cause__ = last
    return failure


@pytest.mark.parametrize(
    ("failure", "named"),
    [
        # The OS error names its number in the system's own words.
        (
            _chain(0, PermissionError(1, "Connect call failed ('10.0.0.1', 443)")),
            "ConnectError: [Errno 1] Operation not permitted",
        ),
        (
            _chain(6, ConnectionRefusedError(111, "refused")),
            "ConnectError: [Errno 111] Connection refused",
        ),
        # The walk is bounded: it looks at 8 errors at most (the failure and 7 causes), so
        # an OS error 8 causes down is not reached and httpx's words stand.
        (
            _chain(7, ConnectionRefusedError(111, "refused")),
            "ConnectError: All connection attempts failed",
        ),
    ],
)
def test_the_os_error_under_a_failure_is_looked_for_among_eight(
    failure: httpx.TransportError, named: str
) -> None:
    assert_unreachable(failure, named, attempts=1)


def test_the_errors_after_the_last_retry_name_their_status_and_url() -> None:
    unreachable = call(httpx.ReadTimeout("read timed out"), max_attempts=2).error
    assert isinstance(unreachable, ApiConnectionError)
    assert (unreachable.status, unreachable.url) == (None, URL)
    throttled = call(respond(429, headers={"X-RateLimit-Reset": "100"}), deadline=60.0).error
    assert isinstance(throttled, RateLimitedError)
    assert (throttled.status, throttled.url) == (429, URL)
    failing = call(respond(503), max_attempts=2).error
    assert isinstance(failing, ServerError)
    assert (failing.status, failing.url) == (503, URL)


def test_a_bug_stops_aggregate_many_only_once_every_other_request_has_wound_up() -> None:
    """An unexpected exception (a bug, or Ctrl-C) cancels the other requests, and waits
    for each to finish winding up (closing its connection) before it is passed on."""
    wound_up: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        query = json.loads(request.content)["data"]["attributes"]["query_filter"]
        if query == "warm-up":
            return httpx.Response(200, json=OK)  # no rate-limit headers: no pacing after
        if query.endswith("x3"):
            await asyncio.sleep(0.01)  # the others are on the wire by then
            raise RuntimeError("bug in a transport")
        try:
            await asyncio.sleep(60)
        finally:
            for _ in range(3):  # winding up takes a few turns of the loop
                await asyncio.sleep(0)
            wound_up.append(query)
        raise AssertionError("never answered")

    async def go() -> None:
        async with CasesClient(
            make_settings(parallelism=5), transport=httpx.MockTransport(handler)
        ) as client:
            await client.aggregate(AggregateRequest("warm-up", ("status",), 10))
            with pytest.raises(RuntimeError, match="bug in a transport"):
                await client.aggregate_many(distinct_requests(5))
            assert len(wound_up) == 4

    asyncio.run(go())
