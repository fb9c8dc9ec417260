"""The planner: every action and reason, the summary's counting, targets, the JSON model.

Reports and states are built directly (no files to load, a fixed ``NOW``); ``applied``
builds the state an apply of some reports leaves, with their pages written in the site
directory so drift can be checked against real files.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from casereport.definitions.expand import AggregationSpec, ReportSpec, address, fingerprint
from casereport.engine.plan import (
    CREATE,
    DELETE,
    INDEX_NAME,
    NOOP,
    REFRESH,
    RENDER,
    REPLACE,
    UPDATE,
    AggregationChange,
    FieldChange,
    Plan,
    PlanCounts,
    ReportChange,
    format_age,
    format_timestamp,
    inputs_hash,
    make_plan,
    render_plan,
)
from casereport.settings import parse_refresh
from casereport.site import INDEX_FILES, output_names
from casereport.state.model import AggregationState, ReportState, Source, State, data_hash
from casereport.state.refresh import UnfinishedRefresh

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
FETCHED = NOW - timedelta(minutes=10)
EMULATOR = Source("emulator", "emulator", "5000 synthetic cases (seed 1)")
US1 = Source("datadog", "datadoghq.com")
EU1 = Source("datadog", "datadoghq.eu")
PROXY = Source("datadog", "https://dd-proxy.example.com")
TEMPLATES = {"report": "template-v1"}


# -- building reports and states --------------------------------------------------------


def outputs(report: str, *suffixes: str) -> tuple[str, ...]:
    """A report's output files: these pages and, always, its data files (.csv, .json)."""
    return tuple(sorted(f"{report}.{suffix}" for suffix in (*suffixes, "csv", "json")))


def agg(
    report: str,
    aggregation_id: str,
    query: str,
    groups: Sequence[str] = ("status",),
    limit: int = 5,
    *,
    key: str | None = None,
    title: str | None = None,
) -> AggregationSpec:
    return AggregationSpec(
        address=address(report, aggregation_id, key),
        report=report,
        aggregation_id=aggregation_id,
        key=key,
        title=title or f"{aggregation_id} {key or ''}".strip(),
        query_filter=query,
        groups=tuple(groups),
        limit=limit,
        fingerprint=fingerprint(query, tuple(groups), limit),
    )


def report(
    name: str,
    *aggregations: AggregationSpec,
    refresh: str = "1h",
    formats: Sequence[str] = ("markdown", "html"),
    title: str | None = None,
) -> ReportSpec:
    """A report whose definition hash covers what expand's does (title, formats, requests)."""
    title = title or name.title()
    record = [
        name,
        title,
        list(formats),
        [[a.address, a.title, a.fingerprint] for a in aggregations],
    ]
    return ReportSpec(
        name=name,
        path=Path(f"reports/{name}.yaml"),
        title=title,
        description=None,
        owner=None,
        refresh=parse_refresh(refresh),
        formats=tuple(formats),
        template="report",
        aggregations=aggregations,
        definition_hash=hashlib.sha256(json.dumps(record).encode()).hexdigest(),
    )


BY_STATUS = agg("backlog", "by_status", "project:SUP")
BY_PRIORITY = agg("backlog", "by_priority", "project:SUP -status:closed", ("priority",), 6)
BACKLOG = report("backlog", BY_STATUS, BY_PRIORITY, refresh="6h")
BILLING = agg("health", "open", "service:billing status:open", ("priority",), 6, key="billing")
CHECKOUT = agg("health", "open", "service:checkout status:open", ("priority",), 6, key="checkout")
HEALTH = report("health", BILLING, CHECKOUT, refresh="1h")


def result_for(spec: AggregationSpec, total: float = 10.0) -> dict[str, Any]:
    return {
        "id": f"agg-{spec.aggregation_id}",
        "total": total,
        "groups": [{"group": "open", "value": [total]}],
    }


def write_page(site_dir: Path, name: str, text: str) -> str:
    (site_dir / name).write_text(text, encoding="utf-8")
    return hashlib.sha256(text.encode()).hexdigest()


