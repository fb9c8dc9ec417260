"""The JSON Schema (draft 2020-12) of a report's data file, ``site/<report>.json``.

Built from the names ``render.data`` writes, so the two cannot drift apart silently;
``casereport schema --data-file`` prints it, and a copy is committed at
``schema/data-file.schema.json`` (a test fails when that copy is out of date, and the
data files the tests write are validated against it). The format is described in
``docs/data-files.md``.
"""

from __future__ import annotations

import json
from typing import Any

from casereport.definitions.reading import COMPARE_PREVIOUS, DURATION_RE
from casereport.render.data import DATA_FORMAT_VERSION
from casereport.site import REPORT_NAME_RE

__all__ = ["DATA_SCHEMA_PATH", "data_file_schema", "data_schema_json"]

DATA_SCHEMA_PATH = "schema/data-file.schema.json"

_TIMESTAMP = {"type": "string", "description": "UTC, ISO 8601 (2026-11-26T07:00:00Z)."}
_COUNT = {"type": "number", "minimum": 0}


def closed_object(description: str, properties: dict[str, Any]) -> dict[str, Any]:
    """An object with exactly these keys."""
    return {
        "type": "object",
        "description": description,
        "required": list(properties),
        "additionalProperties": False,
        "properties": properties,
    }


def data_file_schema() -> dict[str, Any]:
    """The schema as a JSON-able dict."""
    group = closed_object(
        "One group of the result, in the aggregation's `order:`.",
        {
            "group": {
                "type": "string",
                "description": "The group's raw value as the API names it (several fields: "
                "their values joined by ' / '; '' when the API gave none).",
            },
            "label": {"type": "string", "description": "What the pages show for the group."},
            "count": {**_COUNT, "description": "Cases in the group."},
            "compared_count": {
                "type": ["number", "null"],
                "minimum": 0,
                "description": "Cases in the group in the compared run: 0 when that run had "
                "none, null when unknown (nothing compared, or that run may have left the "
                "group out at its limit).",
            },
        },
    )
    compared = closed_object(
        "The run this one is compared with (`compare:`).",
        {"fetched_at": _TIMESTAMP, "total": {**_COUNT, "description": "Its total."}},
    )
    aggregation = closed_object(
        "One aggregation, as defined and as last fetched (nulls and no groups: not fetched).",
        {
            "address": {"type": "string", "description": "e.g. report.by_status"},
            "title": {"type": "string"},
            "query_filter": {"type": "string"},
            "group_by": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "limit": {"type": "integer", "minimum": 1},
            "compare": {
                "type": "string",
                "pattern": f"^(?:{COMPARE_PREVIOUS}|{DURATION_RE.pattern})$",
                "description": "The `compare:` setting: previous, or a duration (7d).",
            },
            "fetched_at": {**_TIMESTAMP, "type": ["string", "null"]},
            "total": {"type": ["number", "null"], "minimum": 0},
            "compared_with": {"oneOf": [{"type": "null"}, compared]},
            "groups": {"type": "array", "items": group},
        },
    )
    source = closed_object(
        "Where the numbers came from.",
        {
            "kind": {"type": "string", "description": "datadog or emulator."},
            "site": {"type": "string", "description": "A Datadog site, an API URL or emulator."},
            "detail": {"type": "string"},
        },
    )
    root = closed_object(
        "site/<report>.json: a report's numbers as its pages show them (docs/data-files.md). "
        "This schema holds exactly what this casereport writes; a later one may add keys "
        "within format_version 1 (and to this schema): readers should ignore keys they do "
        "not know.",
        {
            "format_version": {"const": DATA_FORMAT_VERSION},
            "report": {"type": "string", "pattern": f"^{REPORT_NAME_RE.pattern[:-2]}$"},
            "title": {"type": "string"},
            "source": {"oneOf": [{"type": "null"}, source]},
            "aggregations": {"type": "array", "items": aggregation},
        },
    )
    check = closed_object(
        "One evaluated check (docs/checks.md): each aggregation's, per for_each key, then "
        "the report's.",
        {
            "address": {
                "type": "string",
                "description": "The aggregation checked, or the report's name for a "
                "report-level check.",
            },
            "name": {"type": "string"},
            "severity": {"enum": ["error", "warn"]},
            "assert": {"type": "string", "description": "The CEL expression, as written."},
            "message": {"type": "string"},
            "passed": {"type": "boolean"},
            "values": {
                "type": "object",
                "description": 'What it read, by path: {"total": 52, "groups[\\"P1\\"]": 0}.',
                "additionalProperties": {"type": ["number", "string", "boolean", "null"]},
            },
            "error": {
                "type": ["string", "null"],
                "description": "Why it could not be evaluated (it then fails), else null.",
            },
        },
    )
    # Only in the files of reports with checks: the others stay as they were.
    root["properties"]["checks"] = {"type": "array", "items": check}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "casereport data file",
        **root,
    }


def data_schema_json() -> str:
    """The schema as the text of ``schema/data-file.schema.json``."""
    return json.dumps(data_file_schema(), indent=2, ensure_ascii=False) + "\n"
