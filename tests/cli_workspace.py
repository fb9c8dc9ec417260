"""A workspace of the example reports for CLI tests run in-process (``CliRunner``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from casereport.cli import cli

EXAMPLE_REPORTS = Path(__file__).resolve().parents[1] / "reports"
#: What would point a run at Datadog, or change how it reports errors.
API_ENVIRONMENT = (
    "DD_API_KEY",
    "DD_APP_KEY",
    "DD_APPLICATION_KEY",
    "DD_BEARER_TOKEN",
    "DD_SITE",
    "CASEREPORT_API_URL",
    "CASEREPORT_DEBUG",
)


def example_workspace(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example reports in ``root/reports``, ``root`` the current directory, no
    credentials in the environment and the clock pinned."""
    (root / "reports").mkdir(parents=True)
    for path in sorted(EXAMPLE_REPORTS.glob("*.yaml")):
        shutil.copyfile(path, root / "reports" / path.name)
    monkeypatch.chdir(root)
    for name in API_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1790000000")
    return root


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def ok(*args: str) -> Result:
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result
