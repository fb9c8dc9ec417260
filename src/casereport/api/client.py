"""The Datadog Case Management API client: the only code that speaks HTTP to Datadog.

    settings = ClientSettings.from_env()
    async with CasesClient(settings) as client:
        result = await client.aggregate(AggregateRequest("status:open", ("priority",), 10))

Transport: httpx, already a dependency; its transport is injectable, so tests use
``httpx.MockTransport`` or a real socket rather than patching. Retries are written here
rather than taken from tenacity or backoff because their waits come from Datadog's
``X-RateLimit-*`` headers, which every concurrent request shares (see ``_ratelimit``).

Failures are the ``ApiError`` subclasses of ``casereport.errors``; each message names the
HTTP status, the URL and what to do. No key or token ever appears in a message, a log
line or a repr: :func:`redact` scrubs anything that came from the network.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import math
import os
import random
import re
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from types import TracebackType
from typing import Any, NoReturn
from urllib.parse import quote

import httpx

from casereport import __version__
from casereport.api.ratelimit import RateLimiter, WaitTooLong
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

__all__ = [
    "DEFAULT_SITE",
    "SITES",
    "AggregateGroup",
    "AggregateRequest",
    "AggregateResult",
    "CasesClient",
    "ClientSettings",
    "Credentials",
    "aggregate_sync",
    "describe_error_body",
    "redact",
]

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


SITES: tuple[str, ...] = (
    "datadoghq.com",
    "us3.datadoghq.com",
    "us5.datadoghq.com",
    "ap1.datadoghq.com",
    "ap2.datadoghq.com",
    "uk1.datadoghq.com",
    "datadoghq.eu",
    "ddog-gov.com",
    "us2.ddog-gov.com",
)
DEFAULT_SITE = "datadoghq.com"
AGGREGATE_PATH = "/api/v2/cases/aggregate"
MAX_AGGREGATE_LIMIT = 1000

#: Statuses worth another attempt besides 429: the server or a proxy failed transiently.
RETRY_STATUSES = frozenset({500, 502, 503, 504})
#: First backoff wait; each further attempt doubles the ceiling (full jitter below it).
BACKOFF_BASE = 0.25

_USER_AGENT = (
    f"casereport/{__version__} "
    f"(python {sys.version_info.major}.{sys.version_info.minor}; +https://github.com/casereport)"
)
_NO_CREDENTIALS = (
    "no Datadog credentials: set DD_API_KEY and DD_APP_KEY (or DD_BEARER_TOKEN), or use --emulator"
)
_MAX_DETAIL = 300
_HTML_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


# -- redaction -----------------------------------------------------------------------------


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret (as written, and URL-encoded) replaced by ``***``."""
    forms: set[str] = set()
    for secret in secrets:
        if secret:
            forms.add(secret)
            forms.add(quote(secret, safe=""))
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, "***")
    return text


# -- requests and results -------------------------------------------------------------------


@dataclass(frozen=True)
class AggregateRequest:
    """One ``POST /api/v2/cases/aggregate`` call: a query, fields to group by and a limit."""

    query_filter: str
    groups: tuple[str, ...]
    limit: int

    def __post_init__(self) -> None:
        where = f"aggregate request for query {self.query_filter!r}"
        if not isinstance(self.query_filter, str):
            raise ConfigError(f"{where}: query_filter must be a string")
        if isinstance(self.groups, str) or not isinstance(self.groups, Iterable):
            raise ConfigError(f"{where}: groups must be a list of field names, not {self.groups!r}")
        groups = tuple(self.groups)
        object.__setattr__(self, "groups", groups)
        if not groups:
            raise ConfigError(f"{where}: groups must name at least one field to group by")
        for group in groups:
            if not isinstance(group, str) or not group.strip():
                raise ConfigError(f"{where}: group {group!r} is not a field name")
        limit = self.limit
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise ConfigError(f"{where}: limit must be an integer, got {limit!r}")
        if not 1 <= limit <= MAX_AGGREGATE_LIMIT:
            raise ConfigError(
                f"{where}: limit must be between 1 and {MAX_AGGREGATE_LIMIT}, got {limit}"
            )

    def to_body(self) -> dict[str, Any]:
        """The JSON body Datadog expects."""
        return {
            "data": {
                "type": "aggregate",
                "attributes": {
                    "query_filter": self.query_filter,
                    "group_by": {"groups": list(self.groups), "limit": self.limit},
                },
            }
        }


@dataclass(frozen=True)
class AggregateGroup:
    """One group of an aggregate: the grouped value(s) and every count Datadog returned."""

    group: str
    value: tuple[float, ...]


