"""Data files (``site/<report>.json`` and ``.csv``): what they hold, in which order, how the
CSV guards against formula injection, the published schema, and ``casereport output``.

The files are checked against the API's own answers in ``test_data_files_api.py``.
"""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from casereport.cli import cli
from casereport.definitions.expand import AggregationSpec, ReportSpec, fingerprint
from casereport.definitions.reading import DEFAULT_READING, Reading
from casereport.render.context import aggregation_context
from casereport.render.data import (
    CSV_COLUMNS,
    aggregation_data,
    csv_text,
    data_files,
    data_json,
    report_data,
)
from casereport.render.data_schema import DATA_SCHEMA_PATH, data_file_schema, data_schema_json
from casereport.settings import DEFAULT_REFRESH
from casereport.state.history import HISTORY_LIMIT, History, history_entry
from casereport.state.model import AggregationState, Source
from test_render_golden import PAGES, fixture_reports, fixture_state

ROOT = Path(__file__).resolve().parent.parent
EMULATOR = Source("emulator", "emulator", "test data")
VALIDATOR = jsonschema.Draft202012Validator(data_file_schema())


def spec(
    aggregation_id: str = "by_priority",
    *,
    groups: tuple[str, ...] = ("priority",),
    limit: int = 10,
    reading: Reading = DEFAULT_READING,
    title: str = "Cases by priority",
    query: str = "status:open",
) -> AggregationSpec:
    return AggregationSpec(
        address=f"r.{aggregation_id}",
        report="r",
        aggregation_id=aggregation_id,
        key=None,
        title=title,
        query_filter=query,
        groups=groups,
        limit=limit,
        fingerprint=fingerprint(query, groups, limit),
        reading=reading,
    )


def report(*aggregations: AggregationSpec, name: str = "r") -> ReportSpec:
    return ReportSpec(
        name=name,
        path=Path(f"reports/{name}.yaml"),
        title="Report title",
        description=None,
        owner=None,
        refresh=DEFAULT_REFRESH,
        formats=("html",),
        template="report",
        aggregations=aggregations,
        definition_hash="0" * 64,
    )


def result(groups: dict[str, float], total: float | None = None) -> dict[str, Any]:
    listed = [{"group": g, "value": [c]} for g, c in groups.items()]
    return {"id": "x", "total": sum(groups.values()) if total is None else total, "groups": listed}


def state(
    agg: AggregationSpec,
    groups: dict[str, float],
    *,
    fetched_at: str = "2026-12-07T06:00:00Z",
    earlier: list[tuple[str, dict[str, float]]] = (),  # type: ignore[assignment]
    query_changed_at: str | None = None,
) -> AggregationState:
    history = History()
    for stamp, counts in earlier:
        history = history.appended(history_entry(result(counts), stamp), HISTORY_LIMIT)
    return AggregationState(
        address=agg.address,
        report=agg.report,
        title=agg.title,
        request=agg.request(),
        fingerprint=agg.fingerprint,
        result=result(groups),
        fetched_at=fetched_at,
        history=history,
        query_changed_at=query_changed_at,
    )