def applied(
    reports: Sequence[ReportSpec],
    site_dir: Path,
    *,
    source: Source = EMULATOR,
    fetched_at: datetime = FETCHED,
    templates: dict[str, str] = TEMPLATES,
) -> State:
    """The state an apply of ``reports`` leaves, with its pages and the index in ``site_dir``."""
    aggregations = {
        spec.address: AggregationState(
            address=spec.address,
            report=spec.report,
            title=spec.title,
            request=spec.request(),
            fingerprint=spec.fingerprint,
            result=result_for(spec),
            fetched_at=format_timestamp(fetched_at),
        )
        for r in reports
        for spec in r.aggregations
    }
    site_dir.mkdir(parents=True, exist_ok=True)
    report_states = {
        r.name: ReportState(
            name=r.name,
            definition_hash=r.definition_hash,
            template_hash=templates[r.template],
            data_hash=data_hash([a.address for a in r.aggregations], aggregations, source),
            outputs={
                name: write_page(site_dir, name, f"{name}\n")
                for name in output_names(r.name, r.formats)
            },
        )
        for r in reports
    }
    index = {name: write_page(site_dir, name, f"{name}\n") for name in INDEX_FILES}
    return State(
        lineage="3f0c8a4e-lineage",
        serial=7,
        source=source,
        aggregations=aggregations,
        reports=report_states,
        site_outputs=index,
    )


def plan_for(
    reports: Sequence[ReportSpec],
    state: State | None,
    site_dir: Path,
    *,
    source: Source = EMULATOR,
    templates: dict[str, str] = TEMPLATES,
    now: datetime = NOW,
    targets: Sequence[str] = (),
    refresh_all: bool = False,
) -> Plan:
    return make_plan(
        reports,
        state,
        source=source,
        site_dir=site_dir,
        template_hashes=templates,
        now=now,
        targets=targets,
        refresh_all=refresh_all,
    )


def actions(plan: Plan) -> dict[str, str]:
    return {c.address: c.action for c in plan.aggregations}


def report_reasons(plan: Plan) -> dict[str, tuple[str, tuple[str, ...]]]:
    return {r.name: (r.action, r.reasons) for r in (*plan.reports, plan.index)}


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return tmp_path / "site"


# -- create and no-op --------------------------------------------------------------------


def test_a_first_plan_creates_every_aggregation_and_page(site: Path) -> None:
    plan = plan_for([HEALTH, BACKLOG], None, site)

    assert actions(plan) == {
        "backlog.by_priority": CREATE,
        "backlog.by_status": CREATE,
        'health.open["billing"]': CREATE,
        'health.open["checkout"]': CREATE,
    }
    assert plan.aggregations[1] == AggregationChange(
        address="backlog.by_status",
        report="backlog",
        action=CREATE,
        reason="new aggregation",
        title="by_status",
        request={"query_filter": "project:SUP", "groups": ["status"], "limit": 5},
        fingerprint=BY_STATUS.fingerprint,
    )
    assert plan.reports == (
        ReportChange(
            "backlog", RENDER, ("new report",), outputs("backlog", "html", "md"), new=True
        ),
        ReportChange("health", RENDER, ("new report",), outputs("health", "html", "md"), new=True),
    )
    assert plan.index == ReportChange(
        "index", RENDER, ("reports changed", "new site index"), INDEX_FILES, new=True
    )
    assert (plan.state_lineage, plan.state_serial, plan.previous_source) == (None, None, None)
    assert plan.created_at == "2026-11-26T12:00:00Z"
    assert plan.summary() == (
        "Plan: 4 to fetch (4 new, 0 changed, 0 stale), 2 reports to render, 0 to delete."
    )
    assert not site.exists(), "planning writes nothing, not even the site directory"


def test_nothing_to_do_when_state_matches(site: Path) -> None:
    state = applied([BACKLOG, HEALTH], site)
    plan = plan_for([BACKLOG, HEALTH], state, site)

    assert set(actions(plan).values()) == {NOOP}
    assert {c.reason for c in plan.aggregations} == {"up to date"}
    assert plan.aggregations[0].fetched_at == "2026-11-26T11:50:00Z"
    assert report_reasons(plan) == {
        "backlog": (NOOP, ()),
        "health": (NOOP, ()),
        "index": (NOOP, ()),
    }
    assert not plan.has_changes
    assert plan.counts() == PlanCounts(0, 0, 0, 0, 0, 0, 4, 2)
    assert plan.summary() == "No changes. Reports are up to date."
    assert (plan.state_lineage, plan.state_serial) == ("3f0c8a4e-lineage", 7)