@dataclass(frozen=True)
class AggregateResult:
    """The ``data`` of an aggregate response."""

    id: str
    total: float
    groups: tuple[AggregateGroup, ...]

    @classmethod
    def from_response(cls, payload: object, url: str) -> AggregateResult:
        """Parse a decoded 200 body, ignoring unknown fields.

        Raises ``ResponseFormatError`` naming the field path when a required field is
        missing or has the wrong type.
        """
        data = _object(_member(payload, "data", "", url), "data", url)
        ident = _text(_member(data, "id", "data", url), "data.id", url)
        attributes = _object(_member(data, "attributes", "data", url), "data.attributes", url)
        total = _number(
            _member(attributes, "total", "data.attributes", url), "data.attributes.total", url
        )
        raw_groups = _member(attributes, "groups", "data.attributes", url)
        if not isinstance(raw_groups, list):
            _format_error(url, f"data.attributes.groups is {_kind(raw_groups)}, expected a list")
        groups = []
        for index, raw in enumerate(raw_groups):
            path = f"data.attributes.groups[{index}]"
            item = _object(raw, path, url)
            group = _text(_member(item, "group", path, url), f"{path}.group", url)
            values = _member(item, "value", path, url)
            if not isinstance(values, list):
                _format_error(url, f"{path}.value is {_kind(values)}, expected a list of numbers")
            value = tuple(_number(v, f"{path}.value[{i}]", url) for i, v in enumerate(values))
            groups.append(AggregateGroup(group, value))
        return cls(ident, total, tuple(groups))


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _format_error(url: str, problem: str) -> NoReturn:
    raise ResponseFormatError(
        f"unexpected response from {url} (HTTP 200): {problem}; "
        "the aggregate endpoint may have changed, please report it",
        status=200,
        url=url,
    )


def _member(container: object, key: str, path: str, url: str) -> object:
    if not isinstance(container, dict):
        # Only the top level can get here: inner containers went through _object().
        _format_error(url, f"the body is {_kind(container)}, expected a JSON object")
    if key not in container:
        _format_error(url, f"missing required field {f'{path}.{key}' if path else key}")
    return container[key]


def _object(value: object, path: str, url: str) -> dict[str, object]:
    if not isinstance(value, dict):
        _format_error(url, f"{path} is {_kind(value)}, expected an object")
    return value


def _number(value: object, path: str, url: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _format_error(url, f"{path} is {_kind(value)}, expected a number")
    return float(value)


def _text(value: object, path: str, url: str) -> str:
    # Tolerant: a numeric id or group value is still usable as text.
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    _format_error(url, f"{path} is {_kind(value)}, expected a string")


# -- settings -------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class Credentials:
    """API and application keys, or an OAuth bearer token; never shown by ``repr``."""

    api_key: str | None = None
    app_key: str | None = None
    bearer_token: str | None = None

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={'None' if getattr(self, name) is None else '***'}"
            for name in ("api_key", "app_key", "bearer_token")
        )
        return f"Credentials({shown})"

    @property
    def complete(self) -> bool:
        """Both keys, or a token."""
        return bool(self.api_key and self.app_key) or bool(self.bearer_token)

    def secrets(self) -> tuple[str, ...]:
        """The values to keep out of every message."""
        return tuple(s for s in (self.api_key, self.app_key, self.bearer_token) if s)

    def headers(self) -> dict[str, str]:
        """Authentication headers: the keys when both are set, else the token if any."""
        if self.bearer_token and not (self.api_key and self.app_key):
            return {"Authorization": f"Bearer {self.bearer_token}"}
        headers = {}
        if self.api_key:
            headers["DD-API-KEY"] = self.api_key
        if self.app_key:
            headers["DD-APPLICATION-KEY"] = self.app_key
        return headers


