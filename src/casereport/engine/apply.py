"""Plan and apply a workspace: the pipeline from report files to a rendered site.

    load + expand ──▶ plan (against state) ──▶ fetch (client) ──▶ render ──▶ site/ + state

``plan_workspace`` is read-only. ``apply_plan`` fetches exactly what a plan says, each
distinct request once, concurrently; every result is appended to a journal beside the
state as it arrives (``journal``), so an interrupted apply loses only the requests in
flight and the next run does only what is left. Then the reports whose data all arrived
are rendered (only pages whose content changed are written), and the state, recording
results and pages together, is written once; the journal goes last. A report with a
failed fetch keeps its last good output and each failed address is named in the summary.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from casereport import clock
from casereport.definitions.expand import Expansion, ReportSpec, expand_workspace
from casereport.engine.plan import (
    DELETE,
    NOOP,
    PLAN_FORMAT_VERSION,
    Plan,
    format_timestamp,
    inputs_hash,
    make_plan,
)
from casereport.engine.site_files import (
    check_fingerprints,
    check_pages,
    check_paths,
    check_plan_matches,
    check_plan_pages,
    clean_state_leftovers,
)
from casereport.engine.sources import check_source_change, source_for
from casereport.errors import ApiError, CaseReportError, DefinitionError, PlanError, RenderError
from casereport.settings import DEFAULT_MAX_RATE_LIMIT_WAIT, DEFAULT_TIMEOUT, Settings
from casereport.state import journal
from casereport.state.model import (
    AggregationState,
    ReportState,
    Source,
    State,
    check_unchanged,
    data_hash,
    new_state,
    switch_source,
    with_result,
    write_state,
)
from casereport.state.refresh import UnfinishedRefresh
from casereport.state.refresh import started as refresh_started

#: The key of the site index among render failures (report names cannot contain a dot).
INDEX = "site.index"


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

    @property
    def reports(self) -> tuple[ReportSpec, ...]:
        return self.expansion.reports


def load_workspace(options: Options) -> Workspace:
    """Load settings and report files; every definition error is reported together."""
    settings, expansion = expand_workspace(
        options.root, reports_dir=options.reports_dir, cli_vars=dict(options.cli_vars)
    )
    if not expansion.ok:
        errors = [str(d) for d in expansion.diagnostics if d.severity == "error"]
        more = (
            f" (and {len(errors) - 1} more; run `casereport validate`)" if len(errors) > 1 else ""
        )
        raise DefinitionError(f"{errors[0]}{more}")
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


def _template_hashes(workspace: Workspace) -> dict[str, str]:
    from casereport.render.templates import template_hashes

    return template_hashes(workspace.templates_dir, {r.template for r in workspace.reports})


def plan_workspace(
    workspace: Workspace,
    state: State | None,
    *,
    source: Source,
    targets: Sequence[str] = (),
    refresh_all: bool = False,
    now: datetime | None = None,
) -> Plan:
    """Plan a loaded workspace against a state (pure: no API call, no write)."""
    return make_plan(
        workspace.reports,
        state,
        source=source,
        site_dir=workspace.site_dir,
        template_hashes=_template_hashes(workspace),
        now=now or clock.now(),
        targets=targets,
        refresh_all=refresh_all,
    )


# -- saved plans ----------------------------------------------------------------------


def save_plan(plan: Plan, path: Path) -> None:
    from casereport.engine.views import render_json
    from casereport.fsutil import atomic_write_text

    atomic_write_text(path, render_json(plan))


def read_plan(path: Path) -> Plan:
    """A saved plan; a corrupt or foreign file is a PlanError naming it."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlanError(
            f"{path}: no such plan file; create one with `casereport plan --out`"
        ) from None
    except (OSError, ValueError) as exc:
        raise PlanError(f"{path}: not a casereport plan ({exc})") from None
    if not isinstance(raw, dict) or raw.get("format_version") != PLAN_FORMAT_VERSION:
        raise PlanError(
            f"{path}: not a casereport plan of format {PLAN_FORMAT_VERSION}; "
            "make a new one with `casereport plan --out`"
        )
    try:
        plan = Plan.from_json(raw)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise PlanError(f"{path}: malformed plan ({exc}); make a new one") from None
    check_fingerprints(plan, path)
    return plan


