"""The apply journal: replay, torn lines, obsolete journals, recovery into the state file."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import casereport
from casereport.errors import StateError
from casereport.state.journal import (
    JOURNAL_VERSION,
    Journal,
    journal_path,
    load_with_journal,
    read_both,
    recover,
)
from casereport.state.model import (
    AggregationState,
    Source,
    State,
    backup_path,
    load_state,
    new_state,
    write_state,
)
from casereport.state.refresh import UnfinishedRefresh

EMULATOR = Source("emulator", "emulator", "2000 synthetic cases (seed 7)")
DATADOG = Source("datadog", "datadoghq.com")
OLD_MTIME_NS = 1_000_000_000 * 1_000_000_000


def entry(address: str, total: float, fetched_at: str = "2026-11-26T19:00:00Z") -> AggregationState:
    return AggregationState(
        address=address,
        report=address.split(".", 1)[0],
        title=address,
        request={"query_filter": "status:open", "groups": ["priority"], "limit": 5},
        fingerprint=f"{total:064.0f}",
        result={"id": "x", "total": total, "groups": [{"group": "P1", "value": [total]}]},
        fetched_at=fetched_at,
    )


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / ".casereport" / "state.json"


@pytest.fixture
def base(state_path: Path) -> State:
    """A state on disk (serial 2) from a Datadog site, with two aggregations."""
    first = write_state(
        state_path,
        replace(new_state(), source=DATADOG, aggregations={"a.one": entry("a.one", 1.0)}),
        None,
    )
    return write_state(
        state_path,
        replace(first, aggregations={**first.aggregations, "a.two": entry("a.two", 2.0)}),
        first,
    )


def write_journal(
    state_path: Path, base: State | None, source: Source, *batches: list[AggregationState]
) -> Path:
    log = Journal.open(state_path, base, source)
    for batch in batches:
        log.append(batch)
    log.close()
    return journal_path(state_path)


def untouched(state_path: Path) -> dict[str, Any]:
    """The state file's bytes and mtime, after pinning the mtime to an old value."""
    if state_path.exists():
        os.utime(state_path, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
        return {"bytes": state_path.read_bytes(), "mtime": state_path.stat().st_mtime_ns}
    return {}


def now(state_path: Path) -> dict[str, Any]:
    if state_path.exists():
        return {"bytes": state_path.read_bytes(), "mtime": state_path.stat().st_mtime_ns}
    return {}


def test_the_header_names_the_state_it_extends(state_path: Path, base: State) -> None:
    path = write_journal(state_path, base, EMULATOR, [entry("a.one", 5.0)])

    lines = path.read_text(encoding="utf-8").splitlines()

    assert json.loads(lines[0]) == {
        "journal": JOURNAL_VERSION,
        "lineage": base.lineage,
        "serial": 2,
        "source": EMULATOR.to_json(),
    }
    assert json.loads(lines[1]) == {"address": "a.one", "entry": entry("a.one", 5.0).to_json()}
    assert len(lines) == 2


def test_entries_are_replayed_on_load_without_writing(state_path: Path, base: State) -> None:
    before = untouched(state_path)
    path = write_journal(
        state_path,
        base,
        DATADOG,
        [entry("a.one", 10.0), entry("b.new", 3.0)],
        [entry("a.one", 11.0)],  # a later line for the same address wins
    )

    state = load_with_journal(state_path)

    assert state is not None
    assert state.aggregations == {
        "a.one": entry("a.one", 11.0),
        "a.two": entry("a.two", 2.0),
        "b.new": entry("b.new", 3.0),
    }
    assert (state.lineage, state.serial, state.source) == (base.lineage, 2, DATADOG)
    assert now(state_path) == before
    assert path.exists()


def test_results_queued_while_a_sync_runs_are_written_with_one_more_sync(
    state_path: Path, base: State, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On a slow disk, results arrive faster than fsync returns: the writer takes all that
    # is queued at once, so an apply of 10,000 results does not wait on 10,000 syncs.
    log = Journal.open(state_path, base, DATADOG)
    synced: list[int] = []
    blocked, release = threading.Event(), threading.Event()
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        synced.append(fd)
        if len(synced) == 1:
            blocked.set()
            release.wait(10)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    log.append([entry("r.first", 1.0)])
    assert blocked.wait(10)
    log.append([entry(f"r.n{n}", float(n)) for n in range(49)])
    release.set()
    log.close()

    assert len(synced) == 2
    replayed = load_with_journal(state_path)
    assert replayed is not None
    assert len(replayed.aggregations) == len(base.aggregations) + 50


def test_read_both_gives_the_state_on_disk_and_as_the_journal_leaves_it(
    state_path: Path, base: State
) -> None:
    # What `plan` reads: it plans from the second, and compares with the first.
    before = untouched(state_path)
    write_journal(state_path, base, DATADOG, [entry("a.one", 10.0), entry("b.new", 3.0)])

    disk, state = read_both(state_path)

    assert disk == base
    assert state == replace(
        base,
        aggregations={
            **base.aggregations,
            "a.one": entry("a.one", 10.0),
            "b.new": entry("b.new", 3.0),
        },
    )
    assert now(state_path) == before
    assert read_both(state_path.with_name("none.json")) == (None, None)


def test_the_journals_source_is_applied(state_path: Path, base: State) -> None:
    write_journal(state_path, base, EMULATOR, [entry("a.one", 10.0)])

    state = load_with_journal(state_path)

    assert state is not None
    assert state.source == EMULATOR
    # The base's results came from another source: they are not relabelled, they go.
    assert state.aggregations == {"a.one": entry("a.one", 10.0)}


def test_a_header_source_without_detail_has_an_empty_detail(state_path: Path, base: State) -> None:
    # `detail` is optional, as in the state file's source.
    path = write_journal(state_path, base, DATADOG, [entry("a.one", 10.0)])
    header, *rest = path.read_text(encoding="utf-8").splitlines(keepends=True)
    raw = json.loads(header)
    del raw["source"]["detail"]
    path.write_text(json.dumps(raw) + "\n" + "".join(rest), encoding="utf-8")

    state = load_with_journal(state_path)

    assert state is not None
    assert state.source == Source("datadog", "datadoghq.com", "")
    assert state.aggregations == {"a.one": entry("a.one", 10.0), "a.two": entry("a.two", 2.0)}


@pytest.mark.parametrize(
    "torn",
    [
        '{"address": "a.three", "entry": {"report": "a", "ti',
        '{"address": "a.three"',
        '{"address": "a.th\u00e9',
        "null",
        '{"address": 3, "entry": {}}',
        # A sound entry under an address that is not a string is no result either.
        json.dumps({"address": 3, "entry": entry("a.three", 3.0).to_json()}),
    ],
)
def test_a_torn_last_line_is_ignored(state_path: Path, base: State, torn: str) -> None:
    path = write_journal(state_path, base, DATADOG, [entry("a.one", 10.0)])
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(torn)

    state = load_with_journal(state_path)

    assert state is not None
    assert state.aggregations == {"a.one": entry("a.one", 10.0), "a.two": entry("a.two", 2.0)}


def test_a_line_torn_inside_a_multibyte_character_is_ignored(state_path: Path, base: State) -> None:
    path = write_journal(state_path, base, DATADOG, [entry("a.one", 10.0)])
    with open(path, "ab") as handle:
        handle.write('{"address": "a.th\u00e9'.encode()[:-1])  # half of the é

    state = load_with_journal(state_path)

    assert state is not None
    assert state.aggregations["a.one"] == entry("a.one", 10.0)
    assert set(state.aggregations) == {"a.one", "a.two"}


# Replays the journal of argv[1]'s state and prints the titles, ASCII-escaped (the C
# locale's stdout takes no other).
REPLAY = """
import json, sys
from pathlib import Path
from casereport.state.journal import load_with_journal
state = load_with_journal(Path(sys.argv[1]))
print(json.dumps({a: e.title for a, e in state.aggregations.items()}, sort_keys=True))
"""


def test_non_ascii_results_replay_intact_whatever_the_locale(state_path: Path, base: State) -> None:
    """The journal is UTF-8 (``Journal`` writes it so): it is read back as UTF-8, not in the
    locale's encoding, so a run under a C/POSIX locale (a bare CI container) recovers
    "Équipe" as written, not as mojibake."""
    team = replace(entry("a.one", 10.0), title="\u00c9quipe")
    write_journal(state_path, base, DATADOG, [team])
    assert load_with_journal(state_path) == replace(
        base, aggregations={**base.aggregations, "a.one": team}
    )
    # The package as this test imports it (under `make mutate`, the mutants' copy), in
    # the same folder, so that the child imports the same code.
    source = str(Path(casereport.__file__).resolve().parent.parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG", "PYTHON"))}
    env |= {"LC_ALL": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0", "PYTHONPATH": source}

    child = subprocess.run(
        [sys.executable, "-c", REPLAY, str(state_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )

    assert child.returncode == 0, child.stderr
    assert json.loads(child.stdout) == {"a.one": "\u00c9quipe", "a.two": "a.two"}


def test_a_malformed_entry_ends_the_replay(state_path: Path, base: State) -> None:
    path = write_journal(state_path, base, DATADOG, [entry("a.one", 10.0)])
    bad = entry("a.three", 3.0).to_json() | {"result": {"total": "3"}}
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"address": "a.three", "entry": bad}) + "\n")
        handle.write(json.dumps({"address": "a.four", "entry": entry("a.four", 4.0).to_json()}))

    state = load_with_journal(state_path)

    assert state is not None
    assert set(state.aggregations) == {"a.one", "a.two"}


def header(base: State, **changes: Any) -> str:
    fields = {
        "journal": JOURNAL_VERSION,
        "lineage": base.lineage,
        "serial": base.serial,
        "source": EMULATOR.to_json(),
    }
    fields.update(changes)
    return json.dumps(fields)


OBSOLETE_HEADERS: dict[str, Callable[[State], str]] = {
    # The apply wrote the state, then died before removing its journal.
    "older serial": lambda base: header(base, serial=base.serial - 1),
    "newer serial": lambda base: header(base, serial=base.serial + 1),
    "other lineage": lambda base: header(base, lineage="another-lineage"),
    "made with no state": lambda base: header(base, lineage=None, serial=0),
    "newer journal format": lambda base: header(base, journal=JOURNAL_VERSION + 1),
    "no source": lambda base: header(base, source=None),
    "source without site": lambda base: header(base, source={"kind": "emulator"}),
    "not an object": lambda base: "[]",
    "not JSON": lambda base: "not json",
    "empty line": lambda base: "",
}


@pytest.mark.parametrize("case", sorted(OBSOLETE_HEADERS))
def test_a_journal_that_does_not_match_the_state_is_ignored(
    state_path: Path, base: State, case: str
) -> None:
    first_line = OBSOLETE_HEADERS[case](base)
    line = json.dumps({"address": "a.one", "entry": entry("a.one", 99.0).to_json()})
    journal_path(state_path).write_text(f"{first_line}\n{line}\n", encoding="utf-8")
    before = untouched(state_path)

    assert load_with_journal(state_path) == base
    assert recover(state_path) == base

    assert now(state_path) == before
    assert not journal_path(state_path).exists()


def test_an_empty_journal_is_ignored(state_path: Path, base: State) -> None:
    journal_path(state_path).write_text("", encoding="utf-8")
    before = untouched(state_path)

    assert load_with_journal(state_path) == base
    assert recover(state_path) == base
    assert now(state_path) == before
    assert not journal_path(state_path).exists()


def test_a_journal_without_entries_changes_nothing(state_path: Path, base: State) -> None:
    write_journal(state_path, base, EMULATOR)
    before = untouched(state_path)

    assert load_with_journal(state_path) == base  # not even the source
    assert recover(state_path) == base
    assert now(state_path) == before
    assert not journal_path(state_path).exists()


def test_recover_folds_the_journal_into_the_state_and_removes_it(
    state_path: Path, base: State
) -> None:
    version_2 = state_path.read_bytes()
    write_journal(state_path, base, EMULATOR, [entry("a.one", 10.0), entry("c.x", 7.0)])
    expected = load_with_journal(state_path)

    recovered = recover(state_path)

    assert recovered is not None and expected is not None
    assert recovered == replace(expected, serial=3)
    assert load_state(state_path) == recovered
    assert recovered.lineage == base.lineage
    assert recovered.source == EMULATOR
    assert backup_path(state_path).read_bytes() == version_2
    assert not journal_path(state_path).exists()
    # A second recover has nothing to do.
    before = untouched(state_path)
    assert recover(state_path) == recovered
    assert now(state_path) == before


def test_a_journal_on_top_of_no_state_creates_one(state_path: Path) -> None:
    write_journal(state_path, None, EMULATOR, [entry("a.one", 1.0), entry("a.two", 2.0)])
    assert load_state(state_path) is None
    replayed = load_with_journal(state_path)
    assert replayed is not None
    assert not state_path.exists()  # loading is read-only

    recovered = recover(state_path)

    assert recovered is not None
    assert recovered.serial == 1
    assert recovered.source == EMULATOR
    assert recovered.aggregations == {"a.one": entry("a.one", 1.0), "a.two": entry("a.two", 2.0)}
    assert load_state(state_path) == recovered
    assert not backup_path(state_path).exists()
    assert not journal_path(state_path).exists()


def test_a_journal_for_a_state_that_is_gone_is_ignored(state_path: Path, base: State) -> None:
    write_journal(state_path, base, EMULATOR, [entry("a.one", 10.0)])
    state_path.unlink()

    assert load_with_journal(state_path) is None
    assert recover(state_path) is None
    assert not state_path.exists()
    assert not journal_path(state_path).exists()


def test_no_journal_means_the_state_as_is(state_path: Path, base: State) -> None:
    assert load_with_journal(state_path) == base
    assert recover(state_path) == base
    assert load_with_journal(state_path.with_name("none.json")) is None


def test_a_new_journal_replaces_an_old_one(state_path: Path, base: State) -> None:
    write_journal(state_path, base, DATADOG, [entry("a.one", 10.0)])
    write_journal(state_path, base, DATADOG, [entry("a.two", 20.0)])

    state = load_with_journal(state_path)

    assert state is not None
    assert state.aggregations == {"a.one": entry("a.one", 1.0), "a.two": entry("a.two", 20.0)}


def test_a_failing_disk_does_not_stop_the_apply(
    state_path: Path, base: State, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = Journal.open(state_path, base, EMULATOR)

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    log.append([entry("a.one", 10.0)])
    log.close()  # no exception: the journal is only a checkpoint

    assert isinstance(log.error, OSError)
    assert log.error.errno == 28


def test_a_journal_that_cannot_be_created_is_a_state_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")

    with pytest.raises(StateError) as caught:
        Journal.open(blocker / "state.json", None, EMULATOR)

    assert caught.value.message.startswith(
        f"{blocker}/state.json.journal: cannot write the apply journal: "
    )


def test_a_journal_whose_first_line_cannot_be_written_is_one_line_not_the_closes(
    tmp_path: Path,
) -> None:
    # Written here, the first line is there at once (and `make mutate` sees this test
    # reach the journal: what a forked child runs is not recorded).
    written = Journal(tmp_path / "written.journal", {"lineage": "x" * 100})
    written.close()
    assert json.loads((tmp_path / "written.journal").read_text(encoding="utf-8")) == {
        "lineage": "x" * 100
    }
    # As on a full disk, in a child with a file size limit its first line passes: writing
    # the line fails, and so does the close that flushes it again; the error stays the
    # first one, in one line.
    path = tmp_path / "state.json.journal"
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what Journal raised, then leave at once
        try:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG rather than a signal
            resource.setrlimit(resource.RLIMIT_FSIZE, (16, resource.RLIM_INFINITY))
            try:
                Journal(path, {"lineage": "x" * 100})
                said = "no error"
            except StateError as exc:
                said = f"StateError: {exc.message}"
            except BaseException as exc:  # whatever it is: what the test is about
                said = f"{type(exc).__name__}: {exc}"
            os.write(write_end, said.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        said = pipe.read().decode()
    os.waitpid(pid, 0)
    assert said == f"StateError: {path}: cannot write the apply journal: File too large"


# -- an apply --refresh interrupted ------------------------------------------------------

REFRESH = UnfinishedRefresh("2026-11-27T08:00:00Z", ("a",))


def test_a_refresh_killed_before_its_first_result_is_still_unfinished(
    state_path: Path, base: State
) -> None:
    log = Journal.open(state_path, base, DATADOG, REFRESH)
    log.close()
    header = json.loads(journal_path(state_path).read_text().splitlines()[0])
    assert header["refresh"] == {"started_at": "2026-11-27T08:00:00Z", "targets": ["a"]}

    loaded = load_with_journal(state_path)
    assert loaded is not None and loaded.unfinished_refresh == REFRESH
    assert loaded.aggregations == base.aggregations and loaded.serial == base.serial

    recovered = recover(state_path)
    assert recovered is not None and recovered.unfinished_refresh == REFRESH
    on_disk = load_state(state_path)
    assert on_disk is not None and on_disk.unfinished_refresh == REFRESH


def test_a_refresh_already_in_the_state_killed_again_before_a_result_rewrites_nothing(
    state_path: Path, base: State
) -> None:
    # The second interrupted try of the same refresh: the state already says it is
    # unfinished, so folding the empty journal in must not write (nor rotate the backup).
    pending = write_state(state_path, replace(base, unfinished_refresh=REFRESH), base)
    Journal.open(state_path, pending, DATADOG, REFRESH).close()
    backup = backup_path(state_path).read_bytes()
    before = untouched(state_path)

    assert recover(state_path) == pending
    assert now(state_path) == before
    assert backup_path(state_path).read_bytes() == backup
    assert not journal_path(state_path).exists()


def test_a_refresh_journal_on_top_of_no_state_killed_before_a_result_is_ignored(
    state_path: Path,
) -> None:
    Journal.open(state_path, None, DATADOG, REFRESH).close()

    assert read_both(state_path) == (None, None)
    assert recover(state_path) is None
    assert not state_path.exists()
    assert not journal_path(state_path).exists()


def test_a_refresh_killed_half_way_is_recorded_with_what_arrived(
    state_path: Path, base: State
) -> None:
    log = Journal.open(state_path, base, DATADOG, REFRESH)
    log.append([entry("a.one", 5.0, "2026-11-27T08:00:03Z")])
    log.close()

    recovered = recover(state_path)

    assert recovered is not None and recovered.unfinished_refresh == REFRESH
    assert recovered.aggregations["a.one"].fetched_at == "2026-11-27T08:00:03Z"
    assert REFRESH.left(recovered.aggregations) == REFRESH  # a.two is still to fetch


def test_a_plain_apply_journal_keeps_the_states_unfinished_refresh(
    state_path: Path, base: State
) -> None:
    pending = write_state(state_path, replace(base, unfinished_refresh=REFRESH), base)
    write_journal(state_path, pending, DATADOG, [entry("a.one", 5.0, "2026-11-27T09:00:00Z")])
    loaded = load_with_journal(state_path)
    assert loaded is not None and loaded.unfinished_refresh == REFRESH


@pytest.mark.parametrize(
    "refresh",
    [None, "yes", {"started_at": "soon", "targets": []}, {"started_at": "2026-11-27T08:00:00Z"}],
)
def test_a_journal_with_a_malformed_refresh_is_ignored(
    state_path: Path, base: State, refresh: Any
) -> None:
    write_journal(state_path, base, DATADOG, [entry("a.one", 5.0)])
    lines = journal_path(state_path).read_text().splitlines()
    head = json.loads(lines[0])
    head["refresh"] = refresh
    journal_path(state_path).write_text("\n".join([json.dumps(head), *lines[1:]]) + "\n")
    assert load_with_journal(state_path) == base


def test_a_journal_that_cannot_be_read_is_one_line_naming_it(state_path: Path, base: State) -> None:
    journal_path(state_path).mkdir()

    with pytest.raises(StateError) as caught:
        load_with_journal(state_path)
    assert caught.value.message == (
        f"{journal_path(state_path)}: cannot read the apply journal: Is a directory; "
        "move it away to ignore what the interrupted apply fetched"
    )
