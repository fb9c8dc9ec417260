"""``apply --json`` and ``render --json``: the event stream, its golden files and its schema.

The golden files in ``tests/golden/events/`` are whole streams of runs against the
built-in emulator with the clock pinned (``SOURCE_DATE_EPOCH`` for the timestamps, a
stand-in ``clock.monotonic`` for the durations) and one request at a time, so the order
of the ``fetched`` events is fixed. Regenerate them with CASEREPORT_UPDATE_GOLDEN=1 and
review the diff. Every line any test here reads is validated against the schema.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner, Result
from tests.apply_workspace import Workspace
from tests.cli_workspace import example_workspace
from tests.conftest import EmulatorFactory

from casereport import clock
from casereport.checks.results import CheckResult
from casereport.cli import cli
from casereport.engine import events
from casereport.engine.events_schema import EVENTS_SCHEMA_PATH, events_schema, events_schema_json

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden" / "events"
UPDATE = os.environ.get("CASEREPORT_UPDATE_GOLDEN") == "1"
VALIDATOR = jsonschema.Draft202012Validator(events_schema())


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden file {path}; create it with CASEREPORT_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), (
        f"{name} differs from its golden file; if the change is meant, regenerate with "
        "CASEREPORT_UPDATE_GOLDEN=1 and review the diff"
    )


def stream(result: Result) -> list[dict[str, Any]]:
    """The JSON lines of a run's stdout, each checked against the schema; nothing else
    may be on stdout."""
    lines = result.stdout.splitlines()
    assert lines, result.output
    parsed = []
    for line in lines:
        event = json.loads(line)  # (every line of stdout is one JSON object)
        VALIDATOR.validate(event)
        parsed.append(event)
    assert parsed[0]["type"] == "version" and parsed[0]["format_version"] == 1
    assert parsed[-1]["type"] == "summary"
    return parsed


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example workspace, the clock pinned, and durations of a quarter second."""
    ticks = itertools.count()
    monkeypatch.setattr(clock, "monotonic", lambda: next(ticks) * 0.25)
    return example_workspace(tmp_path, monkeypatch)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


APPLY = ("apply", "--emulator", "--auto-approve", "--json", "--parallelism", "1")


# -- golden streams -------------------------------------------------------------------


def test_apply_json_stream_of_a_first_apply(workspace: Path) -> None:
    result = run(*APPLY)

    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    check_golden("apply-first.jsonl", result.stdout)
    lines = stream(result)
    types = [line["type"] for line in lines]
    assert types == [
        "version",
        "planned",
        "started",
        *["fetched"] * 19,
        "started",
        *["rendered"] * 4,
        "summary",
    ]
    assert {line["timestamp"] for line in lines} == {"2026-09-21T14:13:20Z"}
    assert all(line["duration"] == 0.25 for line in lines if line["type"] == "fetched")
    summary = lines[-1]
    assert (summary["exit_code"], summary["fetched"], summary["rendered"]) == (0, 19, 3)
    # The site is the one a human-output apply writes.
    assert sorted(p.name for p in (workspace / "site").iterdir() if p.is_file()) == sorted(
        name for line in lines if line["type"] == "rendered" for name in line["files"]
    )


def test_apply_json_stream_without_changes(workspace: Path) -> None:
    assert run(*APPLY).exit_code == 0

    result = run(*APPLY)

    assert result.exit_code == 0, result.output
    check_golden("apply-no-changes.jsonl", result.stdout)
    planned, summary = stream(result)[1:]
    assert planned["has_changes"] is False and planned["changes"] == []
    assert summary["message"] == "No changes. Reports are up to date."


def test_render_json_stream(workspace: Path) -> None:
    assert run(*APPLY).exit_code == 0

    result = run("render", "--json")

    assert result.exit_code == 0, result.output
    check_golden("render.jsonl", result.stdout)
    assert [line["type"] for line in stream(result)] == [
        "version",
        "started",
        *["rendered"] * 4,
        "summary",
    ]


def test_a_saved_plan_applies_with_json_and_without_auto_approve(workspace: Path) -> None:
    assert run("plan", "--emulator", "--out", "plan.json").exit_code == 0

    result = run("apply", "plan.json", "--json")

    assert result.exit_code == 0, result.output
    lines = stream(result)
    assert lines[1]["type"] == "planned"
    assert lines[1]["message"].startswith("Plan: 19 to fetch")
    assert lines[-1]["fetched"] == 19


