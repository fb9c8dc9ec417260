"""What an apply or a render did, one event at a time, for whoever follows the run.

The engine never prints: it tells a ``Listener`` (any callable taking an event) what
happens as it happens, and the command line's views read the same events. The human view
(``casereport.cli_events``) turns them into the progress bar on a terminal, progress lines
in CI logs (``engine.progress``) and the summary; ``apply --json`` writes each as one line
of JSON (``json_line``), like ``terraform apply -json``. One stream of events, several
views, and no second copy of the apply loop.

The stream's shape is versioned (``EVENTS_FORMAT_VERSION``, in the first event) and
documented in docs/apply-json.md, with a JSON Schema in schema/apply-json.schema.json.
Fields may be added within a format version; none is removed or changes meaning.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from casereport import __version__, clock

if TYPE_CHECKING:
    from casereport.checks.results import CheckResult
    from casereport.engine.plan import Plan

EVENTS_FORMAT_VERSION = 1

Stage = Literal["fetch", "render"]


@dataclass(frozen=True)
class Version:
    """The stream's first event: its format and the tool that writes it."""

    command: str  # "apply" or "render"

    def fields(self) -> dict[str, Any]:
        return {
            "format_version": EVENTS_FORMAT_VERSION,
            "tool_version": __version__,
            "command": self.command,
            "message": f"casereport {__version__}: {self.command}",
        }


@dataclass(frozen=True)
class Planned:
    """The plan about to be applied (or found to have nothing to do)."""

    plan: Plan

    def fields(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "message": plan.summary(),
            "has_changes": plan.has_changes,
            "source": plan.source.to_json(),
            "counts": plan.counts().to_json(),
            "changes": [
                {
                    "address": change.address,
                    "report": change.report,
                    "action": change.action,
                    "reason": change.reason,
                }
                for change in plan.aggregations
                if change.action != "no-op" or change.moved_from is not None
            ],
            "reports": [
                {"report": change.name, "action": change.action, "reasons": list(change.reasons)}
                for change in (*plan.reports, plan.index)
                if change.action != "no-op"
            ],
        }


@dataclass(frozen=True)
class Started:
    """A stage begins: ``total`` addresses to fetch, or reports to render."""

    stage: Stage
    total: int

    def fields(self) -> dict[str, Any]:
        if self.stage == "fetch":
            what = f"{_plural(self.total, 'aggregation')} to fetch"
        else:
            what = f"{_plural(self.total, 'report')} to render"
        return {
            "message": f"{self.total:,} {what}",
            "stage": self.stage,
            "total": self.total,
        }


@dataclass(frozen=True)
class Fetched:
    """One aggregation's new result arrived (one request may answer several addresses)."""

    address: str
    report: str
    total: float
    groups: int  # how many groups the answer holds
    duration: float  # seconds the request took, retries and rate-limit waits included

    def fields(self) -> dict[str, Any]:
        return {
            "message": f"{self.address}: fetched, total {_number(self.total)}",
            "address": self.address,
            "report": self.report,
            "total": _number(self.total),
            "groups": self.groups,
            "duration": round(self.duration, 3),
        }


@dataclass(frozen=True)
class Failed:
    """An aggregation could not be fetched, or a report not rendered (``address`` is the
    report's name then; None with neither: a failure of the whole stage)."""

    stage: Stage
    message: str  # the one-line error
    address: str | None = None
    report: str | None = None

    def fields(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "stage": self.stage,
            "address": self.address,
            "report": self.report,
        }


@dataclass(frozen=True)
class Rendered:
    """A report's pages (``report`` None: the site index's) were rendered; ``files`` are
    all of its files in the site, written or found already up to date."""

    report: str | None
    files: Sequence[str]

    def fields(self) -> dict[str, Any]:
        what = "site index" if self.report is None else f"report {self.report}"
        return {
            "message": f"{what}: rendered {len(self.files)} {_plural(len(self.files), 'file')}",
            "report": self.report,
            "files": sorted(self.files),
        }


@dataclass(frozen=True)
class Check:
    """One evaluated check (the shape is fixed now; the checks feature emits it)."""

    report: str
    address: str
    name: str
    severity: str  # "error" or "warn"
    passed: bool
    message: str

    @classmethod
    def of(cls, result: CheckResult) -> Check:
        return cls(
            report=result.report,
            address=result.address,
            name=result.name,
            severity=result.severity,
            passed=result.passed,
            message=result.message,
        )

    def fields(self) -> dict[str, Any]:
        return {
            "report": self.report,
            "address": self.address,
            "name": self.name,
            "severity": self.severity,
            "passed": self.passed,
            "message": self.message,
        }


@dataclass(frozen=True)
class Notice:
    """A one-line notice or warning the run printed to stderr without ``--json``."""

    message: str

    def fields(self) -> dict[str, Any]:
        level = "warning" if "warning:" in self.message else "info"
        return {"message": self.message, "level": level}


@dataclass(frozen=True)
class Summary:
    """The stream's last event: what the run did, and its exit code."""

    message: str  # the summary line of the human output
    exit_code: int
    fetched: int = 0
    api_calls: int = 0
    rendered: int = 0
    deleted: int = 0
    moved: int = 0
    failures: Sequence[str] = ()  # one line each, as the human output lists them
    interrupted: bool = False
    error: str | None = None  # the error that stopped the run before it finished

    def fields(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "exit_code": self.exit_code,
            "fetched": self.fetched,
            "api_calls": self.api_calls,
            "rendered": self.rendered,
            "deleted": self.deleted,
            "moved": self.moved,
            "failed": len(self.failures),
            "failures": list(self.failures),
            "interrupted": self.interrupted,
            "error": self.error,
        }


Event = Version | Planned | Started | Fetched | Failed | Rendered | Check | Notice | Summary
Listener = Callable[[Event], None]

#: Each event's ``type`` in the stream.
TYPES: dict[type[Any], str] = {
    Version: "version",
    Planned: "planned",
    Started: "started",
    Fetched: "fetched",
    Failed: "failed",
    Rendered: "rendered",
    Check: "check",
    Notice: "notice",
    Summary: "summary",
}


def to_json(event: Event, moment: datetime | None = None) -> dict[str, Any]:
    """The event as its line of the stream: ``type`` and ``timestamp`` first (RFC 3339,
    UTC, to the second, from ``casereport.clock`` unless ``moment`` is given)."""
    when = (moment or clock.now()).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"type": TYPES[type(event)], "timestamp": when, **event.fields()}


def json_line(event: Event, moment: datetime | None = None) -> str:
    """One line of JSON, without its line end; text outside ASCII is kept as it is."""
    return json.dumps(to_json(event, moment), ensure_ascii=False, separators=(",", ":"))


def _number(value: float) -> int | float:
    """A count as an integer when it is one (the API sends doubles: ``42.0``)."""
    return int(value) if float(value).is_integer() else value


def _plural(count: int, word: str) -> str:
    return word if count == 1 else f"{word}s"
