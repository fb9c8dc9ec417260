"""The data files agree with state and with the API's own answers.

Each test runs ``casereport apply`` in a temporary workspace of the example reports, then
asks an emulator serving the same cases for every aggregation itself (a plain HTTP POST,
not casereport's client) and checks each total, count and compared count in the JSON and
CSV files; ``casereport output`` prints exactly the written files; removing a report
removes its data files, and a data file edited by hand is drift.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import subprocess
import sys
import tty
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

import casereport
from apply_workspace import Workspace
from casereport.emulator.config import EmulatorConfig
from casereport.emulator.server import RunningEmulator, running_emulator
from casereport.emulator.store import CaseStore
from casereport.render.data_schema import data_file_schema
from cli_workspace import example_workspace, ok, run

KEYS = {"DD-API-KEY": "test-api", "DD-APPLICATION-KEY": "test-app"}
VALIDATOR = jsonschema.Draft202012Validator(data_file_schema())
Answer = dict[str, Any]  # {"total": float, "groups": {group: count}}


def ask(emulator: RunningEmulator, aggregation: Mapping[str, Any]) -> Answer:
    """The API's answer for one aggregation of a data file, asked directly."""
    body = {
        "data": {
            "type": "aggregate",
            "attributes": {
                "query_filter": aggregation["query_filter"],
                "group_by": {"groups": aggregation["group_by"], "limit": aggregation["limit"]},
            },
        }
    }
    response = httpx.post(f"{emulator.url}/api/v2/cases/aggregate", json=body, headers=KEYS)
    assert response.status_code == 200, response.text
    attributes = response.json()["data"]["attributes"]
    groups = {g["group"]: g["value"][0] for g in attributes["groups"]}
    return {"total": attributes["total"], "groups": groups}


def answers(emulator: RunningEmulator, site: Path) -> dict[str, Answer]:
    """Every aggregation's answer, by address, for the data files in ``site``."""
    found = {}
    for path in sorted(site.glob("*.json")):
        for aggregation in json.loads(path.read_text(encoding="utf-8"))["aggregations"]:
            found[aggregation["address"]] = ask(emulator, aggregation)
    return found


def data_files(site: Path) -> Iterator[tuple[dict[str, Any], list[dict[str, str]]]]:
    """Each report's JSON data (validated against the schema) and its CSV rows."""
    reports = sorted(p.stem for p in site.glob("*.html") if p.stem != "index")
    assert reports
    for name in reports:
        data = json.loads((site / f"{name}.json").read_bytes())
        assert not [e.message for e in VALIDATOR.iter_errors(data)], name
        text = (site / f"{name}.csv").read_bytes().decode("utf-8")
        yield data, list(csv.DictReader(io.StringIO(text, newline="")))


def unguard(cell: str) -> str:
    """A CSV text cell's value: without the apostrophe that guards it (docs/data-files.md)."""
    return cell[1:] if cell.startswith("'") else cell


def _number(cell: str) -> float | None:
    return None if cell == "" else float(cell)


def check_against(
    site: Path,
    now: Mapping[str, Answer],
    before: Mapping[str, Answer] | None,
    before_at: str | None,
    state: Mapping[str, Any],
) -> int:
    """Every aggregation of every data file agrees with the API's answers (``now``; and
    ``before``, the compared run's, fetched at ``before_at``) and with state. Returns how
    many groups were checked."""
    checked = 0
    for data, rows in data_files(site):
        csv_rows: dict[tuple[str, str], dict[str, str]] = {}
        for row in rows:
            csv_rows[(row["address"], unguard(row["group"]))] = row
        for aggregation in data["aggregations"]:
            address = aggregation["address"]
            answer = now[address]
            entry = state["aggregations"][address]
            assert aggregation["total"] == answer["total"] == entry["result"]["total"]
            assert aggregation["fetched_at"] == entry["fetched_at"]
            groups = {g["group"]: g for g in aggregation["groups"]}
            assert {g: groups[g]["count"] for g in groups} == answer["groups"]
            assert {g["group"]: g["value"][0] for g in entry["result"]["groups"]} == answer[
                "groups"
            ]
            if before is None:
                assert aggregation["compared_with"] is None
            else:
                was = before[address]
                assert aggregation["compared_with"] == {
                    "fetched_at": before_at,
                    "total": was["total"],
                }
                # Absent from the earlier answer: none then, unless that answer filled its
                # limit (then it may have been cut: unknown).
                absent = 0 if len(was["groups"]) < aggregation["limit"] else None
                for name, group in groups.items():
                    assert group["compared_count"] == was["groups"].get(name, absent), name
            for name, group in groups.items():
                row = csv_rows[(address, name)]
                assert unguard(row["label"]) == group["label"]
                assert float(row["total"]) == answer["total"]
                assert float(row["count"]) == group["count"]
                assert _number(row["compared_count"]) == group["compared_count"]
                compared = aggregation["compared_with"] or {}
                assert _number(row["compared_total"]) == compared.get("total")
                assert row["compared_fetched_at"] == compared.get("fetched_at", "")
                assert row["fetched_at"] == aggregation["fetched_at"]
                checked += 1
        assert len(rows) == sum(max(1, len(a["groups"])) for a in data["aggregations"])
    return checked


