"""Plan and apply a workspace: the pipeline from report files to a rendered site.

    load + expand ──▶ plan (against state) ──▶ fetch (client) ──▶ render ──▶ site/ + state

``plan_workspace`` (in ``engine.workspace``) is read-only. ``apply_plan`` fetches exactly
what a plan says, each distinct request once, concurrently; every result is appended to a
journal beside the state as it arrives (``journal``), so an interrupted apply loses only
the requests in flight and the next run does only what is left. Then the reports whose
data all arrived are rendered (only pages whose content changed are written), and the
state, recording results and pages together, is written once; the journal goes last. A
report with a failed fetch keeps its last good output and each failed address is named
in the summary.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from casereport import clock
from casereport.engine.checks import OnChecks, tell_checks
from casereport.engine.plan import (
    DELETE,
    NOOP,
    PLAN_FORMAT_VERSION,
    Plan,
    format_timestamp,
    inputs_hash,
    render_plan,
)
from casereport.engine.site_files import (
    check_fingerprints,
    check_pages,
    check_paths,
    check_plan_matches,
    check_plan_pages,
    clean_state_leftovers,
)
from casereport.engine.sources import check_source_change, require_credentials, source_for
from casereport.engine.workspace import (
    Notice,
    Options,
    Workspace,
    check_targets,
    check_templates_in_use,
    load_workspace,
    plan_workspace,
)
from casereport.errors import ApiError, CaseReportError, PlanError, RenderError
from casereport.numbers import count_of, format_number
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
from casereport.state.moves import apply_moves
from casereport.state.page_cache import load_page_cache, page_cache_path
from casereport.state.refresh import UnfinishedRefresh
from casereport.state.refresh import started as refresh_started

if TYPE_CHECKING:
    from casereport.engine.delivery import NotifyOutcome
    from casereport.engine.events import Event, Listener, Summary


def _nobody(event: Event) -> None:
    """The listener of a run nobody follows."""


#: The key of the site index among render failures (report names cannot contain a dot).
INDEX = "site.index"


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
    if plan.inputs_hash != inputs_hash(workspace.reports, workspace.template_hashes):
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
    moved: int = 0  # results moved to a new address (``moved:``)
    failures: list[str] = field(default_factory=list)  # one line each
    interrupted: bool = False
    stopped: str | None = None  # why fetching stopped early (credentials refused)
    notified: NotifyOutcome | None = None  # what delivery did after the state was written

    def summary(self) -> str:
        verb = "Apply interrupted" if self.interrupted else "Apply complete"
        if self.failures:
            verb = "Apply finished with errors"
        n = format_number  # (as pages write numbers: 12,345)
        line = (
            f"{verb}: {n(self.fetched)} fetched ({count_of(self.api_calls, 'API call')}), "
            f"{count_of(len(self.rendered), 'report')} rendered, {n(self.deleted)} deleted"
            + (f", {n(self.moved)} moved." if self.moved else ".")
        )
        if self.failures:
            line += f" {n(len(self.failures))} failed:"
        return line

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0

    def summary_event(self) -> Summary:
        """The summary as the last event of the run."""
        from casereport.engine.events import Summary

        return Summary(
            message=self.summary(),
            exit_code=self.exit_code,
            fetched=self.fetched,
            api_calls=self.api_calls,
            rendered=len(self.rendered),
            deleted=self.deleted,
            moved=self.moved,
            failures=tuple(self.failures),
            interrupted=self.interrupted,
        )


#: Told of each answer: its fingerprint, the result or the error, and how long it took.
OnResult = Callable[[str, Mapping[str, Any] | None, ApiError | None, float], None]


@contextlib.contextmanager
def _client_settings(plan: Plan, workspace: Workspace) -> Iterator[Any]:
    """Client settings for the plan's source; starts the emulator for the block if needed."""
    from casereport.engine.adhoc import api_settings

    use_emulator = plan.source.kind == "emulator"
    with api_settings(use_emulator=use_emulator, emulator=workspace.emulator) as settings:
        yield replace(
            settings,
            parallelism=workspace.parallelism,
            timeout=workspace.timeout,
            max_rate_limit_wait=workspace.max_rate_limit_wait,
        )


