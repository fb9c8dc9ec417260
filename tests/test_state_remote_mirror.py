"""The local mirror of a remote state (``state.remote``), against moto's S3 server.

Where the mirror lives and what it records of the remote state; the runs killed between
their write and their push (the next run that writes pushes what they left), a failed
run's results pushed all the same, a mirror the other machines overtook put aside, and
an unreadable mirror named in one line.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest

from casereport.errors import LockError, StateError
from casereport.settings import BackendSettings, Settings
from casereport.state.backend import S3Backend, state_key
from casereport.state.model import MAX_FORMAT_VERSION, load_state, serialise
from casereport.state.objects import Bucket
from casereport.state.remote import mirror_path, mirrored
from s3_server import S3Bucket, s3_bucket, s3_server
from test_state import sample_state

__all__ = ["s3_bucket", "s3_server"]  # fixtures

STATE = "casereport/state.json"


@pytest.fixture
def settings(tmp_path: Path, s3_bucket: S3Bucket) -> Settings:
    backend = BackendSettings(url=s3_bucket.url(), endpoint_url=s3_bucket.endpoint)
    return Settings(
        root=tmp_path,
        site_dir=tmp_path / "site",
        state_path=tmp_path / ".casereport" / "state.json",
        backend=backend,
    )


def backend_of(settings: Settings, workspace: str = "default") -> S3Backend:
    return S3Backend(Bucket(settings.backend), state_key(workspace), workspace)


def state_bytes(serial: int, **fields: object) -> bytes:
    return serialise(replace(sample_state(**fields), serial=serial)).encode()


def synced(settings: Settings, s3_bucket: S3Bucket, data: bytes) -> tuple[S3Backend, Path]:
    """``data`` as the remote state, and this machine's mirror of it after one plan."""
    backend = backend_of(settings)
    s3_bucket.put(STATE, data)
    with mirrored(settings, backend, None) as mirror:
        pass
    return backend, mirror


def sidecar(mirror: Path) -> dict[str, object]:
    raw: dict[str, object] = json.loads(mirror.with_name("state.json.remote").read_text())
    return raw


def test_the_mirror_lives_under_the_urls_hash_and_records_what_it_saw(
    settings: Settings, s3_bucket: S3Bucket
) -> None:
    backend = backend_of(settings)
    digest = hashlib.sha256(s3_bucket.url().encode()).hexdigest()[:12]
    expected = settings.state_path.parent / "remote" / digest / "default" / "state.json"
    assert mirror_path(settings, backend) == expected
    staging = backend_of(settings, "staging")
    assert mirror_path(settings, staging) == expected.parent.parent / "staging" / "state.json"

    data = state_bytes(4)
    s3_bucket.put(STATE, data)
    with mirrored(settings, backend, None) as mirror:
        assert mirror == expected and mirror.read_bytes() == data
    etag = backend.read().version  # type: ignore[union-attr]
    record = mirror.with_name("state.json.remote").read_text(encoding="utf-8")
    assert json.loads(record) == {
        "etag": etag,
        "sha256": hashlib.sha256(data).hexdigest(),
        "where": f"{s3_bucket.url()}/state.json",
    }
    assert record == json.dumps(json.loads(record), sort_keys=True) + "\n"
    assert (settings.state_path.parent / ".gitignore").is_file()  # the state dir kept out


def test_a_run_killed_between_its_write_and_its_push_is_pushed_by_the_next(
    settings: Settings, s3_bucket: S3Bucket
) -> None:
    backend = backend_of(settings)
    s3_bucket.put(STATE, state_bytes(4))
    with mirrored(settings, backend, "apply") as mirror:
        pass  # synced down, nothing written
    # The killed run: its state written to the mirror, never pushed.
    written = state_bytes(5)
    mirror.write_bytes(written)
    with mirrored(settings, backend, None) as seen:  # a plan reads the run's state
        assert seen.read_bytes() == written
    assert s3_bucket.object(STATE) == state_bytes(4)  # and writes nothing
    with mirrored(settings, backend, "apply"):
        pass  # the next run that writes pushes it
    assert s3_bucket.object(STATE) == written
    assert s3_bucket.object(STATE + ".backup") == state_bytes(4)
    assert not mirror.with_name("state.json.unpushed").exists()