@dataclass(frozen=True)
class ClientSettings:
    """Where and how to call the API. ``deadline`` bounds one request, retries included."""

    base_url: str
    site: str
    credentials: Credentials
    timeout: float = 30.0
    max_attempts: int = 6
    deadline: float = 300.0
    max_retry_wait: float = 60.0
    parallelism: int = 16

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", _check_base_url(self.base_url, "base_url"))
        for name, minimum, strict in (
            ("timeout", 0.0, True),
            ("deadline", 0.0, True),
            ("max_retry_wait", 0.0, False),
        ):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or (value <= minimum if strict else value < minimum)
            ):
                need = "a positive number" if strict else "0 or more"
                raise ConfigError(f"client setting {name} must be {need} of seconds, got {value!r}")
        for name in ("max_attempts", "parallelism"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"client setting {name} must be an integer of 1 or more, got {value!r}"
                )

    @property
    def aggregate_url(self) -> str:
        """The URL of the aggregate endpoint."""
        return self.base_url + AGGREGATE_PATH

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        require_credentials: bool = True,
        **overrides: Any,
    ) -> ClientSettings:
        """Settings from ``DD_SITE``, ``DD_API_KEY``, ``DD_APP_KEY`` (or ``DD_APPLICATION_KEY``),
        ``DD_BEARER_TOKEN`` and ``CASEREPORT_API_URL``; ``overrides`` win over the environment.

        Raises ``ConfigError`` for an unknown site, a malformed URL or, when
        ``require_credentials``, missing keys (naming the variables to set).
        """
        env = os.environ if env is None else env
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise TypeError(f"unknown client settings: {', '.join(sorted(unknown))}")

        def read(name: str) -> str | None:
            return (env.get(name) or "").strip() or None

        if "base_url" in overrides:
            base_url = _check_base_url(str(overrides["base_url"]), "base_url")
            site = str(overrides.get("site", base_url))
        elif api_url := read("CASEREPORT_API_URL"):
            base_url = _check_base_url(api_url, "CASEREPORT_API_URL")
            site = str(overrides.get("site", base_url))
        elif "site" in overrides:
            site = _check_site(str(overrides["site"]), "site")
            base_url = f"https://api.{site}"
        else:
            site = _check_site(read("DD_SITE"), "DD_SITE")
            base_url = f"https://api.{site}"

        app_name = "DD_APP_KEY" if read("DD_APP_KEY") else "DD_APPLICATION_KEY"
        credentials: Credentials = overrides.get("credentials") or Credentials(
            api_key=read("DD_API_KEY"), app_key=read(app_name), bearer_token=read("DD_BEARER_TOKEN")
        )
        if require_credentials and not credentials.complete:
            raise ConfigError(_missing_credentials(credentials, app_name))
        values = {**overrides, "base_url": base_url, "site": site, "credentials": credentials}
        return cls(**values)


def _check_site(raw: str | None, name: str) -> str:
    if raw is None:
        return DEFAULT_SITE
    site = raw.lower().rstrip("/")
    if site in SITES:
        return site
    hint = ""
    bare = re.sub(r"^(https?://)?(app\.|api\.)?", "", site)
    if bare in SITES:
        hint = f" (did you mean {bare!r}?)"
    raise ConfigError(f"unknown {name} {raw!r}{hint}: use one of {', '.join(SITES)}")


def _check_base_url(raw: str, name: str) -> str:
    url = raw.strip().rstrip("/")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError(
            f"{name} must be an http(s) URL such as http://127.0.0.1:8710, got {raw!r}"
        )
    return url


def _missing_credentials(credentials: Credentials, app_name: str) -> str:
    if credentials.api_key and not credentials.app_key:
        return (
            "incomplete Datadog credentials: DD_API_KEY is set but DD_APP_KEY is not; "
            "set DD_APP_KEY (or DD_APPLICATION_KEY), or DD_BEARER_TOKEN, or use --emulator"
        )
    if credentials.app_key and not credentials.api_key:
        return (
            f"incomplete Datadog credentials: {app_name} is set but DD_API_KEY is not; "
            "set DD_API_KEY, or DD_BEARER_TOKEN, or use --emulator"
        )
    return _NO_CREDENTIALS


# -- error bodies and messages --------------------------------------------------------------


def describe_error_body(content: bytes) -> str:
    """One line summing up an error body: ``{"errors": [...]}`` of strings or JSON:API
    objects, another JSON shape, or text (HTML tags stripped). Empty when there is none."""
    text = content.decode("utf-8", "replace").strip()
    if not text:
        return ""
    try:
        payload = json.loads(text)
    except ValueError:
        if text.startswith("<"):
            text = _HTML_TAG.sub(" ", text)
        return _one_line(text)
    parts: list[str] = []
    errors = payload.get("errors") if isinstance(payload, dict) else payload
    if isinstance(errors, (list, tuple)):
        parts = [_describe_error_item(item) for item in errors]
    elif errors is not None:
        parts = [_describe_error_item(errors)]
    if isinstance(payload, dict) and not any(parts):
        parts = [
            payload[k]
            for k in ("error", "message", "detail", "title")
            if isinstance(payload.get(k), str)
        ][:1]
    unique = list(dict.fromkeys(p for p in parts if p))
    return _one_line("; ".join(unique) if unique else text)


def _describe_error_item(item: object) -> str:
    if isinstance(item, str):
        return item
    if not isinstance(item, dict):
        return json.dumps(item)
    title, detail, code = (item.get(k) for k in ("title", "detail", "code"))
    words = [str(w) for w in (title, detail) if isinstance(w, (str, int)) and str(w)]
    if len(words) == 2 and words[0] == words[1]:
        words.pop()
    text = ": ".join(words)
    if isinstance(code, (str, int)) and str(code) and not detail:
        text = f"{text} ({code})" if text else str(code)
    source = item.get("source")
    if isinstance(source, dict):
        where = source.get("pointer") or source.get("parameter")
        if isinstance(where, str) and where:
            text = f"{text} (at {where})"
    return text or json.dumps(item, sort_keys=True)


def _one_line(text: str) -> str:
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


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