def check_plan_is_current(
    plan: Plan, path: Path, state: State | None, workspace: Workspace, source: Source
) -> None:
    """Refuse a saved plan when the world moved on since it was made."""
    fix = "run `casereport plan --out` again"
    if plan.state_lineage is not None and state is None:
        raise PlanError(
            f"Saved plan {path} is stale: it was made against a state (serial "
            f"{plan.state_serial}), but {workspace.state_path} no longer exists; {fix}"
        )
    if plan.state_lineage is None and state is not None:
        raise PlanError(
            f"Saved plan {path} is stale: it was made with no state, but {workspace.state_path} "
            f"now exists; {fix}"
        )
    if state is not None and plan.state_lineage != state.lineage:
        raise PlanError(
            f"Saved plan {path} is stale: it was made for another state "
            f"(lineage {plan.state_lineage}, the state is {state.lineage}); {fix}"
        )
    if state is not None and plan.state_serial != state.serial:
        raise PlanError(
            f"Saved plan {path} is stale: the state changed since it was made "
            f"(serial {plan.state_serial} -> {state.serial}); {fix}"
        )
    if plan.inputs_hash != inputs_hash(workspace.reports, _template_hashes(workspace)):
        raise PlanError(
            f"Saved plan {path} is stale: report definitions, variables or templates changed "
            f"since it was made; {fix}"
        )
    if plan.source.identity != source.identity:
        raise PlanError(
            f"Saved plan {path} was made for {plan.source.describe()}, "
            f"but this run uses {source.describe()}; {fix} (or match --emulator)"
        )
    check_plan_matches(plan, path, workspace.reports, state)


# -- applying -------------------------------------------------------------------------


@dataclass
class Outcome:
    """What an apply did, for the summary line and the exit code."""

    fetched: int = 0  # addresses updated
    api_calls: int = 0  # distinct requests sent (each with its retries)
    rendered: list[str] = field(default_factory=list)
    deleted: int = 0
    failures: list[str] = field(default_factory=list)  # one line each
    interrupted: bool = False

    def summary(self) -> str:
        verb = "Apply interrupted" if self.interrupted else "Apply complete"
        if self.failures:
            verb = "Apply finished with errors"
        calls = "API call" if self.api_calls == 1 else "API calls"
        line = (
            f"{verb}: {self.fetched} fetched ({self.api_calls} {calls}), "
            f"{len(self.rendered)} {'report' if len(self.rendered) == 1 else 'reports'} "
            f"rendered, {self.deleted} deleted."
        )
        if self.failures:
            line += f" {len(self.failures)} failed:"
        return line


Progress = Callable[[int, int], None]


@contextlib.contextmanager
def _client_settings(plan: Plan, workspace: Workspace) -> Iterator[Any]:
    """Client settings for the plan's source; starts the emulator for the block if needed."""
    from casereport.engine.adhoc import api_settings

    with api_settings(use_emulator=plan.source.kind == "emulator") as settings:
        yield replace(
            settings,
            parallelism=workspace.parallelism,
            timeout=workspace.timeout,
            max_rate_limit_wait=workspace.max_rate_limit_wait,
        )


async def _fetch_all(
    client: Any,
    requests: Mapping[str, Mapping[str, Any]],
    on_result: Callable[[str, Mapping[str, Any] | None, ApiError | None], None],
    parallelism: int,
) -> None:
    """Fetch every request (by fingerprint) with ``parallelism`` workers; report each."""
    import asyncio  # here, not at the top: plan and render never need it (~35 ms)

    from casereport.api.messages import AggregateRequest

    pending = iter(sorted(requests))

    async def worker() -> None:
        for fingerprint in pending:
            raw = requests[fingerprint]
            request = AggregateRequest(
                query_filter=raw["query_filter"], groups=tuple(raw["groups"]), limit=raw["limit"]
            )
            try:
                result = await client.aggregate(request)
            except ApiError as exc:
                on_result(fingerprint, None, exc)
            else:
                on_result(
                    fingerprint,
                    {
                        "id": result.id,
                        "total": result.total,
                        "groups": [
                            {"group": g.group, "value": list(g.value)} for g in result.groups
                        ],
                    },
                    None,
                )

    workers = [
        asyncio.ensure_future(worker()) for _ in range(max(1, min(parallelism, len(requests))))
    ]
    try:
        await asyncio.gather(*workers)
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)


def _delivered(plan: Plan, outcome: Outcome) -> bool:
    """Whether the plan's source may become the state's: it sent a result, or none was due.

    Until then a change of source is not made: an apply whose every fetch failed (a
    mistyped API URL, a dead server) leaves the state's results and source as they were.
    """
    return outcome.fetched > 0 or not plan.fetches