def by_group(data: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {g["group"]: (g["count"], g["compared_count"]) for g in data["groups"]}


# -- content ------------------------------------------------------------------------


def test_an_aggregation_not_fetched_says_so() -> None:
    data = aggregation_data(spec(), None)
    assert data == {
        "address": "r.by_priority",
        "title": "Cases by priority",
        "query_filter": "status:open",
        "group_by": ["priority"],
        "limit": 10,
        "compare": "previous",
        "fetched_at": None,
        "total": None,
        "compared_with": None,
        "groups": [],
    }
    whole = report_data(report(spec()), {}, None)
    assert whole["source"] is None
    assert not list(VALIDATOR.iter_errors(whole))


def test_compared_with_the_previous_run_and_absent_groups() -> None:
    agg = spec(limit=10)
    entry = state(
        agg,
        {"P1": 3, "P2": 5, "P4": 1},
        earlier=[
            ("2026-12-05T06:00:00Z", {"P1": 9, "P3": 4}),
            ("2026-12-06T06:00:00Z", {"P1": 2, "P2": 7}),
        ],
    )
    data = aggregation_data(agg, entry)
    assert data["fetched_at"] == "2026-12-07T06:00:00Z"
    assert data["total"] == 9
    assert data["compared_with"] == {"fetched_at": "2026-12-06T06:00:00Z", "total": 9}
    # P4 was not in the previous run, which recorded fewer groups than its limit: none then.
    assert by_group(data) == {"P1": (3, 2), "P2": (5, 7), "P4": (1, 0)}


def test_a_group_absent_from_a_run_that_filled_its_limit_is_unknown() -> None:
    agg = spec(limit=2)
    entry = state(agg, {"P1": 3, "P3": 1}, earlier=[("2026-12-06T06:00:00Z", {"P1": 2, "P2": 7})])
    assert by_group(aggregation_data(agg, entry)) == {"P1": (3, 2), "P3": (1, None)}


def test_first_run_and_changed_query_compare_with_nothing() -> None:
    agg = spec()
    first = aggregation_data(agg, state(agg, {"P1": 3}))
    assert first["compared_with"] is None
    assert by_group(first) == {"P1": (3, None)}
    changed = state(
        agg,
        {"P1": 3},
        earlier=[("2026-12-06T06:00:00Z", {"P1": 2})],
        query_changed_at="2026-12-07T06:00:00Z",
    )
    data = aggregation_data(agg, changed)
    assert data["compared_with"] is None
    assert by_group(data) == {"P1": (3, None)}


def test_compare_a_duration_picks_the_run_nearest_that_long_before() -> None:
    agg = spec(reading=Reading(compare="7d"))
    earlier = [
        ("2026-11-29T06:00:00Z", {"P1": 1}),
        ("2026-11-30T09:00:00Z", {"P1": 4, "P2": 2}),  # 6 d 21 h before: the nearest
        ("2026-12-06T06:00:00Z", {"P1": 8}),
    ]
    data = aggregation_data(agg, state(agg, {"P1": 5, "P3": 1}, earlier=earlier))
    assert data["compare"] == "7d"
    assert data["compared_with"] == {"fetched_at": "2026-11-30T09:00:00Z", "total": 6}
    assert by_group(data) == {"P1": (5, 4), "P3": (1, 0)}
    # No run within the tolerance (one day for 7d): nothing compared.
    lonely = state(agg, {"P1": 5}, earlier=[("2026-12-04T06:00:00Z", {"P1": 1})])
    data = aggregation_data(agg, lonely)
    assert data["compared_with"] is None
    assert by_group(data) == {"P1": (5, None)}


@pytest.mark.parametrize(
    ("reading", "expected"),
    [
        (Reading(), ["P1", "P2", "P3", "NOT_DEFINED", "other"]),
        (Reading(order="count"), ["other", "NOT_DEFINED", "P3", "P2", "P1"]),
        (Reading(order=("P3", "other")), ["P3", "other", "NOT_DEFINED", "P2", "P1"]),
        (
            Reading(order="label", labels=(("P1", "Urgent"), ("other", "Another"))),
            ["other", "NOT_DEFINED", "P2", "P3", "P1"],
        ),
    ],
)
def test_groups_follow_the_order_whatever_order_the_api_sent(
    reading: Reading, expected: list[str]
) -> None:
    agg = spec(reading=reading)
    counts = {"P3": 40, "NOT_DEFINED": 50, "P1": 2, "other": 60, "P2": 9}
    names = list(counts)
    for seed in range(3):
        random.Random(seed).shuffle(names)
        entry = state(agg, {name: counts[name] for name in names})
        assert [g["group"] for g in aggregation_data(agg, entry)["groups"]] == expected


def test_labels_are_the_pages_and_raw_values_stay() -> None:
    agg = spec(
        "by_status_priority",
        groups=("status", "priority"),
        reading=Reading(labels=(("P1", "Urgent"), ("CLOSED / P2", "Done, low"))),
    )
    entry = state(agg, {"IN_PROGRESS / P1": 2, "CLOSED / P2": 1, "OPEN / custom": 4})
    labels = {g["group"]: g["label"] for g in aggregation_data(agg, entry)["groups"]}
    assert labels == {
        "IN_PROGRESS / P1": "In progress / Urgent",
        "CLOSED / P2": "Done, low",
        "OPEN / custom": "Open / custom",
    }


def test_counts_agree_with_the_page_for_every_fixture_aggregation() -> None:
    """The data file and the page read the same state the same way: totals, the compared
    run, each group (in order) with its label, count and earlier count."""
    current = fixture_state()
    checked = 0
    for rep in fixture_reports():
        data = json.loads(PAGES[f"{rep.name}.json"])
        for agg, item in zip(rep.aggregations, data["aggregations"], strict=True):
            page = aggregation_context(agg, state=current.aggregations.get(agg.address))
            assert item["address"] == page["address"] == agg.address
            assert item["total"] == page["total"]
            assert item["fetched_at"] == page["fetched_at"]
            assert item["compared_with"] == page["previous"]
            # The same groups, in the same order, with the same labels and numbers.
            rows = [(r["group"], r["label"], r["count"], r["previous"]) for r in page["rows"]]
            assert [
                (g["group"], g["label"], g["count"], g["compared_count"]) for g in item["groups"]
            ] == rows
            checked += 1
    assert checked >= 10


# -- the files ----------------------------------------------------------------------


def test_every_fixture_data_file_validates_against_the_schema() -> None:
    names = [name for name in PAGES if name.endswith(".json") and not name.startswith("index")]
    assert len(names) == 4
    for name in names:
        page = PAGES[name]
        assert isinstance(page, str)
        errors = [e.message for e in VALIDATOR.iter_errors(json.loads(page))]
        assert errors == [], name


def test_the_schema_is_valid_and_its_committed_copy_up_to_date() -> None:
    jsonschema.Draft202012Validator.check_schema(data_file_schema())
    fix = f"casereport schema --data-file > {DATA_SCHEMA_PATH}"
    assert (ROOT / DATA_SCHEMA_PATH).read_text(encoding="utf-8") == data_schema_json(), (
        f"{DATA_SCHEMA_PATH} is out of date: run `{fix}`"
    )


def test_the_schema_refuses_what_the_format_does_not_allow() -> None:
    good = report_data(report(spec()), {"r.by_priority": state(spec(), {"P1": 3})}, EMULATOR)
    assert not list(VALIDATOR.iter_errors(good))
    for broken in (
        {**good, "format_version": 2},
        {**good, "extra": 1},
        {**good, "aggregations": [{**good["aggregations"][0], "compare": "7 days"}]},
        {**good, "aggregations": [{**good["aggregations"][0], "groups": [{"group": "P1"}]}]},
    ):
        assert list(VALIDATOR.iter_errors(broken))


def test_files_are_deterministic_utf8_with_a_final_newline() -> None:
    agg = spec(title="Émoji 🚀 and ünïcode")
    entry = state(agg, {"P1": 3, "Zoë / ☃": 2}, earlier=[("2026-12-06T06:00:00Z", {"P1": 1})])
    first = data_files(report(agg), {agg.address: entry}, EMULATOR)
    again = data_files(report(agg), {agg.address: entry}, EMULATOR)
    assert first == again
    assert sorted(first) == ["r.csv", "r.json"]
    assert first["r.json"].endswith("}\n")
    assert first["r.csv"].endswith("\r\n")
    assert "Émoji 🚀" in first["r.json"]  # UTF-8 as is, not \u escapes
    assert json.loads(first["r.json"]) == report_data(report(agg), {agg.address: entry}, EMULATOR)


HOSTILE = [
    '=HYPERLINK("http://evil","x")',
    "+1+1",
    "-2+3",
    "@SUM(A1)",
    "\tTAB",
    "\rCR",
    "'quoted",
    "''two",
    "a,b",
    'say "hi"',
    "line\nbreak",
    "crlf\r\ninside",
    "ünïcode ☃ 🚀",
    "plain",
    "",
    " =leading space",
]


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def _unguard(cell: str) -> str:
    return cell[1:] if cell.startswith("'") else cell


def test_csv_round_trips_hostile_values_and_guards_formulas() -> None:
    agg = spec(groups=("title",), limit=100, title="=cmd|' /C calc'!A0")
    counts = {value: float(index + 1) for index, value in enumerate(HOSTILE)}
    entry = state(agg, counts)
    rep = report(agg)
    data = report_data(rep, {agg.address: entry}, EMULATOR)
    rows = _csv_rows(csv_text(data))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert len(rows) == len(HOSTILE)
    for row, group in zip(rows, data["aggregations"][0]["groups"], strict=True):
        for column in ("group", "label", "title"):
            cell = row[column]
            # Nothing a spreadsheet runs: a guarded cell starts with the apostrophe.
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (column, cell)
        # Every raw value is recovered by removing one leading apostrophe.
        assert _unguard(row["group"]) == group["group"]
        assert _unguard(row["label"]) == group["label"]
        assert _unguard(row["title"]) == "=cmd|' /C calc'!A0"
        assert float(row["count"]) == group["count"] == counts[group["group"]]
        assert row["report"] == "r" and row["address"] == "r.by_priority"
    guarded = {row["group"] for row in rows if row["group"].startswith("'")}
    assert guarded == {f"'{v}" for v in HOSTILE[:8]}  # formula starts and apostrophes only


def test_csv_numbers_are_never_guarded() -> None:
    agg = spec()
    entry = state(agg, {"P1": 3, "P2": 0.5}, earlier=[("2026-12-06T06:00:00Z", {"P1": 1})])
    rows = _csv_rows(csv_text(report_data(report(agg), {agg.address: entry}, EMULATOR)))
    assert [(r["count"], r["compared_count"], r["total"]) for r in rows] == [
        ("3", "1", "3.5"),
        ("0.5", "0", "3.5"),
    ]
    assert rows[0]["compared_total"] == "1"
    assert rows[0]["compared_fetched_at"] == "2026-12-06T06:00:00Z"


def test_csv_keeps_an_aggregation_without_groups_as_one_row() -> None:
    fetched, empty, never = spec("a"), spec("b"), spec("c")
    states = {
        fetched.address: state(fetched, {"P1": 2}),
        empty.address: state(empty, {}),
    }
    rows = _csv_rows(csv_text(report_data(report(fetched, empty, never), states, EMULATOR)))
    assert [(r["address"], r["total"], r["group"], r["count"]) for r in rows] == [
        ("r.a", "2", "P1", "2"),
        ("r.b", "0", "", ""),
        ("r.c", "", "", ""),
    ]
    assert rows[2]["fetched_at"] == ""


def test_json_text_is_orjsons_indented_form() -> None:
    data = report_data(report(spec()), {}, EMULATOR)
    assert data_json(data) == json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def test_csv_text_is_what_the_csv_module_writes() -> None:
    """The rows are joined by hand for speed: byte for byte what ``csv.writer`` (RFC 4180,
    minimal quoting, CRLF) writes for the same guarded cells, hostile values included."""
    agg = spec(groups=("title",), limit=100, title='Quote " and, comma\nand line')
    never = spec("never", title="=SUM(1)")
    entry = state(
        agg,
        {value: float(index) + 0.5 for index, value in enumerate(HOSTILE)},
        earlier=[("2026-12-06T06:00:00Z", {HOSTILE[0]: 2})],
    )
    data = report_data(report(agg, never), {agg.address: entry}, EMULATOR)

    def guard(text: str) -> str:
        return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r", "'") else text

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for item in data["aggregations"]:
        compared = item["compared_with"] or {}
        head = [
            guard(data["report"]),
            guard(item["address"]),
            guard(item["title"]),
            item["fetched_at"] or "",
            "" if item["total"] is None else item["total"],
            compared.get("fetched_at", ""),
            compared.get("total", ""),
        ]
        for group in item["groups"] or [None]:
            if group is None:
                writer.writerow([*head, "", "", "", ""])
                continue
            was = group["compared_count"]
            writer.writerow(
                [*head, guard(group["group"]), guard(group["label"]), group["count"], was]
            )
    assert csv_text(data) == buffer.getvalue()


def test_schema_command_prints_the_data_file_schema() -> None:
    result = CliRunner().invoke(cli, ["schema", "--data-file"])
    assert result.exit_code == 0, result.output
    assert result.output == data_schema_json() == (ROOT / DATA_SCHEMA_PATH).read_text()
    assert json.loads(result.output)["properties"]["format_version"] == {"const": 1}


@pytest.mark.parametrize(
    "reading",
    [
        Reading(compare="7d"),
        Reading(compare="1d", order="count"),
        Reading(order=("P3", "other"), labels=(("P1", "Urgent"),)),
        Reading(order="label", labels=(("other", "Another"),)),
    ],
)
def test_the_page_and_the_data_file_read_the_keys_alike(reading: Reading) -> None:
    agg = spec(reading=reading, limit=5)
    earlier = [
        ("2026-11-30T06:00:00Z", {"P1": 1, "P2": 2, "other": 4}),
        ("2026-12-06T06:00:00Z", {"P1": 8, "P3": 1}),
    ]
    entry = state(agg, {"P3": 40, "NOT_DEFINED": 50, "P1": 2, "other": 60}, earlier=earlier)
    page = aggregation_context(agg, state=entry)
    data = aggregation_data(agg, entry)
    assert data["compared_with"] == page["previous"]
    rows = [(r["group"], r["label"], r["count"], r["previous"]) for r in page["rows"]]
    assert [(g["group"], g["label"], g["count"], g["compared_count"]) for g in data["groups"]] == (
        rows
    )
