"""State files: format, determinism, serial and lineage, backups, atomic writes, corruption."""

from __future__ import annotations

import json
import os
import re
import uuid
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from casereport import __version__
from casereport.errors import StateError
from casereport.state.comparable import comparable_history
from casereport.state.history import (
    HISTORY_LIMIT,
    History,
    history_entry,
    valid_columns,
)
from casereport.state.model import (
    FORMAT_VERSION,
    MAX_FORMAT_VERSION,
    AggregationState,
    ReportState,
    Source,
    State,
    backup_path,
    data_hash,
    load_state,
    new_state,
    parse_state,
    serialise,
    with_result,
    write_state,
)
from casereport.state.refresh import UnfinishedRefresh
from casereport.state.refresh import started as refresh_started

EMULATOR = Source("emulator", "emulator", "2000 synthetic cases (seed 7)")
DATADOG = Source("datadog", "datadoghq.eu")
OLD_MTIME_NS = 1_000_000_000 * 1_000_000_000  # 2001-09-09: older than any write in a test


def result(total: float, **groups: float) -> dict[str, Any]:
    return {
        "id": f"agg-{total:g}",
        "total": total,
        "groups": [{"group": name, "value": [count]} for name, count in groups.items()],
    }


def aggregation(address: str, total: float = 10.0, **fields: Any) -> AggregationState:
    report = address.split(".", 1)[0]
    values: dict[str, Any] = {
        "address": address,
        "report": report,
        "title": f"Title of {address}",
        "request": {"query_filter": "status:open", "groups": ["priority"], "limit": 5},
        "fingerprint": "f" * 64,
        "result": result(total, P1=total - 1, P2=1.0),
        "fetched_at": "2026-11-26T19:00:00Z",
        "history": (),
    }
    values.update(fields)
    return AggregationState(**values)


