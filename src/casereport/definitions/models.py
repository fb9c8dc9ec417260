"""The report model: what a report file means once validated, and located diagnostics.

Plain, immutable data passed from loading (``casereport.definitions.load``) to expansion
and planning; every position is 1-based and points into the report file. The records
made by the thousand (a ``SourceString`` for every string of every report) are named
tuples: as immutable as frozen dataclasses, and built three times faster.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from casereport.definitions.yamlnodes import value_positions
from casereport.settings import Refresh

if TYPE_CHECKING:
    from casereport.diagnostics import Span

__all__ = [
    "DEFAULT_FORMATS",
    "DEFAULT_TEMPLATE",
    "AggregationDefinition",
    "CheckDefinition",
    "Diagnostic",
    "ForEach",
    "ForEachItem",
    "LoadResult",
    "MovedEntry",
    "NotifyName",
    "ReadingKey",
    "ReportDefinition",
    "Severity",
    "SourceString",
    "Variable",
    "diagnostics_json",
    "sort_diagnostics",
]

# PDF needs Chromium, so a report asks for it explicitly.
DEFAULT_FORMATS = ("markdown", "html")
DEFAULT_TEMPLATE = "report"

Severity = Literal["error", "warning"]

# What a position inside a string points at: an interpolation or a query word.
_TOKEN = re.compile(r"\$\{[^}]*\}?|[^\s:()\"'\[\]{}]+")


# --------------------------------------------------------------------------- diagnostics


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One located message. ``line`` and ``column`` are 1-based; ``None`` when the
    message is not about a place in a file (e.g. a ``--var`` option). ``end_column``,
    when the producer knows it, is the column just past the span meant on ``line``;
    without it the span is read from the source (``casereport.diagnostics``)."""

    severity: Severity
    summary: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    detail: str = ""
    end_column: int | None = None

    def __str__(self) -> str:
        parts = (self.file, self.line, self.column)
        where = "".join(f"{part}:" for part in parts if part)
        return f"{where} {self.severity}: {self.summary}".lstrip()

    def span(self) -> Span | None:
        """Where the message points, start and end (None when not in a file)."""
        from casereport.diagnostics import span_of  # (only validate and errors read files)

        return span_of(self.file, self.line, self.column, self.end_column)

    def to_json(self) -> dict[str, Any]:
        """The ``validate --json`` shape of one diagnostic: ``span`` holds the 1-based
        start and end (``end.column`` just past the span), or null."""
        span = self.span()
        return {
            "severity": self.severity,
            "summary": self.summary,
            "detail": self.detail,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "span": None
            if span is None
            else {
                "start": {"line": span.line, "column": span.column},
                "end": {"line": span.end_line, "column": span.end_column},
            },
        }

    def with_snippet(self, *, colour: bool = False) -> str:
        """The message line, and under it the source line with the span marked."""
        from casereport.diagnostics import snippet

        span = self.span()
        shown = "" if span is None or self.file is None else snippet(span, self.file, colour=colour)
        return f"{self}\n{shown}" if shown else str(self)


def diagnostics_json(diagnostics: Sequence[Diagnostic]) -> dict[str, Any]:
    """``{valid, error_count, warning_count, diagnostics}`` for ``validate --json``."""
    errors = sum(1 for d in diagnostics if d.severity == "error")
    return {
        "valid": errors == 0,
        "error_count": errors,
        "warning_count": len(diagnostics) - errors,
        "diagnostics": [d.to_json() for d in diagnostics],
    }


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> tuple[Diagnostic, ...]:
    """Order by file, line and column, dropping exact repeats (for_each instances)."""
    unique = dict.fromkeys(diagnostics)
    return tuple(sorted(unique, key=lambda d: (d.file or "", d.line or 0, d.column or 0)))


# --------------------------------------------------------------------------- models


