"""Apply killed at random moments: state stays loadable, pages stay whole, re-runs converge.

``casereport apply`` runs as a subprocess against an emulator with latency, over a
workspace of 50 aggregations (about a second per apply), and is killed with SIGKILL at
seeded random moments spread over its run: while starting, fetching (journal growing),
rendering and writing state. After each kill the state must load and every page present
must be complete; a re-run (apply until ``plan --detailed-exitcode`` is 0) must then leave
a site byte-identical to an uninterrupted run's, with the clock pinned in both.
"""

from __future__ import annotations

import functools
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from apply_workspace import EPOCH, Workspace, api_calls, api_env, reset_stats
from casereport.cli import cli
from casereport.emulator.server import RunningEmulator
from casereport.state import journal
from casereport.state.model import State, load_state

Emulator = Callable[..., RunningEmulator]

REPORTS = 5
SERVICES = ("case-api", "billing", "checkout", "auth", "search")
PARALLELISM = "4"
KILLS = 30


def write_crash_workspace(root: Path) -> None:
    """5 reports x 10 aggregations, every request distinct."""
    reports = root / "reports"
    reports.mkdir(parents=True)
    for number in range(REPORTS):
        (reports / f"crash-{number}.yaml").write_text(
            f"title: Crash report {number}\n"
            "refresh: 6h\n"
            "aggregations:\n"
            "  by_priority:\n"
            f"    for_each: [{', '.join(SERVICES)}]\n"
            "    query_filter: service:${each.value} -status:closed\n"
            "    group_by: [priority]\n"
            f"    limit: {number + 2}\n"
            "  by_status:\n"
            f"    for_each: [{', '.join(SERVICES)}]\n"
            "    query_filter: service:${each.value}\n"
            "    group_by: [status, team]\n"
            f"    limit: {number + 10}\n",
            encoding="utf-8",
        )


def start_apply(
    root: Path, emulator: RunningEmulator, epoch: int = EPOCH, *args: str
) -> subprocess.Popen[bytes]:
    env = {**os.environ, **api_env(emulator, epoch)}
    for name in ("DD_SITE", "DD_BEARER_TOKEN", "CASEREPORT_DEBUG"):
        env.pop(name, None)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "casereport",
            "apply",
            "--auto-approve",
            "--parallelism",
            PARALLELISM,
            *args,
        ],
        cwd=root,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def run_cli(root: Path, emulator: RunningEmulator, *args: str, epoch: int = EPOCH) -> int:
    """A command in-process (the test is chdir'ed into ``root``); its exit code."""
    assert Path.cwd() == root
    result = CliRunner().invoke(cli, list(args), env=dict(api_env(emulator, epoch)))
    assert result.exit_code in (0, 2), result.output
    return result.exit_code


def converge(root: Path, emulator: RunningEmulator) -> int:
    """Apply until the plan says there is nothing left; return the applies it took."""
    for attempt in range(1, 4):
        run_cli(root, emulator, "apply", "--auto-approve", "--parallelism", PARALLELISM)
        if run_cli(root, emulator, "plan", "--detailed-exitcode") == 0:
            return attempt
    raise AssertionError("apply did not converge in 3 runs")


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in ("html", "body", "main"):
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("html", "body", "main"):
            assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open}"
            self.open.pop()


def assert_site_whole(site: Path, reference: dict[str, bytes]) -> None:
    """Every page present is complete: one of the pages an uninterrupted run writes."""
    if not site.exists():
        return
    for path in site.iterdir():
        if path.name.startswith(".") and path.name.endswith(".tmp"):
            continue  # an atomic write cut short; the next run removes it
        content = path.read_bytes()
        if path.suffix == ".html":
            text = content.decode("utf-8")
            assert text.rstrip().endswith("</html>"), f"{path.name} is cut short"
            parser = _Html()
            parser.feed(text)
            parser.close()
            assert parser.open == [], f"{path.name} leaves {parser.open} open"
        assert content == reference[path.name], (
            f"{path.name}: {first_difference(content, reference[path.name])}"
        )


