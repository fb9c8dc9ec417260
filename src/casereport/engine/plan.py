"""Plan: compare the desired reports with the state and decide what apply must do.

The plan is plain, serialisable data; ``views`` prints it for people (human, Markdown) and
machines (JSON). Planning is pure: it reads the expansion, the state, the site directory's
files (to notice drift) and a clock, and never calls the API or writes anything.

Aggregation actions (one per address):
    create    new address
    update    the request (query_filter, groups or limit) changed: ``changes`` holds
              ``old -> new`` per field
    refresh   the result is older than the report's ``refresh``, the report says
              ``refresh: always``, ``--refresh`` was given, or an earlier ``--refresh``
              was stopped before it fetched this result again (``state.refresh``)
    replace   the data source changed (emulator <-> Datadog, another site or API URL); the
              plan's ``previous_source`` names the old one; ``changes`` lists request
              fields that changed as well. When the state kept results of the new source
              from before (``previous_sources``), they come back instead: the plan is made
              against them (refresh, no-op, ...) and still names ``previous_source``
    delete    the address is no longer defined (or its report was removed)
    no-op     nothing to do
An aggregation whose result in state is under an old address that a ``moved:`` entry
names carries ``moved_from``: apply moves the result there first (history kept), then
does the action, planned against the moved result (often a no-op). The old address is
not deleted. Moves are counted (``moved``) and end the summary (``, N to move``).
Report actions: ``render`` (with its reasons; ``new`` on a report's first render),
``delete`` (its files go), ``no-op``. Render reasons: ``new report``, ``definition
changed``, ``template changed``, ``data to fetch`` (one of its aggregations is fetched),
``data changed since the last render`` (results in state the pages do not show yet, e.g.
after an interrupted apply), ``new output F``, ``output F is missing``, ``output F was
edited by hand``. The site index is re-rendered whenever any report is rendered or
deleted (``reports changed``), and when its own files are new, missing or edited by hand
(not under ``--target``, which limits a run to the targeted reports).

``--target ADDR`` keeps the aggregations whose address is ADDR or starts with ``ADDR[``
(a ``for_each`` base address), and every aggregation of a report named ADDR; a deletion is
planned only when targeted the same way.

The summary line counts, and every view shows the same numbers (``PlanCounts``):
    N to fetch     aggregation addresses with create, update, refresh or replace (equal
                   requests are still fetched once by apply; this counts addresses)
    a new          create
    b changed      update + replace (the request or the data source changed)
    c stale        refresh
    M reports      reports to render; the site index is not counted when it is re-rendered
                   along with report changes, and counts as one when it is the only page
                   to write (its own files missing or edited by hand)
    K to delete    aggregation addresses removed from state + reports whose pages are
                   removed (removing a report of 5 aggregations is 6 to delete)
``1 report`` is singular. Without any change the line is ``No changes. Reports are up to
date.``
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from casereport import __version__, clock
from casereport.definitions.expand import AggregationSpec, ReportSpec
from casereport.engine.moves import planned_moves
from casereport.numbers import format_number
from casereport.site import INDEX_FILES, is_report_name, output_name_problem, output_names
from casereport.state.model import (
    AggregationState,
    Source,
    State,
    data_hash,
    source_key,
    switch_source,
)
from casereport.state.page_cache import PageCache
from casereport.state.refresh import UnfinishedRefresh

PLAN_FORMAT_VERSION = 1

CREATE = "create"
UPDATE = "update"
REFRESH = "refresh"
REPLACE = "replace"
DELETE = "delete"
NOOP = "no-op"
RENDER = "render"

FETCH_ACTIONS = (CREATE, UPDATE, REFRESH, REPLACE)
AGGREGATION_ACTIONS = (*FETCH_ACTIONS, DELETE, NOOP)
REPORT_ACTIONS = (RENDER, DELETE, NOOP)
REQUEST_FIELDS = ("query_filter", "groups", "limit")
INDEX_NAME = "index"


@dataclass(frozen=True)
class FieldChange:
    """One changed request field: ``name: old -> new``."""

    name: str
    old: Any
    new: Any


@dataclass(frozen=True)
class AggregationChange:
    """What apply does with one aggregation address."""

    address: str
    report: str
    action: str
    reason: str
    title: str = ""
    request: Mapping[str, Any] | None = None  # the request to fetch (None for delete)
    fingerprint: str | None = None
    changes: tuple[FieldChange, ...] = ()  # for update (and replace with a changed request)
    fetched_at: str | None = None  # of the result in state, if any
    moved_from: str | None = None  # the address its result in state moves from first

    @property
    def fetches(self) -> bool:
        return self.action in FETCH_ACTIONS


@dataclass(frozen=True)
class ReportChange:
    """What apply does with one report's pages (or, named ``index``, the site index)."""

    name: str
    action: str
    reasons: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()  # files written (render) or removed (delete)
    new: bool = False  # rendered for the first time (nothing recorded in state yet)