def test_apply_emulator_data_files_match_the_emulators_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``apply --emulator`` twice (a week apart): the files hold the emulator's answers
    (the same data both times, so each compared count is the count)."""
    example_workspace(tmp_path, monkeypatch)
    ok("apply", "--emulator", "--auto-approve")
    first_state = json.loads(Path(".casereport/state.json").read_text(encoding="utf-8"))
    # A week later: the run compared with for `compare: previous` and for `compare: 7d`
    # (support-backlog) alike.
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(1790000000 + 7 * 86400))
    ok("apply", "--emulator", "--auto-approve", "--refresh")
    state = json.loads(Path(".casereport/state.json").read_text(encoding="utf-8"))
    stamps = {entry["fetched_at"] for entry in first_state["aggregations"].values()}
    assert len(stamps) == 1
    site = tmp_path / "site"
    # The same cases as `apply --emulator` serves: the default synthetic set.
    with running_emulator(EmulatorConfig(port=0)) as emulator:
        now = answers(emulator, site)
    assert len(now) == len(state["aggregations"]) >= 10
    assert check_against(site, now, now, stamps.pop(), state) > 30
    settings = {a["compare"] for data, _ in data_files(site) for a in data["aggregations"]}
    assert settings == {"previous", "7d"}  # both ways of choosing the run were checked


# Groups that come and go between two sets of cases: the first answer for ``by_priority``
# fills its limit (a group absent from it is unknown), the first for ``by_status`` does not
# (a group absent from it had no cases); ``by_title`` has values a spreadsheet or a CSV
# reader would trip on, from the API.
CHURN = """title: Churn
aggregations:
  by_priority:
    query_filter: ""
    group_by: [priority]
    limit: 2
  by_status:
    query_filter: ""
    group_by: [status]
    limit: 10
  by_title:
    query_filter: ""
    group_by: [title]
    limit: 50
