"""A damaged or hand-edited state is refused at load, in one line naming the file and the
address, and a state without its optional fields loads (tests/test_state.py has the rest)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from casereport.state.model import Source, parse_state
from test_state import AGG, VALID, assert_refused, variant

SUPPORT = "aggregations['support.by_status'] is malformed: "
BILLING = "aggregations['support.by_service[\"billing\"]'] is malformed: "
GROUPS = "result.groups is not a list of {group, value: [numbers]}"
HISTORY = 'history is not {fetched_at: "...", total: "...", groups: {name: "..."}}'
FORGOTTEN = "malformed: site.forgotten is not an object of report -> file -> hash"
STAMPS = "2026-11-24T19:00:00Z 2026-11-25T19:00:00Z"

REFUSED = [
    (variant(f"{AGG}/result/groups", [{"value": [3]}]), SUPPORT + GROUPS),
    (variant(f"{AGG}/result/groups", [{"group": "P1"}]), SUPPORT + GROUPS),
    (variant(f"{AGG}/result/groups", [{"group": "P1", "value": 3}]), SUPPORT + GROUPS),
    (variant(f"{AGG}/result/groups", ["P1"]), SUPPORT + GROUPS),
    (variant(f"{AGG}/result/groups", {"P1": [3]}), SUPPORT + GROUPS),
    (variant(f"{AGG}/result/groups", [{"group": "P1", "value": [True]}]), SUPPORT + GROUPS),
    (variant(f"{AGG}/result/total", True), SUPPORT + "result.total is not a number"),
    (variant(f"{AGG}/result/total", None), SUPPORT + "result.total is not a number"),
    # History columns of different lengths.
    (
        variant(f"{AGG}/history", {"fetched_at": STAMPS, "total": "3", "groups": {}}),
        SUPPORT + HISTORY,
    ),
    (
        variant(f"{AGG}/history", {"fetched_at": STAMPS, "total": "3 4", "groups": {"P1": "1"}}),
        SUPPORT + HISTORY,
    ),
    (
        variant(
            f"{AGG}/history", {"fetched_at": STAMPS, "total": "3 4", "groups": {"P1": "1 2 3"}}
        ),
        SUPPORT + HISTORY,
    ),
    (
        variant(f"{AGG}/history", {"fetched_at": "", "total": "", "groups": {"P1": ""}}),
        SUPPORT + HISTORY,
    ),
    # Totals that are not numbers.
    (
        variant(f"{AGG}/history", {"fetched_at": STAMPS, "total": "3 x", "groups": {}}),
        SUPPORT + HISTORY,
    ),
    (
        variant(f"{AGG}/history", {"fetched_at": STAMPS, "total": "3 true", "groups": {}}),
        SUPPORT + HISTORY,
    ),
    # Strings that are not strings.
    (variant(f"{AGG}/report", 5), SUPPORT + "report is not a string"),
    (variant(f"{AGG}/report", None), SUPPORT + "report is not a string"),
    (variant(f"{AGG}/title", ["Backlog"]), SUPPORT + "title is not a string"),
    (
        variant("reports/support/outputs", {"support.md": 1}),
        "reports['support'] is malformed: outputs is not an object of file -> hash",
    ),
    (
        variant("reports/support/outputs", ["support.md"]),
        "reports['support'] is malformed: outputs is not an object of file -> hash",
    ),
    (
        variant("reports/support/template_hash", 7),
        "reports['support'] is malformed: template_hash is not a string",
    ),
    (
        variant('aggregations/support.by_service["billing"]/query_changed_at', "soon"),
        BILLING + "query_changed_at 'soon' is not a timestamp",
    ),
    (
        "[" * 100_000 + "]" * 100_000,
        "not valid JSON (nested too deeply)",
    ),
    # Pages ``state rm`` forgot: report -> file -> hash, each file a page of its report.
    (variant("site/forgotten", ["old.html"]), FORGOTTEN),
    (variant("site/forgotten", {"old": ["old.html"]}), FORGOTTEN),
    (variant("site/forgotten", {"old": {"old.html": 7}}), FORGOTTEN),
    (
        variant("site/forgotten", {"old": {"../outside/victim.html": "0" * 64}}),
        "reports['old'].outputs: '../outside/victim.html' is not a page of report old"
        " (old + one of .csv, .html, .json, .md, .pdf)",
    ),
    (
        variant("site/forgotten", {"../old": {"old.html": "0" * 64}}),
        "reports['../old']: '../old' is not a valid report name",
    ),
]


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / ".casereport" / "state.json"


@pytest.mark.parametrize(("text", "problem"), REFUSED)
def test_a_damaged_state_is_refused_in_one_line_naming_the_file_and_address(
    state_path: Path, text: str, problem: str
) -> None:
    assert_refused(state_path, text, problem)


def raw_valid() -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(json.dumps(VALID))
    return raw


def test_a_site_without_outputs_loads_as_none_recorded() -> None:
    raw = raw_valid()
    raw["site"] = {}

    state = parse_state(Path("state.json"), json.dumps(raw))

    assert state.site_outputs == {}
    assert state.forgotten_pages == {}


def test_an_entry_without_history_title_or_query_change_loads() -> None:
    raw = raw_valid()
    entry = raw["aggregations"]["support.by_status"]
    for key in ("history", "title", "query_changed_at"):
        entry.pop(key, None)

    loaded = parse_state(Path("state.json"), json.dumps(raw)).aggregations["support.by_status"]

    assert (list(loaded.history), loaded.title, loaded.query_changed_at) == ([], "", None)


def test_a_source_without_detail_loads_with_none() -> None:
    raw = raw_valid()
    del raw["source"]["detail"]

    state = parse_state(Path("state.json"), json.dumps(raw))

    assert state.source == Source("emulator", "emulator")
    assert state.source.describe() == "local emulator"
