"""The ``[backend]`` table of casereport.toml and the workspace names (issue 14)."""

from __future__ import annotations

from pathlib import Path

import pytest

from casereport.errors import ConfigError
from casereport.settings import BackendSettings, read_settings
from casereport.state.backend import (
    check_workspace,
    local_state_path,
    state_key,
    workspace_site_dir,
)


def problems(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / "casereport.toml").write_text(text, encoding="utf-8")
    return [str(p) for p in read_settings(tmp_path)[1]]


def test_the_backend_table_is_read(tmp_path: Path) -> None:
    (tmp_path / "casereport.toml").write_text(
        '[backend]\nurl = "s3://acme-state/support"\nendpoint_url = "http://127.0.0.1:9000"\n'
        'region = "eu-west-1"\n',
        encoding="utf-8",
    )
    settings, found = read_settings(tmp_path)
    assert found == ()
    assert settings.backend == BackendSettings(
        "s3://acme-state/support", "http://127.0.0.1:9000", "eu-west-1"
    )


def test_without_a_backend_table_the_state_is_local(tmp_path: Path) -> None:
    assert read_settings(tmp_path)[0].backend == BackendSettings("local", None, None)


def test_every_problem_of_the_backend_table_names_its_line(tmp_path: Path) -> None:
    toml = tmp_path / "casereport.toml"
    assert problems(tmp_path, '[backend]\nurl = "s3://x"\nregoin = "eu"\nregion = 3\n') == [
        f'{toml}:2:1: error: backend url "s3://x" is neither "local" nor "s3://BUCKET/PREFIX" '
        "(S3 and S3-compatible stores such as MinIO or R2)",
        f'{toml}:3:1: error: unknown backend setting "regoin" (did you mean "region"?)',
        f'{toml}:4:1: error: backend "region" must be a non-empty string',
    ]
    assert problems(tmp_path, 'backend = "s3://a-bucket/x"\n') == [
        f'{toml}:1:1: error: "backend" must be a table ([backend] with url = "s3://...")'
    ]


def test_workspace_names_and_where_their_states_and_sites_are() -> None:
    assert check_workspace("staging") == "staging"
    for bad in ("", "Prod", "../x", "a" * 65, "-x"):
        with pytest.raises(ConfigError, match="a workspace name is 1 to 64"):
            check_workspace(bad)
    state = Path(".casereport/state.json")
    assert local_state_path(state, "default") == state
    assert local_state_path(state, "staging") == Path(".casereport/workspaces/staging/state.json")
    assert state_key("default") == "state.json"
    assert state_key("staging") == "workspaces/staging/state.json"
    assert workspace_site_dir(Path("site"), "default") == Path("site")
    assert workspace_site_dir(Path("out/site"), "staging") == Path("out/site-staging")
