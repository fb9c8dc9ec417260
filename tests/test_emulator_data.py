"""Synthetic cases, data files and export of the emulator."""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casereport.definitions.query import And, MatchAll, Node, Not, Or, Term
from casereport.emulator.columns import parse_time
from casereport.emulator.datafiles import export_cases, load_cases
from casereport.emulator.store import CaseStore
from casereport.emulator.synthetic import REFERENCE_TIME, synthetic_cases
from casereport.errors import EmulatorError

SHAPES = 'expected a JSON object with "data", a JSON array of cases, or NDJSON (one case per line)'


def export(store: CaseStore, *, ndjson: bool = False) -> str:
    out = io.StringIO()
    export_cases(store, out, ndjson=ndjson)
    return out.getvalue()


@pytest.fixture(scope="module")
def synthetic() -> CaseStore:
    return synthetic_cases(2000, 3)


@pytest.fixture(scope="module")
def cases(synthetic: CaseStore) -> list[dict[str, Any]]:
    return list(synthetic.cases())


@pytest.fixture(scope="module")
def reloaded(synthetic: CaseStore, tmp_path_factory: pytest.TempPathFactory) -> CaseStore:
    path = tmp_path_factory.mktemp("export") / "cases.json"
    path.write_text(export(synthetic), encoding="utf-8")
    return load_cases(path)


# -- synthetic data -------------------------------------------------------------------------


def test_same_seed_same_bytes_other_seed_other_data() -> None:
    first = export(synthetic_cases(300, 5))
    assert export(synthetic_cases(300, 5)) == first
    assert export(synthetic_cases(300, 6)) != first
    assert export(synthetic_cases(300, 5), ndjson=True) == export(
        synthetic_cases(300, 5), ndjson=True
    )
    # A larger set does not reshuffle: same seed, same users and projects.
    assert synthetic_cases(301, 5).included() == synthetic_cases(300, 5).included()


def test_synthetic_cases_have_the_case_object_shape(cases: list[dict[str, Any]]) -> None:
    uuid = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
    for case in cases:
        assert list(case) == ["id", "type", "attributes", "relationships"]
        assert uuid.fullmatch(case["id"])
        assert case["type"] == "case"
        attributes = case["attributes"]
        assert list(attributes) == [
            "key",
            "title",
            "description",
            "status",
            "status_name",
            "status_group",
            "priority",
            "type",
            "type_id",
            "created_at",
            "modified_at",
            "closed_at",
            "archived_at",
            "attributes",
            "custom_attributes",
            "creation_source",
            "comment_count",
            "public_id",
        ]
        assert re.fullmatch(r"(SUP|OPS|ENG|BIL|SEC)-[1-9][0-9]*", attributes["key"])
        status = attributes["status"]
        assert (attributes["status_name"], attributes["status_group"]) == {
            "OPEN": ("Open", "SG_OPEN"),
            "IN_PROGRESS": ("In Progress", "SG_IN_PROGRESS"),
            "CLOSED": ("Closed", "SG_CLOSED"),
        }[status]
        assert attributes["priority"] in {"NOT_DEFINED", "P1", "P2", "P3", "P4", "P5"}
        assert list(attributes["attributes"]) == [
            "team",
            "datacenters",
            "services",
            "environments",
            "versions",
        ]
        for values in attributes["attributes"].values():
            assert isinstance(values, list)
            assert all(isinstance(value, str) for value in values)
            assert len(set(values)) == len(values)
        for custom in attributes["custom_attributes"].values():
            assert set(custom) == {"is_multi", "type", "value"}
            assert isinstance(custom["value"], list) == custom["is_multi"]
        assert list(case["relationships"]) == ["assignee", "created_by", "modified_by", "project"]
        assert case["relationships"]["project"]["data"]["type"] == "project"
        assert case["relationships"]["created_by"]["data"]["type"] == "user"
        assert attributes["public_id"].isdigit()


