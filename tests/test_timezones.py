"""Times are written and read in UTC whatever the machine's zone (``TZ``): each test runs
under zones either side of UTC, one of them a half hour off, and the process's zone is
restored after it. (.ci/run also runs the time-sensitive modules under a non-UTC TZ.)"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from casereport import clock
from casereport.engine.plan import NOOP, REFRESH, format_timestamp, parse_timestamp
from casereport.state.history import epoch
from casereport.state.refresh import UnfinishedRefresh
from casereport.state.remote_lock import age
from test_plan import BACKLOG, NOW, actions, applied, plan_for

ZONES = ["America/New_York", "Asia/Kolkata", "Pacific/Chatham"]


@pytest.fixture(params=ZONES)
def zone(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    assert time.timezone != 0 or time.altzone != 0, f"{request.param} is not known here"
    yield request.param
    monkeypatch.undo()
    time.tzset()


def test_a_time_is_written_in_utc_whatever_its_zone(zone: str) -> None:
    kolkata = timezone(timedelta(hours=5, minutes=30))
    assert format_timestamp(datetime(2026, 11, 27, 0, 30, tzinfo=kolkata)) == (
        "2026-11-26T19:00:00Z"
    )
    new_york = timezone(timedelta(hours=-5))
    assert format_timestamp(datetime(2026, 11, 26, 14, 0, tzinfo=new_york)) == (
        "2026-11-26T19:00:00Z"
    )
    with clock.pinned(datetime(2026, 11, 27, 0, 30, tzinfo=kolkata)):
        assert format_timestamp(clock.now()) == "2026-11-26T19:00:00Z"


def test_source_date_epoch_is_read_in_utc(zone: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1795719600")
    assert format_timestamp(clock.now()) == "2026-11-26T19:00:00Z"


@pytest.mark.parametrize(
    "stamp", ["2026-11-26T19:00:00Z", "2026-11-26T19:00:00", "2026-11-26T19:00:00+00:00"]
)
def test_a_stored_time_without_a_zone_is_read_as_utc(zone: str, stamp: str) -> None:
    expected = datetime(2026, 11, 26, 19, tzinfo=UTC)
    assert parse_timestamp(stamp) == expected
    assert epoch(stamp) == expected.timestamp()
    assert age(stamp, now=expected + timedelta(minutes=12)) == "12 min"


def test_a_refresh_is_planned_by_a_stored_times_age_in_utc(zone: str, tmp_path: Path) -> None:
    """``refresh: 6h`` at 12:00 UTC: a result of 06:30 is fresh, one of 05:30 is stale, with
    or without a zone in the stored time (read in Kolkata's zone, 06:30 would be stale)."""
    site = tmp_path / "site"
    state = applied([BACKLOG], site)
    for stamp, action in [
        ("2026-11-26T06:30:00", NOOP),
        ("2026-11-26T06:30:00Z", NOOP),
        ("2026-11-26T05:30:00", REFRESH),
    ]:
        aged = replace(
            state,
            aggregations={
                address: replace(entry, fetched_at=stamp)
                for address, entry in state.aggregations.items()
            },
        )
        plan = plan_for([BACKLOG], aged, site, now=NOW)
        assert set(actions(plan).values()) == {action}, stamp


def test_an_unfinished_refresh_compares_a_stored_time_without_a_zone_as_utc(zone: str) -> None:
    # A hand-edited fetched_at without a zone, against the refresh's own (with one): read
    # as UTC like every stored time, not refused by Python for mixing naive and aware.
    refresh = UnfinishedRefresh("2026-11-27T08:00:00Z")
    assert refresh.due("a.b", "a", "2026-11-27T07:59:59")
    assert not refresh.due("a.b", "a", "2026-11-27T08:00:00")
    fetched = SimpleNamespace(report="a", fetched_at="2026-11-27T09:00:00")
    assert refresh.left({"a.b": fetched}) is None
