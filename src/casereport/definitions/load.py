"""Load report definitions: ``reports/*.yaml`` → validated ``ReportDefinition`` models.

Every problem becomes a ``Diagnostic`` (``path:line:col: error: message``) and loading goes
on, so one run reports every error in every file. Checked here: YAML syntax, duplicate keys,
the shape and types of every key (unknown keys get a "did you mean" hint), report and
aggregation names, ``limit`` bounds, ``group_by`` fields, ``refresh`` durations, and the
syntax of every ``query_filter`` that needs no variables. Strings with ``${...}`` are
checked by ``casereport.definitions.expand`` once their variables are known.

Parsing strategy: loading must stay fast for large workspaces (1,000 files in well under a
second), and ruamel.yaml's pure-Python composer alone needs ~5 ms a file. So a small
composer here reads the plain block YAML that reports are written in (block mappings and
sequences, one-line plain or quoted scalars, one-line flow lists of scalars) straight into
position-carrying nodes, and hands any file that uses anything else (block scalars,
anchors, tags, multi-line scalars, flow mappings, ...) or that might be malformed to
ruamel.yaml's composer, which also produces every syntax error message. Both give the same
node tree, which ``tests/test_load.py`` checks against ruamel.yaml on generated documents.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from casereport.errors import QuerySyntaxError
from casereport.settings import VAR_NAME_RE, Refresh, did_you_mean, parse_refresh

__all__ = [
    "AGGREGATION_ID_RE",
    "AGGREGATION_KEYS",
    "DEFAULT_FORMATS",
    "FORMATS",
    "KNOWN_GROUP_FIELDS",
    "MAX_LIMIT",
    "REPORT_KEYS",
    "REPORT_NAME_RE",
    "RESERVED_REPORT_NAMES",
    "TEMPLATE_NAME_RE",
    "AggregationDefinition",
    "Diagnostic",
    "ForEach",
    "ForEachItem",
    "LoadResult",
    "MapNode",
    "Node",
    "ReportDefinition",
    "ScalarNode",
    "SeqNode",
    "SourceString",
    "Variable",
    "YamlSyntaxError",
    "check_for_each_key",
    "check_group",
    "check_query",
    "compose",
    "diagnostics_json",
    "iter_strings",
    "load_report",
    "load_reports",
    "sort_diagnostics",
    "to_int",
    "yaml_syntax_error",
]

REPORT_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}\Z")
AGGREGATION_ID_RE = re.compile(r"[a-z0-9][a-z0-9_]*\Z")
TEMPLATE_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}\Z")
GROUP_FIELD_RE = re.compile(r"[A-Za-z0-9_@][A-Za-z0-9_.@:-]{0,99}\Z")
FOR_EACH_KEY_RE = re.compile(r"[\w@][\w.:@+ -]{0,99}\Z")
# The site lists every report in index.html, so a report cannot be called "index".
RESERVED_REPORT_NAMES = frozenset({"index"})
MAX_LIMIT = 1000
FORMATS = ("markdown", "html", "pdf")
# PDF needs Chromium, so a report asks for it explicitly.
DEFAULT_FORMATS = ("markdown", "html")
DEFAULT_TEMPLATE = "report"

REPORT_KEYS = (
    "title",
    "description",
    "owner",
    "refresh",
    "formats",
    "template",
    "vars",
    "aggregations",
)
AGGREGATION_KEYS = ("title", "query_filter", "group_by", "limit", "for_each")

# Case fields an aggregation can group by. Any other name is read as a key of the case's
# free-form `attributes` map. The singular spellings (`service`, `env`, ...) are the ones
# real data also shows; the emulator reads them as aliases of the plural keys.
KNOWN_GROUP_FIELDS = (
    "status",
    "status_name",
    "status_group",
    "priority",
    "type",
    "key",
    "creation_source",
    "project",
    "assignee",
    "created_by",
    "modified_by",
    "team",
    "services",
    "service",
    "environments",
    "env",
    "datacenters",
    "datacenter",
    "versions",
    "version",
)
_KNOWN_GROUP_SET = frozenset(KNOWN_GROUP_FIELDS)

Severity = Literal["error", "warning"]


# --------------------------------------------------------------------------- diagnostics


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One located message. ``line`` and ``column`` are 1-based; ``None`` when the
    message is not about a place in a file (e.g. a ``--var`` option)."""

    severity: Severity
    summary: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    detail: str = ""

    def __str__(self) -> str:
        parts = (self.file, self.line, self.column)
        where = "".join(f"{part}:" for part in parts if part)
        return f"{where} {self.severity}: {self.summary}".lstrip()

    def to_json(self) -> dict[str, Any]:
        """The ``validate --json`` shape of one diagnostic."""
        return {
            "severity": self.severity,
            "summary": self.summary,
            "detail": self.detail,
            "file": self.file,
            "line": self.line,
            "column": self.column,
        }


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


@dataclass(frozen=True, slots=True)
class SourceString:
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
        positions = _value_positions(self.value, self.raw, self.style, self.line, self.column)
        if positions is None:
            return self.line, self.column
        return positions[max(0, min(index, len(positions) - 1))]


@dataclass(frozen=True, slots=True)
class Variable:
    """A report variable: its value as written, and where."""

    name: str
    value: str
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class ForEachItem:
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