def test_synthetic_timestamps_are_consistent(cases: list[dict[str, Any]]) -> None:
    reference = parse_time(REFERENCE_TIME.isoformat())
    year = timedelta(days=365) // timedelta(milliseconds=1)
    previous = 0
    for case in cases:
        attributes = case["attributes"]
        created = parse_time(attributes["created_at"])
        assert reference - year <= created <= reference
        assert created >= previous  # the set is in creation order
        previous = created
        assert created <= parse_time(attributes["modified_at"]) <= reference
        closed, archived = attributes["closed_at"], attributes["archived_at"]
        assert (closed is not None) == (attributes["status"] == "CLOSED")
        if closed is not None:
            assert created <= parse_time(closed) <= reference
        if archived is not None:
            assert closed is not None
            assert parse_time(closed) <= parse_time(archived) <= reference


def test_synthetic_references_and_included_objects(synthetic: CaseStore) -> None:
    included = synthetic.included()
    users = [obj for obj in included if obj["type"] == "user"]
    projects = [obj for obj in included if obj["type"] == "project"]
    assert len(users) == 40
    assert len(included) == 45
    assert [p["attributes"]["key"] for p in projects] == ["SUP", "OPS", "ENG", "BIL", "SEC"]
    for user in users:
        assert set(user["attributes"]) == {"handle", "email", "name"}
        assert user["attributes"]["handle"] == user["attributes"]["email"]
        assert user["attributes"]["handle"].endswith("@example.com")
    assert len({user["attributes"]["handle"] for user in users}) == 40
    known = {(obj["type"], obj["id"]) for obj in included}
    for case in synthetic.cases():
        for relation in case["relationships"].values():
            if relation["data"] is not None:
                assert (relation["data"]["type"], relation["data"]["id"]) in known
    ids = [case["id"] for case in synthetic.cases()]
    keys = [case["attributes"]["key"] for case in synthetic.cases()]
    assert len(set(ids)) == len(set(keys)) == 2000


def test_synthetic_data_is_skewed_like_real_data(cases: list[dict[str, Any]]) -> None:
    def tally(get: Any) -> Counter[Any]:
        return Counter(get(case) for case in cases)

    status = tally(lambda c: c["attributes"]["status"])
    assert status["CLOSED"] > status["OPEN"] > status["IN_PROGRESS"] > 0
    assert status["IN_PROGRESS"] < 0.15 * len(cases)
    priority = tally(lambda c: c["attributes"]["priority"])
    assert priority["P3"] + priority["P4"] > 0.5 * len(cases)
    assert 0 < priority["P1"] < priority["P2"] < priority["P3"]
    assert priority["NOT_DEFINED"] > 0
    services = Counter(s for c in cases for s in c["attributes"]["attributes"]["services"])
    assert len(services) == 10
    ranked = [name for name, _ in services.most_common()]
    assert ranked[0] == "case-api"
    assert services["case-api"] > 3 * services["data-pipeline"]
    assert any(len(c["attributes"]["attributes"]["services"]) == 2 for c in cases)
    unassigned = sum(c["relationships"]["assignee"]["data"] is None for c in cases)
    assert 0.05 * len(cases) < unassigned < 0.25 * len(cases)
    archived = sum(c["attributes"]["archived_at"] is not None for c in cases)
    assert 0 < archived < 0.05 * len(cases)
    kinds = tally(lambda c: (c["attributes"]["type"], c["attributes"]["creation_source"]))
    assert kinds[("ERROR_TRACKING_ISSUE", "ERROR_TRACKING")] > 0
    assert {source for kind, source in kinds if kind == "ERROR_TRACKING_ISSUE"} == {
        "ERROR_TRACKING"
    }
    assert len(tally(lambda c: c["attributes"]["creation_source"])) >= 6
    assert sum(bool(c["attributes"]["custom_attributes"]) for c in cases) > 0.3 * len(cases)