def first_difference(got: bytes, want: bytes) -> str:
    at = next((i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b), None)
    if at is None:
        return f"{len(got)} bytes where an uninterrupted run writes {len(want)}"
    return f"at byte {at}: {got[at - 80 : at + 40]!r} where expected {want[at - 80 : at + 40]!r}"


def assert_loadable(state_path: Path) -> State | None:
    """Both readers load what the killed run left (StateError would fail the test)."""
    load_state(state_path)
    return journal.load_with_journal(state_path)


def comparable(state: State) -> dict[str, Any]:
    """State content but what differs between equal runs: result IDs, hence data hashes."""
    content = state.content()
    for entry in content["aggregations"].values():
        entry["result"] = {k: v for k, v in entry["result"].items() if k != "id"}
    for report in content["reports"].values():
        del report["data_hash"]
    return content


def leftovers(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root))
        for folder in (root / "site", root / ".casereport")
        if folder.is_dir()
        for p in folder.glob(".*.tmp")
    )


def wait_for(predicate: Callable[[], bool], process: subprocess.Popen[bytes]) -> bool:
    """Poll until ``predicate`` holds (True) or the process ends (False); bounded."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if predicate():
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.001)
    raise AssertionError("the apply neither reached the awaited moment nor ended")


def journal_started(state_path: Path) -> bool:
    """Whether the first result reached the journal (the header is its first line)."""
    return journal_lines(state_path) > 1


def journal_lines(state_path: Path) -> int:
    try:
        return journal.journal_path(state_path).read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


@pytest.fixture
def slow_emulator(emulator: Emulator) -> RunningEmulator:
    return emulator(latency_ms=30)


@pytest.fixture
def reference(
    tmp_path: Path, slow_emulator: RunningEmulator
) -> tuple[dict[str, bytes], State, float]:
    """An uninterrupted apply: its site, its state and how long it took."""
    root = tmp_path / "reference"
    write_crash_workspace(root)
    started = time.monotonic()
    process = start_apply(root, slow_emulator)
    _, stderr = process.communicate(timeout=120)
    duration = time.monotonic() - started
    assert process.returncode == 0, stderr.decode()
    site = {p.name: p.read_bytes() for p in (root / "site").iterdir()}
    assert len(site) == 4 * REPORTS + 2  # two pages and two data files each, the index
    state = load_state(root / ".casereport" / "state.json")
    assert state is not None and len(state.aggregations) == REPORTS * 10
    return site, state, duration


def test_apply_killed_at_random_moments_converges_to_an_identical_site(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    slow_emulator: RunningEmulator,
    reference: tuple[dict[str, bytes], State, float],
) -> None:
    pages, reference_state, duration = reference
    template = tmp_path / "template"
    write_crash_workspace(template)
    rng = random.Random(20270115)
    moments: dict[str, int] = {"any": 0, "fetching": 0, "rendering": 0, "finished": 0}
    kills = attempts = trial = 0
    while kills < KILLS and attempts < 2 * KILLS:
        trial += 1
        root = tmp_path / f"trial-{trial}"
        shutil.copytree(template, root)
        state_path = root / ".casereport" / "state.json"
        # Some trials kill twice: the second run dies while finishing the first's work.
        for _ in range(1 if rng.random() < 0.7 else 2):
            process = start_apply(root, slow_emulator)
            kind = ("any", "fetching", "rendering")[attempts % 3]
            attempts += 1
            if kind == "any":
                time.sleep(rng.uniform(0, duration))
                reached = process.poll() is None
            elif kind == "fetching":
                reached = wait_for(functools.partial(journal_started, state_path), process)
                time.sleep(rng.uniform(0, duration / 3))
            else:
                reached = wait_for((root / "site").exists, process)
                time.sleep(rng.uniform(0, 0.03))
            process.kill()
            _, stderr = process.communicate(timeout=30)
            if process.returncode != -signal.SIGKILL:
                assert process.returncode == 0, stderr.decode()
                moments["finished"] += 1
            else:
                kills += 1
                moments[kind] += reached

            assert_loadable(state_path)
            assert_site_whole(root / "site", pages)

        monkeypatch.chdir(root)
        converge(root, slow_emulator)
        assert leftovers(root) == []
        assert not journal.journal_path(state_path).exists()
        site = {p.name: p.read_bytes() for p in (root / "site").iterdir()}
        assert sorted(site) == sorted(pages), f"trial {trial}"
        for name, content in site.items():
            assert content == pages[name], f"trial {trial}, {name}: " + first_difference(
                content, pages[name]
            )
        state = load_state(state_path)
        assert state is not None and comparable(state) == comparable(reference_state)
        shutil.rmtree(root)

    assert kills >= 30, moments
    # The kills landed in every phase, not only before the apply got going.
    assert moments["fetching"] >= 5 and moments["rendering"] >= 3, moments


def calls_once_quiet(emulator: RunningEmulator, quiet: float = 0.3, limit: float = 10.0) -> int:
    """The emulator's API call count once it stopped changing for ``quiet`` seconds."""
    deadline = time.monotonic() + limit
    last = api_calls(emulator)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = api_calls(emulator)
        if now == last:
            return now
        last = now
    raise AssertionError(f"the emulator kept answering requests for {limit} s")


