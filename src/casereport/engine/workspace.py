"""The workspace a plan, apply or render works on: the flags it was given (``Options``),
its settings and expanded reports loaded (``Workspace``), and what is checked of it before
anything is planned (targets, templates). ``plan_workspace`` plans it against a state.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from casereport import clock
from casereport.checks.validate import with_check_diagnostics
from casereport.definitions.expand import Expansion, ReportSpec, expand_workspace
from casereport.engine.plan import Plan, make_plan
from casereport.errors import DefinitionError
from casereport.settings import DEFAULT_MAX_RATE_LIMIT_WAIT, DEFAULT_TIMEOUT, Settings
from casereport.state.model import Source, State
from casereport.state.page_cache import PageCache

if TYPE_CHECKING:
    from casereport.emulator.config import EmulatorConfig

#: Where a command's one-line notices go (stderr in the CLI).
Notice = Callable[[str], None]


@dataclass(frozen=True)
class Options:
    """What plan, apply and render are told by flags (None: the workspace setting)."""

    root: Path = Path(".")
    reports_dir: Path | None = None
    state_path: Path | None = None
    site_dir: Path | None = None
    templates_dir: Path | None = None
    cli_vars: Mapping[str, str] = field(default_factory=dict)
    targets: tuple[str, ...] = ()
    refresh_all: bool = False
    use_emulator: bool = False
    parallelism: int | None = None
    lock_timeout: float = 0.0
    timeout: float | None = None
    max_rate_limit_wait: float | None = None
    allow_source_change: bool = False
    # The emulator ``use_emulator`` starts (``casereport demo``: a seed and a simulated
    # clock), or with a ``url`` the one already running there; None: the default one.
    emulator: EmulatorConfig | None = None


@dataclass(frozen=True)
class Workspace:
    """A loaded workspace: its resolved settings, paths and expanded reports."""

    settings: Settings
    expansion: Expansion
    state_path: Path
    site_dir: Path
    templates_dir: Path
    parallelism: int
    timeout: float = DEFAULT_TIMEOUT
    max_rate_limit_wait: float = DEFAULT_MAX_RATE_LIMIT_WAIT
    emulator: EmulatorConfig | None = None  # see ``Options.emulator``

    @property
    def reports(self) -> tuple[ReportSpec, ...]:
        return self.expansion.reports

    @functools.cached_property
    def template_hashes(self) -> dict[str, str]:
        """The hash of every template name the reports use (see ``render.templates``):
        read once per run, so the template check, the plan and the state agree."""
        from casereport.render.templates import template_hashes

        return template_hashes(
            self.templates_dir,
            {r.template for r in self.reports},
            site_title=self.settings.site_title,
            pdf_page_size=self.settings.pdf_page_size,
        )


def load_workspace(options: Options, notice: Notice | None = None) -> Workspace:
    """Load settings and report files; every definition error is reported together.

    Warnings go to ``notice``; with ``strict = true`` in ``casereport.toml`` they are errors.
    """
    settings, expansion = expand_workspace(
        options.root, reports_dir=options.reports_dir, cli_vars=dict(options.cli_vars)
    )
    expansion = with_check_diagnostics(expansion)
    if settings.strict and expansion.warning_count:
        first = expansion.diagnostics[0]  # what the message below starts with
        strict_note = "" if first.severity == "error" else " (strict = true in casereport.toml)"
        expansion = expansion.strict()
    else:
        strict_note = ""
    if not expansion.ok:
        found = [d for d in expansion.diagnostics if d.severity == "error"]
        more = f" (and {len(found) - 1} more; run `casereport validate`)" if len(found) > 1 else ""
        error = DefinitionError(f"{found[0]}{strict_note}{more}")
        first = found[0]
        if first.file and first.line and first.column and first.end_column:
            # So the snippet on a terminal marks exactly the span (casereport.diagnostics).
            error.span_ends = {(first.file, first.line, first.column): first.end_column}
        raise error
    if notice is not None:
        for diagnostic in expansion.diagnostics:
            notice(str(diagnostic))
    return Workspace(
        settings=settings,
        expansion=expansion,
        state_path=options.state_path or settings.state_path,
        site_dir=options.site_dir or settings.site_dir,
        templates_dir=options.templates_dir or settings.templates_dir,
        parallelism=options.parallelism or settings.parallelism,
        timeout=options.timeout if options.timeout is not None else settings.timeout,
        max_rate_limit_wait=(
            options.max_rate_limit_wait
            if options.max_rate_limit_wait is not None
            else settings.max_rate_limit_wait
        ),
        emulator=options.emulator,
    )


def check_targets(workspace: Workspace, targets: Sequence[str], state: State | None) -> None:
    """Every ``--target`` names a report or an address, defined or still in state.

    A report or aggregation removed from the definitions can be targeted: that plans
    its deletion alone.
    """
    known = {r.name for r in workspace.reports} | {
        a.address for a in workspace.expansion.aggregations
    }
    if state is not None:
        known |= set(state.reports) | set(state.aggregations)
        known |= {entry.report for entry in state.aggregations.values()}
    for target in targets:
        base = target.split("[", 1)[0]
        if target not in known and base not in known:
            raise DefinitionError(
                f"--target {target}: no report or aggregation has this address; "
                f"see `casereport state list` or the report files"
            )


def check_templates_in_use(workspace: Workspace, state: State | None) -> None:
    """Before a plan: every template in use renders (see ``render.check``), or one line
    names the first problem's file and line. Skipped when the state records a report
    rendered from these very template files (their hash covers them all): they did."""
    hashes = workspace.template_hashes
    rendered = {r.template_hash for r in state.reports.values()} if state else set()
    if not workspace.reports or rendered.intersection(hashes.values()):
        return
    from casereport.render.check import check_templates

    problems = check_templates(workspace.reports, workspace.templates_dir)
    if problems:
        more = f" (and {len(problems) - 1} more: see casereport validate)" if problems[1:] else ""
        raise DefinitionError(f"{problems[0]}{more}")


def plan_workspace(
    workspace: Workspace,
    state: State | None,
    *,
    source: Source,
    targets: Sequence[str] = (),
    refresh_all: bool = False,
    now: datetime | None = None,
    pages: PageCache | None = None,
) -> Plan:
    """Plan a loaded workspace against a state (pure: no API call, no write); ``pages``
    reads its pages (see ``make_plan``)."""
    return make_plan(
        workspace.reports,
        state,
        source=source,
        site_dir=workspace.site_dir,
        template_hashes=workspace.template_hashes,
        now=now or clock.now(),
        targets=targets,
        refresh_all=refresh_all,
        pages=pages,
    )
