"""Operator commands on state (``casereport.state.ops``) called as the command line calls them.

Found by mutation testing (docs/mutation.md): the destination named in ``state mv``'s
refusal, ``state mv`` and ``state rm`` failing at once on a held lock unless told to wait,
``state mv`` holding it under its own name, a moved key with a dot in it, and
the exact text of ``show``, ``show --json`` and ``state show``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from casereport.errors import LockError, StateError
from casereport.state import lock
from casereport.state.lock import state_lock
from casereport.state.model import load_state, write_state
from casereport.state.ops import describe_state, move, remove, show_address, state_json
from test_lock import FakeTime, holders_when_state_is_read, never_sleep
from test_state import aggregation, sample_state


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    path = tmp_path / ".casereport" / "state.json"
    write_state(path, sample_state(), None)
    return path


def test_mv_to_a_destination_that_is_no_address_names_the_destination(state_path: Path) -> None:
    before = state_path.read_bytes()

    with pytest.raises(StateError) as caught:
        move(state_path, "support.by_status", "Support Status")

    assert caught.value.message == (
        "destination 'Support Status' is not a report or an address "
        '(report, report.aggregation or report.aggregation["key"])'
    )
    assert state_path.read_bytes() == before


LOCKED_OPERATIONS = {
    "state mv": lambda path, **wait: move(path, "support.by_status", "support.by_state", **wait),
    "state rm": lambda path, **wait: remove(path, ("support.by_status",), **wait),
}


@pytest.mark.parametrize("operation", sorted(LOCKED_OPERATIONS))
def test_a_state_command_fails_at_once_when_another_run_holds_the_lock(
    state_path: Path, monkeypatch: pytest.MonkeyPatch, operation: str
) -> None:
    monkeypatch.setattr(lock, "time", FakeTime(never_sleep))
    with state_lock(state_path, "apply"), pytest.raises(LockError) as caught:
        LOCKED_OPERATIONS[operation](state_path)

    assert caught.value.message.startswith(f"the state {state_path} is locked by ID ")


@pytest.mark.parametrize("operation", sorted(LOCKED_OPERATIONS))
def test_a_state_command_waits_for_the_lock_as_long_as_lock_timeout_says(
    state_path: Path, monkeypatch: pytest.MonkeyPatch, operation: str
) -> None:
    clock = FakeTime()
    monkeypatch.setattr(lock, "time", clock)
    with state_lock(state_path, "apply"), pytest.raises(LockError) as caught:
        LOCKED_OPERATIONS[operation](state_path, lock_timeout=2.5)

    assert clock.now - lock._POLL_SECONDS < 2.5 <= clock.now
    assert caught.value.message.startswith(
        f"the state {state_path} is locked after waiting 2.5 s by ID "
    )


def test_mv_holds_the_lock_as_state_mv(state_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Another run blocked meanwhile names the holder by this operation.
    held = holders_when_state_is_read(monkeypatch)
    assert move(state_path, "support.by_status", "support.by_state") == [
        ("support.by_status", "support.by_state")
    ]

    assert held == ["state mv"]
    moved = load_state(state_path)
    assert moved is not None and "support.by_state" in moved.aggregations


def test_show_json_is_indented_sorted_and_keeps_non_ascii(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    title = "Fälle nach Status"
    write_state(path, sample_state(aggregations={"r.a": aggregation("r.a", title=title)}), None)

    text = state_json(path, "1.2.3")

    assert text.startswith(
        '{\n  "casereport_version": "1.2.3",\n  "format_version": 1,\n  "state": {\n'
    )
    assert text.endswith(f'\n  "state_path": {json.dumps(str(path))}\n}}\n')
    assert f'"title": "{title}"' in text
    document = json.loads(text)
    assert document["state"]["aggregations"]["r.a"]["title"] == title


def test_mv_to_a_key_with_a_dot_keeps_the_entry_in_its_report(state_path: Path) -> None:
    destination = 'support.by_version["v1.2"]'

    assert move(state_path, "support.by_status", destination) == [
        ("support.by_status", destination)
    ]

    moved = load_state(state_path)
    assert moved is not None
    assert moved.aggregations[destination].report == "support"


def test_show_of_a_state_without_source_or_reports_says_so(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    entry = aggregation(
        "r.a", 1234.0, history=({"fetched_at": "2026-11-25T19:00:00Z", "total": 1, "groups": {}},)
    )
    write_state(path, sample_state(source=None, aggregations={"r.a": entry}, reports={}), None)

    assert describe_state(path).splitlines() == [
        f"State {path}: serial 1, lineage 5d0f3c52-54a8-4b38-8e7e-2f2f8d3c2a10",
        "Source: none yet",
        "",
        "r.a: total 1,234, 2 groups, fetched 2026-11-26T19:00:00Z, 1 earlier result",
        "",
        "Reports: none rendered yet",
    ]


def test_state_show_prints_the_entry_indented_sorted_and_non_ascii_kept(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    entry = aggregation(
        "r.a", 3.0, title="Fälle", result={"id": "agg-3", "total": 3.0, "groups": []}
    )
    write_state(path, sample_state(aggregations={"r.a": entry}), None)

    assert show_address(path, "r.a") == "\n".join(
        [
            "{",
            '  "r.a": {',
            '    "fetched_at": "2026-11-26T19:00:00Z",',
            f'    "fingerprint": "{"f" * 64}",',
            '    "history": {',
            '      "fetched_at": "",',
            '      "groups": {},',
            '      "total": ""',
            "    },",
            '    "report": "r",',
            '    "request": {',
            '      "groups": [',
            '        "priority"',
            "      ],",
            '      "limit": 5,',
            '      "query_filter": "status:open"',
            "    },",
            '    "result": {',
            '      "groups": [],',
            '      "id": "agg-3",',
            '      "total": 3.0',
            "    },",
            '    "title": "Fälle"',
            "  }",
            "}",
        ]
    )


def test_mv_onto_a_key_already_in_state_names_that_key(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    keys = ('support.by_service["billing"]', 'support.by_team["billing"]')
    write_state(path, sample_state(aggregations={a: aggregation(a) for a in keys}), None)
    before = path.read_bytes()

    with pytest.raises(StateError) as caught:
        move(path, "support.by_service", "support.by_team")

    assert caught.value.message == (
        f"'support.by_team[\"billing\"]' is already in {path}; `casereport state rm` it first "
        "if it is to be replaced"
    )
    assert path.read_bytes() == before