@dataclass(frozen=True)
class PlanCounts:
    """The numbers of the summary line; every view shows these."""

    to_fetch: int
    new: int
    changed: int
    stale: int
    to_render: int
    to_delete: int
    unchanged_aggregations: int
    unchanged_reports: int
    moved: int = 0

    def to_json(self) -> dict[str, int]:
        moved = {"moved": self.moved} if self.moved else {}  # added within format 1
        return {
            **moved,
            "to_fetch": self.to_fetch,
            "new": self.new,
            "changed": self.changed,
            "stale": self.stale,
            "to_render": self.to_render,
            "to_delete": self.to_delete,
            "unchanged_aggregations": self.unchanged_aggregations,
            "unchanged_reports": self.unchanged_reports,
        }


@dataclass(frozen=True)
class Plan:
    """Everything ``apply`` will do, and what it was planned against."""

    source: Source
    aggregations: tuple[AggregationChange, ...]
    reports: tuple[ReportChange, ...]
    index: ReportChange
    state_lineage: str | None
    state_serial: int | None
    inputs_hash: str
    created_at: str
    targets: tuple[str, ...] = ()
    refresh_all: bool = False
    previous_source: Source | None = None  # the state's source, when it differs
    tool_version: str = __version__
    format_version: int = PLAN_FORMAT_VERSION

    # -- derived views of the plan ---------------------------------------------------

    @property
    def fetches(self) -> tuple[AggregationChange, ...]:
        return tuple(c for c in self.aggregations if c.fetches)

    @property
    def fetch_requests(self) -> dict[str, Mapping[str, Any]]:
        """Unique requests to fetch, by fingerprint: equal requests are fetched once."""
        unique: dict[str, Mapping[str, Any]] = {}
        for change in self.fetches:
            assert change.fingerprint is not None and change.request is not None
            unique.setdefault(change.fingerprint, change.request)
        return unique

    @property
    def renders(self) -> tuple[ReportChange, ...]:
        return tuple(r for r in self.reports if r.action == RENDER)

    @property
    def deletions(self) -> tuple[AggregationChange | ReportChange, ...]:
        return (
            *(c for c in self.aggregations if c.action == DELETE),
            *(r for r in self.reports if r.action == DELETE),
        )

    @property
    def restores_source(self) -> bool:
        """A change of source that brings back the results kept for it (no replace)."""
        return self.previous_source is not None and all(
            c.action != REPLACE for c in self.aggregations
        )

    def source_note(self) -> str | None:
        """What the views say of a change of source, if any."""
        if self.previous_source is None:
            return None
        if self.restores_source:
            return (
                "results kept from an earlier run against this source come back, "
                "the others are kept for a switch back."
            )
        return "every aggregation is fetched again."

    @property
    def moves(self) -> tuple[AggregationChange, ...]:
        return tuple(c for c in self.aggregations if c.moved_from is not None)

    @property
    def has_changes(self) -> bool:
        return bool(
            self.fetches
            or self.renders
            or self.deletions
            or self.index.action != NOOP
            or self.moves
        )

    def counts(self) -> PlanCounts:
        """The summary's numbers; see the module docstring for what each counts."""
        by_action = dict.fromkeys(AGGREGATION_ACTIONS, 0)
        for change in self.aggregations:
            by_action[change.action] = by_action.get(change.action, 0) + 1
        renders = len(self.renders)
        report_deletes = sum(1 for r in self.reports if r.action == DELETE)
        # The index follows report changes without being counted; alone, it is a page to write.
        index_alone = self.index.action == RENDER and not renders and not report_deletes
        return PlanCounts(
            to_fetch=sum(by_action[a] for a in FETCH_ACTIONS),
            new=by_action[CREATE],
            changed=by_action[UPDATE] + by_action[REPLACE],
            stale=by_action[REFRESH],
            to_render=renders + (1 if index_alone else 0),
            to_delete=by_action[DELETE] + report_deletes,
            # A moved result that needs nothing else is counted as a move, not unchanged.
            unchanged_aggregations=by_action[NOOP] - sum(1 for c in self.moves if c.action == NOOP),
            unchanged_reports=sum(1 for r in self.reports if r.action == NOOP),
            moved=len(self.moves),
        )

    def summary(self) -> str:
        """The plan's last line."""
        if not self.has_changes:
            return "No changes. Reports are up to date."
        counts = self.counts()
        n = format_number  # (as pages write numbers: 12,345)
        return (
            f"Plan: {n(counts.to_fetch)} to fetch ({n(counts.new)} new, {n(counts.changed)} "
            f"changed, {n(counts.stale)} stale), {n(counts.to_render)} "
            f"{_reports(counts.to_render)} to render, {n(counts.to_delete)} to delete"
            + (f", {n(counts.moved)} to move." if counts.moved else ".")
        )

    # -- serialisation ---------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The versioned machine-readable plan (``plan --json`` and ``plan --out``).

        Keys come in a fixed order (``format_version`` first); ``summary``, ``has_changes``
        and ``counts`` are derived, written for readers and ignored by ``from_json``.
        """
        return {
            "format_version": self.format_version,
            "tool_version": self.tool_version,
            "created_at": self.created_at,
            "source": self.source.to_json(),
            "previous_source": (
                self.previous_source.to_json() if self.previous_source is not None else None
            ),
            "state": {"lineage": self.state_lineage, "serial": self.state_serial},
            "inputs_hash": self.inputs_hash,
            "targets": list(self.targets),
            "refresh_all": self.refresh_all,
            "has_changes": self.has_changes,
            "summary": self.summary(),
            "counts": self.counts().to_json(),
            "aggregations": [_change_json(c) for c in self.aggregations],
            "reports": [_report_json(r) for r in self.reports],
            "index": _report_json(self.index),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Plan:
        """Read back ``to_json``; a malformed plan raises ValueError (or KeyError/TypeError)."""
        try:
            previous = raw.get("previous_source")  # added within format 1: optional
            return cls(
                format_version=int(raw["format_version"]),
                tool_version=str(raw["tool_version"]),
                created_at=str(raw["created_at"]),
                source=_source_from_json(raw["source"]),
                previous_source=_source_from_json(previous) if previous is not None else None,
                state_lineage=_optional_str(raw["state"]["lineage"]),
                state_serial=_optional_int(raw["state"]["serial"]),
                inputs_hash=str(raw["inputs_hash"]),
                targets=tuple(str(t) for t in raw["targets"]),
                refresh_all=bool(raw["refresh_all"]),
                aggregations=tuple(_change_from_json(c) for c in raw["aggregations"]),
                reports=tuple(_report_from_json(r) for r in raw["reports"]),
                index=_report_from_json(raw["index"], index=True),
            )
        except KeyError as exc:
            raise ValueError(f"missing field {exc}") from None


def _reports(count: int) -> str:
    return "report" if count == 1 else "reports"


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _optional_int(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"state serial {value!r} is not an integer")
    return value


def _source_from_json(raw: Mapping[str, Any]) -> Source:
    return Source(str(raw["kind"]), str(raw["site"]), str(raw.get("detail", "")))


def _request_json(request: Mapping[str, Any]) -> dict[str, Any]:
    """The request with its fields in the canonical order, then any others sorted."""
    ordered = {name: request[name] for name in REQUEST_FIELDS if name in request}
    ordered.update(sorted((k, v) for k, v in request.items() if k not in REQUEST_FIELDS))
    return ordered


def _change_json(change: AggregationChange) -> dict[str, Any]:
    return {
        "address": change.address,
        "report": change.report,
        "actions": [change.action],
        "reason": change.reason,
        "title": change.title,
        "request": _request_json(change.request) if change.request is not None else None,
        "fingerprint": change.fingerprint,
        "changes": [{"field": c.name, "old": c.old, "new": c.new} for c in change.changes],
        "fetched_at": change.fetched_at,
        # Added within format 1, only on a move: plans without moves read as before.
        **({"moved_from": change.moved_from} if change.moved_from is not None else {}),
    }


def _single_action(raw: Mapping[str, Any], allowed: Sequence[str], what: str) -> str:
    actions = raw["actions"]
    if not isinstance(actions, list) or len(actions) != 1 or actions[0] not in allowed:
        raise ValueError(f"{what}: unknown actions {actions!r}")
    return str(actions[0])


def _change_from_json(raw: Mapping[str, Any]) -> AggregationChange:
    address = str(raw["address"])
    action = _single_action(raw, AGGREGATION_ACTIONS, address)
    request = raw["request"]
    fingerprint = raw["fingerprint"]
    if action in FETCH_ACTIONS:
        # apply sends this request as is: refuse a plan it could not send.
        if (
            not isinstance(request, dict)
            or not isinstance(request.get("query_filter"), str)
            or not isinstance(request.get("groups"), list)
            or not all(isinstance(g, str) for g in request["groups"])
            or type(request.get("limit")) is not int  # exact: true is no limit
            or not isinstance(fingerprint, str)
        ):
            raise ValueError(f"{address}: no valid request to fetch")
    elif request is not None and not isinstance(request, dict):
        raise ValueError(f"{address}: request is not an object")
    return AggregationChange(
        address=address,
        report=str(raw["report"]),
        action=action,
        reason=str(raw["reason"]),
        title=str(raw["title"]),
        request=request,
        fingerprint=_optional_str(fingerprint),
        changes=tuple(FieldChange(str(c["field"]), c["old"], c["new"]) for c in raw["changes"]),
        fetched_at=_optional_str(raw["fetched_at"]),
        moved_from=_optional_str(raw.get("moved_from")),
    )


def _report_json(change: ReportChange) -> dict[str, Any]:
    return {
        "name": change.name,
        "actions": [change.action],
        "new": change.new,
        "reasons": list(change.reasons),
        "outputs": list(change.outputs),
    }


def _report_from_json(raw: Mapping[str, Any], *, index: bool = False) -> ReportChange:
    name = str(raw["name"])
    if index and name != INDEX_NAME:
        raise ValueError(f"the site index is named {name!r}, not {INDEX_NAME!r}")
    if not index and not is_report_name(name):
        raise ValueError(f"report {name!r}: not a valid report name")
    outputs = tuple(raw["outputs"])
    for output in outputs:
        problem = output_name_problem(output, None if index else name)
        if problem is not None:
            raise ValueError(f"{'index' if index else f'report {name}'} outputs: {problem}")
    return ReportChange(
        name=name,
        action=_single_action(raw, REPORT_ACTIONS, f"report {name}"),
        reasons=tuple(str(r) for r in raw["reasons"]),
        outputs=outputs,
        new=bool(raw.get("new", False)),  # added within format 1: optional
    )


# -- planning -------------------------------------------------------------------------


def inputs_hash(reports: Sequence[ReportSpec], template_hashes: Mapping[str, str]) -> str:
    """A hash of everything a plan was computed from, apart from state and the clock.

    A saved plan is stale when this differs at apply time: a definition, a variable, a
    refresh setting or a template changed since planning.
    """
    digest = hashlib.sha256()
    for report in sorted(reports, key=lambda r: r.name):
        record = [report.name, report.definition_hash, report.refresh.text]
        record += [f"{a.address}={a.fingerprint}" for a in report.aggregations]
        digest.update(json.dumps(record).encode())
    digest.update(json.dumps(sorted(template_hashes.items())).encode())
    return digest.hexdigest()


def parse_timestamp(text: str) -> datetime:
    """Parse a state timestamp (``2026-11-26T19:00:00Z``; without a zone, UTC)."""
    return clock.parse(text)


def format_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_age(seconds: float) -> str:
    """``45s``, ``12m``, ``3h20m``, ``2d4h``: how long ago, compactly."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours}h" if hours else f"{days}d"


