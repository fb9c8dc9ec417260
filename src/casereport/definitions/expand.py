"""Expand report definitions into fully resolved aggregation requests.

``${var.NAME}`` takes its value from, lowest precedence first: the workspace's
``casereport.toml`` ``[vars]``, the report's own ``vars``, and ``--var NAME=VALUE``.
``for_each`` (a list, or a mapping key -> value) makes one aggregation per item, with
``${each.key}`` and ``${each.value}`` (for a list, key == value). Interpolation applies to
report and aggregation titles, the report description, ``query_filter`` and ``group_by``
entries; ``$${`` writes a literal ``${``. Strings that needed variables are checked here
(query syntax, group fields), with positions traced back to the file.

Addresses are ``report.aggregation`` and ``report.aggregation["key"]``: they depend only
on names, so reordering keys or reformatting a file keeps them. Each request carries a
fingerprint, the SHA-256 (hex) of the canonical JSON (sorted keys, no spaces, UTF-8) of
``{"query_filter": str, "groups": [str, ...], "limit": int}``, so identical requests in
different reports are fetched once.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from casereport.definitions.fields import check_query_fields, known_fields
from casereport.definitions.load import check_group, check_query, load_reports
from casereport.definitions.models import (
    AggregationDefinition,
    CheckDefinition,
    Diagnostic,
    ReportDefinition,
    SourceString,
    diagnostics_json,
    sort_diagnostics,
)
from casereport.definitions.moved import Move, check_moves, resolve
from casereport.definitions.notify_key import check_notify
from casereport.definitions.reading import DEFAULT_READING, Reading
from casereport.definitions.reading_keys import resolve_reading, retention_warnings
from casereport.fsutil import collector_paused
from casereport.numbers import count_of
from casereport.settings import (
    DEFAULT_REFRESH,
    VAR_NAME_RE,
    Refresh,
    Settings,
    did_you_mean,
    read_settings,
)

__all__ = [
    "AggregationSpec",
    "Expansion",
    "ReportSpec",
    "address",
    "expand",
    "expand_workspace",
    "fingerprint",
    "validation_output",
]


@dataclass(frozen=True)
class AggregationSpec:
    """One fully resolved aggregation request, at a stable address.

    (No slots: expansion builds one per aggregation into its ``__dict__``, see
    ``_Expander.aggregation``.)
    """

    address: str
    report: str
    aggregation_id: str
    key: str | None
    title: str
    query_filter: str
    groups: tuple[str, ...]
    limit: int
    fingerprint: str
    # How the numbers read (compare:, order:, labels:, better:, trend:): not fetched, so
    # not in the fingerprint.
    reading: Reading = DEFAULT_READING
    # ``checks:`` of the aggregation (the same for each ``for_each`` key): read from state,
    # never fetched, so not in the fingerprint either.
    checks: tuple[CheckDefinition, ...] = ()

    def request(self) -> dict[str, Any]:
        """The fingerprinted request: ``{query_filter, groups, limit}``."""
        return {"query_filter": self.query_filter, "groups": list(self.groups), "limit": self.limit}


@dataclass(frozen=True, slots=True)
class ReportSpec:
    """A report with its variables resolved and its aggregations expanded.

    ``definition_hash`` covers everything in the definition that shows on the rendered
    page (the reading keys too, but not ``refresh``), so it changes exactly when a report
    must be re-rendered for a definition change; formatting and key order do not change it.
    """

    name: str
    path: Path
    title: str
    description: str | None
    owner: str | None
    refresh: Refresh
    formats: tuple[str, ...]
    template: str
    aggregations: tuple[AggregationSpec, ...]
    definition_hash: str
    moves: tuple[Move, ...] = ()  # ``moved:`` entries, full addresses
    # ``notify:``, the delivery targets its runs go to (None: every target); not shown on
    # the page, so not in the definition hash.
    notify: tuple[str, ...] | None = None
    checks: tuple[CheckDefinition, ...] = ()  # report-level ``checks:``

    @property
    def has_checks(self) -> bool:
        """True when the report or any of its aggregations has ``checks:``."""
        return bool(self.checks) or any(a.checks for a in self.aggregations)


@dataclass(frozen=True, slots=True)
class Expansion:
    """Every expanded report, and every diagnostic from settings, loading and expansion."""

    reports: tuple[ReportSpec, ...]
    diagnostics: tuple[Diagnostic, ...]
    # The reports of files with errors, as far as they expanded (``LoadResult.check_only``):
    # never planned, only checked (their templates, by ``validate``).
    checked: tuple[ReportSpec, ...] = ()

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return self.error_count == 0

    @property
    def error_count(self) -> int:
        return sum(1 for d in self.diagnostics if d.severity == "error")

    @property
    def warning_count(self) -> int:
        return len(self.diagnostics) - self.error_count

    def strict(self) -> Expansion:
        """This expansion with every warning made an error (``validate --strict``,
        ``strict = true``)."""
        return replace(
            self,
            diagnostics=tuple(
                d if d.severity == "error" else replace(d, severity="error")
                for d in self.diagnostics
            ),
        )

    @property
    def every_report(self) -> tuple[ReportSpec, ...]:
        """The reports to plan, then those of files with errors that are not among them:
        what ``validate`` checks the templates of."""
        names = {report.name for report in self.reports}
        return (*self.reports, *(r for r in self.checked if r.name not in names))

    @property
    def aggregations(self) -> tuple[AggregationSpec, ...]:
        """Every aggregation of every report, in report then file order."""
        return tuple(spec for report in self.reports for spec in report.aggregations)

    def by_fingerprint(self) -> dict[str, tuple[AggregationSpec, ...]]:
        """Aggregations grouped by request fingerprint (one fetch serves each group)."""
        groups: dict[str, list[AggregationSpec]] = {}
        for spec in self.aggregations:
            groups.setdefault(spec.fingerprint, []).append(spec)
        return {key: tuple(specs) for key, specs in groups.items()}


def _canonical_json(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: what the fingerprint and the definition hash digest.

    orjson writes exactly the bytes of ``json.dumps(value, sort_keys=True,
    separators=(",", ":"), ensure_ascii=False)`` encoded as UTF-8 (tested), ten times
    faster, and this runs for every aggregation of every report.
    """
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:  # a lone surrogate: the same UnicodeEncodeError as ever
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return text.encode("utf-8")