# -- update -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changed", "field"),
    [
        (
            agg("backlog", "by_status", "project:SUP status:open"),
            FieldChange("query_filter", "project:SUP", "project:SUP status:open"),
        ),
        (
            agg("backlog", "by_status", "project:SUP", ("status", "priority")),
            FieldChange("groups", ["status"], ["status", "priority"]),
        ),
        (agg("backlog", "by_status", "project:SUP", limit=7), FieldChange("limit", 5, 7)),
    ],
    ids=["query_filter", "groups", "limit"],
)
def test_a_changed_request_is_an_update_with_old_and_new(
    site: Path, changed: AggregationSpec, field: FieldChange
) -> None:
    state = applied([BACKLOG], site)
    plan = plan_for([report("backlog", changed, BY_PRIORITY, refresh="6h")], state, site)

    assert actions(plan) == {"backlog.by_priority": NOOP, "backlog.by_status": UPDATE}
    assert plan.aggregations[1] == AggregationChange(
        address="backlog.by_status",
        report="backlog",
        action=UPDATE,
        reason=f"{field.name} changed",
        title="by_status",
        request=changed.request(),
        fingerprint=changed.fingerprint,
        changes=(field,),
        fetched_at="2026-11-26T11:50:00Z",
    )
    assert report_reasons(plan)["backlog"] == (RENDER, ("definition changed", "data to fetch"))
    assert plan.summary() == (
        "Plan: 1 to fetch (0 new, 1 changed, 0 stale), 1 report to render, 0 to delete."
    )


def test_an_update_of_several_fields_lists_each(site: Path) -> None:
    state = applied([BACKLOG], site)
    changed = agg("backlog", "by_status", "project:SUP -status:closed", limit=9)
    plan = plan_for([report("backlog", changed, BY_PRIORITY, refresh="6h")], state, site)

    change = plan.aggregations[1]
    assert change.reason == "query_filter, limit changed"
    assert change.changes == (
        FieldChange("query_filter", "project:SUP", "project:SUP -status:closed"),
        FieldChange("limit", 5, 9),
    )


def test_a_fingerprint_that_no_longer_matches_its_request_is_an_update(site: Path) -> None:
    # A fingerprint edited by hand (or made by another formula) with the request as
    # defined: no field to name, but the stored result cannot be trusted to answer it.
    state = applied([BACKLOG], site)
    stored = state.aggregations["backlog.by_status"]
    state = replace(
        state,
        aggregations={
            **state.aggregations,
            "backlog.by_status": replace(stored, fingerprint="0" * 64),
        },
    )
    plan = plan_for([BACKLOG], state, site)

    change = plan.aggregations[1]
    assert (change.address, change.action) == ("backlog.by_status", UPDATE)
    assert (change.reason, change.changes) == ("request changed", ())


# -- refresh ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (timedelta(hours=5, minutes=59, seconds=59), NOOP),
        (timedelta(hours=6), REFRESH),
        (timedelta(days=3), REFRESH),
    ],
    ids=["fresh", "exactly-refresh-old", "older"],
)
def test_results_older_than_refresh_are_stale(site: Path, age: timedelta, expected: str) -> None:
    state = applied([BACKLOG], site, fetched_at=NOW - age)
    plan = plan_for([BACKLOG], state, site)

    assert set(actions(plan).values()) == {expected}
    if expected == REFRESH:
        assert {c.reason for c in plan.aggregations} == {"older than 6h"}
        assert report_reasons(plan)["backlog"] == (RENDER, ("data to fetch",))
        assert plan.summary() == (
            "Plan: 2 to fetch (0 new, 0 changed, 2 stale), 1 report to render, 0 to delete."
        )


def test_each_report_has_its_own_refresh(site: Path) -> None:
    state = applied([BACKLOG, HEALTH], site, fetched_at=NOW - timedelta(hours=2))
    plan = plan_for([BACKLOG, HEALTH], state, site)

    assert actions(plan) == {
        "backlog.by_priority": NOOP,
        "backlog.by_status": NOOP,
        'health.open["billing"]': REFRESH,
        'health.open["checkout"]': REFRESH,
    }
    assert plan.aggregations[2].reason == "older than 1h"


def test_refresh_always_refetches_on_every_plan(site: Path) -> None:
    always = report("backlog", BY_STATUS, BY_PRIORITY, refresh="always")
    state = applied([always], site, fetched_at=NOW)
    plan = plan_for([always], state, site)

    assert [(c.action, c.reason) for c in plan.aggregations] == [(REFRESH, "refresh: always")] * 2


