"""Rendering a site in several processes gives exactly what rendering it in one gives.

``render_reports`` forks one child per extra core on a large site. The tests here
force the process count, so they run on any machine and on small sites.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jinja2
import pytest

from casereport.definitions.expand import ReportSpec
from casereport.errors import RenderError
from casereport.render import workers
from casereport.render.pages import Pages, render_report
from casereport.render.templates import environment
from casereport.render.workers import PARALLEL_MIN_REPORTS, Rendered, process_count, render_reports
from test_render_golden import fixture_reports, fixture_state

pytestmark = pytest.mark.skipif(
    sys.platform != "linux", reason="casereport forks render processes on Linux only"
)


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


def _serial(reports: list[ReportSpec], env: jinja2.Environment) -> dict[str, object]:
    state = fixture_state()
    expected: dict[str, object] = {}
    for report in reports:
        try:
            expected[report.name] = render_report(report, state.aggregations, state.source, env)
        except RenderError as exc:
            expected[report.name] = exc.message
    return expected


def _comparable(rendered: Rendered) -> dict[str, object]:
    return {
        name: value.message if isinstance(value, RenderError) else value
        for name, value in rendered.items()
    }


Hook = Callable[[ReportSpec], None]


def _render_with_hooks(
    monkeypatch: pytest.MonkeyPatch,
    reports: list[ReportSpec],
    env: jinja2.Environment,
    processes: int,
    *,
    in_child: Hook | None = None,
    in_parent: Hook | None = None,
) -> Rendered:
    """``render_reports`` with a hook run before each report, in a child or in this process."""
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
        return render_reports(reports, state.aggregations, state.source, env, processes=processes)
    finally:
        monkeypatch.undo()


@pytest.mark.parametrize("processes", [2, 3])
def test_children_render_the_same_pages_in_the_same_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, processes: int
) -> None:
    reports, env = _site(tmp_path)
    renderers = tmp_path / "renderers"

    def note_the_process(report: ReportSpec) -> None:
        with renderers.open("a") as note:
            note.write(f"{os.getpid()}\n")

    rendered = _render_with_hooks(
        monkeypatch,
        reports,
        env,
        processes,
        in_child=note_the_process,
        in_parent=note_the_process,
    )
    pids = renderers.read_text().split()
    assert len(set(pids)) == processes  # the children did render,
    assert len(pids) == len(reports)  # and what they rendered was used, not redone here
    assert list(rendered) == [r.name for r in reports]
    assert _comparable(rendered) == _serial(reports, env)
    broken = rendered["broken"]
    assert isinstance(broken, RenderError) and "titel" in broken.message


def test_children_hold_no_inherited_file_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above all the state lock: a killed parent must not leave it held by a child."""
    reports, env = _site(tmp_path)
    seen = tmp_path / "seen"
    with (tmp_path / "state.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)

        def check_the_lock(report: ReportSpec) -> None:
            try:
                os.fstat(lock.fileno())
                held = "open"
            except OSError:
                held = "closed"
            with seen.open("a") as note:
                note.write(f"{held}\n")

        _render_with_hooks(monkeypatch, reports, env, 2, in_child=check_the_lock)
    assert set(seen.read_text().split()) == {"closed"}


def test_a_failed_child_has_its_share_rendered_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reports, env = _site(tmp_path)

    def crash(report: ReportSpec) -> None:
        os._exit(3)  # a child dying in the middle of its share

    rendered = _render_with_hooks(monkeypatch, reports, env, 2, in_child=crash)
    assert _comparable(rendered) == _serial(reports, env)


def test_when_no_process_can_be_forked_everything_is_rendered_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reports, env = _site(tmp_path)

    def fork() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", fork)
    state = fixture_state()
    rendered = render_reports(reports, state.aggregations, state.source, env, processes=2)
    monkeypatch.undo()
    assert _comparable(rendered) == _serial(reports, env)


def test_an_unexpected_error_surfaces_here_as_without_children(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in a child's share: the child fails, this process renders the share, and
    the error is raised here (with its traceback under --debug), as without children."""
    reports, env = _site(tmp_path)
    in_child_share = reports[1].name  # shares: [0::2] here, [1::2] in the child

    def bug(report: ReportSpec) -> None:
        if report.name == in_child_share:
            raise ZeroDivisionError(f"a bug in rendering {report.name}")

    with pytest.raises(ZeroDivisionError, match=f"a bug in rendering {in_child_share}"):
        _render_with_hooks(monkeypatch, reports, env, 2, in_child=bug, in_parent=bug)


def test_an_interrupted_render_ends_its_children(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C here while the children are still busy: they are killed, not waited for."""
    reports, env = _site(tmp_path)
    busy = tmp_path / "busy"

    def take_long(report: ReportSpec) -> None:
        with busy.open("a") as note:
            note.write(f"{os.getpid()}\n")
        time.sleep(20)
        with busy.open("a") as note:
            note.write("finished\n")  # only if this child was left to run

    def interrupt(report: ReportSpec) -> None:
        while len(set(busy.read_text().split()) if busy.exists() else ()) < 2:
            time.sleep(0.01)  # until both children are busy
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _render_with_hooks(monkeypatch, reports, env, 3, in_child=take_long, in_parent=interrupt)
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
