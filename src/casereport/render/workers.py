"""Render a site's reports and write their pages, in one process per usable core.

Rendering is CPU-bound Python, so a large site is shared out: report ``i`` goes to
process ``i % n``. Shares 1..n-1 go to a standard-library process pool; this process
renders share 0 meanwhile (all of a small site). Every process writes the pages it
renders (``write_pages``: atomic, durable, only what changed; they go under their names
when its share is done) and hands back only file names and content hashes, so no
process ever holds more than a report's pages. The index, when asked for, is one more
task for the pool, rendered while the reports are (in memory: whether it is written is
the caller's decision, made once the reports are done); the operating system shares
the cores among the processes.

The pool forks (``multiprocessing`` "fork", Linux only): the workers share the loaded
state, the environment and its compiled templates, passed in a module global set
before they start, without pickling any of it; a worker starts in milliseconds. With
forkserver, measured on 1,000 reports of 10 aggregations, this process would pickle
the state (24 MiB, 0.3 s) and each worker would unpickle it (0.35 s) and import
casereport and compile the templates again (0.3 s) before its first report.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from casereport.definitions.expand import ReportSpec
from casereport.errors import RenderError
from casereport.fsutil import AtomicFiles, collector_paused
from casereport.render.pages import Pages, render_index, render_report
from casereport.render.write import clean_partial_writes, site_listing, write_pages
from casereport.state.model import AggregationState, Source

if TYPE_CHECKING:
    import jinja2

# Below this many reports a site renders in well under a second: not worth a process.
PARALLEL_MIN_REPORTS = 64
# A cgroup (v2) CPU quota: "max 100000" for none, "200000 100000" for two CPUs' worth.
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")

# A report's pages as written: site-relative file name -> content hash.
Written = dict[str, str]
# Told of each report as this process has it rendered (its own or a worker's): progress.
OnReport = Callable[[str, Written | RenderError], None]


@dataclass(frozen=True)
class _Site:
    """What every process renders from, and where it writes."""

    shares: Sequence[Sequence[ReportSpec]]
    aggregations: Mapping[str, AggregationState]
    source: Source | None
    env: jinja2.Environment
    site_dir: Path
    recorded: Mapping[str, Mapping[str, str]]
    present: frozenset[str]  # the site folder's names before any page was written
    index: Sequence[ReportSpec] | None = None  # the reports the index lists, if asked for


@dataclass(frozen=True)
class RenderedSite:
    """What ``render_site_pages`` did: each report's written pages (or its error), and the
    index's pages in memory (or its error; None when it was not asked for)."""

    reports: dict[str, Written | RenderError]
    index: Pages | RenderError | None


# The site the pool's workers render: set before they are forked, which is how they get it.
_SITE: _Site | None = None


def render_reports(
    reports: Sequence[ReportSpec],
    aggregations: Mapping[str, AggregationState],
    source: Source | None,
    env: jinja2.Environment,
    site_dir: Path,
    recorded: Mapping[str, Mapping[str, str]],
    *,
    processes: int | None = None,
) -> dict[str, Written | RenderError]:
    """Render and write many reports: report name -> its pages' hashes, or its RenderError
    (``render_site_pages`` without the index)."""
    return render_site_pages(
        reports, aggregations, source, env, site_dir, recorded, processes=processes
    ).reports