def apply_plan(
    plan: Plan,
    workspace: Workspace,
    state: State | None,
    *,
    progress: Progress | None = None,
) -> tuple[Outcome, State]:
    """Carry out ``plan``; the caller holds the state lock. Returns the outcome and state.

    Order matters for a crash at any moment: results go to the journal as they arrive,
    pages are written (atomically) next, and the state, recording results and pages
    together, is written once at the end; only then is the journal removed. A run killed
    before that replays the journal and re-renders the pages the state does not record,
    so it converges on what an uninterrupted run leaves.
    """
    outcome = Outcome()
    failed: dict[str, list[str]] = {}  # report -> a line per failed address
    # A forced refresh is recorded until every result it covers is fetched again, so that
    # a run stopped halfway is finished by the next one (see ``state.refresh``).
    refresh = state.unfinished_refresh if state is not None else None
    if plan.refresh_all and plan.fetches:
        refresh = refresh_started(format_timestamp(clock.now()), plan.targets, refresh)
    with contextlib.ExitStack() as stack:
        # Client settings first: missing credentials stop the apply before it changes anything.
        settings = stack.enter_context(_client_settings(plan, workspace)) if plan.fetches else None
        on_disk = state
        # Another source's results are put aside (kept for a switch back), never mixed in.
        current = switch_source(on_disk if on_disk is not None else new_state(), plan.source)
        aggregations = dict(current.aggregations)
        log = None
        if settings is not None:
            log = _fetch(
                plan, workspace, settings, on_disk, aggregations, failed, outcome, progress, refresh
            )
    if not _delivered(plan, outcome) and on_disk is not None:
        current, aggregations = on_disk, dict(on_disk.aggregations)

    for change in plan.aggregations:
        if change.action == DELETE:
            aggregations.pop(change.address, None)
            outcome.deleted += 1
    current = replace(
        current,
        aggregations=aggregations,
        unfinished_refresh=refresh.left(aggregations) if refresh is not None else None,
    )
    if outcome.interrupted:
        # Keep what arrived and render nothing: the next apply does the rest.
        write_state(workspace.state_path, current, on_disk)
        journal.discard(workspace.state_path, log)
        raise KeyboardInterrupt

    # Pages are written next: not by a run whose lock was taken from it meanwhile.
    check_unchanged(workspace.state_path, on_disk)
    render_failures: dict[str, str] = {}
    current = _render(plan, workspace, current, set(failed), render_failures, outcome)
    current = write_state(workspace.state_path, current, on_disk)
    journal.discard(workspace.state_path, log)

    def kept(name: str) -> str:
        if name == INDEX:
            return "the last good index is kept"
        if name in current.reports:
            return f"report {name} keeps its last good output"
        return f"report {name} is not rendered"

    for name in sorted(failed):
        outcome.failures += [f"{line} ({kept(name)})" for line in sorted(failed[name])]
    for name, message in sorted(render_failures.items()):
        what = "site index" if name == INDEX else f"report {name}"
        outcome.failures.append(f"{what}: {message} ({kept(name)})")
    return outcome, current


def _fetch(
    plan: Plan,
    workspace: Workspace,
    settings: Any,
    on_disk: State | None,
    aggregations: dict[str, AggregationState],
    failed: dict[str, list[str]],
    outcome: Outcome,
    progress: Progress | None,
    refresh: UnfinishedRefresh | None,
) -> journal.Journal:
    """Fetch the plan's requests into ``aggregations``, journaling each result.

    Ctrl-C stops the fetching (requests in flight are dropped) and sets
    ``outcome.interrupted``; every result that arrived before it is kept. Returns the
    journal (closed), which only this run may remove.
    """
    from casereport.api.client import CasesClient

    requests = plan.fetch_requests
    by_fingerprint: dict[str, list[Any]] = {}
    for change in plan.fetches:
        assert change.fingerprint is not None
        by_fingerprint.setdefault(change.fingerprint, []).append(change)
    log = journal.Journal.open(
        workspace.state_path, on_disk, plan.source, refresh if plan.refresh_all else None
    )
    done = 0

    def on_result(
        fingerprint: str, result: Mapping[str, Any] | None, error: ApiError | None
    ) -> None:
        nonlocal done
        done += 1
        outcome.api_calls += 1
        if progress is not None:
            progress(done, len(requests))
        changes = by_fingerprint[fingerprint]
        if error is not None:
            for change in changes:
                failed.setdefault(change.report, []).append(f"{change.address}: {error.message}")
            return
        assert result is not None
        fetched_at = format_timestamp(clock.now())
        entries = []
        for change in changes:
            entry = with_result(
                aggregations.get(change.address),
                address=change.address,
                report=change.report,
                title=change.title,
                request=dict(change.request or {}),
                fingerprint=fingerprint,
                result=result,
                fetched_at=fetched_at,
            )
            aggregations[change.address] = entry
            entries.append(entry)
            outcome.fetched += 1
        log.append(entries)

    async def run() -> None:
        async with CasesClient(settings) as client:
            await _fetch_all(client, requests, on_result, workspace.parallelism)

    import asyncio

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        outcome.interrupted = True
    finally:
        log.close()
    return log


