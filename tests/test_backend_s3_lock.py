"""The lock object of a remote state (``state.remote_lock``), against moto's S3 server.

Beyond ``test_backend_s3``: the races a lock object has to survive (released or taken
over by another run between two requests), a lock of another machine that is never taken
over, an unreadable lock object, a run whose lock was removed under it, and the age a
lock error shows.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from casereport.errors import LockError
from casereport.settings import BackendSettings
from casereport.state import lock
from casereport.state.objects import Bucket, Stored
from casereport.state.remote_lock import age, force_unlock, remote_lock, verify_held
from s3_server import S3Bucket, lock_json, s3_bucket, s3_server, this_machine

__all__ = ["s3_bucket", "s3_server"]  # fixtures

KEY = "state.json.lock"


def bucket_of(s3_bucket: S3Bucket) -> Bucket:
    return Bucket(BackendSettings(url=s3_bucket.url(), endpoint_url=s3_bucket.endpoint))


def dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout)


NOW = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("created", "shown"),
    [
        ("2026-12-07T12:00:00Z", "0 s"),
        ("2026-12-07T11:59:01Z", "59 s"),
        ("2026-12-07T11:59:00Z", "1 min"),
        ("2026-12-07T11:00:01Z", "59 min"),
        ("2026-12-07T11:00:00Z", "1 h"),
        ("2026-12-06T12:00:01Z", "23 h"),
        ("2026-12-06T12:00:00Z", "1 d"),
        ("2026-12-04T11:00:00Z", "3 d"),
        ("2026-12-07T12:00:30Z", "0 s"),  # a clock ahead of this one: never negative
        ("yesterday", "an unknown time"),
    ],
)
def test_the_age_of_a_lock_in_its_largest_unit(created: str, shown: str) -> None:
    assert age(created, NOW) == shown


def test_the_age_is_measured_from_now_by_default() -> None:
    assert age(datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")) in {"0 s", "1 s", "2 s"}


def test_a_lock_of_another_machine_is_never_taken_over(s3_bucket: S3Bucket) -> None:
    # This boot and PID namespace: only the host name says it is another machine.
    another = lock_json("ci@another-host-entirely", dead_pid(), where=this_machine())
    s3_bucket.put(f"casereport/{KEY}", another)
    with pytest.raises(LockError) as refused, remote_lock(bucket_of(s3_bucket), KEY, "apply"):
        pass
    assert str(refused.value.message).startswith(
        f"the state {s3_bucket.url()}/state.json is locked by ID abc (apply by "
        "ci@another-host-entirely, pid "
    )
    assert str(refused.value.message).endswith(
        " ago; wait for that run to finish (or pass --lock-timeout), "
        "or if it is stuck: casereport force-unlock abc"
    )


@pytest.mark.parametrize(
    "where",
    [
        # Another machine of the same host name (CI runners often share one): its boot.
        {"boot_id": "00000000-0000-4000-8000-000000000000"},
        # Another container of this machine, of the same host name: its PID namespace.
        {"pid_namespace": "pid:[1]"},
        # An older casereport's lock, which does not say where it was taken.
        None,
    ],
    ids=["another-boot", "another-pid-namespace", "not-said"],
)
def test_a_lock_of_this_host_name_elsewhere_is_never_taken_over(
    s3_bucket: S3Bucket, where: dict[str, str] | None
) -> None:
    # Its pid, no process here, may be a live run there: only force-unlock removes it.
    here = f"ci@{socket.gethostname()}"
    elsewhere = None if where is None else this_machine() | where
    s3_bucket.put(f"casereport/{KEY}", lock_json(here, dead_pid(), where=elsewhere))
    notices: list[str] = []
    with (
        pytest.raises(LockError) as refused,
        remote_lock(bucket_of(s3_bucket), KEY, "apply", notice=notices.append),
    ):
        pass
    assert str(refused.value.message).startswith(
        f"the state {s3_bucket.url()}/state.json is locked by ID abc (apply by {here}, pid "
    )
    assert str(refused.value.message).endswith("or if it is stuck: casereport force-unlock abc")
    assert notices == []
    assert json.loads(s3_bucket.object(f"casereport/{KEY}") or b"{}")["id"] == "abc"


def test_a_holder_is_named_as_written_in_utf_8(s3_bucket: S3Bucket) -> None:
    # UTF-8 bytes rather than \u escapes (JSON allows both; casereport writes escapes).
    text = json.loads(lock_json("josé@ci-ünïcode", 1))
    s3_bucket.put(f"casereport/{KEY}", json.dumps(text, ensure_ascii=False).encode())
    with pytest.raises(LockError) as refused, remote_lock(bucket_of(s3_bucket), KEY, "apply"):
        pass
    assert "is locked by ID abc (apply by josé@ci-ünïcode, pid 1," in refused.value.message


def test_a_lock_error_names_the_workspace_to_unlock(s3_bucket: S3Bucket) -> None:
    s3_bucket.put(f"casereport/{KEY}", lock_json("ci@another-host", 1))
    with (
        pytest.raises(LockError) as refused,
        remote_lock(bucket_of(s3_bucket), KEY, "apply", hint=" --workspace staging"),
    ):
        pass
    assert str(refused.value.message).endswith("casereport force-unlock abc --workspace staging")


def test_an_unreadable_lock_object_is_named_with_what_to_do(s3_bucket: S3Bucket) -> None:
    s3_bucket.put(f"casereport/{KEY}", b"not json")
    bucket = bucket_of(s3_bucket)
    with pytest.raises(LockError) as refused, remote_lock(bucket, KEY, "apply"):
        pass
    where = f"{s3_bucket.url()}/state.json"
    # Its ID is made of its content: sha256(b"not json")[:12].
    lock_id = "unreadable-" + hashlib.sha256(b"not json").hexdigest()[:12]
    assert refused.value.message == (
        f"the state {where} is locked by an unreadable lock object {where}.lock; "
        f"if no run is going on: casereport force-unlock {lock_id}"
    )
    with (
        pytest.raises(LockError) as waited,
        remote_lock(bucket, KEY, "apply", timeout=0.3, hint=" --workspace default"),
    ):
        pass
    assert waited.value.message == (
        f"the state {where} is locked after waiting 0.3 s by an unreadable lock object "
        f"{where}.lock; if no run is going on: casereport force-unlock {lock_id} --workspace "
        "default"
    )
    for wrong in ("abc", "unreadable", "unreadable-" + "0" * 12):
        with pytest.raises(LockError) as unlock:
            force_unlock(bucket, KEY, wrong)
        assert unlock.value.message == (
            f"the lock on {where} has ID {lock_id}, not {wrong}; copy the ID from the lock "
            "error message"
        )
    assert s3_bucket.object(f"casereport/{KEY}") == b"not json"  # left alone
    assert force_unlock(bucket, KEY, lock_id) == (None, "")
    assert s3_bucket.keys() == []


def test_force_unlock_of_an_unlocked_state_says_so(s3_bucket: S3Bucket) -> None:
    with pytest.raises(LockError) as refused:
        force_unlock(bucket_of(s3_bucket), KEY, "abc")
    assert refused.value.message == (
        f"the state {s3_bucket.url()}/state.json is not locked; nothing to unlock"
    )


def test_force_unlock_returns_the_holder_and_its_age(s3_bucket: S3Bucket) -> None:
    s3_bucket.put(f"casereport/{KEY}", lock_json("ci@runner", 7))
    holder, shown = force_unlock(bucket_of(s3_bucket), KEY, "abc")
    assert (holder.id, holder.who, holder.pid, holder.operation) == ("abc", "ci@runner", 7, "apply")
    assert shown.endswith(" d")
    assert s3_bucket.keys() == []


def test_the_lock_object_says_who_holds_it_and_is_removed_after(s3_bucket: S3Bucket) -> None:
    with remote_lock(bucket_of(s3_bucket), KEY, "state rm") as info:
        held = json.loads(s3_bucket.object(f"casereport/{KEY}") or b"{}")
        assert held["id"] == info.id and held["operation"] == "state rm"
        assert held["path"] == f"{s3_bucket.url()}/state.json"
        assert held["who"].endswith(f"@{socket.gethostname()}")
        # Where its pid names this process: what another run judges it by.
        assert {k: held[k] for k in ("boot_id", "pid_namespace")} == this_machine()
    assert s3_bucket.keys() == []


class _Racing(Bucket):
    """The real bucket, with another run acting between this run's requests: ``on_read``
    runs once, just before this run's first read of the lock object."""

    def __init__(self, s3_bucket: S3Bucket, on_read: object) -> None:
        super().__init__(BackendSettings(url=s3_bucket.url(), endpoint_url=s3_bucket.endpoint))
        self.on_read = on_read
        self.reads = 0

    def read(self, key: str) -> Stored | None:
        self.reads += 1
        if self.reads == 1:
            self.on_read()  # type: ignore[operator]
        return super().read(key)