@dataclass(frozen=True, slots=True)
class AggregationDefinition:
    """An aggregation as written, before variables and ``for_each`` are applied."""

    id: str
    line: int
    column: int
    title: SourceString | None
    query_filter: SourceString
    group_by: tuple[SourceString, ...]
    limit: int
    for_each: ForEach | None = None


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


@dataclass(frozen=True, slots=True)
class LoadResult:
    """Every report that loaded, and every diagnostic of every file."""

    reports: tuple[ReportDefinition, ...]
    diagnostics: tuple[Diagnostic, ...]
    files: tuple[Path, ...] = ()

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)


# --------------------------------------------------------------------------- shared checks


@functools.lru_cache(maxsize=8192)
def check_query(text: str) -> tuple[str, int] | None:
    """``(reason, 0-based position)`` when ``text`` does not parse as a search query."""
    from casereport.definitions import query

    try:
        query.parse(text)
    except QuerySyntaxError as exc:
        return exc.reason, exc.position
    return None


def check_group(name: str) -> tuple[Severity, str] | None:
    """An error for an impossible ``group_by`` name, a warning for a likely typo."""
    if name in _KNOWN_GROUP_SET:
        return None
    if not GROUP_FIELD_RE.match(name):
        return (
            "error",
            f'invalid group_by field "{name}": use a case field such as status or '
            "priority, or a case attribute key (letters, digits, _ . @ : -)",
        )
    hint = did_you_mean(name.lower(), KNOWN_GROUP_FIELDS, cutoff=0.75)
    if hint:
        return (
            "warning",
            f'group_by field "{name}" is not a known case field, so it is read from the '
            f"case attributes{hint}",
        )
    return None


def check_for_each_key(key: str) -> str | None:
    """Why ``key`` cannot be a ``for_each`` key (it becomes part of an address), or None."""
    if FOR_EACH_KEY_RE.match(key) and ".." not in key:
        return None
    return (
        f'for_each key "{key}" is not allowed: keys appear in addresses, so they must be 1 to '
        '100 letters, digits, spaces or _ . : @ + -, and not contain ".." or a path separator'
    )


# --------------------------------------------------------------------------- loading


def load_reports(reports_dir: Path) -> LoadResult:
    """Load and validate every ``*.yaml`` file in ``reports_dir``."""
    if not reports_dir.is_dir():
        what = "is not a directory" if reports_dir.exists() else "does not exist"
        return LoadResult(
            (),
            (
                Diagnostic(
                    "error",
                    f"reports directory {what} (create it, pass --reports-dir, or set "
                    "reports_dir in casereport.toml)",
                    file=str(reports_dir),
                ),
            ),
        )
    diagnostics: list[Diagnostic] = []
    files = sorted(p for p in reports_dir.glob("*.yaml") if p.is_file())
    for stray in sorted(reports_dir.glob("*.yml")):
        diagnostics.append(
            Diagnostic(
                "warning",
                f'ignored: report files end in ".yaml" (rename it to {stray.stem}.yaml)',
                file=str(stray),
            )
        )
    if not files and not diagnostics:
        diagnostics.append(
            Diagnostic("warning", "no report files (*.yaml) found", file=str(reports_dir))
        )
    reports: list[ReportDefinition] = []
    for path in files:
        report, found = load_report(path)
        diagnostics.extend(found)
        if report is not None:
            reports.append(report)
    return LoadResult(tuple(reports), sort_diagnostics(diagnostics), tuple(files))


def load_report(
    path: Path, text: str | None = None
) -> tuple[ReportDefinition | None, list[Diagnostic]]:
    """Load one report file (``text`` given: use it instead of reading ``path``)."""
    file = str(path)
    if text is None:
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            return None, [Diagnostic("error", f"not UTF-8 text: {exc.reason}", file, 1, 1)]
        except OSError as exc:
            return None, [Diagnostic("error", f"cannot read file: {exc.strerror}", file)]
    checker = _Checker(file)
    name = path.stem
    if not REPORT_NAME_RE.match(name):
        checker.error(
            1,
            1,
            f'invalid report name "{name}": the file name (without .yaml) must be 1 to 64 '
            "lowercase letters, digits, - or _, starting with a letter or digit",
        )
    elif name in RESERVED_REPORT_NAMES:
        checker.error(1, 1, f'report name "{name}" is reserved: the site index uses it')
    name_ok = not checker.has_errors
    try:
        root = compose(text)
    except YamlSyntaxError as exc:
        checker.error(exc.line, exc.column, exc.message)
        return None, checker.diagnostics
    report = checker.report(root, name, path)
    # Report-level problems (name, title, vars, ...) make the whole file unusable; a broken
    # aggregation is only left out, so expansion can still check the others.
    if checker.report_level_errors or not name_ok:
        report = None
    return report, checker.diagnostics


# --------------------------------------------------------------------------- validation

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_TEXT_TAGS = frozenset({_STR, _INT, _FLOAT, _BOOL})
_TAG_NAMES = {
    _STR: "a string",
    _INT: "an integer",
    _FLOAT: "a number",
    _BOOL: "a boolean",
    _NULL: "empty (null)",
    "tag:yaml.org,2002:timestamp": "a date",
}


def _kind(node: Node) -> str:
    if isinstance(node, MapNode):
        return "a mapping"
    if isinstance(node, SeqNode):
        return "a list"
    return _TAG_NAMES.get(node.tag, f"a value tagged {node.tag}")