def test_refresh_flag_makes_every_result_stale(site: Path) -> None:
    state = applied([BACKLOG, HEALTH], site, fetched_at=NOW)
    plan = plan_for([BACKLOG, HEALTH], state, site, refresh_all=True)

    assert {(c.action, c.reason) for c in plan.aggregations} == {(REFRESH, "--refresh given")}
    assert plan.refresh_all
    assert plan.summary() == (
        "Plan: 4 to fetch (0 new, 0 changed, 4 stale), 2 reports to render, 0 to delete."
    )


def test_an_unfinished_refresh_makes_what_it_did_not_fetch_again_stale(site: Path) -> None:
    """An ``apply --refresh`` stopped halfway: its results fetched before it started are
    stale, however young; those it fetched, or outside its targets, are not."""
    state = applied([BACKLOG, HEALTH], site, fetched_at=FETCHED)
    started = format_timestamp(FETCHED + timedelta(minutes=1))
    done = format_timestamp(FETCHED + timedelta(minutes=2))
    aggregations = dict(state.aggregations)
    aggregations["backlog.by_status"] = replace(aggregations["backlog.by_status"], fetched_at=done)
    unfinished = replace(
        state,
        aggregations=aggregations,
        unfinished_refresh=UnfinishedRefresh(started, ("backlog", 'health.open["billing"]')),
    )

    plan = plan_for([BACKLOG, HEALTH], unfinished, site)

    reason = f"--refresh of {started} not finished"
    assert {(c.address, c.action, c.reason) for c in plan.aggregations if c.action != NOOP} == {
        ("backlog.by_priority", REFRESH, reason),
        ('health.open["billing"]', REFRESH, reason),
    }
    assert not plan_for([BACKLOG, HEALTH], state, site).has_changes  # without the record


# -- replace ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"),
    [(EMULATOR, US1), (US1, EMULATOR), (US1, EU1), (US1, PROXY)],
    ids=["emulator-to-site", "site-to-emulator", "another-site", "site-to-url"],
)
def test_a_change_of_data_source_replaces_every_aggregation(
    site: Path, before: Source, after: Source
) -> None:
    state = applied([BACKLOG, HEALTH], site, source=before, fetched_at=NOW)
    plan = plan_for([BACKLOG, HEALTH], state, site, source=after)

    assert {(c.action, c.reason, c.changes) for c in plan.aggregations} == {
        (REPLACE, "data source changed", ())
    }
    assert plan.previous_source == before
    assert plan.source == after
    assert report_reasons(plan)["backlog"] == (RENDER, ("data to fetch",))
    assert plan.summary() == (
        "Plan: 4 to fetch (0 new, 4 changed, 0 stale), 2 reports to render, 0 to delete."
    )


def test_the_same_source_with_other_details_is_not_a_replace(site: Path) -> None:
    state = applied([BACKLOG], site, source=Source("emulator", "emulator", "cases from x.json"))
    plan = plan_for([BACKLOG], state, site, source=EMULATOR)

    assert set(actions(plan).values()) == {NOOP}
    assert plan.previous_source is None


def test_a_replace_also_lists_request_changes(site: Path) -> None:
    state = applied([BACKLOG], site, source=EMULATOR)
    changed = agg("backlog", "by_status", "project:SUP", limit=4)
    plan = plan_for(
        [report("backlog", changed, BY_PRIORITY, refresh="6h")], state, site, source=US1
    )

    assert [(c.action, c.changes) for c in plan.aggregations] == [
        (REPLACE, ()),
        (REPLACE, (FieldChange("limit", 5, 4),)),
    ]


# -- delete -------------------------------------------------------------------------------


def test_a_removed_aggregation_is_deleted(site: Path) -> None:
    state = applied([BACKLOG], site)
    plan = plan_for([report("backlog", BY_STATUS, refresh="6h")], state, site)

    assert plan.aggregations == (
        AggregationChange(
            address="backlog.by_priority",
            report="backlog",
            action=DELETE,
            reason="no longer defined",
            title="by_priority",
            fetched_at="2026-11-26T11:50:00Z",
        ),
        replace(plan.aggregations[1], action=NOOP),
    )
    assert report_reasons(plan)["backlog"] == (RENDER, ("definition changed",))
    assert plan.summary() == (
        "Plan: 0 to fetch (0 new, 0 changed, 0 stale), 1 report to render, 1 to delete."
    )