def fingerprint(query_filter: str, groups: Sequence[str], limit: int) -> str:
    """SHA-256 hex of the canonical JSON of ``{query_filter, groups, limit}``."""
    request = {"query_filter": query_filter, "groups": list(groups), "limit": limit}
    return hashlib.sha256(_canonical_json(request)).hexdigest()


def address(report: str, aggregation_id: str, key: str | None = None) -> str:
    """``report.aggregation`` or ``report.aggregation["key"]``."""
    if key is None:
        return f"{report}.{aggregation_id}"
    return f'{report}.{aggregation_id}["{key}"]'


def expand_workspace(
    root: Path = Path("."),
    *,
    reports_dir: Path | None = None,
    cli_vars: Mapping[str, str] | None = None,
) -> tuple[Settings, Expansion]:
    """Read the settings, load every report and expand it: what ``validate`` checks."""
    settings, problems = read_settings(root)
    if reports_dir is not None:
        settings = settings.with_overrides(reports_dir=reports_dir)
    # Thousands of report files make hundreds of thousands of small objects, all kept.
    with collector_paused():
        loaded = load_reports(settings.reports_dir, settings.attributes)
        expansion = expand(
            loaded.reports,
            workspace_vars=settings.vars,
            cli_vars=cli_vars or {},
            default_refresh=settings.refresh,
            attributes=settings.attributes,
            check_only=loaded.check_only,
        )
    settings_diagnostics = [
        Diagnostic("error", p.message, str(p.path), p.line, p.column) for p in problems
    ]
    retention = retention_warnings(loaded.reports, settings.history)
    notify = check_notify(loaded.reports, {target.name for target in settings.notify})
    diagnostics = sort_diagnostics(
        [*settings_diagnostics, *loaded.diagnostics, *expansion.diagnostics, *retention, *notify]
    )
    return settings, Expansion(expansion.reports, diagnostics, expansion.checked)


