"""The lock against what goes wrong around it: stale writers, symlinks, plans side by side.

A stale writer is a real process stopped with SIGSTOP while it holds the lock and is
fetching; another run force-unlocks it and writes a newer state; SIGCONT lets the first
go on, and it must refuse to write rather than overwrite the newer state.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from casereport.cli import cli
from casereport.errors import LockError, StateError
from casereport.state import journal
from casereport.state.lock import (
    LockInfo,
    current_lock,
    force_unlock,
    lock_path,
    shared_state_lock,
    state_lock,
)
from casereport.state.model import load_state, new_state, write_state

REPO = Path(__file__).resolve().parent.parent
STATE = Path(".casereport/state.json")

# An apply that stops itself (SIGSTOP) once its first result has arrived: it holds the
# lock and its journal is open.
STOPPING_APPLY = """
import os, signal, sys
from casereport.engine.apply import run_apply
from casereport.engine.events import Failed, Fetched
from casereport.engine.workspace import Options
from casereport.errors import CaseReportError

stopped = False

def listener(event):
    global stopped
    if not stopped and isinstance(event, (Fetched, Failed)):
        stopped = True
        print("fetching", flush=True)
        os.kill(os.getpid(), signal.SIGSTOP)

try:
    run_apply(
        Options(use_emulator=True, refresh_all=True, parallelism=1),
        None,
        approve=lambda plan: True,
        listener=listener,
        auto_approve=True,
    )
except CaseReportError as exc:
    print(f"refused: {exc.message}", flush=True)
    sys.exit(1)
print("applied", flush=True)
"""


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(REPO / "reports", tmp_path / "reports")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1795719600")
    for name in ("DD_API_KEY", "DD_APP_KEY", "DD_SITE", "CASEREPORT_API_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }


def process_state(pid: int) -> str:
    """The one-letter state of a process (``T`` when stopped)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0]


@pytest.fixture
def stopping_apply(workspace: Path) -> Iterator[Any]:
    """Factory: start an apply that stops itself (SIGSTOP) while it holds the lock."""
    started: list[subprocess.Popen[str]] = []

    def start() -> subprocess.Popen[str]:
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        process = subprocess.Popen(
            [sys.executable, "-c", STOPPING_APPLY],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=workspace,
            env=env,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)
            process.kill()
        process.communicate(timeout=30)


# -- 4. no stale writer ------------------------------------------------------------------


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_force_unlocked_run_refuses_to_overwrite_a_newer_state(
    workspace: Path, stopping_apply: Any
) -> None:
    assert run("apply", "--emulator", "--auto-approve").exit_code == 0
    stuck = stopping_apply()
    assert stuck.stdout is not None
    assert stuck.stdout.readline() == "fetching\n"
    deadline = time.monotonic() + 30
    while process_state(stuck.pid) != "T":
        assert time.monotonic() < deadline, "the apply did not stop"
        time.sleep(0.01)
    holder = current_lock(STATE)
    assert holder is not None and holder.pid == stuck.pid
    assert journal.journal_path(STATE).exists()

    unlocked = run("force-unlock", holder.id)
    assert unlocked.exit_code == 0
    assert f"Warning: process {stuck.pid} that took this lock is still running" in (unlocked.stderr)
    newer = run("apply", "--emulator", "--auto-approve", "--refresh")
    assert newer.exit_code == 0, newer.output
    state = load_state(STATE)
    assert state is not None
    # Another run's journal, as a run killed mid-apply leaves it: not the stale run's to touch.
    log = journal.Journal.open(STATE, state, state.source)  # type: ignore[arg-type]
    log.append([next(iter(state.aggregations.values()))])
    log.close()
    before = files(workspace)

    stuck.send_signal(signal.SIGCONT)
    out, err = stuck.communicate(timeout=60)

    assert stuck.returncode == 1, (out, err)
    assert out == (
        f"refused: this run's lock on the state {STATE} (ID {holder.id}) was removed, by "
        "force-unlock or another run; nothing more was written: run again\n"
    )
    assert files(workspace) == before  # the newer state, its backup, pages, other journal
    after = load_state(STATE)
    assert after is not None and after.serial == state.serial


def test_a_write_over_a_state_that_moved_on_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    first = write_state(path, new_state(), None)
    newer = write_state(path, first.__class__(lineage=first.lineage, tool_version="x"), first)
    newer = write_state(
        path, newer.__class__(lineage=first.lineage, site_outputs={"a": "b"}), newer
    )
    on_disk = path.read_bytes()

    with pytest.raises(StateError) as caught:
        write_state(path, first.__class__(lineage=first.lineage, site_outputs={"c": "d"}), first)
    assert caught.value.message == (
        f"{path}: the state changed since this run read it (serial 1, now serial 2): another "
        "run wrote it; this run wrote nothing; run it again"
    )
    with pytest.raises(StateError) as caught:
        write_state(path, new_state(), None)
    assert caught.value.message == (
        f"{path}: the state changed since this run read it (no state, now serial 2): another "
        "run wrote it; this run wrote nothing; run it again"
    )
    other = new_state()
    with pytest.raises(StateError) as caught:
        write_state(path, other.__class__(lineage=other.lineage, site_outputs={"e": "f"}), other)
    assert caught.value.message == (
        f"{path}: the state changed since this run read it (serial 0, now another state "
        f"(lineage {first.lineage})): another run wrote it; this run wrote nothing; run it again"
    )
    assert path.read_bytes() == on_disk