async def _fetch_all(
    client: Any,
    requests: Mapping[str, Mapping[str, Any]],
    on_result: OnResult,
    parallelism: int,
) -> list[ApiError]:
    """Fetch every request (by fingerprint) with ``parallelism`` workers; report each.

    The first refusal of the credentials (401 or 403) stops the fetching: no request is
    sent after it (the ones already in flight still report a result that arrives); it is
    returned (with those of requests in flight), and the requests it left unsent are
    not reported.
    """
    import asyncio  # here, not at the top: plan and render never need it (~35 ms)

    from casereport.api.messages import AggregateRequest
    from casereport.errors import AuthenticationError, ForbiddenError

    pending = iter(sorted(requests))
    refused: list[ApiError] = []

    async def worker() -> None:
        for fingerprint in pending:
            if refused:
                return
            raw = requests[fingerprint]
            request = AggregateRequest(
                query_filter=raw["query_filter"], groups=tuple(raw["groups"]), limit=raw["limit"]
            )
            started = clock.monotonic()
            try:
                result = await client.aggregate(request)
            except (AuthenticationError, ForbiddenError) as exc:
                refused.append(exc)  # every other answer would say the same: stop
                return
            except ApiError as exc:
                on_result(fingerprint, None, exc, clock.monotonic() - started)
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
                    clock.monotonic() - started,
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
    return refused


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
    listener: Listener = _nobody,
) -> tuple[Outcome, State]:
    """Carry out ``plan``; the caller holds the state lock. Returns the outcome and state.

    Order matters for a crash at any moment: results go to the journal as they arrive,
    pages are written (atomically) next, and the state, recording results and pages
    together, is written once at the end; only then is the journal removed. A run killed
    before that replays the journal and re-renders the pages the state does not record,
    so it converges on what an uninterrupted run leaves. ``listener`` is told what
    happens as it happens (``engine.events``).
    """
    outcome = Outcome(moved=len(plan.moves))
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
        # Moves first: a moved result is the one a fetch adds to (history kept).
        moves = {c.moved_from: c.address for c in plan.moves if c.moved_from is not None}
        aggregations = apply_moves(current.aggregations, moves)
        log = None
        if settings is not None:
            log = _fetch(
                plan, workspace, settings, on_disk, aggregations, failed, outcome, listener, refresh
            )
    if not _delivered(plan, outcome) and on_disk is not None:
        current, aggregations = on_disk, apply_moves(on_disk.aggregations, moves)

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
    current = _render(plan, workspace, current, set(failed), render_failures, outcome, listener)
    current = write_state(workspace.state_path, current, on_disk)
    journal.discard(workspace.state_path, log)

    def kept(name: str) -> str:
        if name == INDEX:
            return "the last good index is kept"
        if name in current.reports:
            return f"report {name} keeps its last good output"
        return f"report {name} is not rendered"

    if outcome.stopped is not None:
        unfetched = [name for name in sorted(failed) if not failed[name]]
        outcome.failures.append(
            f"{outcome.stopped} ({_kept_count(unfetched, current)})"
            if unfetched
            else outcome.stopped
        )
    for name in sorted(failed):
        outcome.failures += [f"{line} ({kept(name)})" for line in sorted(failed[name])]
    for name, message in sorted(render_failures.items()):
        what = "site index" if name == INDEX else f"report {name}"
        outcome.failures.append(f"{what}: {message} ({kept(name)})")
    return outcome, current


def _kept_count(names: Sequence[str], state: State) -> str:
    """What becomes of reports left without their new results, in a few words."""
    kept = sum(1 for name in names if name in state.reports)
    reports = "report keeps its" if kept == 1 else "reports keep their"
    missing = len(names) - kept
    unrendered = f", {missing} not rendered" if missing else ""
    return f"{kept} {reports} last good output{unrendered}"


