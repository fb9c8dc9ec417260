"""Plan: compare the desired reports with the state and decide what apply must do.

The plan is plain, serialisable data; ``views`` prints it for people (human, Markdown) and
machines (JSON). Planning is pure: it reads the expansion, the state, the site directory's
files (to notice drift) and a clock, and never calls the API or writes anything.

Aggregation actions (one per address):
    create    new address
    update    the request (query, groups or limit) changed
    refresh   the result is older than the report's ``refresh`` (or ``--refresh``)
    replace   the data source changed (emulator <-> Datadog, or another site)
    delete    the address is no longer defined
    no-op     nothing to do
Report actions: ``render`` (with its reasons), ``delete`` (its files go), ``no-op``.
The site index is re-rendered whenever any report is rendered or deleted, or its own
files drifted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from casereport import __version__
from casereport.expand import AggregationSpec, ReportSpec
from casereport.site import INDEX_FILES, output_names
from casereport.state import AggregationState, Source, State, data_hash, file_sha256

PLAN_FORMAT_VERSION = 1

CREATE = "create"
UPDATE = "update"
REFRESH = "refresh"
REPLACE = "replace"
DELETE = "delete"
NOOP = "no-op"
RENDER = "render"

FETCH_ACTIONS = (CREATE, UPDATE, REFRESH, REPLACE)


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
    changes: tuple[FieldChange, ...] = ()  # for update
    fetched_at: str | None = None  # of the result in state, if any

    @property
    def fetches(self) -> bool:
        return self.action in FETCH_ACTIONS


@dataclass(frozen=True)
class ReportChange:
    """What apply does with one report's pages."""

    name: str
    action: str
    reasons: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()  # files written (render) or removed (delete)


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
    def has_changes(self) -> bool:
        return bool(self.fetches or self.renders or self.deletions or self.index.action != NOOP)

    def summary(self) -> str:
        """The plan's last line."""
        if not self.has_changes:
            return "No changes. Reports are up to date."
        by_action = dict.fromkeys((*FETCH_ACTIONS, DELETE), 0)
        for change in self.aggregations:
            if change.action in by_action:
                by_action[change.action] += 1
        fetch = len(self.fetches)
        changed = by_action[UPDATE] + by_action[REPLACE]
        deletes = len(self.deletions)
        renders = len(self.renders)
        return (
            f"Plan: {fetch} to fetch ({by_action[CREATE]} new, {changed} changed, "
            f"{by_action[REFRESH]} stale), {renders} {_reports(renders)} to render, "
            f"{deletes} to delete."
        )

    # -- serialisation ---------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The versioned machine-readable plan (``plan --json`` and ``plan --out``)."""
        return {
            "format_version": self.format_version,
            "tool_version": self.tool_version,
            "created_at": self.created_at,
            "source": self.source.to_json(),
            "state": {"lineage": self.state_lineage, "serial": self.state_serial},
            "inputs_hash": self.inputs_hash,
            "targets": list(self.targets),
            "refresh_all": self.refresh_all,
            "summary": self.summary(),
            "has_changes": self.has_changes,
            "aggregations": [_change_json(c) for c in self.aggregations],
            "reports": [_report_json(r) for r in self.reports],
            "index": _report_json(self.index),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Plan:
        """Read back ``to_json`` (raises KeyError/TypeError/ValueError on a malformed plan)."""
        source = raw["source"]
        return cls(
            format_version=int(raw["format_version"]),
            tool_version=str(raw["tool_version"]),
            created_at=str(raw["created_at"]),
            source=Source(str(source["kind"]), str(source["site"]), str(source["detail"])),
            state_lineage=raw["state"]["lineage"],
            state_serial=raw["state"]["serial"],
            inputs_hash=str(raw["inputs_hash"]),
            targets=tuple(raw["targets"]),
            refresh_all=bool(raw["refresh_all"]),
            aggregations=tuple(_change_from_json(c) for c in raw["aggregations"]),
            reports=tuple(_report_from_json(r) for r in raw["reports"]),
            index=_report_from_json(raw["index"]),
        )


def _reports(count: int) -> str:
    return "report" if count == 1 else "reports"


def _change_json(change: AggregationChange) -> dict[str, Any]:
    return {
        "address": change.address,
        "report": change.report,
        "actions": [change.action],
        "reason": change.reason,
        "title": change.title,
        "request": dict(change.request) if change.request is not None else None,
        "fingerprint": change.fingerprint,
        "changes": [{"field": c.name, "old": c.old, "new": c.new} for c in change.changes],
        "fetched_at": change.fetched_at,
    }


def _change_from_json(raw: Mapping[str, Any]) -> AggregationChange:
    return AggregationChange(
        address=str(raw["address"]),
        report=str(raw["report"]),
        action=str(raw["actions"][0]),
        reason=str(raw["reason"]),
        title=str(raw["title"]),
        request=raw["request"],
        fingerprint=raw["fingerprint"],
        changes=tuple(FieldChange(c["field"], c["old"], c["new"]) for c in raw["changes"]),
        fetched_at=raw["fetched_at"],
    )


def _report_json(change: ReportChange) -> dict[str, Any]:
    return {
        "name": change.name,
        "actions": [change.action],
        "reasons": list(change.reasons),
        "outputs": list(change.outputs),
    }


def _report_from_json(raw: Mapping[str, Any]) -> ReportChange:
    return ReportChange(
        name=str(raw["name"]),
        action=str(raw["actions"][0]),
        reasons=tuple(raw["reasons"]),
        outputs=tuple(raw["outputs"]),
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
    """Parse a state timestamp (``2026-11-26T19:00:00Z``)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


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
        for name in ("query_filter", "groups", "limit")
        if old.get(name) != new[name]
    )


def _staleness(
    report: ReportSpec, previous: AggregationState, now: datetime, refresh_all: bool
) -> str | None:
    """Why a result in state must be fetched again, or None while it is fresh."""
    if refresh_all:
        return "refresh requested (--refresh)"
    if report.refresh.always:
        return "refresh: always"
    age = (now - parse_timestamp(previous.fetched_at)).total_seconds()
    if report.refresh.is_stale(age):
        return f"fetched {format_age(age)} ago, refresh every {report.refresh.text}"
    return None


def _aggregation_change(
    spec: AggregationSpec,
    report: ReportSpec,
    previous: AggregationState | None,
    *,
    now: datetime,
    refresh_all: bool,
    source_changed: str | None,
) -> AggregationChange:
    change = AggregationChange(
        address=spec.address,
        report=spec.report,
        action=CREATE,
        reason="new aggregation",
        title=spec.title,
        request=spec.request(),
        fingerprint=spec.fingerprint,
    )
    if previous is None:
        return change
    change = replace(change, fetched_at=previous.fetched_at)
    if source_changed is not None:
        return replace(change, action=REPLACE, reason=source_changed)
    if previous.fingerprint != spec.fingerprint:
        fields = _request_changes(previous.request, spec)
        reason = ", ".join(c.name for c in fields) + " changed" if fields else "request changed"
        return replace(change, action=UPDATE, reason=reason, changes=fields)
    stale = _staleness(report, previous, now, refresh_all)
    if stale is not None:
        return replace(change, action=REFRESH, reason=stale)
    return replace(change, action=NOOP, reason="up to date")


def _drift(site_dir: Path, recorded: Mapping[str, str], expected: Iterable[str]) -> list[str]:
    """Reasons an output set needs rewriting: files missing, edited by hand, or new."""
    reasons = []
    for name in expected:
        want = recorded.get(name)
        have = file_sha256(site_dir / name)
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
) -> Plan:
    """Compare the desired reports with the state; see the module docstring for actions."""
    in_target = _targeted(targets)
    previous_aggregations = state.aggregations if state is not None else {}
    previous_reports = state.reports if state is not None else {}
    source_changed = None
    if state is not None and state.source is not None and state.source.identity != source.identity:
        source_changed = f"data source changed: {state.source.describe()} -> {source.describe()}"

    changes: list[AggregationChange] = []
    report_changes: list[ReportChange] = []
    defined: set[str] = set()
    for report in sorted(reports, key=lambda r: r.name):
        fetching = False
        report_in_target = False
        for spec in report.aggregations:
            defined.add(spec.address)
            if not in_target(spec.address, report.name):
                continue
            report_in_target = True
            change = _aggregation_change(
                spec,
                report,
                previous_aggregations.get(spec.address),
                now=now,
                refresh_all=refresh_all,
                source_changed=source_changed,
            )
            fetching = fetching or change.fetches
            changes.append(change)
        if not report_in_target:
            continue
        outputs = output_names(report.name, report.formats)
        previous_report = previous_reports.get(report.name)
        reasons: list[str] = []
        if previous_report is None:
            reasons.append("new report")
        else:
            if previous_report.definition_hash != report.definition_hash:
                reasons.append("definition changed")
            if previous_report.template_hash != template_hashes[report.template]:
                reasons.append("template changed")
            if fetching:
                reasons.append("data changes")
            elif previous_report.data_hash != data_hash(
                [a.address for a in report.aggregations], previous_aggregations, source
            ):
                # Fetched by an apply that stopped before rendering this report.
                reasons.append("data changed")
            reasons += _drift(site_dir, previous_report.outputs, outputs)
        report_changes.append(
            ReportChange(
                name=report.name,
                action=RENDER if reasons else NOOP,
                reasons=tuple(reasons),
                outputs=outputs,
            )
        )

    report_names = {r.name for r in reports}
    for address in sorted(set(previous_aggregations) - defined):
        previous = previous_aggregations[address]
        if in_target(address, previous.report):
            changes.append(
                AggregationChange(
                    address=address,
                    report=previous.report,
                    action=DELETE,
                    reason="no longer defined",
                    title=previous.title,
                    fetched_at=previous.fetched_at,
                )
            )
    for name in sorted(set(previous_reports) - report_names):
        if in_target(name, name):
            report_changes.append(
                ReportChange(
                    name=name,
                    action=DELETE,
                    reasons=("report removed",),
                    outputs=tuple(sorted(previous_reports[name].outputs)),
                )
            )

    index_reasons = []
    if any(r.action != NOOP for r in report_changes):
        index_reasons.append("reports changed")
    recorded_index = state.site_outputs if state is not None else {}
    index_reasons += _drift(site_dir, recorded_index, INDEX_FILES)
    index = ReportChange(
        name="index",
        action=RENDER if index_reasons else NOOP,
        reasons=tuple(index_reasons),
        outputs=INDEX_FILES,
    )
    return Plan(
        source=source,
        aggregations=tuple(sorted(changes, key=lambda c: c.address)),
        reports=tuple(report_changes),
        index=index,
        state_lineage=state.lineage if state is not None else None,
        state_serial=state.serial if state is not None else None,
        inputs_hash=inputs_hash(reports, template_hashes),
        created_at=format_timestamp(now),
        targets=tuple(targets),
        refresh_all=refresh_all,
    )