def test_synthetic_store_answers_for_its_own_cases(
    synthetic: CaseStore, cases: list[dict[str, Any]]
) -> None:
    live = [c for c in cases if c["attributes"]["archived_at"] is None]
    assert synthetic.aggregate(MatchAll(), ["status"], 10).total == len(live)
    open_api = [
        c
        for c in live
        if c["attributes"]["status"] == "OPEN"
        and "case-api" in c["attributes"]["attributes"]["services"]
    ]
    query = And((Term("service", "case-api"), Term("status", "open")))
    result = synthetic.aggregate(query, ["priority"], 10)
    assert result.total == len(open_api)
    assert dict(result.groups) == Counter(c["attributes"]["priority"] for c in open_api)
    first = cases[0]
    for field in ("id", "key"):
        value = first["id"] if field == "id" else first["attributes"]["key"]
        assert synthetic.evaluate(Term(field, value.upper())).tolist() == [
            i == 0 for i in range(len(cases))
        ]
    assert not synthetic.evaluate(Term("id", first["id"].replace("-", ""))).any()
    assert not synthetic.evaluate(Term("key", "SUP-01")).any()
    assert int(np.count_nonzero(synthetic.evaluate(Term("key", "SUP-1*")))) == sum(
        c["attributes"]["key"].startswith("SUP-1") for c in live
    )


# -- round trip -----------------------------------------------------------------------------

QUERIES: list[Node] = [
    MatchAll(),
    Term("status", "open"),
    And((Term("service", "case-api"), Term("status", "open"))),
    Term("project", "SEC"),
    Term("project", "Support"),
    Term("assignee", "alice.martin@example.com"),
    Term("created_by", "*martin*"),
    Term(None, "kubernetes"),
    Term("customer_tier", "enterprise"),
    Term("impact_score", "4"),
    Term("regions", "apac"),
    Term("key", "OPS-1*"),
    Not(Term("env", "prod")),
    Or((Term("priority", "P1"), Term("datacenter", "eu1.prod.dog"))),
]
GROUPS = [
    ["status"],
    ["priority"],
    ["project"],
    ["assignee"],
    ["service", "priority"],
    ["team", "env", "status"],
    ["customer_tier"],
    ["regions"],
    ["version"],
    ["creation_source", "type"],
]


@pytest.mark.parametrize("query", QUERIES, ids=str)
def test_export_then_load_gives_the_same_aggregates(
    synthetic: CaseStore, reloaded: CaseStore, query: Node
) -> None:
    assert len(reloaded) == len(synthetic)
    for groups in GROUPS:
        assert reloaded.aggregate(query, groups, 1000) == synthetic.aggregate(query, groups, 1000)
    assert reloaded.count(query, ["status", "service"], 5) == synthetic.count(
        query, ["status", "service"], 5
    )
    for sort_field in ("created_at", "priority", "status"):
        for ascending in (True, False):
            options: dict[str, Any] = {
                "page_size": 25,
                "page_number": 2,
                "sort_field": sort_field,
                "sort_asc": ascending,
            }
            assert reloaded.search(query, **options) == synthetic.search(query, **options)


def test_export_of_a_loaded_export_is_byte_identical(
    synthetic: CaseStore, reloaded: CaseStore
) -> None:
    assert export(reloaded) == export(synthetic)


def test_ndjson_export_is_case_objects_and_loads_back(synthetic: CaseStore, tmp_path: Path) -> None:
    text = export(synthetic, ndjson=True)
    lines = text.splitlines()
    assert [json.loads(line) for line in lines] == list(synthetic.cases())
    path = tmp_path / "cases.ndjson"
    path.write_text(text, encoding="utf-8")
    from_ndjson = load_cases(path)
    assert export(from_ndjson, ndjson=True) == text
    assert from_ndjson.included() == []
    entity_fields = {"project", "assignee", "created_by"}
    for query in QUERIES:
        if isinstance(query, Term) and query.field in entity_fields:
            continue
        for groups in (["status"], ["service", "priority"], ["customer_tier"]):
            assert from_ndjson.aggregate(query, groups, 100) == synthetic.aggregate(
                query, groups, 100
            )
    # Without the included objects, projects are known (and grouped) by id only.
    key_of = {
        p["id"]: p["attributes"]["key"] for p in synthetic.included() if p["type"] == "project"
    }
    by_id = from_ndjson.aggregate(MatchAll(), ["project"], 10).groups
    assert [(key_of[ident], n) for ident, n in by_id] == synthetic.aggregate(
        MatchAll(), ["project"], 10
    ).groups
    sec = next(ident for ident, key in key_of.items() if key == "SEC")
    assert from_ndjson.aggregate(Term("project", "SEC"), ["status"], 10).total == 0
    assert from_ndjson.aggregate(Term("project", sec), ["status"], 10) == synthetic.aggregate(
        Term("project", "SEC"), ["status"], 10
    )


