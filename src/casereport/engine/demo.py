"""``casereport demo DIR``: a workspace with six weeks of history, built in a few seconds.

A newcomer's first apply gives pages with one point per trend and no change to show. The
demo instead builds a workspace (``casereport init``'s scaffold and a weekly support
report) and applies it again and again at simulated times, each against an emulator whose
cases have evolved to that moment (``emulator.evolution``) with the clock pinned there
(``clock.pinned``), so every ``fetched_at`` is the simulated time and the trends have a
real time axis. Each run is an ordinary ``apply`` (``engine.apply.run_apply``): the state,
its history and the site are exactly what the same applies made on those days would leave.

The workspace is built in a new folder beside ``DIR`` and moved into place once complete,
so a failure leaves ``DIR`` as it was.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from casereport import clock
from casereport.definitions.scaffold import init_workspace
from casereport.emulator.config import DEFAULT_CASES, DEFAULT_SEED, EmulatorConfig
from casereport.engine.apply import run_apply
from casereport.engine.workspace import Options
from casereport.errors import CaseReportError, ConfigError

__all__ = ["DEMO_REPORT", "DemoResult", "build_demo", "run_times"]

DEMO_REPORT = "reports/support-weekly.yaml"

# The runs: 09:00 UTC every Monday and Thursday from Monday 1 June 2026 (the synthetic
# data's reference time, where the emulator's story starts) to Monday 13 July, 13 runs.
# Twice a week, not daily or weekly: daily for six weeks would be 42 runs, more than the
# 30 earlier results a state keeps by default, and weekly runs would make "since the
# previous run" and "since 7 days before" the same comparison. With Mondays and
# Thursdays, `compare: previous` reads a Monday against the Thursday before and
# `compare: 7d` against the Monday before, and every trend has 13 points.
_FIRST_RUN = datetime.fromisoformat("2026-06-01T09:00:00+00:00")
_RUN_DAYS = (0, 3)  # Monday and Thursday, as days after a Monday
_WEEKS = 6

_REPORT = """\
# yaml-language-server: $schema=../schema/report.schema.json
# Written by `casereport demo`: the support queue as a team reads it every Monday.
title: Support queue, weekly
description: |
  The queue over six simulated weeks of demo data: cases arrive faster through June
  and the backlog grows, an incident brings a burst of **P1** cases in the fourth week,
  and a clean-up works the backlog down in July.
owner: "@support"
refresh: 1d
formats: [markdown, html]
aggregations:
  backlog:
    title: Cases not closed, by status
    query_filter: -status:closed
    group_by: [status]
    limit: 3
  backlog_by_priority:
    title: Cases not closed, by priority
    query_filter: -status:closed
    group_by: [priority]
    limit: 6
  all_by_status:
    title: All cases by status
    query_filter: ""
    group_by: [status]
    limit: 3
  status_by_priority:
    title: Status and priority
    query_filter: ""
    group_by: [status, priority]
    limit: 18
  p1_by_service:
    title: P1 cases not closed, by service
    query_filter: -status:closed priority:P1
    group_by: [services]
    limit: 10
  backlog_by_service:
    title: Cases not closed, by service
    query_filter: -status:closed
    group_by: [services]
    limit: 10
"""


@dataclass(frozen=True)
class DemoResult:
    """What the demo built: where, with which seed, and the simulated time of each run."""

    directory: Path
    site_index: Path
    seed: int
    runs: tuple[datetime, ...]


def run_times(first: datetime = _FIRST_RUN, weeks: int = _WEEKS) -> tuple[datetime, ...]:
    """The simulated time of every run: Mondays and Thursdays, ending on a Monday."""
    times = [first + timedelta(weeks=week, days=day) for week in range(weeks) for day in _RUN_DAYS]
    return (*times, first + timedelta(weeks=weeks))


def build_demo(
    directory: Path,
    *,
    seed: int = DEFAULT_SEED,
    cases: int = DEFAULT_CASES,
    force: bool = False,
    notice: Callable[[str], None] | None = None,
) -> DemoResult:
    """Build the demo workspace in ``directory`` (new or empty, or any with ``force``:
    then the demo's own top-level files and folders replace those of the same name)."""
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"cannot build the demo in {directory}: it is not a directory")
    if directory.is_dir() and any(directory.iterdir()) and not force:
        raise ConfigError(
            f"{directory} is not empty; casereport demo builds a new workspace: give a new or "
            "empty directory, or pass --force to replace the demo's files in it"
        )
    runs = run_times()
    # Beside DIR (resolved: DIR may be "."), so that moving it in is a rename. Not mkdtemp:
    # its folder is private (0700), and this one becomes the workspace.
    home = directory.resolve()
    building = home.parent / f".{home.name}.demo-{secrets.token_hex(6)}"
    try:
        building.mkdir(parents=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot build the demo in {directory}: {exc.strerror}: {exc.filename}"
        ) from None
    try:
        init_workspace(building)
        (building / DEMO_REPORT).write_text(_REPORT, encoding="utf-8", newline="\n")
        _run_all(building, runs, EmulatorConfig(port=0, cases=cases, seed=seed), notice)
        _move_into(building, directory)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return DemoResult(directory, directory / "site" / "index.html", seed, runs)


def _run_all(
    root: Path,
    runs: Sequence[datetime],
    config: EmulatorConfig,
    notice: Callable[[str], None] | None,
) -> None:
    """Apply the workspace at each of ``runs``: one emulator serves them all (starting
    and stopping one per run costs a fifth of a second each), given the data as of each
    run before it."""
    from casereport.emulator.server import build_store, running_emulator

    with running_emulator(replace(config, now=runs[0])) as emulator:
        for when in runs:
            at = replace(config, now=when, url=emulator.url)
            emulator.app.store = build_store(at)
            _apply_at(root, when, at, notice)


def _apply_at(
    root: Path, when: datetime, emulator: EmulatorConfig, notice: Callable[[str], None] | None
) -> None:
    """One apply, as if run at ``when``, against ``emulator`` (serving the data of then)."""
    options = Options(root=root, use_emulator=True, emulator=emulator)
    with clock.pinned(when):
        _, outcome = run_apply(options, None, approve=lambda plan: True, auto_approve=True)
    if outcome is None:  # every run is days after the last, so every result is stale
        raise CaseReportError(f"demo run at {when:%Y-%m-%d %H:%M} UTC found nothing to do")
    if outcome.failures:
        raise CaseReportError(
            f"demo run at {when:%Y-%m-%d %H:%M} UTC failed: {outcome.failures[0]}"
        )
    if notice is not None:
        notice(f"{when:%a %d %b %Y %H:%M} UTC: {outcome.summary()}")


def _move_into(built: Path, directory: Path) -> None:
    """Put the built workspace's entries in ``directory``, replacing same-named ones."""
    if not directory.exists():
        built.rename(directory)
        return
    for entry in sorted(built.iterdir()):
        target = directory / entry.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        entry.rename(target)
