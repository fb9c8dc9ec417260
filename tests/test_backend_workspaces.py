"""Workspaces and whole-state copies (``state.workspaces``, ``state.backend``) refuse
mistakes with one line each, on the local backend: the same code runs for a bucket.

What a user relies on: ``default`` cannot be created or deleted, a workspace in use or
holding results is not deleted by accident, a copy never replaces another lineage's or a
newer state unless forced (and keeps a ``.backup`` when it does), and each refusal says
what to do.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from casereport.errors import ConfigError, StateError
from casereport.settings import BackendSettings, Settings
from casereport.state.backend import (
    Found,
    LocalBackend,
    check_workspace,
    local_state_path,
    open_backend,
    state_key,
    workspace_hint,
    workspace_site_dir,
)
from casereport.state.model import MAX_FORMAT_VERSION, parse_state, serialise
from casereport.state.remote import located
from casereport.state.workspaces import (
    copy_state,
    delete_workspace,
    list_workspaces,
    new_workspace,
    pull,
    push,
)
from test_state import sample_state

BUCKET = "s3://some-bucket/casereport"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        root=tmp_path, site_dir=tmp_path / "site", state_path=tmp_path / ".casereport/state.json"
    )


def message(excinfo: pytest.ExceptionInfo[ConfigError] | pytest.ExceptionInfo[StateError]) -> str:
    return str(excinfo.value.message)


def write(path: Path, serial: int = 3, **fields: object) -> bytes:
    data = serialise(replace(sample_state(**fields), serial=serial)).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


# -- names and places ------------------------------------------------------------------------


def test_where_each_workspace_lives(tmp_path: Path) -> None:
    state = tmp_path / ".casereport" / "state.json"
    assert local_state_path(state, "default") == state
    assert local_state_path(state, "staging") == (
        tmp_path / ".casereport" / "workspaces" / "staging" / "state.json"
    )
    assert workspace_site_dir(tmp_path / "site", "default") == tmp_path / "site"
    assert workspace_site_dir(tmp_path / "site", "staging") == tmp_path / "site-staging"
    assert state_key("default") == "state.json"
    assert state_key("staging") == "workspaces/staging/state.json"
    assert workspace_hint("default") == ""
    assert workspace_hint("staging") == " --workspace staging"


@pytest.mark.parametrize("name", ["Prod", "-x", "a" * 65, "", "a/b"])
def test_a_bad_workspace_name_is_refused_with_the_rule(name: str) -> None:
    with pytest.raises(ConfigError) as refused:
        check_workspace(name)
    assert message(refused) == (
        f"workspace {name!r}: a workspace name is 1 to 64 lower-case letters, digits, "
        '"-" or "_", starting with a letter or digit'
    )


@pytest.mark.parametrize("name", ["a", "a" * 64, "0-x_y"])
def test_a_good_workspace_name_is_kept(name: str) -> None:
    assert check_workspace(name) == name


def test_state_names_a_local_file_so_it_is_refused_with_a_bucket(settings: Settings) -> None:
    with pytest.raises(ConfigError) as refused:
        open_backend(settings, BUCKET, "default", state_path=Path("other.json"))
    assert message(refused) == (
        f"--state names a local state file, but the state is in {BUCKET}; "
        "drop --state, or pass --backend local"
    )
    opened = open_backend(settings, None, "default", state_path=Path("other.json"))
    assert isinstance(opened, LocalBackend) and opened.path == Path("other.json")


def test_a_local_workspace_must_exist_and_cannot_be_combined_with_state(
    settings: Settings,
) -> None:
    located_args = {"backend_url": None, "site_dir": None, "operation": None}
    with (
        pytest.raises(ConfigError) as both,
        located(settings, workspace="staging", state_path=Path("x.json"), **located_args),
    ):
        pass
    assert message(both) == "--state names one state file: drop it to use --workspace"
    with (
        pytest.raises(StateError) as missing,
        located(settings, workspace="staging", state_path=None, **located_args),
    ):
        pass
    assert message(missing) == (
        "workspace 'staging' does not exist in the local backend; create it with "
        "`casereport workspace new staging` (`casereport workspace list` shows them)"
    )
    new_workspace(settings, None, "staging")
    with located(settings, workspace="staging", state_path=None, **located_args) as where:
        assert where == (
            settings.state_path.parent / "workspaces/staging/state.json",
            settings.root / "site-staging",
        )
    with located(settings, workspace=None, state_path=None, **located_args) as where:
        assert where == (None, None)  # the default workspace: the settings' own


# -- workspace new | list | delete ---------------------------------------------------------


def test_default_cannot_be_created_or_deleted(settings: Settings) -> None:
    with pytest.raises(ConfigError) as created:
        new_workspace(settings, None, "default")
    assert message(created) == "the workspace 'default' always exists; nothing to create"
    with pytest.raises(ConfigError) as deleted:
        delete_workspace(settings, None, "default", current="staging")
    assert message(deleted) == "the workspace 'default' cannot be deleted"


def test_a_workspace_is_created_once_with_an_empty_state(settings: Settings) -> None:
    where = new_workspace(settings, None, "staging")
    path = settings.state_path.parent / "workspaces" / "staging" / "state.json"
    assert where == str(path)
    created = parse_state(path, path.read_bytes())
    assert (created.serial, created.aggregations, created.reports) == (0, {}, {})
    with pytest.raises(StateError) as again:
        new_workspace(settings, None, "staging")
    assert message(again) == f"workspace 'staging' already exists ({path})"


def test_the_list_holds_default_first_then_each_workspace_with_a_state(
    settings: Settings,
) -> None:
    assert list_workspaces(settings, None) == ["default"]
    folder = settings.state_path.parent / "workspaces"
    for name in ("zeta", "alpha"):
        new_workspace(settings, None, name)
    (folder / "empty").mkdir()  # no state file in it
    write(folder / "Upper" / "state.json")  # not a workspace name
    write(folder / "default" / "state.json")  # listed once, first
    assert list_workspaces(settings, None) == ["default", "alpha", "zeta"]


def test_delete_refuses_the_one_in_use_a_missing_one_and_one_holding_results(
    settings: Settings,
) -> None:
    with pytest.raises(ConfigError) as in_use:
        delete_workspace(settings, None, "staging", current="staging")
    assert message(in_use) == (
        "workspace 'staging' is the one in use (--workspace or CASEREPORT_WORKSPACE); "
        "switch to another before deleting it"
    )
    path = settings.state_path.parent / "workspaces" / "staging" / "state.json"
    with pytest.raises(StateError) as missing:
        delete_workspace(settings, None, "staging", current="default")
    assert message(missing) == f"workspace 'staging' does not exist ({path})"
    write(path)
    path.with_name("state.json.backup").write_bytes(b"{}")
    with pytest.raises(StateError) as holding:
        delete_workspace(settings, None, "staging", current="default")
    assert message(holding) == (
        f"workspace 'staging' holds 2 results and 1 report ({path}); "
        "pass --force to delete them and their history"
    )
    assert path.exists()
    assert delete_workspace(settings, None, "staging", current="default", force=True) == str(path)
    assert not path.parent.exists()  # the state, its backup and its directory


def test_a_damaged_workspace_is_deleted_only_when_forced(settings: Settings) -> None:
    path = settings.state_path.parent / "workspaces" / "staging" / "state.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"{not json")
    with pytest.raises(StateError) as refused:
        delete_workspace(settings, None, "staging", current="default")
    # What it holds cannot be read, so it may hold results: as one holding results.
    assert (
        message(refused)
        == f"{path}: not valid JSON (line 1, column 2); pass --force to delete it and its .backup"
    )
    assert path.exists()
    assert delete_workspace(settings, None, "staging", current="default", force=True) == str(path)
    assert not path.parent.exists()


def test_an_empty_workspace_is_deleted_without_force(settings: Settings) -> None:
    new_workspace(settings, None, "staging")
    delete_workspace(settings, None, "staging", current="")
    assert list_workspaces(settings, None) == ["default"]


# -- copies: state push | pull | migrate ---------------------------------------------------


def backends(tmp_path: Path) -> tuple[LocalBackend, LocalBackend]:
    return LocalBackend(tmp_path / "a" / "state.json"), LocalBackend(tmp_path / "b" / "state.json")


def test_a_copy_needs_two_places_and_a_state(tmp_path: Path) -> None:
    source, destination = backends(tmp_path)
    with pytest.raises(ConfigError) as same:
        copy_state(source, LocalBackend(source.path), operation="state push")
    assert message(same) == f"{source.where} is both the source and the destination"
    with pytest.raises(StateError) as empty:
        copy_state(source, destination, operation="state push")
    assert message(empty) == f"no state at {source.where}; nothing to copy"
    assert not destination.path.exists()


def test_a_copy_to_an_empty_place_says_what_it_copied(tmp_path: Path) -> None:
    source, destination = backends(tmp_path)
    data = write(source.path, serial=3)
    said = copy_state(source, destination, operation="state push")
    lineage = sample_state().lineage
    assert said == (
        f"Copied the state (lineage {lineage}, serial 3, 2 results) "
        f"from {source.where} to {destination.where}."
    )
    assert destination.path.read_bytes() == data
    assert not destination.path.with_name("state.json.backup").exists()
    again = copy_state(source, destination, operation="state push")
    assert again == f"{destination.where} already holds this state (serial 3)."


def test_a_copy_refuses_a_newer_state_or_another_lineage_unless_forced(tmp_path: Path) -> None:
    source, destination = backends(tmp_path)
    data = write(source.path, serial=3)
    newer = write(destination.path, serial=5)
    with pytest.raises(StateError) as refused:
        copy_state(source, destination, operation="state pull")
    assert message(refused) == (
        f"{destination.where} holds a newer state (serial 5, not 3); nothing was copied "
        "(pass --force to replace it: its previous version is kept as a .backup)"
    )
    assert destination.path.read_bytes() == newer
    other = write(destination.path, serial=1, lineage="0" * 8)
    with pytest.raises(StateError) as lineage:
        copy_state(source, destination, operation="state pull")
    assert message(lineage).startswith(
        f"{destination.where} holds another state (lineage {'0' * 8}, not "
        f"{sample_state().lineage}); nothing was copied"
    )
    copy_state(source, destination, operation="state pull", force=True)
    assert destination.path.read_bytes() == data
    assert destination.path.with_name("state.json.backup").read_bytes() == other


def test_a_damaged_destination_is_replaced_only_when_forced_its_backup_kept(
    tmp_path: Path,
) -> None:
    source, destination = backends(tmp_path)
    data = write(source.path, serial=3)
    good = write(destination.path.with_name("state.json.backup"), serial=2)
    destination.path.write_bytes(b'{"format_version": 1}')
    with pytest.raises(StateError) as refused:
        copy_state(source, destination, operation="state pull")
    assert message(refused) == (
        f"{destination.where}: malformed: no lineage, serial, tool_version, source, aggregations, "
        "reports, site; nothing was copied (pass --force to replace it; its .backup is kept)"
    )
    assert destination.path.read_bytes() == b'{"format_version": 1}'
    copy_state(source, destination, operation="state pull", force=True)
    assert destination.path.read_bytes() == data
    # The backup still holds the last good state, not the damaged one.
    assert destination.path.with_name("state.json.backup").read_bytes() == good


def test_a_state_from_a_newer_casereport_is_never_replaced_nor_deleted(
    settings: Settings, tmp_path: Path
) -> None:
    source, destination = backends(tmp_path)
    write(source.path, serial=3)
    newer = json.dumps({"format_version": 99, "tool_version": "9.0"}).encode()
    destination.path.parent.mkdir(parents=True)
    destination.path.write_bytes(newer)
    said = (
        f"written by a newer casereport (9.0, state format 99; this version reads up to "
        f"{MAX_FORMAT_VERSION}); upgrade casereport"
    )
    with pytest.raises(StateError) as copied:
        copy_state(source, destination, operation="state pull", force=True)
    assert message(copied) == f"{destination.where}: {said}"
    assert destination.path.read_bytes() == newer
    path = settings.state_path.parent / "workspaces" / "staging" / "state.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(newer)
    with pytest.raises(StateError) as deleted:
        delete_workspace(settings, None, "staging", current="default", force=True)
    assert message(deleted) == f"{path}: {said}"
    assert path.read_bytes() == newer


def test_a_damaged_source_is_named_with_its_own_fix(tmp_path: Path) -> None:
    source, destination = backends(tmp_path)
    source.path.parent.mkdir(parents=True)
    source.path.write_bytes(b"[]")
    for force in (False, True):
        with pytest.raises(StateError) as refused:
            copy_state(source, destination, operation="state push", force=force)
        assert message(refused) == (
            f"{source.where}: not a casereport state (expected a JSON object); move the file "
            "away to start afresh (the next apply re-fetches everything)"
        )
    assert not destination.path.exists()


def test_an_older_state_of_the_same_lineage_is_replaced_without_force(tmp_path: Path) -> None:
    source, destination = backends(tmp_path)
    data = write(source.path, serial=3)
    write(destination.path, serial=2)
    copy_state(source, destination, operation="state pull")
    assert destination.path.read_bytes() == data
    write(destination.path, serial=3, site_outputs={})  # the same serial: not newer
    copy_state(source, destination, operation="state pull")
    assert destination.path.read_bytes() == data


@pytest.mark.parametrize(("command", "copy"), [("state push", push), ("state pull", pull)])
def test_push_and_pull_need_a_bucket(settings: Settings, command: str, copy: object) -> None:
    with pytest.raises(ConfigError) as refused:
        copy(settings, None, "default")  # type: ignore[operator]
    assert message(refused) == (
        f"{command} moves a state between this machine and a bucket: set [backend] url "
        "in casereport.toml, or pass --backend s3://BUCKET/PREFIX"
    )


def test_a_bad_backend_option_is_refused_with_its_name(settings: Settings) -> None:
    with pytest.raises(ConfigError) as refused:
        list_workspaces(settings, "gs://bucket/x")
    assert message(refused).startswith('--backend: backend url "gs://bucket/x" is neither')
    assert list_workspaces(replace(settings, backend=BackendSettings()), "local") == ["default"]


# -- the local backend's own reads and writes ----------------------------------------------


def test_the_local_backend_refuses_a_lost_race_and_names_unreadable_places(
    tmp_path: Path,
) -> None:
    backend = LocalBackend(tmp_path / "state.json")
    assert backend.read() is None
    backend.write(b"one", None)
    first = backend.read()
    assert first is not None and first.data == b"one" and len(first.version) == 64
    with pytest.raises(StateError) as lost:
        backend.write(b"two", Found(b"", "stale"))
    assert message(lost) == (
        f"{backend.where}: the state changed since this run read it (another run wrote it); "
        "nothing was overwritten; run again"
    )
    with pytest.raises(StateError):
        backend.write(b"two", None)  # expected absent, but there is one
    backend.write(b"two", first)
    assert backend.path.read_bytes() == b"two"
    assert tmp_path.joinpath("state.json.backup").read_bytes() == b"one"

    folder = LocalBackend(tmp_path)  # a directory where the state should be
    with pytest.raises(StateError) as unreadable:
        folder.read()
    assert message(unreadable) == f"{tmp_path}: cannot read the state: Is a directory"
    (tmp_path / "gone").symlink_to(tmp_path / "nowhere")  # a dangling link as its folder
    blocked = LocalBackend(tmp_path / "gone" / "state.json")
    with pytest.raises(StateError) as unwritable:
        blocked.write(b"x", None)
    assert message(unwritable) == f"{blocked.path}: cannot write the state: File exists"


def test_a_deleted_workspaces_directory_is_kept_when_other_files_are_in_it(
    settings: Settings,
) -> None:
    new_workspace(settings, None, "staging")
    folder = settings.state_path.parent / "workspaces" / "staging"
    (folder / "notes.txt").write_text("mine\n", encoding="utf-8")
    delete_workspace(settings, None, "staging", current="default")
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    assert list_workspaces(settings, None) == ["default"]


def test_the_local_backend_makes_the_folders_of_a_new_state(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path / "a" / "b" / "state.json")
    backend.write(b"one", None)
    assert backend.path.read_bytes() == b"one"


@pytest.mark.parametrize(
    ("fields", "held"),
    [
        ({"reports": {}}, "2 results and 0 reports"),
        ({"aggregations": {}}, "0 results and 1 report"),
    ],
)
def test_a_workspace_holding_results_or_reports_alone_is_kept_without_force(
    settings: Settings, fields: dict[str, object], held: str
) -> None:
    path = settings.state_path.parent / "workspaces" / "staging" / "state.json"
    write(path, **fields)
    with pytest.raises(StateError) as holding:
        delete_workspace(settings, None, "staging", current="default")
    assert f"workspace 'staging' holds {held} ({path})" in message(holding)
    assert path.exists()


def test_a_damaged_state_is_named_where_it_was_read(tmp_path: Path) -> None:
    source, destination = backends(tmp_path)
    source.path.parent.mkdir(parents=True)
    source.path.write_bytes(b"{not json")
    with pytest.raises(StateError) as damaged:
        copy_state(source, destination, operation="state push")
    assert message(damaged).startswith(f"{source.where}:")
    assert not destination.path.exists()
