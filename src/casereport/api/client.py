"""The Datadog Case Management API client: the only code that speaks HTTP to Datadog.

    from casereport.api.messages import AggregateRequest
    from casereport.api.settings import ClientSettings

    settings = ClientSettings.from_env()
    async with CasesClient(settings) as client:
        result = await client.aggregate(AggregateRequest("status:open", ("priority",), 10))

Transport: httpx, already a dependency; its transport is injectable, so tests use
``httpx.MockTransport`` or a real socket rather than patching. Retries are written here
rather than taken from tenacity or backoff because their waits come from Datadog's
``X-RateLimit-*`` headers, which every concurrent request shares (see ``api.ratelimit``).

Nothing hangs and nothing grows without bound: each attempt as a whole (connect, send,
every byte of the answer, however slowly it drips) is bounded by ``timeout``; a rate-limit
reset longer than ``max_rate_limit_wait`` fails the request at once instead of sleeping;
the parallelism semaphore is held only while an attempt is on the wire, never during a
wait; once ``UNREACHABLE_AFTER`` attempts in a row get no answer at all (refused, timed
out), the server is taken as down and the requests left fail at once rather than each
timing out in turn. Bodies are read as a stream within ``max_response_bytes`` (see
``api.body``) and decoded strictly (``messages.decode_json``). A 429 is not a failure of
the request: it is waited out (within the cap) and counts against the deadline, not
against ``max_attempts``.

Failures are the ``ApiError`` subclasses of ``casereport.errors``; each message names the
HTTP status, the URL and what to do. No key or token ever appears in a message, a log
line or a repr: :func:`~casereport.api.messages.redact` scrubs anything that came from
the network. The settings (``api.settings``) and the request, result and error-body
parsing (``api.messages``) are apart; this module holds the connection, the retries and
the error for each failure.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import math
import os
import random
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType

import httpx

from casereport import __version__
from casereport.api.body import BodyGate, BodyTooLarge, UnreadableBody, read_body
from casereport.api.messages import (
    AggregateRequest,
    AggregateResult,
    decode_json,
    describe_error_body,
    redact,
)
from casereport.api.ratelimit import MARGIN, RateLimiter, WaitTooLong
from casereport.api.settings import ClientSettings
from casereport.errors import (
    ApiConnectionError,
    ApiError,
    AuthenticationError,
    BadRequestError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    ResponseFormatError,
    ServerError,
)

__all__ = ["CasesClient", "aggregate_sync"]

_log = logging.getLogger("casereport.api.client")


def _cache_missing_sniffio() -> None:
    """Make a missing ``sniffio`` fail fast on import.

    httpcore 1.0.x imports sniffio inside ``current_async_library()`` on every lock it sets
    up, several times per request; since anyio 4.11 no longer installs sniffio, each of
    those imports fails after a full ``sys.path`` scan (encode/httpcore#1103), which
    doubles this client's CPU per request. Python does not cache a failed import, so
    this records it (``None`` in ``sys.modules`` makes ``import`` raise ImportError at
    once); with sniffio installed this does nothing.
    """
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]


#: Statuses worth another attempt besides 429: the server or a proxy failed transiently.
RETRY_STATUSES = frozenset({500, 502, 503, 504})
#: First backoff wait; each further attempt doubles the ceiling (full jitter below it).
BACKOFF_BASE = 0.25
#: Attempts in a row, client-wide, that get no answer at all (connection refused, timed
#: out) before the server is taken as down and the requests left fail without trying.
UNREACHABLE_AFTER = 3
#: The most of an error body read: its message is all that is wanted of it.
ERROR_BODY_BYTES = 64 * 1024
#: ``X-RateLimit-Reset`` is whole seconds rounded in an undocumented direction, so the
#: limiter waits up to a second (and its margin) past it: a reset at the cap still fits.
_RESET_SLACK = 1.0 + MARGIN

_USER_AGENT = (
    f"casereport/{__version__} "
    f"(python {sys.version_info.major}.{sys.version_info.minor}; +https://github.com/casereport)"
)


def _rate_limit_reset(headers: httpx.Headers) -> float | None:
    raw = headers.get("x-ratelimit-reset")
    if raw is None:
        return None
    try:
        reset = float(raw)
    except ValueError:
        return None
    return max(reset, 0.0) if math.isfinite(reset) else None


# -- the client -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Answer:
    """An HTTP answer, its body read; ``refused`` says why a 2xx body was not."""

    status: int
    headers: httpx.Headers
    content: bytes | bytearray
    refused: BodyTooLarge | UnreadableBody | None = None


class _AttemptTimeout(httpx.TimeoutException):
    """The attempt as a whole outlived its timeout (a silent or dripping server)."""


class CasesClient:
    """Async client for the aggregate endpoint: ``async with CasesClient(settings) as c``.

    Retries 429 (waiting ``X-RateLimit-Reset``), 500/502/503/504, timeouts and connection
    errors with exponential backoff and full jitter, within ``max_attempts`` and the
    per-request ``deadline``; paces concurrent requests from the rate-limit headers so they
    do not run into 429 in the first place. ``sleep``, ``clock`` and ``rng`` are injectable
    so that tests run instantly and deterministically.
    """

    def __init__(
        self,
        settings: ClientSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._transport = transport
        self._rng = rng if rng is not None else random.Random()
        self._sleep = sleep
        self._clock = clock
        self._url = settings.aggregate_url
        self._secrets = settings.credentials.secrets()
        # Bounds the attempts on the wire, not the requests: a request waiting out a rate
        # limit or a backoff holds no slot.
        self._semaphore = asyncio.Semaphore(settings.parallelism)
        self._limiter = RateLimiter(clock, sleep)
        self._gate = BodyGate()
        self._silent = 0  # attempts in a row, client-wide, that got no answer at all
        self._silence: tuple[httpx.TransportError, float] | None = None  # the last of them
        self._progress: float | None = None  # when a request last got through
        self._http: httpx.AsyncClient | None = None

    async def __aenter__(self) -> CasesClient:
        self._client()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections (also done by leaving ``async with``)."""
        if self._http is not None:
            http, self._http = self._http, None
            await http.aclose()

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            _cache_missing_sniffio()
            settings = self._settings
            self._http = httpx.AsyncClient(
                headers={
                    **settings.credentials.headers(),
                    "Accept": "application/json",
                    "Content-Type": "application/json",
                    "Accept-Encoding": "gzip",
                    "User-Agent": _USER_AGENT,
                },
                # No timeout of httpx's own: it would bound each read, and race the one
                # bound that counts, on the attempt as a whole (see _attempt).
                timeout=None,
                limits=httpx.Limits(
                    max_connections=settings.parallelism,
                    max_keepalive_connections=settings.parallelism,
                ),
                transport=self._transport,
                http2=False,
                follow_redirects=False,
            )
        return self._http

    async def aggregate(self, request: AggregateRequest) -> AggregateResult:
        """Run one aggregation; raises an ``ApiError`` subclass on failure."""
        body = json.dumps(request.to_body(), separators=(",", ":")).encode()
        answer = await self._post(body)
        try:
            payload = decode_json(answer.content)
        except ValueError as exc:
            kind = answer.headers.get("content-type", "no content type")
            raise ResponseFormatError(
                self._redact(
                    f"unexpected response from {self._url} (HTTP {answer.status}): "
                    f"the body is not valid JSON ({kind}: {exc}); "
                    "check CASEREPORT_API_URL points at the Datadog API"
                ),
                status=answer.status,
                url=self._url,
            ) from None
        del answer  # the body: only the payload is needed from here
        return AggregateResult.from_response(payload, self._url, request.limit)

    async def aggregate_many(
        self, requests: Sequence[AggregateRequest]
    ) -> list[AggregateResult | ApiError]:
        """Run aggregations concurrently (at most ``parallelism`` at once), in order.

        A failed request yields its ``ApiError`` in its place; it never stops the others.
        """
        results: list[AggregateResult | ApiError | None] = [None] * len(requests)
        pending = iter(range(len(requests)))

        async def worker() -> None:
            for index in pending:
                try:
                    results[index] = await self.aggregate(requests[index])
                except ApiError as exc:
                    results[index] = exc

        workers = [
            asyncio.ensure_future(worker())
            for _ in range(min(self._settings.parallelism, len(requests)))
        ]
        try:
            await asyncio.gather(*workers)
        except BaseException:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise
        return [r for r in results if r is not None]

    # -- one request with retries ---------------------------------------------------------

    async def _post(self, body: bytes) -> _Answer:
        settings = self._settings
        http = self._client()
        clock = self._clock
        debug = _log.isEnabledFor(logging.DEBUG)
        started = clock()
        if self._progress is None:
            self._progress = started
        deadline = started + settings.deadline
        attempt = 0  # every attempt sent
        failures = 0  # attempts that failed, 429s apart: bounded by max_attempts
        throttled = 0  # 429s in a row
        while True:
            self._check_reachable()
            try:
                ticket = await self._limiter.acquire(
                    deadline, settings.max_rate_limit_wait + _RESET_SLACK
                )
            except WaitTooLong as exc:
                over_cap = exc.wait > settings.max_rate_limit_wait + _RESET_SLACK
                raise self._wait_too_long(exc.wait, over_cap=over_cap) from None
            if self._silent >= UNREACHABLE_AFTER:  # found down while this one waited
                self._limiter.done(ticket, None, None, clock())
                self._check_reachable()
            attempt += 1
            # No attempt may outlive the deadline.
            timeout = min(settings.timeout, max(deadline - clock(), 0.001))
            answer: _Answer | None = None
            failure: httpx.TransportError | None = None
            try:
                answer = await self._attempt(http, body, timeout)
            except httpx.TransportError as exc:
                failure = exc
            except httpx.DecodingError as exc:  # a response httpx built and decoded itself
                answer = _Answer(200, httpx.Headers(), b"", refused=UnreadableBody(str(exc)))
            finally:
                self._limiter.done(
                    ticket,
                    answer.headers if answer is not None else None,
                    answer.status if answer is not None else None,
                    clock(),
                )

            if answer is not None:
                self._silent = 0
                status = answer.status
                if debug:
                    _log.debug("POST %s attempt %d: HTTP %d", self._url, attempt, status)
                if 200 <= status < 300:
                    self._progress = clock()
                    if answer.refused is not None:
                        raise self._refused(answer.refused, status)
                    return answer
                if status == 429:
                    throttled += 1
                    wait = self._rate_limit_wait(answer, throttled, deadline, timeout, attempt)
                    if debug:
                        _log.debug("POST %s: rate limited, retrying in %.3f s", self._url, wait)
                    await self._sleep(wait)
                    continue
                throttled = 0
                if status not in RETRY_STATUSES:
                    raise self._status_error(answer)
                failures += 1
                wait = self._backoff(failures)
            else:
                assert failure is not None
                if debug:
                    _log.debug(
                        "POST %s attempt %d: %s",
                        self._url,
                        attempt,
                        self._redact(self._describe(failure, timeout)),
                    )
                if not _retryable(failure):
                    raise ApiConnectionError(
                        self._redact(
                            f"could not call {self._url}: {self._describe(failure, timeout)}; "
                            "check DD_SITE or CASEREPORT_API_URL"
                        ),
                        url=self._url,
                    ) from failure
                if isinstance(failure, (httpx.TimeoutException, httpx.ConnectError)):
                    self._silent += 1
                    self._silence = (failure, timeout)
                failures += 1
                wait = self._backoff(failures)

            if failures >= settings.max_attempts:
                raise self._final_error(answer, failure, timeout, attempt, None)
            self._check_reachable()
            if clock() + wait > deadline:
                why = f"the {settings.deadline:g} s deadline leaves no time for another"
                raise self._final_error(answer, failure, timeout, attempt, why)
            if debug:
                _log.debug("POST %s: retrying in %.3f s", self._url, wait)
            await self._sleep(wait)

    def _rate_limit_wait(
        self, answer: _Answer, throttled: int, deadline: float, timeout: float, attempt: int
    ) -> float:
        """How long to wait after a 429, which is not a failure: the reset, waited out
        within the cap, the deadline, and a deadline of the last request that got through
        (a server that only ever says 429); raise ``RateLimitedError`` past any of them."""
        settings, clock = self._settings, self._clock
        reset = _rate_limit_reset(answer.headers)
        if reset is not None and reset > settings.max_rate_limit_wait:
            raise self._wait_too_long(reset, over_cap=True)
        # A reset of 0 must not turn into a loop of requests: a short wait at least.
        wait = max(reset, BACKOFF_BASE) if reset is not None else self._backoff(throttled)
        self._limiter.pause(clock() + wait)
        assert self._progress is not None
        stalled = self._progress + settings.deadline
        if clock() + wait > min(deadline, stalled):
            why = (
                f"the {settings.deadline:g} s deadline leaves no time for another"
                if deadline <= stalled
                else f"no request has got through for {settings.deadline:g} s"
            )
            raise self._final_error(answer, None, timeout, attempt, why)
        return wait

    async def _attempt(self, http: httpx.AsyncClient, body: bytes, timeout: float) -> _Answer:
        """One POST, its answer read whole, within ``timeout`` seconds all told."""
        request = http.build_request("POST", self._url, content=body)
        async with self._semaphore:
            try:
                # httpx's timeouts bound each read, so a server dripping a byte at a time
                # would never trip them: this bounds the attempt as a whole.
                async with asyncio.timeout(timeout):
                    response = await http.send(request, stream=True)
                    try:
                        return await self._read(response)
                    finally:
                        await response.aclose()
            except TimeoutError:
                raise _AttemptTimeout("no complete answer in time", request=request) from None

    async def _read(self, response: httpx.Response) -> _Answer:
        status, headers = response.status_code, response.headers
        if not 200 <= status < 300:
            # Only the message is wanted from an error body: its start, whatever its size.
            try:
                content = await read_body(response, ERROR_BODY_BYTES, truncate=True)
            except UnreadableBody:
                content = bytearray()
            return _Answer(status, headers, content)
        try:
            content = await read_body(response, self._settings.max_response_bytes, gate=self._gate)
        except (BodyTooLarge, UnreadableBody) as exc:
            return _Answer(status, headers, b"", refused=exc)
        return _Answer(status, headers, content)

    def _refused(self, problem: BodyTooLarge | UnreadableBody, status: int) -> ApiError:
        if isinstance(problem, BodyTooLarge):
            message = (
                f"refused the response from {self._url} (HTTP {status}): {problem}; an "
                "aggregate answer is far smaller, so check CASEREPORT_API_URL points at the "
                "Datadog API"
            )
        else:
            message = (
                f"unreadable response from {self._url}: {problem}; "
                "check CASEREPORT_API_URL points at the Datadog API"
            )
        return ResponseFormatError(self._redact(message), status=status, url=self._url)

    def _check_reachable(self) -> None:
        """Fail at once when the last attempts, client-wide, got no answer at all."""
        if self._silent < UNREACHABLE_AFTER or self._silence is None:
            return
        failure, timeout = self._silence
        raise ApiConnectionError(
            self._redact(
                f"could not reach {self._url}: it answered none of the last "
                f"{UNREACHABLE_AFTER} attempts ({self._describe(failure, timeout)}), "
                "so no more are made; "
                f"{self._what_to_check(failure)}"
            ),
            url=self._url,
        )

    def _wait_too_long(self, wait: float, *, over_cap: bool) -> RateLimitedError:
        """The error for a rate-limit wait longer than the cap, or than the deadline left."""
        settings = self._settings
        if over_cap:
            message = (
                f"rate limited at {self._url}: the limit resets in {wait:.0f} s, longer than "
                f"the {settings.max_rate_limit_wait:g} s casereport waits; try again later, "
                "or raise the cap with --max-rate-limit-wait (max_rate_limit_wait in "
                "casereport.toml)"
            )
        else:
            message = (
                f"rate limit budget exhausted at {self._url}: it returns in {wait:.0f} s, "
                f"after this request's {settings.deadline:g} s deadline; "
                "lower the parallelism or try again later"
            )
        return RateLimitedError(self._redact(message), status=429, url=self._url)

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self._settings.max_retry_wait, BACKOFF_BASE * 2.0 ** (attempt - 1))
        return ceiling * self._rng.random()

    def _redact(self, text: str) -> str:
        return redact(text, self._secrets)

    @property
    def _server(self) -> str:
        """Who answered, for messages: the local emulator is not Datadog."""
        return "the emulator" if self._settings.site == "emulator" else "Datadog"

    def _describe(self, failure: httpx.TransportError, timeout: float) -> str:
        if isinstance(failure, _AttemptTimeout):
            return f"no complete answer within {timeout:.3g} s"
        if isinstance(failure, httpx.TimeoutException):
            return f"timed out after {timeout:.3g} s ({type(failure).__name__})"
        # httpx often wraps the OS error ("Connection reset by peer") with no text of its
        # own, or with a vaguer one ("All connection attempts failed"): the OS error wins.
        cause: BaseException | None = failure
        text = ""
        for _ in range(8):  # a bounded walk: chains are short, and need not be acyclic
            if cause is None:
                break
            if isinstance(cause, OSError) and cause.errno:
                # Negative numbers are getaddrinfo's (socket.gaierror), with their own text.
                reason = os.strerror(cause.errno) if cause.errno > 0 else cause.strerror
                text = f"[Errno {cause.errno}] {reason}"
                break
            text = text or str(cause)
            cause = cause.__cause__ or cause.__context__
        return f"{type(failure).__name__}: {text}" if text else type(failure).__name__

    @staticmethod
    def _what_to_check(failure: httpx.TransportError) -> str:
        advice = "check the network, DD_SITE or CASEREPORT_API_URL"
        if isinstance(failure, httpx.TimeoutException):
            advice += ", or raise --timeout"
        return advice

    def _status_error(self, answer: _Answer) -> ApiError:
        """The error for a status that is not retried."""
        status, url, site, server = answer.status, self._url, self._settings.site, self._server
        detail = describe_error_body(answer.content)
        said = f": {detail}" if detail else ""
        error: type[ApiError] = ApiError
        if status == 400:
            error = BadRequestError
            message = (
                f"{server} rejected the request (HTTP 400) at {url}{said}; "
                "fix the query, groups or limit"
            )
        elif status == 401:
            error = AuthenticationError
            message = (
                f"{server} did not accept the credentials (HTTP 401) at {url}{said}; "
                f"check DD_API_KEY and DD_APP_KEY (or DD_BEARER_TOKEN) are valid for site {site}"
            )
        elif status == 403:
            error = ForbiddenError
            message = (
                f"{server} refused access (HTTP 403) at {url}{said}; the application key or "
                f"token needs the cases_read scope and access to Case Management on site {site}"
            )
        elif status == 404:
            error = NotFoundError
            message = (
                f"not found (HTTP 404) at {url}{said}; check DD_SITE (site {site}) "
                "or CASEREPORT_API_URL points at the Datadog API"
            )
        elif 300 <= status < 400:
            where = answer.headers.get("location", "elsewhere")
            message = (
                f"unexpected redirect (HTTP {status}) from {url} to {where}; "
                "set CASEREPORT_API_URL to the API's own base URL"
            )
        else:
            if status >= 500:
                error = ServerError
            message = f"unexpected answer (HTTP {status}) from {url}{said}"
        return error(self._redact(message), status=status, url=url)

    def _final_error(
        self,
        answer: _Answer | None,
        failure: httpx.TransportError | None,
        timeout: float,
        attempts: int,
        why: str | None,
    ) -> ApiError:
        """The error once retries are over (attempts used up, or the deadline reached)."""
        url = self._url
        tried = f"after {attempts} attempt{'s' if attempts != 1 else ''}"
        if why is not None:
            tried += f" ({why})"
        if answer is None:
            assert failure is not None
            return ApiConnectionError(
                self._redact(
                    f"could not reach {url} {tried}: {self._describe(failure, timeout)}; "
                    f"{self._what_to_check(failure)}"
                ),
                url=url,
            )
        status = answer.status
        detail = describe_error_body(answer.content)
        said = f": {detail}" if detail else ""
        if status == 429:
            return RateLimitedError(
                self._redact(
                    f"still rate limited (HTTP 429) at {url} {tried}{said}; "
                    "lower the parallelism or try again later"
                ),
                status=status,
                url=url,
            )
        return ServerError(
            self._redact(
                f"{self._server} server error (HTTP {status}) at {url} {tried}{said}; "
                "try again later"
            ),
            status=status,
            url=url,
        )


def _retryable(failure: httpx.TransportError) -> bool:
    """Timeouts, network errors and protocol errors from the server side are transient."""
    return isinstance(
        failure,
        (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError),
    )


def aggregate_sync(settings: ClientSettings, request: AggregateRequest) -> AggregateResult:
    """Run one aggregation from synchronous code (one-off CLI use)."""

    async def run() -> AggregateResult:
        async with CasesClient(settings) as client:
            return await client.aggregate(request)

    return asyncio.run(run())