class SourceString(NamedTuple):
    """A string from a report file, with where it was written.

    ``raw`` is the scalar's source text (quotes included) and ``style`` its YAML style
    (``""`` plain, ``'``, ``"``, ``|`` or ``>``), so a position inside the value can be
    traced to a column in the file (``location_of``).
    """

    value: str
    line: int
    column: int
    style: str = ""
    raw: str = ""

    def location_of(self, index: int) -> tuple[int, int]:
        """The 1-based (line, column) in the file of character ``index`` of ``value``.

        ``index == len(value)`` is the position just after the value (for "unexpected end
        of query"). Falls back to the start of the scalar when the mapping is unclear.
        """
        positions = value_positions(self.value, self.raw, self.style, self.line, self.column)
        if positions is None:
            return self.line, self.column
        return positions[max(0, min(index, len(positions) - 1))]

    def end_column_of(self, index: int) -> int | None:
        """The column just past the token of ``value`` at ``index`` (a ``${...}``, a
        query word or field; else the one character), when it is on one line of the file."""
        match = _TOKEN.match(self.value, index)
        length = len(match.group()) if match else 1
        line, column = self.location_of(index)
        last_line, last = self.location_of(index + length - 1)
        return last + 1 if last_line == line and last >= column else None


class Variable(NamedTuple):
    """A report variable: its value as written, and where."""

    name: str
    value: str
    line: int
    column: int


class ForEachItem(NamedTuple):
    """One ``for_each`` instance: ``key`` (``each.key``) and ``value`` (``each.value``)."""

    key: str
    value: str
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class ForEach:
    """A ``for_each`` list (key == value) or mapping, in the order written."""

    items: tuple[ForEachItem, ...]
    line: int
    column: int


class ReadingKey(NamedTuple):
    """A reading key as written (``compare``, ``order``, ``labels``, ``better`` or ``trend``,
    see ``casereport.definitions.reading_keys``), its checked value and where the value is.

    ``value`` has the form of the same field of ``reading.Reading``: a string, or a tuple of
    strings (``order``, ``trend``) or of (raw value, label) pairs (``labels``).
    """

    name: str
    value: Any
    line: int
    column: int


class CheckDefinition(NamedTuple):
    """A ``checks:`` entry as written (``casereport.definitions.checks``): a CEL assertion
    with its name, severity (``error`` or ``warn``) and message, and where it is."""

    name: str
    assertion: SourceString  # the ``assert`` string, positioned for diagnostics
    severity: Literal["error", "warn"] = "error"
    message: str = ""
    line: int = 0  # the entry's own position
    column: int = 0


class AggregationDefinition(NamedTuple):
    """An aggregation as written, before variables and ``for_each`` are applied."""

    id: str
    line: int
    column: int
    title: SourceString | None
    query_filter: SourceString
    group_by: tuple[SourceString, ...]
    limit: int
    for_each: ForEach | None = None
    reading: tuple[ReadingKey, ...] = ()  # its own reading keys, over the report's
    checks: tuple[CheckDefinition, ...] = ()  # applied to each for_each instance


class MovedEntry(NamedTuple):
    """A ``moved`` entry as written: ``source`` (``from``) and ``to`` (None: the whole
    report was renamed from ``source``), and where ``from`` is."""

    source: str
    to: str | None
    line: int
    column: int


class NotifyName(NamedTuple):
    """A delivery target a report's ``notify:`` names, and where."""

    name: str
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class ReportDefinition:
    """A report file that passed validation (its invalid aggregations are left out)."""

    name: str
    path: Path
    title: SourceString
    aggregations: tuple[AggregationDefinition, ...]
    description: SourceString | None = None
    owner: str | None = None
    refresh: Refresh | None = None
    formats: tuple[str, ...] = DEFAULT_FORMATS
    template: str = DEFAULT_TEMPLATE
    vars: tuple[Variable, ...] = ()
    moved: tuple[MovedEntry, ...] = ()
    reading: tuple[ReadingKey, ...] = ()  # the defaults of its aggregations
    checks: tuple[CheckDefinition, ...] = ()  # report-level checks (over ``aggregations``)
    notify: tuple[NotifyName, ...] | None = None  # None: every target


@dataclass(frozen=True, slots=True)
class LoadResult:
    """Every report that loaded, and every diagnostic of every file."""

    reports: tuple[ReportDefinition, ...]
    diagnostics: tuple[Diagnostic, ...]
    files: tuple[Path, ...] = ()
    # What files with errors left out (whole reports, or broken aggregations with a
    # placeholder title), as far as it could be read: expanded only so that their
    # variables are checked in the same run, never planned.
    check_only: tuple[ReportDefinition, ...] = ()

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)