def render_site_pages(
    reports: Sequence[ReportSpec],
    aggregations: Mapping[str, AggregationState],
    source: Source | None,
    env: jinja2.Environment,
    site_dir: Path,
    recorded: Mapping[str, Mapping[str, str]],
    *,
    index: Sequence[ReportSpec] | None = None,
    processes: int | None = None,
    on_report: OnReport | None = None,
) -> RenderedSite:
    """Render and write many reports, and render the index of ``index`` if given.

    ``recorded`` holds each report's pages as the state records them (name -> hash): a
    page equal to that and to its file is not written again. ``processes`` overrides the
    process count (1: all here). A worker that dies has its share (or the index)
    rendered here, with the same result; an unexpected error in a worker is raised here.
    The caller holds the state lock: temporary files left in ``site_dir`` by workers that
    did not finish are this run's, and are removed. ``on_report`` is told of each report
    when this process has it: one by one for its own share, a worker's share at once.
    """
    count = process_count(len(reports)) if processes is None else max(1, processes)
    shares = [reports[share::count] for share in range(count)]
    site = _Site(
        shares, aggregations, source, env, site_dir, recorded, site_listing(site_dir), index
    )
    if count == 1:
        with AtomicFiles(site_dir) as files:
            written = dict(_told(_each_written(reports, site, files), on_report))
        return RenderedSite(written, _index_pages(site))
    _prepare_before_fork(env)
    results: dict[str, Written | RenderError] = {}
    with collector_paused(), _workers(site) as workers:
        # This process's share goes under its names (durably) before it waits for the others.
        with AtomicFiles(site_dir) as files:
            results.update(_told(_each_written(shares[0], site, files), on_report))
        for share in range(1, count):
            received = workers.collect(share)
            if received is None:  # the worker died (or never started): its share here
                with AtomicFiles(site_dir) as files:
                    received = dict(_each_written(shares[share], site, files))
            results.update(_told(received.items(), on_report))
        index_pages = workers.collect_index()
        if index_pages is None:  # its worker died: the index here
            index_pages = _index_pages(site)
    ordered = {report.name: results[report.name] for report in reports}
    return RenderedSite(ordered, index_pages)


def process_count(reports: int) -> int:
    """How many processes render a site of ``reports`` reports."""
    if reports < PARALLEL_MIN_REPORTS or sys.platform != "linux":
        # fork is what makes this cheap: workers share the loaded state without copying
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


def _each_written(
    reports: Sequence[ReportSpec], site: _Site, files: AtomicFiles
) -> Iterator[tuple[str, Written | RenderError]]:
    """Render each report and write its pages; its name and pages' hashes (or its error)."""
    for report in reports:
        try:
            pages = render_report(report, site.aggregations, site.source, site.env)
        except RenderError as exc:
            yield report.name, exc
        else:
            recorded = site.recorded.get(report.name, {})
            yield report.name, write_pages(files, pages, recorded, site.present)


def _told(
    written: Iterable[tuple[str, Written | RenderError]], on_report: OnReport | None
) -> Iterator[tuple[str, Written | RenderError]]:
    """``written``, each report told to ``on_report`` (if any) as it passes."""
    for name, value in written:
        if on_report is not None:
            on_report(name, value)
        yield name, value


def _index_pages(site: _Site) -> Pages | RenderError | None:
    """The index's pages in memory (or the error that stopped them), if asked for."""
    if site.index is None:
        return None
    try:
        return render_index(site.index, site.aggregations, site.source, site.env)
    except RenderError as exc:
        return exc


def _prepare_before_fork(env: jinja2.Environment) -> None:
    """Compile every template and build the description parser once, before forking,
    rather than once in every process (markdown-it-py's import and parser: ~60 ms)."""
    import jinja2

    from casereport.render.markdown import parse_description

    for name in env.list_templates(extensions=["j2"]):
        # A broken template is reported by the render that needs it.
        with contextlib.suppress(jinja2.TemplateError, UnicodeDecodeError):
            env.get_template(name)
    parse_description("")


# -- in a worker ------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _started(parent: int) -> None:
    """A worker's first act, before it takes its share."""
    # Ctrl-C is the parent's to handle: it ends the workers (and a worker interrupted
    # while it waits for its share would print a traceback of its own). It was blocked
    # across fork (see _Workers.start), so one sent meanwhile is dropped here, not acted upon.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    # A worker writes pages: it must not outlive a killed parent, whose lock the next run
    # takes at once. The kernel kills it when the parent dies; no portable call does that.
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGKILL))
    if os.getppid() != parent:  # it died before that
        os._exit(1)