def test_a_lock_released_between_two_requests_is_taken_at_once(s3_bucket: S3Bucket) -> None:
    s3_bucket.put(f"casereport/{KEY}", lock_json("ci@another-host", 1))
    racing = _Racing(s3_bucket, lambda: s3_bucket.clear())  # the holder finishes
    with remote_lock(racing, KEY, "apply") as info:
        held = json.loads(s3_bucket.object(f"casereport/{KEY}") or b"{}")
        assert held["id"] == info.id
    assert s3_bucket.keys() == []


def test_of_two_runs_taking_over_a_dead_lock_one_wins(s3_bucket: S3Bucket) -> None:
    here = f"ci@{socket.gethostname()}"
    s3_bucket.put(f"casereport/{KEY}", lock_json(here, dead_pid(), where=this_machine()))

    def the_other_run_takes_it_over() -> None:
        # Between this run's read and its compare-and-swap: its ETag is stale now.
        s3_bucket.put(f"casereport/{KEY}", lock_json("ci@another-host", 1, "theirs"))

    racing = _Racing(s3_bucket, lambda: None)
    original = racing.read

    def read(key: str) -> Stored | None:
        found = original(key)
        if racing.reads == 1:
            the_other_run_takes_it_over()
        return found

    racing.read = read  # type: ignore[method-assign]
    notices: list[str] = []
    with (
        pytest.raises(LockError) as refused,
        remote_lock(racing, KEY, "apply", notice=notices.append),
    ):
        pass
    assert "is locked by ID theirs (apply by ci@another-host, pid 1," in refused.value.message
    assert notices == []
    assert json.loads(s3_bucket.object(f"casereport/{KEY}") or b"{}")["id"] == "theirs"


