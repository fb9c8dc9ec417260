"""Rendering a site in several processes writes exactly what rendering it in one writes.

``render_reports`` shares a large site out among a forked process pool; every process
renders its reports and writes their pages. The tests here force the process count, so
they run on any machine and on small sites; those that need real signals run
``casereport render`` in a process of its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import jinja2
import pytest

from casereport import fsutil
from casereport.definitions.expand import ReportSpec
from casereport.errors import RenderError
from casereport.render import workers
from casereport.render.pages import Pages, render_index, render_report
from casereport.render.templates import environment
from casereport.render.workers import (
    PARALLEL_MIN_REPORTS,
    Written,
    process_count,
    render_reports,
    render_site_pages,
)
from casereport.render.write import content_hash
from casereport.state.lock import lock_path, state_lock
from test_render_golden import FIXTURES, fixture_reports, fixture_state

pytestmark = pytest.mark.skipif(
    sys.platform != "linux", reason="casereport forks render processes on Linux only"
)

Rendered = dict[str, Written | RenderError]


@pytest.fixture(autouse=True)
def no_child_left() -> Iterator[None]:
    """Every child is reaped, whatever the test did: none is left to become a zombie."""
    yield
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


def _site(tmp_path: Path) -> tuple[list[ReportSpec], jinja2.Environment]:
    (tmp_path / "typo.md.j2").write_text("{{ report.titel }}\n")
    reports = list(fixture_reports())
    # One report whose template fails at render time: its error must come back too.
    broken = dataclasses.replace(reports[0], name="broken", formats=("markdown",), template="typo")
    return [*reports, broken], environment(tmp_path)


def _serial(
    reports: list[ReportSpec], env: jinja2.Environment
) -> tuple[dict[str, object], dict[str, bytes]]:
    """What each report renders to, one at a time here: its pages' hashes (or its error
    message), and the site files."""
    state = fixture_state()
    expected: dict[str, object] = {}
    files: dict[str, bytes] = {}
    for report in reports:
        try:
            pages = render_report(report, state.aggregations, state.source, env)
        except RenderError as exc:
            expected[report.name] = exc.message
            continue
        expected[report.name] = {name: content_hash(page) for name, page in pages.items()}
        for name, page in pages.items():
            files[name] = page.encode() if isinstance(page, str) else page
    return expected, files


def _comparable(rendered: Rendered) -> dict[str, object]:
    return {
        name: value.message if isinstance(value, RenderError) else value
        for name, value in rendered.items()
    }


def _files(site: Path) -> dict[str, bytes]:
    """Every file in the site, temporary ones included: a leftover fails the comparison."""
    return {path.name: path.read_bytes() for path in sorted(site.iterdir())}


def _leftovers(site: Path) -> list[str]:
    return sorted(path.name for path in site.glob(".*.tmp"))


Hook = Callable[[ReportSpec], None]


def _render_with_hooks(
    monkeypatch: pytest.MonkeyPatch,
    reports: list[ReportSpec],
    env: jinja2.Environment,
    site: Path,
    processes: int,
    *,
    in_child: Hook | None = None,
    in_parent: Hook | None = None,
) -> Rendered:
    """``render_reports`` with a hook run before each report, in a worker or in this process."""
    state = fixture_state()
    parent = os.getpid()
    real = render_report

    def hooked(*args: Any, **kwargs: Any) -> Pages:
        hook = in_parent if os.getpid() == parent else in_child
        if hook is not None:
            hook(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(workers, "render_report", hooked)
    try:
        return render_reports(
            reports, state.aggregations, state.source, env, site, {}, processes=processes
        )
    finally:
        monkeypatch.undo()


def _note_and_wait_for(notes: Path, processes: int) -> Hook:
    """A hook noting its process, then waiting until ``processes`` processes are rendering.

    Which worker takes which share is the pool's business: on a site this small, a worker
    done with its share could take the next before another worker has started. Holding
    each one at its first report until all are busy gives every process one share.
    """

    def note(report: ReportSpec) -> None:
        with notes.open("a") as note:
            note.write(f"{os.getpid()}\n")
        deadline = time.monotonic() + 30
        while len(set(notes.read_text().split())) < processes and time.monotonic() < deadline:
            time.sleep(0.01)

    return note


@pytest.mark.parametrize("processes", [2, 3])
def test_workers_write_the_same_site_and_hashes_in_the_same_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, processes: int
) -> None:
    reports, env = _site(tmp_path)
    renderers = tmp_path / "renderers"
    note = _note_and_wait_for(renderers, processes)

    rendered = _render_with_hooks(
        monkeypatch, reports, env, tmp_path / "site", processes, in_child=note, in_parent=note
    )
    pids = renderers.read_text().split()
    assert len(set(pids)) == processes  # the workers did render,
    assert len(pids) == len(reports)  # and what they rendered was used, not redone here
    assert list(rendered) == [r.name for r in reports]
    expected, files = _serial(reports, env)
    assert _comparable(rendered) == expected
    assert _files(tmp_path / "site") == files
    broken = rendered["broken"]
    assert isinstance(broken, RenderError) and "titel" in broken.message


@pytest.mark.parametrize("dies", [False, True])
def test_the_index_is_rendered_by_a_worker_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dies: bool
) -> None:
    """The index renders alongside the reports, in a worker; if that worker dies, here."""
    reports, env = _site(tmp_path)
    state = fixture_state()
    parent = os.getpid()
    renderers = tmp_path / "index-renderers"
    real = render_index

    def noted(*args: Any, **kwargs: Any) -> dict[str, str]:
        with renderers.open("a") as note:
            note.write(f"{os.getpid()}\n")
        if dies and os.getpid() != parent:
            os._exit(3)
        return real(*args, **kwargs)

    monkeypatch.setattr(workers, "render_index", noted)
    site = render_site_pages(
        reports,
        state.aggregations,
        state.source,
        env,
        tmp_path / "site",
        {},
        index=reports,
        processes=2,
    )
    monkeypatch.undo()
    pids = [int(pid) for pid in renderers.read_text().split()]
    assert pids[0] != parent  # a worker rendered it first,
    assert pids[1:] == ([parent] if dies else [])  # and only if it died, here again
    assert site.index == render_index(reports, state.aggregations, state.source, env)
    assert _comparable(site.reports) == _serial(reports, env)[0]
    assert not (tmp_path / "site" / "index.html").exists()  # rendered, not written


def test_no_index_is_rendered_unless_asked_for(tmp_path: Path) -> None:
    reports, env = _site(tmp_path)
    state = fixture_state()
    site = render_site_pages(
        reports, state.aggregations, state.source, env, tmp_path / "site", {}, processes=2
    )
    assert site.index is None
    assert _comparable(site.reports) == _serial(reports, env)[0]


def test_only_pages_that_changed_are_written_again(tmp_path: Path) -> None:
    """A page equal to what state records and to its file is left alone, in every process."""
    reports, env = _site(tmp_path)
    state = fixture_state()
    site = tmp_path / "site"
    first = render_reports(reports, state.aggregations, state.source, env, site, {}, processes=3)
    recorded = {name: value for name, value in first.items() if isinstance(value, dict)}
    edited, missing = site / "service-health.md", site / "support-backlog.html"
    edited.write_text("edited by hand\n")
    missing.unlink()
    before = {path.name: path.stat().st_ino for path in site.iterdir()}

    again = render_reports(
        reports, state.aggregations, state.source, env, site, recorded, processes=3
    )

    assert _comparable(again) == _comparable(first)
    assert _files(site) == _serial(reports, env)[1]
    rewritten = {
        path.name for path in site.iterdir() if before.get(path.name) != path.stat().st_ino
    }
    assert rewritten == {edited.name, missing.name}


def test_workers_do_not_hold_the_state_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker keeps no descriptor of the lock: were this process killed, the next run
    would find the lock free at once, not once the workers are done."""
    reports, env = _site(tmp_path)
    seen = tmp_path / "seen"
    state_path = tmp_path / "state.json"
    lock_file = str(lock_path(state_path))

    def look_for_the_lock(report: ReportSpec) -> None:
        opened = []
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):  # the listing's own descriptor, closed by now
                opened.append(os.readlink(f"/proc/self/fd/{fd}"))
        held = "held" if lock_file in opened else "free"
        with seen.open("a") as note:
            note.write(f"{held}\n")

    with state_lock(state_path, "render"):
        look_for_the_lock(reports[0])
        assert seen.read_text() == "held\n"  # the check sees a lock that is there
        seen.unlink()
        _render_with_hooks(
            monkeypatch, reports, env, tmp_path / "site", 2, in_child=look_for_the_lock
        )
    assert seen.read_text().split() == ["free"] * len(reports[1::2])