def _render(
    plan: Plan,
    workspace: Workspace,
    state: State,
    skip: set[str],
    failures: dict[str, str],
    outcome: Outcome,
) -> State:
    """Render the plan's reports (but those in ``skip``) and the index; write only pages.

    Returns ``state`` with the rendered reports and removed ones recorded; the caller
    writes it. A report that fails to render is put in ``failures`` and keeps its pages.
    """
    from casereport.render.templates import environment
    from casereport.render.workers import render_site_pages
    from casereport.render.write import remove_site_files, write_site_files

    site_dir = workspace.site_dir
    env = environment(workspace.templates_dir)
    hashes = _template_hashes(workspace)
    reports_by_name = {r.name: r for r in workspace.reports}
    reports: dict[str, ReportState] = dict(state.reports)
    forgotten = dict(state.forgotten_pages)
    to_render = [
        reports_by_name[change.name]
        for change in plan.reports
        if change.action not in (DELETE, NOOP) and change.name not in skip
    ]
    # Whether the index is written is known once the reports are done (below); it is
    # rendered alongside them whenever it may be, since that costs no extra time.
    index_may_change = (
        plan.index.action != NOOP
        or bool(to_render)
        or any(change.action == DELETE for change in plan.reports)
    )
    # Each report's pages are written as they are rendered; what comes back is their hashes.
    site = render_site_pages(
        to_render,
        state.aggregations,
        state.source,
        env,
        site_dir,
        {name: report.outputs for name, report in reports.items()},
        index=workspace.reports if index_may_change else None,
    )
    rendered = site.reports
    for change in plan.reports:
        if change.action == DELETE:
            remove_site_files(site_dir, change.outputs)
            reports.pop(change.name, None)
            forgotten.pop(change.name, None)
            outcome.deleted += 1
            continue
        if change.name not in rendered:
            continue
        spec = reports_by_name[change.name]
        written = rendered[change.name]
        if isinstance(written, RenderError):
            failures[change.name] = written.message
            continue
        recorded = reports[spec.name].outputs if spec.name in reports else {}
        recorded = {**forgotten.pop(spec.name, {}), **recorded}
        remove_site_files(site_dir, set(recorded) - set(written))
        reports[spec.name] = ReportState(
            name=spec.name,
            definition_hash=spec.definition_hash,
            template_hash=hashes[spec.template],
            data_hash=data_hash(
                [a.address for a in spec.aggregations], state.aggregations, state.source
            ),
            outputs=written,
        )
        outcome.rendered.append(spec.name)
    site_outputs = dict(state.site_outputs)
    if plan.index.action != NOOP or outcome.rendered or reports != state.reports:
        assert site.index is not None, "rendered whenever it may change"
        if isinstance(site.index, RenderError):
            failures[INDEX] = site.index.message
        else:
            site_outputs = write_site_files(site_dir, site.index, state.site_outputs)
    return replace(state, reports=reports, site_outputs=site_outputs, forgotten_pages=forgotten)


def render_site(workspace: Workspace, state: State | None) -> list[str]:
    """Re-render every report and the index from state, without calling the API."""
    if state is None:
        raise CaseReportError(
            f"no state at {workspace.state_path}: nothing to render yet; run `casereport apply`"
        )
    plan = make_plan(
        workspace.reports,
        state,
        source=state.source or Source("none", "none"),
        site_dir=workspace.site_dir,
        template_hashes=_template_hashes(workspace),
        now=clock.now(),
    )
    # Render everything defined, and remove what state records but the definitions dropped.
    forced = replace(
        plan,
        aggregations=(),
        reports=tuple(
            replace(r, action="render", reasons=("render requested",)) if r.action == NOOP else r
            for r in plan.reports
        ),
        index=replace(plan.index, action="render", reasons=("render requested",)),
    )
    outcome = Outcome()
    failures: dict[str, str] = {}
    rendered = _render(forced, workspace, state, set(), failures, outcome)
    # Rendering changes only what state records of pages; when none changed, the state is
    # as it was, and saying so here is cheaper than write_state comparing all its content.
    pages = (rendered.reports, rendered.site_outputs, rendered.forgotten_pages)
    if pages != (state.reports, state.site_outputs, state.forgotten_pages):
        write_state(workspace.state_path, rendered, state)
    if failures:
        name, message = min(failures.items())
        raise RenderError(f"{'site index' if name == INDEX else f'report {name}'}: {message}")
    return outcome.rendered


