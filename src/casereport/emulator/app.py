"""The emulator's HTTP surface: a small ASGI app that answers like Datadog's Case Management API.

Routes:
    POST   /api/v2/cases/aggregate   aggregate cases (the endpoint casereport uses)
    GET    /api/v2/cases             search cases, paginated as documented
    GET    /api/v2/cases/count       counts per group-by field
    GET    /_emulator/stats          request counts by route and status (no auth)
    DELETE /_emulator/stats          reset those counts

Every API request goes through, in order: authentication (401 without keys, 403 with
keys other than the ones the emulator was started with), the rate limit (calendar-aligned
windows, ``X-RateLimit-*`` headers on every API response, 429 past the limit), injected
faults (latency, random 500/503), request validation (400 with a JSON:API error object
whose ``detail`` says what is wrong and ``source.pointer`` where; a query longer than
``MAX_QUERY_LENGTH`` is refused before it is parsed, so no request keeps the event loop
busy for long), then the handler.

Error bodies use both shapes Datadog uses, so clients are exercised on each: 401, 403
and 500 use the spec's ``{"errors": ["..."]}``; 400, 404, 405, 429 and 503 use JSON:API
error objects.

The app is plain ASGI (no framework): four routes do not need one, and it keeps the
per-request overhead low for the latency benchmarks.
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
import math
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from casereport.definitions import query as query_language
from casereport.emulator.store import SORT_FIELDS, CaseStore

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

AGGREGATE = "POST /api/v2/cases/aggregate"
SEARCH = "GET /api/v2/cases"
COUNT = "GET /api/v2/cases/count"
STATS = "GET /_emulator/stats"
RESET_STATS = "DELETE /_emulator/stats"
UNMATCHED = "unmatched"

_API_ROUTES = {AGGREGATE, SEARCH, COUNT}
_PATHS = {
    "/api/v2/cases/aggregate": {"POST"},
    "/api/v2/cases": {"GET"},
    "/api/v2/cases/count": {"GET"},
    "/_emulator/stats": {"GET", "DELETE"},
}
_MAX_LIMIT = 1000
_MAX_BODY = 1 << 20
# Above this size a store's aggregation runs in a worker thread so the event loop keeps
# answering (and injected latency stays concurrent) while numpy works.
_THREAD_THRESHOLD = 50_000
_GZIP_MIN_BYTES = 1024


class _HttpError(Exception):
    """Raised inside handlers to answer with an error status and body."""

    def __init__(
        self, status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        # Headers of every API response this one leaves out.
        self.without_headers: tuple[str, ...] = ()


def _jsonapi_error(status: int, title: str, detail: str, pointer: str | None = None) -> _HttpError:
    error: dict[str, Any] = {"status": str(status), "title": title, "detail": detail}
    if pointer is not None:
        error["source"] = {"pointer": pointer}
    return _HttpError(status, {"errors": [error]})


def _bad_request(detail: str, pointer: str | None = None) -> _HttpError:
    return _jsonapi_error(400, "Bad Request", detail, pointer)


@dataclass(frozen=True)
class EmulatorSettings:
    """How the app behaves: credentials it accepts, rate limit and injected faults."""

    api_key: str | None = None
    app_key: str | None = None
    bearer_token: str | None = None
    rate_limit: int = 100_000
    rate_period: int = 60
    latency_ms: float = 0.0
    error_rate: float = 0.0
    fault_seed: int = 0


class RateLimiter:
    """Counts requests per calendar-aligned window, as Datadog's rate limits do."""

    def __init__(self, limit: int, period: int, clock: Callable[[], float] = time.time) -> None:
        self.limit = limit
        self.period = period
        self._clock = clock
        self._window = -1
        self._used = 0

    def take(self) -> tuple[bool, dict[str, str]]:
        """Count one request; return whether it is allowed and the headers to send."""
        return self._count(1)

    def peek(self) -> dict[str, str]:
        """The headers for a response that does not count (refused before the limit)."""
        return self._count(0)[1]

    def _count(self, cost: int) -> tuple[bool, dict[str, str]]:
        now = self._clock()
        window = int(now // self.period)
        if window != self._window:
            self._window, self._used = window, 0
        self._used += cost
        allowed = self._used <= self.limit
        # Datadog sends whole seconds; round up so a client never wakes before the reset.
        reset = max(1, math.ceil((window + 1) * self.period - now))
        return allowed, {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-period": str(self.period),
            "x-ratelimit-remaining": str(max(0, self.limit - self._used)),
            "x-ratelimit-reset": str(reset),
            "x-ratelimit-name": "cases",
        }


class EmulatorApp:
    """ASGI application serving one ``CaseStore``."""

    def __init__(self, store: CaseStore, settings: EmulatorSettings | None = None) -> None:
        self.store = store
        self.settings = settings or EmulatorSettings()
        self.rate_limiter = RateLimiter(self.settings.rate_limit, self.settings.rate_period)
        self._faults = random.Random(self.settings.fault_seed)
        self._ids = itertools.count(1)
        self._run_tag = f"{random.getrandbits(32):08x}"
        self.stats: dict[str, Counter[str]] = {}

    # -- ASGI entry point -------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":  # pragma: no cover - websockets are never routed here
            return
        method: str = scope["method"]
        path: str = scope["path"].rstrip("/") or "/"
        route = UNMATCHED  # until the path is known, so stats keys stay bounded
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        extra_headers: dict[str, str] = {}
        try:
            route = self._route(method, path)
            if route in _API_ROUTES:
                self._authenticate(headers)
                allowed, extra_headers = self.rate_limiter.take()
                if not allowed:
                    raise _jsonapi_error(
                        429,
                        "Too Many Requests",
                        f"rate limit of {self.rate_limiter.limit} requests per "
                        f"{self.rate_limiter.period} s exceeded; retry after "
                        f"{extra_headers['x-ratelimit-reset']} s",
                    )
                await self._inject_faults()
            body = await self._read_body(receive) if method == "POST" else b""
            status, payload = await self._dispatch(route, scope, body)
            content_type = "application/vnd.api+json" if route == SEARCH else "application/json"
        except _HttpError as exc:
            status, payload = exc.status, exc.body
            extra_headers.update(exc.headers)
            content_type = "application/json"
            without = exc.without_headers
        else:
            without = ()
        if "x-ratelimit-limit" not in extra_headers and route not in (STATS, RESET_STATS):
            # Datadog sends the rate-limit headers on every API response, errors included.
            extra_headers = {**self.rate_limiter.peek(), **extra_headers}
        for name in without:
            extra_headers.pop(name, None)
        self._count(route, status)
        await self._respond(send, status, payload, content_type, extra_headers, headers)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- pipeline steps ---------------------------------------------------------------

    def _route(self, method: str, path: str) -> str:
        methods = _PATHS.get(path)
        if methods is None:
            raise _jsonapi_error(404, "Not Found", f"no such endpoint: {method} {path}")
        if method not in methods:
            exc = _jsonapi_error(
                405, "Method Not Allowed", f"{path} accepts {', '.join(sorted(methods))}"
            )
            exc.headers["allow"] = ", ".join(sorted(methods))
            raise exc
        return f"{method} {path}"

    def _authenticate(self, headers: Mapping[str, str]) -> None:
        """Accept a request whose bearer token or whose key pair is valid.

        Datadog's official client sends every credential it is configured with (both keys
        and ``Authorization: Bearer``), so either one being right lets the request in.
        Credentials that are all wrong are a 403; none, or half a key pair, a 401.
        """
        settings = self.settings
        api_key = headers.get("dd-api-key")
        app_key = headers.get("dd-application-key")
        authorization = headers.get("authorization", "")
        bearer = authorization[7:].strip() if authorization.lower().startswith("bearer ") else ""
        keys_configured = bool(settings.api_key or settings.app_key)
        if bearer and (
            bearer == settings.bearer_token
            # With nothing configured any credential is accepted; with only keys, no token.
            or (settings.bearer_token is None and not keys_configured)
        ):
            return
        if api_key and app_key:
            if (settings.api_key is None or api_key == settings.api_key) and (
                settings.app_key is None or app_key == settings.app_key
            ):
                return
            raise _HttpError(403, {"errors": ["Forbidden"]})
        if bearer:
            raise _HttpError(403, {"errors": ["Forbidden"]})
        raise _HttpError(401, {"errors": ["Unauthorized"]})

    async def _inject_faults(self) -> None:
        if self.settings.latency_ms > 0:
            await asyncio.sleep(self.settings.latency_ms / 1000)
        if self.settings.error_rate > 0 and self._faults.random() < self.settings.error_rate:
            if self._faults.random() < 0.5:
                fault = _HttpError(500, {"errors": ["Internal Server Error"]})
            else:
                fault = _jsonapi_error(
                    503, "Service Unavailable", "the service is temporarily unavailable (injected)"
                )
            # An outage, not throttling: no X-RateLimit-Reset, which Datadog's official
            # client would wait out (up to the whole period) before retrying a 5xx.
            fault.without_headers = ("x-ratelimit-reset",)
            raise fault

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > _MAX_BODY:
                raise _jsonapi_error(413, "Payload Too Large", "request body over 1 MiB")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _dispatch(self, route: str, scope: Scope, body: bytes) -> tuple[int, dict[str, Any]]:
        if route == AGGREGATE:
            return 200, await self._aggregate(body)
        if route == SEARCH:
            return 200, self._search(_query_params(scope))
        if route == COUNT:
            return 200, self._count_cases(_query_params(scope))
        if route == STATS:
            return 200, self.stats_snapshot()
        self.stats.clear()  # RESET_STATS
        return 200, {"reset": True}

    # -- handlers ---------------------------------------------------------------------

    async def _aggregate(self, body: bytes) -> dict[str, Any]:
        query_filter, groups, limit = _parse_aggregate_body(body)
        tree = _parse_query(query_filter, "/data/attributes/query_filter", "query_filter")
        if len(self.store) > _THREAD_THRESHOLD:
            result = await asyncio.to_thread(self.store.aggregate, tree, groups, limit)
        else:
            result = self.store.aggregate(tree, groups, limit)
        return self._document(
            "aggregate",
            "agg",
            {
                "total": float(result.total),
                "groups": [
                    {"group": group, "value": [float(count)]} for group, count in result.groups
                ],
            },
        )

    def _search(self, params: Mapping[str, str]) -> dict[str, Any]:
        size = _int_param(params, "page[size]", default=10, low=1, high=100)
        number = _int_param(params, "page[number]", default=1, low=1, high=None)
        sort_field = params.get("sort[field]", "created_at")
        if sort_field not in SORT_FIELDS:
            raise _bad_request(
                f"sort[field] must be one of {', '.join(SORT_FIELDS)}, got {sort_field!r}",
                None,
            )
        sort_asc = _bool_param(params, "sort[asc]", default=False)
        tree = _parse_query(params.get("filter", ""), None, "filter")
        page = self.store.search(
            tree, page_size=size, page_number=number, sort_field=sort_field, sort_asc=sort_asc
        )
        pages = max(1, math.ceil(page.total_cases / size))
        return {
            "data": page.cases,
            "included": page.included,
            "meta": {
                "page": {"current": number, "size": len(page.cases), "total": pages},
                "total_cases": page.total_cases,
            },
        }

    def _count_cases(self, params: Mapping[str, str]) -> dict[str, Any]:
        group_bys = [g.strip() for g in params.get("group_bys", "").split(",") if g.strip()]
        limit = (
            _int_param(params, "limit", default=0, low=1, high=_MAX_LIMIT)
            if "limit" in params
            else None
        )
        tree = _parse_query(params.get("query_filter", ""), None, "query_filter")
        counts = self.store.count(tree, group_bys, limit)
        return self._document(
            "count",
            "count",
            {
                "groups": [
                    {
                        "group": field_counts.field,
                        "group_values": [
                            {"value": value, "count": count} for value, count in field_counts.values
                        ],
                    }
                    for field_counts in counts
                ]
            },
        )

    def _document(self, kind: str, id_prefix: str, attributes: dict[str, Any]) -> dict[str, Any]:
        """A JSON:API document of one ``kind`` resource, with an id unique to this run."""
        return {
            "data": {
                "id": f"{id_prefix}-{self._run_tag}-{next(self._ids):06d}",
                "type": kind,
                "attributes": attributes,
            }
        }

    # -- bookkeeping and output ---------------------------------------------------------

    def _count(self, route: str, status: int) -> None:
        self.stats.setdefault(route, Counter())[str(status)] += 1

    def stats_snapshot(self) -> dict[str, Any]:
        """Request counts by route and status, as served at ``GET /_emulator/stats``."""
        requests = {
            route: dict(sorted(counter.items())) for route, counter in sorted(self.stats.items())
        }
        api_total = sum(
            sum(counter.values()) for route, counter in self.stats.items() if route in _API_ROUTES
        )
        return {"requests": requests, "total": api_total, "cases": len(self.store)}

    async def _respond(
        self,
        send: Send,
        status: int,
        payload: dict[str, Any],
        content_type: str,
        extra_headers: Mapping[str, str],
        request_headers: Mapping[str, str],
    ) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = [(b"content-type", content_type.encode())]
        if len(body) >= _GZIP_MIN_BYTES and "gzip" in request_headers.get("accept-encoding", ""):
            body = gzip.compress(body, compresslevel=5, mtime=0)
            headers.append((b"content-encoding", b"gzip"))
        headers.append((b"content-length", str(len(body)).encode()))
        headers.extend((k.encode(), v.encode()) for k, v in extra_headers.items())
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


# -- request parsing helpers -------------------------------------------------------------


def _query_params(scope: Scope) -> dict[str, str]:
    raw = scope.get("query_string", b"").decode("latin-1")
    return {key: values[-1] for key, values in parse_qs(raw, keep_blank_values=True).items()}


def _int_param(
    params: Mapping[str, str], name: str, *, default: int, low: int, high: int | None
) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _bad_request(f"{name} must be an integer, got {raw!r}") from None
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise _bad_request(f"{name} must be {bounds}, got {value}")
    return value


def _bool_param(params: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = params.get(name)
    if raw is None:
        return default
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise _bad_request(f"{name} must be true or false, got {raw!r}")


def _parse_query(text: str, pointer: str | None, name: str) -> query_language.Node:
    if len(text) > query_language.MAX_QUERY_LENGTH:  # (not echoed back: it may be huge)
        raise _bad_request(
            f"{name} is {len(text)} characters long, over the limit of "
            f"{query_language.MAX_QUERY_LENGTH}",
            pointer,
        )
    try:
        return query_language.parse(text)
    except query_language.QuerySyntaxError as exc:
        raise _bad_request(
            f"invalid {name} at column {exc.position + 1}: {exc.reason}: {text!r}", pointer
        ) from None


def _type_name(value: object) -> str:
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _field(container: Mapping[str, Any], key: str, kind: type | tuple[type, ...], path: str) -> Any:
    """Return ``container[key]`` checked against ``kind``, or raise a 400 naming ``path``."""
    pointer = "/" + path.replace(".", "/")
    if key not in container:
        raise _bad_request(f"missing required field '{path}'", pointer)
    value = container[key]
    expected = kind if isinstance(kind, tuple) else (kind,)
    # bool is an int in Python, never in JSON.
    if not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected):
        wanted = " or ".join(_type_name(k()) for k in expected)
        raise _bad_request(f"'{path}' must be {wanted}, got {_type_name(value)}", pointer)
    return value


def _parse_aggregate_body(body: bytes) -> tuple[str, list[str], int]:
    """Validate an aggregate request body; return (query_filter, groups, limit)."""
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _bad_request(f"malformed JSON body: {exc}") from None
    if not isinstance(document, dict):
        raise _bad_request(f"the body must be a JSON object, got {_type_name(document)}", "")
    data = _field(document, "data", dict, "data")
    kind = _field(data, "type", str, "data.type")
    if kind != "aggregate":
        raise _bad_request(f"'data.type' must be 'aggregate', got {kind!r}", "/data/type")
    attributes = _field(data, "attributes", dict, "data.attributes")
    query_filter = _field(attributes, "query_filter", str, "data.attributes.query_filter")
    group_by = _field(attributes, "group_by", dict, "data.attributes.group_by")
    groups = _field(group_by, "groups", list, "data.attributes.group_by.groups")
    limit = _field(group_by, "limit", int, "data.attributes.group_by.limit")
    if not groups:
        raise _bad_request(
            "'data.attributes.group_by.groups' must name at least one field",
            "/data/attributes/group_by/groups",
        )
    for index, group in enumerate(groups):
        if not isinstance(group, str) or not group.strip():
            raise _bad_request(
                f"'data.attributes.group_by.groups[{index}]' must be a non-empty string, "
                f"got {_type_name(group)}",
                f"/data/attributes/group_by/groups/{index}",
            )
    if not 1 <= limit <= _MAX_LIMIT:
        raise _bad_request(
            f"'data.attributes.group_by.limit' must be between 1 and {_MAX_LIMIT}, got {limit}",
            "/data/attributes/group_by/limit",
        )
    return query_filter, list(groups), limit