def expand(
    reports: Sequence[ReportDefinition],
    *,
    workspace_vars: Mapping[str, str] | None = None,
    cli_vars: Mapping[str, str] | None = None,
    default_refresh: Refresh = DEFAULT_REFRESH,
    attributes: Sequence[str] = (),
    check_only: Sequence[ReportDefinition] = (),
) -> Expansion:
    """Resolve variables and ``for_each`` in loaded reports (sorted by name);
    ``attributes`` are the workspace's declared case attributes. ``check_only`` (parts of
    files with errors) are expanded for their diagnostics and ``Expansion.checked`` only."""
    known = known_fields(attributes)
    workspace_vars = workspace_vars or {}
    cli_vars = cli_vars or {}
    diagnostics: list[Diagnostic] = []
    used: set[str] = set()
    specs: list[ReportSpec] = []
    fingerprints: dict[tuple[str, tuple[str, ...], int], str] = {}
    checked: list[ReportSpec] = []
    every = [(r, False) for r in reports] + [(r, True) for r in check_only]
    for report, only_checked in sorted(every, key=lambda pair: pair[0].name):
        variables = dict(workspace_vars)
        variables.update((v.name, v.value) for v in report.vars)
        variables.update(cli_vars)
        expander = _Expander(report, variables, diagnostics, used, fingerprints, known)
        spec = expander.report(default_refresh, partial=only_checked)
        if spec is not None:
            (checked if only_checked else specs).append(spec)
    diagnostics += check_moves(specs)
    # What a mistyped --var was meant to be: every variable reports declare or use.
    declared = sorted(used | set(workspace_vars) | {v.name for r, _ in every for v in r.vars})
    for name in sorted(set(cli_vars) - used):
        if not VAR_NAME_RE.match(name):
            continue
        close = difflib.get_close_matches(name, declared, n=1)
        hint = f'did you mean "{close[0]}"? ' if close else ""
        names = f"the reports' variables: {', '.join(declared)}" if declared else "none has one"
        diagnostics.append(
            Diagnostic(
                "warning",
                f'--var "{name}" is not used by any report (no ${{var.{name}}} anywhere; '
                f"{hint}{names})",
                file="--var",
            )
        )
    return Expansion(tuple(specs), sort_diagnostics(diagnostics), tuple(checked))


def _shown(spec: AggregationSpec) -> list[Any]:
    """What of an aggregation its page shows, for the definition hash: its address, title
    and request, its reading when not the default and its checks when it has some (so
    hashes made before reading keys and checks existed stay the same). Labels in any order
    read the same."""
    shown: list[Any] = [spec.address, spec.title, spec.fingerprint]
    reading = spec.reading
    if reading != DEFAULT_READING:
        labels = sorted(reading.labels)
        shown.append([reading.compare, reading.order, labels, reading.better, reading.trend])
    if spec.checks:
        shown.append(_checks_shown(spec.checks))
    return shown


def _checks_shown(checks: Sequence[CheckDefinition]) -> list[list[str]]:
    """What of ``checks:`` a page shows (a badge each), for the definition hash."""
    return [[c.name, c.assertion.value, c.severity, c.message] for c in checks]


class _Failed(Exception):
    """An interpolation error was recorded; the string has no value."""


