"""``casereport init``: a working workspace, never overwriting anything."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from casereport.definitions.expand import expand_workspace
from casereport.definitions.fmt import format_text
from casereport.definitions.scaffold import EXAMPLE_REPORT, init_workspace
from casereport.errors import ConfigError
from casereport.settings import Settings, load_settings

FILES = [
    "casereport.toml",
    EXAMPLE_REPORT,
    "schema/report.schema.json",
    "templates/README.md",
    ".gitignore",
]


def test_init_creates_a_workspace_that_validates(tmp_path: Path) -> None:
    workspace = tmp_path / "new" / "reports-ws"
    result = init_workspace(workspace)
    assert [p.relative_to(workspace).as_posix() for p in result.created] == FILES
    assert result.updated == ()
    settings, expansion = expand_workspace(workspace)
    assert expansion.diagnostics == ()
    assert [r.name for r in expansion.reports] == ["open-cases"]
    assert len(expansion.aggregations) == 5
    assert settings.vars == {"environment": "prod"}
    assert expansion.aggregations[0].query_filter == "env:prod"


def test_scaffolded_files_are_right(tmp_path: Path) -> None:
    init_workspace(tmp_path)
    report = (tmp_path / EXAMPLE_REPORT).read_text()
    assert report.startswith("# yaml-language-server: $schema=../schema/report.schema.json\n")
    assert format_text(report) == report  # already in canonical style
    assert (tmp_path / ".gitignore").read_text() == "# casereport\nsite/\n.casereport/\n"
    assert "overrides go here" in (tmp_path / "templates" / "README.md").read_text()
    # Every setting in the scaffolded file is at its default, and every setting but the
    # optional tables (and site_url, which has none) is written there, to be found.
    defaults = load_settings(tmp_path / "nowhere")
    settings = load_settings(tmp_path)
    text = (tmp_path / "casereport.toml").read_text()
    for setting in fields(Settings):
        name = setting.name
        if name in ("root", "source", "vars"):
            continue
        mine, default = getattr(settings, name), getattr(defaults, name)
        if isinstance(default, Path):
            assert mine.relative_to(tmp_path) == default.relative_to(tmp_path / "nowhere")
        else:
            assert mine == default, name
        commented = name in ("backend", "site_url", "notify")
        assert (f"\n# {name} = " if commented else f"\n{name} = ") in text or (
            commented and f"# [{name}" in text
        ), name
    # Each commented example, uncommented, sets what it says (not a variable of [vars]).
    (tmp_path / "casereport.toml").write_text(
        re.sub(r"^# ((?:\[|site_url|url|type|webhook_url_env|on)\b)", r"\1", text, flags=re.M)
    )
    examples = load_settings(tmp_path)
    assert examples.site_url == "https://reports.example.com"
    assert examples.vars == {"environment": "prod"}
    assert examples.backend.url == "s3://my-bucket/casereport"
    (team,) = examples.notify
    assert (team.name, team.type, team.on) == ("team", "slack", ("change", "check_failed"))


def test_init_refuses_to_overwrite_and_names_the_files(tmp_path: Path) -> None:
    (tmp_path / "casereport.toml").write_text("# mine\n")
    (tmp_path / "reports").mkdir()
    (tmp_path / EXAMPLE_REPORT).write_text("title: mine\n")
    with pytest.raises(ConfigError) as caught:
        init_workspace(tmp_path)
    assert caught.value.message == (
        f"refusing to overwrite existing files in {tmp_path}: casereport.toml, "
        "reports/open-cases.yaml (nothing was written: move them away, or run init in another "
        "directory)"
    )
    assert (tmp_path / "casereport.toml").read_text() == "# mine\n"
    assert not (tmp_path / "templates").exists()  # nothing was written


def test_init_adds_missing_lines_to_an_existing_gitignore(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("node_modules/\nsite/")
    result = init_workspace(tmp_path)
    assert result.updated == (tmp_path / ".gitignore",)
    assert (
        tmp_path / ".gitignore"
    ).read_text() == "node_modules/\nsite/\n# casereport\n.casereport/\n"


def test_init_into_a_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="it exists and is not a directory"):
        init_workspace(tmp_path / "file")


def test_init_in_a_non_empty_directory_leaves_other_files_alone(tmp_path: Path) -> None:
    # What `init --help` promises: the directory need not be empty.
    (tmp_path / "notes.txt").write_text("mine\n")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "other.yaml").write_text("title: other\n")
    result = init_workspace(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine\n"
    assert (tmp_path / "reports" / "other.yaml").read_text() == "title: other\n"
    assert tmp_path / EXAMPLE_REPORT in result.created
