"""What the client sends and receives: the aggregate request, its result, error bodies.

:class:`AggregateRequest` checks itself and builds the JSON body Datadog expects;
:func:`decode_json` reads a body strictly (no ``NaN`` or ``Infinity``, no number out of a
double's range, no nesting deep enough to exhaust the stack);
:meth:`AggregateResult.from_response` parses a 200 body, naming the field path of anything
missing or mistyped, and keeps at most the request's ``limit`` groups;
:func:`describe_error_body` sums up an error body in one line; and
:func:`redact` keeps keys and tokens out of any text that came from the network. Apart from
the client because none of it does I/O: these are pure functions of a body, testable
without a transport.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import quote

from casereport.errors import ConfigError, ResponseFormatError

__all__ = [
    "AggregateGroup",
    "AggregateRequest",
    "AggregateResult",
    "decode_json",
    "describe_error_body",
    "redact",
]

_log = logging.getLogger("casereport.api.messages")

MAX_AGGREGATE_LIMIT = 1000
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


# -- decoding -------------------------------------------------------------------------------


def _refuse_constant(name: str) -> object:
    raise ValueError(f"invalid number {name} (JSON has no NaN or Infinity)")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"invalid number {text[:40]} (out of a double's range)")
    return number


def decode_json(content: bytes | bytearray | str) -> object:
    """Decode a JSON body strictly; raise ``ValueError`` with a short reason otherwise.

    Python's ``json`` takes ``NaN``, ``Infinity`` and ``1e999`` (as infinity), which no
    count can be, and recurses once per nesting level, so a body of 100,000 ``[`` raises
    ``RecursionError``: each is a ``ValueError`` here, a problem of that one response.
    """
    try:
        return json.loads(content, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError("nested too deeply to be an API response") from None


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
    def from_response(cls, payload: object, url: str, limit: int | None = None) -> AggregateResult:
        """Parse a decoded 200 body, ignoring unknown fields, keeping at most ``limit`` groups.

        Raises ``ResponseFormatError`` naming the field path when a required field is
        missing or has the wrong type. Groups past ``limit`` (a server sending more than
        asked) are dropped unread, and a debug log line says so.
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
        if limit is not None and len(raw_groups) > limit:
            _log.debug(
                "%s sent %d groups for a limit of %d: the last %d dropped",
                url,
                len(raw_groups),
                limit,
                len(raw_groups) - limit,
            )
            raw_groups = raw_groups[:limit]
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
    try:
        number = float(value)
    except OverflowError:  # an integer beyond a double's range
        number = math.inf
    if not math.isfinite(number):
        _format_error(url, f"{path} is an invalid number (not finite)")
    return number


def _text(value: object, path: str, url: str) -> str:
    # Tolerant: a numeric id or group value is still usable as text.
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    _format_error(url, f"{path} is {_kind(value)}, expected a string")


# -- error bodies and messages --------------------------------------------------------------


def describe_error_body(content: bytes | bytearray) -> str:
    """One line summing up an error body: ``{"errors": [...]}`` of strings or JSON:API
    objects, another JSON shape, or text (HTML tags stripped). Empty when there is none."""
    text = content.decode("utf-8", "replace").strip()
    if not text:
        return ""
    try:
        payload = decode_json(text)
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