def test_a_first_run_killed_before_its_push_is_pushed_by_the_next(
    settings: Settings, s3_bucket: S3Bucket
) -> None:
    backend = backend_of(settings)
    with mirrored(settings, backend, "apply") as mirror:
        assert not mirror.exists()  # no remote state yet
    assert sidecar(mirror)["etag"] is None
    written = state_bytes(1)
    mirror.write_bytes(written)  # the killed first run's state
    with mirrored(settings, backend, "apply"):
        pass
    assert s3_bucket.object(STATE) == written
    assert s3_bucket.keys() == [STATE]  # nothing to back up, no lock left


def test_a_run_that_fails_pushes_what_it_wrote_first(
    settings: Settings, s3_bucket: S3Bucket
) -> None:
    backend = backend_of(settings)
    s3_bucket.put(STATE, state_bytes(4))
    written = state_bytes(5)
    with pytest.raises(KeyboardInterrupt), mirrored(settings, backend, "apply") as mirror:
        mirror.write_bytes(written)  # results that arrived before it was stopped
        raise KeyboardInterrupt
    assert s3_bucket.object(STATE) == written
    assert s3_bucket.keys() == [STATE, STATE + ".backup"]  # and its lock released


def test_a_failed_run_whose_push_fails_too_reports_its_own_error(
    settings: Settings, s3_bucket: S3Bucket
) -> None:
    backend = backend_of(settings)
    s3_bucket.put(STATE, state_bytes(4))
    with (
        pytest.raises(ValueError, match="the run's own"),
        mirrored(settings, backend, "apply") as mirror,
    ):
        mirror.write_bytes(state_bytes(5))
        s3_bucket.clear()  # its lock force-unlocked: the push is refused
        raise ValueError("the run's own")
    assert s3_bucket.keys() == []


def test_a_run_whose_lock_was_removed_pushes_nothing(
    settings: Settings, s3_bucket: S3Bucket
) -> None:
    backend = backend_of(settings)
    s3_bucket.put(STATE, state_bytes(4))
    with pytest.raises(LockError) as refused, mirrored(settings, backend, "apply") as mirror:
        mirror.write_bytes(state_bytes(5))
        s3_bucket.put(STATE + ".lock", b"{}")  # removed, and another run's in its place
    assert "was removed, by force-unlock or another run" in refused.value.message
    assert s3_bucket.object(STATE) == state_bytes(4)


def test_an_unpushed_mirror_the_remote_state_overtook_is_put_aside(
    settings: Settings, s3_bucket: S3Bucket
) -> None:
    backend = backend_of(settings)
    s3_bucket.put(STATE, state_bytes(4))
    with mirrored(settings, backend, "apply") as mirror:
        pass
    mine = state_bytes(5)
    mirror.write_bytes(mine)  # this machine's run, never pushed
    theirs = state_bytes(6, site_outputs={})
    s3_bucket.put(STATE, theirs)  # another machine's run since
    notices: list[str] = []
    with mirrored(settings, backend, None, notice=notices.append) as seen:
        assert seen.read_bytes() == theirs
    kept = mirror.with_name("state.json.unpushed")
    assert kept.read_bytes() == mine
    assert notices == [
        f"{s3_bucket.url()}/state.json was written by another run since this machine's "
        f"last run, whose state was never uploaded; that state is kept in {kept}"
    ]
    with mirrored(settings, backend, None) as again:  # without a notice to give
        assert again.read_bytes() == theirs


def test_a_damaged_record_of_the_remote_state_only_costs_a_download(
    settings: Settings, s3_bucket: S3Bucket
) -> None:
    data = state_bytes(4)
    backend, mirror = synced(settings, s3_bucket, data)
    record = mirror.with_name("state.json.remote")
    for damaged in (
        "not json",
        "[]",
        '{"where": 1}',
        json.dumps({**sidecar(mirror), "where": "x"}),
    ):
        record.write_text(damaged, encoding="utf-8")
        notices: list[str] = []
        with mirrored(settings, backend, "apply", notice=notices.append) as seen:
            assert seen.read_bytes() == data
        assert notices == []
        assert sidecar(mirror)["where"] == f"{s3_bucket.url()}/state.json"
        assert s3_bucket.keys() == [STATE]  # nothing pushed: the mirror is the remote state


