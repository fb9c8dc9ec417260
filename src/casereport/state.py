"""State: what the last apply fetched and rendered (``.casereport/state.json``).

The file is JSON with sorted keys, so diffs stay readable and equal states are equal bytes:

    {
      "format_version": 1,
      "lineage": "<uuid set when the state is created>",
      "serial": 7,                       # bumped by every write that changes content
      "tool_version": "0.1.0",
      "source": {"kind": "emulator", "site": "emulator", "detail": "5000 synthetic cases (seed 1)"},
      "aggregations": {
        "support-weekly.by_status": {
          "report": "support-weekly", "title": "Cases by status",
          "request": {"query_filter": "...", "groups": ["status"], "limit": 14},
          "fingerprint": "<sha256 of the canonical request>",
          "result": {"id": "...", "total": 100.0, "groups": [{"group": "OPEN", "value": [42.0]}]},
          "fetched_at": "2026-11-26T19:00:00Z",
          "history": [{"fetched_at": "...", "total": 97.0, "groups": {"OPEN": 40.0}}, ...]
        }
      },
      "reports": {
        "support-weekly": {"definition_hash": "...", "template_hash": "...", "data_hash": "...",
                           "outputs": {"support-weekly.html": "<sha256>", ...}}
      },
      "site": {"outputs": {"index.html": "<sha256>", "index.md": "<sha256>"}}
    }

Results and history stay plain JSON (mappings and lists) rather than objects: a full state
holds 10,000 aggregations with their history, and building objects for all of them would
cost more than planning itself. History is bounded (``HISTORY_LIMIT`` entries, each with the
total and the counts of its top groups), oldest first.

Writes are atomic (temp file, fsync, rename) after copying the previous file to
``<state>.backup``. ``serial`` changes only when content does, so a no-op apply leaves the
file untouched. Credentials never enter state: the source records a site, not keys.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from casereport import __version__
from casereport.errors import StateError
from casereport.fsutil import atomic_write_text

FORMAT_VERSION = 1
DEFAULT_STATE_PATH = Path(".casereport/state.json")
HISTORY_LIMIT = 30
HISTORY_GROUPS = 10

JsonObject = Mapping[str, Any]


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
    history: tuple[JsonObject, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "report": self.report,
            "title": self.title,
            "request": dict(self.request),
            "fingerprint": self.fingerprint,
            "result": dict(self.result),
            "fetched_at": self.fetched_at,
            "history": list(self.history),
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

    def content(self) -> dict[str, Any]:
        """Everything but the bookkeeping fields; equal content means nothing to write."""
        return {
            "source": self.source.to_json() if self.source else None,
            "aggregations": {
                address: self.aggregations[address].to_json()
                for address in sorted(self.aggregations)
            },
            "reports": {name: self.reports[name].to_json() for name in sorted(self.reports)},
            "site": {"outputs": dict(sorted(self.site_outputs.items()))},
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "lineage": self.lineage,
            "serial": self.serial,
            "tool_version": self.tool_version,
            **self.content(),
        }


def new_state() -> State:
    """An empty state with a fresh lineage."""
    return State(lineage=str(uuid.uuid4()))


def history_entry(result: JsonObject, fetched_at: str) -> dict[str, Any]:
    """The compact form of a result kept in history: total and its top groups' first counts."""
    groups = {}
    for group in list(result.get("groups", ()))[:HISTORY_GROUPS]:
        values = group.get("value") or [0.0]
        groups[str(group["group"])] = float(values[0])
    return {"fetched_at": fetched_at, "total": float(result["total"]), "groups": groups}


def data_hash(
    addresses: Iterable[str], aggregations: Mapping[str, AggregationState], source: Source | None
) -> str:
    """A hash of everything a report page shows from state: results, history and source."""
    digest = hashlib.sha256()
    digest.update(json.dumps(source.to_json() if source else None, sort_keys=True).encode())
    for address in addresses:
        entry = aggregations.get(address)
        record = entry.to_json() if entry is not None else None
        digest.update(json.dumps([address, record], sort_keys=True).encode())
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
) -> AggregationState:
    """The aggregation after a fetch: the old result moves into (bounded) history."""
    history: tuple[JsonObject, ...] = ()
    if previous is not None:
        # A changed request makes old numbers incomparable: history restarts.
        if previous.fingerprint == fingerprint:
            history = (*previous.history, history_entry(previous.result, previous.fetched_at))
        history = history[-HISTORY_LIMIT:]
    return AggregationState(
        address=address,
        report=report,
        title=title,
        request=request,
        fingerprint=fingerprint,
        result=result,
        fetched_at=fetched_at,
        history=history,
    )


# -- reading --------------------------------------------------------------------------


def _bad(path: Path, problem: str) -> StateError:
    backup = backup_path(path)
    hint = (
        f"; restore the previous version from {backup}, or move the file away to start afresh"
        if backup.exists()
        else "; move the file away to start afresh (the next apply re-fetches everything)"
    )
    return StateError(f"{path}: {problem}{hint}")


