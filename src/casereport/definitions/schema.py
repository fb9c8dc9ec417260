"""The JSON Schema (draft 2020-12) of a report file, for editors and other tools.

Built from the same names, patterns and limits as ``casereport.definitions.load`` so the two cannot
drift apart silently; ``casereport schema`` prints it, and a copy is committed at
``schema/report.schema.json`` (a test fails when that copy is out of date). Report files
point editors at it with a first line such as
``# yaml-language-server: $schema=../schema/report.schema.json``.

The schema checks shape and types; ``casereport validate`` checks everything else too
(query syntax, variables, for_each keys, report names, duplicate keys).
"""

from __future__ import annotations

import json
import re
from typing import Any

from casereport.definitions.checks import CHECK_SEVERITIES
from casereport.definitions.fields import KNOWN_FIELDS
from casereport.definitions.load import (
    AGGREGATION_ID_RE,
    AGGREGATION_KEYS,
    FORMATS,
    MAX_LIMIT,
    REPORT_KEYS,
    TEMPLATE_NAME_RE,
)
from casereport.definitions.moved import LOCAL_RE, MOVED_FROM_RE
from casereport.definitions.query import MAX_QUERY_LENGTH
from casereport.definitions.reading import (
    BETTER_CHOICES,
    COMPARE_PREVIOUS,
    DURATION_RE,
    ORDER_CHOICES,
)
from casereport.definitions.reading_keys import READING_KEYS
from casereport.settings import VAR_NAME_RE
from casereport.settings_notify import TARGET_NAME_RE

__all__ = ["SCHEMA_COMMENT", "SCHEMA_PATH", "report_schema", "schema_json"]

SCHEMA_PATH = "schema/report.schema.json"
SCHEMA_COMMENT = "# yaml-language-server: $schema=../schema/report.schema.json"

_SCALAR = {"type": ["string", "number", "boolean"]}


def _pattern(regex: re.Pattern[str]) -> str:
    """A Python ``...\\Z`` pattern as an anchored ECMA-262 one."""
    return "^" + regex.pattern.removesuffix(r"\Z") + "$"


def _group_values(what: str) -> dict[str, Any]:
    return {
        "type": "array",
        "minItems": 1,
        "uniqueItems": True,
        "items": {"type": "string", "minLength": 1},
        "description": what,
    }


def _checks_property(where: str) -> dict[str, Any]:
    """``checks:`` (``casereport.definitions.checks``), at report level or in an aggregation."""
    return {
        "type": "array",
        "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "assert"],
            "properties": {
                "name": {"type": "string", "minLength": 1, "description": "The check's name."},
                "assert": {
                    "type": "string",
                    "minLength": 1,
                    "description": "A CEL expression that is true when all is well.",
                },
                "severity": {
                    "enum": list(CHECK_SEVERITIES),
                    "description": "error (default: fails `casereport check`) or warn.",
                },
                "message": {"type": "string", "description": "Shown when the check fails."},
            },
        },
        "description": f"Assertions evaluated from state (docs/checks.md). {where}",
    }


def _reading_properties(where: str) -> dict[str, Any]:
    """The reading keys (``casereport.definitions.reading_keys``), at report level or in
    an aggregation (``where`` says which, in each description)."""
    properties = {
        "compare": {
            "type": "string",
            "pattern": f"^({COMPARE_PREVIOUS}|{DURATION_RE.pattern})$",
            "description": (
                "What changes are measured against: previous (the run before, default) or "
                "a whole number of hours, days or weeks (12h, 7d, 4w), the run nearest to "
                f"that long before. {where}"
            ),
            "examples": [COMPARE_PREVIOUS, "1d", "7d", "28d"],
        },
        "order": {
            "oneOf": [
                {"enum": list(ORDER_CHOICES)},
                _group_values("Group values in this order, then the rest by count."),
            ],
            "description": (
                "The order of groups in tables, charts, matrices and trends: natural "
                "(default: priority P1 to P5, status open to closed, other fields by count), "
                f"count, label, or a list of group values. {where}"
            ),
        },
        "labels": {
            "type": "object",
            "propertyNames": {"minLength": 1},
            "additionalProperties": {"type": "string", "minLength": 1},
            "description": (
                "Display labels by raw group value, e.g. {NOT_DEFINED: No priority}; data "
                "files and links keep the raw values. An aggregation's labels add to the "
                "report's."
            ),
        },
        "better": {
            "enum": list(BETTER_CHOICES),
            "description": f"Which direction of change is good: lower or higher. {where}",
        },
        "trend": _group_values(
            "The group values the trend draws (default: the first groups by order). " + where
        ),
    }
    assert tuple(properties) == READING_KEYS
    return properties