def _fetch(
    plan: Plan,
    workspace: Workspace,
    settings: Any,
    on_disk: State | None,
    aggregations: dict[str, AggregationState],
    failed: dict[str, list[str]],
    outcome: Outcome,
    listener: Listener,
    refresh: UnfinishedRefresh | None,
) -> journal.Journal:
    """Fetch the plan's requests into ``aggregations``, journaling each result.

    Ctrl-C stops the fetching (requests in flight are dropped) and sets
    ``outcome.interrupted``; every result that arrived before it is kept. Returns the
    journal (closed), which only this run may remove.
    """
    from casereport.api.client import CasesClient
    from casereport.engine.events import Failed, Fetched, Started

    requests = plan.fetch_requests
    by_fingerprint: dict[str, list[Any]] = {}
    for change in plan.fetches:
        assert change.fingerprint is not None
        by_fingerprint.setdefault(change.fingerprint, []).append(change)
    log = journal.Journal.open(
        workspace.state_path, on_disk, plan.source, refresh if plan.refresh_all else None
    )
    reported: set[str] = set()
    listener(Started("fetch", len(plan.fetches)))

    def on_result(
        fingerprint: str,
        result: Mapping[str, Any] | None,
        error: ApiError | None,
        duration: float,
    ) -> None:
        reported.add(fingerprint)
        outcome.api_calls += 1
        changes = by_fingerprint[fingerprint]
        if error is not None:
            for change in changes:
                failed.setdefault(change.report, []).append(f"{change.address}: {error.message}")
                listener(Failed("fetch", error.message, change.address, change.report))
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
                retention=workspace.settings.history,
            )
            aggregations[change.address] = entry
            entries.append(entry)
            outcome.fetched += 1
        log.append(entries)
        total, groups = float(result["total"]), len(result["groups"])
        for change in changes:
            listener(Fetched(change.address, change.report, total, groups, duration))

    refused: list[ApiError] = []

    async def run() -> None:
        async with CasesClient(settings) as client:
            refused.extend(await _fetch_all(client, requests, on_result, workspace.parallelism))

    import asyncio

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        outcome.interrupted = True
    finally:
        log.close()
    if refused:
        # One line for them all: the key problem, and what was not asked for.
        outcome.api_calls += len(refused)
        unsent = [f for f in requests if f not in reported]
        for fingerprint in unsent:
            for change in by_fingerprint[fingerprint]:
                failed.setdefault(change.report, [])
        outcome.stopped = (
            f"{refused[0].message}; the apply stopped there: {len(unsent)} of {len(requests)} "
            "requests not fetched, every result fetched before it kept"
        )
        listener(Failed("fetch", outcome.stopped))
    return log


