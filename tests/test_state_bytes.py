"""The exact bytes of a written state, pinned by a golden file, and its backup where hard
links are refused."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from casereport import __version__
from casereport.state import model
from casereport.state.model import backup_path, load_state, write_state
from test_state import aggregation, sample_state

GOLDEN = Path(__file__).parent / "golden" / "state" / "state.json"
UPDATE = os.environ.get("CASEREPORT_UPDATE_GOLDEN") == "1"
# The version changes with each release; the golden file holds this in its place.
VERSION_MARK = "@TOOL_VERSION@"


def golden_state() -> model.State:
    """Whole counts (to be written without ``.0``), fractional ones, non-ASCII names and
    titles, history with a group missing from a run, and a stale ``tool_version``."""
    history = (
        {"fetched_at": "2026-11-24T19:00:00Z", "total": 8.0, "groups": {"Équipe": 7.0}},
        {"fetched_at": "2026-11-25T19:00:00Z", "total": 9.5, "groups": {"北京": 2.25}},
    )
    café = aggregation(
        "support.café",
        total=12.0,
        title="Backlog — café ☕",
        history=history,
        query_changed_at="2026-11-25T19:00:00Z",
    )
    return sample_state(
        aggregations={café.address: café, **sample_state().aggregations},
        tool_version="0.0.1",
        serial=6,
    )


def test_a_written_state_has_exactly_the_golden_bytes(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    written = write_state(path, golden_state(), None)
    data = path.read_bytes()

    assert written.tool_version == __version__
    stamp = f'"tool_version": "{__version__}"'.encode()
    assert data.count(stamp) == 1, "the current version is stamped once"
    text = data.replace(stamp, f'"tool_version": "{VERSION_MARK}"'.encode()).decode("utf-8")
    if UPDATE:
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_bytes(text.encode("utf-8"))
    assert GOLDEN.exists(), f"no golden file {GOLDEN}; create it with CASEREPORT_UPDATE_GOLDEN=1"
    assert text == GOLDEN.read_bytes().decode("utf-8"), (
        f"the written state differs from {GOLDEN}; if the change is intended, regenerate with "
        "CASEREPORT_UPDATE_GOLDEN=1 and review the diff"
    )
    # What the golden file pins, said plainly: non-ASCII kept, whole counts in history
    # without ".0", one line per aggregation.
    assert "café ☕".encode() in data and b"\\u" not in data
    assert '"groups":{"Équipe":"7 _","北京":"_ 2.25"},"total":"8 9.5"' in text
    assert len([line for line in data.splitlines() if line.startswith(b'    "support.')]) == 3
    assert load_state(path) == written


def test_the_backup_is_a_copy_where_the_file_system_has_no_hard_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    first = write_state(path, sample_state(), None)
    before = path.read_bytes()

    def no_links(source: object, target: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(model.os, "link", no_links)
    second = write_state(path, sample_state(aggregations={}), first)

    assert backup_path(path).read_bytes() == before
    assert not backup_path(path).samefile(path)
    assert json.loads(path.read_bytes())["serial"] == second.serial == first.serial + 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json", "state.json.backup"]
