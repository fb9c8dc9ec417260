"""The GitHub workflow (``.github/workflows/casereport.yml``), its shell steps run here as
the runner runs them: ``bash --noprofile --norc -eo pipefail``, so an assignment whose
command substitution fails ends the step, as it would on GitHub.

The actions it uses (checkout, setup-python, the AWS credentials, uploads) cannot run here;
the steps that are shell are the workflow's own logic, and run against a copy of the
repository's reports with the casereport under test standing in for ``make install``'s.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli_workspace import API_ENVIRONMENT, EXAMPLE_REPORTS

WORKFLOW = Path(__file__).resolve().parents[1] / ".github" / "workflows" / "casereport.yml"
# GitHub's `shell: bash` on Linux runners.
RUNNER_BASH = ("bash", "--noprofile", "--norc", "-eo", "pipefail")


def workflow() -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    return loaded


def step(job: str, name: str) -> dict[str, Any]:
    (found,) = [s for s in workflow()["jobs"][job]["steps"] if s.get("name") == name]
    return dict(found)


def checkout(root: Path) -> Path:
    """The repository's reports, and the casereport under test as `make install` leaves it."""
    shutil.copytree(EXAMPLE_REPORTS, root / "reports")
    (root / ".venv" / "bin").mkdir(parents=True)
    (root / ".venv" / "bin" / "casereport").symlink_to(Path(sys.executable).parent / "casereport")
    return root


def unset(expression: str) -> str:
    """A workflow expression's value in a repository that sets no variable or secret:
    ``${{ vars.X || 'default' }}`` is the default, ``${{ vars.X }}`` is empty."""
    match = re.fullmatch(r"\$\{\{ *(?:vars|secrets)\.\w+ *(?:\|\| *'([^']*)' *)?\}\}", expression)
    assert match is not None, f"an expression this test does not evaluate: {expression}"
    return match[1] or ""


def run_step(root: Path, script: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in API_ENVIRONMENT}
    # The workflow's own environment first, as the runner sets it; then the case's.
    workflow_env = {name: unset(value) for name, value in workflow()["env"].items()}
    return subprocess.run(
        [*RUNNER_BASH, "-c", script],
        cwd=root,
        env={**clean, **workflow_env, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("datadog", [False, True], ids=["no secret", "with the secret"])
def test_the_pull_request_plan_step_runs_with_the_datadog_key_and_without(
    tmp_path: Path, datadog: bool
) -> None:
    root = checkout(tmp_path)
    script = step("plan", "Plan")["run"]
    # A secret that is not set reaches the step as an empty variable.
    env = (
        {"DD_API_KEY": "key", "DD_APP_KEY": "app", "CASEREPORT_API_URL": "http://127.0.0.1:9"}
        if datadog
        else {"DD_API_KEY": "", "DD_APP_KEY": ""}
    )
    done = run_step(root, script, **env)
    assert done.returncode == 0, done.stderr
    text = (root / "plan.txt").read_text(encoding="utf-8")
    source = "Source: Datadog (http://127.0.0.1:9)" if datadog else "Source: local emulator"
    assert text.startswith(source)
    saved = json.loads((root / "plan.json").read_text(encoding="utf-8"))
    assert saved["format_version"] >= 1
    assert saved["counts"]["to_fetch"] == saved["counts"]["new"] == 19
    assert [a["actions"] for a in saved["aggregations"]] == [["create"]] * 19
    markdown = (root / "plan.md").read_text(encoding="utf-8")
    assert markdown.startswith("### casereport plan\n\n**Plan: 19 to fetch (19 new, ")


def test_the_workflow_environment_unset_is_what_casereport_takes_for_defaults() -> None:
    # An unset repository variable reaches casereport as an empty string, not as no variable.
    assert {name: unset(value) for name, value in workflow()["env"].items()} == {
        "DD_SITE": "datadoghq.com",
        "DD_API_KEY": "",
        "DD_APP_KEY": "",
        "CASEREPORT_BACKEND": "",
    }


def test_the_aws_role_is_assumed_only_when_one_is_set() -> None:
    # A workspace whose state is local (the default) has no role to assume: the action
    # would fail every run, so each job skips it then.
    for job in ("plan", "report"):
        aws = step(job, "AWS credentials for the state bucket (OIDC)")
        assert aws["uses"].startswith("aws-actions/configure-aws-credentials@")
        assert aws["if"] == "vars.AWS_ROLE_ARN != ''"
        assert aws["with"]["role-to-assume"] == "${{ vars.AWS_ROLE_ARN }}"


def test_every_shell_step_is_valid_bash() -> None:
    for job in workflow()["jobs"].values():
        for each in job["steps"]:
            if "run" in each:
                checked = subprocess.run(
                    ["bash", "-n", "-c", each["run"]], capture_output=True, text=True, check=False
                )
                assert checked.returncode == 0, (each["name"], checked.stderr)