# -- failures and errors --------------------------------------------------------------


def test_json_without_auto_approve_or_a_plan_is_refused_and_prints_nothing(
    workspace: Path,
) -> None:
    result = run("apply", "--emulator", "--json")

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "Error: apply --json cannot ask for approval: pass --auto-approve, "
        "or apply a saved plan (`casereport plan --out plan.json`)\n"
    )
    assert not (workspace / ".casereport").exists()


def test_an_error_that_stops_the_run_ends_the_stream_with_its_summary(workspace: Path) -> None:
    result = run("render", "--json")  # no state yet

    assert result.exit_code == 1
    message = "no state at .casereport/state.json: nothing to render yet; run `casereport apply`"
    assert result.stderr == f"Error: {message}\n"
    _version, summary = stream(result)
    assert summary["error"] == message
    assert summary["exit_code"] == 1
    assert summary["message"] == f"Error: {message}"


def test_notices_are_events_with_json(workspace: Path) -> None:
    # An unknown field in a query is a warning of `plan` and `apply`.
    report = workspace / "reports" / "support-backlog.yaml"
    text = report.read_text(encoding="utf-8")
    report.write_text(text.replace("group_by: [status]", "group_by: [statuss]", 1))

    result = run(*APPLY)

    assert result.stderr == ""
    notices = [line for line in stream(result) if line["type"] == "notice"]
    assert notices, result.stdout
    assert all(n["level"] == "warning" and "statuss" in n["message"] for n in notices)
    human = run("plan", "--emulator")
    assert [n["message"] for n in notices] == human.stderr.splitlines()


def test_a_refused_key_is_one_failed_event_for_the_stage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: EmulatorFactory
) -> None:
    monkeypatch.chdir(tmp_path)
    ws = Workspace(tmp_path, emulator(api_key="another-key"))  # 403 to every request

    result = ws.run("apply", "--auto-approve", "--json", "--parallelism", "1")

    assert result.exit_code == 1
    lines = stream(result)
    (failed,) = [line for line in lines if line["type"] == "failed"]
    assert failed["stage"] == "fetch"
    assert (failed["address"], failed["report"]) == (None, None)
    assert "the apply stopped there: 19 of 19 requests not fetched" in failed["message"]
    summary = lines[-1]
    assert summary["exit_code"] == 1 and summary["failed"] == 1
    assert summary["failures"][0].startswith(failed["message"])
    # Failures are in the stream, not on stderr.
    assert result.stderr == ""


def test_a_failed_fetch_is_a_failed_event_naming_its_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: EmulatorFactory
) -> None:
    monkeypatch.chdir(tmp_path)
    ws = Workspace(tmp_path, emulator(error_rate=1.0), examples=False)  # 500 or 503
    ws.reports.mkdir()
    # Two addresses of one request: each is named (the client's retries take seconds).
    ws.write_report(
        "support-backlog",
        "title: Support\naggregations:\n"
        "  by_status: {query_filter: 'status:open', group_by: [status], limit: 5}\n"
        "  same: {query_filter: 'status:open', group_by: [status], limit: 5}\n",
    )

    result = ws.run("apply", "--auto-approve", "--json", "--parallelism", "1")

    assert result.exit_code == 1
    lines = stream(result)
    failed = [line for line in lines if line["type"] == "failed"]
    assert [line["address"] for line in failed] == [
        "support-backlog.by_status",
        "support-backlog.same",
    ]
    assert {line["report"] for line in failed} == {"support-backlog"}
    assert all(line["message"].startswith("Datadog server error (HTTP 5") for line in failed)
    assert not [line for line in lines if line["type"] == "fetched"]
    # Only the index, which lists the report (its pages are not rendered: no results).
    assert [line["report"] for line in lines if line["type"] == "rendered"] == [None]
    summary = lines[-1]
    assert summary["failed"] == len(failed) and summary["exit_code"] == 1
    assert summary["message"].startswith("Apply finished with errors: 0 fetched")


# -- the schema -----------------------------------------------------------------------


