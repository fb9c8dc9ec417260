"""State as a user meets it: `state list|show|rm`, `show [PLAN]`, no-op applies, corrupt
state through the command line, and credentials that never reach a file.

Each test works in a copy of the example workspace with a real state made by
`apply --emulator --auto-approve` (the emulator runs in-process) and the clock pinned.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from casereport.cli import cli
from casereport.definitions.expand import expand_workspace
from casereport.emulator.server import RunningEmulator
from casereport.state import journal
from casereport.state.model import State, backup_path, load_state
from cli_workspace import API_ENVIRONMENT

REPO = Path(__file__).resolve().parent.parent
STATE = Path(".casereport/state.json")
OLD_MTIME_NS = 1_000_000_000 * 1_000_000_000
EmulatorFactory = Callable[..., RunningEmulator]
CREDENTIAL_VARIABLES = API_ENVIRONMENT


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the example workspace as the current directory, without state yet."""
    shutil.copytree(REPO / "reports", tmp_path / "reports")
    shutil.copytree(REPO / "schema", tmp_path / "schema")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1795719600")  # 2026-11-26T19:00:00Z
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield tmp_path


@pytest.fixture
def applied(workspace: Path) -> State:
    """The workspace after a first apply; returns the state it wrote."""
    result = run("apply", "--emulator", "--auto-approve")
    assert result.exit_code == 0, result.output
    state = load_state(STATE)
    assert state is not None
    return state


def addresses(workspace: Path) -> list[str]:
    _, expansion = expand_workspace(workspace)
    return sorted(a.address for a in expansion.aggregations)


def report_names(workspace: Path) -> list[str]:
    _, expansion = expand_workspace(workspace)
    return sorted(r.name for r in expansion.reports)


def for_each_address(workspace: Path) -> str:
    return next(a for a in addresses(workspace) if '["' in a)


def plain_address(workspace: Path) -> str:
    return next(a for a in addresses(workspace) if "[" not in a)