def test_a_removed_report_deletes_its_aggregations_and_files(site: Path) -> None:
    state = applied([BACKLOG, HEALTH], site)
    plan = plan_for([BACKLOG], state, site)

    assert [(c.address, c.action, c.reason) for c in plan.aggregations if c.action != NOOP] == [
        ('health.open["billing"]', DELETE, "report health removed"),
        ('health.open["checkout"]', DELETE, "report health removed"),
    ]
    assert plan.reports == (
        ReportChange("backlog", NOOP, (), outputs("backlog", "html", "md")),
        ReportChange("health", DELETE, ("report removed",), outputs("health", "html", "md")),
    )
    assert report_reasons(plan)["index"] == (RENDER, ("reports changed",))
    # Two addresses leave state and one report's pages go: 3 to delete.
    assert plan.counts().to_delete == 3
    assert plan.summary() == (
        "Plan: 0 to fetch (0 new, 0 changed, 0 stale), 0 reports to render, 3 to delete."
    )


def test_a_render_plan_renders_every_defined_report_and_removes_the_others(site: Path) -> None:
    # What `casereport render` does: nothing compared, every defined report and the index
    # rendered again, a report gone from the definitions (recorded, or forgotten by
    # `state rm`) deleted with its pages, as make_plan finds them.
    state = applied([BACKLOG, HEALTH], site)
    forgotten = {"old": {"old.html": "0" * 64}}
    state = replace(state, source=None, forgotten_pages=forgotten)
    plan = render_plan([BACKLOG], state, now=NOW)

    assert plan.reports == (
        ReportChange("backlog", RENDER, ("render requested",), outputs("backlog", "html", "md")),
        ReportChange("health", DELETE, ("report removed",), outputs("health", "html", "md")),
        ReportChange("old", DELETE, ("left in state by `state rm` or `state mv`",), ("old.html",)),
    )
    assert plan.index == ReportChange(INDEX_NAME, RENDER, ("render requested",), INDEX_FILES)
    assert plan.aggregations == ()
    assert plan.source == Source("none", "none")  # a state from before sources were kept
    assert (plan.state_lineage, plan.state_serial) == (state.lineage, state.serial)
    # The same deletions as a plan of an apply.
    full = plan_for([BACKLOG], state, site)
    assert [r for r in plan.reports if r.action == DELETE] == [
        r for r in full.reports if r.action == DELETE
    ]


# -- report render reasons -----------------------------------------------------------------


def test_a_definition_change_without_a_request_change_renders_only(site: Path) -> None:
    state = applied([BACKLOG], site)
    retitled = report("backlog", BY_STATUS, BY_PRIORITY, refresh="6h", title="Support backlog")
    plan = plan_for([retitled], state, site)

    assert set(actions(plan).values()) == {NOOP}
    assert report_reasons(plan) == {
        "backlog": (RENDER, ("definition changed",)),
        "index": (RENDER, ("reports changed",)),
    }
    assert plan.summary() == (
        "Plan: 0 to fetch (0 new, 0 changed, 0 stale), 1 report to render, 0 to delete."
    )


def test_a_template_change_renders_every_report_using_it(site: Path) -> None:
    state = applied([BACKLOG, HEALTH], site)
    plan = plan_for([BACKLOG, HEALTH], state, site, templates={"report": "template-v2"})

    assert report_reasons(plan)["backlog"] == (RENDER, ("template changed",))
    assert report_reasons(plan)["health"] == (RENDER, ("template changed",))


def test_data_fetched_but_not_rendered_renders(site: Path) -> None:
    """An apply interrupted after fetching left results in state that no page shows."""
    state = applied([BACKLOG], site)
    newer = replace(state.aggregations["backlog.by_status"], result=result_for(BY_STATUS, 12.0))
    state = replace(state, aggregations={**state.aggregations, "backlog.by_status": newer})
    plan = plan_for([BACKLOG], state, site)

    assert set(actions(plan).values()) == {NOOP}
    assert report_reasons(plan)["backlog"] == (RENDER, ("data changed since the last render",))


def test_a_missing_output_renders(site: Path) -> None:
    state = applied([BACKLOG], site)
    (site / "backlog.md").unlink()

    assert report_reasons(plan_for([BACKLOG], state, site))["backlog"] == (
        RENDER,
        ("output backlog.md is missing",),
    )


