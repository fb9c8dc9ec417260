"""A temporary casereport workspace for the apply scenario and crash tests.

A copy of the example reports in ``reports/``, pointed at an emulator through
``CASEREPORT_API_URL`` (with fake keys), so the emulator's ``/_emulator/stats`` counts
every API call an apply makes. The clock is pinned with ``SOURCE_DATE_EPOCH``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.request import Request, urlopen

import click.testing
from click.testing import CliRunner

from casereport.cli import cli
from casereport.emulator.server import RunningEmulator
from casereport.state.model import State, load_state

EXAMPLE_REPORTS = Path(__file__).resolve().parents[1] / "reports"
#: The pinned clock of the scenarios: 2027-01-15T08:00:00Z.
EPOCH = 1_800_000_000
AGGREGATE = "POST /api/v2/cases/aggregate"
#: Environment variables that would change where or how the CLI calls the API.
CLEARED_ENV = ("DD_SITE", "DD_BEARER_TOKEN", "DD_APPLICATION_KEY", "NO_COLOR", "CASEREPORT_DEBUG")


def api_env(emulator: RunningEmulator, epoch: int = EPOCH) -> dict[str, str]:
    """The environment that points a run at ``emulator`` with the clock at ``epoch``."""
    return {
        "CASEREPORT_API_URL": emulator.url,
        "DD_API_KEY": "fake-api-key",
        "DD_APP_KEY": "fake-app-key",
        "SOURCE_DATE_EPOCH": str(epoch),
    }


def api_calls(emulator: RunningEmulator) -> int:
    """API requests the emulator served since its last reset."""
    return int(emulator.stats()["total"])


def reset_stats(emulator: RunningEmulator) -> None:
    with urlopen(Request(f"{emulator.url}/_emulator/stats", method="DELETE"), timeout=10):
        pass


def copy_reports(root: Path, source: Path = EXAMPLE_REPORTS) -> Path:
    reports = root / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("*.yaml")):
        shutil.copyfile(path, reports / path.name)
    return reports


class Workspace:
    """A workspace directory (the current directory of the runs) and its CLI."""

    def __init__(self, root: Path, emulator: RunningEmulator, *, examples: bool = True) -> None:
        self.root = root
        self.emulator = emulator
        self.epoch = EPOCH
        self.reports = copy_reports(root) if examples else root / "reports"
        self.site = root / "site"
        self.state_path = root / ".casereport" / "state.json"

    # -- running commands ------------------------------------------------------------

    def env(self, **overrides: str | None) -> dict[str, str | None]:
        env: dict[str, str | None] = dict.fromkeys(CLEARED_ENV)
        env.update(api_env(self.emulator, self.epoch))
        env.update(overrides)
        return env

    def run(self, *args: str, **env: str | None) -> click.testing.Result:
        """``casereport ARGS`` in the workspace (the test chdir'ed into it)."""
        return CliRunner().invoke(cli, list(args), env=self.env(**env), catch_exceptions=False)

    def apply(self, *args: str, **env: str | None) -> click.testing.Result:
        result = self.run("apply", "--auto-approve", *args, **env)
        assert result.exit_code == 0, result.output
        return result

    def plan(self, *args: str, **env: str | None) -> click.testing.Result:
        return self.run("plan", "--detailed-exitcode", *args, **env)

    def plan_json(self, *args: str, **env: str | None) -> tuple[int, dict[str, Any]]:
        """``plan --json --detailed-exitcode``: its exit code and the plan."""
        result = self.run("plan", "--json", "--detailed-exitcode", *args, **env)
        assert result.exit_code in (0, 2), result.output
        plan: dict[str, Any] = json.loads(result.stdout)
        return result.exit_code, plan

    def counted(self, *args: str, **env: str | None) -> tuple[click.testing.Result, int]:
        """Run a command and count the API calls it made."""
        reset_stats(self.emulator)
        result = self.run(*args, **env)
        return result, api_calls(self.emulator)

    # -- inspecting ------------------------------------------------------------------

    def state(self) -> State:
        state = load_state(self.state_path)
        assert state is not None
        return state

    def state_json(self) -> dict[str, Any]:
        raw: dict[str, Any] = json.loads(self.state_path.read_text(encoding="utf-8"))
        return raw

    def site_files(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(self.site.iterdir()) if p.is_file()}

    def site_stamps(self) -> dict[str, tuple[int, int]]:
        """Each site file's inode and mtime: an atomic rewrite changes both."""
        stamps = {}
        for path in sorted(self.site.iterdir()):
            stat = path.stat()
            stamps[path.name] = (stat.st_ino, stat.st_mtime_ns)
        return stamps

    # -- editing definitions ---------------------------------------------------------

    def edit(self, report: str, old: str, new: str) -> None:
        path = self.reports / f"{report}.yaml"
        text = path.read_text(encoding="utf-8")
        assert text.count(old) == 1, f"{old!r} is not once in {path}"
        path.write_text(text.replace(old, new), encoding="utf-8")

    def write_report(self, name: str, text: str) -> None:
        (self.reports / f"{name}.yaml").write_text(text, encoding="utf-8")


def actions(plan: Mapping[str, Any]) -> dict[str, str]:
    """Address -> action of a JSON plan's aggregations that are not no-ops."""
    found = {c["address"]: c["actions"][0] for c in plan["aggregations"]}
    return {address: action for address, action in found.items() if action != "no-op"}


def renders(plan: Mapping[str, Any]) -> dict[str, list[str]]:
    """Report -> reasons of a JSON plan's reports that are rendered or deleted."""
    return {
        r["name"]: [r["actions"][0], *r["reasons"]]
        for r in plan["reports"]
        if r["actions"][0] != "no-op"
    }


def changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> set[str]:
    """Keys whose values differ between two mappings (added and removed keys included)."""
    return {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