def test_a_state_replaced_by_one_with_a_lineage_not_in_utf8_is_named_not_a_crash(
    tmp_path: Path,
) -> None:
    # Whatever wrote it (a damaged copy, another tool), the refusal is the one line, with
    # the bytes that are not UTF-8 shown as replacement characters.
    path = tmp_path / "state.json"
    first = write_state(path, new_state(), None)
    damaged = path.read_bytes().replace(first.lineage.encode(), b"\xff\xfe-lineage")
    path.write_bytes(damaged)

    with pytest.raises(StateError) as caught:
        write_state(path, first.__class__(lineage=first.lineage, site_outputs={"a": "b"}), first)
    assert caught.value.message == (
        f"{path}: the state changed since this run read it (serial 1, now another state "
        "(lineage \ufffd\ufffd-lineage)): another run wrote it; this run wrote nothing; "
        "run it again"
    )
    assert path.read_bytes() == damaged


def test_a_state_replaced_by_its_top_level_lines_alone_is_named_by_its_lineage(
    tmp_path: Path,
) -> None:
    # The lines are found where they start, even at the file's first byte (the file is not
    # JSON, so only that search finds them).
    path = tmp_path / "state.json"
    first = write_state(path, new_state(), None)
    path.write_bytes(b'\n  "lineage": "elsewhere",\n  "serial": 7\n')

    with pytest.raises(StateError) as caught:
        write_state(path, first.__class__(lineage=first.lineage, site_outputs={"a": "b"}), first)
    assert caught.value.message == (
        f"{path}: the state changed since this run read it (serial 1, now another state "
        "(lineage elsewhere)): another run wrote it; this run wrote nothing; run it again"
    )


def test_a_state_removed_since_it_was_read_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    first = write_state(path, new_state(), None)
    path.unlink()

    with pytest.raises(StateError) as caught:
        write_state(path, first.__class__(lineage=first.lineage, site_outputs={"a": "b"}), first)
    assert caught.value.message == (
        f"{path}: the state changed since this run read it (serial 1, now none): another run "
        "wrote it; this run wrote nothing; run it again"
    )
    assert not path.exists()


