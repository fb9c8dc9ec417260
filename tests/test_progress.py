"""Progress in CI logs: without a terminal, a line every ten seconds of a long apply or
render (``engine.progress``), on stderr; the progress bar on a terminal.

The clock is pinned: ``ProgressLines`` takes it as a parameter, and the command-line
runs here replace ``casereport.clock.monotonic`` with a clock that moves a second at
each reading, and switch the background thread off (``progress.POLL``), so which
line comes when is fixed. Golden files in ``tests/golden/events/`` (regenerate with
CASEREPORT_UPDATE_GOLDEN=1 and review the diff).
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from tests.cli_workspace import example_workspace
from tests.test_events import check_golden

from casereport import clock
from casereport.cli import cli
from casereport.cli_events import HumanView
from casereport.engine import progress
from casereport.engine.events import Failed, Fetched, Rendered, Started, Summary
from casereport.engine.progress import ProgressLines
from casereport.errors import RenderError


class FakeClock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def lines_of_a_long_run() -> list[str]:
    """A 1,000-aggregation fetch and a 1,000-report render, an event every 0.1 s, two
    fetches failing, and a request that keeps the run waiting a minute."""
    moment = FakeClock()
    written: list[str] = []
    lines = ProgressLines(written.append, monotonic=moment, interval=10.0)
    moment.now += 4.0  # planning
    lines(Started("fetch", 1_000))
    for number in range(1_000):
        moment.now += 0.1
        if number in (17, 200):
            lines(Failed("fetch", "Datadog server error (HTTP 500)", f"r.a{number}", "r"))
        else:
            lines(Fetched(f"r.a{number}", "r", 1.0, 1, 0.1))
        if number == 500:  # a rate-limit wait: only the thread would tick meanwhile
            for _ in range(60):
                moment.now += 1.0
                lines.tick()
    lines(Started("render", 1_000))
    for number in range(1_000):
        moment.now += 0.1
        lines(Rendered(f"r{number}", ("r.html",)))
    lines(Rendered(None, ("index.html",)))
    return written


def test_progress_lines_of_a_long_run() -> None:
    written = lines_of_a_long_run()

    check_golden("progress-lines.txt", "".join(f"{line}\n" for line in written))
    assert written[0] == "fetched 61/1,000, 1 failed, 10 s"
    assert "fetched 501/1,000, 2 failed, 60 s" in written
    assert written[-1] == "rendered 960/1,000 reports, 260 s"
    assert len(written) == 26  # one per 10 s of 264 s


def test_a_short_run_prints_no_progress_line() -> None:
    moment = FakeClock()
    written: list[str] = []
    lines = ProgressLines(written.append, monotonic=moment)
    lines(Started("fetch", 3))
    for number in range(3):
        moment.now += 3.0
        lines(Fetched(f"r.a{number}", "r", 1.0, 1, 3.0))
    assert written == []
    moment.now += 1.0  # 10 s: the first line is due
    lines.tick()
    assert written == ["fetched 3/3, 10 s"]


def test_a_late_tick_prints_one_line_then_keeps_the_interval() -> None:
    moment = FakeClock()
    written: list[str] = []
    lines = ProgressLines(written.append, monotonic=moment, interval=10.0, waiting="preparing")
    moment.now += 35.0
    lines.tick()
    lines.tick()
    moment.now += 4.9  # 39.9 s: the next line is due at 40 s
    lines.tick()
    moment.now += 0.1
    lines.tick()
    assert written == ["preparing, 35 s", "preparing, 40 s"]


def test_the_thread_prints_while_no_event_arrives(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "POLL", 0.01)
    moment = FakeClock()
    arrived = threading.Event()
    written: list[str] = []

    def write(line: str) -> None:
        written.append(line)
        arrived.set()

    with ProgressLines(write, monotonic=moment) as lines:
        lines(Started("fetch", 5))
        moment.now += 12.0  # a request waits; no event comes
        assert arrived.wait(timeout=60), "the thread printed no line"
    assert written == ["fetched 0/5, 12 s"]
    assert not any(t.name == "casereport-progress" for t in threading.enumerate())


# -- the command line -----------------------------------------------------------------


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example workspace; a second passes at each reading of the clock, and no
    thread reads it."""
    ticks = itertools.count()
    monkeypatch.setattr(clock, "monotonic", lambda: float(next(ticks)))
    monkeypatch.setattr(progress, "POLL", None)
    return example_workspace(tmp_path, monkeypatch)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