def test_an_output_edited_by_hand_renders(site: Path) -> None:
    state = applied([BACKLOG], site)
    (site / "backlog.html").write_text("<p>fixed by hand</p>\n", encoding="utf-8")

    assert report_reasons(plan_for([BACKLOG], state, site))["backlog"] == (
        RENDER,
        ("output backlog.html was edited by hand",),
    )


def test_a_new_format_is_a_new_output(site: Path) -> None:
    state = applied(
        [report("backlog", BY_STATUS, BY_PRIORITY, refresh="6h", formats=("html",))], site
    )
    plan = plan_for([BACKLOG], state, site)

    assert report_reasons(plan)["backlog"] == (
        RENDER,
        ("definition changed", "new output backlog.md"),
    )
    assert plan.reports[0].outputs == outputs("backlog", "html", "md")


def test_reasons_accumulate_in_a_fixed_order(site: Path) -> None:
    state = applied([BACKLOG], site, fetched_at=NOW - timedelta(days=1))
    (site / "backlog.md").unlink()
    (site / "backlog.html").write_text("edited\n", encoding="utf-8")
    retitled = report("backlog", BY_STATUS, BY_PRIORITY, refresh="6h", title="Backlog, weekly")
    plan = plan_for([retitled], state, site, templates={"report": "template-v2"})

    assert report_reasons(plan)["backlog"] == (
        RENDER,
        (
            "definition changed",
            "template changed",
            "data to fetch",
            "output backlog.html was edited by hand",
            "output backlog.md is missing",
        ),
    )
    assert not plan.reports[0].new


# -- the site index ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("damage", "reason"),
    [("edit", "output index.md was edited by hand"), ("delete", "output index.md is missing")],
)
def test_an_index_drifted_alone_is_the_one_page_to_render(
    site: Path, damage: str, reason: str
) -> None:
    state = applied([BACKLOG], site)
    if damage == "edit":
        (site / "index.md").write_text("edited\n", encoding="utf-8")
    else:
        (site / "index.md").unlink()
    plan = plan_for([BACKLOG], state, site)

    assert plan.index == ReportChange("index", RENDER, (reason,), INDEX_FILES)
    assert plan.renders == ()
    assert plan.has_changes
    # The index counts when it is the only page to write, so the line never reads "0, 0, 0".
    assert plan.summary() == (
        "Plan: 0 to fetch (0 new, 0 changed, 0 stale), 1 report to render, 0 to delete."
    )


def test_the_index_is_not_counted_when_it_follows_reports(site: Path) -> None:
    state = applied([BACKLOG, HEALTH], site)
    (site / "index.html").unlink()
    plan = plan_for([BACKLOG, HEALTH], state, site, templates={"report": "template-v2"})

    assert plan.index.reasons == ("reports changed", "output index.html is missing")
    assert plan.counts().to_render == 2


def test_a_state_without_index_outputs_creates_the_index(site: Path) -> None:
    state = replace(applied([BACKLOG], site), site_outputs={})
    plan = plan_for([BACKLOG], state, site)

    assert plan.index == ReportChange("index", RENDER, ("new site index",), INDEX_FILES, new=True)


# -- --target -------------------------------------------------------------------------------


def test_target_a_report_by_name(site: Path) -> None:
    state = applied([BACKLOG, HEALTH], site)
    plan = plan_for([BACKLOG, HEALTH], state, site, targets=["health"], refresh_all=True)

    assert actions(plan) == {'health.open["billing"]': REFRESH, 'health.open["checkout"]': REFRESH}
    assert [r.name for r in plan.reports] == ["health"]
    assert plan.targets == ("health",)


def test_target_one_aggregation_address(site: Path) -> None:
    state = applied([BACKLOG, HEALTH], site)
    plan = plan_for([BACKLOG, HEALTH], state, site, targets=["backlog.by_status"], refresh_all=True)

    assert actions(plan) == {"backlog.by_status": REFRESH}
    assert report_reasons(plan)["backlog"] == (RENDER, ("data to fetch",))
    assert plan.summary() == (
        "Plan: 1 to fetch (0 new, 0 changed, 1 stale), 1 report to render, 0 to delete."
    )


def test_target_a_for_each_base_address_takes_every_key(site: Path) -> None:
    plan = plan_for([BACKLOG, HEALTH], None, site, targets=["health.open"])
    assert actions(plan) == {'health.open["billing"]': CREATE, 'health.open["checkout"]': CREATE}

    one = plan_for([BACKLOG, HEALTH], None, site, targets=['health.open["billing"]'])
    assert actions(one) == {'health.open["billing"]': CREATE}