def test_a_lock_taken_over_in_process_stops_the_write(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with state_lock(path, "apply") as info:
        state = write_state(path, new_state(), None)
        lock_path(path).unlink()  # force-unlock
        with state_lock(path, "apply"):
            pass  # another run came and went
        with pytest.raises(LockError) as caught:
            write_state(
                path, state.__class__(lineage=state.lineage, site_outputs={"a": "b"}), state
            )
    assert caught.value.message == (
        f"this run's lock on the state {path} (ID {info.id}) was removed, by force-unlock "
        "or another run; nothing more was written: run again"
    )
    assert load_state(path) == state


def test_a_lock_file_moved_aside_behind_a_link_is_no_longer_held(tmp_path: Path) -> None:
    # The lock file renamed and a link to it put in its place: the file this run locked
    # is no longer the one at the lock's path, even though the link leads to it.
    path = tmp_path / "state.json"
    with state_lock(path, "apply") as info:
        state = write_state(path, new_state(), None)
        moved = tmp_path / "moved.lock"
        lock_path(path).rename(moved)
        lock_path(path).symlink_to(moved)
        with pytest.raises(LockError) as caught:
            write_state(
                path, state.__class__(lineage=state.lineage, site_outputs={"a": "b"}), state
            )
        lock_path(path).unlink()
    assert caught.value.message.startswith(
        f"this run's lock on the state {path} (ID {info.id}) was removed"
    )
    assert load_state(path) == state


def test_a_lock_file_replaced_by_a_copy_of_itself_is_no_longer_held(tmp_path: Path) -> None:
    # Another file with this run's details (copied back after a force-unlock, or saved by an
    # editor as a new file) is not the file this run locked: another run can lock it.
    path = tmp_path / "state.json"
    with state_lock(path, "apply") as info:
        state = write_state(path, new_state(), None)
        copy = lock_path(path).read_bytes()
        lock_path(path).unlink()
        lock_path(path).write_bytes(copy)
        with pytest.raises(LockError) as caught:
            write_state(
                path, state.__class__(lineage=state.lineage, site_outputs={"a": "b"}), state
            )
    assert caught.value.message.startswith(
        f"this run's lock on the state {path} (ID {info.id}) was removed"
    )
    assert load_state(path) == state


# -- 3. the lock file is never followed through a symlink ---------------------------------


@pytest.mark.parametrize("kind", ["symlink", "dangling symlink", "directory", "fifo"])
def test_a_lock_path_that_is_not_a_regular_file_is_refused(tmp_path: Path, kind: str) -> None:
    path = tmp_path / ".casereport" / "state.json"
    path.parent.mkdir()
    target = tmp_path / "elsewhere.txt"
    lock = lock_path(path)
    if kind == "symlink":
        target.write_text("precious\n")
        lock.symlink_to(target)
    elif kind == "dangling symlink":
        lock.symlink_to(target)
    elif kind == "directory":
        lock.mkdir()
    else:
        os.mkfifo(lock)

    for take in (lambda: state_lock(path, "apply"), lambda: shared_state_lock(path)):
        with pytest.raises(LockError) as caught, take():
            pytest.fail("a lock was taken through it")
        assert caught.value.message == (
            f"the lock file {lock} is a symlink or not a regular file; remove it "
            "(casereport creates it as a plain file) and run again"
        )
    if kind == "symlink":
        assert target.read_text() == "precious\n"
    if kind == "dangling symlink":
        assert not target.exists()
    assert os.path.lexists(lock)


def test_a_lock_file_beyond_64_kib_is_not_read_whole(tmp_path: Path) -> None:
    # casereport writes a few hundred bytes; a planted file of any size must not be read
    # into memory, so past 64 KiB it has no readable holder, even if it is valid JSON.
    path = tmp_path / ".casereport" / "state.json"
    path.parent.mkdir()
    holder = LockInfo("0f5b2c1e", "apply", "ops@elsewhere", 1, "2026-12-07T08:00:00Z", str(path))
    lock_path(path).write_text("{" + " " * 65536 + json.dumps(asdict(holder))[1:])

    with pytest.raises(LockError) as caught:
        force_unlock(path, "0f5b2c1e")

    assert caught.value.message == f"the state {path} is not locked; nothing to unlock"
    assert lock_path(path).stat().st_size > 65536


def test_apply_refuses_a_symlinked_lock_file_with_one_line(workspace: Path) -> None:
    assert run("apply", "--emulator", "--auto-approve").exit_code == 0
    target = workspace / "victim.txt"
    target.write_text("precious\n")
    lock_path(STATE).symlink_to(target)
    before = files(workspace)

    result = run("apply", "--emulator", "--auto-approve", "--refresh")

    assert result.exit_code == 1
    assert result.output == (
        f"Error: the lock file {lock_path(STATE)} is a symlink or not a regular file; remove it "
        "(casereport creates it as a plain file) and run again\n"
    )
    assert files(workspace) == before


def test_the_lock_descriptor_is_not_inherited(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with state_lock(path, "apply"):
        fds = [int(fd) for fd in os.listdir("/proc/self/fd")]
        lock_fds = [fd for fd in fds if _points_to(fd, lock_path(path))]
        assert lock_fds and all(not os.get_inheritable(fd) for fd in lock_fds)
        assert all(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC for fd in lock_fds)


def _points_to(fd: int, path: Path) -> bool:
    try:
        return os.readlink(f"/proc/self/fd/{fd}") == str(path)
    except OSError:
        return False


# -- 9b. plans side by side ---------------------------------------------------------------

HOLD = """
import sys
from pathlib import Path
from casereport.state.lock import shared_state_lock, state_lock

if sys.argv[2] == "plan":
    lock = shared_state_lock(Path(sys.argv[1]))
else:
    lock = state_lock(Path(sys.argv[1]), sys.argv[2])
with lock:
    print("held", flush=True)
    sys.stdin.readline()
"""


@pytest.fixture
def holders() -> Iterator[Any]:
    started: list[subprocess.Popen[str]] = []

    def start(state: Path, operation: str) -> subprocess.Popen[str]:
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        process = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(state), operation],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        started.append(process)
        assert process.stdout is not None and process.stdout.readline() == "held\n"
        return process

    yield start
    for process in started:
        process.kill()
        process.communicate(timeout=30)


def test_plans_do_not_lock_each_other_out(workspace: Path, holders: Any) -> None:
    assert run("apply", "--emulator", "--auto-approve").exit_code == 0
    holders(workspace / STATE, "plan")  # another plan, still running

    result = run("plan", "--emulator", "--detailed-exitcode")

    assert result.exit_code == 0, result.output
    assert "No changes." in result.output
    # A writer still waits for the reading plan.
    refused = run("apply", "--emulator", "--auto-approve", "--refresh")
    assert refused.exit_code == 1
    assert refused.output == (
        f"Error: the state {STATE} is locked by another run (a plan reads it); wait for it to "
        "finish, or pass --lock-timeout SECONDS to wait\n"
    )


def test_a_plan_blocked_by_a_running_apply_is_told_to_wait(workspace: Path, holders: Any) -> None:
    assert run("apply", "--emulator", "--auto-approve").exit_code == 0
    apply = holders(workspace / STATE, "apply")
    info = current_lock(STATE)
    assert info is not None and info.pid == apply.pid

    result = run("plan", "--emulator")

    assert result.exit_code == 1
    assert result.output == (
        f"Error: the state {STATE} is locked by {info.describe()}, which is still running; "
        "wait for that apply to finish, or pass --lock-timeout SECONDS to wait\n"
    )
    assert "force-unlock" not in result.output


def test_the_last_plan_out_removes_the_lock_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with shared_state_lock(path), shared_state_lock(path):
        assert lock_path(path).exists()
    assert not lock_path(path).exists()