def test_a_remote_state_deleted_since_removes_the_mirror(
    settings: Settings, s3_bucket: S3Bucket
) -> None:
    backend, mirror = synced(settings, s3_bucket, state_bytes(4))
    record = mirror.with_name("state.json.remote")
    record.write_text(json.dumps({**sidecar(mirror), "etag": None}), encoding="utf-8")
    s3_bucket.clear()
    with mirrored(settings, backend, None) as seen:
        # still none remote, as recorded: this machine's mirror stands
        assert seen.read_bytes() == state_bytes(4)
    record.unlink()
    notices: list[str] = []
    with mirrored(settings, backend, None, notice=notices.append) as seen:
        assert not seen.exists()
    assert sidecar(mirror)["etag"] is None and sidecar(mirror)["sha256"] is None
    # No record of the version seen: whether the copy was ever uploaded is not known, and
    # the notice claims neither; the copy is kept all the same.
    kept = mirror.with_name("state.json.unpushed")
    assert notices == [
        f"this machine's copy of {s3_bucket.url()}/state.json is kept in {kept}: the remote "
        "state is gone, and nothing records which version of it this machine last saw"
    ]
    assert kept.read_bytes() == state_bytes(4)


def test_a_remote_state_deleted_since_this_machine_saw_it_is_kept_here(
    settings: Settings, s3_bucket: S3Bucket
) -> None:
    # Deleted by hand or by a bucket rule: this machine's copy may be all that is left of
    # the history, so it is kept (and said) before the run starts with no state.
    backend, mirror = synced(settings, s3_bucket, state_bytes(4))
    s3_bucket.clear()
    notices: list[str] = []
    with mirrored(settings, backend, None, notice=notices.append) as seen:
        assert not seen.exists()
    kept = mirror.with_name("state.json.deleted")
    assert notices == [
        f"{s3_bucket.url()}/state.json was deleted since this machine's last run; this "
        f"machine's copy of the deleted state is kept in {kept}"
    ]
    assert kept.read_bytes() == state_bytes(4)
    assert sidecar(mirror)["etag"] is None and sidecar(mirror)["sha256"] is None
    notices.clear()
    with mirrored(settings, backend, None, notice=notices.append):
        pass
    assert notices == []  # said once: the next run knows there is no remote state
    # A new history, deleted in its turn: kept beside the first, never over it.
    s3_bucket.put(STATE, state_bytes(5))
    with mirrored(settings, backend, None, notice=notices.append) as seen:
        assert seen.read_bytes() == state_bytes(5)
    s3_bucket.clear()
    with mirrored(settings, backend, None, notice=notices.append):
        pass
    assert notices[-1].endswith(f"copy of the deleted state is kept in {kept}.1")
    assert kept.read_bytes() == state_bytes(4)
    assert kept.with_name("state.json.deleted.1").read_bytes() == state_bytes(5)
    for serial in (6, 4):  # a third history; then the first one's bytes again
        s3_bucket.put(STATE, state_bytes(serial))
        with mirrored(settings, backend, None):
            pass
        s3_bucket.clear()
        with mirrored(settings, backend, None, notice=notices.append):
            pass
    assert kept.with_name("state.json.deleted.2").read_bytes() == state_bytes(6)
    assert notices[-1].endswith(f"copy of the deleted state is kept in {kept}")  # the same
    assert sorted(p.name for p in kept.parent.glob("state.json.deleted*")) == [
        "state.json.deleted",
        "state.json.deleted.1",
        "state.json.deleted.2",
    ]


def test_a_mirror_without_its_record_is_kept_without_a_claim(
    settings: Settings, s3_bucket: S3Bucket
) -> None:
    # The record of the version seen removed (or written for another URL), and the remote
    # state changed since: maybe a plain downloaded copy, maybe a state never uploaded.
    backend, mirror = synced(settings, s3_bucket, state_bytes(4))
    mirror.with_name("state.json.remote").unlink()
    s3_bucket.put(STATE, state_bytes(5))
    notices: list[str] = []
    with mirrored(settings, backend, None, notice=notices.append) as seen:
        assert seen.read_bytes() == state_bytes(5)
    kept = mirror.with_name("state.json.unpushed")
    assert notices == [
        f"this machine's copy of {s3_bucket.url()}/state.json is kept in {kept}: it is not "
        "the remote state, and nothing records which version of it this machine last saw"
    ]
    assert kept.read_bytes() == state_bytes(4)


def test_an_unreadable_mirror_is_one_line(settings: Settings, s3_bucket: S3Bucket) -> None:
    backend = backend_of(settings)
    s3_bucket.put(STATE, state_bytes(4))
    mirror = mirror_path(settings, backend)
    mirror.mkdir(parents=True)  # a directory where the mirror should be
    with pytest.raises(StateError) as refused, mirrored(settings, backend, None):
        pass
    assert refused.value.message == f"{mirror}: cannot read the state: Is a directory"