def test_a_target_is_an_address_not_a_prefix(site: Path) -> None:
    plan = plan_for([BACKLOG, HEALTH], None, site, targets=["backlog.by", "health.ope", "back"])
    assert plan.aggregations == ()
    assert plan.reports == ()


def test_deletions_only_when_targeted(site: Path) -> None:
    state = applied([BACKLOG, HEALTH], site)
    shrunk = report("backlog", BY_STATUS, refresh="6h")

    elsewhere = plan_for([shrunk], state, site, targets=["backlog.by_status"])
    assert [c.action for c in elsewhere.aggregations] == [NOOP]
    assert elsewhere.deletions == ()

    by_address = plan_for([shrunk], state, site, targets=["backlog.by_priority"])
    assert [(c.address, c.action) for c in by_address.deletions] == [
        ("backlog.by_priority", DELETE)
    ]

    by_report = plan_for([shrunk], state, site, targets=["health"])
    assert [(type(d).__name__, d.action) for d in by_report.deletions] == [
        ("AggregationChange", DELETE),
        ("AggregationChange", DELETE),
        ("ReportChange", DELETE),
    ]
    # A for_each base address deletes the aggregations, but the report is not targeted.
    by_base = plan_for([shrunk], state, site, targets=["health.open"])
    assert [d.action for d in by_base.deletions] == [DELETE, DELETE]
    assert by_base.reports == ()


def test_a_target_leaves_the_index_alone_unless_a_targeted_report_changes(site: Path) -> None:
    state = applied([BACKLOG, HEALTH], site)
    (site / "index.html").write_text("edited\n", encoding="utf-8")

    quiet = plan_for([BACKLOG, HEALTH], state, site, targets=["backlog"])
    assert quiet.index.action == NOOP
    assert quiet.summary() == "No changes. Reports are up to date."

    busy = plan_for([BACKLOG, HEALTH], state, site, targets=["backlog"], refresh_all=True)
    assert busy.index.reasons == ("reports changed",)


# -- counting ------------------------------------------------------------------------------


def test_counts_with_every_action_at_once(site: Path) -> None:
    state = applied([BACKLOG, HEALTH], site, fetched_at=NOW - timedelta(hours=2))
    changed = agg("backlog", "by_status", "project:SUP", limit=3)
    extra = agg("backlog", "by_team", "project:SUP", ("team",))
    plan = plan_for([report("backlog", changed, extra, refresh="6h")], state, site)

    assert actions(plan) == {
        "backlog.by_priority": DELETE,
        "backlog.by_status": UPDATE,
        "backlog.by_team": CREATE,
        'health.open["billing"]': DELETE,
        'health.open["checkout"]': DELETE,
    }
    assert plan.counts() == PlanCounts(
        to_fetch=2,
        new=1,
        changed=1,
        stale=0,
        to_render=1,
        to_delete=4,
        unchanged_aggregations=0,
        unchanged_reports=0,
    )
    assert plan.summary() == (
        "Plan: 2 to fetch (1 new, 1 changed, 0 stale), 1 report to render, 4 to delete."
    )


def test_identical_requests_are_fetched_once(site: Path) -> None:
    twin = report("twin", agg("twin", "by_status", "project:SUP"))
    plan = plan_for([BACKLOG, twin], None, site)

    assert plan.counts().to_fetch == 3
    assert set(plan.fetch_requests) == {BY_STATUS.fingerprint, BY_PRIORITY.fingerprint}


# -- JSON model -----------------------------------------------------------------------------


def every_action_plans(site: Path) -> list[Plan]:
    state = applied([BACKLOG, HEALTH], site, fetched_at=NOW - timedelta(hours=2))
    (site / "index.md").write_text("edited\n", encoding="utf-8")
    changed = agg("backlog", "by_status", "project:SUP", ("status", "priority"), 3)
    extra = agg("backlog", "by_team", "project:SUP", ("team",))
    mixed = plan_for(
        [report("backlog", changed, extra, refresh="6h"), HEALTH, report("new", extra)],
        state,
        site,
        targets=(),
    )
    kinds = {c.action for c in mixed.aggregations} | {r.action for r in mixed.reports}
    assert kinds == {CREATE, UPDATE, REFRESH, DELETE, RENDER}
    return [
        mixed,
        plan_for([BACKLOG, HEALTH], state, site, source=PROXY, targets=["health"]),
        plan_for([BACKLOG, HEALTH], None, site),
        plan_for([BACKLOG], applied([BACKLOG], site), site),
    ]


