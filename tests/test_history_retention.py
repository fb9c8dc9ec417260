"""History retention (``history`` in casereport.toml): by run count, by duration, and
what apply keeps with it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from apply_workspace import EPOCH, Workspace
from casereport.emulator.server import RunningEmulator
from casereport.settings import DEFAULT_HISTORY, MAX_HISTORY_RUNS, Retention, parse_history
from casereport.state.history import HISTORY_LIMIT, History, epoch
from casereport.state.model import AggregationState, with_result

START = datetime(2026, 9, 1, 6, 0, tzinfo=UTC)


def stamp(day: float) -> str:
    return (START + timedelta(days=day)).strftime("%Y-%m-%dT%H:%M:%SZ")


def fetch(previous: AggregationState | None, day: float, retention: Retention) -> AggregationState:
    total = int(day * 10)
    return with_result(
        previous,
        address="support.by_status",
        report="support",
        title="By status",
        request={"query_filter": "", "groups": ["status"], "limit": 3},
        fingerprint="a",
        result={"total": total, "groups": [{"group": "OPEN", "value": [total]}]},
        fetched_at=stamp(day),
        retention=retention,
    )


def runs(days: list[float], retention: Retention) -> AggregationState:
    entry: AggregationState | None = None
    for day in days:
        entry = fetch(entry, day, retention)
    assert entry is not None
    return entry


def kept_days(entry: AggregationState) -> list[str]:
    return [h["fetched_at"] for h in entry.history]


def test_the_default_keeps_thirty_runs_as_before() -> None:
    assert DEFAULT_HISTORY.runs == HISTORY_LIMIT == 30 and DEFAULT_HISTORY.seconds is None
    entry = runs([float(d) for d in range(45)], DEFAULT_HISTORY)
    assert kept_days(entry) == [stamp(d) for d in range(14, 44)]


def test_a_run_count_keeps_that_many_earlier_results() -> None:
    entry = runs([float(d) for d in range(100)], parse_history(60))
    assert kept_days(entry) == [stamp(d) for d in range(39, 99)]
    assert entry.result["total"] == 990
    one = runs([0.0, 1.0, 2.0], parse_history(1))
    assert kept_days(one) == [stamp(1)]


def test_a_duration_keeps_what_was_fetched_within_it_before_the_newest_result() -> None:
    # Daily runs for 120 days, history = "90d": the newest result is day 119, so the
    # earlier results of days 29 to 118 stay (day 29 is exactly 90 days before).
    entry = runs([float(d) for d in range(120)], parse_history("90d"))
    assert kept_days(entry) == [stamp(d) for d in range(29, 119)]
    assert len(entry.history) == 90


def test_a_duration_drops_old_results_once_newer_ones_arrive() -> None:
    retention = parse_history("14d")
    entry = runs([0.0, 7.0, 14.0], retention)
    assert kept_days(entry) == [stamp(0), stamp(7)]  # day 0 is exactly 14 days before
    later = fetch(entry, 15.0, retention)
    assert kept_days(later) == [stamp(7), stamp(14)]  # day 0 is now 15 days before: gone
    much_later = fetch(later, 40.0, retention)
    # Everything is older than 14 days, but the run just before is always kept: the page
    # still shows a change since the previous run.
    assert kept_days(much_later) == [stamp(15)]


def test_a_duration_never_keeps_more_than_the_hard_cap() -> None:
    # Hourly runs for 50 days with history = "90d": 1,200 results within 90 days, 1,000 kept.
    retention = parse_history("90d")
    assert retention.runs == MAX_HISTORY_RUNS == 1000
    entry: Any = None
    for hour in range(1201):
        entry = fetch(entry, hour / 24, retention)
    assert len(entry.history) == MAX_HISTORY_RUNS
    assert entry.history[0]["fetched_at"] == stamp(200 / 24)


def test_appending_with_since_drops_only_the_oldest_results_before_it() -> None:
    entries = [
        {"fetched_at": stamp(d), "total": d, "groups": {"A": d} if d % 2 else {"B": d}}
        for d in range(6)
    ]
    history = History.from_entries([{**e, "complete": True} for e in entries[:-1]])
    newest = {**entries[-1], "complete": True}
    appended = history.appended(newest, 30, since=epoch(stamp(2.5)))
    expected = History.from_entries([{**e, "complete": True} for e in entries[3:]])
    assert appended.columns() == expected.columns()
    # A column left with nothing but gaps goes, as when a run count drops entries.
    assert set(appended.columns()["groups"]) == {"A", "B"}
    only_newest = history.appended(newest, 30, since=epoch(stamp(100)))
    assert [e["fetched_at"] for e in only_newest] == [stamp(5)]
    assert list(only_newest.columns()["groups"]) == ["A"]


@pytest.mark.parametrize("limit", [1, 3, 30])
def test_since_and_a_run_count_together_keep_the_stricter(limit: int) -> None:
    history = History.from_entries(
        [{"fetched_at": stamp(d), "total": d, "groups": {}, "complete": True} for d in range(10)]
    )
    newest = {"fetched_at": stamp(10), "total": 10, "groups": {}, "complete": True}
    kept = history.appended(newest, limit, since=epoch(stamp(6)))
    assert [e["total"] for e in kept] == list(range(max(6, 11 - limit), 11))


# -- apply keeps what casereport.toml says -----------------------------------------------

DAY = 86_400


def at(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def ws(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: Callable[..., RunningEmulator]
) -> Workspace:
    monkeypatch.chdir(tmp_path)
    return Workspace(tmp_path, emulator())


@pytest.mark.parametrize(
    ("setting", "kept"),
    [
        ("history = 3", [1, 2, 3]),  # the newest 3 earlier results of days 0 to 3
        ('history = "2d"', [2, 3]),  # fetched within 2 days before day 4's result
    ],
)
def test_apply_keeps_the_history_casereport_toml_asks_for(
    ws: Workspace, setting: str, kept: list[int]
) -> None:
    (ws.root / "casereport.toml").write_text(f"{setting}\n")
    for day in range(5):  # daily applies: every result is stale (refresh: 6h)
        ws.epoch = EPOCH + day * DAY
        ws.apply()
    entry = ws.state().aggregations["support-backlog.by_status"]
    assert entry.fetched_at == at(EPOCH + 4 * DAY)
    assert [h["fetched_at"] for h in entry.history] == [at(EPOCH + d * DAY) for d in kept]


def test_a_bad_history_setting_stops_apply_before_anything_changes(ws: Workspace) -> None:
    (ws.root / "casereport.toml").write_text('\nhistory = "forever"\n')
    result = ws.run("apply", "--auto-approve")
    assert result.exit_code == 1
    assert result.output == (
        'Error: casereport.toml:2:1: error: "history" duration "forever" is not valid: use a '
        'whole number and a unit s, m, h, d or w (e.g. history = "90d"), or a number of runs '
        "(history = 60)\n"
    )
    assert not ws.state_path.exists()