@pytest.mark.parametrize("how", ["exit at its first report", "SIGKILL as it syncs its pages"])
def test_a_dead_workers_share_is_rendered_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    reports, env = _site(tmp_path)
    parent = os.getpid()
    real_sync = fsutil.sync_files

    def exit_now(report: ReportSpec) -> None:
        os._exit(3)  # a worker dying in the middle of its share

    def sync_files(folder: Path, names: Iterable[str]) -> None:
        if os.getpid() != parent:  # its pages written, none under its name yet
            os.kill(os.getpid(), signal.SIGKILL)
        real_sync(folder, names)

    if how.startswith("SIGKILL"):
        monkeypatch.setattr(fsutil, "sync_files", sync_files)
    site = tmp_path / "site"
    hook = exit_now if how.startswith("exit") else None
    rendered = _render_with_hooks(monkeypatch, reports, env, site, 2, in_child=hook)
    expected, files = _serial(reports, env)
    assert _comparable(rendered) == expected
    assert _files(site) == files  # no temporary file of the dead worker left


def test_ctrl_c_as_a_worker_is_forked_is_left_to_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C landing in a worker before it is ready is not acted on there: it would
    unwind this process's stack in the worker (and tests, lock and all with it)."""
    reports, env = _site(tmp_path)
    real_fork = os.fork

    def fork_and_interrupt_the_child() -> int:
        pid = real_fork()
        if pid == 0:
            os.kill(os.getpid(), signal.SIGINT)
        return pid

    monkeypatch.setattr(os, "fork", fork_and_interrupt_the_child)
    renderers = tmp_path / "renderers"
    note = _note_and_wait_for(renderers, 2)
    rendered = _render_with_hooks(
        monkeypatch, reports, env, tmp_path / "site", 2, in_child=note, in_parent=note
    )
    assert len(set(renderers.read_text().split())) == 2  # the worker rendered its share
    assert _comparable(rendered) == _serial(reports, env)[0]


