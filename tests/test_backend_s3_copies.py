"""``state push | pull | migrate`` and the workspace commands on a bucket of moto's S3
server: each honours ``--state``, ``--force`` and ``--lock-timeout``, and names itself in
the lock it takes (what another run's lock error shows).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from casereport.errors import LockError, StateError
from casereport.settings import BackendSettings, Settings
from casereport.state.backend import Found, LocalBackend, S3Backend, state_key
from casereport.state.lock import LockInfo, state_lock
from casereport.state.model import serialise
from casereport.state.objects import NOT_MODIFIED, Bucket
from casereport.state.workspaces import (
    copy_state,
    delete_workspace,
    list_workspaces,
    migrate,
    new_workspace,
    pull,
    push,
)
from s3_server import S3Bucket, s3_bucket, s3_server
from test_state import sample_state

__all__ = ["s3_bucket", "s3_server"]  # fixtures

STATE = "casereport/state.json"


@pytest.fixture
def settings(tmp_path: Path, s3_bucket: S3Bucket) -> Settings:
    """A local state by default; the bucket's endpoint set for ``--backend URL``."""
    return Settings(
        root=tmp_path,
        site_dir=tmp_path / "site",
        state_path=tmp_path / ".casereport" / "state.json",
        backend=BackendSettings(url="local", endpoint_url=s3_bucket.endpoint),
    )