def sample_state(**fields: Any) -> State:
    """A state with every kind of content: source, results with history, reports, site."""
    first = aggregation(
        "support.by_status",
        history=(
            {"fetched_at": "2026-11-25T19:00:00Z", "total": 8.0, "groups": {"P1": 7.0}},
            {"fetched_at": "2026-11-26T07:00:00Z", "total": 9.0, "groups": {"P1": 8.0}},
        ),
    )
    second = aggregation('support.by_service["billing"]', total=3.0, fingerprint="e" * 64)
    values: dict[str, Any] = {
        "lineage": "5d0f3c52-54a8-4b38-8e7e-2f2f8d3c2a10",
        "source": EMULATOR,
        "aggregations": {a.address: a for a in (first, second)},
        "reports": {
            "support": ReportState(
                name="support",
                definition_hash="d" * 64,
                template_hash="t" * 64,
                data_hash="h" * 64,
                outputs={"support.md": "1" * 64, "support.html": "2" * 64},
            )
        },
        "site_outputs": {"index.md": "3" * 64, "index.html": "4" * 64},
    }
    values.update(fields)
    return State(**values)


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / ".casereport" / "state.json"


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` with its bytes (to prove nothing changed)."""
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def assert_refused(state_path: Path, text: str, problem: str) -> None:
    """A state file holding ``text`` is refused at load in one line naming the file and
    ``problem``, and nothing in its folder changes."""
    state_path.parent.mkdir()
    state_path.write_text(text, encoding="utf-8")
    before = snapshot(state_path.parent)

    with pytest.raises(StateError) as caught:
        load_state(state_path)

    assert caught.value.message == (
        f"{state_path}: {problem}; move the file away to start afresh "
        "(the next apply re-fetches everything)"
    )
    assert "\n" not in caught.value.message
    assert snapshot(state_path.parent) == before


def keys_sorted(value: Any) -> bool:
    if isinstance(value, dict):
        return list(value) == sorted(value) and all(keys_sorted(v) for v in value.values())
    if isinstance(value, list):
        return all(keys_sorted(v) for v in value)
    return True


# -- format ---------------------------------------------------------------------------


def test_round_trip_gives_an_equal_state(state_path: Path) -> None:
    written = write_state(state_path, sample_state(), None)

    loaded = load_state(state_path)

    assert loaded == written
    assert loaded is not None
    assert loaded.aggregations["support.by_status"].history == (
        {"fetched_at": "2026-11-25T19:00:00Z", "total": 8.0, "groups": {"P1": 7.0}},
        {"fetched_at": "2026-11-26T07:00:00Z", "total": 9.0, "groups": {"P1": 8.0}},
    )
    assert loaded.source == EMULATOR
    assert loaded.reports["support"].outputs == {"support.md": "1" * 64, "support.html": "2" * 64}
    assert loaded.site_outputs == {"index.md": "3" * 64, "index.html": "4" * 64}


def test_file_has_the_bookkeeping_fields(state_path: Path) -> None:
    written = write_state(state_path, new_state(), None)

    raw = json.loads(state_path.read_text(encoding="utf-8"))

    assert raw["format_version"] == FORMAT_VERSION == 1
    assert raw["lineage"] == written.lineage
    assert str(uuid.UUID(raw["lineage"])) == raw["lineage"]
    assert raw["serial"] == 1
    assert raw["tool_version"] == __version__
    assert raw["source"] is None
    assert raw["aggregations"] == {}
    assert raw["reports"] == {}
    assert raw["site"] == {"outputs": {}}


def test_json_is_sorted_and_independent_of_insertion_order(tmp_path: Path) -> None:
    state = sample_state()
    shuffled = replace(
        state,
        aggregations=dict(reversed(list(state.aggregations.items()))),
        site_outputs=dict(reversed(list(state.site_outputs.items()))),
    )
    first, second = tmp_path / "a.json", tmp_path / "b.json"

    write_state(first, state, None)
    write_state(second, shuffled, None)

    text = first.read_text(encoding="utf-8")
    assert first.read_bytes() == second.read_bytes()
    assert keys_sorted(json.loads(text))
    # Indented, except that each aggregation is one line of its own (readable diffs).
    document = json.loads(text)
    for address, entry in document["aggregations"].items():
        (line,) = [ln for ln in text.splitlines() if ln.startswith(f"    {json.dumps(address)}: ")]
        assert json.loads(line.split(": ", 1)[1].rstrip(",")) == entry
    del document["aggregations"]
    rest = json.dumps(document, indent=2, sort_keys=True)
    assert text.endswith(rest[2:] + "\n")
    assert serialise(replace(state, serial=1)) == serialise(replace(shuffled, serial=1)) == text


def test_new_states_get_distinct_lineages() -> None:
    assert new_state().lineage != new_state().lineage


# -- serial, lineage, backup ------------------------------------------------------------


def test_serial_bumps_once_per_changing_write_and_lineage_is_kept(state_path: Path) -> None:
    first = write_state(state_path, sample_state(), None)
    assert first.serial == 1

    changed = replace(first, aggregations={}, lineage=str(uuid.uuid4()), serial=41)
    second = write_state(state_path, changed, first)

    assert second.serial == 2
    assert second.lineage == first.lineage
    on_disk = load_state(state_path)
    assert on_disk is not None
    assert (on_disk.serial, on_disk.lineage, on_disk.aggregations) == (2, first.lineage, {})

    third = write_state(state_path, replace(second, source=DATADOG), second)
    assert third.serial == 3
    assert json.loads(state_path.read_text(encoding="utf-8"))["serial"] == 3


def test_a_no_op_write_touches_nothing(state_path: Path) -> None:
    first = write_state(state_path, sample_state(), None)
    second = write_state(state_path, replace(first, source=DATADOG), first)
    for path in (state_path, backup_path(state_path)):
        os.utime(path, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    before = snapshot(state_path.parent)

    # Equal content built anew (other objects, other order, stale bookkeeping fields).
    same = replace(
        sample_state(source=DATADOG),
        lineage="another-lineage",
        serial=99,
        aggregations=dict(reversed(list(second.aggregations.items()))),
    )
    returned = write_state(state_path, same, second)

    assert returned is second
    assert returned.serial == 2
    assert snapshot(state_path.parent) == before
    assert state_path.stat().st_mtime_ns == OLD_MTIME_NS
    assert backup_path(state_path).stat().st_mtime_ns == OLD_MTIME_NS


def test_backup_holds_the_previous_version_after_each_write(state_path: Path) -> None:
    first = write_state(state_path, sample_state(), None)
    assert not backup_path(state_path).exists()
    version_1 = state_path.read_bytes()

    second = write_state(state_path, replace(first, source=DATADOG), first)
    assert backup_path(state_path).read_bytes() == version_1
    version_2 = state_path.read_bytes()
    assert version_2 != version_1

    write_state(state_path, replace(second, aggregations={}), second)
    assert backup_path(state_path).read_bytes() == version_2
    backup = load_state(backup_path(state_path))
    assert backup is not None
    assert backup.serial == 2


def test_writes_leave_no_temporary_files(state_path: Path) -> None:
    state = write_state(state_path, sample_state(), None)
    for _ in range(3):
        state = write_state(state_path, replace(state, serial=0, source=DATADOG), state)
        state = write_state(state_path, replace(state, source=EMULATOR), state)

    assert sorted(p.name for p in state_path.parent.iterdir()) == [
        "state.json",
        "state.json.backup",
    ]
    assert state.serial == 7


def test_a_write_removes_temporary_files_left_by_a_killed_run(state_path: Path) -> None:
    first = write_state(state_path, sample_state(), None)
    leftovers = [
        state_path.parent / ".state.json.k2j3h4_z.tmp",  # atomic_writer's temp file (8 random)
        state_path.parent / ".state.json.backup.tmp",  # the staged backup
    ]
    for leftover in leftovers:
        leftover.write_text("{", encoding="utf-8")

    write_state(state_path, replace(first, source=DATADOG), first)

    assert not any(p.exists() for p in leftovers)
    assert sorted(p.name for p in state_path.parent.iterdir()) == [
        "state.json",
        "state.json.backup",
    ]


def test_a_write_removes_only_temporary_files_of_the_state_itself(
    state_path: Path, tmp_path: Path
) -> None:
    first = write_state(state_path, sample_state(), None)
    precious = tmp_path / "precious.txt"
    precious.write_text("keep\n", encoding="utf-8")
    kept = [
        state_path.parent / ".state.json.journal.k2j3h4_z.tmp",  # another file's temp file
        state_path.parent / ".state.json.k2j3h4_zz.tmp",  # not 8 random characters
        state_path.parent / ".state.json.K2J3H4_Z.tmp",
        state_path.parent / "state.json.k2j3h4_z.tmp",
    ]
    for path in kept:
        path.write_text("{", encoding="utf-8")
    link = state_path.parent / ".state.json.a1b2c3d4.tmp"  # a temp file's name, but a link
    link.symlink_to(precious)

    write_state(state_path, replace(first, source=DATADOG), first)

    assert all(path.read_text(encoding="utf-8") == "{" for path in kept)
    assert link.is_symlink() and precious.read_text(encoding="utf-8") == "keep\n"


def test_a_staged_backup_linked_to_the_state_cannot_truncate_it(state_path: Path) -> None:
    # A run killed between linking the backup and renaming it leaves a hard link to the
    # state file; the next write must replace it, not write through it.
    first = write_state(state_path, sample_state(), None)
    content = state_path.read_bytes()
    os.link(state_path, state_path.parent / ".state.json.backup.tmp")

    write_state(state_path, replace(first, source=DATADOG), first)

    assert backup_path(state_path).read_bytes() == content
    loaded = load_state(state_path)
    assert loaded is not None
    assert loaded.source == DATADOG


def test_a_write_after_a_run_killed_between_backup_and_write(state_path: Path) -> None:
    # That run left the backup as another name of the state file itself.
    first = write_state(state_path, sample_state(), None)
    content = state_path.read_bytes()
    os.link(state_path, backup_path(state_path))

    write_state(state_path, replace(first, source=DATADOG), first)

    assert backup_path(state_path).read_bytes() == content
    assert not backup_path(state_path).samefile(state_path)
    assert sorted(p.name for p in state_path.parent.iterdir()) == [
        "state.json",
        "state.json.backup",
    ]


def test_a_failed_write_keeps_the_old_state_and_leaves_no_temporary_file(
    state_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = write_state(state_path, sample_state(), None)
    content = state_path.read_bytes()

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(StateError) as caught:
        write_state(state_path, replace(first, source=DATADOG), first)

    assert caught.value.message == (
        f"{state_path}: cannot write the state: No space left on device"
    )
    assert state_path.read_bytes() == content
    assert sorted(p.name for p in state_path.parent.iterdir()) == [
        "state.json",
        "state.json.backup",
    ]


# -- corrupt and newer files ------------------------------------------------------------

VALID = json.loads(serialise(replace(sample_state(), serial=4)))


def variant(path: str, value: Any) -> str:
    """The valid state with the field at ``path`` (dotted, ``~`` deletes) replaced."""
    raw = json.loads(json.dumps(VALID))
    *parents, last = path.split("/")
    target = raw
    for key in parents:
        target = target[key]
    if value == "~":
        del target[last]
    else:
        target[last] = value
    return json.dumps(raw)


AGG = "aggregations/support.by_status"
CORRUPT = [
    ("{", "not valid JSON (line 1, column 2)"),
    ('{"format_version": 1,\n "lineage": "x",\n', "not valid JSON (line 3, column 1)"),
    ("", "not valid JSON (line 1, column 1)"),
    ("[]", "not a casereport state (expected a JSON object)"),
    ('"state"', "not a casereport state (expected a JSON object)"),
    ("{}", "not a casereport state (no valid format_version)"),
    (variant("format_version", "1"), "not a casereport state (no valid format_version)"),
    (variant("format_version", True), "not a casereport state (no valid format_version)"),
    (variant("format_version", 0), "not a casereport state (no valid format_version)"),
    (variant("lineage", "~"), "malformed: no lineage"),
    (variant("serial", "~"), "malformed: no serial"),
    (variant("aggregations", "~"), "malformed: no aggregations"),
    (variant("lineage", 7), "malformed: lineage is not a non-empty string"),
    (variant("lineage", ""), "malformed: lineage is not a non-empty string"),
    (variant("serial", "4"), "malformed: serial is not a whole number"),
    (variant("serial", True), "malformed: serial is not a whole number"),
    (variant("serial", -1), "malformed: serial is not a whole number"),
    (variant("tool_version", None), "malformed: tool_version is not a string"),
    (
        variant("source", "emulator"),
        "malformed: source is not an object of kind, site and detail strings",
    ),
    (
        variant("source/site", None),
        "malformed: source is not an object of kind, site and detail strings",
    ),
    (variant("aggregations", []), "malformed: aggregations is not an object"),
    (variant("reports", "none"), "malformed: reports is not an object"),
    (variant("site", []), "malformed: site.outputs is not an object of file -> hash"),
    (
        variant("site/outputs", {"index.html": 1}),
        "malformed: site.outputs is not an object of file -> hash",
    ),
    (variant(AGG, [1, 2]), "aggregations['support.by_status'] is not an object"),
    (
        variant(f"{AGG}/result", "~"),
        "aggregations['support.by_status'] is malformed: has no 'result'",
    ),
    (
        variant(f"{AGG}/fingerprint", 12),
        "aggregations['support.by_status'] is malformed: fingerprint is not a string",
    ),
    (
        variant(f"{AGG}/request", ["status"]),
        "aggregations['support.by_status'] is malformed: request is not an object",
    ),
    (
        variant(f"{AGG}/result", None),
        "aggregations['support.by_status'] is malformed: result is not an object",
    ),
    (
        variant(f"{AGG}/result/total", "10"),
        "aggregations['support.by_status'] is malformed: result.total is not a number",
    ),
    (
        variant(f"{AGG}/result/groups", [{"group": "P1", "value": ["9"]}]),
        "aggregations['support.by_status'] is malformed: "
        "result.groups is not a list of {group, value: [numbers]}",
    ),
    (
        variant(f"{AGG}/fetched_at", "yesterday"),
        "aggregations['support.by_status'] is malformed: fetched_at 'yesterday' is not a timestamp",
    ),
    (
        variant(f"{AGG}/history", [{"fetched_at": "2026-11-25T19:00:00Z"}]),
        "aggregations['support.by_status'] is malformed: "
        'history is not {fetched_at: "...", total: "...", groups: {name: "..."}}',
    ),
    (
        variant(
            f"{AGG}/history", {"fetched_at": ["2026-11-25T19:00:00Z"], "total": [], "groups": {}}
        ),
        "aggregations['support.by_status'] is malformed: "
        'history is not {fetched_at: "...", total: "...", groups: {name: "..."}}',
    ),
    (
        variant(
            f"{AGG}/history",
            {"fetched_at": "2026-11-25T19:00:00Z", "total": "3", "groups": {"OPEN": "two"}},
        ),
        "aggregations['support.by_status'] is malformed: "
        'history is not {fetched_at: "...", total: "...", groups: {name: "..."}}',
    ),
    (
        variant("reports/support/outputs", "~"),
        "reports['support'] is malformed: has no 'outputs'",
    ),
    (
        variant("reports/support/data_hash", None),
        "reports['support'] is malformed: data_hash is not a string",
    ),
    (
        variant("reports/support", "yes"),
        "reports['support'] is malformed: is not an object",
    ),
]


@pytest.mark.parametrize(("text", "problem"), CORRUPT)
def test_a_corrupt_state_is_a_one_line_error_that_changes_nothing(
    state_path: Path, text: str, problem: str
) -> None:
    assert_refused(state_path, text, problem)


def test_the_corrupt_state_error_points_at_the_backup_when_there_is_one(
    state_path: Path,
) -> None:
    first = write_state(state_path, sample_state(), None)
    write_state(state_path, replace(first, source=DATADOG), first)
    state_path.write_text('{"format_version": 1', encoding="utf-8")
    before = snapshot(state_path.parent)

    with pytest.raises(StateError) as caught:
        load_state(state_path)

    assert caught.value.message == (
        f"{state_path}: not valid JSON (line 1, column 21); restore the previous version "
        f"from {state_path}.backup, or move the file away to start afresh"
    )
    assert snapshot(state_path.parent) == before
    restored = load_state(backup_path(state_path))
    assert restored is not None
    assert restored.serial == 1


def test_a_file_that_is_not_text_is_a_state_error(state_path: Path) -> None:
    state_path.parent.mkdir()
    state_path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")

    with pytest.raises(StateError) as caught:
        load_state(state_path)

    assert caught.value.message == (
        f"{state_path}: not a casereport state (not UTF-8 text); move the file away to "
        "start afresh (the next apply re-fetches everything)"
    )
    assert state_path.read_bytes() == b"\x89PNG\r\n\x1a\n\xff\xfe"


def test_a_state_path_that_is_a_directory_is_a_state_error(state_path: Path) -> None:
    state_path.mkdir(parents=True)

    with pytest.raises(StateError) as caught:
        load_state(state_path)

    assert caught.value.message == f"{state_path}: cannot read the state: Is a directory"


def test_a_newer_format_asks_for_an_upgrade_and_changes_nothing(state_path: Path) -> None:
    raw = dict(VALID, format_version=MAX_FORMAT_VERSION + 1, tool_version="9.0.0")
    state_path.parent.mkdir()
    state_path.write_text(json.dumps(raw), encoding="utf-8")
    before = snapshot(state_path.parent)

    with pytest.raises(StateError) as caught:
        load_state(state_path)

    assert caught.value.message == (
        f"{state_path}: written by a newer casereport (9.0.0, state format "
        f"{MAX_FORMAT_VERSION + 1}; this version reads up to {MAX_FORMAT_VERSION}); "
        "upgrade casereport"
    )
    assert snapshot(state_path.parent) == before


def test_a_newer_format_without_its_tool_version_says_so_with_a_question_mark(
    state_path: Path,
) -> None:
    raw = {k: v for k, v in VALID.items() if k != "tool_version"}
    raw["format_version"] = MAX_FORMAT_VERSION + 1
    state_path.parent.mkdir()
    state_path.write_text(json.dumps(raw), encoding="utf-8")

    with pytest.raises(StateError) as caught:
        load_state(state_path)

    assert caught.value.message.startswith(
        f"{state_path}: written by a newer casereport (?, state format {MAX_FORMAT_VERSION + 1};"
    )


def test_no_state_file_is_none(state_path: Path) -> None:
    assert load_state(state_path) is None
    assert not state_path.parent.exists()


def test_optional_fields_may_be_absent() -> None:
    raw = json.loads(json.dumps(VALID))
    del raw["aggregations"]["support.by_status"]["history"]
    del raw["aggregations"]["support.by_status"]["title"]
    del raw["source"]["detail"]

    state = parse_state(Path("state.json"), json.dumps(raw))

    entry = state.aggregations["support.by_status"]
    assert (entry.history, entry.title) == ((), "")
    assert state.source == Source("emulator", "emulator", "")


# -- history ----------------------------------------------------------------------------


def fetch(previous: AggregationState | None, total: float, fingerprint: str) -> AggregationState:
    return with_result(
        previous,
        address="support.by_status",
        report="support",
        title="By status",
        request={"query_filter": "", "groups": ["status"], "limit": 3},
        fingerprint=fingerprint,
        result=result(total, OPEN=total),
        fetched_at=f"2026-11-26T{int(total) % 24:02d}:00:00Z",
    )


def test_history_keeps_earlier_results_oldest_first_and_is_bounded() -> None:
    entry = fetch(None, 0.0, "a")
    assert entry.history == ()
    for total in range(1, HISTORY_LIMIT + 6):
        entry = fetch(entry, float(total), "a")

    assert len(entry.history) == HISTORY_LIMIT
    assert [h["total"] for h in entry.history] == [float(t) for t in range(5, HISTORY_LIMIT + 5)]
    assert entry.history[-1] == {
        "fetched_at": f"2026-11-26T{(HISTORY_LIMIT + 4) % 24:02d}:00:00Z",
        "total": float(HISTORY_LIMIT + 4),
        "groups": {"OPEN": float(HISTORY_LIMIT + 4)},
        "complete": True,
    }
    assert entry.result["total"] == float(HISTORY_LIMIT + 5)


def test_a_changed_request_keeps_history_and_restarts_what_is_compared() -> None:
    entry = fetch(fetch(fetch(None, 1.0, "a"), 2.0, "a"), 3.0, "a")
    assert len(entry.history) == 2
    assert entry.query_changed_at is None

    changed = fetch(entry, 4.0, "b")

    # Kept in state, marked: what a page compares with restarts at the change.
    assert [h["total"] for h in changed.history] == [1.0, 2.0, 3.0]
    assert changed.query_changed_at == "2026-11-26T04:00:00Z"
    assert comparable_history(changed) == ()
    later = fetch(changed, 5.0, "b")
    assert later.query_changed_at == "2026-11-26T04:00:00Z"
    assert comparable_history(later) == (
        {
            "fetched_at": "2026-11-26T04:00:00Z",
            "total": 4.0,
            "groups": {"OPEN": 4.0},
            "complete": True,
        },
    )
    assert comparable_history(entry) == entry.history


def test_query_changed_at_is_written_only_when_set_and_read_back_strictly(tmp_path: Path) -> None:
    entry = fetch(fetch(None, 1.0, "a"), 2.0, "b")
    assert "query_changed_at" not in fetch(None, 1.0, "a").to_json()
    assert entry.to_json()["query_changed_at"] == "2026-11-26T02:00:00Z"
    path = tmp_path / "state.json"
    state = State(lineage="l", aggregations={entry.address: entry})
    write_state(path, state, None)
    again = load_state(path)
    assert again is not None
    assert again.aggregations[entry.address].query_changed_at == "2026-11-26T02:00:00Z"
    raw = json.loads(path.read_text())
    raw["aggregations"][entry.address]["query_changed_at"] = "yesterday"
    path.write_text(json.dumps(raw))
    with pytest.raises(StateError, match="query_changed_at 'yesterday' is not a timestamp"):
        load_state(path)


def test_history_entry_keeps_the_total_and_every_groups_first_count() -> None:
    many = {
        "total": 100,
        "groups": [{"group": f"g{i}", "value": [float(i), 99.0]} for i in range(1000)]
        + [{"group": 3, "value": []}],
    }

    entry = history_entry(many, "2026-11-26T19:00:00Z")

    assert entry == {
        "fetched_at": "2026-11-26T19:00:00Z",
        "total": 100.0,
        "groups": {**{f"g{i}": float(i) for i in range(1000)}, "3": 0},
        "complete": True,
    }


# -- data hash --------------------------------------------------------------------------


def test_data_hash_changes_with_results_and_source_only() -> None:
    state = sample_state()
    addresses = ["support.by_status", 'support.by_service["billing"]']
    base = data_hash(addresses, state.aggregations, state.source)

    # Equal data built anew gives the same hash.
    rebuilt = sample_state()
    assert data_hash(list(addresses), dict(rebuilt.aggregations), rebuilt.source) == base
    # Another report's aggregation does not count.
    others = {**state.aggregations, "other.x": aggregation("other.x", total=99.0)}
    assert data_hash(addresses, others, state.source) == base

    new_result = {
        **state.aggregations,
        "support.by_status": replace(
            state.aggregations["support.by_status"], result=result(11.0, P1=10.0, P2=1.0)
        ),
    }
    refetched = {
        **state.aggregations,
        "support.by_status": replace(
            state.aggregations["support.by_status"], fetched_at="2026-11-27T19:00:00Z"
        ),
    }
    missing = {k: v for k, v in state.aggregations.items() if k != "support.by_status"}
    changed = {
        "result": data_hash(addresses, new_result, state.source),
        "fetched_at": data_hash(addresses, refetched, state.source),
        "missing": data_hash(addresses, missing, state.source),
        "source": data_hash(addresses, state.aggregations, DATADOG),
        "no source": data_hash(addresses, state.aggregations, None),
        "source detail": data_hash(
            addresses, state.aggregations, replace(EMULATOR, detail="other data")
        ),
    }
    assert base not in changed.values()
    assert len(set(changed.values())) == len(changed)


def test_history_columns_read_as_its_entries_do() -> None:
    """The column readers a page uses agree with the entries the history holds."""
    entries = [
        {"fetched_at": "2026-11-24T06:00:00Z", "total": 97.0, "groups": {"OPEN": 40.0}},
        {"fetched_at": "2026-11-25T06:00:00Z", "total": 103.5, "groups": {"CLOSED": 12.0}},
        {"fetched_at": "2026-11-26T06:00:00Z", "total": 0.0, "groups": {}},
    ]
    loaded = History(History.from_entries(entries).columns())  # as a loaded state holds it

    assert loaded.stamps() == [e["fetched_at"] for e in entries]
    assert loaded.totals() == [97, 103.5, 0]
    assert loaded.group_counts("OPEN") == [40, None, None]
    assert loaded.group_counts("CLOSED") == [None, 12, None]
    assert loaded.group_counts("PENDING") is None
    assert loaded.recorded_counts() == [1, 1, 0]
    assert loaded.latest_total() == 0
    assert loaded.latest_groups() == {}
    assert History(History.from_entries(entries[:2]).columns()).latest_groups() == {"CLOSED": 12}
    assert list(loaded) == entries


def test_history_readers_read_once_and_hand_each_caller_its_own_copy() -> None:
    # Totals and the newest groups are parsed once per history (a page, its tiles and its
    # data file read them): a caller changing what it got must not change the next read.
    history = History({"fetched_at": "a b", "total": "1 2", "groups": {"A": "3 4"}})
    history.totals().append(99)
    history.latest_groups()["B"] = 5
    assert history.totals() == [1, 2]
    assert history.latest_groups() == {"A": 4}


def test_a_history_shows_its_entries_when_printed() -> None:
    # What a failing test's diff, or a debugger, shows of an entry's history.
    history = History({"fetched_at": "a b", "total": "1 2", "groups": {"A": "3 _"}})
    assert repr(history) == (
        "History([{'fetched_at': 'a', 'total': 1, 'groups': {'A': 3}}, "
        "{'fetched_at': 'b', 'total': 2, 'groups': {}}])"
    )
    assert repr(History()) == "History([])"


def test_a_group_column_that_records_nothing_reads_as_never_recorded() -> None:
    # Only a hand-edited state holds one, but it must not draw a trend line of gaps.
    history = History({"fetched_at": "a b", "total": "1 2", "groups": {"A": "_ _", "B": "1 _"}})
    assert history.group_counts("A") is None
    assert history.group_counts("B") == [1, None]
    assert History().totals() == [] and History().latest_total() is None


# The column grammar as regular expressions, as loading checked it before it read columns
# by structure: what it accepts must not change (but that each stamp is now a time).
_NUMBER = r"(?:[0-9]+|[0-9]*\.[0-9]+(?:e[-+]?[0-9]+)?|[0-9]+(?:\.[0-9]*)?e[-+]?[0-9]+|inf|nan)"
_STAMPS = re.compile(r"(?:\S+(?: \S+)*)?")
_TOTALS = re.compile(rf"(?:{_NUMBER}(?: {_NUMBER})*)?")
_COUNTS = re.compile(rf"(?:(?:{_NUMBER}|_)(?: (?:{_NUMBER}|_))*)?")


def _is_time(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return text.isascii()


T1 = "2026-11-24T06:00:00Z"
T2 = f"{T1} 2026-11-25T06:00:00Z"
T3 = f"{T2} 2026-11-26T06:00:00Z"


def grammar_accepts(history: dict[str, Any]) -> bool:
    stamps, totals, groups = history["fetched_at"], history["total"], history["groups"]
    size = stamps.count(" ")
    if not _STAMPS.fullmatch(stamps) or not _TOTALS.fullmatch(totals):
        return False
    if stamps and not all(_is_time(stamp) for stamp in stamps.split(" ")):
        return False  # pages print them and comparisons compute with them
    if totals.count(" ") != size or bool(totals) != bool(stamps):
        return False
    return all(
        type(series) is str
        and series.count(" ") == size
        and bool(stamps)
        and _COUNTS.fullmatch(series) is not None
        for series in groups.values()
    )


@st.composite
def history_columns(draw: st.DrawFn) -> dict[str, Any]:
    """Columns built from items that are mostly valid, joined mostly by the same gaps (so
    their counts agree), and now and then a double space, a tab or a space at an end."""
    gap = st.sampled_from([" "] * 4 + ["  ", "\t", "", "\xa0"])
    items = draw(st.integers(0, 3))
    gaps = [draw(gap) for _ in range(items - 1)]
    edges = st.sampled_from([("", "")] * 8 + [(" ", ""), ("", " ")])
    edge = draw(edges)

    def column(item: st.SearchStrategy[str]) -> str:
        own = draw(st.integers(0, 4)) == 0
        parts = [draw(item) for _ in range(items + (draw(st.integers(-1, 1)) if own else 0))]
        text = parts[0] if parts else ""
        for index, part in enumerate(parts[1:]):
            text += (draw(gap) if own or index >= len(gaps) else gaps[index]) + part
        before, after = draw(edges) if own else edge
        return before + text + after

    numbers = st.sampled_from(["0", "12", "3.5", ".5", "1e3", "2.e-1", "inf", "nan"])
    odd = st.sampled_from([".", "_", "1_2", "-1", "+1", "1.", "e5", "1e", "Inf", "\u0661", "\xb2"])
    odd |= st.text("0193.e+-_naiZ", max_size=3)
    stamps = column(
        st.sampled_from(
            ["2026-11-24T06:00:00Z"] * 6
            + ["2026-11-25T07:00:00+01:00", "2026-11-31T06:00:00Z", "x", "a\tb", "a\x1cb"]
            + ["\u2028", "２０２６-11-24T06:00:00Z"]
        )
        | odd
    )
    totals = column(numbers | odd)
    names = draw(st.lists(st.sampled_from(["OPEN", "CLOSED", "P1"]), unique=True, max_size=3))
    groups: dict[str, Any] = {
        name: column(numbers | st.just("_") | odd) if draw(st.integers(0, 9)) else 7
        for name in names
    }
    return {"fetched_at": stamps, "total": totals, "groups": groups}


@settings(max_examples=1000)
@given(history_columns())
@example({"fetched_at": " " + T1, "total": " 1", "groups": {"OPEN": " 2"}})
@example({"fetched_at": "2026-11-24T06:00:00Z\x1f2026-11-24T07:00:00Z", "total": "1", "groups": {}})
@example({"fetched_at": "2026-11-24T06:00:00Z\x852026-11-24T07:00:00Z", "total": "1", "groups": {}})
@example({"fetched_at": "2026-11-24T06:00:00Z\x7f " + T1, "total": "1 2", "groups": {}})
@example({"fetched_at": T1 + " ", "total": "1 ", "groups": {}})
@example({"fetched_at": T1, "total": "\u0661", "groups": {}})
@example({"fetched_at": T1, "total": "1", "groups": {"OPEN": "\u0661"}})
@example({"fetched_at": T1, "total": "\ud800", "groups": {"OPEN": "1\ud800"}})
@example({"fetched_at": T3, "total": "1  2", "groups": {}})
@example({"fetched_at": T3, "total": "1 2 3", "groups": {"OPEN": "1  2"}})
@example({"fetched_at": T2, "total": " 1", "groups": {}})
@example({"fetched_at": T2, "total": "1 ", "groups": {}})
@example({"fetched_at": T2, "total": "1 2", "groups": {"P1": " 1"}})
@example({"fetched_at": T2, "total": "1 2", "groups": {"P1": "1 "}})
@example({"fetched_at": T2, "total": "1 2", "groups": {"OPEN": "1 _", "P1": "1_2 3"}})
@example({"fetched_at": "", "total": "", "groups": {"OPEN": ""}})
@example({"fetched_at": T1, "total": "1", "groups": {"OPEN": ""}})
def test_history_columns_are_checked_by_their_grammar(history: dict[str, Any]) -> None:
    assert valid_columns(history) == grammar_accepts(history)


def test_history_columns_as_apply_writes_them_are_valid() -> None:
    columns = History.from_entries(
        [
            {"fetched_at": "2026-11-24T06:00:00Z", "total": 97.0, "groups": {"OPEN": 40.0}},
            {"fetched_at": "2026-11-25T06:00:00Z", "total": 103.5, "groups": {"CLOSED": 12}},
        ]
    ).columns()
    assert valid_columns(columns)
    assert valid_columns({**columns, "groups": {"OPEN": "40 41", "CLOSED": "1 2"}})
    assert not valid_columns({**columns, "groups": {"OPEN": "40 41", "CLOSED": "1  2"}})
    assert not valid_columns({**columns, "groups": {"OPEN": "40", "CLOSED": "1 2 3"}})
    assert not valid_columns({**columns, "groups": {"OPEN": "40 41", "CLOSED": 12}})


# -- history: every group, and entries written when only the largest five were kept -------


def many_groups(total: float, count: int) -> dict[str, Any]:
    """A result of ``count`` groups, g0 the largest."""
    return {
        "id": "agg",
        "total": total,
        "groups": [{"group": f"g{i}", "value": [float(count - i)]} for i in range(count)],
    }


def test_history_records_every_group_a_result_returned(state_path: Path) -> None:
    first = with_result(
        None,
        address="support.by_status",
        report="support",
        title="By status",
        request={"query_filter": "", "groups": ["status"], "limit": 1000},
        fingerprint="a",
        result=many_groups(1e6, 1000),
        fetched_at="2026-11-25T06:00:00Z",
    )
    second = with_result(
        first,
        address="support.by_status",
        report="support",
        title="By status",
        request={"query_filter": "", "groups": ["status"], "limit": 1000},
        fingerprint="a",
        result=many_groups(1e6, 3),
        fetched_at="2026-11-26T06:00:00Z",
    )
    write_state(state_path, sample_state(aggregations={second.address: second}), None)
    raw = json.loads(state_path.read_text())["aggregations"]["support.by_status"]["history"]
    assert raw["complete"] == 1 and len(raw["groups"]) == 1000

    loaded = load_state(state_path)
    assert loaded is not None
    history = loaded.aggregations["support.by_status"].history
    assert isinstance(history, History)
    assert history.latest_groups() == {f"g{i}": 1000 - i for i in range(1000)}
    assert history.complete_count() == 1
    assert history.capacities(1000) == [1000] and history.latest_capacity(1000) == 1000


def test_an_old_states_history_entries_are_capped_and_new_ones_complete(
    state_path: Path,
) -> None:
    """A state written when history kept each result's largest five groups: loaded, its
    entries read as capped; a fetch adds a complete one after them; both survive a write."""
    old = {
        "fetched_at": "2026-11-24T06:00:00Z 2026-11-25T06:00:00Z",
        "total": "100 110",
        "groups": {f"g{i}": f"{20 - i} {21 - i}" for i in range(5)},
    }
    text = serialise(sample_state()).replace(
        json.dumps(sample_state().aggregations["support.by_status"].to_json()["history"],
                   sort_keys=True, separators=(",", ":")),
        json.dumps(old, sort_keys=True, separators=(",", ":")),
    )  # fmt: skip
    assert '"g0"' in text
    state_path.parent.mkdir()
    state_path.write_text(text)
    loaded = load_state(state_path)
    assert loaded is not None
    entry = loaded.aggregations["support.by_status"]
    assert entry.history.complete_count() == 0  # type: ignore[attr-defined]
    assert entry.history.capacities(14) == [5, 5]  # type: ignore[attr-defined]
    assert entry.history.latest_capacity(14) == 5  # type: ignore[attr-defined]
    assert entry.history.latest_capacity(3) == 3  # type: ignore[attr-defined]
    assert "complete" not in entry.history[-1]
    # Unchanged, it is written back as it was: no marker appears by itself.
    assert entry.to_json()["history"] == old

    fetched = with_result(
        entry,
        address=entry.address,
        report=entry.report,
        title=entry.title,
        request=entry.request,
        fingerprint=entry.fingerprint,
        result=many_groups(120.0, 8),
        fetched_at="2026-11-27T06:00:00Z",
    )
    again = with_result(
        fetched,
        address=entry.address,
        report=entry.report,
        title=entry.title,
        request=entry.request,
        fingerprint=entry.fingerprint,
        result=many_groups(130.0, 2),
        fetched_at="2026-11-28T06:00:00Z",
    )
    write_state(state_path, replace(loaded, aggregations={entry.address: again}), loaded)
    reloaded = load_state(state_path)
    assert reloaded is not None
    history = reloaded.aggregations[entry.address].history
    assert history.capacities(14) == [5, 5, 14, 14]  # type: ignore[attr-defined]
    assert [e.get("complete", False) for e in history] == [False, False, True, True]
    # The result the old state held, then the eight-group one: every group of each.
    assert history[2]["groups"] == {"P1": 9, "P2": 1} and len(history[3]["groups"]) == 8


def test_a_complete_history_entry_before_a_capped_one_is_refused() -> None:
    capped = {"fetched_at": "2026-11-25T06:00:00Z", "total": 1, "groups": {}}
    complete = {**capped, "fetched_at": "2026-11-24T06:00:00Z", "complete": True}
    with pytest.raises(ValueError, match="older than a capped one"):
        History.from_entries([complete, capped])
    assert History.from_entries([capped, complete]).complete_count() == 1


COLUMNS = {"fetched_at": T2, "total": "1 2", "groups": {"OPEN": "1 _"}}


@pytest.mark.parametrize(
    "complete",
    [0, -1, 3, True, 1.0, "1", None, [1]],
)
def test_history_complete_is_a_count_of_its_entries(complete: Any) -> None:
    assert valid_columns({**COLUMNS, "complete": 1})
    assert valid_columns({**COLUMNS, "complete": 2})
    assert not valid_columns({**COLUMNS, "complete": complete})


def test_history_columns_hold_no_unknown_key_and_no_count_without_entries() -> None:
    assert not valid_columns({**COLUMNS, "capped": 1})
    assert not valid_columns({"fetched_at": "", "total": "", "groups": {}, "complete": 1})
    assert valid_columns({"fetched_at": "", "total": "", "groups": {}})


def test_a_state_with_a_bad_history_count_is_refused_with_its_address(state_path: Path) -> None:
    raw = json.loads(serialise(sample_state()))
    raw["aggregations"]["support.by_status"]["history"]["complete"] = 3  # two entries
    state_path.parent.mkdir()
    state_path.write_text(json.dumps(raw))
    with pytest.raises(StateError, match=r"aggregations\['support.by_status'\] is malformed"):
        load_state(state_path)


# -- an unfinished apply --refresh -------------------------------------------------------


def test_an_unfinished_refresh_is_written_and_read_back(state_path: Path) -> None:
    refresh = UnfinishedRefresh("2026-11-27T08:00:00Z", ("support",))
    write_state(state_path, sample_state(unfinished_refresh=refresh), None)
    raw = json.loads(state_path.read_text())
    assert raw["unfinished_refresh"] == {
        "started_at": "2026-11-27T08:00:00Z",
        "targets": ["support"],
    }
    loaded = load_state(state_path)
    assert loaded is not None and loaded.unfinished_refresh == refresh
    # A state without one says nothing of it.
    assert "unfinished_refresh" not in serialise(sample_state())


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (None, "is not an object of started_at and targets"),
        ({"started_at": "2026-11-27T08:00:00Z"}, "is not an object of started_at and targets"),
        ({"started_at": "later", "targets": []}, "started_at 'later' is not a timestamp"),
        ({"started_at": "2026-11-27T08:00:00", "targets": []}, "started_at "),
        ({"started_at": 1, "targets": []}, "started_at 1 is not a timestamp"),
        ({"started_at": "2026-11-27T08:00:00Z", "targets": [""]}, "targets is not a list"),
        ({"started_at": "2026-11-27T08:00:00Z", "targets": "a"}, "targets is not a list"),
    ],
)
def test_a_malformed_unfinished_refresh_is_refused(
    state_path: Path, value: Any, problem: str
) -> None:
    raw = json.loads(serialise(sample_state()))
    raw["unfinished_refresh"] = value
    state_path.parent.mkdir()
    state_path.write_text(json.dumps(raw))
    with pytest.raises(StateError, match=re.escape(f"malformed: unfinished_refresh {problem}")):
        load_state(state_path)


def test_a_refresh_started_over_an_unfinished_one_covers_both() -> None:
    earlier = UnfinishedRefresh("2026-11-27T08:00:00Z", ("a",))
    assert refresh_started("2026-11-27T09:00:00Z", ("b", "b"), None).targets == ("b",)
    assert refresh_started("2026-11-27T09:00:00Z", ("b",), earlier) == UnfinishedRefresh(
        "2026-11-27T09:00:00Z", ("a", "b")
    )
    assert refresh_started("2026-11-27T09:00:00Z", (), earlier).targets == ()
    everything = UnfinishedRefresh("2026-11-27T08:00:00Z")
    assert refresh_started("2026-11-27T09:00:00Z", ("b",), everything).targets == ()


def test_an_unfinished_refresh_is_left_while_a_result_it_covers_is_older() -> None:
    refresh = UnfinishedRefresh("2026-11-27T08:00:00Z", ("support.by_service",))
    old = aggregation('support.by_service["billing"]', fetched_at="2026-11-27T07:59:59Z")
    new = replace(old, fetched_at="2026-11-27T08:00:00Z")
    other = aggregation("other.x", fetched_at="2026-11-01T00:00:00Z")
    assert refresh.left({old.address: old, other.address: other}) == refresh
    assert refresh.left({new.address: new, other.address: other}) is None
    assert refresh.due(old.address, old.report, old.fetched_at)
    assert not refresh.due(other.address, other.report, other.fetched_at)


@settings(max_examples=300)
@given(
    st.lists(
        st.dictionaries(st.sampled_from(["A", "B", "C", "D"]), st.integers(0, 9), max_size=4),
        max_size=8,
    ),
    st.integers(0, 8),
    st.integers(1, 6),
)
def test_appending_to_history_equals_building_it_from_its_entries(
    groups: list[dict[str, int]], capped: int, limit: int
) -> None:
    """``appended`` extends the stored columns; the result is what ``from_entries`` builds
    from the entries kept, old capped entries included."""
    entries = [
        {"fetched_at": f"2026-11-{1 + i:02d}T00:00:00Z", "total": 10 + i, "groups": g}
        | ({} if i < capped else {"complete": True})
        for i, g in enumerate(groups)
    ]
    history = History(History.from_entries(entries[:-1]).columns()) if entries else History()
    if not entries:
        return
    appended = history.appended({**entries[-1], "complete": True}, limit)
    expected = History.from_entries([*entries[:-1], {**entries[-1], "complete": True}][-limit:])
    assert appended.columns() == expected.columns()
    assert list(appended) == list(expected)