"""
TITLES = [
    '=HYPERLINK("http://x")',
    "+1",
    "-1",
    "@A1",
    "a,b",
    'say "hi"',
    "two\nlines",
    "ünï ☃",
    "\x1b[2Jescape\r",
]


def cases(priorities: dict[str, int], statuses: dict[str, int]) -> CaseStore:
    """A store of cases with these priority and status counts (paired in order)."""
    priority = [p for p, n in priorities.items() for _ in range(n)]
    status = [s for s, n in statuses.items() for _ in range(n)]
    assert len(priority) == len(status)
    return CaseStore.from_cases(
        {
            "id": f"case-{index}",
            "type": "case",
            "attributes": {
                "priority": priority[index],
                "status": status[index],
                "title": TITLES[index % len(TITLES)],
            },
        }
        for index in range(len(priority))
    )


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    store = cases({"P1": 5, "P2": 4, "P3": 1}, {"OPEN": 10})
    with running_emulator(EmulatorConfig(port=0), store) as running:
        yield running


def test_compared_counts_are_the_earlier_runs_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: RunningEmulator
) -> None:
    """The cases change between two applies: counts are the second answers, compared
    counts the first ones (or 0, or unknown where the first answer filled its limit)."""
    monkeypatch.chdir(tmp_path)
    workspace = Workspace(tmp_path, emulator, examples=False)
    workspace.reports.mkdir()
    workspace.write_report("churn", CHURN)
    workspace.apply()
    site = workspace.site
    before = answers(emulator, site)
    before_at = {e.fetched_at for e in workspace.state().aggregations.values()}
    assert check_against(site, before, None, None, workspace.state_json()) == 12
    emulator.app.store = cases({"P3": 6, "P1": 3, "P2": 2}, {"OPEN": 7, "CLOSED": 4})
    workspace.epoch += 7 * 86400
    workspace.apply("--refresh")
    now = answers(emulator, site)
    assert check_against(site, now, before, before_at.pop(), workspace.state_json()) == 13
    data = json.loads((site / "churn.json").read_bytes())
    compared = {
        (a["address"], g["group"]): g["compared_count"]
        for a in data["aggregations"]
        for g in a["groups"]
    }
    # Both rules met (and checked against the answers above): unknown, and none then.
    assert compared[("churn.by_priority", "P3")] is None
    assert compared[("churn.by_status", "CLOSED")] == 0
    # Natural order: P1 before P3 however the API sorted them (P3 has more cases).
    assert [g["group"] for g in data["aggregations"][0]["groups"]] == ["P1", "P3"]
    titles = {g["group"] for g in data["aggregations"][2]["groups"]}
    assert titles == set(TITLES)

    # `casereport output` prints the written files, byte for byte.
    for flag, suffix in (("--json", "json"), ("--csv", "csv"), (None, "json")):
        args = ["output", "churn"] if flag is None else ["output", "churn", flag]
        result = workspace.run(*args)
        assert result.exit_code == 0, result.output
        assert result.stdout_bytes == (site / f"churn.{suffix}").read_bytes()

    # On a terminal: what the API sent cannot drive it (escapes shown), CSV rows end in LF.
    shown = on_a_terminal([sys.executable, "-m", "casereport", "output", "churn", "--csv"])
    written = (site / "churn.csv").read_bytes().decode("utf-8")
    assert "\x1b" in written and "\x1b" not in shown and "\\u001b[2Jescape" in shown
    assert "\r" not in shown
    # The two lines title, as its group and its label: the only line breaks of their own.
    assert shown.count("\n") == written.count("\r\n") + 2


def on_a_terminal(command: list[str]) -> str:
    """What ``command`` prints to a terminal (a pseudo-terminal in raw mode, so the
    terminal adds no carriage returns of its own)."""
    main_fd, terminal_fd = pty.openpty()
    tty.setraw(terminal_fd)
    try:
        # This casereport, wherever the tests import it from.
        package = str(Path(casereport.__file__).resolve().parents[1])
        path = os.pathsep.join(filter(None, [package, os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "PYTHONPATH": path}
        process = subprocess.Popen(command, stdout=terminal_fd, stderr=subprocess.DEVNULL, env=env)
        os.close(terminal_fd)
        terminal_fd = -1
        received = b""
        while True:
            try:
                chunk = os.read(main_fd, 65536)
            except OSError:  # EIO: the terminal's other end was closed
                break
            if not chunk:
                break
            received += chunk
        assert process.wait(timeout=60) == 0
    finally:
        os.close(main_fd)
        if terminal_fd != -1:
            os.close(terminal_fd)
    return received.decode("utf-8")


def test_output_names_an_unknown_report_with_a_suggestion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    example_workspace(tmp_path, monkeypatch)
    result = run("output", "support-backlog")
    assert result.exit_code == 1
    assert result.output == (
        "Error: no state at .casereport/state.json: nothing to output yet; run `casereport apply`\n"
    )
    ok("apply", "--emulator", "--auto-approve")
    result = run("output", "suport-backlog", "--csv")
    assert result.exit_code == 1
    assert result.output == (
        "Error: output: no report named 'suport-backlog' (did you mean \"support-backlog\"?); "
        "a report is the name of a file in reports (without .yaml)\n"
    )
    assert "Traceback" not in result.output


def test_data_files_are_outputs_removed_with_the_report_and_drift_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    example_workspace(tmp_path, monkeypatch)
    ok("apply", "--emulator", "--auto-approve")
    state = json.loads(Path(".casereport/state.json").read_text(encoding="utf-8"))
    outputs = state["reports"]["security-cases"]["outputs"]
    # Recorded with their hashes like pages, whatever the report's formats (html only).
    assert sorted(outputs) == ["security-cases.csv", "security-cases.html", "security-cases.json"]
    site = tmp_path / "site"
    assert ok("plan", "--emulator", "--detailed-exitcode").exit_code == 0

    edited = site / "service-health.csv"
    edited.write_bytes(edited.read_bytes().replace(b"service-health", b"edited", 1))
    (site / "security-cases.json").unlink()
    result = run("plan", "--emulator", "--detailed-exitcode")
    assert result.exit_code == 2, result.output
    assert "output service-health.csv was edited by hand" in result.output
    assert "output security-cases.json is missing" in result.output
    ok("apply", "--emulator", "--auto-approve")
    assert ok("output", "service-health", "--csv").stdout_bytes == edited.read_bytes()
    assert (site / "security-cases.json").exists()

    Path("reports/security-cases.yaml").unlink()
    ok("apply", "--emulator", "--auto-approve")
    assert not list(site.glob("security-cases.*"))
    assert (
        "security-cases"
        not in json.loads(Path(".casereport/state.json").read_text(encoding="utf-8"))["reports"]
    )