def report_schema() -> dict[str, Any]:
    """The schema as a JSON-ready dict."""
    report_properties: dict[str, Any] = {
        "title": {
            "type": "string",
            "minLength": 1,
            "description": "The report's title. ${var.NAME} is substituted.",
        },
        "description": {
            "type": "string",
            "description": "Shown under the title; Markdown allowed. ${var.NAME} is substituted.",
        },
        "owner": {
            "type": "string",
            "minLength": 1,
            "description": 'Who owns the report, e.g. "@support".',
        },
        "refresh": {
            "type": "string",
            "pattern": "^(always|([0-9]+[smhdw])+)$",
            "description": (
                "Results older than this are fetched again by apply: a number and a unit "
                "(s, m, h, d, w), e.g. 30m, 6h, 1d, or always. Default: the workspace "
                "setting (1h)."
            ),
            "examples": ["30m", "1h", "6h", "1d", "always"],
        },
        "formats": {
            "type": "array",
            "items": {"enum": list(FORMATS)},
            "minItems": 1,
            "uniqueItems": True,
            "description": "Output formats. Default: [markdown, html].",
        },
        "template": {
            "type": "string",
            "pattern": _pattern(TEMPLATE_NAME_RE),
            "description": (
                "Template name: templates/<template>.md.j2 and .html.j2. Default: report."
            ),
        },
        **_reading_properties("The default of every aggregation of the report."),
        "vars": {
            "type": "object",
            "propertyNames": {"pattern": _pattern(VAR_NAME_RE)},
            "additionalProperties": _SCALAR,
            "description": "Variables used as ${var.NAME}; --var NAME=VALUE overrides them.",
        },
        "aggregations": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": _pattern(AGGREGATION_ID_RE)},
            "additionalProperties": {"$ref": "#/$defs/aggregation"},
            "description": "The report's aggregations, by id (lowercase letters, digits, _).",
        },
        "moved": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["from"],
                "properties": {
                    "from": {
                        "type": "string",
                        "pattern": _pattern(MOVED_FROM_RE),
                        "description": (
                            'The old address: agg, agg["key"], old-report.agg, or (without '
                            '"to") the report\'s old name.'
                        ),
                    },
                    "to": {
                        "type": "string",
                        "pattern": _pattern(LOCAL_RE),
                        "description": 'The aggregation of this report now: agg or agg["key"].',
                    },
                },
            },
            "description": (
                "Renames that keep results and history (like Terraform's moved blocks): "
                "[{from: old_id, to: new_id}], or [{from: old-report-name}]."
            ),
        },
        "checks": _checks_property(
            'Checks over the report\'s aggregations: aggregations["id"].total, '
            'aggregations["id"].groups["P1"], aggregations["id"]["key"] for for_each.'
        ),
        "notify": {
            "type": "array",
            "items": {"type": "string", "pattern": _pattern(TARGET_NAME_RE)},
            "uniqueItems": True,
            "description": (
                "Delivery targets ([notify.NAME] in casereport.toml) this report's runs are "
                "sent to. Default: every target; [] for none."
            ),
        },
    }
    aggregation_properties: dict[str, Any] = {
        "title": {
            "type": "string",
            "minLength": 1,
            "description": (
                "Heading of the aggregation. ${var.NAME} and ${each.key} are substituted."
            ),
        },
        "query_filter": {
            "type": "string",
            "maxLength": MAX_QUERY_LENGTH,
            "description": (
                "Case Management search query, e.g. 'service:case-api status:open'. "
                "${var.NAME}, ${each.key} and ${each.value} are substituted. At most "
                f"{MAX_QUERY_LENGTH:,} characters."
            ),
        },
        "group_by": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {
                "anyOf": [
                    {"enum": list(KNOWN_FIELDS)},
                    {"type": "string", "minLength": 1},
                ]
            },
            "description": (
                "Case fields to group by, e.g. [status] or [status, priority]; any other "
                "name is read from the case attributes."
            ),
        },
        "limit": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_LIMIT,
            "description": f"How many groups at most (1 to {MAX_LIMIT}).",
        },
        "for_each": {
            "oneOf": [
                {"type": "array", "minItems": 1, "items": _SCALAR},
                {"type": "object", "minProperties": 1, "additionalProperties": _SCALAR},
            ],
            "description": (
                'One aggregation per item, addressed report.aggregation["key"]: a list '
                "(each.key == each.value) or a mapping key -> value."
            ),
        },
        **_reading_properties("Overrides the report's."),
        "checks": _checks_property(
            "Checks over this aggregation (each for_each key): total, groups, compared, "
            "change, change_ratio, limit."
        ),
    }
    assert tuple(report_properties) == REPORT_KEYS
    assert tuple(aggregation_properties) == AGGREGATION_KEYS
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "casereport report definition",
        "description": (
            "One report per file, reports/<name>.yaml; <name> must match "
            "^[a-z0-9][a-z0-9_-]{0,63}$. Check with `casereport validate`."
        ),
        "type": "object",
        "additionalProperties": False,
        "required": ["title", "aggregations"],
        "properties": report_properties,
        "$defs": {
            "aggregation": {
                "type": "object",
                "additionalProperties": False,
                "required": ["query_filter", "group_by", "limit"],
                "properties": aggregation_properties,
            }
        },
    }


def schema_json() -> str:
    """The schema as the text of ``schema/report.schema.json``."""
    return json.dumps(report_schema(), indent=2, ensure_ascii=False) + "\n"