def _request_changes(old: Mapping[str, Any], spec: AggregationSpec) -> tuple[FieldChange, ...]:
    new = spec.request()
    return tuple(
        FieldChange(name, old.get(name), new[name])
        for name in REQUEST_FIELDS
        if old.get(name) != new[name]
    )


def _staleness(
    report: ReportSpec,
    previous: AggregationState,
    now: datetime,
    refresh_all: bool,
    unfinished: UnfinishedRefresh | None = None,
) -> str | None:
    """Why a result in state must be fetched again, or None while it is fresh.

    The reason is the same for every stale result of a report (the age is in
    ``fetched_at``), so views can count stale results per report and reason.
    """
    if refresh_all:
        return "--refresh given"
    if unfinished is not None and unfinished.due(
        previous.address, previous.report, previous.fetched_at
    ):
        return unfinished.reason()
    if report.refresh.always:
        return "refresh: always"
    age = (now - parse_timestamp(previous.fetched_at)).total_seconds()
    if report.refresh.is_stale(age):
        return f"older than {report.refresh.text}"
    return None


def _aggregation_change(
    spec: AggregationSpec,
    report: ReportSpec,
    previous: AggregationState | None,
    *,
    now: datetime,
    refresh_all: bool,
    source_changed: bool,
    unfinished: UnfinishedRefresh | None = None,
) -> AggregationChange:
    # Decide first, then build the change once: planning builds 10,000 of them.
    fields: tuple[FieldChange, ...] = ()
    if previous is None:
        action, reason = CREATE, "new aggregation"
    else:
        if previous.fingerprint != spec.fingerprint:
            fields = _request_changes(previous.request, spec)
        stale = None
        if source_changed:
            action, reason = REPLACE, "data source changed"
        elif previous.fingerprint != spec.fingerprint:
            action = UPDATE
            reason = ", ".join(c.name for c in fields) + " changed" if fields else "request changed"
        elif (stale := _staleness(report, previous, now, refresh_all, unfinished)) is not None:
            action, reason = REFRESH, stale
        else:
            action, reason = NOOP, "up to date"
    return AggregationChange(
        address=spec.address,
        report=spec.report,
        action=action,
        reason=reason,
        title=spec.title,
        request=spec.request(),
        fingerprint=spec.fingerprint,
        changes=fields,
        fetched_at=previous.fetched_at if previous is not None else None,
    )


