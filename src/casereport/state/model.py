"""State: what the last apply fetched and rendered (``.casereport/state.json``).

The file's format, field by field, is in ``docs/state.md``. In short: JSON with sorted
keys, an aggregation per line; results and history kept as plain JSON (10,000
aggregations with their history would cost more to build as objects than planning
itself), history bounded and stored by column (``history``); another source's results
put aside under ``previous_sources`` (format 2) so that a switch back restores them.

Writes are atomic (temp file, fsync, rename) after the previous file becomes
``<state>.backup``; ``serial`` changes only when content does. Loading checks every field
the engine reads, so a damaged or hand-edited file is refused with one line naming it,
before anything is planned or written. Credentials never enter state.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import io
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from casereport import __version__
from casereport.errors import DamagedStateError, StateError, UnreadableStateError
from casereport.fsutil import TEMP_FILE_RE, atomic_write_text, collector_paused, file_sha256
from casereport.settings import DEFAULT_HISTORY, Retention
from casereport.site import is_report_name, output_name_problem
from casereport.state import guard
from casereport.state.history import (
    History,
    JsonObject,
    epoch,
    history_entry,
    valid_columns,
)
from casereport.state.notified import Notified, notified_json, parse_sections
from casereport.state.refresh import UnfinishedRefresh, parse_unfinished_refresh

FORMAT_VERSION = 1
#: The format of a state with a ``previous_sources`` section, and the newest this reads.
PREVIOUS_SOURCES_FORMAT_VERSION = MAX_FORMAT_VERSION = 2
DEFAULT_STATE_PATH = Path(".casereport/state.json")


@dataclass(frozen=True)
class Source:
    """Where results came from. Two sources are the same data when kind and site match."""

    kind: str  # "emulator" or "datadog"
    site: str  # a Datadog site, an API URL, or "emulator"
    detail: str = ""

    @property
    def identity(self) -> tuple[str, str]:
        return (self.kind, self.site)

    def describe(self) -> str:
        if self.kind == "emulator":
            return f"local emulator, {self.detail}" if self.detail else "local emulator"
        return f"Datadog ({self.site})"

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "site": self.site, "detail": self.detail}


@dataclass(frozen=True)
class AggregationState:
    """One aggregation address as last fetched."""

    address: str
    report: str
    title: str
    request: JsonObject  # {"query_filter": str, "groups": [str], "limit": int}
    fingerprint: str
    result: JsonObject  # the API's data.attributes plus id: {"id", "total", "groups"}
    fetched_at: str
    history: Sequence[JsonObject] = ()
    # When a changed request was first fetched: earlier history is kept but not comparable.
    query_changed_at: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.history, History):
            object.__setattr__(self, "history", History.from_entries(self.history))

    def to_json(self) -> dict[str, Any]:
        changed = {"query_changed_at": self.query_changed_at} if self.query_changed_at else {}
        return {
            **changed,  # only when there is one: older states stay as they were
            "report": self.report,
            "title": self.title,
            "request": dict(self.request),
            "fingerprint": self.fingerprint,
            "result": dict(self.result),
            "fetched_at": self.fetched_at,
            "history": History.from_entries(self.history).columns(),
        }


@dataclass(frozen=True)
class ReportState:
    """One report as last rendered: the hashes it was rendered from and its output files."""

    name: str
    definition_hash: str
    template_hash: str
    data_hash: str
    outputs: Mapping[str, str]  # site-relative path -> sha256 of the content

    def to_json(self) -> dict[str, Any]:
        return {
            "definition_hash": self.definition_hash,
            "template_hash": self.template_hash,
            "data_hash": self.data_hash,
            "outputs": dict(sorted(self.outputs.items())),
        }


def source_key(source: Source) -> str:
    """The key of a source's results put aside in ``previous_sources``: ``kind:site``."""
    return f"{source.kind}:{source.site}"


