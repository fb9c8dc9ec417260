"""Render a large site in several processes, one per usable core."""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

from casereport.definitions.expand import ReportSpec
from casereport.errors import RenderError
from casereport.fsutil import collector_paused
from casereport.render.pages import Pages, render_report
from casereport.state.model import AggregationState, Source

if TYPE_CHECKING:
    import jinja2

# Below this many reports a site renders in well under a second: not worth a process.
PARALLEL_MIN_REPORTS = 64
# A cgroup (v2) CPU quota: "max 100000" for none, "200000 100000" for two CPUs' worth.
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")

Rendered = dict[str, Pages | RenderError]


def render_reports(
    reports: Sequence[ReportSpec],
    aggregations: Mapping[str, AggregationState],
    source: Source | None,
    env: jinja2.Environment,
    *,
    processes: int | None = None,
) -> Rendered:
    """Render many reports: report name -> its pages, or the RenderError that stopped it.

    Rendering is CPU-bound Python, so a large site is shared out among forked processes,
    one per available core (``processes`` overrides the count; 1 renders here only). Each
    child renders every n-th report and hands its pages back through a temporary file;
    the pages are the same whichever process renders them, so the result is too. A child
    never writes the site: if one fails in any way, this process renders its share itself,
    so an unexpected error surfaces here as it would without children.
    """
    count = process_count(len(reports)) if processes is None else max(1, processes)
    if count == 1:
        return _render_share(reports, aggregations, source, env)
    _preload_templates(env)
    shares = [reports[index::count] for index in range(count)]
    children: list[_Child | None] = []
    with collector_paused(), contextlib.ExitStack() as cleanup:
        for share in shares[1:]:
            child = _fork_share(share, aggregations, source, env)
            if child is not None:
                cleanup.callback(child.stop)  # however this ends, no child outlives it
            children.append(child)
        results = _render_share(shares[0], aggregations, source, env)
        for child, share in zip(children, shares[1:], strict=True):
            received = child.collect() if child is not None else None
            results.update(
                received
                if received is not None
                else _render_share(share, aggregations, source, env)
            )
    return {report.name: results[report.name] for report in reports}


def process_count(reports: int) -> int:
    """How many processes render a site of ``reports`` reports."""
    if reports < PARALLEL_MIN_REPORTS or sys.platform != "linux":
        # fork is what makes this cheap: children share the loaded state without copying
        # or pickling it. Linux only: elsewhere fork is missing or (macOS) unsafe.
        return 1
    return max(1, min(_usable_cores(), reports // PARALLEL_MIN_REPORTS))


def _usable_cores() -> int:
    """The cores this process may use: its CPU affinity, capped by a cgroup CPU quota
    (a container limited to 2 CPUs on a 64-core host sees 64 in its affinity)."""
    cores = len(os.sched_getaffinity(0))
    with contextlib.suppress(OSError, ValueError):
        quota, period = CGROUP_CPU_MAX.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, int(quota) // int(period)))
    return cores


def _each_rendered(
    reports: Sequence[ReportSpec],
    aggregations: Mapping[str, AggregationState],
    source: Source | None,
    env: jinja2.Environment,
) -> Iterator[tuple[str, Pages | RenderError]]:
    """Each report's name and pages (or render error), one at a time."""
    for report in reports:
        try:
            yield report.name, render_report(report, aggregations, source, env)
        except RenderError as exc:
            yield report.name, exc


def _render_share(
    reports: Sequence[ReportSpec],
    aggregations: Mapping[str, AggregationState],
    source: Source | None,
    env: jinja2.Environment,
) -> Rendered:
    return dict(_each_rendered(reports, aggregations, source, env))


def _preload_templates(env: jinja2.Environment) -> None:
    """Compile every template once, before forking, rather than once in every process."""
    import jinja2

    for name in env.list_templates(extensions=["j2"]):
        # A broken template is reported by the render that needs it.
        with contextlib.suppress(jinja2.TemplateError, UnicodeDecodeError):
            env.get_template(name)


class _Child:
    """A forked process rendering a share of the reports into a temporary file."""

    def __init__(self, pid: int, output: IO[bytes]) -> None:
        self.pid = pid
        self.output = output
        self.running = True

    def collect(self) -> Rendered | None:
        """Wait for the child; its results, or None if it failed (its share is then redone)."""
        _, status = os.waitpid(self.pid, 0)
        self.running = False
        if os.waitstatus_to_exitcode(status) != 0:
            return None
        self.output.seek(0)
        results: Rendered = {}
        try:
            while True:
                name, value = pickle.load(self.output)
                if name is None:  # the child's end mark: everything arrived
                    return results
                results[name] = RenderError(value) if isinstance(value, str) else value
        except (pickle.UnpicklingError, EOFError, ValueError):
            return None

    def stop(self) -> None:
        if self.running:  # this process is leaving early (Ctrl-C, an error): end the child
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
            self.running = False
        self.output.close()


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _fork_share(
    reports: Sequence[ReportSpec],
    aggregations: Mapping[str, AggregationState],
    source: Source | None,
    env: jinja2.Environment,
) -> _Child | None:
    """A child rendering ``reports``, or None if none could be started (then render here)."""
    try:
        # Owned by the _Child from here on, which closes it in stop().
        output = tempfile.TemporaryFile(prefix="casereport-render-")  # noqa: SIM115
    except OSError:
        return None
    # Ctrl-C waits until the child has its own handling: a child interrupted before that
    # would unwind this process's stack, and release the state lock the parent holds.
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        pid = os.fork()
    except OSError:  # out of processes or memory: this process renders the share itself
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        output.close()
        return None
    if pid:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        return _Child(pid, output)
    code = 1
    try:
        # A stop signal now ends the child at once, running no code of the parent's.
        for number in _STOP_SIGNALS:
            signal.signal(number, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        _close_inherited_files(keep=output.fileno())
        # Each report as it is done, so little is left to hand over when the last one is.
        for name, value in _each_rendered(reports, aggregations, source, env):
            # A render error travels as its message: exceptions do not pickle reliably.
            shipped = value.message if isinstance(value, RenderError) else value
            pickle.dump((name, shipped), output, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.dump((None, None), output)
        output.flush()
        code = 0
    finally:
        # Straight out: no atexit handlers, no cleanup of what belongs to the parent.
        os._exit(code)


def _close_inherited_files(keep: int) -> None:
    """Close every file descriptor but 0-2 and ``keep``, the state lock above all: a lock
    is released when its last holder closes it, and if the parent is killed the next run
    must find it free at once, not when this child is done."""
    try:
        open_fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: every possible number (slow only where the limit is huge)
        os.closerange(3, keep)
        os.closerange(keep + 1, os.sysconf("SC_OPEN_MAX"))
        return
    for fd in open_fds:  # only the open ones
        if fd > 2 and fd != keep:
            with contextlib.suppress(OSError):  # the listing's own descriptor, now closed
                os.close(fd)