def _drift(pages: PageCache, recorded: Mapping[str, str], expected: Iterable[str]) -> list[str]:
    """Reasons an output set needs rewriting: files missing, edited by hand, or new."""
    reasons = []
    for name in expected:
        want = recorded.get(name)
        have = pages.sha256(name)
        if want is None:
            reasons.append(f"new output {name}")
        elif have is None:
            reasons.append(f"output {name} is missing")
        elif have != want:
            reasons.append(f"output {name} was edited by hand")
    return reasons


def _targeted(targets: Sequence[str]) -> Callable[[str, str], bool]:
    """A predicate over (address, report): is it within ``--target``?"""
    if not targets:
        return lambda address, report: True

    def matches(address: str, report: str) -> bool:
        for target in targets:
            if target in (report, address) or address.startswith(f"{target}["):
                return True
        return False

    return matches


def _report_change(
    report: ReportSpec,
    state: State | None,
    *,
    fetching: bool,
    pages: PageCache,
    template_hashes: Mapping[str, str],
) -> ReportChange:
    outputs = output_names(report.name, report.formats)
    previous = state.reports.get(report.name) if state is not None else None
    if state is None or previous is None:
        return ReportChange(report.name, RENDER, ("new report",), outputs, new=True)
    reasons: list[str] = []
    if previous.definition_hash != report.definition_hash:
        reasons.append("definition changed")
    if previous.template_hash != template_hashes[report.template]:
        reasons.append("template changed")
    if fetching:
        reasons.append("data to fetch")
    elif not reasons and previous.data_hash != data_hash(
        [a.address for a in report.aggregations], state.aggregations, state.source
    ):
        # Results in state the pages do not show: an apply stopped before rendering them.
        # Checked only when nothing else renders the report: hashing every result is the
        # costliest step of a plan, and a changed definition may list other addresses.
        reasons.append("data changed since the last render")
    reasons += _drift(pages, previous.outputs, outputs)
    return ReportChange(report.name, RENDER if reasons else NOOP, tuple(reasons), outputs)


