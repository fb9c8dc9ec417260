"""Terraform's small commands: version, completion, --no-color everywhere, show --json."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from casereport import __version__, terminal
from casereport.cli import cli
from casereport.cli_version import KEY_PACKAGES
from casereport.state.ops import SHOW_JSON_FORMAT_VERSION

REPO = Path(__file__).resolve().parent.parent


def installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def test_version_json_names_every_key_package() -> None:
    result = CliRunner().invoke(cli, ["version", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["casereport"] == __version__
    assert data["python"] == ".".join(str(part) for part in sys.version_info[:3])
    assert data["packages"] == {name: installed(name) for name in KEY_PACKAGES}
    assert set(data) == {"casereport", "python", "implementation", "platform", "packages"}


def test_version_text() -> None:
    result = CliRunner().invoke(cli, ["version"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0] == f"casereport {__version__}"
    assert lines[1].startswith(f"Python {sys.version.split()[0]} (")
    shown = dict(line.split() for line in lines[2:] if "not installed" not in line)
    assert shown == {n: v for n, v in ((n, installed(n)) for n in KEY_PACKAGES) if v}
    missing = [line.split()[0] for line in lines[2:] if line.endswith("not installed")]
    assert missing == [n for n in KEY_PACKAGES if installed(n) is None]


def test_version_imports_none_of_the_packages_it_names() -> None:
    code = (
        "import sys\n"
        "from casereport.cli import main\n"
        "sys.argv = ['casereport', 'version']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('httpx', 'jinja2', 'yaml', 'obstore', 'pulumi') "
        "if m in sys.modules))\n"
    )
    env = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "complete -o nosort -F _casereport_completion casereport"),
        ("zsh", "compdef _casereport_completion casereport"),
        ("fish", "complete --no-files --command casereport"),
    ],
)
def test_completion_scripts(shell: str, marker: str) -> None:
    result = CliRunner().invoke(cli, ["completion", shell])
    assert result.exit_code == 0, result.output
    assert "_CASEREPORT_COMPLETE" in result.output
    assert marker in result.output


def test_completion_of_an_unknown_shell_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["completion", "tcsh"])
    assert result.exit_code == 2
    assert "'tcsh' is not one of 'bash', 'zsh', 'fish'" in result.output


def test_completion_completes_commands() -> None:
    # What the bash script asks for when the user types `casereport ver<TAB>`.
    env = {
        "PYTHONPATH": str(REPO / "src"),
        "PATH": "/usr/bin:/bin",
        "_CASEREPORT_COMPLETE": "bash_complete",
        "COMP_WORDS": "casereport ver",
        "COMP_CWORD": "1",
    }
    out = subprocess.run(
        [sys.executable, "-m", "casereport"], capture_output=True, text=True, env=env, check=False
    )
    assert out.stdout.splitlines() == ["plain,version"]


def every_command(
    command: click.Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from every_command(sub, (*path, name))


def test_every_command_takes_no_color() -> None:
    for path, command in every_command(cli):
        names = [opt for param in command.params for opt in getattr(param, "opts", ())]
        assert "--no-color" in names, path


def test_no_color_holds_for_its_command_only() -> None:
    assert CliRunner().invoke(cli, ["version", "--no-color"]).exit_code == 0
    assert terminal.use_colour(True) is False
    assert CliRunner().invoke(cli, ["version"]).exit_code == 0
    assert terminal._colour_disabled is False  # main() cleared it for the next command
    assert CliRunner().invoke(cli, ["--no-color", "version"]).exit_code == 0
    assert terminal._colour_disabled is True
    terminal.disable_colour(False)


# -- show --json ---------------------------------------------------------------------


@pytest.fixture
def applied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(REPO / "reports", tmp_path / "reports")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1795719600")
    result = CliRunner().invoke(cli, ["apply", "--emulator", "--auto-approve"])
    assert result.exit_code == 0, result.output
    return tmp_path


def test_show_json_prints_the_state(applied: Path) -> None:
    result = CliRunner().invoke(cli, ["show", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document == {
        "format_version": SHOW_JSON_FORMAT_VERSION,
        "casereport_version": __version__,
        "state_path": ".casereport/state.json",
        "state": json.loads((applied / ".casereport" / "state.json").read_text()),
    }


def test_show_json_without_state_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["show", "--json"])
    assert result.exit_code == 1
    assert result.output == (
        "Error: no state at .casereport/state.json; run `casereport apply` first\n"
    )
