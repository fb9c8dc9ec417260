"""Remote state (issue 14) against a real S3 API: moto's server on 127.0.0.1.

plan, apply, render and the state commands on a state kept in a bucket; the lock object
(created with If-None-Match, named in the error, waited for, force-unlocked, taken over
from a dead process of this machine); compare-and-swap writes that refuse a lost race;
workspaces; push, pull and migrate; and one clear line for each way the store can fail.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from apply_workspace import Workspace, api_env
from casereport.emulator.server import RunningEmulator
from casereport.errors import StateError
from casereport.settings import BackendSettings, load_settings
from casereport.state.backend import S3Backend, state_key
from casereport.state.journal import Journal, journal_path
from casereport.state.model import load_state, parse_state
from casereport.state.objects import Bucket, Conflict
from casereport.state.remote import mirror_path, mirrored
from s3_server import (
    S3_ENV,
    S3Bucket,
    free_port,
    lock_json,
    s3_bucket,
    s3_server,
    s3_with_auth,
    this_machine,
)

__all__ = ["s3_bucket", "s3_server", "s3_with_auth"]  # fixtures

Emulator = Callable[..., RunningEmulator]
STATE = "casereport/state.json"


@pytest.fixture
def remote(
    tmp_path: Path, emulator: Emulator, s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> Workspace:
    """The example workspace, its ``[backend]`` a fresh bucket of the test server."""
    monkeypatch.chdir(tmp_path)
    for name in ("CASEREPORT_BACKEND", "CASEREPORT_WORKSPACE"):
        monkeypatch.delenv(name, raising=False)
    workspace = Workspace(tmp_path, emulator())
    s3_bucket.settings(tmp_path)
    return workspace


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def remote_state(bucket: S3Bucket, key: str = STATE) -> dict[str, object]:
    data = bucket.object(key)
    assert data is not None, f"no {key} in the bucket: {bucket.keys()}"
    raw: dict[str, object] = json.loads(data)
    return raw


def test_the_test_server_honours_if_none_match_and_if_match(s3_bucket: S3Bucket) -> None:
    bucket = Bucket(BackendSettings(url=s3_bucket.url(), endpoint_url=s3_bucket.endpoint))
    first = bucket.put("x", b"one", expected=None)
    with pytest.raises(Conflict):
        bucket.put("x", b"two", expected=None)  # If-None-Match: * on an existing object
    with pytest.raises(Conflict):
        bucket.put("x", b"two", expected='"not-the-etag"')  # If-Match on a stale ETag
    assert bucket.read("x") == type(bucket.read("x"))(b"one", first)
    second = bucket.put("x", b"two", expected=first)
    assert second != first and s3_bucket.object("casereport/x") == b"two"


def test_apply_plan_render_and_state_commands_work_on_the_remote_state(
    remote: Workspace, s3_bucket: S3Bucket
) -> None:
    applied = remote.apply()
    assert "Apply complete" in applied.output
    state = remote_state(s3_bucket)
    assert state["serial"] == 1 and len(state["aggregations"]) == 19  # type: ignore[arg-type]
    assert not remote.state_path.exists()  # nothing in the local state file
    assert (remote.site / "index.html").is_file()
    assert s3_bucket.keys() == [STATE]  # no lock left, no backup of a first write
    first = s3_bucket.object(STATE)

    assert remote.plan().exit_code == 0
    result, calls = remote.counted("apply", "--auto-approve")
    assert (result.exit_code, calls) == (0, 0)
    assert "No changes" in result.output
    assert remote.run("render").exit_code == 0
    assert s3_bucket.object(STATE) == first  # a no-op writes nothing, even remotely

    listed = remote.run("state", "list")
    assert lines(listed.output) == sorted(state["aggregations"])  # type: ignore[call-overload]
    shown = remote.run("state", "show", "support-backlog.by_status")
    assert "support-backlog.by_status" in json.loads(shown.output)
    assert "serial 1" in remote.run("show").output
    output = remote.run("output", "support-backlog")
    assert output.exit_code == 0, output.output
    assert output.stdout.encode() == (remote.site / "support-backlog.json").read_bytes()

    removed = remote.run("state", "rm", "support-backlog.by_status")
    assert removed.exit_code == 0, removed.output
    after = remote_state(s3_bucket)
    assert "support-backlog.by_status" not in after["aggregations"]  # type: ignore[operator]
    assert after["serial"] == 2
    assert s3_bucket.object(STATE + ".backup") == first  # the previous version kept

    moved = remote.run("state", "mv", "support-backlog", "support-queue")
    assert moved.exit_code == 0, moved.output
    addresses = set(remote_state(s3_bucket)["aggregations"])  # type: ignore[call-overload]
    assert "support-queue.open_by_priority" in addresses
    assert not any(a.startswith("support-backlog") for a in addresses)
    assert sorted(s3_bucket.keys()) == [STATE, STATE + ".backup"]


def test_another_machine_sees_the_remote_state_and_fetches_nothing_again(
    remote: Workspace, s3_bucket: S3Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote.apply()
    other_root = tmp_path / "other-machine"
    other_root.mkdir()
    other = Workspace(other_root, remote.emulator)
    s3_bucket.settings(other_root)
    monkeypatch.chdir(other_root)
    assert other.plan("--target", "support-backlog").exit_code == 2  # its pages are missing
    result, calls = other.counted("apply", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert calls == 0  # the results came with the remote state
    assert (other.site / "support-backlog.html").is_file()


def write_lock(
    bucket: S3Bucket, who: str, pid: int, created: str, where: dict[str, str] | None = None
) -> None:
    bucket.put(STATE + ".lock", lock_json(who, pid, created=created, where=where))


def test_the_fix_a_damaged_workspace_state_names_mends_that_workspace_only(
    remote: Workspace, s3_bucket: S3Bucket
) -> None:
    remote.apply()  # the default workspace: a good state
    default = s3_bucket.object(STATE)
    assert remote.run("workspace", "new", "staging").exit_code == 0
    remote.apply("--workspace", "staging")
    key = "casereport/workspaces/staging/state.json"
    good = s3_bucket.object(key)
    assert good is not None
    s3_bucket.put(key, b"{not json")
    refused = remote.run("plan", "--workspace", "staging")
    assert refused.exit_code == 1
    (line,) = lines(refused.output)
    where = f"{s3_bucket.url()}/workspaces/staging/state.json"
    assert line.startswith(
        f"Error: {where}: not valid JSON (line 1, column 2); put a good state in "
    )
    # Do what it says: the good state in the file it names, then its command.
    local = Path(line.split("put a good state in ")[1].split(" and run ")[0])
    command = line.split("`")[1]
    assert command == (
        f"casereport state push --force --backend {s3_bucket.url()} --workspace staging"
    )
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_bytes(good)
    pushed = remote.run(*command.split()[1:])
    assert pushed.exit_code == 0, pushed.output
    assert s3_bucket.object(key) == good
    assert s3_bucket.object(STATE) == default  # the default workspace untouched
    assert remote.run("plan", "--workspace", "staging").exit_code == 0


def test_the_command_an_unreadable_lock_names_removes_it(
    remote: Workspace, s3_bucket: S3Bucket
) -> None:
    s3_bucket.put(STATE + ".lock", b"left by another tool")
    refused = remote.run("apply", "--auto-approve")
    assert refused.exit_code == 1
    (line,) = lines(refused.output)
    command = line.rpartition("if no run is going on: ")[2]
    assert command.startswith("casereport force-unlock unreadable-")
    unlocked = remote.run(*command.split()[1:])
    assert unlocked.exit_code == 0, unlocked.output
    lock_id = command.split()[2]
    assert unlocked.output == (
        f"Removed the lock ID {lock_id} (an unreadable lock object), from "
        f"{s3_bucket.url()}/state.json.\n"
    )
    assert s3_bucket.keys() == []
    remote.apply()
    assert s3_bucket.keys() == [STATE]


def test_a_held_lock_names_its_holder_and_age_and_force_unlock_removes_it(
    remote: Workspace, s3_bucket: S3Bucket
) -> None:
    write_lock(s3_bucket, "ci@runner-7", 4242, "2026-01-01T00:00:00Z")
    refused = remote.run("apply", "--auto-approve")
    assert refused.exit_code == 1
    (line,) = lines(refused.output)
    assert line.startswith(
        f"Error: the state {s3_bucket.url()}/state.json is locked by ID abc (apply by "
        "ci@runner-7, pid 4242, since 2026-01-01T00:00:00Z), taken "
    )
    assert line.endswith(
        " ago; wait for that run to finish (or pass --lock-timeout), or if it is stuck: "
        "casereport force-unlock abc"
    )
    started = time.monotonic()
    waited = remote.run("apply", "--auto-approve", "--lock-timeout", "1")
    assert waited.exit_code == 1 and time.monotonic() - started >= 1
    assert "is locked after waiting 1 s by ID abc" in waited.output
    assert s3_bucket.object(STATE) is None  # nothing written by the refused runs

    wrong = remote.run("force-unlock", "xyz")
    assert wrong.exit_code == 1 and "has ID abc, not xyz" in wrong.output
    unlocked = remote.run("force-unlock", "abc")
    assert unlocked.exit_code == 0, unlocked.output
    assert unlocked.stdout.startswith("Removed the lock ID abc (apply by ci@runner-7")
    assert unlocked.stderr == ""  # another machine's run: nothing to say of it here
    assert s3_bucket.keys() == []
    remote.apply()
    assert s3_bucket.keys() == [STATE]


def test_force_unlock_of_a_remote_lock_whose_run_goes_on_here_warns(
    remote: Workspace, s3_bucket: S3Bucket
) -> None:
    # As for a local lock: removing the lock does not stop its run, so say it still runs.
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as stuck:
        try:
            here = f"ci@{socket.gethostname()}"
            write_lock(s3_bucket, here, stuck.pid, "2026-01-01T00:00:00Z", this_machine())
            unlocked = remote.run("force-unlock", "abc")
        finally:
            stuck.kill()
    assert unlocked.exit_code == 0, unlocked.output
    assert unlocked.stdout.startswith(f"Removed the lock ID abc (apply by {here}, pid {stuck.pid}")
    assert unlocked.stderr == (
        f"Warning: process {stuck.pid} that took this lock is still running on this machine; "
        "it will refuse to write the state when it goes on, but stop it if it is stuck "
        f"(kill {stuck.pid}).\n"
    )
    assert s3_bucket.keys() == []


def test_a_lock_of_a_dead_process_of_this_machine_is_taken_over(
    remote: Workspace, s3_bucket: S3Bucket
) -> None:
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    here = f"ci@{socket.gethostname()}"
    write_lock(s3_bucket, here, int(finished.stdout), "2026-01-01T00:00:00Z", this_machine())
    result = remote.apply()
    assert "Taking over the lock ID abc (apply by ci@" in result.output
    assert s3_bucket.keys() == [STATE]


def test_two_applies_at_once_exactly_one_proceeds_the_other_names_it(
    tmp_path: Path, emulator: Emulator, s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = emulator(latency_ms=400)
    monkeypatch.chdir(tmp_path)
    Workspace(tmp_path, slow)
    s3_bucket.settings(tmp_path)
    env = {**os.environ, **api_env(slow), **S3_ENV, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-m", "casereport", "apply", "--auto-approve", "--parallelism", "2"]
    processes = [
        subprocess.Popen(
            command,
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outcomes = [(p.wait(timeout=120), *p.communicate()) for p in processes]
    codes = sorted(code for code, _, _ in outcomes)
    assert codes == [0, 1], outcomes
    (refusal,) = [err for code, _, err in outcomes if code == 1]
    assert f"Error: the state {s3_bucket.url()}/state.json is locked by ID " in refusal
    assert "(apply by " in refusal and "casereport force-unlock " in refusal
    assert "Apply complete" in next(out for code, out, _ in outcomes if code == 0)
    assert s3_bucket.keys() == [STATE]


def test_a_write_racing_another_writer_is_refused_and_loses_nothing(
    remote: Workspace, s3_bucket: S3Bucket
) -> None:
    remote.apply()
    settings = load_settings(Path("."))
    backend = S3Backend(Bucket(settings.backend), state_key("default"), "default")
    theirs = s3_bucket.object(STATE)
    assert theirs is not None
    theirs = theirs.replace(b'"serial": 1', b'"serial": 7')
    with pytest.raises(StateError) as refused, mirrored(settings, backend, "state rm") as mirror:
        # Another writer (one whose lock was force-unlocked, say) writes meanwhile.
        s3_bucket.put(STATE, theirs)
        mirror.write_bytes(mirror.read_bytes().replace(b'"serial": 1', b'"serial": 2'))
    assert str(refused.value.message) == (
        f"{s3_bucket.url()}/state.json: the state changed since this run read it (another run "
        f"wrote it); nothing was overwritten; this run's state is kept in {mirror}; run again"
    )
    assert s3_bucket.object(STATE) == theirs  # the other writer's state stands
    assert s3_bucket.keys() == [STATE, STATE + ".backup"]
    # The next run takes the remote state and puts this machine's unpushed one aside.
    result = remote.run("plan")
    assert "whose state was never uploaded; that state is kept in" in result.output
    assert parse_state(mirror, mirror_path(settings, backend).read_bytes()).serial == 7


def mirror_behind_the_bucket(remote: Workspace, s3_bucket: S3Bucket) -> Path:
    """The default workspace's mirror after an apply, the remote state since written by
    another run (serial 7), so that the next run replaces the mirror."""
    remote.apply()
    settings = load_settings(Path("."))
    backend = S3Backend(Bucket(settings.backend), state_key("default"), "default")
    theirs = s3_bucket.object(STATE)
    assert theirs is not None
    s3_bucket.put(STATE, theirs.replace(b'"serial": 1', b'"serial": 7'))
    return mirror_path(settings, backend)


@pytest.mark.parametrize(
    "cut", [lambda data: data[: len(data) // 2], lambda data: b"[]"], ids=["short", "not-state"]
)
def test_a_damaged_mirror_replaced_by_a_newer_remote_state_is_called_damaged(
    remote: Workspace, s3_bucket: S3Bucket, cut: Callable[[bytes], bytes]
) -> None:
    # Not a state this machine never uploaded (as above): a copy damaged since it was
    # downloaded, which holds nothing the bucket lacks. Put aside all the same, as found.
    mirror = mirror_behind_the_bucket(remote, s3_bucket)
    damaged = cut(mirror.read_bytes())
    mirror.write_bytes(damaged)
    result = remote.run("plan")
    assert result.exit_code == 0, result.output
    (notice,) = [line for line in lines(result.output) if "damaged" in line]
    assert notice.startswith(
        f"this machine's copy of {s3_bucket.url()}/state.json was damaged: not "
    )
    assert notice.endswith(
        f"; the state another run wrote since is used, and the damaged copy is kept in "
        f"{mirror}.damaged"
    )
    assert "never uploaded" not in result.output
    assert Path(f"{mirror}.damaged").read_bytes() == damaged
    assert not Path(f"{mirror}.unpushed").exists()
    assert parse_state(mirror, mirror.read_bytes()).serial == 7


def test_a_newer_casereports_unpushed_mirror_is_kept_as_unpushed(
    remote: Workspace, s3_bucket: S3Bucket
) -> None:
    # A state this version cannot read is a state all the same (a newer casereport's run
    # on this machine, never uploaded), not a damaged copy.
    mirror = mirror_behind_the_bucket(remote, s3_bucket)
    newer = json.loads(mirror.read_bytes()) | {"format_version": 99}
    mirror.write_text(json.dumps(newer))
    result = remote.run("plan")
    assert result.exit_code == 0, result.output
    assert f"whose state was never uploaded; that state is kept in {mirror}.unpushed" in (
        result.output
    )
    assert json.loads(Path(f"{mirror}.unpushed").read_bytes()) == newer


@pytest.mark.parametrize("kind", ["damaged", "unpushed"])
def test_a_mirror_put_aside_when_the_remote_state_was_deleted_says_so(
    remote: Workspace, s3_bucket: S3Bucket, kind: str
) -> None:
    # The state deleted from the bucket since (a workspace deleted from another machine):
    # no other run's state is used, and the notice must not say one is.
    mirror = mirror_behind_the_bucket(remote, s3_bucket)
    mine = mirror.read_bytes()
    mine = mine[:100] if kind == "damaged" else mine.replace(b'"serial": 1', b'"serial": 2')
    mirror.write_bytes(mine)
    s3_bucket.clear()
    result = remote.run("plan")
    assert result.exit_code == 0, result.output
    where = f"{s3_bucket.url()}/state.json"
    (notice,) = [line for line in lines(result.output) if line.endswith(f"{mirror}.{kind}")]
    if kind == "damaged":
        assert notice.startswith(f"this machine's copy of {where} was damaged: not valid JSON")
        assert notice.endswith(
            f"; the state was deleted from the bucket since, so none is used, and the damaged "
            f"copy is kept in {mirror}.damaged"
        )
    else:
        assert notice == (
            f"{where} was deleted since this machine's last run, whose state was never "
            f"uploaded; that state is kept in {mirror}.unpushed"
        )
    assert "another run" not in result.output
    assert Path(f"{mirror}.{kind}").read_bytes() == mine
    assert not mirror.exists()
    assert "Plan: 19 to fetch (19 new, 0 changed, 0 stale)" in result.output  # a first run's


def one_error_line(output: str) -> str:
    assert "Traceback" not in output
    (line,) = lines(output)
    assert line.startswith("Error: ")
    return line


def test_a_missing_bucket_is_one_clear_line(
    remote: Workspace, s3_bucket: S3Bucket, tmp_path: Path
) -> None:
    (tmp_path / "casereport.toml").write_text(
        f'[backend]\nurl = "s3://no-such-bucket-here/x"\nendpoint_url = "{s3_bucket.endpoint}"\n'
    )
    result = remote.run("plan")
    assert result.exit_code == 1
    assert one_error_line(result.output) == (
        "Error: s3://no-such-bucket-here/x/state.json: the bucket 'no-such-bucket-here' does "
        "not exist (or is not visible with these credentials); create it, or fix [backend] url"
    )


def test_wrong_credentials_are_one_clear_line(
    remote: Workspace, s3_with_auth: str, tmp_path: Path
) -> None:
    (tmp_path / "casereport.toml").write_text(
        f'[backend]\nurl = "s3://some-bucket/x"\nendpoint_url = "{s3_with_auth}"\n'
    )
    result = remote.run("apply", "--auto-approve")
    assert result.exit_code == 1
    assert one_error_line(result.output) == (
        "Error: s3://some-bucket/x/state.json.lock: the object store refused access "
        "(InvalidAccessKeyId); check the AWS credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE or "
        "the CI role) and the bucket policy"
    )


def test_an_unreachable_endpoint_is_one_clear_line(remote: Workspace, tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    (tmp_path / "casereport.toml").write_text(
        f'[backend]\nurl = "s3://some-bucket/x"\nendpoint_url = "{endpoint}"\n'
    )
    result = remote.run("state", "list")
    assert result.exit_code == 1
    line = one_error_line(result.output)
    assert line.startswith(
        f"Error: s3://some-bucket/x/state.json: cannot reach the object store at {endpoint}: "
    )
    assert line.endswith("; check [backend] endpoint_url, region and the network")


def test_a_bad_backend_url_is_refused_with_its_place(remote: Workspace, tmp_path: Path) -> None:
    (tmp_path / "casereport.toml").write_text('[backend]\nurl = "gs://bucket/x"\n')
    result = remote.run("plan")
    assert result.exit_code == 1
    assert one_error_line(result.output) == (
        'Error: casereport.toml:2:1: error: backend url "gs://bucket/x" is neither "local" nor '
        '"s3://BUCKET/PREFIX" (S3 and S3-compatible stores such as MinIO or R2)'
    )
    (tmp_path / "casereport.toml").unlink()
    flag = remote.run("plan", "--backend", "ftp://x")
    assert one_error_line(flag.output).startswith('Error: --backend: backend url "ftp://x" is')


def test_workspaces_keep_separate_states_and_sites(remote: Workspace, s3_bucket: S3Bucket) -> None:
    remote.apply()
    prod = s3_bucket.object(STATE)
    unknown = remote.run("plan", "--workspace", "staging")
    assert one_error_line(unknown.output) == (
        f"Error: workspace 'staging' does not exist in {s3_bucket.url()}; create it with "
        "`casereport workspace new staging` (`casereport workspace list` shows them)"
    )
    assert remote.run("workspace", "new", "staging").exit_code == 0
    again = remote.run("workspace", "new", "staging")
    assert "workspace 'staging' already exists" in again.output
    staged = remote.run("apply", "--auto-approve", "--workspace", "staging", "--var", "x=1")
    assert staged.exit_code == 0, staged.output
    assert (remote.root / "site-staging" / "index.html").is_file()
    assert s3_bucket.object(STATE) == prod  # prod's state untouched
    staging = remote_state(s3_bucket, "casereport/workspaces/staging/state.json")
    assert len(staging["aggregations"]) == 19  # type: ignore[arg-type]
    listed = remote.run("workspace", "list", "--workspace", "staging")
    assert lines(listed.output) == ["  default", "* staging"]
    in_use = remote.run("workspace", "delete", "staging", CASEREPORT_WORKSPACE="staging")
    assert one_error_line(in_use.output) == (
        "Error: workspace 'staging' is the one in use (--workspace or CASEREPORT_WORKSPACE); "
        "switch to another before deleting it"
    )
    refused = remote.run("workspace", "delete", "staging")
    assert "holds 19 results and 3 reports" in refused.output
    settings = load_settings(Path("."))
    mirror = mirror_path(settings, S3Backend(Bucket(settings.backend), "x", "staging"))
    assert mirror.is_file()
    assert remote.run("workspace", "delete", "staging", "--force").exit_code == 0
    assert lines(remote.run("workspace", "list").output) == ["* default"]
    # Deleted here on purpose: this machine's mirror goes too, so a later run on the name
    # is not told of the deletion as news (nor keeps a copy of it).
    assert not mirror.parent.exists()
    gone = remote.run("plan", "--workspace", "staging")
    assert one_error_line(gone.output).startswith("Error: workspace 'staging' does not exist")


@pytest.mark.parametrize("kind", ["unpushed", "damaged"])
def test_deleting_a_workspace_keeps_a_state_this_machine_never_uploaded(
    remote: Workspace, s3_bucket: S3Bucket, kind: str
) -> None:
    # A run whose upload was refused (another writer got there first) left its state in
    # the mirror only: deleting the workspace must not take that with it (nor a copy that
    # is damaged, whatever it held).
    assert remote.run("workspace", "new", "staging").exit_code == 0
    remote.apply("--workspace", "staging")
    settings = load_settings(Path("."))
    mirror = mirror_path(settings, S3Backend(Bucket(settings.backend), "x", "staging"))
    mine = mirror.read_bytes().replace(b'"serial": 1', b'"serial": 2')
    mine = mine if kind == "unpushed" else mine[:100]
    mirror.write_bytes(mine)
    deleted = remote.run("workspace", "delete", "staging", "--force")
    assert deleted.exit_code == 0, deleted.output
    kept = Path(f"{mirror}.{kind}")
    where = f"{s3_bucket.url()}/workspaces/staging/state.json"
    what = "holds a state never uploaded" if kind == "unpushed" else "was damaged: not valid "
    assert deleted.stderr.startswith(f"this machine's copy of {where} {what}")
    assert deleted.stderr.endswith(f"; it is kept in {kept}\n")
    assert kept.read_bytes() == mine
    assert sorted(p.name for p in mirror.parent.iterdir()) == [kept.name]


def test_local_workspaces_are_separate_state_files(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    workspace = Workspace(tmp_path, emulator())
    workspace.apply()
    before = workspace.state_path.read_bytes()
    assert workspace.run("workspace", "new", "staging").exit_code == 0
    workspace.apply("--workspace", "staging")
    staging = tmp_path / ".casereport" / "workspaces" / "staging" / "state.json"
    assert parse_state(staging, staging.read_bytes()).aggregations
    assert workspace.state_path.read_bytes() == before
    assert (tmp_path / "site-staging" / "index.html").is_file()
    assert lines(workspace.run("workspace", "list").output) == ["* default", "  staging"]


def test_push_pull_and_migrate_move_the_state_and_refuse_another_lineage(
    tmp_path: Path, emulator: Emulator, s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    workspace = Workspace(tmp_path, emulator())
    workspace.apply()  # a local state, as before any backend
    local = workspace.state_path.read_bytes()
    url = s3_bucket.url()
    (tmp_path / "casereport.toml").write_text(f'[backend]\nendpoint_url = "{s3_bucket.endpoint}"\n')
    pushed = workspace.run("state", "push", "--backend", url)
    assert pushed.exit_code == 0, pushed.output
    assert s3_bucket.object(STATE) == local
    # From now on the bucket is the state: a no-op there too.
    result, calls = workspace.counted("apply", "--auto-approve", "--backend", url)
    assert (result.exit_code, calls) == (0, 0) and "No changes" in result.output

    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.chdir(other)
    fresh = Workspace(other, workspace.emulator)
    (other / "casereport.toml").write_text(f'[backend]\nendpoint_url = "{s3_bucket.endpoint}"\n')
    fresh.apply()  # another lineage
    refused = fresh.run("state", "push", "--backend", url)
    assert refused.exit_code == 1
    assert one_error_line(refused.output).startswith(
        f"Error: {url}/state.json holds another state (lineage "
    )
    assert s3_bucket.object(STATE) == local
    pulled = fresh.run("state", "pull", "--backend", url, "--force")
    assert pulled.exit_code == 0, pulled.output
    assert fresh.state_path.read_bytes() == local

    monkeypatch.chdir(tmp_path)
    workspace.state_path.unlink()
    back = workspace.run("state", "migrate", "--backend", url, "--to", "local")
    assert back.exit_code == 0, back.output
    assert workspace.state_path.read_bytes() == local


def test_push_folds_a_killed_applys_journal_in_first(
    tmp_path: Path, emulator: Emulator, s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    workspace = Workspace(tmp_path, emulator())
    workspace.apply()
    base = load_state(workspace.state_path)
    assert base is not None and base.source is not None
    address, kept = sorted(base.aggregations.items())[0]
    # A killed apply's one result, waiting in the journal the next local run would fold in.
    fetched = replace(
        kept, result={**kept.result, "total": 99999}, fetched_at="2026-12-07T03:00:00Z"
    )
    log = Journal.open(workspace.state_path, base, base.source)
    log.append([fetched])
    log.close()
    (tmp_path / "casereport.toml").write_text(f'[backend]\nendpoint_url = "{s3_bucket.endpoint}"\n')

    pushed = workspace.run("state", "push", "--backend", s3_bucket.url())

    assert pushed.exit_code == 0, pushed.output
    remote = parse_state(Path("remote"), s3_bucket.object(STATE).decode())
    assert remote.aggregations[address].result["total"] == 99999
    assert remote.serial == base.serial + 1
    assert not journal_path(workspace.state_path).exists()
    assert workspace.state_path.read_bytes() == s3_bucket.object(STATE)


def test_the_command_line_does_not_import_obstore_without_a_backend(tmp_path: Path) -> None:
    code = (
        "import sys\nimport casereport.cli\nfrom casereport.cli import cli\n"
        "try:\n    cli(['plan', '--emulator'])\nexcept SystemExit:\n    pass\n"
        "assert 'obstore' not in sys.modules, 'obstore imported'\n"
        "assert 'casereport.state.objects' not in sys.modules\n"
    )
    (tmp_path / "reports").mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("CASEREPORT_BACKEND", None)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / ".casereport").exists()
