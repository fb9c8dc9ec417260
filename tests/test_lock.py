"""The state lock, between real processes: fail at once, wait, take over, force-unlock.

Every holder here is a separate Python process that takes ``state_lock`` and reports its
lock ID on stdout; it releases the lock when its stdin gets a line (or closes). Waiting is
proved with a fake clock whose ``sleep`` is observed, never with wall-clock assertions.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from casereport.cli import cli
from casereport.errors import LockError, StateError
from casereport.state import journal, lock
from casereport.state.lock import (
    LockInfo,
    current_lock,
    force_unlock,
    lock_path,
    shared_state_lock,
    state_lock,
)
from casereport.state.model import State, new_state, write_state
from casereport.state.ops import remove
from casereport.state.remote_lock import age
from s3_server import lock_json, this_machine

REPO = Path(__file__).resolve().parent.parent

HOLDER = """
import sys
from pathlib import Path
from casereport.state.lock import state_lock

with state_lock(Path(sys.argv[1]), sys.argv[2]) as info:
    print(info.id, flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""


class Holder:
    """A process holding the lock of a state file until ``release``."""

    def __init__(self, process: subprocess.Popen[str], lock_id: str) -> None:
        self.process = process
        self.id = lock_id

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def release(self) -> None:
        """Let the holder leave its ``with state_lock`` block, and wait until it has exited."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline() == "released\n"
        assert self.process.wait(timeout=30) == 0

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        assert self.process.wait(timeout=30) == -signal.SIGKILL


HolderFactory = Callable[..., Holder]


@pytest.fixture
def holder() -> Iterator[HolderFactory]:
    """Factory: ``holder(state_path, operation="apply", cwd=None)`` -> a running Holder."""
    processes: list[subprocess.Popen[str]] = []

    def start(state: Path, operation: str = "apply", cwd: Path | None = None) -> Holder:
        process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(state), operation],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
        )
        processes.append(process)
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the lock is held (or the child died)
        if not line:
            assert process.stderr is not None
            pytest.fail(f"the lock holder did not start: {process.stderr.read()}")
        return Holder(process, line.strip())

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()


class FakeTime:
    """``lock.time`` with a clock that advances only when the lock loop sleeps."""

    def __init__(self, on_sleep: Callable[[int], None] | None = None) -> None:
        self.now = 0.0
        self.sleeps = 0
        self.on_sleep = on_sleep

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep(self.sleeps)


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FakeTime]:
    def install(on_sleep: Callable[[int], None] | None = None) -> FakeTime:
        fake = FakeTime(on_sleep)
        monkeypatch.setattr(lock, "time", fake)
        return fake

    return install


def never_sleep(count: int) -> None:
    raise AssertionError("the lock waited although no --lock-timeout was given")


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / ".casereport" / "state.json"


def lock_file(state: Path) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(lock_path(state).read_text(encoding="utf-8"))
    return raw


def describe(raw: dict[str, Any]) -> str:
    return (
        f"ID {raw['id']} ({raw['operation']} by {raw['who']}, pid {raw['pid']}, "
        f"since {raw['created']})"
    )


# -- one process ------------------------------------------------------------------------


def test_the_lock_file_names_the_holder_and_is_removed_on_release(state_path: Path) -> None:
    with state_lock(state_path, "apply") as info:
        raw = lock_file(state_path)
        assert raw == {
            "id": info.id,
            "operation": "apply",
            "who": lock._who(),
            "pid": info.pid,
            "created": info.created,
            "path": str(state_path),
            "version": info.version,
            # Where its pid names it (Linux: this boot, this PID namespace).
            **this_machine(),
        }
        assert re.fullmatch(r"[0-9a-f-]{36}", raw["boot_id"])
        assert re.fullmatch(r"pid:\[\d+\]", raw["pid_namespace"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", info.created)
        assert re.fullmatch(r"[^@\s]+@\S+", info.who)
        assert current_lock(state_path) == info
    assert not lock_path(state_path).exists()
    assert sorted(p.name for p in state_path.parent.iterdir()) == []


def test_each_lock_has_an_id_of_its_own_and_its_time_in_utc(
    state_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The ID is what force-unlock names; the time is UTC ("Z") whatever the machine's zone.
    monkeypatch.setenv("TZ", "Asia/Kolkata")  # UTC+05:30: a local time would be 5.5 h off
    time.tzset()
    try:
        with state_lock(state_path, "apply") as first:
            pass
        with state_lock(state_path, "apply") as second:
            pass
    finally:
        monkeypatch.undo()
        time.tzset()
    assert first.id != second.id
    assert all(
        re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", i) for i in (first.id, second.id)
    )
    taken = datetime.strptime(first.created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - taken) < timedelta(minutes=5)


def test_the_lock_file_is_readable_by_all_and_written_by_its_owner(state_path: Path) -> None:
    # rw-r--r-- asked for, whatever the umask allows: never executable, never writable by
    # others (another user's run may read who holds it; only the owner writes it).
    previous = os.umask(0)
    try:
        with state_lock(state_path, "apply"):
            mode = lock_path(state_path).stat().st_mode & 0o777
    finally:
        os.umask(previous)
    assert mode == 0o644


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks")
def test_a_forked_child_leaving_the_block_keeps_the_parents_lock(state_path: Path) -> None:
    """A child forked while the lock is held (a render worker) holds no copy of it, and
    leaving the ``with`` block there (as an exception unwinding it would) neither removes
    the lock file nor closes a descriptor the child does not own."""
    with contextlib.ExitStack() as block:
        info = block.enter_context(state_lock(state_path, "render"))
        pid = os.fork()
        if pid == 0:  # pragma: no cover (the child)
            code = 1
            try:
                block.close()
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert current_lock(state_path) == info  # the file is there, and held
    assert not lock_path(state_path).exists()


def test_the_fork_hook_leaves_a_process_holding_no_lock(state_path: Path) -> None:
    """What a forked child runs first (``os.register_at_fork``), run here: it closes its
    copies of the held locks (here the only ones, so the lock is free) and forgets them, so
    that leaving the block neither releases nor removes anything, and no write is refused
    for a lock it never took."""
    with state_lock(state_path, "render") as info:
        lock._close_in_child()
        assert current_lock(state_path) is None  # no descriptor of it is open any more
        lock_path(state_path).unlink()
        lock.verify_held(state_path)  # a process that holds no lock has nothing to check
        lock_path(state_path).write_text(json.dumps({"id": info.id}), encoding="utf-8")
    assert lock_path(state_path).exists()  # not its lock to remove


def test_the_lock_creates_the_state_folders_it_needs(tmp_path: Path) -> None:
    state = tmp_path / "not" / "there" / "state.json"  # `--state` into a new folder

    with state_lock(state, "apply"):
        assert lock_path(state).is_file()
    assert state.parent.is_dir() and not lock_path(state).exists()


def test_current_lock_does_not_create_a_lock_file(state_path: Path) -> None:
    state_path.parent.mkdir()
    assert current_lock(state_path) is None
    assert not lock_path(state_path).exists()


# -- two processes ----------------------------------------------------------------------


def test_a_second_holder_fails_at_once_naming_the_holder(
    state_path: Path, holder: HolderFactory, fake_time: Callable[..., FakeTime]
) -> None:
    first = holder(state_path, "apply")
    fake_time(never_sleep)
    raw = lock_file(state_path)
    assert (raw["id"], raw["pid"], raw["operation"]) == (first.id, first.pid, "apply")

    with pytest.raises(LockError) as caught, state_lock(state_path, "plan"):
        pytest.fail("the lock was taken twice")

    assert caught.value.message == (
        f"the state {state_path} is locked by ID {first.id} (apply by {lock._who()}, "
        f"pid {first.pid}, since {raw['created']}); wait for that run to finish "
        f"(or pass --lock-timeout), or if it is stuck: "
        f"casereport force-unlock {first.id} --state {state_path}"
    )
    assert first.alive()
    assert lock_file(state_path) == raw
    assert current_lock(state_path) == LockInfo(**raw)


def test_lock_timeout_waits_until_the_holder_releases(
    state_path: Path, holder: HolderFactory, fake_time: Callable[..., FakeTime]
) -> None:
    first = holder(state_path, "apply")

    def release_while_waiting(count: int) -> None:
        if count == 3:
            first.release()

    clock = fake_time(release_while_waiting)
    with state_lock(state_path, "apply", timeout=60) as info:
        assert lock_file(state_path)["id"] == info.id
        assert info.id != first.id

    assert clock.sleeps == 3  # refused while held, taken on the first try after the release
    assert not first.alive()
    assert not lock_path(state_path).exists()


def test_lock_timeout_gives_up_after_the_timeout(
    state_path: Path, holder: HolderFactory, fake_time: Callable[..., FakeTime]
) -> None:
    first = holder(state_path, "state rm")
    clock = fake_time()

    with pytest.raises(LockError) as caught, state_lock(state_path, "apply", timeout=2.5):
        pytest.fail("the lock was taken twice")

    # It gave up at the first look past the deadline, not before and not later.
    assert clock.now - lock._POLL_SECONDS < 2.5 <= clock.now
    assert caught.value.message.startswith(
        f"the state {state_path} is locked after waiting 2.5 s by ID {first.id} "
        f"(state rm by {lock._who()}, pid {first.pid}, since "
    )
    assert first.alive()


def test_a_killed_holders_lock_is_taken_over_with_a_notice(
    state_path: Path, holder: HolderFactory, fake_time: Callable[..., FakeTime]
) -> None:
    first = holder(state_path, "apply")
    raw = lock_file(state_path)
    first.kill()
    # The kernel released the flock; the file with the dead holder's details remains.
    assert lock_file(state_path) == raw
    assert current_lock(state_path) is None
    fake_time(never_sleep)

    notices: list[str] = []
    with state_lock(state_path, "apply", notice=notices.append) as info:
        assert lock_file(state_path)["id"] == info.id

    assert notices == [
        f"Taking over the lock {describe(raw)}, whose run ended without releasing it."
    ]
    assert not lock_path(state_path).exists()


def test_no_notice_after_a_clean_release(state_path: Path, holder: HolderFactory) -> None:
    holder(state_path).release()
    notices: list[str] = []

    with state_lock(state_path, "apply", notice=notices.append):
        pass

    assert notices == []


def test_force_unlock_refuses_a_wrong_id_and_no_lock(
    state_path: Path, holder: HolderFactory
) -> None:
    with pytest.raises(LockError) as caught:
        force_unlock(state_path, "0f5b2c1e")
    assert caught.value.message == f"the state {state_path} is not locked; nothing to unlock"

    first = holder(state_path)
    raw = lock_file(state_path)
    with pytest.raises(LockError) as caught:
        force_unlock(state_path, "0f5b2c1e")

    assert caught.value.message == (
        f"the lock on {state_path} has ID {first.id}, not 0f5b2c1e; "
        "copy the ID from the lock error message"
    )
    assert lock_file(state_path) == raw
    assert first.alive()


def test_after_force_unlock_a_new_run_locks_while_the_old_holder_still_runs(
    state_path: Path, holder: HolderFactory, fake_time: Callable[..., FakeTime]
) -> None:
    stuck = holder(state_path, "apply")

    removed = force_unlock(state_path, stuck.id)

    assert (removed.id, removed.pid, removed.operation) == (stuck.id, stuck.pid, "apply")
    assert not lock_path(state_path).exists()
    assert stuck.alive()
    fake_time(never_sleep)
    notices: list[str] = []
    with state_lock(state_path, "apply", notice=notices.append) as info:
        # The old holder finishing must not remove the new holder's lock.
        stuck.release()
        assert lock_file(state_path)["id"] == info.id
        assert current_lock(state_path) == info
        with pytest.raises(LockError):
            force_unlock(state_path, stuck.id)
    assert notices == []
    assert not lock_path(state_path).exists()
    with pytest.raises(LockError, match="is not locked"):
        force_unlock(state_path, info.id)


def test_two_holder_processes_exclude_each_other(state_path: Path, holder: HolderFactory) -> None:
    first = holder(state_path, "apply")
    second = subprocess.run(
        [sys.executable, "-c", HOLDER, str(state_path), "plan"],
        input="\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert second.returncode == 1
    assert second.stdout == ""
    assert f"LockError: the state {state_path} is locked by ID {first.id}" in second.stderr
    first.release()
    third = subprocess.run(
        [sys.executable, "-c", HOLDER, str(state_path), "plan"],
        input="\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert third.stdout.endswith("released\n")


# -- through the command line -----------------------------------------------------------


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the example workspace, as the current directory."""
    shutil.copytree(REPO / "reports", tmp_path / "reports")
    shutil.copytree(REPO / "schema", tmp_path / "schema")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1795719600")  # 2026-11-26T19:00:00Z
    for name in ("DD_API_KEY", "DD_APP_KEY", "DD_SITE", "CASEREPORT_API_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


DEFAULT_STATE = Path(".casereport/state.json")


def test_apply_fails_at_once_while_another_process_holds_the_lock(
    workspace: Path, holder: HolderFactory, fake_time: Callable[..., FakeTime]
) -> None:
    assert run("apply", "--emulator", "--auto-approve").exit_code == 0
    before = {p.name: p.read_bytes() for p in (workspace / ".casereport").iterdir()}
    other = holder(DEFAULT_STATE, "apply", cwd=workspace)
    raw = lock_file(workspace / DEFAULT_STATE)
    fake_time(never_sleep)

    result = run("apply", "--emulator", "--auto-approve", "--refresh")

    assert result.exit_code == 1
    assert result.output == (
        f"Error: the state .casereport/state.json is locked by {describe(raw)}; wait for that "
        "run to finish (or pass --lock-timeout), or if it is stuck: "
        f"casereport force-unlock {other.id}\n"
    )
    after = {p.name: p.read_bytes() for p in (workspace / ".casereport").iterdir()}
    assert after == {**before, "state.json.lock": lock_path(DEFAULT_STATE).read_bytes()}


@pytest.mark.parametrize(
    "command", [["plan", "--emulator"], ["state", "rm", "support-backlog"], ["render"]]
)
def test_other_state_commands_are_locked_out_too(
    workspace: Path, holder: HolderFactory, command: list[str]
) -> None:
    assert run("apply", "--emulator", "--auto-approve").exit_code == 0
    other = holder(DEFAULT_STATE, "apply", cwd=workspace)

    result = run(*command)

    assert result.exit_code == 1
    assert result.output.startswith(
        f"Error: the state .casereport/state.json is locked by ID {other.id} (apply by "
    )
    assert result.output.count("\n") == 1


def test_apply_with_lock_timeout_waits_for_the_holder(
    workspace: Path, holder: HolderFactory, fake_time: Callable[..., FakeTime]
) -> None:
    other = holder(DEFAULT_STATE, "apply", cwd=workspace)

    def release_while_waiting(count: int) -> None:
        if count == 2:
            other.release()

    clock = fake_time(release_while_waiting)
    result = run("apply", "--emulator", "--auto-approve", "--lock-timeout", "30")

    assert result.exit_code == 0, result.output
    assert clock.sleeps == 2
    assert "Apply complete: " in result.output
    assert not lock_path(DEFAULT_STATE).exists()


def test_apply_with_lock_timeout_fails_after_waiting(
    workspace: Path, holder: HolderFactory
) -> None:
    # Real time here: a short bounded wait, nothing asserted about its speed.
    other = holder(DEFAULT_STATE, "plan", cwd=workspace)

    result = run("apply", "--emulator", "--auto-approve", "--lock-timeout", "0.3")

    assert result.exit_code == 1
    assert result.output.startswith(
        f"Error: the state .casereport/state.json is locked after waiting 0.3 s by ID {other.id} "
        "(plan by "
    )
    assert not DEFAULT_STATE.exists()
    assert other.alive()


def test_apply_takes_over_the_lock_of_a_killed_run(workspace: Path, holder: HolderFactory) -> None:
    other = holder(DEFAULT_STATE, "apply", cwd=workspace)
    other.kill()
    assert lock_path(DEFAULT_STATE).exists()

    result = run("apply", "--emulator", "--auto-approve")

    assert result.exit_code == 0, result.output
    assert "Apply complete: " in result.output
    assert not lock_path(DEFAULT_STATE).exists()


def test_force_unlock_command(workspace: Path, holder: HolderFactory) -> None:
    result = run("force-unlock", "0f5b2c1e")
    assert result.exit_code == 1
    assert result.output == (
        "Error: the state .casereport/state.json is not locked; nothing to unlock\n"
    )

    stuck = holder(DEFAULT_STATE, "apply", cwd=workspace)
    raw = lock_file(DEFAULT_STATE)
    result = run("force-unlock", "0f5b2c1e")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: the lock on .casereport/state.json has ID {stuck.id}, not 0f5b2c1e; "
        "copy the ID from the lock error message\n"
    )
    assert lock_file(DEFAULT_STATE) == raw

    result = run("force-unlock", stuck.id)
    assert result.exit_code == 0
    # The holder is alive on this machine: removing its lock comes with a warning.
    assert result.stdout == f"Removed the lock {describe(raw)}.\n"
    assert result.stderr == (
        f"Warning: process {stuck.pid} that took this lock is still running on this machine; "
        "it will refuse to write the state when it goes on, but stop it if it is stuck "
        f"(kill {stuck.pid}).\n"
    )
    assert not lock_path(DEFAULT_STATE).exists()

    # A new run locks and completes while the stuck run still holds its orphaned lock.
    result = run("apply", "--emulator", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert stuck.alive()
    stuck.release()


@pytest.mark.parametrize("shared", [False, True], ids=["apply", "plan"])
def test_a_lock_file_removed_between_open_and_flock_is_locked_afresh(
    state_path: Path, monkeypatch: pytest.MonkeyPatch, shared: bool
) -> None:
    # force-unlock removes the file after this run opened it and before it locked it: a lock
    # on that orphan would hold nothing, so the run opens the path's new file and locks that,
    # the same way (a plan's shared lock stays shared).
    real_flock = fcntl.flock
    calls: list[int] = []

    def flock_after_a_force_unlock(fd: int, operation: int) -> None:
        calls.append(fd)
        if len(calls) == 1:
            lock_path(state_path).unlink()
        real_flock(fd, operation)

    state_path.parent.mkdir(parents=True)
    monkeypatch.setattr(fcntl, "flock", flock_after_a_force_unlock)
    taken = shared_state_lock(state_path) if shared else state_lock(state_path, "apply")
    with taken as info:
        monkeypatch.undo()
        assert len(calls) == 2
        if info is not None:
            assert lock_file(state_path)["id"] == info.id  # written to the path's file
        # And that file is the one locked, exclusively or shared.
        with open(lock_path(state_path), "rb") as other:
            if shared:
                fcntl.flock(other.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)  # another plan
            with pytest.raises(BlockingIOError):
                fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_a_lock_file_that_cannot_be_created_is_named_with_the_reason(tmp_path: Path) -> None:
    # The state's folder is a file: no lock file can go there.
    (tmp_path / ".casereport").write_text("not a folder\n", encoding="utf-8")
    state = tmp_path / ".casereport" / "state.json"
    with pytest.raises(LockError) as caught, state_lock(state, "apply"):
        pytest.fail("locked")
    assert caught.value.message == (f"cannot create the lock file {lock_path(state)}: File exists")


@pytest.mark.parametrize(("size", "named"), [(65536, True), (65537, False)])
def test_a_lock_file_is_read_up_to_64_kib(state_path: Path, size: int, named: bool) -> None:
    # Its holder's details are a few hundred bytes: a larger file is not a lock's, and
    # reading it whole (a planted file of any size) would cost memory for nothing.
    ids: list[str] = []

    def padded(held: dict[str, Any]) -> str:
        ids.append(held["id"])
        text = json.dumps(held | {"pid": os.getpid(), "who": HERE})
        padded = text[:-1] + " " * (size - len(text)) + "}"
        assert len(padded.encode()) == size
        return padded

    message = plan_refused_by_file(state_path, padded)
    holder = f"by ID {ids[0]} (apply by {HERE}, pid {os.getpid()},"
    assert (holder in message) is named


def test_force_unlock_with_a_state_option(
    tmp_path: Path, holder: HolderFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    state = tmp_path / "elsewhere" / "state.json"
    stuck = holder(state, "apply")

    refused = run("force-unlock", stuck.id)  # the default state is not locked
    removed = run("force-unlock", stuck.id, "--state", str(state))

    assert refused.exit_code == 1
    assert removed.exit_code == 0
    assert removed.output.startswith(f"Removed the lock ID {stuck.id} (apply by ")
    assert not lock_path(state).exists()


def test_a_writer_blocked_by_a_reading_plan_is_told_to_wait(state_path: Path) -> None:
    with (
        shared_state_lock(state_path),
        pytest.raises(LockError) as caught,
        state_lock(state_path, "apply"),
    ):
        pytest.fail("the lock was taken while a plan reads the state")

    assert caught.value.message == (
        f"the state {state_path} is locked by another run (a plan reads it); "
        "wait for it to finish, or pass --lock-timeout SECONDS to wait"
    )


def test_looking_at_a_symlinked_lock_file_names_it(state_path: Path, tmp_path: Path) -> None:
    state_path.parent.mkdir(parents=True, exist_ok=True)
    target = tmp_path / "victim.txt"
    target.write_text("precious\n")
    lock_path(state_path).symlink_to(target)

    with pytest.raises(LockError) as caught:
        current_lock(state_path)

    assert caught.value.message == (
        f"the lock file {lock_path(state_path)} is a symlink or not a regular file; remove it "
        "(casereport creates it as a plain file) and run again"
    )
    assert target.read_text() == "precious\n"


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0 s"),
        (59, "59 s"),
        (60, "1 min"),
        (3599, "59 min"),
        (3600, "1 h"),
        (86399, "23 h"),
        (86400, "1 d"),
        (3 * 86400 + 5, "3 d"),
        (-30, "0 s"),
    ],
)
def test_a_locks_age_is_shown_in_its_largest_unit(seconds: int, shown: str) -> None:
    taken = datetime(2026, 11, 26, 19, tzinfo=UTC)
    assert age("2026-11-26T19:00:00Z", now=taken + timedelta(seconds=seconds)) == shown
    assert age("a while ago", now=taken) == "an unknown time"


def holders_when_state_is_read(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The operation named by the state's lock each time a command reads the state (what
    another run blocked meanwhile would be told), "none" when it is not locked."""
    held: list[str] = []
    recover = journal.recover

    def looking(path: Path) -> State | None:
        info = current_lock(path)
        held.append(info.operation if info is not None else "none")
        return recover(path)

    monkeypatch.setattr(journal, "recover", looking)
    return held


def test_state_rm_holds_the_lock_as_state_rm(
    state_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another run blocked meanwhile names the holder by this operation.
    write_state(state_path, new_state(), None)
    held = holders_when_state_is_read(monkeypatch)
    with pytest.raises(StateError):
        remove(state_path, ("nothing.here",))

    assert held == ["state rm"]


# -- what a plan is told about the run that holds the lock ----------------------------------


def plan_refused_by_file(
    state_path: Path,
    rewrite: Callable[[dict[str, Any]], str],
    looking: contextlib.AbstractContextManager[object] | None = None,
) -> str:
    """The message of a plan (a shared lock) refused by an apply (held here) whose lock file
    ``rewrite`` makes from its content, the plan run inside ``looking``."""
    with state_lock(state_path, "apply"):
        text = rewrite(lock_file(state_path))
        lock_path(state_path).write_text(text, encoding="utf-8")  # the same file
        with (
            looking or contextlib.nullcontext(),
            pytest.raises(LockError) as caught,
            shared_state_lock(state_path),
        ):
            pytest.fail("a plan read the state while an apply held it")
    return caught.value.message


def plan_refused_by(
    state_path: Path,
    who: str,
    pid: int,
    looking: contextlib.AbstractContextManager[object] | None = None,
    **where: str,
) -> tuple[str, dict[str, Any]]:
    """The message of a plan refused by an apply whose lock file names ``who`` and ``pid``
    as its holder (``where``: its boot or PID namespace, when not this process's), the plan
    run inside ``looking``; and that file."""
    raw: dict[str, Any] = {}

    def naming(held: dict[str, Any]) -> str:
        raw.update(held | {"who": who, "pid": pid} | where)
        return json.dumps(raw)

    return plan_refused_by_file(state_path, naming, looking), raw


HERE = f"ci@{socket.gethostname()}"


def stuck_hint(state_path: Path, raw: dict[str, Any]) -> str:
    return (
        f"the state {state_path} is locked by {describe(raw)}; wait for that run to finish "
        f"(or pass --lock-timeout), or if it is stuck: casereport force-unlock {raw['id']} "
        f"--state {state_path}"
    )


def still_running(state_path: Path, raw: dict[str, Any]) -> str:
    return (
        f"the state {state_path} is locked by {describe(raw)}, which is still running; "
        "wait for that apply to finish, or pass --lock-timeout SECONDS to wait"
    )


def test_a_holder_on_another_host_is_never_looked_for_here(state_path: Path) -> None:
    # Its pid, this process's here, says nothing about a run on another machine: a plan
    # is given the way to unlock it, not told that it runs.
    message, raw = plan_refused_by(state_path, "ci@another-host.invalid", os.getpid())
    assert message == stuck_hint(state_path, raw)


@pytest.mark.parametrize(
    "where",
    [{"boot_id": "00000000-0000-4000-8000-000000000000"}, {"pid_namespace": "pid:[1]"}],
    ids=["another-boot", "another-pid-namespace"],
)
def test_a_holder_of_this_host_name_elsewhere_is_never_looked_for_here(
    state_path: Path, where: dict[str, str]
) -> None:
    # The same host name on another machine, or in another container of this one: the pid,
    # this process's here, names another process there.
    message, raw = plan_refused_by(state_path, HERE, os.getpid(), **where)
    assert message == stuck_hint(state_path, raw)


@pytest.mark.parametrize(
    "wrong", [{"pid": "123"}, {"pid": 2**70}, {"pid": -1}, {"who": 5}, {"id": None}], ids=str
)
def test_a_lock_file_with_a_field_of_the_wrong_type_names_no_holder(
    state_path: Path, wrong: dict[str, object]
) -> None:
    # Planted, or damaged: no pid looked for (kill() would fail on each), no traceback.
    message = plan_refused_by_file(state_path, lambda held: json.dumps(held | wrong))
    assert message == (
        f"the state {state_path} is locked by another run (a plan reads it); "
        "wait for it to finish, or pass --lock-timeout SECONDS to wait"
    )


@pytest.mark.parametrize(
    ("pid", "read"), [(0, True), (2**31 - 1, True), (-1, False), (2**31, False)]
)
def test_a_lock_pid_is_read_only_within_a_pid_ts_range(pid: int, read: bool) -> None:
    # A pid_t: os.kill() raises OverflowError past 2**31 - 1, and a negative pid names a
    # process group. Of this machine, so that a pid read is looked for.
    held = lock_json(HERE, pid, where=this_machine())
    info = LockInfo.parse(held)
    assert (info is not None) is read
    if info is not None:
        assert info.pid == pid
        assert not info.alive_here()  # no such process: looked for without an error


@pytest.mark.parametrize("missing", [KeyError, OSError])
def test_a_user_without_a_name_is_named_by_uid(
    monkeypatch: pytest.MonkeyPatch, missing: type[Exception]
) -> None:
    # A container's user often has no /etc/passwd entry: getpass.getuser() then raises.
    def no_name() -> str:
        raise missing("getpwuid(): uid not found")

    monkeypatch.setattr(getpass, "getuser", no_name)
    assert lock._who() == f"{os.getuid()}@{socket.gethostname()}"


def test_a_holder_here_without_a_pid_is_a_past_holder(state_path: Path) -> None:
    # pid 0 would be this process's group to os.kill: never looked up.
    message, _ = plan_refused_by(state_path, HERE, 0)
    assert message == (
        f"the state {state_path} is locked by another run (a plan reads it); "
        "wait for it to finish, or pass --lock-timeout SECONDS to wait"
    )


def test_a_live_holder_here_is_still_running_and_is_not_signalled(state_path: Path) -> None:
    # The holder named is this process, which notes any signal it receives (a signal a
    # process sends itself is handled before the next line runs).
    received: list[int] = []
    noted = {
        number: signal.signal(number, lambda n, _: received.append(n))
        for number in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
    }
    try:
        message, raw = plan_refused_by(state_path, HERE, os.getpid())
    finally:
        for number, handler in noted.items():
            signal.signal(number, handler)
    assert message == still_running(state_path, raw)
    assert received == []  # looked up with signal 0, which is never delivered


def test_process_1_here_is_a_live_holder(state_path: Path) -> None:
    message, raw = plan_refused_by(state_path, HERE, 1)
    assert message == still_running(state_path, raw)


@contextlib.contextmanager
def kill_not_permitted() -> Iterator[None]:
    """os.kill as for another user's process."""

    def not_permitted(pid: int, signal_number: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "kill", not_permitted)
        yield


def test_a_holder_of_another_user_is_still_running(state_path: Path) -> None:
    message, raw = plan_refused_by(state_path, HERE, os.getpid(), kill_not_permitted())
    assert message == still_running(state_path, raw)