ROUND_TRIP_FIELDS = ["status", "priority", "service", "project", "assignee", "key", "regions", None]
ROUND_TRIP_VALUES = ["OPEN", "p2", "case-*", "billing", "SEC", "ops", "*@example.com", "SUP-2*",
                     "na", "latency", "*"]  # fmt: skip
ROUND_TRIP_TREES = st.recursive(
    st.builds(
        Term, st.sampled_from(ROUND_TRIP_FIELDS), st.sampled_from(ROUND_TRIP_VALUES), st.booleans()
    ),
    lambda children: st.one_of(
        children.map(Not),
        st.lists(children, min_size=2, max_size=3).map(lambda ops: And(tuple(ops))),
        st.lists(children, min_size=2, max_size=3).map(lambda ops: Or(tuple(ops))),
    ),
    max_leaves=5,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ROUND_TRIP_TREES)
def test_synthetic_and_reloaded_stores_match_the_same_cases(
    synthetic: CaseStore, reloaded: CaseStore, query: Node
) -> None:
    assert (synthetic.evaluate(query) == reloaded.evaluate(query)).all()


# -- loading files --------------------------------------------------------------------------

SMALL = synthetic_cases(30, 1)
SMALL_CASES = list(SMALL.cases())


def _same_answers(store: CaseStore, *, with_included: bool = True) -> None:
    assert len(store) == 30
    assert list(store.cases()) == SMALL_CASES
    for groups in (["status"], ["service", "priority"]):
        assert store.aggregate(MatchAll(), groups, 100) == SMALL.aggregate(MatchAll(), groups, 100)
    if with_included:
        assert store.included() == SMALL.included()
        assert store.aggregate(MatchAll(), ["project"], 10) == SMALL.aggregate(
            MatchAll(), ["project"], 10
        )


def test_load_response_object(tmp_path: Path) -> None:
    path = tmp_path / "cases.json"
    path.write_text(
        json.dumps({"data": SMALL_CASES, "included": SMALL.included(), "meta": {"page": {}}},
                   indent=2),
        encoding="utf-8",
    )  # fmt: skip
    _same_answers(load_cases(path))


def test_load_response_object_without_included(tmp_path: Path) -> None:
    path = tmp_path / "cases.json"
    path.write_text(json.dumps({"data": SMALL_CASES}), encoding="utf-8")
    store = load_cases(path)
    _same_answers(store, with_included=False)
    assert store.included() == []
    project_ids = {c["relationships"]["project"]["data"]["id"] for c in SMALL_CASES}
    assert {group for group, _ in store.aggregate(MatchAll(), ["project"], 10).groups} <= (
        project_ids
    )


def test_load_json_array(tmp_path: Path) -> None:
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(SMALL_CASES, indent=1), encoding="utf-8")
    _same_answers(load_cases(str(path)), with_included=False)


def test_load_ndjson_with_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "cases.ndjson"
    lines = [json.dumps(case) for case in SMALL_CASES]
    lines.insert(5, "")
    lines += [json.dumps(obj) for obj in SMALL.included()] + ["   "]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _same_answers(load_cases(path))