def test_ctrl_c_keeps_what_arrived_and_the_next_apply_does_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slow_emulator: RunningEmulator
) -> None:
    root = tmp_path / "ws"
    write_crash_workspace(root)
    state_path = root / ".casereport" / "state.json"
    reset_stats(slow_emulator)
    process = start_apply(root, slow_emulator)
    assert wait_for(lambda: journal_lines(state_path) > 5, process)

    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)

    assert process.returncode == 1
    assert stderr.decode().splitlines()[-1] == (
        "Error: interrupted: results that arrived are kept in state; run apply again to finish"
    )
    assert not journal.journal_path(state_path).exists()
    state = load_state(state_path)
    assert state is not None
    assert 5 <= len(state.aggregations) < REPORTS * 10
    assert state.source is not None and state.source.site == slow_emulator.url
    assert not (root / "site").exists()  # nothing rendered on the way out
    kept = len(state.aggregations)
    # Requests in flight when the apply stopped are still answered (and counted) by the
    # emulator after its latency: let them land before counting the next apply alone.
    sent = calls_once_quiet(slow_emulator)
    assert sent >= kept

    reset_stats(slow_emulator)
    monkeypatch.chdir(root)
    assert converge(root, slow_emulator) == 1
    assert api_calls(slow_emulator) == REPORTS * 10 - kept


def test_a_source_change_killed_half_way_never_mixes_sources(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    emulator: Emulator,
    slow_emulator: RunningEmulator,
) -> None:
    root = tmp_path / "ws"
    write_crash_workspace(root)
    state_path = root / ".casereport" / "state.json"
    monkeypatch.chdir(root)
    first = emulator()
    run_cli(root, first, "apply", "--auto-approve")

    # An hour later, against another API URL; killed once some results arrived.
    later = EPOCH + 3600
    process = start_apply(root, slow_emulator, later, "--allow-source-change")
    assert wait_for(lambda: journal_lines(state_path) > 5, process)
    process.kill()
    process.communicate(timeout=30)

    state = assert_loadable(state_path)
    assert state is not None and state.source is not None
    assert state.source.site == slow_emulator.url
    # Only results of the new source: none of the old source's is taken for a new one.
    assert 5 <= len(state.aggregations) < REPORTS * 10
    assert {a.fetched_at for a in state.aggregations.values()} == {"2027-01-15T09:00:00Z"}
    # The old source's results are kept aside, whole, for a switch back.
    assert list(state.previous_sources) == [f"datadog:{first.url.rstrip('/')}"]
    assert len(next(iter(state.previous_sources.values())).aggregations) == REPORTS * 10
    ws = Workspace(root, slow_emulator, examples=False)
    ws.epoch = later
    code, plan = ws.plan_json()
    assert code == 2
    creates = [c for c in plan["aggregations"] if c["actions"] == ["create"]]
    assert len(creates) == REPORTS * 10 - len(state.aggregations)
    assert all(c["actions"] in (["create"], ["no-op"]) for c in plan["aggregations"])