def pin(directory: Path) -> dict[str, Any]:
    """Pin the mtimes of a directory's files to an old value; return ``look(directory)``."""
    for path in directory.iterdir():
        os.utime(path, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    return look(directory)


def look(directory: Path) -> dict[str, Any]:
    """Every file in a directory with its bytes and mtime."""
    return {
        path.name: (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(directory.iterdir())
    }


def loaded(path: Path = STATE) -> State:
    state = load_state(path)
    assert state is not None
    return state


# -- state list -------------------------------------------------------------------------


def test_state_list_prints_every_address_sorted(workspace: Path, applied: State) -> None:
    result = run("state", "list")

    assert result.exit_code == 0
    assert result.output == "".join(f"{a}\n" for a in addresses(workspace))
    assert sorted(applied.aggregations) == addresses(workspace)
    assert len(addresses(workspace)) > 3


def test_state_list_filters_by_address(workspace: Path, applied: State) -> None:
    everything = addresses(workspace)
    report = report_names(workspace)[0]
    keyed = for_each_address(workspace)
    base = keyed.split("[", 1)[0]
    single = plain_address(workspace)

    by_report = run("state", "list", report).output.splitlines()
    by_base = run("state", "list", base).output.splitlines()
    by_address = run("state", "list", single).output.splitlines()
    by_two = run("state", "list", keyed, single).output.splitlines()
    by_nothing = run("state", "list", "no-such-report")

    assert by_report == [a for a in everything if a.startswith(f"{report}.")]
    assert by_report
    assert by_base == [a for a in everything if a.startswith(f"{base}[")]
    assert len(by_base) > 1
    assert by_address == [single]
    assert by_two == sorted([keyed, single])
    assert (by_nothing.exit_code, by_nothing.output) == (0, "")
    # A prefix of a name is not a match: "support" does not list "support-backlog.*".
    assert run("state", "list", report[:-1]).output == ""


# -- state show -------------------------------------------------------------------------


def test_state_show_prints_the_entry_as_json(workspace: Path, applied: State) -> None:
    address = for_each_address(workspace)

    result = run("state", "show", address)

    assert result.exit_code == 0
    shown = json.loads(result.output)
    assert shown == {address: applied.aggregations[address].to_json()}
    assert sorted(shown[address]) == [
        "fetched_at",
        "fingerprint",
        "history",
        "report",
        "request",
        "result",
        "title",
    ]
    assert shown[address]["fetched_at"] == "2026-11-26T19:00:00Z"


def test_state_show_of_an_unknown_address_is_one_line(workspace: Path, applied: State) -> None:
    result = run("state", "show", "support-backlog.nope")

    assert result.exit_code == 1
    assert result.output == (
        "Error: no aggregation 'support-backlog.nope' in .casereport/state.json; "
        "`casereport state list` shows them\n"
    )


# -- state rm ---------------------------------------------------------------------------


def test_state_rm_of_an_aggregation_bumps_the_serial_once(workspace: Path, applied: State) -> None:
    address = plain_address(workspace)
    previous = STATE.read_bytes()

    result = run("state", "rm", address)

    assert result.exit_code == 0
    assert result.output == f"Removed 1 from state: {address}\n"
    after = loaded()
    assert after.serial == applied.serial + 1
    assert after.lineage == applied.lineage
    assert after.aggregations == {a: s for a, s in applied.aggregations.items() if a != address}
    assert after.reports == applied.reports
    assert backup_path(STATE).read_bytes() == previous
    assert not Path(".casereport/state.json.lock").exists()

    # The next plan fetches it anew, and apply puts it back.
    plan = run("plan", "--emulator", "--json", "--detailed-exitcode")
    assert plan.exit_code == 2
    fetches = [
        (c["address"], c["actions"])
        for c in json.loads(plan.output)["aggregations"]
        if c["actions"] != ["no-op"]
    ]
    assert fetches == [(address, ["create"])]
    assert run("apply", "--emulator", "--auto-approve").exit_code == 0
    assert sorted(loaded().aggregations) == addresses(workspace)


def test_state_rm_of_a_for_each_address_with_quotes(workspace: Path, applied: State) -> None:
    address = for_each_address(workspace)
    assert '["' in address

    result = run("state", "rm", address)

    assert result.exit_code == 0
    assert result.output == f"Removed 1 from state: {address}\n"
    assert sorted(loaded().aggregations) == [a for a in addresses(workspace) if a != address]
    assert loaded().serial == applied.serial + 1


def test_state_rm_of_a_for_each_base_removes_every_key(workspace: Path, applied: State) -> None:
    base = for_each_address(workspace).split("[", 1)[0]
    keyed = [a for a in addresses(workspace) if a.startswith(f"{base}[")]

    result = run("state", "rm", base)

    assert result.exit_code == 0
    assert result.output == f"Removed {len(keyed)} from state: {', '.join(keyed)}\n"
    assert sorted(loaded().aggregations) == [a for a in addresses(workspace) if a not in keyed]


def test_state_rm_of_a_report_forgets_it_whole(workspace: Path, applied: State) -> None:
    report = report_names(workspace)[-1]
    own = [a for a in addresses(workspace) if a.startswith(f"{report}.")]

    result = run("state", "rm", report)

    assert result.exit_code == 0
    removed = ", ".join(sorted([*own, report]))  # the report's name sorts first
    assert result.output == f"Removed {len(own) + 1} from state: {removed}\n"
    after = loaded()
    assert sorted(after.aggregations) == [a for a in addresses(workspace) if a not in own]
    assert sorted(after.reports) == [r for r in report_names(workspace) if r != report]
    assert after.serial == applied.serial + 1
    assert after.site_outputs == applied.site_outputs


def test_state_rm_of_several_addresses_writes_once(workspace: Path, applied: State) -> None:
    first, second = for_each_address(workspace), plain_address(workspace)

    result = run("state", "rm", first, second)

    assert result.exit_code == 0
    assert result.output == f"Removed 2 from state: {', '.join(sorted([first, second]))}\n"
    assert loaded().serial == applied.serial + 1


@pytest.mark.parametrize(
    "wanted",
    [
        ["support-backlog.no_such_aggregation"],
        ["no-such-report"],
        ['service-health.open_by_priority["no-such-key"]'],
        ["support-backlog.by_status", "no-such-report"],  # one unknown: nothing is removed
    ],
)
def test_state_rm_of_an_unknown_address_changes_nothing(
    workspace: Path, applied: State, wanted: list[str]
) -> None:
    before = pin(STATE.parent)

    result = run("state", "rm", *wanted)

    assert result.exit_code == 1
    assert result.output == (
        f"Error: no aggregation or report {wanted[-1]!r} in .casereport/state.json; "
        "nothing was removed\n"
    )
    assert look(STATE.parent) == before
    assert loaded().serial == applied.serial


@pytest.mark.parametrize(
    "command",
    [["state", "list"], ["state", "show", "a.b"], ["state", "rm", "a.b"], ["show"]],
)
def test_state_commands_without_a_state(workspace: Path, command: list[str]) -> None:
    result = run(*command)

    assert result.exit_code == 1
    assert result.output == (
        "Error: no state at .casereport/state.json; run `casereport apply` first\n"
    )
    assert not STATE.exists()


def test_state_commands_take_a_state_option(workspace: Path) -> None:
    assert run("apply", "--emulator", "--auto-approve", "--state", "other.json").exit_code == 0
    address = plain_address(workspace)

    assert run("state", "list", "--state", "other.json").output.splitlines() == addresses(workspace)
    assert address in json.loads(run("state", "show", address, "--state", "other.json").output)
    serial = loaded(Path("other.json")).serial
    assert run("state", "rm", address, "--state", "other.json").exit_code == 0
    assert run("show", "--state", "other.json").output.startswith(
        f"State other.json: serial {serial + 1},"
    )
    assert not STATE.exists()


# -- show -------------------------------------------------------------------------------


def test_show_describes_the_state_in_brief(workspace: Path, applied: State) -> None:
    result = run("show")

    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[:3] == [
        f"State .casereport/state.json: serial {applied.serial}, lineage {applied.lineage}",
        f"Source: {applied.source.describe() if applied.source else ''}",
        "",
    ]
    assert lines[1].startswith("Source: local emulator")
    body = lines[3 : 3 + len(addresses(workspace))]
    assert [line.split(": ", 1)[0] for line in body] == addresses(workspace)
    entry = applied.aggregations[addresses(workspace)[0]]
    groups = len(entry.result["groups"])
    assert body[0] == (
        f"{entry.address}: total {int(entry.result['total']):,}, "
        f"{groups} group{'s' * (groups != 1)}, fetched 2026-11-26T19:00:00Z, 0 earlier results"
    )
    assert lines[-2:] == ["", f"Reports: {', '.join(report_names(workspace))}"]


def test_show_prints_a_saved_plan(workspace: Path, applied: State) -> None:
    address = for_each_address(workspace)
    assert run("state", "rm", address).exit_code == 0
    planned = run("plan", "--emulator", "--out", "plan.json")
    assert planned.exit_code == 0
    human, trailer = planned.output.rsplit("\nSaved the plan to plan.json.", 1)

    shown = run("show", "plan.json")
    shown_json = run("show", "--json", "plan.json")

    assert shown.exit_code == 0
    assert shown.output == human
    assert f"# {address} will be created" in shown.output
    assert shown_json.exit_code == 0
    assert shown_json.output == Path("plan.json").read_text(encoding="utf-8")
    assert json.loads(shown_json.output)["state"] == {
        "lineage": applied.lineage,
        "serial": applied.serial + 1,
    }
    assert trailer == " Apply exactly it with: casereport apply plan.json\n"


def test_show_of_a_missing_or_corrupt_plan_is_one_line(workspace: Path) -> None:
    missing = run("show", "plan.json")
    Path("bad.json").write_text("{", encoding="utf-8")
    corrupt = run("show", "bad.json")

    assert missing.exit_code == 1
    assert missing.output == (
        "Error: plan.json: no such plan file; create one with `casereport plan --out`\n"
    )
    assert corrupt.exit_code == 1
    assert corrupt.output.startswith("Error: bad.json: not a casereport plan (")
    assert corrupt.output.count("\n") == 1


# -- no-op applies and corrupt state ------------------------------------------------------


def test_a_second_apply_writes_nothing(workspace: Path, applied: State) -> None:
    before = pin(STATE.parent)

    result = run("apply", "--emulator", "--auto-approve")

    assert result.exit_code == 0
    assert result.output.endswith("No changes. Reports are up to date.\n")
    assert look(STATE.parent) == before
    assert loaded().serial == applied.serial


@pytest.mark.parametrize(
    "command", [["plan", "--emulator"], ["apply", "--emulator", "--auto-approve"], ["render"]]
)
def test_a_corrupt_state_stops_the_command_and_changes_nothing(
    workspace: Path, applied: State, command: list[str]
) -> None:
    shutil.copy(STATE, backup_path(STATE))
    STATE.write_text('{"format_version": 1, "lineage": ', encoding="utf-8")
    files = {p: p.read_bytes() for p in sorted(workspace.rglob("*")) if p.is_file()}

    result = run(*command)

    assert result.exit_code == 1
    assert result.output == (
        "Error: .casereport/state.json: not valid JSON (line 1, column 34); restore the "
        "previous version from .casereport/state.json.backup, or move the file away to start "
        "afresh\n"
    )
    assert {p: p.read_bytes() for p in sorted(workspace.rglob("*")) if p.is_file()} == files


def test_a_newer_state_format_stops_apply(workspace: Path, applied: State) -> None:
    raw = json.loads(STATE.read_text(encoding="utf-8"))
    raw["format_version"] = 99
    STATE.write_text(json.dumps(raw), encoding="utf-8")
    before = pin(STATE.parent)

    result = run("apply", "--emulator", "--auto-approve", "--refresh")

    assert result.exit_code == 1
    assert result.output == (
        f"Error: .casereport/state.json: written by a newer casereport ({raw['tool_version']}, "
        "state format 99; this version reads up to 2); upgrade casereport\n"
    )
    assert look(STATE.parent) == before


# -- credentials ------------------------------------------------------------------------


def files_containing(root: Path, secrets: tuple[str, ...]) -> list[str]:
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            content = path.read_bytes()
            found += [f"{path.relative_to(root)}: {s}" for s in secrets if s.encode() in content]
    return found


@pytest.fixture
def keep_journal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Leave the apply journal in place, so its content can be checked too."""
    monkeypatch.setattr(journal, "discard", lambda state_path, own=None: None)


def test_keys_in_the_environment_never_reach_a_file_with_the_emulator(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, keep_journal: None
) -> None:
    secrets = ("dd-api-key-0123456789abcdef", "dd-app-key-fedcba9876543210")
    monkeypatch.setenv("DD_API_KEY", secrets[0])
    monkeypatch.setenv("DD_APP_KEY", secrets[1])

    outputs = [
        run("plan", "--emulator", "--out", "plan.json"),
        run("apply", "--emulator", "--auto-approve"),
        run("show"),
        run("show", "plan.json"),
    ]

    assert [r.exit_code for r in outputs] == [0, 0, 0, 0]
    assert Path(".casereport/state.json.journal").exists()
    assert Path("plan.json").exists()
    assert files_containing(workspace, secrets) == []
    assert not any(s in r.output for r in outputs for s in secrets)


def test_keys_used_for_a_datadog_site_never_reach_a_file(
    workspace: Path,
    monkeypatch: pytest.MonkeyPatch,
    emulator: EmulatorFactory,
    keep_journal: None,
) -> None:
    secrets = ("dd-api-key-0123456789abcdef", "dd-app-key-fedcba9876543210")
    site = emulator(api_key=secrets[0], app_key=secrets[1])
    monkeypatch.setenv("CASEREPORT_API_URL", site.url)
    monkeypatch.setenv("DD_API_KEY", secrets[0])
    monkeypatch.setenv("DD_APP_KEY", secrets[1])

    outputs = [
        run("plan", "--out", "plan.json"),
        run("apply", "plan.json"),
        run("state", "show", plain_address(workspace)),
        run("plan", "--json", "--refresh", "--out", "again.json"),
        run("apply", "--auto-approve", "--refresh"),
    ]

    assert [r.exit_code for r in outputs] == [0, 0, 0, 0, 0], outputs[-1].output
    state = loaded()
    assert state.source is not None
    assert (state.source.kind, state.source.site) == ("datadog", site.url.rstrip("/"))
    assert sorted(state.aggregations) == addresses(workspace)
    # Every request was sent with the keys and accepted: all distinct ones, twice.
    distinct = len({a.fingerprint for a in state.aggregations.values()})
    assert site.stats()["requests"]["POST /api/v2/cases/aggregate"] == {"200": 2 * distinct}
    assert Path(".casereport/state.json.journal").exists()
    assert files_containing(workspace, secrets) == []
    assert not any(s in r.output for r in outputs for s in secrets)
