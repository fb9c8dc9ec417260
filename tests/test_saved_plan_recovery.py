"""A saved plan made after an interrupted apply applies: it names the state file as on disk.

`plan` reads the state with the interrupted apply's journal replayed; `apply PLAN` folds
that journal into the state (a new serial) before applying. The plan must be checked
against the file from before that fold, or it would always be refused as stale.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from casereport.cli import cli
from casereport.state import journal
from casereport.state.model import Source, load_state

EXAMPLE_REPORTS = Path(__file__).resolve().parents[1] / "reports"
STATE = Path(".casereport/state.json")


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "reports").mkdir()
    for path in sorted(EXAMPLE_REPORTS.glob("*.yaml")):
        shutil.copyfile(path, tmp_path / "reports" / path.name)
    monkeypatch.chdir(tmp_path)
    for name in ("DD_API_KEY", "DD_APP_KEY", "CASEREPORT_API_URL", "DD_SITE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1790000000")
    return tmp_path


def run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def interrupted_apply(address: str, total: float) -> None:
    """Leave a journal as an apply killed after one result arrived would."""
    disk = load_state(STATE)
    assert disk is not None and disk.source is not None
    entry = disk.aggregations[address]
    fetched = replace(
        entry, result={**entry.result, "total": total}, fetched_at="2026-09-21T13:00:00Z"
    )
    log = journal.Journal.open(STATE, disk, Source(**disk.source.to_json()))
    log.append([fetched])
    log.close()


def test_a_plan_saved_after_an_interrupted_apply_applies(workspace: Path) -> None:
    run("apply", "--emulator", "--auto-approve")
    address = "support-backlog.by_status"
    interrupted_apply(address, 12345.0)
    serial = json.loads(STATE.read_text())["serial"]

    run("plan", "--emulator", "--refresh", "--out", "plan.json")
    saved = json.loads(Path("plan.json").read_text())
    assert saved["state"]["serial"] == serial  # the file on disk, not the replayed state

    output = run("apply", "plan.json")
    assert output.splitlines()[-1].startswith("Apply complete: ")
    assert not journal.journal_path(STATE).exists()
    assert json.loads(STATE.read_text())["serial"] > serial