def test_the_committed_schema_is_current() -> None:
    fix = f"casereport schema --apply-json > {EVENTS_SCHEMA_PATH}"
    assert (ROOT / EVENTS_SCHEMA_PATH).read_text(encoding="utf-8") == events_schema_json(), (
        f"{EVENTS_SCHEMA_PATH} is out of date: run `{fix}`"
    )
    jsonschema.Draft202012Validator.check_schema(events_schema())
    result = run("schema", "--apply-json")
    assert result.exit_code == 0
    assert result.output == events_schema_json()


def test_the_golden_streams_hold_the_schema() -> None:
    for path in sorted(GOLDEN.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            VALIDATOR.validate(json.loads(line))


def test_the_documented_examples_hold_the_schema() -> None:
    text = (ROOT / "docs" / "apply-json.md").read_text(encoding="utf-8")
    blocks = text.split("```json\n")[1:]
    lines = [line for block in blocks for line in block.split("```")[0].splitlines()]
    assert len(lines) == 10
    for line in lines:
        VALIDATOR.validate(json.loads(line))


def test_the_schema_refuses_what_a_reader_could_not_rely_on() -> None:
    fetched = events.to_json(events.Fetched("r.a", "r", 42.0, 3, 0.5))
    VALIDATOR.validate(fetched)
    for broken in (
        {**fetched, "extra": 1},
        {k: v for k, v in fetched.items() if k != "duration"},
        {**fetched, "type": "fetch"},
        {**fetched, "timestamp": "2026-09-21 14:13:20"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            VALIDATOR.validate(broken)


def each_event() -> Iterator[events.Event]:
    """One event of every type (the check event: not emitted by any run yet)."""
    result = CheckResult(
        report="support",
        address="support.by_status",
        name="few_open",
        severity="warn",
        assertion='groups["OPEN"] < 50',
        message="Too many open cases",
        passed=False,
    )
    yield events.Version("apply")
    yield events.Started("fetch", 3)
    yield events.Fetched("support.by_status", "support", 12.5, 3, 0.25)
    yield events.Failed("fetch", "Datadog server error (HTTP 500)", "support.x", "support")
    yield events.Failed("render", "site index: boom")
    yield events.Rendered("support", ("support.md", "support.html"))
    yield events.Rendered(None, ("index.html",))
    yield events.Check.of(result)
    yield events.Notice("reports/a.yaml:3:5: warning: unknown field")
    yield events.Summary("Apply complete", 0, fetched=3)


def test_every_event_type_has_its_schema_and_a_line_of_its_own() -> None:
    seen = set()
    for event in each_event():
        line = events.json_line(event)
        assert "\n" not in line
        parsed = json.loads(line)
        VALIDATOR.validate(parsed)
        seen.add(parsed["type"])
    assert seen == set(events.TYPES.values()) - {"planned"}  # (planned: in the streams)


def test_a_check_event_carries_the_result_it_reports() -> None:
    result = CheckResult(
        report="support",
        address="support.by_status",
        name="few_open",
        severity="error",
        assertion="total < 50",
        message="Too many cases",
        passed=True,
    )
    line = events.to_json(events.Check.of(result))
    assert {k: line[k] for k in ("report", "address", "name", "severity", "passed", "message")} == {
        "report": "support",
        "address": "support.by_status",
        "name": "few_open",
        "severity": "error",
        "passed": True,
        "message": "Too many cases",
    }


def test_started_says_its_total_in_words() -> None:
    assert events.to_json(events.Started("fetch", 1))["message"] == "1 aggregation to fetch"
    assert events.to_json(events.Started("fetch", 1_200))["message"] == (
        "1,200 aggregations to fetch"
    )
    assert events.to_json(events.Started("render", 1))["message"] == "1 report to render"
    assert events.to_json(events.Started("render", 0))["message"] == "0 reports to render"


def test_counts_are_integers_when_whole_and_text_stays_as_written() -> None:
    whole = events.to_json(events.Fetched("équipe.a", "équipe", 42.0, 1, 0.1234))
    assert whole["total"] == 42 and isinstance(whole["total"], int)
    assert whole["duration"] == 0.123
    assert events.to_json(events.Fetched("r.a", "r", 2.5, 1, 0))["total"] == 2.5
    assert "équipe" in events.json_line(events.Fetched("équipe.a", "équipe", 1.0, 1, 0))