class _Expander:
    """Expands one report, recording diagnostics."""

    def __init__(
        self,
        report: ReportDefinition,
        variables: Mapping[str, str],
        diagnostics: list[Diagnostic],
        used: set[str],
        fingerprints: dict[tuple[str, tuple[str, ...], int], str],
        known: frozenset[str],
    ) -> None:
        self.definition = report
        self.known = known
        self.warned: set[tuple[int, int, str]] = set()
        self.variables = variables
        self.diagnostics = diagnostics
        self.used = used
        self.fingerprints = fingerprints
        self.file = str(report.path)
        self.failed = False

    def error(self, source: SourceString, index: int, message: str, detail: str = "") -> None:
        line, column = source.location_of(index)
        end = source.end_column_of(index)
        self.diagnostics.append(
            Diagnostic("error", message, self.file, line, column, detail, end_column=end)
        )
        self.failed = True

    def report(self, default_refresh: Refresh, *, partial: bool = False) -> ReportSpec | None:
        """The expanded report; ``partial``: whatever expanded, despite errors."""
        report = self.definition
        title = self.interpolate(report.title, "title", None)
        description = None
        if report.description is not None:
            description = self.interpolate(report.description, "description", None)
        aggregations: list[AggregationSpec] = []
        for definition in report.aggregations:
            if definition.for_each is None:
                spec = self.aggregation(definition, None, None)
                if spec is not None:
                    aggregations.append(spec)
                continue
            for item in definition.for_each.items:
                spec = self.aggregation(definition, item.key, item.value)
                if spec is not None:
                    aggregations.append(spec)
        if partial:
            title = title or report.name
        elif self.failed or title is None:
            return None
        shown: dict[str, Any] = {"checks": _checks_shown(report.checks)} if report.checks else {}
        digest = hashlib.sha256(
            _canonical_json(
                {
                    **shown,
                    "name": report.name,
                    "title": title,
                    "description": description,
                    "owner": report.owner,
                    "formats": list(report.formats),
                    "template": report.template,
                    "aggregations": [
                        [a.address, a.title, a.fingerprint]
                        if a.reading is DEFAULT_READING and not a.checks
                        else _shown(a)
                        for a in aggregations
                    ],
                }
            )
        ).hexdigest()
        return ReportSpec(
            name=report.name,
            path=report.path,
            title=title,
            description=description,
            owner=report.owner,
            refresh=report.refresh or default_refresh,
            formats=report.formats,
            template=report.template,
            aggregations=tuple(aggregations),
            definition_hash=digest,
            moves=resolve(report.name, report.path, report.moved),
            checks=report.checks,
            notify=None if report.notify is None else tuple(n.name for n in report.notify),
        )

    def aggregation(
        self, definition: AggregationDefinition, key: str | None, value: str | None
    ) -> AggregationSpec | None:
        each = None if key is None or value is None else (key, value)
        where = address(self.definition.name, definition.id, key)
        if definition.title is None:
            title: str | None = definition.id if key is None else f"{definition.id}: {key}"
        else:
            title = self.interpolate(definition.title, "title", each)
        query = self.interpolate(definition.query_filter, "query_filter", each)
        if query is not None and "$" in definition.query_filter.value:
            problem = check_query(query)
            if problem is not None:
                reason, position = problem
                source = definition.query_filter
                index = _source_index(source.value, each, self.variables, position)
                shown = f' (expanded for {where}: "{query}")' if query != source.value else ""
                self.error(source, index, f"invalid query_filter: {reason}{shown}", query)
            else:
                self.query_fields(definition.query_filter, query, each, where)
        groups: list[str] = []
        for source in definition.group_by:
            group = self.interpolate(source, "group_by", each)
            if group is None:
                continue
            if "$" in source.value:
                problem_group = check_group(group, self.known)
                if problem_group is not None:
                    severity, message = problem_group
                    line, column = source.line, source.column
                    self.diagnostics.append(Diagnostic(severity, message, self.file, line, column))
                    if severity == "error":
                        self.failed = True
                        continue
                if group in groups:
                    message = f'"group_by" lists "{group}" twice (after expansion)'
                    self.diagnostics.append(
                        Diagnostic("error", message, self.file, source.line, source.column)
                    )
                    self.failed = True
                    continue
            groups.append(group)
        if title is None or query is None or len(groups) != len(definition.group_by):
            return None
        request = (query, tuple(groups), definition.limit)
        digest = self.fingerprints.get(request)
        if digest is None:
            digest = self.fingerprints[request] = fingerprint(*request)
        reading = DEFAULT_READING
        if definition.reading or self.definition.reading:
            reading = resolve_reading(self.definition.reading, definition.reading)
        # Built as __init__ would build it, without its cost: a frozen dataclass sets every
        # field through object.__setattr__, a fifth of expanding 10,000 aggregations.
        spec = object.__new__(AggregationSpec)
        spec.__dict__.update(
            address=where,
            report=self.definition.name,
            aggregation_id=definition.id,
            key=key,
            title=title,
            query_filter=query,
            groups=request[1],
            limit=definition.limit,
            fingerprint=digest,
            reading=reading,
            checks=definition.checks,
        )
        return spec

    def query_fields(
        self, source: SourceString, query: str, each: tuple[str, str] | None, where: str
    ) -> None:
        """Warnings for the fields of an expanded query, traced back to the file."""
        for message, position in check_query_fields(query, self.known):
            index = _source_index(source.value, each, self.variables, position)
            line, column = source.location_of(index)
            if (line, column, message) in self.warned:  # once, not once per for_each item
                continue
            self.warned.add((line, column, message))
            shown = f' (expanded for {where}: "{query}")' if query != source.value else ""
            end = source.end_column_of(index)
            self.diagnostics.append(
                Diagnostic("warning", message + shown, self.file, line, column, end_column=end)
            )

    def interpolate(
        self, source: SourceString, what: str, each: tuple[str, str] | None
    ) -> str | None:
        text = source.value
        if "$" not in text:
            return text
        pieces, errors = _interpolate(text, each, self.variables, self.used)
        for index, message in errors:
            self.error(source, index, f"{what}: {message}")
        if errors:
            return None
        return "".join(piece for piece, _ in pieces)


# A piece of expanded text and the index in the source string where it came from: literal
# text maps character by character, a substituted value maps to its "${".
_Piece = tuple[str, int]
_EACH_ATTRIBUTES = ("key", "value")