def to_int(text: str) -> int:
    """The value of a YAML 1.2 integer scalar (``0x1F``, ``0o17``, ``1_000``, ...)."""
    digits = text.replace("_", "")
    sign = -1 if digits.startswith("-") else 1
    digits = digits.lstrip("+-")
    for prefix, base in (("0b", 2), ("0o", 8), ("0x", 16)):
        if digits.startswith(prefix):
            return sign * int(digits[2:], base)
    return sign * int(digits, 10)


class _Checker:
    """Validates one file's node tree field by field, collecting every diagnostic."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.diagnostics: list[Diagnostic] = []
        self.has_errors = False
        self.report_level_errors = False
        # Keys that a "did you mean" hint of the last mapping proposed: not reported as
        # missing too, so a typo gives one error, not two.
        self.suggested: set[str] = set()

    def error(self, line: int, column: int, message: str, detail: str = "") -> None:
        self.has_errors = True
        self.diagnostics.append(Diagnostic("error", message, self.file, line, column, detail))

    def warning(self, line: int, column: int, message: str) -> None:
        self.diagnostics.append(Diagnostic("warning", message, self.file, line, column))

    def at(self, node: Node, message: str, detail: str = "") -> None:
        self.error(node.line + 1, node.column + 1, message, detail)

    # -- generic helpers

    def mapping(
        self, node: MapNode, allowed: Sequence[str], where: str, unique_what: str = "key"
    ) -> dict[str, tuple[ScalarNode, Node]]:
        """Check keys (strings, known, unique) and return them by name."""
        result: dict[str, tuple[ScalarNode, Node]] = {}
        self.suggested = set()
        for key, value in node.pairs:
            if not isinstance(key, ScalarNode) or key.tag not in _TEXT_TAGS:
                self.at(key, f"a key {where} must be a string, not {_kind(key)}")
                continue
            name = key.value
            if name in result:
                first = result[name][0]
                self.at(
                    key,
                    f'duplicate {unique_what} "{name}" (first defined at line {first.line + 1})',
                )
                continue
            if allowed and name not in allowed:
                hint = did_you_mean(name, allowed)
                if hint:
                    self.suggested.add(hint.split('"')[1])
                detail = "allowed keys: " + ", ".join(allowed)
                self.at(
                    key,
                    f'unknown key "{name}" {where}' + (hint or f" ({detail})"),
                    detail,
                )
                continue
            result[name] = (key, value)
        return result

    def string(self, node: Node, what: str, *, allow_empty: bool = False) -> SourceString | None:
        if not isinstance(node, ScalarNode) or node.tag != _STR:
            self.at(node, f"{what} must be a string, not {_kind(node)}")
            return None
        if not allow_empty and not node.value.strip():
            self.at(node, f"{what} must not be empty")
            return None
        return SourceString(node.value, node.line + 1, node.column + 1, node.style, node.raw)

    def text(self, node: Node, what: str) -> str | None:
        """A scalar used as text: strings, numbers and booleans, as written."""
        if isinstance(node, ScalarNode) and node.tag in _TEXT_TAGS:
            return node.value
        self.at(node, f"{what} must be a string, number or boolean, not {_kind(node)}")
        return None

    # -- the report

    def report(self, root: Node | None, name: str, path: Path) -> ReportDefinition | None:
        if root is None:
            self.error(1, 1, "empty report file: a report needs a title and aggregations")
            self.report_level_errors = True
            return None
        if not isinstance(root, MapNode):
            self.at(
                root,
                f"a report file must be a mapping (title:, aggregations:, ...), not {_kind(root)}",
            )
            self.report_level_errors = True
            return None
        errors_before = len(self.diagnostics)
        fields = self.mapping(root, REPORT_KEYS, "in report")
        suggested = self.suggested
        title = None
        if "title" in fields:
            title = self.string(fields["title"][1], '"title"')
        elif "title" not in suggested:
            self.at(root, 'missing required key "title"')
        description = None
        if "description" in fields:
            description = self.string(fields["description"][1], '"description"', allow_empty=True)
        owner = None
        if "owner" in fields:
            found = self.string(fields["owner"][1], '"owner"')
            owner = found.value if found else None
        refresh = None
        if "refresh" in fields:
            refresh = self.refresh(fields["refresh"][1])
        formats: tuple[str, ...] = DEFAULT_FORMATS
        if "formats" in fields:
            formats = self.formats(fields["formats"][1]) or DEFAULT_FORMATS
        template = DEFAULT_TEMPLATE
        if "template" in fields:
            found = self.string(fields["template"][1], '"template"')
            if found is not None:
                if TEMPLATE_NAME_RE.match(found.value):
                    template = found.value
                else:
                    self.at(
                        fields["template"][1],
                        f'invalid template name "{found.value}": use a name like "report" '
                        "(templates/<name>.md.j2), lowercase letters, digits, - or _",
                    )
        variables: tuple[Variable, ...] = ()
        if "vars" in fields:
            variables = self.variables(fields["vars"][1])
        self.report_level_errors = any(
            d.severity == "error" for d in self.diagnostics[errors_before:]
        )
        aggregations: list[AggregationDefinition] = []
        if "aggregations" not in fields:
            if "aggregations" not in suggested:
                self.at(root, 'missing required key "aggregations"')
            self.report_level_errors = True
        else:
            node = fields["aggregations"][1]
            if not isinstance(node, MapNode):
                self.at(
                    node, f'"aggregations" must be a mapping of aggregation ids, not {_kind(node)}'
                )
                self.report_level_errors = True
            elif not node.pairs:
                self.at(node, '"aggregations" must define at least one aggregation')
                self.report_level_errors = True
            else:
                for agg_id, (key, value) in self.mapping(
                    node, (), "in aggregations", "aggregation id"
                ).items():
                    aggregation = self.aggregation(agg_id, key, value)
                    if aggregation is not None:
                        aggregations.append(aggregation)
        if title is None:
            return None
        return ReportDefinition(
            name=name,
            path=path,
            title=title,
            aggregations=tuple(aggregations),
            description=description,
            owner=owner,
            refresh=refresh,
            formats=formats,
            template=template,
            vars=variables,
        )

    def refresh(self, node: Node) -> Refresh | None:
        if not isinstance(node, ScalarNode) or node.tag != _STR:
            self.at(node, f'"refresh" must be a duration such as 6h or "always", not {_kind(node)}')
            return None
        try:
            return parse_refresh(node.value)
        except ValueError as exc:
            self.at(node, f"refresh: {exc}")
            return None

    def formats(self, node: Node) -> tuple[str, ...] | None:
        if not isinstance(node, SeqNode):
            self.at(node, f'"formats" must be a list such as [markdown, html], not {_kind(node)}')
            return None
        if not node.items:
            self.at(node, '"formats" must list at least one of: markdown, html')
            return None
        seen: list[str] = []
        for item in node.items:
            if not isinstance(item, ScalarNode) or item.tag != _STR:
                self.at(item, f'"formats" entries must be strings, not {_kind(item)}')
            elif item.value not in FORMATS:
                hint = did_you_mean(item.value, FORMATS)
                known = " (use markdown, html or pdf)"
                self.at(item, f'unknown format "{item.value}"' + (hint or known))
            elif item.value in seen:
                self.at(item, f'"formats" lists "{item.value}" twice')
            else:
                seen.append(item.value)
        return tuple(seen) if len(seen) == len(node.items) else None

    def variables(self, node: Node) -> tuple[Variable, ...]:
        if not isinstance(node, MapNode):
            self.at(node, f'"vars" must be a mapping of NAME: value, not {_kind(node)}')
            return ()
        result: list[Variable] = []
        for name, (key, value) in self.mapping(node, (), "in vars", "variable").items():
            if not VAR_NAME_RE.match(name):
                self.at(
                    key,
                    f'invalid variable name "{name}": names start with a letter or "_" and '
                    'hold only letters, digits and "_"',
                )
                continue
            text = self.text(value, f'variable "{name}"')
            if text is not None:
                result.append(Variable(name, text, key.line + 1, key.column + 1))
        return tuple(result)

    # -- aggregations

    def aggregation(self, agg_id: str, key: ScalarNode, node: Node) -> AggregationDefinition | None:
        before = self.has_errors
        self.has_errors = False
        if not AGGREGATION_ID_RE.match(agg_id):
            self.at(
                key,
                f'invalid aggregation id "{agg_id}": use lowercase letters, digits and _, '
                "starting with a letter or digit",
            )
        where = f'in aggregation "{agg_id}"'
        if not isinstance(node, MapNode):
            self.at(
                node,
                f'aggregation "{agg_id}" must be a mapping with query_filter, group_by and '
                f"limit, not {_kind(node)}",
            )
            self.has_errors = True
            return None
        fields = self.mapping(node, AGGREGATION_KEYS, where)
        for required in ("query_filter", "group_by", "limit"):
            if required not in fields and required not in self.suggested:
                self.at(key, f'aggregation "{agg_id}" is missing required key "{required}"')
        title = None
        if "title" in fields:
            title = self.string(fields["title"][1], '"title"')
        query = None
        if "query_filter" in fields:
            query = self.string(fields["query_filter"][1], '"query_filter"', allow_empty=True)
            if query is not None and "$" not in query.value:
                self.query(query)
        groups = self.group_by(fields["group_by"][1]) if "group_by" in fields else ()
        limit = self.limit(fields["limit"][1]) if "limit" in fields else None
        for_each = self.for_each(fields["for_each"][1]) if "for_each" in fields else None
        failed = self.has_errors
        self.has_errors = before or failed
        if failed or query is None or limit is None or not groups:
            return None
        return AggregationDefinition(
            id=agg_id,
            line=key.line + 1,
            column=key.column + 1,
            title=title,
            query_filter=query,
            group_by=groups,
            limit=limit,
            for_each=for_each,
        )

    def query(self, query: SourceString) -> None:
        problem = check_query(query.value)
        if problem is not None:
            reason, position = problem
            line, column = query.location_of(position)
            self.error(line, column, f"invalid query_filter: {reason}", query.value)

    def group_by(self, node: Node) -> tuple[SourceString, ...]:
        if not isinstance(node, SeqNode):
            self.at(
                node,
                f'"group_by" must be a list of case fields such as [status], not {_kind(node)}',
            )
            return ()
        if not node.items:
            self.at(node, '"group_by" must list at least one case field, e.g. [status]')
            return ()
        result: list[SourceString] = []
        seen: set[str] = set()
        for item in node.items:
            group = self.string(item, '"group_by" entries')
            if group is None:
                continue
            if group.value in seen:
                self.at(item, f'"group_by" lists "{group.value}" twice')
                continue
            seen.add(group.value)
            if "$" not in group.value:
                problem = check_group(group.value)
                if problem is not None:
                    severity, message = problem
                    if severity == "error":
                        self.at(item, message)
                        continue
                    self.warning(item.line + 1, item.column + 1, message)
            result.append(group)
        return tuple(result) if len(result) == len(node.items) else ()

    def limit(self, node: Node) -> int | None:
        if not isinstance(node, ScalarNode) or node.tag != _INT:
            self.at(
                node, f'"limit" must be a whole number from 1 to {MAX_LIMIT}, not {_kind(node)}'
            )
            return None
        value = to_int(node.value)
        if not 1 <= value <= MAX_LIMIT:
            self.at(node, f'"limit" must be from 1 to {MAX_LIMIT}, got {value}')
            return None
        return value

    def for_each(self, node: Node) -> ForEach | None:
        pairs: list[tuple[str, str, Node]] = []
        if isinstance(node, SeqNode):
            for item in node.items:
                text = self.text(item, '"for_each" items')
                if text is not None:
                    pairs.append((text, text, item))
            count = len(node.items)
        elif isinstance(node, MapNode):
            for name, (key, value) in self.mapping(node, (), "in for_each", "for_each key").items():
                text = self.text(value, f'for_each value of "{name}"')
                if text is not None:
                    pairs.append((name, text, key))
            count = len(node.pairs)
        else:
            self.at(node, f'"for_each" must be a list or a mapping, not {_kind(node)}')
            return None
        if count == 0:
            self.at(node, '"for_each" must have at least one item')
            return None
        items: list[ForEachItem] = []
        seen: dict[str, Node] = {}
        for item_key, item_value, where in pairs:
            problem = check_for_each_key(item_key)
            if problem is not None:
                self.at(where, problem)
            elif item_key in seen:
                first = seen[item_key]
                self.at(
                    where,
                    f'duplicate for_each key "{item_key}" (first at line {first.line + 1}, '
                    f"column {first.column + 1})",
                )
            else:
                seen[item_key] = where
                items.append(ForEachItem(item_key, item_value, where.line + 1, where.column + 1))
        if len(items) != count:
            return None
        return ForEach(tuple(items), node.line + 1, node.column + 1)


# --------------------------------------------------------------------------- YAML nodes


class ScalarNode:
    """A YAML scalar: its text, resolved tag, style and source (0-based line/column)."""

    __slots__ = ("column", "line", "raw", "style", "tag", "value")

    def __init__(self, value: str, tag: str, style: str, raw: str, line: int, column: int):
        self.value = value
        self.tag = tag
        self.style = style
        self.raw = raw
        self.line = line
        self.column = column


class MapNode:
    """A YAML mapping; ``pairs`` keeps order and duplicates (checked by the loader)."""

    __slots__ = ("column", "line", "pairs")

    def __init__(self, pairs: list[tuple[Node, Node]], line: int, column: int):
        self.pairs = pairs
        self.line = line
        self.column = column


class SeqNode:
    """A YAML sequence."""

    __slots__ = ("column", "items", "line")

    def __init__(self, items: list[Node], line: int, column: int):
        self.items = items
        self.line = line
        self.column = column


Node = ScalarNode | MapNode | SeqNode


class YamlSyntaxError(Exception):
    """A file that is not valid YAML; ``line`` and ``column`` are 1-based."""

    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.column = column
        self.message = message


# Aliases can make a small file expand to a huge tree ("billion laughs"); no report needs
# anywhere near this many values.
MAX_NODES = 50_000
# ruamel.yaml slows down quadratically with flow nesting ("[[[[..."), then overflows the
# stack; no report nests more than a few levels.
MAX_FLOW_DEPTH = 100


def compose(text: str) -> Node | None:
    """Parse ``text`` into a node tree (None for an empty document)."""
    try:
        return _FastComposer(text).compose()
    except _Unsupported:
        pass
    _check_flow_depth(text)
    try:
        return _ruamel_compose(text)
    except RecursionError:
        raise YamlSyntaxError(1, 1, "invalid YAML: nested too deeply") from None


def _check_flow_depth(text: str) -> None:
    """Refuse brackets nested deeper than ``MAX_FLOW_DEPTH`` (quotes and comments skipped,
    roughly: this is a guard, not a parser)."""
    if text.count("[") + text.count("{") <= MAX_FLOW_DEPTH:
        return
    depth = 0
    quote = ""
    line = 1
    start = 0
    comment = False
    for index, char in enumerate(text):
        if char == "\n":
            line, start, comment = line + 1, index + 1, False
        elif comment:
            continue
        elif quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == start or text[index - 1] in " \t"):
            comment = True
        elif char in "[{":
            depth += 1
            if depth > MAX_FLOW_DEPTH:
                column = index - start + 1
                message = f"invalid YAML: nested more than {MAX_FLOW_DEPTH} levels deep"
                raise YamlSyntaxError(line, column, message)
        elif char in "]}":
            depth = max(0, depth - 1)


def _ruamel_compose(text: str) -> Node | None:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    yaml = YAML(typ="safe", pure=True)
    try:
        node = yaml.compose(text)
    except YAMLError as exc:
        raise yaml_syntax_error(exc, text) from None
    if node is None:
        return None
    return _convert(node, text, set(), [MAX_NODES])


# ruamel.yaml's wording for the most common mistakes, and what to tell a person instead.
_FRIENDLIER = (
    ("found character '\\t' that cannot start any token", "tab character: indent with spaces"),
    ("expected <block end>", "bad indentation: this line does not line up with the lines above"),
    (
        "mapping values are not allowed here",
        'unexpected ":": quote a value that contains ": "',
    ),
)


def yaml_syntax_error(exc: Exception, text: str) -> YamlSyntaxError:
    """One located, one-line ``YamlSyntaxError`` for any ruamel.yaml error."""
    from ruamel.yaml.error import MarkedYAMLError

    if isinstance(exc, MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
        context = " ".join(str(exc.context or "").split())
        for ruamel_text, friendlier in _FRIENDLIER:
            if problem.startswith(ruamel_text):
                problem = friendlier
                if context == "while scanning for the next token":
                    context = ""
        if context and exc.problem:
            if problem.startswith("but "):
                problem = f"{context}, {problem}"
            else:
                started = exc.context_mark
                where = ""
                if started is not None and mark is not None and started.line != mark.line:
                    where = f" started at line {started.line + 1}, column {started.column + 1}"
                problem = f"{problem} ({context}{where})"
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        return YamlSyntaxError(line, column, f"invalid YAML: {problem}")
    message = " ".join(str(exc).split())
    position = getattr(exc, "position", None)
    character = getattr(exc, "character", None)
    if isinstance(character, str | int) and isinstance(position, int):
        code = ord(character) if isinstance(character, str) else character
        message = f"unacceptable character U+{code:04X}: special characters are not allowed"
    if isinstance(position, int):
        before = text[:position]
        line = before.count("\n") + 1
        column = position - (before.rfind("\n") + 1) + 1
        return YamlSyntaxError(line, column, f"invalid YAML: {message}")
    return YamlSyntaxError(1, 1, f"invalid YAML: {message}")


def _convert(node: Any, text: str, active: set[int], budget: list[int]) -> Node:
    from ruamel.yaml.nodes import MappingNode, SequenceNode
    from ruamel.yaml.nodes import ScalarNode as RScalar

    mark = node.start_mark
    if id(node) in active:
        raise YamlSyntaxError(mark.line + 1, mark.column + 1, "invalid YAML: recursive alias")
    budget[0] -= 1
    if budget[0] < 0:
        raise YamlSyntaxError(
            mark.line + 1,
            mark.column + 1,
            f"invalid YAML: more than {MAX_NODES} values once aliases are expanded",
        )
    line, column = mark.line, mark.column
    tag = str(node.tag.value if hasattr(node.tag, "value") else node.tag)
    if isinstance(node, RScalar):
        raw = text[node.start_mark.index : node.end_mark.index]
        return ScalarNode(node.value, tag, node.style or "", raw, line, column)
    active.add(id(node))
    try:
        if isinstance(node, MappingNode):
            return MapNode(
                [
                    (_convert(k, text, active, budget), _convert(v, text, active, budget))
                    for k, v in node.value
                ],
                line,
                column,
            )
        if isinstance(node, SequenceNode):
            items = [_convert(item, text, active, budget) for item in node.value]
            return SeqNode(items, line, column)
    finally:
        active.discard(id(node))
    raise YamlSyntaxError(line + 1, column + 1, "invalid YAML: unexpected node")


class _Unsupported(Exception):
    """The fast composer does not handle this text; ruamel.yaml will."""


# Characters the fast path leaves to ruamel.yaml: tabs, CR, odd line breaks, BOM, and
# anything YAML does not allow in a stream (ruamel.yaml reports those).
_ODD_CHARS = re.compile(
    "[^\n\x20-\x7e\xa0-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]|[\u2028\u2029]"
)
_KEY_RE = re.compile(r"([A-Za-z0-9_][A-Za-z0-9_.\-/ ]*?) *:(?: +|$)")
_PLAIN_BAD_START = frozenset("[]{},#&*!|>'\"%@`")
_FLOW_PLAIN_RE = re.compile(r"[^,\[\]{}#:'\"]+")
_DQ_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "t": "\t", "/": "/"}


@functools.lru_cache(maxsize=1)
def _resolver() -> Any:
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).resolver


@functools.lru_cache(maxsize=4096)
def _plain_tag(value: str) -> str:
    from ruamel.yaml.nodes import ScalarNode as RScalar

    return str(_resolver().resolve(RScalar, value, (True, False)))


class _FastComposer:
    """Composes the plain block YAML of report files; raises ``_Unsupported`` otherwise."""

    def __init__(self, text: str) -> None:
        if _ODD_CHARS.search(text):
            raise _Unsupported
        self.lines = lines = text.split("\n")
        significant: list[tuple[int, int]] = []
        for number, line in enumerate(lines):
            stripped = line.lstrip(" ")
            if not stripped or stripped[0] == "#":
                continue
            indent = len(line) - len(stripped)
            # Directives and document markers ("---", "...") are left to ruamel.yaml.
            if indent == 0 and (
                line[0] == "%" or (line[:3] in ("---", "...") and line[3:4] in ("", " "))
            ):
                raise _Unsupported
            significant.append((number, indent))
        self.sig = significant
        self.pos = 0

    def compose(self) -> Node | None:
        if not self.sig:
            return None
        node = self.node(self.sig[0][1])
        if self.pos != len(self.sig):
            raise _Unsupported
        return node

    def is_item(self, number: int, indent: int) -> bool:
        line = self.lines[number]
        return line.startswith("-", indent) and (len(line) == indent + 1 or line[indent + 1] == " ")

    def node(self, indent: int) -> Node:
        number, _ = self.sig[self.pos]
        if self.is_item(number, indent):
            return self.sequence(indent)
        return self.mapping(indent)

    def mapping(self, indent: int) -> MapNode:
        sig, lines = self.sig, self.lines
        first_number = sig[self.pos][0]
        pairs: list[tuple[Node, Node]] = []
        while self.pos < len(sig):
            number, at = sig[self.pos]
            if at < indent:
                break
            if at > indent:
                raise _Unsupported
            line = lines[number]
            match = _KEY_RE.match(line, at)
            if match is None:
                raise _Unsupported
            text = match.group(1)
            key = ScalarNode(text, _plain_tag(text), "", text, number, at)
            self.pos += 1
            start = match.end()
            if start < len(line) and line[start] != "#":
                value = self.inline(line, start, number)
                if self.pos < len(sig) and sig[self.pos][1] > indent:
                    raise _Unsupported
            elif self.pos < len(sig) and sig[self.pos][1] > indent:
                value = self.node(sig[self.pos][1])
            elif (
                self.pos < len(sig)
                and sig[self.pos][1] == indent
                and self.is_item(sig[self.pos][0], indent)
            ):
                value = self.sequence(indent)
            else:
                raise _Unsupported
            pairs.append((key, value))
        return MapNode(pairs, first_number, indent)

    def sequence(self, indent: int) -> SeqNode:
        sig, lines = self.sig, self.lines
        first_number = sig[self.pos][0]
        items: list[Node] = []
        while self.pos < len(sig):
            number, at = sig[self.pos]
            if at < indent or (at == indent and not self.is_item(number, at)):
                break
            if at > indent:
                raise _Unsupported
            line = lines[number]
            start = at + 1
            while start < len(line) and line[start] == " ":
                start += 1
            if start >= len(line) or line[start] == "#":
                raise _Unsupported
            items.append(self.inline(line, start, number))
            self.pos += 1
            if self.pos < len(sig) and sig[self.pos][1] > indent:
                raise _Unsupported
        return SeqNode(items, first_number, indent)

    def inline(self, line: str, start: int, number: int) -> Node:
        """A value that starts at ``line[start]`` and ends on this line."""
        first = line[start]
        if first == '"' or first == "'":
            node, end = self.quoted(line, start, number)
            self.end_of_line(line, end)
            return node
        if first == "[":
            return self.flow_sequence(line, start, number)
        if first in _PLAIN_BAD_START:
            raise _Unsupported
        end = line.find(" #", start)
        value = line[start : end if end >= 0 else len(line)].rstrip(" ")
        if first in "-?:" and (len(value) == 1 or value[1] == " "):
            raise _Unsupported
        if ": " in value or value.endswith(":"):
            raise _Unsupported
        return ScalarNode(value, _plain_tag(value), "", value, number, start)

    def quoted(self, line: str, start: int, number: int) -> tuple[ScalarNode, int]:
        quote = line[start]
        i = start + 1
        parts: list[str] = []
        if quote == "'":
            while True:
                close = line.find("'", i)
                if close < 0:
                    raise _Unsupported
                parts.append(line[i:close])
                if line.startswith("''", close):
                    parts.append("'")
                    i = close + 2
                    continue
                break
        else:
            while True:
                close = line.find('"', i)
                escape = line.find("\\", i)
                if close < 0:
                    raise _Unsupported
                if 0 <= escape < close:
                    parts.append(line[i:escape])
                    char = line[escape + 1 : escape + 2]
                    if char not in _DQ_ESCAPES:
                        raise _Unsupported
                    parts.append(_DQ_ESCAPES[char])
                    i = escape + 2
                    continue
                parts.append(line[i:close])
                break
        end = close + 1
        raw = line[start:end]
        return ScalarNode("".join(parts), _STR, quote, raw, number, start), end

    def end_of_line(self, line: str, end: int) -> None:
        rest = line[end:]
        if rest and (rest[0] != " " or rest.strip(" ")[:1] not in ("", "#")):
            raise _Unsupported

    def flow_sequence(self, line: str, start: int, number: int) -> SeqNode:
        items: list[Node] = []
        i = start + 1
        length = len(line)
        while i < length and line[i] == " ":
            i += 1
        if i < length and line[i] == "]":
            self.end_of_line(line, i + 1)
            return SeqNode(items, number, start)
        while True:
            while i < length and line[i] == " ":
                i += 1
            if i >= length:
                raise _Unsupported
            if line[i] in "'\"":
                item, i = self.quoted(line, i, number)
                items.append(item)
            else:
                match = _FLOW_PLAIN_RE.match(line, i)
                if match is None:
                    raise _Unsupported
                value = match.group().rstrip(" ")
                if (
                    not value
                    or value[0] in _PLAIN_BAD_START
                    or (value[0] in "-?" and (len(value) == 1 or value[1] == " "))
                ):
                    raise _Unsupported
                items.append(ScalarNode(value, _plain_tag(value), "", value, number, i))
                i += len(value)
            while i < length and line[i] == " ":
                i += 1
            if i >= length:
                raise _Unsupported
            if line[i] == "]":
                self.end_of_line(line, i + 1)
                return SeqNode(items, number, start)
            if line[i] != ",":
                raise _Unsupported
            i += 1
            while i < length and line[i] == " ":
                i += 1
            if i >= length or line[i] == "]":
                raise _Unsupported


# --------------------------------------------------------------------------- positions

_ESCAPES = {
    "0": "\0",
    "a": "\a",
    "b": "\b",
    "t": "\t",
    "\t": "\t",
    "n": "\n",
    "v": "\v",
    "f": "\f",
    "r": "\r",
    "e": "\x1b",
    " ": " ",
    '"': '"',
    "/": "/",
    "\\": "\\",
    "N": "\x85",
    "_": "\xa0",
    "L": "\u2028",
    "P": "\u2029",
}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}


def _value_positions(
    value: str, raw: str, style: str, line: int, column: int
) -> list[tuple[int, int]] | None:
    """1-based file positions of each character of ``value`` (plus one past its end),
    rebuilt from the scalar's source; None when the rebuild does not give ``value``."""
    if not raw:
        return None
    if style in ("|", ">"):
        built = _block_positions(raw, style, line, column)
    else:
        built = _flow_positions(raw, style, line, column)
    if built is None:
        return None
    text, positions = built
    if style in ("|", ">"):
        if not text.startswith(value):
            return None
        return positions[: len(value) + 1]
    return positions if text == value else None