def _clean_partial_writes(workspace: Workspace) -> None:
    """Remove temporary files a killed run left beside the site's pages and the state."""
    from casereport.render.write import clean_partial_writes

    clean_partial_writes(workspace.site_dir)
    clean_state_leftovers(workspace.state_path)


# -- the commands' library functions ---------------------------------------------------


Notice = Callable[[str], None]


def _lock(workspace: Workspace, operation: str, options: Options, notice: Notice | None) -> Any:
    from casereport.state.lock import shared_state_lock, state_lock

    if operation == "plan":
        if not workspace.state_path.parent.exists():
            # Nothing to lock yet, and a plan must leave no trace in a fresh workspace.
            return contextlib.nullcontext()
        # Plans only read: they run side by side and wait only for a run that writes.
        return shared_state_lock(workspace.state_path, timeout=options.lock_timeout, notice=notice)
    return state_lock(workspace.state_path, operation, timeout=options.lock_timeout, notice=notice)


def _on_disk(plan: Plan, disk: State | None) -> Plan:
    """The plan as made against the state file on disk.

    Planning reads the state with an interrupted apply's journal replayed, but a saved
    plan must name the state file as it is: applying it folds the journal in first, and
    the plan is checked against the file from before that.
    """
    return replace(
        plan,
        state_lineage=disk.lineage if disk is not None else None,
        state_serial=disk.serial if disk is not None else None,
    )


def _plan_for(workspace: Workspace, state: State | None, source: Source, options: Options) -> Plan:
    """The plan the command line asked for: its targets checked, its refresh applied."""
    check_targets(workspace, options.targets, state)
    return plan_workspace(
        workspace, state, source=source, targets=options.targets, refresh_all=options.refresh_all
    )


def run_plan(options: Options, *, out: Path | None = None, notice: Notice | None = None) -> Plan:
    """``casereport plan``: plan under the lock, never writing state; save it if asked."""
    workspace = load_workspace(options)
    source = source_for(options.use_emulator)
    with _lock(workspace, "plan", options, notice):
        disk, state = journal.read_both(workspace.state_path)
        plan = _plan_for(workspace, state, source, options)
        plan = _on_disk(plan, disk)
    if out is not None:
        save_plan(plan, out)
    return plan


def run_apply(
    options: Options,
    plan_file: Path | None,
    *,
    approve: Callable[[Plan], bool],
    progress: Progress | None = None,
    notice: Notice | None = None,
    auto_approve: bool = False,
) -> tuple[Plan, Outcome | None]:
    """``casereport apply [PLANFILE]``: plan (or read the saved plan), approve, apply.

    ``approve`` shows the plan and says whether to go on; it is not asked for a saved
    plan (applying a saved plan is the approval) nor when there is nothing to do. Without
    anyone to confirm it (``auto_approve``, or a saved plan) a change of data source is
    refused unless ``options.allow_source_change``.
    """
    workspace = load_workspace(options)
    check_paths(workspace.site_dir, options.root, workspace.state_path)
    source = source_for(options.use_emulator)
    with _lock(workspace, "apply", options, notice):
        if plan_file is not None:
            plan = read_plan(plan_file)
            # A plan made against the emulator applies against it without repeating --emulator.
            if plan.source.kind == "emulator":
                source = source_for(True)
            disk, _ = journal.read_both(workspace.state_path)
            check_plan_is_current(plan, plan_file, disk, workspace, source)
            check_source_change(plan, workspace.state_path, allowed=options.allow_source_change)
        state = journal.recover(workspace.state_path)
        _clean_partial_writes(workspace)
        if plan_file is None:
            plan = _plan_for(workspace, state, source, options)
            if not plan.has_changes:
                return plan, None
            if auto_approve:
                check_source_change(plan, workspace.state_path, allowed=options.allow_source_change)
            if not approve(plan):
                return plan, None
        check_plan_pages(plan, workspace.site_dir, workspace.reports, state, notice)
        outcome, _ = apply_plan(plan, workspace, state, progress=progress)
    return plan, outcome


def run_render(options: Options, *, notice: Notice | None = None) -> list[str]:
    """``casereport render``: re-render the site from state, without calling the API."""
    workspace = load_workspace(options)
    check_paths(workspace.site_dir, options.root, workspace.state_path)
    with _lock(workspace, "render", options, notice):
        state = journal.recover(workspace.state_path)
        _clean_partial_writes(workspace)
        if state is not None:
            check_pages(workspace.site_dir, state, workspace.reports, index=True, notice=notice)
        return render_site(workspace, state)