def test_load_a_single_case(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_text(json.dumps(SMALL_CASES[0], indent=2), encoding="utf-8")
    store = load_cases(path)
    assert list(store.cases()) == SMALL_CASES[:1]


def test_load_keeps_unknown_fields(tmp_path: Path) -> None:
    case = {"id": "x", "type": "case", "attributes": {"novel": 1}, "meta": {"a": [1]}}
    path = tmp_path / "cases.ndjson"
    path.write_text(json.dumps(case) + "\n", encoding="utf-8")
    store = load_cases(path)
    assert store.case(0) == case
    assert store.aggregate(MatchAll(), ["status"], 10).total == 1


def _case(ident: str, **attributes: Any) -> dict[str, Any]:
    return {"id": ident, "type": "case", "attributes": {"status": "OPEN", **attributes}}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("cases.json", "", "{path}: the file is empty; " + SHAPES),
        ("cases.json", " \n\n", "{path}: the file is empty; " + SHAPES),
        ("cases.json", '{"cases": []}', "{path}: " + SHAPES),
        ("cases.json", '{\n  "data": [\n    {"id": "a",}\n  ]\n}\n',
         "{path}:3: invalid JSON: Expecting property name enclosed in double quotes "
         "(column 16)"),
        ("cases.json", '[{"id": "a"', "{path}:1: invalid JSON: Expecting ',' delimiter "
         "(column 12)"),
        ("cases.json", '{"data": {"id": "a"}}',
         '{path}: "data" must be a list of cases, got an object'),
        ("cases.json", '{"data": [], "included": "x"}',
         '{path}: "included" must be a list, got a string'),
        ("cases.json",
         json.dumps({"data": [_case("a"), _case("b"), _case("c"), _case("d", status=3)]}),
         "{path}: data[3]: attributes.status must be a string, got a number"),
        ("cases.json", json.dumps({"data": [_case("a")], "included": [{"type": "user"}]}),
         "{path}: included[0]: missing id"),
        ("cases.json", json.dumps([_case("a"), {"id": "b", "attributes": {}}]),
         "{path}: [1]: missing type"),
        ("cases.json", json.dumps([_case("a"), _case("a")]), '{path}: [1]: duplicate id "a"'),
        ("cases.ndjson",
         "\n".join([json.dumps(_case(f"c{i}")) for i in range(1, 17)]
                   + [json.dumps({"id": "c17", "type": "case"})]),
         "{path}:17: record 17: missing attributes"),
        ("cases.ndjson", json.dumps(_case("a")) + "\n\n" + json.dumps({"id": "b", "type": "case"}),
         "{path}:3: record 2: missing attributes"),
        ("cases.ndjson", json.dumps(_case("a")) + "\n\n{oops\n",
         "{path}:3: record 2: invalid JSON: Expecting property name enclosed in double quotes "
         "(column 2)"),
        ("cases.ndjson", json.dumps(_case("a")) + "\n" + json.dumps({"type": "user"}),
         "{path}:2: record 2: missing id"),
        ("cases.ndjson", json.dumps(_case("a")) + "\n42\n",
         "{path}:2: record 2: expected a case object, got a number"),
        ("cases.ndjson", json.dumps(_case("a", created_at="soon")) + "\n",
         '{path}:1: record 1: attributes.created_at is not an ISO 8601 timestamp: "soon"'),
        ("cases.ndjson",
         json.dumps({"id": "a", "type": "case", "attributes": {},
                     "relationships": {"project": {"data": {"type": "project"}}}}),
         "{path}:1: record 1: relationships.project.data.id must be a non-empty string"),
        ("cases.ndjson", json.dumps({"id": "a", "type": "incident", "attributes": {}}),
         '{path}:1: record 1: type must be "case", got "incident"'),
    ],
)  # fmt: skip
def test_bad_files_fail_with_one_line_naming_file_and_record(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(EmulatorError) as caught:
        load_cases(path)
    assert caught.value.message == message.format(path=path)
    assert "\n" not in caught.value.message


def test_unreadable_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(EmulatorError) as caught:
        load_cases(missing)
    assert caught.value.message == f"{missing}: cannot read the file: No such file or directory"
    binary = tmp_path / "cases.json"
    binary.write_bytes(b'{"data": []}\xff')
    with pytest.raises(EmulatorError) as caught:
        load_cases(binary)
    assert caught.value.message == f"{binary}: not UTF-8 text (invalid start byte at byte 12)"


def test_empty_data_is_an_empty_store(tmp_path: Path) -> None:
    path = tmp_path / "cases.json"
    path.write_text('{"data": []}', encoding="utf-8")
    store = load_cases(path)
    assert len(store) == 0
    assert store.aggregate(MatchAll(), ["status", "priority"], 10).total == 0
    page = store.search(MatchAll(), page_size=10, page_number=1, sort_field="status", sort_asc=True)
    assert page.cases == []
    assert export(store) == '{"data":[\n],"included":[\n]}\n'