APPLY = ("apply", "--emulator", "--auto-approve", "--parallelism", "1")


def test_an_apply_in_a_log_prints_progress_lines_on_stderr(workspace: Path) -> None:
    result = run(*APPLY)

    assert result.exit_code == 0, result.output
    check_golden("progress-apply.txt", result.stderr)
    assert result.stderr.startswith("fetched ")
    # stdout is as it was: the plan, then the summary line.
    assert result.stdout.splitlines()[-1] == (
        "Apply complete: 19 fetched (19 API calls), 3 reports rendered, 0 deleted."
    )
    assert "fetched" not in result.stdout.replace("19 fetched", "")


def test_a_render_in_a_log_prints_progress_lines_on_stderr(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(*APPLY).exit_code == 0
    ticks = itertools.count()  # a render of three reports reads the clock six times
    monkeypatch.setattr(clock, "monotonic", lambda: next(ticks) * 3.0)

    result = run("render")

    assert result.exit_code == 0, result.output
    check_golden("progress-render.txt", result.stderr)
    assert result.stderr.splitlines()[-1].startswith("rendered 3/3 reports, ")
    assert result.stdout == "Rendered 3 reports and the index.\n"


def test_json_prints_no_progress_line(workspace: Path) -> None:
    result = run(*APPLY, "--json")

    assert result.exit_code == 0, result.output
    assert result.stderr == ""


def test_a_terminal_gets_the_bar_and_no_progress_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    moment = FakeClock()
    monkeypatch.setattr(clock, "monotonic", moment)
    bars: list[int] = []
    real_bar = click.progressbar

    def bar(**kwargs: object) -> object:
        bars.append(int(str(kwargs["length"])))
        return real_bar(**kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(click, "progressbar", bar)
    for fetches, expected in ((19, []), (20, [20])):
        bars.clear()
        with HumanView(stderr_tty=True, waiting="planning") as view:
            view(Started("fetch", fetches))
            for number in range(fetches):
                moment.now += 30.0
                view(Fetched(f"r.a{number}", "r", 1.0, 1, 30.0))
            view(Started("render", 1))
            view(Summary("Apply complete.", 0))
        assert bars == expected
        out, err = capsys.readouterr()
        assert out == "Apply complete.\n"
        assert "fetched" not in err


def test_the_human_view_prints_the_summary_and_each_failure_on_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with HumanView(stderr_tty=True, waiting="planning") as view:
        view(Failed("fetch", "boom", "r.a", "r"))
        view(Summary("Apply finished with errors: 1 failed:", 1, failures=("r.a: boom (kept)",)))
    out, err = capsys.readouterr()
    assert out == "Apply finished with errors: 1 failed:\n"
    assert err == "  r.a: boom (kept)\n"


# -- the render loop's callback ---------------------------------------------------------


@pytest.mark.parametrize("processes", [1, 2, 3])
def test_the_render_loop_tells_of_every_report_once(tmp_path: Path, processes: int) -> None:
    from tests.test_render_golden import fixture_reports, fixture_state

    from casereport.render.templates import environment
    from casereport.render.workers import render_site_pages

    (tmp_path / "typo.md.j2").write_text("{{ report.titel }}\n")
    reports = list(fixture_reports())
    broken = dataclasses.replace(reports[0], name="broken", formats=("markdown",), template="typo")
    reports.append(broken)
    state = fixture_state()
    told: list[tuple[str, object]] = []

    site = render_site_pages(
        reports,
        state.aggregations,
        state.source,
        environment(tmp_path),
        tmp_path / "site",
        {},
        processes=processes,
        on_report=lambda name, written: told.append((name, written)),
    )

    assert sorted(name for name, _ in told) == sorted(r.name for r in reports)
    for name, written in told:
        if name == "broken":
            assert isinstance(written, RenderError) and "titel" in written.message
        else:
            assert written == site.reports[name]
    if processes == 1:  # one by one, in order
        assert [name for name, _ in told] == [r.name for r in reports]