def remote_fix(settings: Settings, where: str, workspace: str = "default") -> str:
    local, flag = settings.state_path, ""
    if workspace != "default":
        local, flag = local.parent / "workspaces" / workspace / "state.json", " --workspace staging"
    return (
        f"put a good state in {local} and run `casereport state push --force --backend "
        f"{settings.backend.url}{flag}` ({where}.backup, if it exists, holds the state before "
        "casereport's last write, and is kept)"
    )


@pytest.mark.parametrize("operation", [None, "apply"])
def test_a_damaged_remote_state_is_named_by_its_address_with_the_fix_there(
    settings: Settings, s3_bucket: S3Bucket, operation: str | None
) -> None:
    # Moving the mirror away, as a local state's error says, would download it again.
    backend = backend_of(settings)
    where = f"{s3_bucket.url()}/state.json"
    for damaged, problem in (
        (b"{not json", "not valid JSON (line 1, column 2)"),
        (
            b'{"format_version": 1}',
            "malformed: no lineage, serial, tool_version, source, aggregations, reports, site",
        ),
    ):
        s3_bucket.put(STATE, damaged)
        with pytest.raises(StateError) as refused, mirrored(settings, backend, operation) as mirror:
            load_state(mirror)
        assert refused.value.message == f"{where}: {problem}; {remote_fix(settings, where)}"
        assert s3_bucket.keys() == [STATE]  # untouched, and the lock released
        assert s3_bucket.object(STATE) == damaged


def test_a_damaged_workspace_state_names_the_workspace_in_its_fix(
    settings: Settings, s3_bucket: S3Bucket
) -> None:
    key = "casereport/workspaces/staging/state.json"
    s3_bucket.put(key, b"[]")
    where = f"{s3_bucket.url()}/workspaces/staging/state.json"
    with (
        pytest.raises(StateError) as refused,
        mirrored(settings, backend_of(settings, "staging"), "apply") as mirror,
    ):
        load_state(mirror)
    assert refused.value.message == (
        f"{where}: not a casereport state (expected a JSON object); "
        f"{remote_fix(settings, where, 'staging')}"
    )


def test_a_mirror_damaged_on_this_machine_is_named_as_such_and_never_pushed(
    settings: Settings, s3_bucket: S3Bucket
) -> None:
    good = state_bytes(4)
    backend, mirror = synced(settings, s3_bucket, good)
    mirror.write_bytes(b"[]")  # the remote state is as it was: the mirror is not fetched again
    for operation in (None, "apply"):
        with pytest.raises(StateError) as refused, mirrored(settings, backend, operation) as m:
            load_state(m)
        assert refused.value.message == (
            f"{mirror}: not a casereport state (expected a JSON object); it is this machine's "
            f"copy of {s3_bucket.url()}/state.json, damaged since it was downloaded: move it "
            "away, and the next run downloads the state again"
        )
        assert s3_bucket.keys() == [STATE]  # nothing pushed, the lock released
        assert s3_bucket.object(STATE) == good
    mirror.unlink()
    with mirrored(settings, backend, None) as mirror:
        assert load_state(mirror) is not None  # downloaded again


def test_a_mirror_removed_by_hand_is_downloaded_again_never_taken_for_no_state(
    settings: Settings, s3_bucket: S3Bucket
) -> None:
    # Taken for "no state", an apply would start afresh and push that over the remote one.
    good = state_bytes(4)
    backend, mirror = synced(settings, s3_bucket, good)
    mirror.unlink()  # its record of the remote state's ETag stays
    with mirrored(settings, backend, "apply") as again:
        assert again.read_bytes() == good
    assert s3_bucket.keys() == [STATE]  # nothing pushed: the mirror is the remote state
    # Removed again, and the remote state deleted meanwhile: no state, nothing recorded.
    mirror.unlink()
    s3_bucket.clear()
    with mirrored(settings, backend, None) as gone:
        assert not gone.exists()
    assert sidecar(mirror)["etag"] is None and sidecar(mirror)["sha256"] is None


def test_a_run_failing_on_another_state_file_still_pushes_what_it_wrote(
    settings: Settings, s3_bucket: S3Bucket
) -> None:
    backend, _ = synced(settings, s3_bucket, state_bytes(4))
    written = state_bytes(5)
    elsewhere = settings.root / "other.json"
    elsewhere.write_bytes(b"[]")
    with pytest.raises(StateError) as refused, mirrored(settings, backend, "apply") as mirror:
        mirror.write_bytes(written)  # results that arrived first
        load_state(elsewhere)
    assert refused.value.message.startswith(f"{elsewhere}: not a casereport state")
    assert s3_bucket.object(STATE) == written