def _flow_positions(
    raw: str, style: str, line: int, column: int
) -> tuple[str, list[tuple[int, int]]] | None:
    quoted = style in ("'", '"')
    i, end = (1, len(raw) - 1) if quoted else (0, len(raw))
    out: list[str] = []
    positions: list[tuple[int, int]] = []
    keep = 0  # characters before this index are never trimmed (escapes, folded breaks)
    row, col = line, column + i
    try:
        while i < end:
            char = raw[i]
            if char == "\n":
                while len(out) > keep and out[-1] in " \t":
                    out.pop()
                    positions.pop()
                at = (row, col)
                i, row, col = i + 1, row + 1, 1
                breaks = 0
                while True:
                    while i < end and raw[i] in " \t":
                        i, col = i + 1, col + 1
                    if i < end and raw[i] == "\n":
                        i, row, col, breaks = i + 1, row + 1, 1, breaks + 1
                        continue
                    break
                out.extend("\n" * breaks if breaks else " ")
                positions.extend([at] * (breaks or 1))
                keep = len(out)
                continue
            if style == "'" and char == "'":
                out.append("'")
                positions.append((row, col))
                i, col = i + 2, col + 2
                keep = len(out)
                continue
            if style == '"' and char == "\\":
                escape = raw[i + 1]
                if escape == "\n":
                    i, row, col = i + 2, row + 1, 1
                    while i < end and raw[i] in " \t":
                        i, col = i + 1, col + 1
                    keep = len(out)
                    continue
                if escape in _HEX_ESCAPES:
                    size = _HEX_ESCAPES[escape]
                    out.append(chr(int(raw[i + 2 : i + 2 + size], 16)))
                    positions.append((row, col))
                    i, col = i + 2 + size, col + 2 + size
                elif escape in _ESCAPES:
                    out.append(_ESCAPES[escape])
                    positions.append((row, col))
                    i, col = i + 2, col + 2
                else:
                    return None
                keep = len(out)
                continue
            out.append(char)
            positions.append((row, col))
            i, col = i + 1, col + 1
    except (IndexError, ValueError):
        return None
    positions.append((row, col))
    return "".join(out), positions