def _render_share(index: int) -> list[tuple[str, Written | str]]:
    """A worker's share rendered and written; a render error travels as its message
    (exceptions do not all pickle)."""
    assert _SITE is not None, "set before the workers are forked"
    with AtomicFiles(_SITE.site_dir) as files:
        return [
            (name, value.message if isinstance(value, RenderError) else value)
            for name, value in _each_written(_SITE.shares[index], _SITE, files)
        ]


def _render_index() -> Pages | str | None:
    """The index rendered in a worker; a render error travels as its message."""
    assert _SITE is not None, "set before the workers are forked"
    pages = _index_pages(_SITE)
    return pages.message if isinstance(pages, RenderError) else pages


# -- in the parent ----------------------------------------------------------------------


@contextlib.contextmanager
def _workers(site: _Site) -> Iterator[_Workers]:
    """A forked process pool rendering shares 1..n-1 of ``site``, for a ``with`` block.

    Leaving the block early (Ctrl-C, an error), the workers are killed, not waited for;
    then, as when a worker died, the temporary files workers left are removed.
    """
    global _SITE
    _SITE = site
    workers = _Workers()
    try:
        workers.start(len(site.shares) - 1, index=site.index is not None)
        yield workers
    except BaseException:
        workers.stop(kill=True)
        clean_partial_writes(site.site_dir)
        raise
    else:
        workers.stop(kill=False)
        if workers.failed:
            clean_partial_writes(site.site_dir)
    finally:
        _SITE = None


class _Workers:
    """The pool's workers, one share each, and what became of them."""

    def __init__(self) -> None:
        self.pool: ProcessPoolExecutor | None = None
        self.shares: dict[int, Future[list[tuple[str, Written | str]]]] = {}
        self.index: Future[Pages | str | None] | None = None
        self.failed = False  # a worker died, or none could be started

    def start(self, count: int, *, index: bool) -> None:
        """Fork ``count`` workers for shares 1..count, and one more for the index."""
        pool = ProcessPoolExecutor(
            count + index,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_started,
            initargs=(os.getpid(),),
        )
        # Ctrl-C waits (blocked, not lost) until the workers are forked and ignore it: one
        # landing in a new worker before multiprocessing's code takes over would unwind
        # this process's stack there, finally blocks and all.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            self.pool = pool
            # The first submit forks every worker.
            self.shares = {i: pool.submit(_render_share, i) for i in range(1, count + 1)}
            self.index = pool.submit(_render_index) if index else None
        except OSError:  # out of processes or memory: this process renders every share
            self.failed = True
            self.shares, self.index = {}, None
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def collect(self, index: int) -> dict[str, Written | RenderError] | None:
        """Share ``index`` as its worker rendered it, or None if the worker died."""
        if index not in self.shares:
            return None
        try:
            done = self.shares[index].result()
        except BrokenProcessPool:
            self.failed = True
            return None
        return {name: RenderError(v) if isinstance(v, str) else v for name, v in done}

    def collect_index(self) -> Pages | RenderError | None:
        """The index as its worker rendered it, or None if it was not asked for or the
        worker died (then it is rendered here)."""
        if self.index is None:
            return None
        try:
            done = self.index.result()
        except BrokenProcessPool:
            self.failed = True
            return None
        return RenderError(done) if isinstance(done, str) else done

    def stop(self, *, kill: bool) -> None:
        """Shut the pool down, every worker reaped; ``kill``: without letting them finish."""
        if self.pool is None:
            return
        # Python 3.11 has no public way to end workers busy with a task (3.14 adds
        # ``kill_workers``): without it, Ctrl-C would wait for every worker's whole share.
        processes = list((self.pool._processes or {}).values())
        if kill or self.failed:
            for process in processes:
                process.kill()
        self.pool.shutdown(wait=True, cancel_futures=True)
        for process in processes:
            process.join()  # done by the pool's thread, if it had started; not if a fork failed
