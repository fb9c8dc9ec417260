"""The synthetic cases over simulated time (emulator.evolution): reproducible by seed and
moment, consistent between moments, and telling the story the demo shows."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest

from casereport import clock
from casereport.definitions.query import parse
from casereport.emulator.config import EmulatorConfig
from casereport.emulator.datafiles import export_cases
from casereport.emulator.server import build_store
from casereport.emulator.store import CaseStore
from casereport.emulator.synthetic import REFERENCE_TIME, synthetic_cases

MONDAY = REFERENCE_TIME + timedelta(hours=9)  # the demo's first run
STATUS_ORDER = {"OPEN": 0, "IN_PROGRESS": 1, "CLOSED": 2}


def export(store: CaseStore) -> str:
    out = io.StringIO()
    export_cases(store, out, ndjson=True)
    return out.getvalue()


def total(store: CaseStore, query: str) -> int:
    return store.aggregate(parse(query), ["status"], 3).total


def test_the_same_seed_and_moment_give_the_same_cases() -> None:
    moment = MONDAY + timedelta(days=17, hours=5)
    first = synthetic_cases(800, 4, moment)
    second = synthetic_cases(800, 4, moment)
    assert export(first) == export(second)
    assert first.aggregate(parse("-status:closed"), ["priority", "status"], 20) == (
        second.aggregate(parse("-status:closed"), ["priority", "status"], 20)
    )


def test_other_seeds_and_moments_give_other_cases() -> None:
    moment = MONDAY + timedelta(days=10)
    base = export(synthetic_cases(800, 4, moment))
    assert export(synthetic_cases(800, 5, moment)) != base
    assert export(synthetic_cases(800, 4, moment + timedelta(days=3))) != base
    # ... and the evolving set is not the fixed snapshot.
    assert export(synthetic_cases(800, 4, REFERENCE_TIME)) != export(synthetic_cases(800, 4))


def test_without_a_clock_the_snapshot_is_unchanged() -> None:
    assert export(synthetic_cases(300, 5, None)) == export(synthetic_cases(300, 5))
    assert build_store(EmulatorConfig(cases=300, seed=5)).aggregate(
        parse(""), ["status"], 3
    ) == synthetic_cases(300, 5).aggregate(parse(""), ["status"], 3)


def test_two_moments_of_one_world_agree_on_the_past() -> None:
    early = synthetic_cases(2000, 7, MONDAY)
    late = synthetic_cases(2000, 7, MONDAY + timedelta(weeks=4))
    assert 0 < len(early) < len(late) <= 2000
    for index in range(0, len(early), 7):
        before, after = early.case(index), late.case(index)
        assert before["id"] == after["id"]
        for name in ("key", "title", "created_at", "creation_source"):
            assert before["attributes"][name] == after["attributes"][name]
        # Cases only move forward: OPEN -> IN_PROGRESS -> CLOSED.
        then, now = before["attributes"]["status"], after["attributes"]["status"]
        assert STATUS_ORDER[then] <= STATUS_ORDER[now]
        assert after["attributes"]["modified_at"] >= before["attributes"]["modified_at"]
        if then == "CLOSED":
            assert after["attributes"]["closed_at"] == before["attributes"]["closed_at"]


def test_only_cases_created_by_the_moment_exist() -> None:
    assert len(synthetic_cases(500, 1, REFERENCE_TIME - timedelta(days=400))) == 0
    assert len(synthetic_cases(500, 1, REFERENCE_TIME + timedelta(days=400))) == 500
    moment = MONDAY + timedelta(days=20)
    store = synthetic_cases(1500, 2, moment)
    stamp = f"{moment:%Y-%m-%dT%H:%M:%S}"
    cases = list(store.cases())
    assert all(case["attributes"]["created_at"] <= stamp for case in cases)
    assert all(case["attributes"]["modified_at"] <= stamp for case in cases)
    closed = [case for case in cases if case["attributes"]["status"] == "CLOSED"]
    assert closed and all(case["attributes"]["closed_at"] <= stamp for case in closed)
    still_open = [case for case in cases if case["attributes"]["status"] != "CLOSED"]
    assert still_open and all(case["attributes"]["closed_at"] is None for case in still_open)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_backlog_grows_then_shrinks_and_p1_spikes_one_week(seed: int) -> None:
    def at(days: float) -> CaseStore:
        return synthetic_cases(5000, seed, MONDAY + timedelta(days=days))

    backlog = {day: total(at(day), "-status:closed") for day in (0, 21, 42)}
    assert backlog[21] > backlog[0] * 1.05  # the June surge
    assert backlog[42] < backlog[21] * 0.8  # the July clean-up
    p1 = {day: total(at(day), "-status:closed priority:P1") for day in (21, 24, 31)}
    assert p1[24] > 1.5 * p1[21]  # the incident's burst (Thursday 25 June)
    assert p1[31] < p1[24] / 1.5  # closed within the week
    # Cases are triaged: fewer unprioritised cases than at creation.
    store = at(42)
    assert total(store, "priority:NOT_DEFINED") < 0.08 * len(store)


def test_the_emulator_config_names_the_simulated_moment() -> None:
    moment = datetime(2026, 6, 25, 9, 0, tzinfo=UTC)
    config = EmulatorConfig(cases=100, seed=3, now=moment)
    assert config.describe_data() == (
        "synthetic cases over simulated time (seed 3), as of 2026-06-25 09:00 UTC"
    )
    assert export(build_store(config)) == export(synthetic_cases(100, 3, moment))


def test_a_pinned_clock_wins_for_its_block_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    moment = datetime(2026, 6, 25, 9, 0, 30, 999, tzinfo=UTC)
    with clock.pinned(moment):
        assert clock.now() == moment.replace(microsecond=0)
    assert clock.now() == datetime.fromtimestamp(1700000000, UTC)


def test_emulator_export_now_writes_the_set_of_that_moment() -> None:
    from click.testing import CliRunner

    from casereport.cli import cli

    def run(*args: str) -> str:
        result = CliRunner().invoke(cli, ["emulator", "export", "--cases", "200", *args])
        assert result.exit_code == 0, result.output
        return result.output

    moment = datetime(2026, 6, 25, 9, 0, tzinfo=UTC)
    at = run("--now", "2026-06-25T09:00Z", "--ndjson")
    assert at == export(synthetic_cases(200, 1, moment))
    assert run("--now", "2026-06-25T09:00", "--ndjson") == at  # naive means UTC
    assert run("--ndjson") == export(synthetic_cases(200, 1))
    wrong = CliRunner().invoke(cli, ["emulator", "export", "--now", "yesterday"])
    assert wrong.exit_code == 2
    assert wrong.output.endswith(
        "Error: Invalid value for '--now': 'yesterday' is not a date and time like "
        "2026-06-25T09:00Z\n"
    )