def _removed_reports(
    report_names: set[str],
    state: State | None,
    in_target: Callable[[str, str], bool] | None = None,
) -> list[ReportChange]:
    """Reports gone from the definitions: those state records, and those `state rm` forgot
    (whose pages it kept a list of), each deleted with the pages to remove; only those
    ``in_target`` keeps, when given (a plan for ``--target``)."""
    if state is None:
        return []
    removed = {
        name: ("report removed", state.reports[name].outputs)
        for name in set(state.reports) - report_names
    }
    forgotten = state.forgotten_pages
    for name in set(forgotten) - report_names - set(state.reports):
        removed[name] = ("left in state by `state rm` or `state mv`", forgotten[name])
    return [
        ReportChange(name=name, action=DELETE, reasons=(reason,), outputs=tuple(sorted(outputs)))
        for name, (reason, outputs) in sorted(removed.items())
        if in_target is None or in_target(name, name)
    ]


def render_plan(reports: Sequence[ReportSpec], state: State, *, now: datetime) -> Plan:
    """What ``casereport render`` does: every defined report and the index rendered again,
    and the pages of reports gone from the definitions removed, as an apply would.

    Nothing is compared: a render does all of it whatever changed, so the costliest
    steps of ``make_plan`` (every aggregation's change, every report's data hash and
    pages on disk) would be computed only to be overridden.
    """
    requested = ("render requested",)
    changes = [
        ReportChange(report.name, RENDER, requested, output_names(report.name, report.formats))
        for report in reports
    ]
    changes += _removed_reports({r.name for r in reports}, state)
    return Plan(
        source=state.source or Source("none", "none"),
        previous_source=None,
        aggregations=(),
        reports=tuple(sorted(changes, key=lambda r: r.name)),
        index=ReportChange(INDEX_NAME, RENDER, requested, INDEX_FILES),
        state_lineage=state.lineage,
        state_serial=state.serial,
        inputs_hash="",
        created_at=format_timestamp(now),
    )


