"""The JSON Schema (draft 2020-12) of one line of ``apply --json`` (and ``render --json``).

Written beside the events (``engine.events``), so the two are read together and a test
catches any drift (every line the tests' runs print is validated against it);
``casereport schema --apply-json`` prints it, and a copy is committed at
``schema/apply-json.schema.json`` (a test fails when that copy is out of date). The
stream is described in ``docs/apply-json.md``.
"""

from __future__ import annotations

import json
from typing import Any

from casereport.engine.events import EVENTS_FORMAT_VERSION, TYPES
from casereport.render.data_schema import closed_object

__all__ = ["EVENTS_SCHEMA_PATH", "events_schema", "events_schema_json"]

EVENTS_SCHEMA_PATH = "schema/apply-json.schema.json"

_STRING = {"type": "string"}
_COUNT = {"type": "integer", "minimum": 0}
_STAGE = {"enum": ["fetch", "render"]}
_NULLABLE_STRING = {"type": ["string", "null"]}
_REPORT_CHANGE = {
    "type": "object",
    "required": ["report", "action", "reasons"],
    "additionalProperties": False,
    "properties": {
        "report": {"type": "string", "description": "A report's name, or index (the site index)."},
        "action": {"enum": ["render", "delete"]},
        "reasons": {"type": "array", "items": _STRING},
    },
}
_CHANGE = {
    "type": "object",
    "required": ["address", "report", "action", "reason"],
    "additionalProperties": False,
    "properties": {
        "address": _STRING,
        "report": _STRING,
        "action": {"enum": ["create", "update", "refresh", "replace", "delete", "no-op"]},
        "reason": _STRING,
    },
}

# Each event's own fields (besides type, timestamp and message), in the order written.
_FIELDS: dict[str, tuple[str, dict[str, Any]]] = {
    "version": (
        "The first line: the stream's format and the tool that writes it.",
        {
            "format_version": {"const": EVENTS_FORMAT_VERSION},
            "tool_version": _STRING,
            "command": {"enum": ["apply", "render"]},
        },
    ),
    "planned": (
        "The plan about to be applied (message: its summary line), or found to have nothing "
        "to do: changes lists every aggregation that is not a no-op (or moves), reports "
        "every report (and the index) to render or delete.",
        {
            "has_changes": {"type": "boolean"},
            "source": {
                "type": "object",
                "required": ["kind", "site", "detail"],
                "additionalProperties": False,
                "properties": {"kind": _STRING, "site": _STRING, "detail": _STRING},
            },
            "counts": {
                "type": "object",
                "description": "As in `plan --json`.",
                "additionalProperties": _COUNT,
            },
            "changes": {"type": "array", "items": _CHANGE},
            "reports": {"type": "array", "items": _REPORT_CHANGE},
        },
    ),
    "started": (
        "A stage begins: total is the number of aggregations to fetch or reports to render.",
        {"stage": _STAGE, "total": _COUNT},
    ),
    "fetched": (
        "One aggregation's new result arrived.",
        {
            "address": _STRING,
            "report": _STRING,
            "total": {"type": "number", "minimum": 0},
            "groups": {**_COUNT, "description": "How many groups the answer holds."},
            "duration": {
                "type": "number",
                "minimum": 0,
                "description": "Seconds the request took, retries and waits included.",
            },
        },
    ),
    "failed": (
        "An aggregation was not fetched, or a report not rendered (message: the error). "
        "address and report are null for a failure of the whole stage (the API refused the "
        "credentials) or of the site index.",
        {"stage": _STAGE, "address": _NULLABLE_STRING, "report": _NULLABLE_STRING},
    ),
    "rendered": (
        "A report's pages were rendered (report null: the site index's); files are all its "
        "files in the site, written or already up to date.",
        {"report": _NULLABLE_STRING, "files": {"type": "array", "items": _STRING}},
    ),
    "check": (
        "One evaluated check of a report or an aggregation (message: the check's own).",
        {
            "report": _STRING,
            "address": _STRING,
            "name": _STRING,
            "severity": {"enum": ["error", "warn"]},
            "passed": {"type": "boolean"},
        },
    ),
    "notice": (
        "A notice or warning that the human output prints on stderr.",
        {"level": {"enum": ["info", "warning"]}},
    ),
    "summary": (
        "The last line: what the run did and its exit code; error is the message that "
        "stopped it early (also printed on stderr), or null.",
        {
            "exit_code": _COUNT,
            "fetched": _COUNT,
            "api_calls": _COUNT,
            "rendered": _COUNT,
            "deleted": _COUNT,
            "moved": _COUNT,
            "failed": _COUNT,
            "failures": {"type": "array", "items": _STRING},
            "interrupted": {"type": "boolean"},
            "error": _NULLABLE_STRING,
        },
    ),
}


def _event_schema(name: str) -> dict[str, Any]:
    description, fields = _FIELDS[name]
    properties = {
        "type": {"const": name},
        "timestamp": {
            "type": "string",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$",
            "description": "When the event happened: RFC 3339, UTC.",
        },
        "message": {"type": "string", "description": "The event in words, for a person."},
        **fields,
    }
    return closed_object(description, properties)


def events_schema() -> dict[str, Any]:
    """The schema of one line of the stream, as a JSON-able dict."""
    names = list(TYPES.values())
    assert set(names) == set(_FIELDS), "every event type has a schema"
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "casereport apply --json event",
        "description": (
            "One line of `casereport apply --json` or `render --json` (docs/apply-json.md). "
            "This schema holds exactly what this casereport writes; a later one may add "
            f"event types and keys within format_version {EVENTS_FORMAT_VERSION} (and to "
            "this schema): readers should ignore those they do not know."
        ),
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"enum": names}},
        "oneOf": [{"$ref": f"#/$defs/{name}"} for name in names],
        "$defs": {name: _event_schema(name) for name in names},
    }


def events_schema_json() -> str:
    """The schema as the text of ``schema/apply-json.schema.json``."""
    return json.dumps(events_schema(), indent=2, ensure_ascii=False) + "\n"