def test_a_newer_mirror_of_this_machine_keeps_its_own_message(
    settings: Settings, s3_bucket: S3Bucket
) -> None:
    backend, mirror = synced(settings, s3_bucket, state_bytes(4))
    raw = json.loads(mirror.read_bytes())
    mirror.write_text(json.dumps({**raw, "format_version": 99}), encoding="utf-8")
    with pytest.raises(StateError) as refused, mirrored(settings, backend, None) as m:
        load_state(m)
    assert refused.value.message.startswith(f"{mirror}: written by a newer casereport (")
    assert refused.value.message.endswith("); upgrade casereport")


def test_a_remote_state_from_a_newer_casereport_is_named_by_its_address(
    settings: Settings, s3_bucket: S3Bucket
) -> None:
    raw = json.loads(state_bytes(4))
    s3_bucket.put(STATE, json.dumps({**raw, "format_version": 99, "tool_version": "9.0"}).encode())
    with pytest.raises(StateError) as refused, mirrored(settings, backend_of(settings), None) as m:
        load_state(m)
    assert refused.value.message == (
        f"{s3_bucket.url()}/state.json: written by a newer casereport (9.0, state format 99; "
        f"this version reads up to {MAX_FORMAT_VERSION}); upgrade casereport"
    )


def test_a_damaged_local_state_read_inside_the_block_keeps_its_own_name(
    settings: Settings, s3_bucket: S3Bucket
) -> None:
    s3_bucket.put(STATE, state_bytes(4))
    elsewhere = settings.root / "other.json"
    elsewhere.write_bytes(b"[]")
    with pytest.raises(StateError) as refused, mirrored(settings, backend_of(settings), None):
        load_state(elsewhere)  # not the mirror: its problem is its own
    assert refused.value.message.startswith(f"{elsewhere}: not a casereport state")


def test_a_workspace_without_a_remote_state_is_refused(
    settings: Settings, s3_bucket: S3Bucket
) -> None:
    with (
        pytest.raises(StateError) as refused,
        mirrored(settings, backend_of(settings, "staging"), None),
    ):
        pass
    assert refused.value.message == (
        f"workspace 'staging' does not exist in {s3_bucket.url()}; create it with "
        "`casereport workspace new staging` (`casereport workspace list` shows them)"
    )


def test_a_push_records_what_it_pushed_so_the_next_run_writes_nothing(
    settings: Settings, s3_bucket: S3Bucket
) -> None:
    backend = backend_of(settings)
    written = state_bytes(1)
    with mirrored(settings, backend, "apply") as mirror:
        mirror.write_bytes(written)
    assert sidecar(mirror) == {
        "etag": backend.read().version,  # type: ignore[union-attr]
        "sha256": hashlib.sha256(written).hexdigest(),
        "where": f"{s3_bucket.url()}/state.json",
    }
    with mirrored(settings, backend, "apply"):
        pass  # nothing changed: nothing pushed, so no backup made
    assert s3_bucket.keys() == [STATE]


def test_two_first_runs_at_once_the_later_push_is_refused(
    settings: Settings, s3_bucket: S3Bucket
) -> None:
    backend = backend_of(settings)
    theirs = state_bytes(1, site_outputs={})
    with pytest.raises(StateError) as refused, mirrored(settings, backend, "apply") as mirror:
        mirror.write_bytes(state_bytes(1))
        s3_bucket.put(STATE, theirs)  # the other first run pushed meanwhile
    assert refused.value.message == (
        f"{s3_bucket.url()}/state.json: the state changed since this run read it (another run "
        f"wrote it); nothing was overwritten; this run's state is kept in {mirror}; run again"
    )
    assert s3_bucket.object(STATE) == theirs
    assert s3_bucket.keys() == [STATE]  # a write expecting no state backs nothing up


def test_another_machines_write_replaces_an_untouched_mirror_quietly(
    settings: Settings, s3_bucket: S3Bucket
) -> None:
    backend, mirror = synced(settings, s3_bucket, state_bytes(4))
    theirs = state_bytes(5)
    s3_bucket.put(STATE, theirs)  # another machine's run
    notices: list[str] = []
    with mirrored(settings, backend, "apply", notice=notices.append) as seen:
        assert seen.read_bytes() == theirs
    assert notices == []
    assert not mirror.with_name("state.json.unpushed").exists()
    assert s3_bucket.keys() == [STATE]  # taken as it is: nothing pushed back