def _interpolate(
    text: str,
    each: tuple[str, str] | None,
    variables: Mapping[str, str],
    used: set[str],
) -> tuple[list[_Piece], list[tuple[int, str]]]:
    pieces: list[_Piece] = []
    errors: list[tuple[int, str]] = []
    position = 0
    while True:
        start = text.find("$", position)
        if start < 0:
            pieces.append((text[position:], position))
            return pieces, errors
        if text.startswith("$${", start):
            pieces.append((text[position:start], position))
            pieces.append(("${", start + 1))
            position = start + 3
            continue
        if not text.startswith("${", start):
            pieces.append((text[position : start + 1], position))
            position = start + 1
            continue
        pieces.append((text[position:start], position))
        close = text.find("}", start + 2)
        if close < 0:
            errors.append(
                (start, 'unterminated "${": close it with "}", or write "$${" for a literal "${"')
            )
            return pieces, errors
        expression = text[start + 2 : close].strip()
        value = _resolve(expression, each, variables, used)
        if isinstance(value, tuple):
            errors.append((start, value[0]))
        else:
            pieces.append((value, -1 - start))
        position = close + 1


def _resolve(
    expression: str,
    each: tuple[str, str] | None,
    variables: Mapping[str, str],
    used: set[str],
) -> str | tuple[str]:
    """The value of one ``${...}`` expression, or a 1-tuple holding the error message."""
    namespace, dot, attribute = expression.partition(".")
    shown = f'"${{{expression}}}"'
    if namespace == "var" and dot:
        if not VAR_NAME_RE.match(attribute):
            return (f"invalid variable name in {shown}: use ${{var.NAME}}",)
        used.add(attribute)
        if attribute not in variables:
            hint = did_you_mean(attribute, variables)
            return (
                f'undefined variable "{attribute}"{hint}: define it under vars:, in '
                f"casereport.toml [vars], or pass --var {attribute}=VALUE",
            )
        return variables[attribute]
    if namespace == "each" and dot:
        if attribute not in _EACH_ATTRIBUTES:
            hint = did_you_mean(attribute, _EACH_ATTRIBUTES)
            return (f"unknown reference {shown}{hint}: use ${{each.key}} or ${{each.value}}",)
        if each is None:
            return (f"{shown} can only be used in an aggregation with for_each",)
        return each[0] if attribute == "key" else each[1]
    if namespace == "var":
        return (f"{shown} needs a variable name: use ${{var.NAME}}",)
    if namespace == "each":
        return (f"{shown} needs an attribute: use ${{each.key}} or ${{each.value}}",)
    hint = did_you_mean(namespace, ("var", "each")) if namespace else ""
    return (
        f"unknown reference {shown}{hint}: use ${{var.NAME}}, ${{each.key}} or ${{each.value}}",
    )


def _source_index(
    text: str, each: tuple[str, str] | None, variables: Mapping[str, str], position: int
) -> int:
    """The index in the source string of character ``position`` of its expansion."""
    pieces, _ = _interpolate(text, each, variables, set())
    offset = 0
    for piece, origin in pieces:
        if position < offset + len(piece):
            if origin < 0:  # inside a substituted value: point at its "${"
                return -1 - origin
            return origin + (position - offset)
        offset += len(piece)
    return len(text)


def _plural(count: int, word: str) -> str:
    return count_of(count, word)


def validation_output(expansion: Expansion, *, as_json: bool = False, colour: bool = False) -> str:
    """What ``validate`` prints: one line per diagnostic, each with the source line it
    points at underneath, and a summary; or JSON."""
    if as_json:
        return json.dumps(diagnostics_json(expansion.diagnostics), indent=2) + "\n"
    lines = [d.with_snippet(colour=colour) for d in expansion.diagnostics]
    warnings = expansion.warning_count
    if expansion.ok:
        specs = expansion.aggregations
        distinct = len({spec.fingerprint for spec in specs})
        summary = (
            f"Valid: {_plural(len(expansion.reports), 'report')}, "
            f"{_plural(len(specs), 'aggregation')} ({_plural(distinct, 'distinct request')})"
        )
        lines.append(summary + (f", {_plural(warnings, 'warning')}." if warnings else "."))
    else:
        lines.append(
            f"Not valid: {_plural(expansion.error_count, 'error')}, {_plural(warnings, 'warning')}."
        )
    return "\n".join(lines) + "\n"
