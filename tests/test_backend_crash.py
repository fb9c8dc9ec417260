"""An apply on a remote state killed at random moments (issue 14).

As ``test_apply_crash`` but with the state in a bucket of moto's S3 server: a subprocess
apply is killed with SIGKILL at 20 seeded random moments (while starting, taking the lock,
fetching into the journal, rendering, pushing). After each kill the remote state (if any)
and the local mirror still load; a re-run on this machine takes over the dead run's lock
object, finishes from the journal, and converges on the state and site an uninterrupted
run leaves. Every other trial removes the dead run's lock with ``force-unlock`` first; no
lock object is left either way.
"""

from __future__ import annotations

import functools
import json
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from casereport.cli import cli
from casereport.emulator.server import RunningEmulator
from casereport.state.model import State, parse_state
from s3_server import S3Bucket, s3_bucket, s3_server
from test_apply_crash import (
    assert_loadable,
    comparable,
    converge,
    first_difference,
    journal_started,
    start_apply,
    wait_for,
    write_crash_workspace,
)

__all__ = ["s3_bucket", "s3_server"]  # fixtures

Emulator = Callable[..., RunningEmulator]
KILLS = 20


def mirrors(root: Path) -> list[Path]:
    """The local mirror of the trial's remote state, if the run got as far as making it."""
    return sorted((root / ".casereport").glob("remote/*/default/state.json"))


def fetching(root: Path) -> bool:
    """Whether the run's first result reached the journal beside the mirror (the mirror
    itself exists only once a state was uploaded)."""
    journals = (root / ".casereport").glob("remote/*/default/state.json.journal")
    return any(journal_started(path.with_name("state.json")) for path in journals)


def remote_state(bucket: S3Bucket, prefix: str) -> State | None:
    data = bucket.object(f"{prefix}/state.json")
    return parse_state(Path(prefix), data) if data is not None else None


def test_a_remote_apply_killed_at_random_moments_converges(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    emulator: Emulator,
    s3_bucket: S3Bucket,
) -> None:
    slow = emulator(latency_ms=30)
    reference_root = tmp_path / "reference"
    write_crash_workspace(reference_root)
    s3_bucket.settings(reference_root, "reference")
    started = time.monotonic()
    process = start_apply(reference_root, slow)
    _, stderr = process.communicate(timeout=120)
    duration = time.monotonic() - started
    assert process.returncode == 0, stderr.decode()
    pages = {p.name: p.read_bytes() for p in (reference_root / "site").iterdir()}
    reference = remote_state(s3_bucket, "reference")
    assert reference is not None and len(reference.aggregations) == 50

    rng = random.Random(20270116)
    kills = trial = forced = killed_fetching = 0
    # A run may finish before its kill (a loaded machine runs faster or slower than the
    # reference): it is checked all the same, and another trial is made, up to a bound.
    while kills < KILLS and trial < 3 * KILLS:
        trial += 1
        prefix = f"trial-{trial}"
        root = tmp_path / prefix
        write_crash_workspace(root)
        s3_bucket.settings(root, prefix)
        process = start_apply(root, slow)
        if trial % 2 == 0:
            # While fetching: the journal beside the mirror has results in it.
            wait_for(functools.partial(fetching, root), process)
            time.sleep(rng.uniform(0, duration / 4))
        else:
            # Anywhere from the start: interpreter, lock object, sync, fetching.
            time.sleep(rng.uniform(0, duration * 0.7))
        process.kill()
        _, stderr = process.communicate(timeout=30)
        if process.returncode == -signal.SIGKILL:
            kills += 1
            killed_fetching += trial % 2 == 0
        else:
            assert process.returncode == 0, stderr.decode()

        remote_state(s3_bucket, prefix)  # loads (a StateError would fail the test)
        for path in mirrors(root):
            assert_loadable(path)
        monkeypatch.chdir(root)
        lock = s3_bucket.object(f"{prefix}/state.json.lock")
        if lock is not None and trial % 4 < 2:
            unlocked = CliRunner().invoke(cli, ["force-unlock", json.loads(lock)["id"]])
            assert unlocked.exit_code == 0, unlocked.output
            forced += 1
        converge(root, slow)
        assert s3_bucket.object(f"{prefix}/state.json.lock") is None  # no stray lock
        state = remote_state(s3_bucket, prefix)
        assert state is not None and comparable(state) == comparable(reference), f"trial {trial}"
        site = {p.name: p.read_bytes() for p in (root / "site").iterdir()}
        assert sorted(site) == sorted(pages), f"trial {trial}"
        for name, content in site.items():
            assert content == pages[name], f"trial {trial}, {name}: " + first_difference(
                content, pages[name]
            )
    assert kills >= KILLS
    # Kills landed while fetching, and some left a lock that force-unlock removed (the
    # others' locks were taken over by the re-run).
    assert killed_fetching >= 5 and forced >= 1, (killed_fetching, forced)