def test_a_run_whose_lock_was_removed_or_taken_writes_nothing_more(s3_bucket: S3Bucket) -> None:
    bucket = bucket_of(s3_bucket)
    where = f"{s3_bucket.url()}/state.json"
    with remote_lock(bucket, KEY, "apply") as info:
        verify_held(bucket, KEY, info.id)  # still ours: no error
        refusal = (
            f"this run's lock on the state {where} (ID {info.id}) was removed, by "
            "force-unlock or another run; nothing more was written: run again"
        )
        s3_bucket.put(f"casereport/{KEY}", lock_json("ci@another-host", 1, "theirs"))
        with pytest.raises(LockError) as taken:
            verify_held(bucket, KEY, info.id)
        assert taken.value.message == refusal
        s3_bucket.put(f"casereport/{KEY}", b"not json")
        with pytest.raises(LockError) as unreadable:
            verify_held(bucket, KEY, info.id)
        assert unreadable.value.message == refusal
        s3_bucket.clear()
        with pytest.raises(LockError) as removed:
            verify_held(bucket, KEY, info.id)
        assert removed.value.message == refusal
        s3_bucket.put(f"casereport/{KEY}", lock_json("ci@another-host", 1, "theirs"))
    # Another run's lock is not released by this one's end.
    assert json.loads(s3_bucket.object(f"casereport/{KEY}") or b"{}")["id"] == "theirs"