def make_plan(
    reports: Sequence[ReportSpec],
    state: State | None,
    *,
    source: Source,
    site_dir: Path,
    template_hashes: Mapping[str, str],
    now: datetime,
    targets: Sequence[str] = (),
    refresh_all: bool = False,
    pages: PageCache | None = None,
) -> Plan:
    """Compare the desired reports with the state; see the module docstring for actions.

    ``pages`` reads the pages in ``site_dir`` for hand edits (by default each page is
    hashed; the site's page cache skips those whose ``stat`` it knows)."""
    in_target = _targeted(targets)
    if pages is None:
        pages = PageCache(site_dir)
    assert pages.site_dir == site_dir, "the cache of another site"
    previous_source = None
    replaced = False
    if state is not None and state.source is not None and state.source.identity != source.identity:
        previous_source = state.source
        if source_key(source) in state.previous_sources:
            # Apply brings the new source's earlier results back: plan against them.
            state = switch_source(state, source)
        else:
            replaced = True
    previous_aggregations = state.aggregations if state is not None else {}
    moves = planned_moves(reports, previous_aggregations) if previous_aggregations else {}
    moved_away: set[str] = set()

    changes: list[AggregationChange] = []
    report_changes: list[ReportChange] = []
    defined: set[str] = set()
    for report in reports:
        fetching = False
        report_in_target = False
        for spec in report.aggregations:
            defined.add(spec.address)
            if not in_target(spec.address, report.name):
                continue
            report_in_target = True
            previous = previous_aggregations.get(spec.address)
            moved_from = moves.get(spec.address) if previous is None and moves else None
            if moved_from is not None:
                previous = previous_aggregations[moved_from]
                moved_away.add(moved_from)
            change = _aggregation_change(
                spec,
                report,
                previous,
                now=now,
                refresh_all=refresh_all,
                source_changed=replaced,
                unfinished=state.unfinished_refresh if state is not None else None,
            )
            if moved_from is not None:
                change = replace(change, moved_from=moved_from)
            fetching = fetching or change.fetches
            changes.append(change)
        if report_in_target:
            report_changes.append(
                _report_change(
                    report,
                    state,
                    fetching=fetching,
                    pages=pages,
                    template_hashes=template_hashes,
                )
            )

    report_names = {r.name for r in reports}
    # A result a `moved:` entry will move is never deleted, even when a --target leaves
    # its new address out of this plan: a later apply moves it, history and all.
    for address in set(previous_aggregations) - defined - moved_away - set(moves.values()):
        previous = previous_aggregations[address]
        if in_target(address, previous.report):
            reason = (
                "no longer defined"
                if previous.report in report_names
                else f"report {previous.report} removed"
            )
            changes.append(
                AggregationChange(
                    address=address,
                    report=previous.report,
                    action=DELETE,
                    reason=reason,
                    title=previous.title,
                    fetched_at=previous.fetched_at,
                )
            )
    report_changes += _removed_reports(report_names, state, in_target)

    recorded_index = state.site_outputs if state is not None else {}
    index_reasons = []
    if any(r.action != NOOP for r in report_changes):
        index_reasons.append("reports changed")
    if not targets:
        if recorded_index:
            index_reasons += _drift(pages, recorded_index, INDEX_FILES)
        else:
            index_reasons.append("new site index")
    index = ReportChange(
        name=INDEX_NAME,
        action=RENDER if index_reasons else NOOP,
        reasons=tuple(index_reasons),
        outputs=INDEX_FILES,
        new=index_reasons != [] and not recorded_index,
    )
    return Plan(
        source=source,
        previous_source=previous_source,
        aggregations=tuple(sorted(changes, key=lambda c: c.address)),
        reports=tuple(sorted(report_changes, key=lambda r: r.name)),
        index=index,
        state_lineage=state.lineage if state is not None else None,
        state_serial=state.serial if state is not None else None,
        inputs_hash=inputs_hash(reports, template_hashes),
        created_at=format_timestamp(now),
        targets=tuple(targets),
        refresh_all=refresh_all,
    )