@dataclass(frozen=True)
class PreviousSource:
    """Results of a source the state switched away from, kept for a switch back."""

    source: Source
    aggregations: Mapping[str, AggregationState]

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source.to_json(),
            "aggregations": {a: self.aggregations[a].to_json() for a in sorted(self.aggregations)},
        }


@dataclass(frozen=True)
class State:
    """The whole state file."""

    lineage: str
    serial: int = 0
    tool_version: str = __version__
    source: Source | None = None
    aggregations: Mapping[str, AggregationState] = field(default_factory=dict)
    reports: Mapping[str, ReportState] = field(default_factory=dict)
    site_outputs: Mapping[str, str] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    # Pages of reports ``state rm`` forgot (report -> file -> hash): the next apply or
    # render removes them (or a defined report's render takes them over).
    forgotten_pages: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    previous_sources: Mapping[str, PreviousSource] = field(default_factory=dict)
    unfinished_refresh: UnfinishedRefresh | None = None  # see ``refresh``
    notified: Notified = field(default_factory=dict)  # see ``notified``: runs sent
    notified_at: Notified = field(default_factory=dict)  # and when they were fetched

    def content(self) -> dict[str, Any]:
        """Everything but the bookkeeping fields; equal content means nothing to write."""
        site: dict[str, Any] = {"outputs": dict(sorted(self.site_outputs.items()))}
        if self.forgotten_pages:  # only when there are some: older states stay as they were
            site["forgotten"] = _forgotten_json(self.forgotten_pages)
        content = {
            "source": self.source.to_json() if self.source else None,
            "aggregations": {
                address: self.aggregations[address].to_json()
                for address in sorted(self.aggregations)
            },
            "reports": {name: self.reports[name].to_json() for name in sorted(self.reports)},
            "site": site,
        }
        if self.unfinished_refresh is not None:
            content["unfinished_refresh"] = self.unfinished_refresh.to_json()
        if self.notified:
            content["notified"] = notified_json(self.notified)
        if self.notified_at:
            content["notified_at"] = notified_json(self.notified_at)
        if self.previous_sources:
            content["previous_sources"] = {
                key: self.previous_sources[key].to_json() for key in sorted(self.previous_sources)
            }
        return content

    def to_json(self, content: dict[str, Any] | None = None) -> dict[str, Any]:
        """The whole document; ``content``: this state's ``content()``, when already made."""
        version = PREVIOUS_SOURCES_FORMAT_VERSION if self.previous_sources else FORMAT_VERSION
        return {
            "format_version": version,
            "lineage": self.lineage,
            "serial": self.serial,
            "tool_version": self.tool_version,
            **(self.content() if content is None else content),
        }