def test_when_no_process_can_be_forked_everything_is_rendered_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reports, env = _site(tmp_path)

    def fork() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", fork)
    state = fixture_state()
    site = tmp_path / "site"
    rendered = render_reports(reports, state.aggregations, state.source, env, site, {}, processes=2)
    monkeypatch.undo()
    expected, files = _serial(reports, env)
    assert _comparable(rendered) == expected
    assert _files(site) == files


def test_an_unexpected_error_in_a_worker_is_raised_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in a worker's share is raised here (with its traceback under --debug), as it
    would be without workers."""
    reports, env = _site(tmp_path)
    in_child_share = reports[1].name  # shares: [0::2] here, [1::2] in the worker

    def bug(report: ReportSpec) -> None:
        if report.name == in_child_share:
            raise ZeroDivisionError(f"a bug in rendering {report.name}")

    with pytest.raises(ZeroDivisionError, match=f"a bug in rendering {in_child_share}"):
        _render_with_hooks(monkeypatch, reports, env, tmp_path / "site", 2, in_child=bug)


def test_an_interrupted_render_ends_its_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C here while the workers are still busy: they are killed, not waited for."""
    reports, env = _site(tmp_path)
    busy = tmp_path / "busy"
    site = tmp_path / "site"

    def take_long(report: ReportSpec) -> None:
        with busy.open("a") as note:
            note.write(f"{os.getpid()}\n")
        time.sleep(20)
        with busy.open("a") as note:
            note.write("finished\n")  # only if this worker was left to run

    def interrupt(report: ReportSpec) -> None:
        while len(set(busy.read_text().split()) if busy.exists() else ()) < 2:
            time.sleep(0.01)  # until both workers are busy
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _render_with_hooks(
            monkeypatch, reports, env, site, 3, in_child=take_long, in_parent=interrupt
        )
    notes = busy.read_text().split()
    assert "finished" not in notes
    for pid in {int(note) for note in notes}:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # gone, and (no_child_left) reaped


def test_only_large_sites_use_more_than_one_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workers, "CGROUP_CPU_MAX", tmp_path / "absent")
    cores = len(os.sched_getaffinity(0))
    assert process_count(0) == 1
    assert process_count(PARALLEL_MIN_REPORTS - 1) == 1
    assert process_count(PARALLEL_MIN_REPORTS) == 1
    assert process_count(10 * PARALLEL_MIN_REPORTS) == min(cores, 10)
    assert process_count(1000 * PARALLEL_MIN_REPORTS) == cores


@pytest.mark.parametrize(("cpu_max", "quota"), [("max 100000\n", None), ("150000 100000\n", 1)])
def test_a_cgroup_cpu_quota_caps_the_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cpu_max: str, quota: int | None
) -> None:
    (tmp_path / "cpu.max").write_text(cpu_max)
    monkeypatch.setattr(workers, "CGROUP_CPU_MAX", tmp_path / "cpu.max")
    cores = len(os.sched_getaffinity(0))
    expected = cores if quota is None else min(cores, quota)
    assert process_count(1000 * PARALLEL_MIN_REPORTS) == expected