def test_a_lock_object_missing_fields_is_unreadable(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    s3_bucket.put(f"casereport/{KEY}", json.dumps({"id": "abc"}).encode())
    with pytest.raises(LockError) as refused, remote_lock(bucket_of(s3_bucket), KEY, "apply"):
        pass
    assert "by an unreadable lock object" in refused.value.message
    s3_bucket.put(f"casereport/{KEY}", b"[1, 2]")
    with pytest.raises(LockError) as listed, remote_lock(bucket_of(s3_bucket), KEY, "apply"):
        pass
    assert "by an unreadable lock object" in listed.value.message
    s3_bucket.put(f"casereport/{KEY}", b"[" * 100_000)  # deeper than the JSON parser goes
    with pytest.raises(LockError) as nested, remote_lock(bucket_of(s3_bucket), KEY, "apply"):
        pass
    assert "by an unreadable lock object" in nested.value.message


@pytest.mark.parametrize(
    "wrong",
    [
        {"pid": "123"},  # kill() takes no text
        {"pid": 1.5},
        {"pid": 2**70},  # past any pid: kill() would overflow
        {"pid": -1},  # kill(-1) is every process
        {"pid": True},
        {"who": 5},  # no host name to read
        {"id": None},
        {"boot_id": None},
        {"path": None, "version": "0.1.0"},  # a required field missing, optional ones there
    ],
    ids=str,
)
def test_a_lock_object_with_a_field_of_the_wrong_type_is_unreadable(
    s3_bucket: S3Bucket, wrong: dict[str, object]
) -> None:
    # Planted, or another tool's: named as unreadable with the way to remove it, never
    # acted upon (no pid looked for, no takeover) and never a traceback.
    here = f"ci@{socket.gethostname()}"
    planted = json.loads(lock_json(here, dead_pid(), where=this_machine())) | wrong
    planted = {k: v for k, v in planted.items() if not (k == "path" and v is None)}
    data = json.dumps(planted).encode()
    s3_bucket.put(f"casereport/{KEY}", data)
    with pytest.raises(LockError) as refused, remote_lock(bucket_of(s3_bucket), KEY, "apply"):
        pass
    lock_id = "unreadable-" + hashlib.sha256(data).hexdigest()[:12]
    assert "by an unreadable lock object" in refused.value.message
    assert refused.value.message.endswith(f"casereport force-unlock {lock_id}")
    assert s3_bucket.object(f"casereport/{KEY}") == data


def test_where_the_system_does_not_say_the_host_name_is_all_there_is(
    s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not Linux (no /proc): no boot or PID namespace to record or compare, as before they
    # were recorded: a dead pid of this host name is taken over, a live one is not.
    monkeypatch.setattr(lock, "machine", lambda: ("", ""))
    here = f"ci@{socket.gethostname()}"
    s3_bucket.put(f"casereport/{KEY}", lock_json(here, os.getpid(), "live"))
    with pytest.raises(LockError) as refused, remote_lock(bucket_of(s3_bucket), KEY, "apply"):
        pass
    assert "is locked by ID live" in refused.value.message
    s3_bucket.put(f"casereport/{KEY}", lock_json(here, dead_pid(), "dead"))
    notices: list[str] = []
    with remote_lock(bucket_of(s3_bucket), KEY, "apply", notice=notices.append) as info:
        held = json.loads(s3_bucket.object(f"casereport/{KEY}") or b"{}")
        assert held["id"] == info.id
        assert (held["boot_id"], held["pid_namespace"]) == ("", "")
    (notice,) = notices
    assert notice.startswith(f"Taking over the lock ID dead (apply by {here}, pid ")
