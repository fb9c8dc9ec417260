"""Rendering a site in several processes gives exactly what rendering it in one gives.

``render.render_reports`` forks one child per extra core on a large site. The tests here
force the process count, so they run on any machine and on small sites.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jinja2
import pytest

from casereport import render
from casereport.errors import RenderError
from casereport.expand import ReportSpec
from test_render_golden import fixture_reports, fixture_state

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX only)")


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
    return [*reports, broken], render.environment(tmp_path)


def _serial(reports: list[ReportSpec], env: jinja2.Environment) -> dict[str, object]:
    state = fixture_state()
    expected: dict[str, object] = {}
    for report in reports:
        try:
            expected[report.name] = render.render_report(
                report, state.aggregations, state.source, env
            )
        except RenderError as exc:
            expected[report.name] = exc.message
    return expected


def _comparable(rendered: render.Rendered) -> dict[str, object]:
    return {
        name: value.message if isinstance(value, RenderError) else value
        for name, value in rendered.items()
    }


Hook = Callable[[], None]


def _render_with_hooks(
    monkeypatch: pytest.MonkeyPatch,
    reports: list[ReportSpec],
    env: jinja2.Environment,
    processes: int,
    *,
    in_child: Hook | None = None,
    in_parent: Hook | None = None,
) -> render.Rendered:
    """``render_reports`` with a hook run before each report, in a child or in this process."""
    state = fixture_state()
    parent = os.getpid()
    real = render.render_report

    def hooked(*args: Any, **kwargs: Any) -> render.Pages:
        hook = in_parent if os.getpid() == parent else in_child
        if hook is not None:
            hook()
        return real(*args, **kwargs)

    monkeypatch.setattr(render, "render_report", hooked)
    try:
        return render.render_reports(
            reports, state.aggregations, state.source, env, processes=processes
        )
    finally:
        monkeypatch.undo()


@pytest.mark.parametrize("processes", [2, 3])
def test_children_render_the_same_pages_in_the_same_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, processes: int
) -> None:
    reports, env = _site(tmp_path)
    renderers = tmp_path / "renderers"

    def note_the_process() -> None:
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

        def check_the_lock() -> None:
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

    def crash() -> None:
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
    rendered = render.render_reports(reports, state.aggregations, state.source, env, processes=2)
    monkeypatch.undo()
    assert _comparable(rendered) == _serial(reports, env)


def test_an_unexpected_error_surfaces_here_as_without_children(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reports, env = _site(tmp_path)

    def bug() -> None:
        raise ZeroDivisionError("a bug in rendering")

    with pytest.raises(ZeroDivisionError, match="a bug in rendering"):
        _render_with_hooks(monkeypatch, reports, env, 2, in_child=bug, in_parent=bug)


def test_an_interrupted_render_ends_its_children(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reports, env = _site(tmp_path)

    def interrupt() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _render_with_hooks(monkeypatch, reports, env, 3, in_parent=interrupt)
    # no_child_left checks that both children were reaped.


@pytest.mark.skipif(sys.platform != "linux", reason="children are forked on Linux only")
def test_only_large_sites_use_more_than_one_process() -> None:
    cores = len(os.sched_getaffinity(0))
    assert render.process_count(0) == 1
    assert render.process_count(render.PARALLEL_MIN_REPORTS - 1) == 1
    assert render.process_count(render.PARALLEL_MIN_REPORTS) == 1
    assert render.process_count(10 * render.PARALLEL_MIN_REPORTS) == min(cores, 10)
    assert render.process_count(1000 * render.PARALLEL_MIN_REPORTS) == cores
