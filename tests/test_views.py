"""The plan's views: human (with and without colour), JSON and Markdown.

Plans are built by hand here, since views only read them; what the planner decides is
``test_plan.py``'s business. Whole outputs are compared with golden files under
``tests/golden/plan/``. After a deliberate change of a view, regenerate them with

    CASEREPORT_UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_views.py

and read ``git diff tests/golden`` before committing: a golden file is only as good as the
review of its diff.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from casereport.engine.plan import (
    CREATE,
    DELETE,
    NOOP,
    REFRESH,
    RENDER,
    REPLACE,
    UPDATE,
    AggregationChange,
    FieldChange,
    Plan,
    ReportChange,
)
from casereport.engine.views import render_human, render_json, render_markdown, use_colour
from casereport.site import INDEX_FILES
from casereport.state.model import Source

GOLDEN = Path(__file__).parent / "golden" / "plan"
UPDATE_GOLDEN = os.environ.get("CASEREPORT_UPDATE_GOLDEN") == "1"

EMULATOR = Source("emulator", "emulator", "5000 synthetic cases (seed 1)")
US1 = Source("datadog", "datadoghq.com")
FETCHED = "2026-11-26T09:30:00Z"


def request(query: str, groups: list[str], limit: int) -> dict[str, object]:
    return {"query_filter": query, "groups": groups, "limit": limit}


def fetch(
    address: str,
    action: str,
    reason: str,
    query: str,
    groups: list[str],
    limit: int,
    changes: tuple[FieldChange, ...] = (),
) -> AggregationChange:
    return AggregationChange(
        address=address,
        report=address.split(".", 1)[0],
        action=action,
        reason=reason,
        title=f"Title of {address}",
        request=request(query, groups, limit),
        fingerprint=f"fp-{address}",
        changes=changes,
        fetched_at=None if action == CREATE else FETCHED,
    )


def plan(
    aggregations: tuple[AggregationChange, ...],
    reports: tuple[ReportChange, ...],
    index: ReportChange,
    *,
    source: Source = EMULATOR,
    previous_source: Source | None = None,
    targets: tuple[str, ...] = (),
    refresh_all: bool = False,
) -> Plan:
    return Plan(
        source=source,
        previous_source=previous_source,
        aggregations=aggregations,
        reports=reports,
        index=index,
        state_lineage="3f0c8a4e-5b1d-4c1e-9a0f-0d5e2c7b9a11",
        state_serial=7,
        inputs_hash="9c1d" * 16,
        created_at="2026-11-26T12:00:00Z",
        targets=targets,
        refresh_all=refresh_all,
        tool_version="0.1.0",
    )


INDEX_NOOP = ReportChange("index", NOOP, (), INDEX_FILES)
INDEX_FOLLOWS = ReportChange("index", RENDER, ("reports changed",), INDEX_FILES)

MIXED = plan(
    (
        AggregationChange(
            "backlog.by_priority",
            "backlog",
            DELETE,
            "no longer defined",
            title="Open by priority",
            fetched_at=FETCHED,
        ),
        fetch(
            "backlog.by_status",
            UPDATE,
            "query_filter, limit changed",
            "project:SUP -status:closed",
            ["status"],
            9,
            changes=(
                FieldChange("query_filter", "project:SUP", "project:SUP -status:closed"),
                FieldChange("limit", 5, 9),
            ),
        ),
        fetch(
            "backlog.by_team", CREATE, "new aggregation", "project:SUP", ["team", "priority"], 12
        ),
        fetch(
            "backlog.groups",
            UPDATE,
            "groups changed",
            "project:SUP",
            ["status", "team"],
            5,
            changes=(FieldChange("groups", ["status"], ["status", "team"]),),
        ),
        fetch(
            'health.open["billing"]', REFRESH, "older than 1h", "service:billing", ["priority"], 6
        ),
        fetch(
            'health.open["checkout"]', REFRESH, "older than 1h", "service:checkout", ["priority"], 6
        ),
        AggregationChange(
            "old.by_status", "old", DELETE, "report old removed", title="Old", fetched_at=FETCHED
        ),
        fetch("security.by_status", REFRESH, "refresh: always", "project:SEC", ["status"], 3),
        fetch("security.open", NOOP, "up to date", "project:SEC status:open", ["priority"], 6),
    ),
    (
        ReportChange(
            "backlog",
            RENDER,
            ("definition changed", "data to fetch"),
            ("backlog.html", "backlog.md"),
        ),
        ReportChange(
            "health",
            RENDER,
            ("data to fetch", "output health.md was edited by hand"),
            ("health.html", "health.md"),
        ),
        ReportChange("new", RENDER, ("new report",), ("new.html",), new=True),
        ReportChange("old", DELETE, ("report removed",), ("old.html", "old.md")),
        ReportChange("quiet", NOOP, (), ("quiet.md",)),
        ReportChange("security", RENDER, ("data to fetch",), ("security.html",)),
    ),
    INDEX_FOLLOWS,
)

REPLACED = plan(
    (
        fetch("backlog.by_status", REPLACE, "data source changed", "project:SUP", ["status"], 5),
        fetch(
            "backlog.by_team",
            REPLACE,
            "data source changed",
            "project:SUP",
            ["team"],
            4,
            changes=(FieldChange("limit", 12, 4),),
        ),
    ),
    (ReportChange("backlog", RENDER, ("definition changed", "data to fetch"), ("backlog.md",)),),
    INDEX_FOLLOWS,
    source=US1,
    previous_source=EMULATOR,
)

FIRST = plan(
    (
        fetch("backlog.by_status", CREATE, "new aggregation", "project:SUP", ["status"], 5),
        fetch(
            'health.open["billing"]', CREATE, "new aggregation", "service:billing", ["priority"], 6
        ),
    ),
    (
        ReportChange("backlog", RENDER, ("new report",), ("backlog.html", "backlog.md"), new=True),
        ReportChange("health", RENDER, ("new report",), ("health.html", "health.md"), new=True),
    ),
    ReportChange("index", RENDER, ("reports changed", "new site index"), INDEX_FILES, new=True),
)

NO_CHANGES = plan(
    (fetch("backlog.by_status", NOOP, "up to date", "project:SUP", ["status"], 5),),
    (ReportChange("backlog", NOOP, (), ("backlog.html", "backlog.md")),),
    INDEX_NOOP,
)

TARGETED = plan(
    (
        fetch(
            'health.open["billing"]',
            REFRESH,
            "--refresh given",
            "service:billing",
            ["priority"],
            6,
        ),
        fetch(
            'health.open["checkout"]',
            REFRESH,
            "--refresh given",
            "service:checkout",
            ["priority"],
            6,
        ),
    ),
    (ReportChange("health", RENDER, ("data to fetch",), ("health.html", "health.md")),),
    INDEX_FOLLOWS,
    targets=("health",),
    refresh_all=True,
)

INDEX_ONLY = plan(
    (fetch("backlog.by_status", NOOP, "up to date", "project:SUP", ["status"], 5),),
    (ReportChange("backlog", NOOP, (), ("backlog.html", "backlog.md")),),
    ReportChange("index", RENDER, ("output index.md was edited by hand",), INDEX_FILES),
)

PLANS = {
    "mixed": MIXED,
    "replace": REPLACED,
    "first": FIRST,
    "no-changes": NO_CHANGES,
    "targeted": TARGETED,
    "index-only": INDEX_ONLY,
}


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE_GOLDEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} is missing; see this module's docstring to create it"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


# -- golden files ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PLANS))
def test_human_view(name: str) -> None:
    check_golden(f"{name}.human.txt", render_human(PLANS[name]))


@pytest.mark.parametrize("name", ["mixed", "replace", "first"])
def test_human_view_in_colour(name: str) -> None:
    check_golden(f"{name}.human-colour.txt", render_human(PLANS[name], colour=True))


@pytest.mark.parametrize("name", ["mixed", "replace", "no-changes"])
def test_json_view(name: str) -> None:
    check_golden(f"{name}.json", render_json(PLANS[name]))


@pytest.mark.parametrize("name", sorted(PLANS))
def test_markdown_view(name: str) -> None:
    check_golden(f"{name}.md", render_markdown(PLANS[name]))


# -- what every view must hold to -----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PLANS))
def test_the_three_views_agree_on_the_summary(name: str) -> None:
    current = PLANS[name]
    summary = current.summary()
    assert render_human(current).splitlines()[-1] == summary
    assert f"**{summary}**" in render_markdown(current).splitlines()
    document = json.loads(render_json(current))
    assert document["summary"] == summary
    assert document["has_changes"] == current.has_changes
    assert document["counts"] == current.counts().to_json()


def test_the_mixed_summary_counts() -> None:
    assert MIXED.summary() == (
        "Plan: 6 to fetch (1 new, 2 changed, 3 stale), 4 reports to render, 3 to delete."
    )
    assert REPLACED.summary() == (
        "Plan: 2 to fetch (0 new, 2 changed, 0 stale), 1 report to render, 0 to delete."
    )
    assert INDEX_ONLY.summary() == (
        "Plan: 0 to fetch (0 new, 0 changed, 0 stale), 1 report to render, 0 to delete."
    )
    assert NO_CHANGES.summary() == "No changes. Reports are up to date."


def test_stale_results_are_counted_not_listed() -> None:
    for text in (render_human(MIXED), render_markdown(MIXED)):
        assert "health.open" not in text
        assert "security.by_status" not in text
    assert "  ↻ 3 stale results to refresh:" in render_human(MIXED).splitlines()


def test_unchanged_items_are_counted_not_listed() -> None:
    human = render_human(MIXED)
    assert "security.open" not in human
    assert "quiet" not in human
    assert "Unchanged: 1 aggregation, 1 report." in human.splitlines()


def test_symbols_follow_terraform() -> None:
    lines = render_human(MIXED).splitlines() + render_human(REPLACED).splitlines()
    assert "  + aggregation backlog.by_team {" in lines
    assert "  ~ aggregation backlog.by_status {" in lines
    assert "-/+ aggregation backlog.by_status" in lines
    assert "  - aggregation backlog.by_priority" in lines
    assert "  + report new: writes new.html" in lines
    assert "  ~ report backlog: writes backlog.html, backlog.md" in lines
    assert "  - report old: removes old.html, old.md" in lines
    assert '      ~ query_filter = "project:SUP" -> "project:SUP -status:closed"' in lines
    assert '      ~ groups       = ["status"] -> ["status", "team"]' in lines
    assert "      ~ limit        = 5 -> 9" in lines


# -- colour ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PLANS))
def test_no_escape_codes_unless_asked(name: str) -> None:
    assert "\x1b" not in render_human(PLANS[name])
    assert "\x1b" not in render_markdown(PLANS[name])
    assert "\x1b" not in render_json(PLANS[name])


def test_colour_paints_symbols() -> None:
    coloured = render_human(MIXED, colour=True)
    assert "  \x1b[32m+\x1b[0m aggregation backlog.by_team {" in coloured
    assert "  \x1b[31m-\x1b[0m report old: removes old.html, old.md" in coloured
    # Without its escape codes, the coloured view is the plain one.
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == render_human(MIXED)


@pytest.mark.parametrize(
    ("tty", "env", "expected"),
    [
        (False, {}, False),
        (True, {}, True),
        (True, {"NO_COLOR": "1"}, False),
        (True, {"NO_COLOR": ""}, True),  # no-color.org: only a non-empty value disables
        (True, {"TERM": "dumb"}, False),
        (False, {"TERM": "xterm-256color"}, False),
    ],
)
def test_use_colour(
    monkeypatch: pytest.MonkeyPatch, tty: bool, env: dict[str, str], expected: bool
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert use_colour(tty) is expected


# -- JSON --------------------------------------------------------------------------------------


def test_json_is_versioned_with_a_stable_key_order() -> None:
    document = json.loads(render_json(MIXED))
    assert list(document) == [
        "format_version",
        "tool_version",
        "created_at",
        "source",
        "previous_source",
        "state",
        "inputs_hash",
        "targets",
        "refresh_all",
        "has_changes",
        "summary",
        "counts",
        "aggregations",
        "reports",
        "index",
    ]
    assert document["format_version"] == 1
    assert list(document["aggregations"][1]) == [
        "address",
        "report",
        "actions",
        "reason",
        "title",
        "request",
        "fingerprint",
        "changes",
        "fetched_at",
    ]
    assert list(document["reports"][0]) == ["name", "actions", "new", "reasons", "outputs"]
    assert [a["actions"] for a in document["aggregations"]][:3] == [
        ["delete"],
        ["update"],
        ["create"],
    ]
    assert document["aggregations"][1]["changes"] == [
        {"field": "query_filter", "old": "project:SUP", "new": "project:SUP -status:closed"},
        {"field": "limit", "old": 5, "new": 9},
    ]


def test_json_request_fields_come_in_canonical_order() -> None:
    shuffled = AggregationChange(
        "r.a",
        "r",
        CREATE,
        "new aggregation",
        request={"limit": 3, "groups": ["x"], "query_filter": "q"},
        fingerprint="fp",
    )
    document = json.loads(render_json(plan((shuffled,), (), INDEX_NOOP)))
    assert list(document["aggregations"][0]["request"]) == ["query_filter", "groups", "limit"]


@pytest.mark.parametrize("name", sorted(PLANS))
def test_json_reads_back_to_the_same_plan_and_bytes(name: str) -> None:
    text = render_json(PLANS[name])
    again = Plan.from_json(json.loads(text))
    assert again == PLANS[name]
    assert render_json(again) == text


# -- Markdown ------------------------------------------------------------------------------------


def _unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line))


@pytest.mark.parametrize("name", sorted(PLANS))
def test_markdown_tables_are_valid_github_tables(name: str) -> None:
    lines = render_markdown(PLANS[name]).splitlines()
    for number, line in enumerate(lines):
        if not line.startswith("|"):
            continue
        assert line.endswith("|"), line
        assert _unescaped_pipes(line) == 4, f"line {number}: {line}"
        if line.startswith("| |"):  # a header: the delimiter row follows, a blank line precedes
            assert lines[number + 1] == "|---|---|---|"
            assert lines[number - 1] == ""
        else:
            assert lines[number - 1].startswith("|")


def test_markdown_escapes_pipes_and_backticks_in_queries() -> None:
    odd = fetch(
        "r.odd",
        UPDATE,
        "query_filter changed",
        "title:`x` OR ``y``",
        ["status"],
        5,
        changes=(FieldChange("query_filter", 'title:"a|b"', "title:`x` OR ``y``"),),
    )
    created = fetch("r.new", CREATE, "new aggregation", "`edge|case`", ["status", "team"], 5)
    text = render_markdown(plan((created, odd), (), INDEX_NOOP))
    rows = [line for line in text.splitlines() if line.startswith("| `")]

    assert rows == [
        "| `+` | `r.new` | create: `` `edge\\|case` `` by `status, team`, limit 5 |",
        '| `~` | `r.odd` | update: query_filter `title:"a\\|b"` → ``` title:`x` OR ``y`` ``` |',
    ]


def test_markdown_folds_long_tables() -> None:
    many = tuple(
        fetch(f"r.a{number:02d}", CREATE, "new aggregation", "q", ["status"], 5)
        for number in range(21)
    )
    text = render_markdown(plan(many, (), INDEX_NOOP))
    assert (
        "<details><summary>21 aggregation changes</summary>\n\n| | Aggregation | Change |" in text
    )
    assert text.count("</details>") == 1