@pytest.fixture
def operations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The operation named in each lock taken (local file or lock object)."""
    taken: list[str] = []
    original = LockInfo.taken_now

    def spy(cls: type[LockInfo], operation: str, path: str) -> LockInfo:
        taken.append(operation)
        return original(operation, path)

    monkeypatch.setattr(LockInfo, "taken_now", classmethod(spy))
    return taken


def state_bytes(serial: int, **fields: object) -> bytes:
    return serialise(replace(sample_state(**fields), serial=serial)).encode()


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def remote_lock_of_another_host(s3_bucket: S3Bucket, key: str = STATE + ".lock") -> None:
    info = {"id": "abc", "operation": "apply", "who": "ci@another-host", "pid": 1}
    s3_bucket.put(
        key, json.dumps({**info, "created": "2026-01-01T00:00:00Z", "path": "x"}).encode()
    )


def test_each_copy_names_itself_in_the_locks_it_takes(
    settings: Settings, s3_bucket: S3Bucket, operations: list[str]
) -> None:
    url = s3_bucket.url()
    write(settings.state_path, state_bytes(3))
    push(settings, url, "default")
    assert operations == ["state push", "state push"]  # the local state's, the bucket's
    operations.clear()
    settings.state_path.unlink()
    pull(settings, url, "default")
    assert operations == ["state pull"]
    operations.clear()
    settings.state_path.unlink()
    migrate(settings, url, "local", "default")
    assert operations == ["state migrate"]
    operations.clear()
    new_workspace(settings, url, "staging")
    delete_workspace(settings, url, "staging", current="default")
    assert operations == ["workspace new", "workspace delete"]
    assert list_workspaces(settings, url) == ["default"]


def test_pull_writes_the_state_file_state_names(settings: Settings, s3_bucket: S3Bucket) -> None:
    s3_bucket.put(STATE, state_bytes(3))
    elsewhere = settings.root / "elsewhere" / "state.json"
    said = pull(settings, s3_bucket.url(), "default", state_path=elsewhere)
    assert elsewhere.read_bytes() == state_bytes(3)
    assert not settings.state_path.exists()
    assert said.endswith(f"from {s3_bucket.url()}/state.json to {elsewhere}.")


def test_push_reads_the_state_file_state_names(settings: Settings, s3_bucket: S3Bucket) -> None:
    elsewhere = settings.root / "elsewhere" / "state.json"
    write(elsewhere, state_bytes(3))
    push(settings, s3_bucket.url(), "default", state_path=elsewhere)
    assert s3_bucket.object(STATE) == state_bytes(3)


def test_push_of_no_state_says_so(settings: Settings, s3_bucket: S3Bucket) -> None:
    with pytest.raises(StateError) as refused:
        push(settings, s3_bucket.url(), "default")
    assert refused.value.message == f"no state at {settings.state_path}; nothing to copy"
    assert s3_bucket.keys() == []


def test_pull_and_migrate_replace_a_newer_state_only_when_forced(
    settings: Settings, s3_bucket: S3Bucket
) -> None:
    url = s3_bucket.url()
    s3_bucket.put(STATE, state_bytes(3))
    write(settings.state_path, state_bytes(5))
    with pytest.raises(StateError, match="holds a newer state"):
        pull(settings, url, "default")
    pull(settings, url, "default", force=True)
    assert settings.state_path.read_bytes() == state_bytes(3)

    s3_bucket.put(STATE, state_bytes(7))
    write(settings.state_path, state_bytes(3))
    with pytest.raises(StateError, match="holds a newer state"):
        migrate(settings, None, url, "default")  # the local state to the bucket
    assert s3_bucket.object(STATE) == state_bytes(7)
    said = migrate(settings, None, url, "default", force=True)
    assert s3_bucket.object(STATE) == state_bytes(3)
    assert s3_bucket.object(STATE + ".backup") == state_bytes(7)
    assert said == (
        f"Copied the state (lineage {sample_state().lineage}, serial 3, 2 results) "
        f"from {settings.state_path} to {url}/state.json."
    )


def test_a_copy_waits_for_a_held_lock_only_when_told(
    settings: Settings, s3_bucket: S3Bucket
) -> None:
    url = s3_bucket.url()
    write(settings.state_path, state_bytes(3))
    remote_lock_of_another_host(s3_bucket)
    for copy in (migrate, push):
        args = (settings, None, url, "default") if copy is migrate else (settings, url, "default")
        with pytest.raises(LockError) as at_once:
            copy(*args)  # type: ignore[operator]
        assert str(at_once.value.message).startswith(f"the state {url}/state.json is locked by")
        with pytest.raises(LockError) as waited:
            copy(*args, timeout=0.3)  # type: ignore[operator]
        assert str(waited.value.message).startswith(
            f"the state {url}/state.json is locked after waiting 0.3 s by ID abc"
        )
    assert s3_bucket.object(STATE) is None

    s3_bucket.clear()
    s3_bucket.put(STATE, state_bytes(3))
    with state_lock(settings.state_path, "apply"):  # a local run holds the local state
        for copy in (pull, push):
            with pytest.raises(LockError) as local_at_once:
                copy(settings, url, "default", force=True)  # type: ignore[operator]
            assert "is locked by" in local_at_once.value.message
            with pytest.raises(LockError) as local_waited:
                copy(settings, url, "default", force=True, timeout=0.3)  # type: ignore[operator]
            assert f"the state {settings.state_path} is locked after waiting 0.3 s by ID " in (
                local_waited.value.message
            )


def test_push_replaces_a_newer_remote_state_only_when_forced(
    settings: Settings, s3_bucket: S3Bucket
) -> None:
    url = s3_bucket.url()
    s3_bucket.put(STATE, state_bytes(7))
    write(settings.state_path, state_bytes(3))
    with pytest.raises(StateError, match="holds a newer state"):
        push(settings, url, "default")
    assert s3_bucket.object(STATE) == state_bytes(7)
    push(settings, url, "default", force=True)
    assert s3_bucket.object(STATE) == state_bytes(3)


def test_a_damaged_remote_state_is_replaced_by_a_forced_push_its_backup_kept(
    settings: Settings, s3_bucket: S3Bucket
) -> None:
    url = s3_bucket.url()
    where = f"{url}/state.json"
    s3_bucket.put(STATE, b"{not json")
    s3_bucket.put(STATE + ".backup", state_bytes(2))  # the last good state
    elsewhere = settings.root / "elsewhere" / "state.json"
    with pytest.raises(StateError) as pulled:
        pull(settings, url, "default", state_path=elsewhere, force=True)  # nothing good to pull
    assert pulled.value.message == (
        f"{where}: not valid JSON (line 1, column 2); put a good state in {elsewhere} and run "
        f"`casereport state push --force --backend {url}` ({where}.backup, if it exists, holds "
        "the state before casereport's last write, and is kept)"
    )
    assert not elsewhere.exists()
    write(settings.state_path, state_bytes(3))
    with pytest.raises(StateError) as refused:
        push(settings, url, "default")
    assert refused.value.message == (
        f"{where}: not valid JSON (line 1, column 2); nothing was copied (pass --force to "
        "replace it; its .backup is kept)"
    )
    assert s3_bucket.object(STATE) == b"{not json"
    push(settings, url, "default", force=True)
    assert s3_bucket.object(STATE) == state_bytes(3)
    assert s3_bucket.object(STATE + ".backup") == state_bytes(2)


def test_the_remote_list_holds_the_workspaces_with_a_state(
    settings: Settings, s3_bucket: S3Bucket
) -> None:
    url = s3_bucket.url()
    new_workspace(settings, url, "staging")
    new_workspace(settings, url, "prod")
    # A killed `workspace new` leaves its folder holding only the lock: not a workspace.
    remote_lock_of_another_host(s3_bucket, "casereport/workspaces/half/state.json.lock")
    s3_bucket.put("casereport/workspaces/deep/x/state.json", state_bytes(1))
    # A state in a folder beside workspaces/ is not a workspace (only workspaces/ is listed).
    s3_bucket.put("casereport/beside/state.json", state_bytes(1))
    assert list_workspaces(settings, url) == ["default", "prod", "staging"]


def test_a_damaged_remote_workspace_is_deleted_only_when_forced(
    settings: Settings, s3_bucket: S3Bucket
) -> None:
    url = s3_bucket.url()
    key = "casereport/workspaces/staging/state.json"
    s3_bucket.put(key, b"[]")
    with pytest.raises(StateError) as refused:
        delete_workspace(settings, url, "staging", current="default")
    assert refused.value.message == (
        f"{url}/workspaces/staging/state.json: not a casereport state (expected a JSON "
        "object); pass --force to delete it and its .backup"
    )
    assert s3_bucket.keys() == [key]
    delete_workspace(settings, url, "staging", current="default", force=True)
    assert s3_bucket.keys() == []


def test_the_workspace_commands_do_not_wait_for_a_held_lock(
    settings: Settings, s3_bucket: S3Bucket
) -> None:
    url = s3_bucket.url()
    new_workspace(settings, url, "staging")
    key = "casereport/workspaces/staging/state.json"
    remote_lock_of_another_host(s3_bucket, key + ".lock")
    with pytest.raises(LockError) as deleting:
        delete_workspace(settings, url, "staging", current="default")
    assert str(deleting.value.message).startswith(
        f"the state s3://{s3_bucket.name}/{key} is locked by ID abc"
    )
    assert str(deleting.value.message).endswith("casereport force-unlock abc --workspace staging")
    remote_lock_of_another_host(s3_bucket, "casereport/workspaces/other/state.json.lock")
    with pytest.raises(LockError) as creating:
        new_workspace(settings, url, "other")
    assert "workspaces/other/state.json is locked by ID abc" in creating.value.message
    assert s3_bucket.object(key) is not None  # not deleted
    assert s3_bucket.object("casereport/workspaces/other/state.json") is None  # nor created


def test_a_copy_does_not_wait_for_a_held_lock_unless_told(
    settings: Settings, s3_bucket: S3Bucket
) -> None:
    source = LocalBackend(settings.state_path)
    write(settings.state_path, state_bytes(3))
    destination = LocalBackend(settings.root / "other" / "state.json")
    with state_lock(destination.path, "apply"):
        with pytest.raises(LockError) as refused:
            copy_state(source, destination, operation="state migrate")
        assert f"the state {destination.path} is locked by ID " in refused.value.message


def test_the_remote_state_is_read_as_any_backends_state(s3_bucket: S3Bucket) -> None:
    backend = S3Backend(
        Bucket(BackendSettings(url=s3_bucket.url(), endpoint_url=s3_bucket.endpoint)),
        state_key("default"),
        "default",
    )
    assert backend.read() is None
    etag = backend.write(b"one", None)
    assert backend.read() == Found(b"one", etag)
    assert backend.read_if_changed('"another"') == Found(b"one", etag)
    assert backend.read_if_changed(etag) is NOT_MODIFIED


def test_a_copy_that_loses_a_race_in_the_bucket_overwrites_nothing(
    settings: Settings, s3_bucket: S3Bucket
) -> None:
    s3_bucket.put(STATE, state_bytes(2))
    theirs = state_bytes(4)

    class Raced(S3Backend):
        def read(self) -> Found | None:
            found = super().read()
            s3_bucket.put(STATE, theirs)  # another writer, between this read and the write
            return found

    destination = Raced(
        Bucket(BackendSettings(url=s3_bucket.url(), endpoint_url=s3_bucket.endpoint)),
        state_key("default"),
        "default",
    )
    write(settings.state_path, state_bytes(3))
    with pytest.raises(StateError) as lost:
        copy_state(LocalBackend(settings.state_path), destination, operation="state push")
    assert lost.value.message == (
        f"{s3_bucket.url()}/state.json: the state changed since this run read it (another run "
        "wrote it); nothing was overwritten; run again"
    )
    assert s3_bucket.object(STATE) == theirs