def _block_positions(
    raw: str, style: str, line: int, column: int
) -> tuple[str, list[tuple[int, int]]] | None:
    rows = raw.split("\n")
    content = rows[1:]
    indents = [len(r) - len(r.lstrip(" ")) for r in content if r.strip()]
    if not indents:
        return None
    indent = min(indents)
    out: list[str] = []
    positions: list[tuple[int, int]] = []
    previous_folds = False
    for offset, row_text in enumerate(content):
        row = line + 1 + offset
        body = row_text[indent:]
        folds = style == ">" and bool(body) and not body.startswith(" ")
        if style == ">" and previous_folds and out[-1] == "\n":
            if folds:
                out[-1] = " "  # a line break between two folded lines is a space
            elif not body:
                out.pop()  # before an empty line, the break itself is dropped
                positions.pop()
        for k, char in enumerate(body):
            out.append(char)
            positions.append((row, indent + k + 1))
        out.append("\n")
        positions.append((row, indent + len(body) + 1))
        previous_folds = folds
    positions.append(positions[-1])
    return "".join(out), positions


def iter_strings(node: Node | None) -> Iterator[ScalarNode]:
    """Every scalar of a node tree, in document order (used by tests and fmt)."""
    if node is None:
        return
    if isinstance(node, ScalarNode):
        yield node
    elif isinstance(node, MapNode):
        for key, value in node.pairs:
            yield from iter_strings(key)
            yield from iter_strings(value)
    else:
        for item in node.items:
            yield from iter_strings(item)
