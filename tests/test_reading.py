"""The reading keys' shared rules: labels, order and which earlier run a result is compared with."""

from __future__ import annotations

import pytest

from casereport.definitions.reading import (
    Reading,
    compare_tolerance,
    display_label,
    duration_seconds,
    enum_words,
    order_key,
    split_group,
)
from casereport.state.history import History


def _sorted(values: dict[str, float], fields: tuple[str, ...], reading: Reading) -> list[str]:
    key = order_key(fields, reading)
    return sorted(values, key=lambda raw: key(raw, values[raw]))


PRIORITIES = {"P3": 40.0, "NOT_DEFINED": 50.0, "P1": 2.0, "other": 60.0, "P2": 9.0}


def test_natural_order_puts_known_enums_in_their_meaning_then_the_rest_by_count() -> None:
    assert _sorted(PRIORITIES, ("priority",), Reading()) == [
        "P1",
        "P2",
        "P3",
        "NOT_DEFINED",
        "other",
    ]
    statuses = {"CLOSED": 9.0, "OPEN": 1.0, "IN_PROGRESS": 5.0}
    assert _sorted(statuses, ("status",), Reading()) == ["OPEN", "IN_PROGRESS", "CLOSED"]
    teams = {"a": 1.0, "b": 3.0, "c": 2.0}
    assert _sorted(teams, ("team",), Reading()) == ["b", "c", "a"]


def test_count_label_and_explicit_orders() -> None:
    assert _sorted(PRIORITIES, ("priority",), Reading(order="count")) == [
        "other", "NOT_DEFINED", "P3", "P2", "P1",
    ]  # fmt: skip
    labelled = Reading(order="label", labels=(("P1", "zz"), ("other", "Aa")))
    # By display label: "Aa", "Not defined", "P2", "P3", "zz".
    assert _sorted(PRIORITIES, ("priority",), labelled) == [
        "other",
        "NOT_DEFINED",
        "P2",
        "P3",
        "P1",
    ]
    explicit = Reading(order=("P2", "other"))
    assert _sorted(PRIORITIES, ("priority",), explicit) == [
        "P2",
        "other",
        "NOT_DEFINED",
        "P3",
        "P1",
    ]


def test_natural_order_of_two_fields_goes_field_by_field() -> None:
    groups = {"CLOSED / P1": 9.0, "OPEN / P2": 1.0, "OPEN / P1": 1.0, "odd": 100.0}
    assert _sorted(groups, ("status", "priority"), Reading()) == [
        "OPEN / P1", "OPEN / P2", "CLOSED / P1", "odd",
    ]  # fmt: skip


def test_labels_and_enum_words() -> None:
    assert enum_words("IN_PROGRESS") == "In progress"
    assert enum_words("SG_CLOSED") == "Closed"
    assert enum_words("NOT_DEFINED") == "Not defined"
    assert enum_words("P1") == "P1"
    assert display_label("IN_PROGRESS", ("status",)) == "In progress"
    assert display_label("IN_PROGRESS", ("team",)) == "IN_PROGRESS"  # not a known enum there
    assert display_label("P1", ("priority",), Reading(labels=(("P1", "Critical"),))) == "Critical"
    assert display_label("OPEN / NOT_DEFINED", ("status", "priority")) == "Open / Not defined"
    assert split_group("OPEN / P1", ("status", "priority")) == ("OPEN", "P1")
    assert split_group("a / b / c", ("status", "priority")) is None


def test_durations_and_tolerance() -> None:
    assert duration_seconds("7d") == 7 * 86400
    assert duration_seconds("12h") == 12 * 3600
    assert duration_seconds("2w") == 14 * 86400
    for bad in ("7", "0d", "d", "7days", "-1d", "1.5d", "previous"):
        assert duration_seconds(bad) is None, bad
    assert Reading(compare="28d").compare_seconds == 28 * 86400
    assert Reading().compare_seconds is None
    assert compare_tolerance(7 * 86400) == 86400
    assert compare_tolerance(3600) == 3600


def _daily(days: range, hour: int = 6) -> History:
    return History.from_entries(
        {
            "fetched_at": f"2026-11-{day:02d}T{hour:02d}:00:00Z",
            "total": day,
            "groups": {"A": day, **({"B": 1} if day % 2 else {})},
            "complete": True,
        }
        for day in days
    )


def test_compared_index_previous_and_nearest_within_tolerance() -> None:
    history = _daily(range(1, 20))
    assert history.compared_index("2026-11-20T06:00:00Z", None) == 18
    index = history.compared_index("2026-11-20T06:00:00Z", 7 * 86400)
    assert index is not None and history.stamps()[index] == "2026-11-13T06:00:00Z"
    assert history.total_at(index) == 13
    assert history.groups_at(index) == {"A": 13, "B": 1}
    assert history.groups_at(index - 1) == {"A": 12}
    # A run that slipped by hours still compares; far from every run, nothing does.
    late = history.compared_index("2026-11-20T17:00:00Z", 7 * 86400)
    assert late is not None and history.stamps()[late] == "2026-11-13T06:00:00Z"
    assert history.compared_index("2026-12-20T06:00:00Z", 7 * 86400) is None
    assert History().compared_index("2026-11-20T06:00:00Z", None) is None


def test_compared_index_gap_in_a_weekday_schedule() -> None:
    # Runs on weekdays only: 7 days before a Monday is the previous Monday, present.
    weekdays = [d for d in range(2, 28) if d % 7 not in (0, 1)]
    history = History.from_entries(
        {"fetched_at": f"2026-11-{d:02d}T06:00:00Z", "total": d, "groups": {}, "complete": True}
        for d in weekdays
    )
    index = history.compared_index("2026-11-30T06:00:00Z", 7 * 86400)
    assert index is not None and history.stamps()[index] == "2026-11-23T06:00:00Z"
    # 1 day before a Monday is a Sunday: no run within 3 h 25 min of it.
    assert history.compared_index("2026-11-30T06:00:00Z", 86400) is None


@pytest.mark.parametrize("limit", [3, 10])
def test_capacity_at(limit: int) -> None:
    history = _daily(range(1, 4))
    assert history.capacity_at(0, limit) == limit