def parse_aggregation(path: Path, address: str, raw: Any) -> AggregationState:
    if not isinstance(raw, dict):
        raise _bad(path, f"aggregations[{address!r}] is not an object")
    try:
        request = raw["request"]
        result = raw["result"]
        if not isinstance(request, dict) or not isinstance(result, dict):
            raise TypeError("request and result must be objects")
        return AggregationState(
            address=address,
            report=str(raw["report"]),
            title=str(raw.get("title", "")),
            request=request,
            fingerprint=str(raw["fingerprint"]),
            result=result,
            fetched_at=str(raw["fetched_at"]),
            history=tuple(raw.get("history", ())),
        )
    except (KeyError, TypeError) as exc:
        raise _bad(path, f"aggregations[{address!r}] is malformed ({exc})") from None


def _parse_report(path: Path, name: str, raw: Any) -> ReportState:
    try:
        outputs = raw["outputs"]
        if not isinstance(outputs, dict):
            raise TypeError("outputs must be an object")
        return ReportState(
            name=name,
            definition_hash=str(raw["definition_hash"]),
            template_hash=str(raw["template_hash"]),
            data_hash=str(raw["data_hash"]),
            outputs={str(k): str(v) for k, v in outputs.items()},
        )
    except (KeyError, TypeError) as exc:
        raise _bad(path, f"reports[{name!r}] is malformed ({exc})") from None


def parse_state(path: Path, text: str) -> State:
    """Parse state JSON read from ``path``; any problem is a StateError naming the file."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _bad(path, f"not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(raw, dict):
        raise _bad(path, "not a casereport state (expected a JSON object)")
    version = raw.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise _bad(path, "not a casereport state (no format_version)")
    if version > FORMAT_VERSION:
        raise StateError(
            f"{path}: written by a newer casereport ({raw.get('tool_version', '?')}, state format "
            f"{version}; this version reads up to {FORMAT_VERSION}); upgrade casereport"
        )
    try:
        lineage = str(raw["lineage"])
        serial = raw["serial"]
        if not isinstance(serial, int) or isinstance(serial, bool):
            raise TypeError("serial must be an integer")
        source_raw = raw.get("source")
        source = (
            Source(
                kind=str(source_raw["kind"]),
                site=str(source_raw["site"]),
                detail=str(source_raw.get("detail", "")),
            )
            if source_raw
            else None
        )
        aggregations_raw = raw.get("aggregations", {})
        reports_raw = raw.get("reports", {})
        site_raw = raw.get("site", {}).get("outputs", {})
        if not all(isinstance(x, dict) for x in (aggregations_raw, reports_raw, site_raw)):
            raise TypeError("aggregations, reports and site.outputs must be objects")
    except (KeyError, TypeError, AttributeError) as exc:
        raise _bad(path, f"malformed ({exc})") from None
    return State(
        lineage=lineage,
        serial=serial,
        tool_version=str(raw.get("tool_version", "")),
        source=source,
        aggregations={
            address: parse_aggregation(path, address, value)
            for address, value in aggregations_raw.items()
        },
        reports={name: _parse_report(path, name, value) for name, value in reports_raw.items()},
        site_outputs={str(k): str(v) for k, v in site_raw.items()},
        format_version=FORMAT_VERSION,
    )


def load_state(path: Path) -> State | None:
    """The state at ``path``, or None when there is none yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"{path}: cannot read the state: {exc.strerror}") from None
    return parse_state(path, text)


# -- writing --------------------------------------------------------------------------


def backup_path(path: Path) -> Path:
    return path.with_name(path.name + ".backup")


def serialise(state: State) -> str:
    return json.dumps(state.to_json(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_state(path: Path, state: State, previous: State | None) -> State:
    """Write ``state`` if its content differs from ``previous``; return what is on disk.

    The serial is bumped here, once per write that changes content; a no-op writes nothing.
    """
    if previous is not None and previous.content() == state.content():
        return previous
    serial = previous.serial + 1 if previous is not None else max(state.serial, 1)
    lineage = previous.lineage if previous is not None else state.lineage
    written = replace(state, serial=serial, lineage=lineage, tool_version=__version__)
    try:
        if path.exists():
            shutil.copy2(path, backup_path(path))
        atomic_write_text(path, serialise(written))
    except OSError as exc:
        raise StateError(f"{path}: cannot write the state: {exc.strerror}") from None
    return written


def remove_addresses(state: State, addresses: set[str]) -> State:
    """The state without those aggregation addresses (``casereport state rm``)."""
    return replace(
        state,
        aggregations={a: s for a, s in state.aggregations.items() if a not in addresses},
    )


def state_dir_gitignore(path: Path) -> None:
    """Keep a state directory out of Git even where the workspace forgot to ignore it."""
    ignore = path.parent / ".gitignore"
    if path.parent.name == ".casereport" and not ignore.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        ignore.write_text("*\n", encoding="utf-8")


def file_sha256(path: Path) -> str | None:
    """sha256 of a file's bytes, or None when it does not exist."""
    try:
        with open(path, "rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except FileNotFoundError:
        return None


__all__ = [
    "DEFAULT_STATE_PATH",
    "FORMAT_VERSION",
    "AggregationState",
    "ReportState",
    "Source",
    "State",
    "backup_path",
    "data_hash",
    "file_sha256",
    "history_entry",
    "load_state",
    "new_state",
    "parse_aggregation",
    "parse_state",
    "remove_addresses",
    "serialise",
    "with_result",
    "write_state",
]
