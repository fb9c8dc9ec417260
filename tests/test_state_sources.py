"""A change of data source never destroys results: ``previous_sources`` in state.

The state keeps the results of a source it switched away from, parses that section as
strictly as the rest, and gives them back on a switch back; ``make report`` without the
Datadog secrets on a Datadog state is refused, naming them, instead of using demo data.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from apply_workspace import Workspace, api_calls, reset_stats
from casereport.errors import StateError
from casereport.state import journal
from casereport.state.model import (
    FORMAT_VERSION,
    PREVIOUS_SOURCES_FORMAT_VERSION,
    AggregationState,
    PreviousSource,
    Source,
    State,
    load_state,
    new_state,
    parse_state,
    serialise,
    switch_source,
    with_result,
    write_state,
)
from conftest import EmulatorFactory as Emulator

REPO = Path(__file__).resolve().parent.parent
DATADOG = Source("datadog", "datadoghq.com")
EU = Source("datadog", "datadoghq.eu")
EMULATOR = Source("emulator", "emulator", "5000 synthetic cases (seed 1)")


def entry(
    address: str, total: float, *, previous: AggregationState | None = None
) -> AggregationState:
    return with_result(
        previous,
        address=address,
        report=address.split(".")[0],
        title="",
        request={"query_filter": "*", "groups": ["status"], "limit": 3},
        fingerprint="f-" + address,
        result={"id": "x", "total": total, "groups": [{"group": "OPEN", "value": [total]}]},
        fetched_at=f"2026-11-2{int(total) % 10}T00:00:00Z",
    )


def datadog_state() -> State:
    first = entry("a.one", 1.0)
    second = entry("a.one", 2.0, previous=first)  # with one history entry
    return replace(new_state(), source=DATADOG, aggregations={"a.one": second})


def test_switching_away_and_back_gives_the_results_back_with_their_history() -> None:
    state = datadog_state()

    away = switch_source(state, EMULATOR)
    back = switch_source(replace(away, aggregations={"a.one": entry("a.one", 7.0)}), DATADOG)

    assert away.source == EMULATOR and away.aggregations == {}
    assert away.previous_sources == {
        "datadog:datadoghq.com": PreviousSource(DATADOG, state.aggregations)
    }
    assert back.source == DATADOG
    assert back.aggregations == state.aggregations
    assert len(back.aggregations["a.one"].history) == 1
    assert list(back.previous_sources) == ["emulator:emulator"]
    assert back.previous_sources["emulator:emulator"].aggregations["a.one"].result["total"] == 7.0


def test_a_state_with_previous_sources_is_format_2_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    plain = write_state(path, datadog_state(), None)
    assert json.loads(path.read_text())["format_version"] == FORMAT_VERSION == 1

    switched = write_state(path, switch_source(plain, EU), plain)

    raw = json.loads(path.read_text())
    assert raw["format_version"] == PREVIOUS_SOURCES_FORMAT_VERSION == 2
    assert set(raw["previous_sources"]) == {"datadog:datadoghq.com"}
    # Each kept aggregation is one line, as in the main section.
    assert re.search(r'\n {8}"a\.one": \{"fetched_at"', path.read_text())
    assert load_state(path) == replace(switched, format_version=FORMAT_VERSION)
    assert serialise(load_state(path)) == path.read_text()  # type: ignore[arg-type]


def valid_document() -> dict[str, Any]:
    state = switch_source(datadog_state(), EU)
    document: dict[str, Any] = json.loads(serialise(replace(state, serial=1)))
    return document


def with_section(section: Any, **changes: Any) -> str:
    document = valid_document()
    document["previous_sources"] = section
    document.update(changes)
    return json.dumps(document)


def kept(**changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = valid_document()["previous_sources"]["datadog:datadoghq.com"]
    value.update(changes)
    return value


ONE = "previous_sources['datadog:datadoghq.com']"
BAD_SECTIONS = {
    "in a format-1 state": (
        with_section({"datadog:datadoghq.com": kept()}, format_version=1),
        "malformed: previous_sources in a state of format 1",
    ),
    "not an object": (with_section([]), "malformed: previous_sources is not an object"),
    "entry not an object": (
        with_section({"datadog:datadoghq.com": 3}),
        f"malformed: {ONE} is not an object of source and aggregations",
    ),
    "extra key": (
        with_section({"datadog:datadoghq.com": kept(extra=1)}),
        f"malformed: {ONE} is not an object of source and aggregations",
    ),
    "null source": (
        with_section({"datadog:datadoghq.com": kept(source=None)}),
        f"malformed: {ONE}.source is null",
    ),
    "bad source": (
        with_section({"datadog:datadoghq.com": kept(source={"kind": 1})}),
        "malformed: source is not an object of kind, site and detail strings",
    ),
    "key of another source": (
        with_section({"datadog:us5.datadoghq.com": kept()}),
        "malformed: previous_sources['datadog:us5.datadoghq.com'] holds the results of "
        "'datadog:datadoghq.com'",
    ),
    "the state's own source": (
        with_section({"datadog:datadoghq.eu": kept(source=EU.to_json())}),
        "malformed: previous_sources['datadog:datadoghq.eu'] is the state's own source",
    ),
    "aggregations not an object": (
        with_section({"datadog:datadoghq.com": kept(aggregations=[])}),
        f"malformed: {ONE}.aggregations is not an object",
    ),
    "aggregation not an object": (
        with_section({"datadog:datadoghq.com": kept(aggregations={"a.one": []})}),
        f"{ONE}.aggregations['a.one'] is malformed: is not an object",
    ),
    "aggregation without a result": (
        with_section({"datadog:datadoghq.com": kept(aggregations={"a.one": {"report": "a"}})}),
        f"{ONE}.aggregations['a.one'] is malformed: has no 'request'",
    ),
}


@pytest.mark.parametrize("case", list(BAD_SECTIONS))
def test_a_malformed_previous_sources_section_is_refused(tmp_path: Path, case: str) -> None:
    text, problem = BAD_SECTIONS[case]
    path = tmp_path / "state.json"

    with pytest.raises(StateError) as caught:
        parse_state(path, text)

    assert caught.value.message == (
        f"{path}: {problem}; move the file away to start afresh (the next apply re-fetches "
        "everything)"
    )


def test_replaying_a_journal_of_another_source_keeps_the_states_results(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.json"
    base = write_state(path, datadog_state(), None)
    log = journal.Journal.open(path, base, EMULATOR)
    log.append([entry("a.two", 5.0)])
    log.close()

    replayed = journal.load_with_journal(path)

    assert replayed is not None and replayed.source == EMULATOR
    assert set(replayed.aggregations) == {"a.two"}
    assert replayed.previous_sources["datadog:datadoghq.com"].aggregations == base.aggregations


# -- through the command line -------------------------------------------------------------


@pytest.fixture
def datadog_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: Emulator
) -> Workspace:
    monkeypatch.chdir(tmp_path)
    ws = Workspace(tmp_path, emulator())
    ws.apply()
    reset_stats(ws.emulator)
    return ws


def test_make_report_without_the_secrets_on_a_datadog_state_names_them(
    datadog_workspace: Workspace,
) -> None:
    ws = datadog_workspace
    before = {p: p.read_bytes() for p in sorted(ws.root.rglob("*")) if p.is_file()}
    # What `make report` runs when DD_API_KEY is not set.
    recipe = re.search(r"^report:.*\n((?:\t.*\n)+)", (REPO / "Makefile").read_text(), re.M)
    assert recipe is not None
    assert "casereport apply --auto-approve $(EMULATOR_FLAG)" in recipe.group(1)
    assert "EMULATOR_FLAG = $(if $(DD_API_KEY),,--emulator)" in (REPO / "Makefile").read_text()

    result = ws.run("apply", "--auto-approve", "--emulator", DD_API_KEY=None, DD_APP_KEY=None)

    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: DD_API_KEY and DD_APP_KEY are not set, so this run would replace the "
        f"Datadog ({ws.emulator.url}) results in .casereport/state.json with the emulator's "
        "demo data; set DD_API_KEY and DD_APP_KEY (the CI secrets), or pass "
        "--allow-source-change to switch to demo data\n"
    )
    assert {p: p.read_bytes() for p in sorted(ws.root.rglob("*")) if p.is_file()} == before
    assert api_calls(ws.emulator) == 0

    only_api = ws.run("apply", "--auto-approve", "--emulator", DD_API_KEY=None)
    assert only_api.exit_code == 1
    assert only_api.stderr.startswith("Error: DD_API_KEY is not set, so this run would replace")


def test_a_saved_plan_that_changes_the_source_needs_the_flag(
    datadog_workspace: Workspace,
) -> None:
    ws = datadog_workspace
    assert ws.run("plan", "--emulator", "--out", "plan.json").exit_code == 0
    before = {p: p.read_bytes() for p in sorted(ws.root.rglob("*")) if p.is_file()}

    refused = ws.run("apply", "plan.json")

    assert refused.exit_code == 1
    assert refused.stderr.startswith(
        f"Error: the data source would change from Datadog ({ws.emulator.url}) (the source of "
        ".casereport/state.json) to local emulator"
    )
    assert {p: p.read_bytes() for p in sorted(ws.root.rglob("*")) if p.is_file()} == before

    allowed = ws.run("apply", "plan.json", "--allow-source-change")
    assert allowed.exit_code == 0, allowed.output
    state = ws.state()
    assert state.source is not None and state.source.kind == "emulator"
    assert set(state.previous_sources) == {f"datadog:{ws.emulator.url}"}


def test_a_previous_source_with_a_non_ascii_site_is_written_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    plain = write_state(
        path, replace(datadog_state(), source=Source("datadog", "ümlaut.example")), None
    )

    write_state(path, switch_source(plain, EU), plain)

    text = path.read_text(encoding="utf-8")
    assert '\n    "datadog:ümlaut.example": {\n' in text
    assert "\\u00fc" not in text
    loaded = load_state(path)
    assert loaded is not None
    assert set(loaded.previous_sources) == {"datadog:ümlaut.example"}


def test_two_previous_sources_are_written_and_read_back(tmp_path: Path) -> None:
    # Datadog, then the emulator, then the EU site: two sources put aside, each kept.
    path = tmp_path / "state.json"
    emulated = switch_source(datadog_state(), EMULATOR)
    emulated = replace(emulated, aggregations={"a.one": entry("a.one", 7.0)})
    state = write_state(path, switch_source(emulated, EU), None)

    assert list(json.loads(path.read_text())["previous_sources"]) == [
        "datadog:datadoghq.com",
        "emulator:emulator",
    ]
    loaded = load_state(path)
    assert loaded is not None and loaded.previous_sources == state.previous_sources
    assert serialise(loaded) == path.read_text()