def test_an_apply_refresh_killed_half_way_is_finished_by_the_next_plain_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slow_emulator: RunningEmulator
) -> None:
    """Results are fresh under ``refresh: 6h`` all along: only the record of the unfinished
    ``--refresh`` makes the next plain apply fetch the ones it did not reach."""
    root = tmp_path / "ws"
    write_crash_workspace(root)
    state_path = root / ".casereport" / "state.json"
    monkeypatch.chdir(root)
    run_cli(root, slow_emulator, "apply", "--auto-approve", "--parallelism", PARALLELISM)

    # A minute later, apply --refresh; killed once some results arrived.
    later = EPOCH + 60
    process = start_apply(root, slow_emulator, later, "--refresh")
    assert wait_for(lambda: journal_lines(state_path) > 5, process)
    process.kill()
    process.communicate(timeout=30)

    state = assert_loadable(state_path)
    assert state is not None and state.unfinished_refresh is not None
    assert state.unfinished_refresh.to_json() == {
        "started_at": "2027-01-15T08:01:00Z",
        "targets": [],
    }
    stamps = [a.fetched_at for a in state.aggregations.values()]
    refreshed = stamps.count("2027-01-15T08:01:00Z")
    assert 5 <= refreshed < REPORTS * 10
    assert stamps.count("2027-01-15T08:00:00Z") == REPORTS * 10 - refreshed  # a mix

    # A plain plan, later still: the rest is stale, though younger than ``refresh: 6h``.
    ws = Workspace(root, slow_emulator, examples=False)
    ws.epoch = later + 60
    code, plan = ws.plan_json()
    assert code == 2
    stale = [c for c in plan["aggregations"] if c["actions"] == ["refresh"]]
    assert len(stale) == REPORTS * 10 - refreshed
    assert {c["reason"] for c in stale} == {"--refresh of 2027-01-15T08:01:00Z not finished"}

    calls_once_quiet(slow_emulator)  # requests in flight at the kill land first
    reset_stats(slow_emulator)
    run_cli(root, slow_emulator, "apply", "--auto-approve", epoch=later + 60)
    assert api_calls(slow_emulator) == REPORTS * 10 - refreshed
    after = load_state(state_path)
    assert after is not None and after.unfinished_refresh is None
    assert "unfinished_refresh" not in state_path.read_text()
    assert all(a.fetched_at >= "2027-01-15T08:01:00Z" for a in after.aggregations.values())
    assert run_cli(root, slow_emulator, "plan", "--detailed-exitcode", epoch=later + 60) == 0


def test_an_apply_refresh_stopped_by_ctrl_c_records_what_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulator: Emulator
) -> None:
    # Slower still: the ten requests of crash-1 take three rounds of 100 ms at parallelism
    # 4, so Ctrl-C after the first round leaves some for the next apply.
    slow_emulator = emulator(latency_ms=100)
    root = tmp_path / "ws"
    write_crash_workspace(root)
    state_path = root / ".casereport" / "state.json"
    monkeypatch.chdir(root)
    run_cli(root, slow_emulator, "apply", "--auto-approve", "--parallelism", PARALLELISM)

    process = start_apply(root, slow_emulator, EPOCH + 60, "--refresh", "--target", "crash-1")
    assert wait_for(lambda: journal_lines(state_path) > 2, process)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=30)

    assert process.returncode == 1
    assert not journal.journal_path(state_path).exists()  # the state itself records it
    state = load_state(state_path)
    assert state is not None and state.unfinished_refresh is not None
    assert state.unfinished_refresh.to_json() == {
        "started_at": "2027-01-15T08:01:00Z",
        "targets": ["crash-1"],
    }
    left = [
        a.address
        for a in state.aggregations.values()
        if a.report == "crash-1" and a.fetched_at < "2027-01-15T08:01:00Z"
    ]
    assert 0 < len(left) < 10

    calls_once_quiet(slow_emulator)  # requests in flight at Ctrl-C land first
    reset_stats(slow_emulator)
    run_cli(root, slow_emulator, "apply", "--auto-approve", epoch=EPOCH + 120)
    assert api_calls(slow_emulator) == len(left)  # only the rest of crash-1
    after = load_state(state_path)
    assert after is not None and after.unfinished_refresh is None
