"""A changed query keeps history in state but starts a new comparison and trend line.

The page says "query changed on DATE", never "first run", and never compares counts of
the new query with those of the old one (context, then a real apply against the emulator).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from apply_workspace import Workspace
from casereport.definitions.expand import AggregationSpec, fingerprint
from casereport.emulator.server import RunningEmulator
from casereport.render.context import aggregation_context
from casereport.state.model import AggregationState

Emulator = Callable[..., RunningEmulator]


def spec() -> AggregationSpec:
    return AggregationSpec(
        address="support.by_status",
        report="support",
        aggregation_id="by_status",
        key=None,
        title="By status",
        query_filter="project:SUP -status:closed",
        groups=("status",),
        limit=3,
        fingerprint=fingerprint("project:SUP -status:closed", ("status",), 3),
    )


def state(history: tuple[dict[str, object], ...], changed_at: str | None) -> AggregationState:
    agg = spec()
    return AggregationState(
        address=agg.address,
        report=agg.report,
        title=agg.title,
        request=agg.request(),
        fingerprint=agg.fingerprint,
        result={"id": "x", "total": 40.0, "groups": [{"group": "OPEN", "value": [40.0]}]},
        fetched_at="2026-12-05T07:00:00Z",
        history=history,
        query_changed_at=changed_at,
    )


BEFORE = (
    {"fetched_at": "2026-12-03T07:00:00Z", "total": 90.0, "groups": {"OPEN": 50.0}},
    {"fetched_at": "2026-12-04T07:00:00Z", "total": 95.0, "groups": {"OPEN": 55.0}},
)


def test_the_run_after_a_query_change_says_so_and_compares_nothing() -> None:
    context = aggregation_context(spec(), state=state(BEFORE, "2026-12-05T07:00:00Z"))

    assert context["change_text"] == "query changed on 5 Dec 2026: nothing to compare with yet"
    assert context["previous"] is None and context["delta"] is None
    assert [row["change"] for row in context["rows"]] == [None]
    assert context["trend"] is None  # a single point of the new query: no line yet


def test_after_a_query_change_the_trend_starts_at_the_change() -> None:
    since = {"fetched_at": "2026-12-05T07:00:00Z", "total": 38.0, "groups": {"OPEN": 38.0}}
    later = state((*BEFORE, since), "2026-12-05T07:00:00Z")
    later = AggregationState(**{**later.__dict__, "fetched_at": "2026-12-06T07:00:00Z"})

    context = aggregation_context(spec(), state=later)

    assert context["delta"] == 2.0
    assert context["change_text"].endswith("since the previous run on 5 Dec 2026, 07:00 UTC")
    assert context["trend"] is not None and context["trend"]["runs"] == 2


def test_without_a_query_change_history_is_compared_as_before() -> None:
    context = aggregation_context(spec(), state=state(BEFORE, None))
    assert context["previous"] == {"fetched_at": "2026-12-04T07:00:00Z", "total": 95.0}


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: Emulator) -> Workspace:
    monkeypatch.chdir(tmp_path)
    ws = Workspace(tmp_path, emulator())
    # Runs a day apart, compared with the run before (the example compares with a week before).
    ws.edit("support-backlog", "\ncompare: 7d", "\ncompare: previous")
    return ws


def test_an_applied_query_change_shows_on_the_pages_and_keeps_history(ws: Workspace) -> None:
    ws.apply()
    ws.epoch += 86_400
    ws.apply()  # every result stale: a second point of history
    ws.edit(
        "support-backlog",
        "query_filter: project:${var.project}\n    group_by: [status]",
        "query_filter: project:${var.project} -status:closed\n    group_by: [status]",
    )
    ws.epoch += 86_400

    ws.apply()

    entry = ws.state().aggregations["support-backlog.by_status"]
    assert len(entry.history) == 2  # both earlier results kept
    assert entry.query_changed_at == entry.fetched_at == "2027-01-17T08:00:00Z"
    page = (ws.site / "support-backlog.md").read_text(encoding="utf-8")
    assert "query changed on 17 Jan 2027: nothing to compare with yet" in page
    html = (ws.site / "support-backlog.html").read_text(encoding="utf-8")
    assert "query changed on 17 Jan 2027" in html

    ws.epoch += 86_400
    ws.apply()

    entry = ws.state().aggregations["support-backlog.by_status"]
    assert len(entry.history) == 3
    assert entry.query_changed_at == "2027-01-17T08:00:00Z"
    page = (ws.site / "support-backlog.md").read_text(encoding="utf-8")
    assert "query changed on" not in page
    assert "since the previous run on 17 Jan 2027" in page
