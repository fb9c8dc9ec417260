"""History stamps are times: a hand-edited one that is not is refused when the state loads.

Pages print them and comparisons (``compare: 7d``) compute with them, so a stamp that
does not parse used to reach a page as text or stop a render with an internal error.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from casereport.errors import StateError
from casereport.state.model import load_state
from test_state import AGG, variant

HISTORY = 'history is not {fetched_at: "...", total: "...", groups: {name: "..."}}'


def _state_with_stamps(tmp_path: Path, stamps: str) -> Path:
    path = tmp_path / "state.json"
    count = len(stamps.split(" "))
    columns = {"fetched_at": stamps, "total": " ".join(["3"] * count), "groups": {}}
    path.write_text(variant(f"{AGG}/history", columns), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "stamps",
    [
        "notatime",
        "2026-11-24T19:00:00Z notatime",
        "2026-13-01T00:00:00Z",  # no 13th month
        "2026-11-31T00:00:00Z",  # no 31 November
        "2026-11-24T25:00:00Z",
        "2026-11-24T19:00:00Z\t2026-11-25T19:00:00Z",
        "２０２６-11-24T19:00:00Z",  # digits, but not ASCII ones
    ],
)
def test_a_history_stamp_that_is_not_a_time_is_refused_naming_the_address(
    tmp_path: Path, stamps: str
) -> None:
    path = _state_with_stamps(tmp_path, stamps)

    with pytest.raises(StateError) as caught:
        load_state(path)

    assert caught.value.message.startswith(
        f"{path}: aggregations['support.by_status'] is malformed: {HISTORY}; "
    )


@pytest.mark.parametrize(
    "stamps",
    [
        "2026-11-24T19:00:00Z 2026-11-25T19:00:00Z",
        "2026-11-24T19:00:00+01:00",  # an offset, as a result's own fetched_at may have
        "2026-11-24T19:00:00",  # no zone: UTC (casereport.clock.parse)
    ],
)
def test_history_stamps_that_are_times_load(tmp_path: Path, stamps: str) -> None:
    state = load_state(_state_with_stamps(tmp_path, stamps))

    assert state is not None
    assert state.aggregations["support.by_status"].history.stamps() == stamps.split(" ")
