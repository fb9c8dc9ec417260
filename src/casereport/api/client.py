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
import random
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any

import httpx

from casereport import __version__
from casereport.api.messages import (
    AggregateRequest,
    AggregateResult,
    describe_error_body,
    redact,
)
from casereport.api.ratelimit import RateLimiter, WaitTooLong
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
        self._semaphore = asyncio.Semaphore(settings.parallelism)
        self._limiter = RateLimiter(clock, sleep)
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
                timeout=httpx.Timeout(settings.timeout),
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
        async with self._semaphore:
            response = await self._post(body)
        try:
            payload = json.loads(response.content)
        except ValueError as exc:
            kind = response.headers.get("content-type", "no content type")
            raise ResponseFormatError(
                self._redact(
                    f"unexpected response from {self._url} (HTTP {response.status_code}): "
                    f"the body is not valid JSON ({kind}: {exc}); "
                    "check CASEREPORT_API_URL points at the Datadog API"
                ),
                status=response.status_code,
                url=self._url,
            ) from None
        return AggregateResult.from_response(payload, self._url)

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

    async def _post(self, body: bytes) -> httpx.Response:
        settings = self._settings
        http = self._client()
        clock = self._clock
        debug = _log.isEnabledFor(logging.DEBUG)
        started = clock()
        deadline = started + settings.deadline
        attempt = 0
        while True:
            attempt += 1
            try:
                ticket = await self._limiter.acquire(deadline)
            except WaitTooLong as exc:
                raise RateLimitedError(
                    f"rate limit budget exhausted at {self._url}: it returns in {exc.wait:.0f} s, "
                    f"after this request's {settings.deadline:g} s deadline; "
                    "lower the parallelism or try again later",
                    status=429,
                    url=self._url,
                ) from None
            # No attempt may outlive the deadline.
            timeout = min(settings.timeout, max(deadline - clock(), 0.001))
            per_request: Any = httpx.USE_CLIENT_DEFAULT if timeout == settings.timeout else timeout
            response: httpx.Response | None = None
            failure: httpx.TransportError | None = None
            try:
                response = await http.post(self._url, content=body, timeout=per_request)
            except httpx.TransportError as exc:
                failure = exc
            except httpx.DecodingError as exc:
                raise ResponseFormatError(
                    self._redact(f"unreadable response from {self._url}: {exc}"), url=self._url
                ) from exc
            finally:
                self._limiter.done(
                    ticket,
                    response.headers if response is not None else None,
                    response.status_code if response is not None else None,
                    clock(),
                )

            if response is not None:
                status = response.status_code
                if debug:
                    _log.debug("POST %s attempt %d: HTTP %d", self._url, attempt, status)
                if 200 <= status < 300:
                    return response
                if status == 429:
                    reset = _rate_limit_reset(response.headers)
                    wait = (
                        min(reset, settings.max_retry_wait)
                        if reset is not None
                        else self._backoff(attempt)
                    )
                    self._limiter.pause(clock() + wait)
                elif status in RETRY_STATUSES:
                    wait = self._backoff(attempt)
                else:
                    raise self._status_error(response)
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
                wait = self._backoff(attempt)

            if attempt >= settings.max_attempts:
                raise self._final_error(response, failure, timeout, attempt, None)
            if clock() + wait > deadline:
                raise self._final_error(response, failure, timeout, attempt, settings.deadline)
            if debug:
                _log.debug("POST %s: retrying in %.3f s", self._url, wait)
            await self._sleep(wait)

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self._settings.max_retry_wait, BACKOFF_BASE * 2.0 ** (attempt - 1))
        return ceiling * self._rng.random()

    def _redact(self, text: str) -> str:
        return redact(text, self._secrets)

    def _describe(self, failure: httpx.TransportError, timeout: float) -> str:
        if isinstance(failure, httpx.TimeoutException):
            return f"timed out after {timeout:.3g} s ({type(failure).__name__})"
        # httpx often wraps the OS error ("Connection reset by peer") with no text of its own.
        cause: BaseException | None = failure
        text = ""
        for _ in range(8):  # a bounded walk: chains are short, and need not be acyclic
            if cause is None or text:
                break
            text = str(cause)
            cause = cause.__cause__ or cause.__context__
        return f"{type(failure).__name__}: {text}" if text else type(failure).__name__

    def _status_error(self, response: httpx.Response) -> ApiError:
        """The error for a status that is not retried."""
        status, url, site = response.status_code, self._url, self._settings.site
        detail = describe_error_body(response.content)
        said = f": {detail}" if detail else ""
        error: type[ApiError] = ApiError
        if status == 400:
            error = BadRequestError
            message = (
                f"Datadog rejected the request (HTTP 400) at {url}{said}; "
                "fix the query, groups or limit"
            )
        elif status == 401:
            error = AuthenticationError
            message = (
                f"Datadog did not accept the credentials (HTTP 401) at {url}{said}; "
                f"check DD_API_KEY and DD_APP_KEY (or DD_BEARER_TOKEN) are valid for site {site}"
            )
        elif status == 403:
            error = ForbiddenError
            message = (
                f"Datadog refused access (HTTP 403) at {url}{said}; the application key or "
                f"token needs the cases_read scope and access to Case Management on site {site}"
            )
        elif status == 404:
            error = NotFoundError
            message = (
                f"not found (HTTP 404) at {url}{said}; check DD_SITE (site {site}) "
                "or CASEREPORT_API_URL points at the Datadog API"
            )
        elif 300 <= status < 400:
            where = response.headers.get("location", "elsewhere")
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
        response: httpx.Response | None,
        failure: httpx.TransportError | None,
        timeout: float,
        attempts: int,
        deadline: float | None,
    ) -> ApiError:
        """The error once retries are over (attempts used up, or the deadline reached)."""
        url = self._url
        tried = f"after {attempts} attempt{'s' if attempts != 1 else ''}"
        if deadline is not None:
            tried += f" (the {deadline:g} s deadline leaves no time for another)"
        if response is None:
            assert failure is not None
            return ApiConnectionError(
                self._redact(
                    f"could not reach {url} {tried}: {self._describe(failure, timeout)}; "
                    "check the network, DD_SITE or CASEREPORT_API_URL"
                ),
                url=url,
            )
        status = response.status_code
        detail = describe_error_body(response.content)
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
                f"Datadog server error (HTTP {status}) at {url} {tried}{said}; try again later"
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