# -- `casereport render` in a process of its own, with real signals ---------------------

# `casereport render` in three processes, whatever the site's size; each worker notes its
# pid in ./workers. With STALL=render, every worker then stalls before its report; with
# STALL=sync, the worker of service-health stalls as it makes its pages durable (written
# to temporary files, none renamed), and the other worker, done, waits for more work.
RENDER = """
import os, sys, time
from casereport import fsutil
from casereport.cli import main
from casereport.render import workers

parent = os.getpid()
real_render, real_sync = workers.render_report, fsutil.sync_files

def render_report(*args, **kwargs):
    if os.getpid() != parent:
        with open("workers", "a") as note:
            note.write(f"{os.getpid()}\\n")
        if os.environ["STALL"] == "render":
            time.sleep(60)
    return real_render(*args, **kwargs)

def sync_files(folder, names):
    names = list(names)
    if os.getpid() != parent and any("service-health" in name for name in names):
        open("stalled", "w").close()
        time.sleep(60)
    real_sync(folder, names)

workers.render_report = render_report
workers.process_count = lambda reports: 3
fsutil.sync_files = sync_files
sys.argv = ["casereport", "render"]
main()
"""


@pytest.fixture
def workspace(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """The fixture reports and state as a workspace; the site one process renders there."""
    root = tmp_path / "ws"
    shutil.copytree(FIXTURES / "render_reports", root / "reports")
    (root / ".casereport").mkdir()
    shutil.copyfile(FIXTURES / "render_state.json", root / ".casereport" / "state.json")
    subprocess.run([sys.executable, "-m", "casereport", "render"], cwd=root, check=True)
    reference = _files(root / "site")
    shutil.rmtree(root / "site")
    return root, reference


def _start_render(root: Path, stall: str) -> tuple[subprocess.Popen[str], list[int]]:
    """The render, in a process group of its own (as a terminal's foreground job is), and
    its two workers' pids, once both have started rendering."""
    process = subprocess.Popen(
        [sys.executable, "-c", RENDER],
        cwd=root,
        env={**os.environ, "STALL": stall},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    notes = root / "workers"
    _wait_for(lambda: notes.exists() and len(set(notes.read_text().split())) == 2, process)
    return process, sorted({int(pid) for pid in notes.read_text().split()})


def _wait_for(predicate: Callable[[], bool], process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not predicate():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the render did not get there"
        time.sleep(0.01)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not reaped by its adopter, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _gone(pids: list[int], within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while any(_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_ctrl_c_stops_every_process_and_leaves_no_partial_page(
    workspace: tuple[Path, dict[str, bytes]],
) -> None:
    root, reference = workspace
    process, pids = _start_render(root, stall="sync")
    site = root / "site"
    # Until one worker stalls with a page half-way, the other is done and this process
    # has written a page of its own share.
    _wait_for(lambda: (root / "stalled").exists(), process)
    _wait_for(lambda: (site / "security-cases.html").exists(), process)
    _wait_for(lambda: (site / "edge-cases.html").exists(), process)
    time.sleep(0.2)  # the worker done is back waiting for work
    assert _leftovers(site)
    started = time.monotonic()

    os.killpg(process.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
    _, stderr = process.communicate(timeout=30)

    assert time.monotonic() - started < 10  # the workers were not waited for
    assert process.returncode == 1
    assert stderr == "Aborted!\n"  # and no worker's traceback
    assert _gone(pids)
    assert _leftovers(site) == []
    written = _files(site)
    assert "edge-cases.html" in written and "service-health.html" not in written
    assert written == {name: reference[name] for name in written}  # each page whole


def test_a_killed_renders_workers_die_with_it_and_the_next_render_takes_the_lock(
    workspace: tuple[Path, dict[str, bytes]],
) -> None:
    root, reference = workspace
    process, stalled = _start_render(root, stall="render")

    process.kill()  # the parent alone, as the OOM killer or a `kill -9` would
    process.communicate(timeout=30)

    assert _gone(stalled, within=2)  # the workers write pages: none outlives its parent
    state_path = root / ".casereport" / "state.json"
    with state_lock(state_path, "render", timeout=0):  # at once: no worker holds it
        pass
    subprocess.run([sys.executable, "-m", "casereport", "render"], cwd=root, check=True)
    assert _files(root / "site") == reference