def test_a_plan_survives_a_json_round_trip(site: Path) -> None:
    for plan in every_action_plans(site):
        assert Plan.from_json(plan.to_json()) == plan
        assert Plan.from_json(json.loads(json.dumps(plan.to_json()))) == plan


def test_reading_a_plan_refuses_what_apply_could_not_carry_out(site: Path) -> None:
    good = plan_for([BACKLOG], None, site).to_json()

    unknown = json.loads(json.dumps(good))
    unknown["aggregations"][0]["actions"] = ["destroy-everything"]
    with pytest.raises(
        ValueError, match=r"backlog.by_priority: unknown actions \['destroy-everything'\]"
    ):
        Plan.from_json(unknown)

    no_request = json.loads(json.dumps(good))
    no_request["aggregations"][0]["request"] = None
    with pytest.raises(ValueError, match=r"backlog\.by_priority: no valid request to fetch"):
        Plan.from_json(no_request)

    missing = json.loads(json.dumps(good))
    del missing["inputs_hash"]
    with pytest.raises(ValueError, match="missing field 'inputs_hash'"):
        Plan.from_json(missing)

    report_action = json.loads(json.dumps(good))
    report_action["reports"][0]["actions"] = ["render", "delete"]
    with pytest.raises(ValueError, match=r"report backlog: unknown actions"):
        Plan.from_json(report_action)


# -- inputs hash and helpers ------------------------------------------------------------------


def test_the_inputs_hash_follows_definitions_refresh_and_templates() -> None:
    base = inputs_hash([BACKLOG, HEALTH], TEMPLATES)

    assert inputs_hash([HEALTH, BACKLOG], TEMPLATES) == base
    assert inputs_hash([BACKLOG, HEALTH], {"report": "template-v2"}) != base
    assert (
        inputs_hash([report("backlog", BY_STATUS, BY_PRIORITY, refresh="1h"), HEALTH], TEMPLATES)
        != base
    )
    assert inputs_hash([report("backlog", BY_STATUS, refresh="6h"), HEALTH], TEMPLATES) != base
    assert inputs_hash([BACKLOG], TEMPLATES) != base


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "0s"),
        (45, "45s"),
        (60, "1m"),
        (719, "11m"),
        (3600, "1h"),
        (12000, "3h20m"),
        (86400, "1d"),
        (187200, "2d4h"),
    ],
)
def test_format_age(seconds: int, text: str) -> None:
    assert format_age(seconds) == text


# -- reading keys ---------------------------------------------------------------------------

READING_BEFORE = """\
title: Backlog
aggregations:
  by_priority:
    query_filter: project:SUP
    group_by: [priority]
    limit: 6
"""


def expanded(text: str) -> ReportSpec:
    from casereport.definitions.expand import expand
    from casereport.definitions.load import load_report

    definition, diagnostics = load_report(Path("reports/backlog.yaml"), text)
    assert diagnostics == [] and definition is not None
    (spec,) = expand([definition]).reports
    return spec


@pytest.mark.parametrize(
    "keys",
    [
        "compare: 7d\n",
        "order: [P2, P1]\n",
        "labels: {NOT_DEFINED: No priority}\n",
        "better: lower\n",
        "trend: [P1]\n",
    ],
)
def test_a_reading_key_renders_the_report_again_without_fetching(site: Path, keys: str) -> None:
    state = applied([expanded(READING_BEFORE)], site)
    assert set(actions(plan_for([expanded(READING_BEFORE)], state, site)).values()) == {NOOP}

    for text in (
        READING_BEFORE.replace("aggregations:", keys + "aggregations:"),  # report level
        READING_BEFORE + "    " + keys,  # in the aggregation
    ):
        plan = plan_for([expanded(text)], state, site)
        assert set(actions(plan).values()) == {NOOP}
        assert not plan.fetch_requests
        assert report_reasons(plan)["backlog"] == (RENDER, ("definition changed",))
        assert plan.summary() == (
            "Plan: 0 to fetch (0 new, 0 changed, 0 stale), 1 report to render, 0 to delete."
        )
