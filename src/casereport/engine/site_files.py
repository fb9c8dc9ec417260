"""What apply and render may touch: the site folder, its pages, and a saved plan's requests.

State comes from a CI cache and saved plans travel between jobs as artifacts, so neither
is trusted to say where files go or what is fetched. File names in both are checked when
they are read (``casereport.site.output_name_problem``); here, before anything is written:

- the site folder must be a folder of its own: not the workspace, not a folder holding
  the workspace or the state, and not a symbolic link;
- a page about to be written must not be a symbolic link (or anything but a file); one
  that exists but is not recorded in state is overwritten with a notice saying so;
- a saved plan's requests must match their fingerprints; it must fetch exactly the
  requests the definitions hold, at their addresses, and may only delete pages the state
  records;
- temporary files left beside the state are removed only when named exactly as the
  state's own atomic write names them.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Iterable
from pathlib import Path

from casereport.definitions.expand import ReportSpec, fingerprint
from casereport.engine.plan import DELETE, NOOP, RENDER, REQUEST_FIELDS, Plan
from casereport.errors import CaseReportError, PlanError
from casereport.fsutil import TEMP_FILE_RE
from casereport.site import INDEX_FILES, output_names
from casereport.state.model import State

Notice = Callable[[str], None]


def _contains(outer: Path, inner: Path) -> bool:
    return outer == inner or outer in inner.parents


def check_paths(site_dir: Path, root: Path, state_path: Path) -> None:
    """Refuse a site folder that holds the workspace or the state, and a site folder,
    state folder or state file that is a symbolic link.

    Apply overwrites and removes files in the site folder by name; pointed at ``.`` or
    a parent, it would do so among the workspace's own files. A link in place of the
    state or its folder (a restored cache may hold one) would be read and written through.
    """
    for what, path in (("state folder", state_path.parent), ("state file", state_path)):
        if path.is_symlink():
            raise CaseReportError(
                f"{path}: the {what} is a symbolic link; casereport never writes through "
                f"one: replace it with a real {what.split()[1]} (or use --state)"
            )
    site = site_dir.resolve()
    for what, path in (("the workspace", root), ("the state", state_path.parent)):
        if _contains(site, path.resolve()):
            raise CaseReportError(
                f"site_dir {site_dir}: contains {what} ({path}); casereport writes and "
                f"removes files there, so give the site a folder of its own (e.g. site/)"
            )
    if site_dir.is_symlink():
        raise CaseReportError(
            f"site_dir {site_dir}: is a symbolic link; casereport never writes through "
            f"one: give the site a real folder (e.g. site/)"
        )


def check_pages(
    site_dir: Path,
    state: State | None,
    reports: Iterable[ReportSpec],
    *,
    index: bool,
    notice: Notice | None,
) -> None:
    """Before pages are written: refuse links in their place, and say which files that
    state does not record (another program's, or an interrupted run's) are overwritten."""
    recorded: set[str] = set()
    if state is not None:
        recorded.update(state.site_outputs)
        for report in state.reports.values():
            recorded.update(report.outputs)
        for pages in state.forgotten_pages.values():
            recorded.update(pages)
    names = [name for report in reports for name in output_names(report.name, report.formats)]
    if index:
        names += INDEX_FILES
    for name in names:
        path = site_dir / name
        try:
            mode = os.lstat(path).st_mode
        except (FileNotFoundError, NotADirectoryError):
            continue
        if stat.S_ISLNK(mode):
            raise CaseReportError(
                f"{path}: is a symbolic link; casereport never writes through one: "
                f"remove it, and the page is written in its place"
            )
        if not stat.S_ISREG(mode):
            raise CaseReportError(f"{path}: is not a file; move it away to write the page")
        if name not in recorded and notice is not None:
            notice(
                f"{path} is not recorded in state (not written by casereport, or by an "
                f"interrupted run); overwriting it"
            )


def check_plan_pages(
    plan: Plan,
    site_dir: Path,
    reports: Iterable[ReportSpec],
    state: State | None,
    notice: Notice | None,
) -> None:
    """``check_pages`` for what ``plan`` writes: its reports' pages, and the index."""
    defined = {report.name: report for report in reports}
    renders = [defined[r.name] for r in plan.renders if r.name in defined]
    index = plan.index.action != NOOP or bool(renders) or bool(plan.deletions)
    check_pages(site_dir, state, renders, index=index, notice=notice)


def check_fingerprints(plan: Plan, path: Path) -> None:
    """Each request of a saved plan must be exactly the one its fingerprint names.

    Apply sends the request and stores it under the fingerprint, and the staleness check
    compares fingerprints with the definitions: a request edited in the file with its
    fingerprint kept would be fetched and recorded as if it were the defined one.
    """
    for change in plan.fetches:
        request = change.request or {}
        claimed = change.fingerprint or ""
        if set(request) != set(REQUEST_FIELDS) or claimed != fingerprint(
            request["query_filter"], request["groups"], request["limit"]
        ):
            raise PlanError(
                f"{path}: malformed plan ({change.address}: the request does not match its "
                f"fingerprint {claimed[:12]}); make a new one"
            )


def check_plan_matches(
    plan: Plan, path: Path, reports: Iterable[ReportSpec], state: State | None
) -> None:
    """Refuse a saved plan that fetches anything but the defined requests at their
    addresses, renders an undefined report, or deletes pages the state does not record.

    A plan made by ``casereport plan`` always passes; one edited after it was saved (a
    swapped query with its fingerprint kept, a page name swapped in) does not.
    """
    fix = "run `casereport plan --out` again"
    defined = {report.name: report for report in reports}
    specs = {spec.address: spec for report in defined.values() for spec in report.aggregations}
    for change in plan.fetches:
        spec = specs.get(change.address)
        if spec is None or spec.report != change.report:
            raise PlanError(
                f"Saved plan {path}: {change.address} is not an aggregation of the "
                f"definitions; {fix}"
            )
        if change.fingerprint != spec.fingerprint or dict(change.request or {}) != spec.request():
            raise PlanError(
                f"Saved plan {path}: {change.address} would fetch another request than the "
                f"one defined; {fix}"
            )
    recorded = state.reports if state is not None else {}
    for report in plan.reports:
        if report.action == RENDER and report.name not in defined:
            raise PlanError(f"Saved plan {path}: report {report.name} is not defined; {fix}")
        if report.action == DELETE:
            known = set(recorded[report.name].outputs) if report.name in recorded else set()
            if state is not None:
                known |= set(state.forgotten_pages.get(report.name, {}))
            if report.name in defined or not set(report.outputs) <= known:
                raise PlanError(
                    f"Saved plan {path}: report {report.name}: deletes pages the state does "
                    f"not record for a removed report ({', '.join(report.outputs)}); {fix}"
                )


def clean_state_leftovers(state_path: Path) -> None:
    """Remove temporary files a killed write of the state left beside it: those named
    exactly as its atomic write names them (``.<state>.<random>.tmp``), files only."""
    try:
        entries = list(os.scandir(state_path.parent))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        match = TEMP_FILE_RE.fullmatch(entry.name)
        ours = match is not None and match["name"] == state_path.name
        if ours and entry.is_file(follow_symlinks=False):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