def _render(
    plan: Plan,
    workspace: Workspace,
    state: State,
    skip: set[str],
    failures: dict[str, str],
    outcome: Outcome,
    listener: Listener = _nobody,
) -> State:
    """Render the plan's reports (but those in ``skip``) and the index; write only pages.

    Returns ``state`` with the rendered reports and removed ones recorded; the caller
    writes it. A report that fails to render is put in ``failures`` and keeps its pages.
    """
    from casereport.engine.events import Failed, Rendered, Started
    from casereport.render.templates import environment
    from casereport.render.workers import render_site_pages
    from casereport.render.write import remove_site_files, write_site_files

    site_dir = workspace.site_dir
    env = environment(
        workspace.templates_dir,
        site_title=workspace.settings.site_title,
        pdf_page_size=workspace.settings.pdf_page_size,
    )
    hashes = workspace.template_hashes
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
    listener(Started("render", len(to_render)))

    def on_report(name: str, written: Mapping[str, str] | RenderError) -> None:
        if isinstance(written, RenderError):
            listener(Failed("render", written.message, name, name))
        else:
            listener(Rendered(name, tuple(written)))

    # Each report's pages are written as they are rendered; what comes back is their hashes.
    site = render_site_pages(
        to_render,
        state.aggregations,
        state.source,
        env,
        site_dir,
        {name: report.outputs for name, report in reports.items()},
        index=workspace.reports if index_may_change else None,
        on_report=on_report,
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
            listener(Failed("render", f"site index: {site.index.message}"))
        else:
            site_outputs = write_site_files(site_dir, site.index, state.site_outputs)
            listener(Rendered(None, tuple(site_outputs)))
    return replace(state, reports=reports, site_outputs=site_outputs, forgotten_pages=forgotten)


def render_site(
    workspace: Workspace, state: State | None, listener: Listener = _nobody
) -> list[str]:
    """Re-render every report and the index from state, without calling the API."""
    if state is None:
        raise CaseReportError(
            f"no state at {workspace.state_path}: nothing to render yet; run `casereport apply`"
        )
    plan = render_plan(workspace.reports, state, now=clock.now())
    outcome = Outcome()
    failures: dict[str, str] = {}
    rendered = _render(plan, workspace, state, set(), failures, outcome, listener)
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
    clean_state_leftovers(page_cache_path(workspace.settings.state_path, workspace.site_dir))


# -- the commands' library functions ---------------------------------------------------


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
    """The plan the command line asked for: its targets checked, its refresh applied.

    The pages are read through this machine's page cache, and what the plan read is
    written back to it (see ``casereport.state.page_cache``)."""
    check_targets(workspace, options.targets, state)
    cache_path = page_cache_path(workspace.settings.state_path, workspace.site_dir)
    pages = load_page_cache(cache_path, workspace.site_dir)
    plan = plan_workspace(
        workspace,
        state,
        source=source,
        targets=options.targets,
        refresh_all=options.refresh_all,
        pages=pages,
    )
    pages.save(cache_path, complete=not options.targets)
    return plan


def run_plan(options: Options, *, out: Path | None = None, notice: Notice | None = None) -> Plan:
    """``casereport plan``: plan under the lock, never writing state; save it if asked."""
    workspace = load_workspace(options, notice)
    source = source_for(options.use_emulator, emulator=options.emulator)
    require_credentials(source)
    with _lock(workspace, "plan", options, notice):
        disk, state = journal.read_both(workspace.state_path)
        check_templates_in_use(workspace, state)
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
    listener: Listener = _nobody,
    notice: Notice | None = None,
    auto_approve: bool = False,
    on_checks: OnChecks | None = None,
) -> tuple[Plan, Outcome | None]:
    """``casereport apply [PLANFILE]``: plan (or read the saved plan), approve, apply.

    ``approve`` shows the plan and says whether to go on; it is not asked for a saved
    plan (applying a saved plan is the approval) nor when there is nothing to do. Without
    anyone to confirm it (``auto_approve``, or a saved plan) a change of data source is
    refused unless ``options.allow_source_change``. ``listener`` is told of the plan
    (``Planned``, once it is known, before ``approve``), of the apply's progress and of
    each check evaluated from the state it ends with (``Check``, also handed together to
    ``on_checks``).
    """
    workspace = load_workspace(options, notice)
    check_paths(workspace.site_dir, options.root, workspace.state_path)
    source = source_for(options.use_emulator, emulator=options.emulator)
    if plan_file is None:
        require_credentials(source)
    from casereport.engine.events import Planned

    with _lock(workspace, "apply", options, notice):
        if plan_file is not None:
            plan = read_plan(plan_file)
            # A plan made against the emulator applies against it without repeating --emulator.
            if plan.source.kind == "emulator":
                source = source_for(True)
            disk, _ = journal.read_both(workspace.state_path)
            check_plan_is_current(plan, plan_file, disk, workspace, source)
            check_source_change(plan, workspace.state_path, allowed=options.allow_source_change)
            listener(Planned(plan))
        state = journal.recover(workspace.state_path)
        _clean_partial_writes(workspace)
        if plan_file is None:
            check_templates_in_use(workspace, state)
            plan = _plan_for(workspace, state, source, options)
            listener(Planned(plan))
            if not plan.has_changes:
                tell_checks(workspace, state, listener, on_checks)
                return plan, None
            if auto_approve:
                check_source_change(plan, workspace.state_path, allowed=options.allow_source_change)
            if not approve(plan):
                return plan, None
        check_plan_pages(plan, workspace.site_dir, workspace.reports, state, notice)
        outcome, written = apply_plan(plan, workspace, state, listener=listener)
        checks = tell_checks(workspace, written, listener, on_checks)
        if workspace.settings.notify:
            from casereport.engine.delivery import notify_after_apply

            outcome.notified = notify_after_apply(workspace, written, checks)
    return plan, outcome


def run_render(
    options: Options,
    *,
    notice: Notice | None = None,
    listener: Listener = _nobody,
    on_checks: OnChecks | None = None,
) -> list[str]:
    """``casereport render``: re-render the site from state, without calling the API;
    checks as in ``run_apply``."""
    workspace = load_workspace(options, notice)
    check_paths(workspace.site_dir, options.root, workspace.state_path)
    with _lock(workspace, "render", options, notice):
        state = journal.recover(workspace.state_path)
        _clean_partial_writes(workspace)
        if state is not None:
            check_pages(workspace.site_dir, state, workspace.reports, index=True, notice=notice)
        rendered = render_site(workspace, state, listener)
    tell_checks(workspace, state, listener, on_checks)
    return rendered
