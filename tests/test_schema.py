"""The report JSON Schema: committed copy up to date, in step with the loader."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from casereport.definitions import load
from casereport.definitions.reading import BETTER_CHOICES, ORDER_CHOICES
from casereport.definitions.schema import SCHEMA_PATH, report_schema, schema_json

ROOT = Path(__file__).resolve().parent.parent
BROKEN = Path(__file__).resolve().parent / "definitions" / "broken"


def test_committed_schema_is_up_to_date() -> None:
    committed = (ROOT / SCHEMA_PATH).read_text()
    assert committed == schema_json(), (
        "schema/report.schema.json is out of date: run "
        "`casereport schema > schema/report.schema.json`"
    )


def test_schema_is_draft_2020_12_and_closed() -> None:
    schema = report_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["title", "aggregations"]
    aggregation = schema["$defs"]["aggregation"]
    assert aggregation["additionalProperties"] is False
    assert aggregation["required"] == ["query_filter", "group_by", "limit"]


def test_schema_keys_match_the_loader() -> None:
    schema = report_schema()
    assert tuple(schema["properties"]) == load.REPORT_KEYS
    assert tuple(schema["$defs"]["aggregation"]["properties"]) == load.AGGREGATION_KEYS
    limit = schema["$defs"]["aggregation"]["properties"]["limit"]
    assert (limit["minimum"], limit["maximum"]) == (1, load.MAX_LIMIT)
    assert schema["properties"]["formats"]["items"]["enum"] == list(load.FORMATS)
    pattern = schema["properties"]["aggregations"]["propertyNames"]["pattern"]
    assert pattern == "^[a-z0-9][a-z0-9_]*$"
    for properties in (schema["properties"], schema["$defs"]["aggregation"]["properties"]):
        assert properties["better"]["enum"] == list(BETTER_CHOICES)
        assert properties["order"]["oneOf"][0]["enum"] == list(ORDER_CHOICES)


def test_schema_and_loader_agree_on_reading_values() -> None:
    """Every value the loader takes, the schema takes, and the other way round."""
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(report_schema())
    values = {
        "compare": ["previous", "1d", "7d", "12h", "4w", "9999d", "0d", "7days", "1h30m", "30m"],
        "order": ["natural", "count", "label", "cout", ["P1"], ["P1", "P1"], [], [""]],
        "labels": [{}, {"P1": "Urgent"}, {"P1": ""}, {"": "x"}],
        "better": ["lower", "higher", "down"],
        "trend": [["OPEN"], ["OPEN", "OPEN"], [], "OPEN"],
    }
    for key, cases in values.items():
        for value in cases:
            text = json.dumps({"title": "T", key: value, "aggregations": AGGREGATION})
            _, diagnostics = load.load_report(Path("reports/x.yaml"), text)
            loads = not diagnostics
            schema_ok = not list(validator.iter_errors(json.loads(text)))
            assert loads == schema_ok, (key, value)


AGGREGATION = {"a": {"query_filter": "status:open", "group_by": ["status"], "limit": 3}}


def test_schema_json_is_deterministic_text() -> None:
    text = schema_json()
    assert text.endswith("}\n")
    assert json.loads(text) == report_schema()


# With the jsonschema package (not a dependency yet), check the schema against real files.

SHAPE_ERRORS = [
    "aggregation-not-mapping",
    "aggregations-list",
    "bad-aggregation-id",
    "bad-format",
    "bad-refresh",
    "bad-template",
    "bad-var-name",
    "empty-aggregations",
    "for-each-empty",
    "for-each-nested",
    "group-by-duplicate",
    "group-by-empty",
    "group-by-string",
    "limit-float",
    "limit-too-big",
    "limit-zero",
    "missing-aggregations",
    "missing-limit-and-group-by",
    "missing-title",
    "not-a-mapping",
    "reading-bad-better",
    "reading-bad-compare",
    "reading-bad-order",
    "reading-better-other",
    "reading-compare-near-miss",
    "reading-compare-number",
    "reading-key-typo",
    "reading-labels-list",
    "reading-labels-values",
    "reading-order-empty",
    "reading-order-list",
    "reading-trend-duplicate",
    "reading-trend-string",
    "unknown-aggregation-key",
    "unknown-key",
    "var-value-list",
    "wrong-type-limit",
    "wrong-type-title",
]


def yaml_data(path: Path) -> Any:
    return YAML(typ="safe", pure=True).load(path.read_text())


def test_example_reports_match_the_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(report_schema())
    jsonschema.Draft202012Validator.check_schema(report_schema())
    for file in sorted((ROOT / "reports").glob("*.yaml")):
        assert list(validator.iter_errors(yaml_data(file))) == [], file.name


@pytest.mark.parametrize("name", SHAPE_ERRORS)
def test_shape_errors_break_the_schema_too(name: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(report_schema())
    assert list(validator.iter_errors(yaml_data(BROKEN / f"{name}.yaml"))), name


def test_init_writes_the_same_schema(tmp_path: Path) -> None:
    from casereport.definitions.scaffold import init_workspace

    init_workspace(tmp_path / "ws")
    assert (tmp_path / "ws" / SCHEMA_PATH).read_text() == schema_json()
    shutil.rmtree(tmp_path / "ws")