def _forgotten_json(pages: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    return {name: dict(sorted(pages[name].items())) for name in sorted(pages)}


def new_state() -> State:
    """An empty state with a fresh lineage."""
    return State(lineage=str(uuid.uuid4()))


def switch_source(state: State, source: Source) -> State:
    """The state with ``source`` as its source, no result lost.

    The current source's results are put aside under its key, and results put aside
    earlier for ``source`` come back, history and all: switching away and back (a missing
    secret that made a run use the emulator, a mistyped API URL) loses nothing.
    """
    if state.source is None or state.source.identity == source.identity:
        return replace(state, source=source)
    kept = dict(state.previous_sources)
    restored = kept.pop(source_key(source), None)
    if state.aggregations:
        kept[source_key(state.source)] = PreviousSource(state.source, dict(state.aggregations))
    return replace(
        state,
        source=source,
        aggregations=dict(restored.aggregations) if restored is not None else {},
        previous_sources=kept,
    )


_SORTED = orjson.OPT_SORT_KEYS


def data_hash(
    addresses: Iterable[str], aggregations: Mapping[str, AggregationState], source: Source | None
) -> str:
    """A hash of what a report page shows from state: source, results and their history.

    History is represented by its length and newest fetch time: it only ever changes by a
    fetch, which also changes the result's ``fetched_at``, so hashing its values again
    would cost time without telling anything new.
    """
    digest = hashlib.sha256()
    # orjson: this runs for every report at every plan; sorted keys make it canonical.
    digest.update(orjson.dumps(source.to_json() if source else None, option=_SORTED))
    for address in addresses:
        entry = aggregations.get(address)
        record: list[Any] = [address]
        if entry is not None:
            history = History.from_entries(entry.history)
            record += [
                entry.fingerprint,
                entry.title,
                entry.fetched_at,
                entry.result,
                len(history),
                history.latest_fetched_at(),
            ]
        digest.update(orjson.dumps(record, option=_SORTED))
    return digest.hexdigest()


def with_result(
    previous: AggregationState | None,
    *,
    address: str,
    report: str,
    title: str,
    request: JsonObject,
    fingerprint: str,
    result: JsonObject,
    fetched_at: str,
    retention: Retention = DEFAULT_HISTORY,
) -> AggregationState:
    """The aggregation after a fetch: the old result moves into history, bounded by
    ``retention`` (``history`` in ``casereport.toml``), counted from this fetch.

    A changed request keeps history too, but marks the change (``query_changed_at``): pages
    compare and draw trends only from results fetched since.
    """
    history: Sequence[JsonObject] = ()
    changed_at = previous.query_changed_at if previous is not None else None
    if previous is not None:
        entry = history_entry(previous.result, previous.fetched_at)
        since = None if retention.seconds is None else epoch(fetched_at) - retention.seconds
        history = History.from_entries(previous.history).appended(
            entry, retention.runs, since=since
        )
        changed_at = fetched_at if previous.fingerprint != fingerprint else changed_at
    return AggregationState(
        address=address,
        report=report,
        title=title,
        request=request,
        fingerprint=fingerprint,
        result=result,
        fetched_at=fetched_at,
        history=history,
        query_changed_at=changed_at,
    )


# -- reading --------------------------------------------------------------------------
#
# Everything the engine later reads from state is checked here, so a hand-edited or
# damaged file is refused at load time with its path, not halfway through a plan or render.


def _bad(path: Path, problem: str) -> DamagedStateError:
    backup = backup_path(path)
    fix = (
        f"restore the previous version from {backup}, or move the file away to start afresh"
        if backup.exists()
        else "move the file away to start afresh (the next apply re-fetches everything)"
    )
    return DamagedStateError(path, problem, fix)


_NUMBER_TYPES = (int, float)


def _is_number(value: Any) -> bool:
    return type(value) in _NUMBER_TYPES  # exact types: bool is not a count


def _is_timestamp(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


# The two checks below run for every group and history entry of a state that may hold
# hundreds of thousands of them, so they are plain loops over exact types.


def _are_groups(groups: Any) -> bool:
    """A result's groups: ``[{"group": ..., "value": [number, ...]}, ...]``."""
    if type(groups) is not list:
        return False
    for group in groups:
        if type(group) is not dict or "group" not in group:
            return False
        values = group.get("value")
        if type(values) is not list:
            return False
        for value in values:
            if type(value) not in _NUMBER_TYPES:
                return False
    return True


def _aggregation_problem(raw: dict[str, Any]) -> str | None:
    """What is wrong with one aggregation entry, or None when it is sound."""
    for key in ("report", "request", "fingerprint", "result", "fetched_at"):
        if key not in raw:
            return f"has no {key!r}"
    for key in ("report", "fingerprint", "title"):
        if not isinstance(raw.get(key, ""), str):
            return f"{key} is not a string"
    if not isinstance(raw["request"], dict):
        return "request is not an object"
    result = raw["result"]
    if not isinstance(result, dict):
        return "result is not an object"
    if not _is_number(result.get("total")):
        return "result.total is not a number"
    if not _are_groups(result.get("groups")):
        return "result.groups is not a list of {group, value: [numbers]}"
    if not _is_timestamp(raw["fetched_at"]):
        return f"fetched_at {raw['fetched_at']!r} is not a timestamp"
    if "query_changed_at" in raw and not _is_timestamp(raw["query_changed_at"]):
        return f"query_changed_at {raw['query_changed_at']!r} is not a timestamp"
    if "history" in raw and not valid_columns(raw["history"]):
        return 'history is not {fetched_at: "...", total: "...", groups: {name: "..."}}'
    return None


def parse_aggregation(path: Path, address: str, raw: Any) -> AggregationState:
    """One aggregation entry of a state (or journal) file; a StateError names what is wrong."""
    if not isinstance(raw, dict):
        raise _bad(path, f"aggregations[{address!r}] is not an object")
    problem = _aggregation_problem(raw)
    if problem is not None:
        raise _bad(path, f"aggregations[{address!r}] is malformed: {problem}")
    # Built as __init__ would build it, without its cost: a frozen dataclass sets every
    # field through object.__setattr__, slower than all of the checks above together,
    # and a state holds 10,000 entries. (Its __post_init__ only wraps history: done.)
    entry = object.__new__(AggregationState)
    entry.__dict__.update(
        address=address,
        report=raw["report"],
        title=raw.get("title", ""),
        request=raw["request"],
        fingerprint=raw["fingerprint"],
        result=raw["result"],
        fetched_at=raw["fetched_at"],
        history=History(raw.get("history")),
        query_changed_at=raw.get("query_changed_at"),
    )
    return entry


def _parse_report(path: Path, name: str, raw: Any) -> ReportState:
    problem = None
    if not isinstance(raw, dict):
        problem = "is not an object"
    else:
        for key in ("definition_hash", "template_hash", "data_hash", "outputs"):
            if key not in raw:
                problem = f"has no {key!r}"
                break
            if key != "outputs" and not isinstance(raw[key], str):
                problem = f"{key} is not a string"
                break
        else:
            if not _is_string_map(raw["outputs"]):
                problem = "outputs is not an object of file -> hash"
    if problem is not None:
        raise _bad(path, f"reports[{name!r}] is malformed: {problem}")
    return ReportState(
        name=name,
        definition_hash=raw["definition_hash"],
        template_hash=raw["template_hash"],
        data_hash=raw["data_hash"],
        outputs=dict(raw["outputs"]),
    )


def _check_file_names(path: Path, reports: Mapping[str, Any], site_outputs: Any) -> None:
    """Refuse a report name or output file name that is not a plain site file name.

    A state may come from a CI cache: the names it records are written and removed in the
    site directory, so ``../x``, ``/etc/x`` or another report's page are never accepted.
    """
    for name, raw in reports.items():
        if not is_report_name(name):
            raise _bad(path, f"reports[{name!r}]: {name!r} is not a valid report name")
        outputs = raw.get("outputs") if isinstance(raw, dict) else None
        for output in outputs if isinstance(outputs, dict) else ():
            problem = output_name_problem(output, name)
            if problem is not None:
                raise _bad(path, f"reports[{name!r}].outputs: {problem}")
    for output in site_outputs if isinstance(site_outputs, dict) else ():
        problem = output_name_problem(output, None)
        if problem is not None:
            raise _bad(path, f"site.outputs: {problem}")


def _is_string_map(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


def _parse_source(path: Path, raw: Any) -> Source | None:
    if raw is None:
        return None
    if (
        not isinstance(raw, dict)
        or not isinstance(raw.get("kind"), str)
        or not isinstance(raw.get("site"), str)
        or not isinstance(raw.get("detail", ""), str)
    ):
        raise _bad(path, "malformed: source is not an object of kind, site and detail strings")
    return Source(kind=raw["kind"], site=raw["site"], detail=raw.get("detail", ""))


# Keys every state file has (``serialise`` always writes them all); a file without one of
# them was truncated or written by something else.
_ABSENT = object()
_REQUIRED_KEYS = ("lineage", "serial", "tool_version", "source", "aggregations", "reports", "site")


def _read_json(path: Path, data: bytes | str) -> Any:
    """Parse JSON with orjson, from the bytes as read (several times faster than ``json`` on
    a state of many megabytes, and no copy decoded first). When it refuses them, the text
    is decoded as ``Path.read_text`` decodes it and the standard parser finds the line and
    column to report (orjson refuses exactly what is not UTF-8)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    if isinstance(data, bytes):
        try:
            data = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8").read()
        except UnicodeDecodeError:
            raise _bad(path, "not a casereport state (not UTF-8 text)") from None
    return json.loads(data)


def parse_state(path: Path, data: bytes | str) -> State:
    """Parse state JSON read from ``path``; any problem is a StateError naming the file."""
    with collector_paused():
        return _parse_state(path, data)


def _parse_state(path: Path, data: bytes | str) -> State:
    try:
        raw = _read_json(path, data)
    except json.JSONDecodeError as exc:
        raise _bad(path, f"not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise _bad(path, "not valid JSON (nested too deeply)") from None
    if not isinstance(raw, dict):
        raise _bad(path, "not a casereport state (expected a JSON object)")
    version = raw.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _bad(path, "not a casereport state (no valid format_version)")
    if version > MAX_FORMAT_VERSION:
        raise UnreadableStateError(
            path,
            f"written by a newer casereport ({raw.get('tool_version', '?')}, state format "
            f"{version}; this version reads up to {MAX_FORMAT_VERSION})",
            "upgrade casereport",
        )
    missing = [key for key in _REQUIRED_KEYS if key not in raw]
    if missing:
        raise _bad(path, f"malformed: no {', '.join(missing)}")
    lineage, serial = raw["lineage"], raw["serial"]
    if not isinstance(lineage, str) or not lineage:
        raise _bad(path, "malformed: lineage is not a non-empty string")
    if not isinstance(serial, int) or isinstance(serial, bool) or serial < 0:
        raise _bad(path, "malformed: serial is not a whole number")
    if not isinstance(raw["tool_version"], str):
        raise _bad(path, "malformed: tool_version is not a string")
    aggregations_raw, reports_raw, site_raw = raw["aggregations"], raw["reports"], raw["site"]
    if not isinstance(aggregations_raw, dict):
        raise _bad(path, "malformed: aggregations is not an object")
    if not isinstance(reports_raw, dict):
        raise _bad(path, "malformed: reports is not an object")
    if not isinstance(site_raw, dict) or not _is_string_map(site_raw.get("outputs", {})):
        raise _bad(path, "malformed: site.outputs is not an object of file -> hash")
    forgotten_raw = site_raw.get("forgotten", {})
    if not isinstance(forgotten_raw, dict) or not all(
        _is_string_map(pages) for pages in forgotten_raw.values()
    ):
        raise _bad(path, "malformed: site.forgotten is not an object of report -> file -> hash")
    _check_file_names(path, reports_raw, site_raw.get("outputs", {}))
    _check_file_names(path, {n: {"outputs": p} for n, p in forgotten_raw.items()}, {})
    source = _parse_source(path, raw["source"])
    refresh = raw.get("unfinished_refresh", _ABSENT)
    try:
        refresh = None if refresh is _ABSENT else parse_unfinished_refresh(refresh)
    except ValueError as exc:
        raise _bad(path, f"malformed: unfinished_refresh {exc}") from None
    try:
        notified, notified_at = parse_sections(raw)
    except ValueError as exc:
        raise _bad(path, f"malformed: {exc}") from None
    return State(
        lineage=lineage,
        serial=serial,
        tool_version=raw["tool_version"],
        source=source,
        previous_sources=_parse_previous_sources(path, raw, version, source),
        aggregations={
            address: parse_aggregation(path, address, value)
            for address, value in aggregations_raw.items()
        },
        reports={name: _parse_report(path, name, value) for name, value in reports_raw.items()},
        site_outputs=dict(site_raw.get("outputs", {})),
        format_version=FORMAT_VERSION,
        forgotten_pages={name: dict(pages) for name, pages in forgotten_raw.items()},
        unfinished_refresh=refresh,
        notified=notified,
        notified_at=notified_at,
    )


def _parse_previous_sources(
    path: Path, raw: dict[str, Any], version: int, current: Source | None
) -> dict[str, PreviousSource]:
    """The ``previous_sources`` section (format 2): ``{"kind:site": {source, aggregations}}``."""
    if "previous_sources" not in raw:
        return {}
    section = raw["previous_sources"]
    if version < PREVIOUS_SOURCES_FORMAT_VERSION:
        raise _bad(path, f"malformed: previous_sources in a state of format {version}")
    if not isinstance(section, dict):
        raise _bad(path, "malformed: previous_sources is not an object")
    parsed: dict[str, PreviousSource] = {}
    for key, entry in section.items():
        where = f"previous_sources[{key!r}]"
        if not isinstance(entry, dict) or set(entry) != {"source", "aggregations"}:
            raise _bad(path, f"malformed: {where} is not an object of source and aggregations")
        if entry["source"] is None:
            raise _bad(path, f"malformed: {where}.source is null")
        source = _parse_source(path, entry["source"])
        assert source is not None
        if key != source_key(source):
            raise _bad(path, f"malformed: {where} holds the results of {source_key(source)!r}")
        if current is not None and source.identity == current.identity:
            raise _bad(path, f"malformed: {where} is the state's own source")
        aggregations = entry["aggregations"]
        if not isinstance(aggregations, dict):
            raise _bad(path, f"malformed: {where}.aggregations is not an object")
        for address, value in aggregations.items():
            problem = _aggregation_problem(value) if isinstance(value, dict) else "is not an object"
            if problem is not None:
                raise _bad(path, f"{where}.aggregations[{address!r}] is malformed: {problem}")
        parsed[key] = PreviousSource(
            source,
            {a: parse_aggregation(path, a, value) for a, value in aggregations.items()},
        )
    return parsed


def load_state(path: Path) -> State | None:
    """The state at ``path``, or None when there is none yet."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"{path}: cannot read the state: {exc.strerror or exc}") from None
    return parse_state(path, data)


# -- writing --------------------------------------------------------------------------


def backup_path(path: Path) -> Path:
    return path.with_name(path.name + ".backup")


def _one_line(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def serialise(state: State, content: dict[str, Any] | None = None) -> str:
    """Sorted JSON, indented, with each aggregation on one line of its own (``content``:
    the state's ``content()``, when already made).

    One line per address keeps a diff of the state readable (a line per changed address)
    while a state of 10,000 aggregations with history stays a size ``json`` reads quickly.
    """
    document = state.to_json(content)
    aggregations = document.pop("aggregations")
    previous = document.pop("previous_sources", None)
    skeleton = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False)
    block = _aggregations_block(aggregations, "  ")
    if previous is not None:
        # Between "lineage" and "reports" in sorted order; "reports" is always there.
        marker = '\n  "reports": '
        at = skeleton.index(marker)
        skeleton = (
            skeleton[:at]
            + '\n  "previous_sources": '
            + _previous_block(previous)
            + ","
            + skeleton[at:]
        )
    # "aggregations" sorts first among the top-level keys.
    return '{\n  "aggregations": ' + block + ",\n" + skeleton[2:] + "\n"


def _aggregations_block(aggregations: dict[str, Any], indent: str) -> str:
    """An aggregations object with one line per address."""
    if not aggregations:
        return "{}"
    lines = ",\n".join(
        f"{indent}  {json.dumps(address, ensure_ascii=False)}: {_one_line(aggregations[address])}"
        for address in sorted(aggregations)
    )
    return f"{{\n{lines}\n{indent}}}"


def _previous_block(previous: dict[str, Any]) -> str:
    """The previous_sources object, each of its aggregations on one line too."""
    entries = []
    for key in sorted(previous):
        entry = previous[key]
        entries.append(
            f"    {json.dumps(key, ensure_ascii=False)}: {{\n"
            f'      "aggregations": {_aggregations_block(entry["aggregations"], "      ")},\n'
            f'      "source": {_one_line(entry["source"])}\n    }}'
        )
    return "{\n" + ",\n".join(entries) + "\n  }"


def write_state(path: Path, state: State, previous: State | None) -> State:
    """Write ``state`` if its content differs from ``previous``; return what is on disk.

    The serial is bumped here, once per write that changes content; a no-op writes nothing.
    The caller holds the state lock, so temporary files beside the state are leftovers of a
    killed run and are removed.
    """
    content = state.content()  # made once: compared, then written (10,000 entries)
    if previous is not None and previous.content() == content:
        return previous
    serial = previous.serial + 1 if previous is not None else max(state.serial, 1)
    lineage = previous.lineage if previous is not None else state.lineage
    written = replace(state, serial=serial, lineage=lineage, tool_version=__version__)
    check_unchanged(path, previous)
    try:
        _remove_leftovers(path)
        _backup(path)
        # ``written`` differs only in bookkeeping fields, outside the content.
        atomic_write_text(path, serialise(written, content))
    except OSError as exc:
        raise StateError(f"{path}: cannot write the state: {exc.strerror or exc}") from None
    return written


def check_unchanged(path: Path, previous: State | None) -> None:
    """Refuse to write unless the state file is still ``previous`` and the lock still ours."""
    guard.check_unchanged(path, (previous.lineage, previous.serial) if previous else None)


def _backup(path: Path) -> None:
    """Make ``<state>.backup`` the current state file in one rename, so it is never torn."""
    backup = backup_path(path)
    staged = backup.with_name(f".{backup.name}.tmp")
    # A leftover may be a hard link to the state itself: copying onto it would truncate it.
    with contextlib.suppress(FileNotFoundError):
        staged.unlink()
    try:
        os.link(path, staged)  # the same bytes without a copy
    except FileNotFoundError:
        return
    except OSError:  # a file system without hard links
        shutil.copy2(path, staged)
    os.replace(staged, backup)
    # When the backup already is the state (a run killed after its backup, before its write),
    # rename does nothing and leaves the staged name behind.
    with contextlib.suppress(FileNotFoundError):
        staged.unlink()


def _remove_leftovers(path: Path) -> None:
    """Remove temporary files a killed write left beside the state."""
    # Only names exactly as ``atomic_write_text`` makes them, and files, not links.
    for leftover in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        match = TEMP_FILE_RE.fullmatch(leftover.name)
        if match is not None and match["name"] == path.name and not leftover.is_symlink():
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def remove_addresses(state: State, addresses: set[str]) -> State:
    """The state without those aggregation addresses (``casereport state rm``)."""
    return replace(
        state,
        aggregations={a: s for a, s in state.aggregations.items() if a not in addresses},
    )


def state_dir_gitignore(path: Path) -> None:
    """Keep a state directory out of Git even where the workspace forgot to ignore it."""
    ignore = path.parent / ".gitignore"
    # lexists: a link there (even dangling) is not written through, nor replaced.
    if path.parent.name == ".casereport" and not os.path.lexists(ignore):
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(ignore, "*\n")


__all__ = [
    "DEFAULT_STATE_PATH",
    "FORMAT_VERSION",
    "MAX_FORMAT_VERSION",
    "AggregationState",
    "History",
    "PreviousSource",
    "ReportState",
    "Source",
    "State",
    "backup_path",
    "check_unchanged",
    "data_hash",
    "file_sha256",
    "history_entry",
    "load_state",
    "new_state",
    "parse_aggregation",
    "parse_state",
    "remove_addresses",
    "serialise",
    "source_key",
    "switch_source",
    "with_result",
    "write_state",
]
