"""Load report definitions: ``reports/*.yaml`` → validated ``ReportDefinition`` models.

Every problem becomes a ``Diagnostic`` (``path:line:col: error: message``) and loading goes
on, so one run reports every error in every file. Checked here: YAML syntax, duplicate keys,
the shape and types of every key (unknown keys get a "did you mean" hint), report and
aggregation names, ``limit`` bounds, ``group_by`` fields, ``refresh`` durations, the
reading keys (``casereport.definitions.reading_keys``), and the syntax of every
``query_filter`` that needs no variables. Strings with ``${...}`` are
checked by ``casereport.definitions.expand`` once their variables are known.

YAML text becomes position-carrying nodes in ``casereport.definitions.yamlnodes``, by
PyYAML's C composer (libyaml): fast enough for 1,000 files in well under a second, and it
marks the line and column of every node. ruamel.yaml, about 30 times slower in pure Python,
is used only by ``casereport.definitions.fmt``, whose round trip must keep comments. The
models that come out are in ``casereport.definitions.models``.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Collection, Sequence
from pathlib import Path

from casereport.definitions.checks import parse_checks
from casereport.definitions.fields import (
    KNOWN_FIELD_SET,
    check_query_fields,
    known_fields,
    unknown_field_hint,
)
from casereport.definitions.models import (
    DEFAULT_FORMATS,
    DEFAULT_TEMPLATE,
    AggregationDefinition,
    Diagnostic,
    ForEach,
    ForEachItem,
    LoadResult,
    ReportDefinition,
    Severity,
    SourceString,
    Variable,
    sort_diagnostics,
)
from casereport.definitions.moved import parse_moved
from casereport.definitions.notify_key import parse_notify
from casereport.definitions.query import is_plainly_valid
from casereport.definitions.query import parse as parse_query
from casereport.definitions.reading_keys import READING_KEYS, parse_reading
from casereport.definitions.yamlnodes import (
    MapNode,
    Node,
    ScalarNode,
    SeqNode,
    YamlSyntaxError,
    compose,
    node_kind,
    to_int,
)
from casereport.errors import QuerySyntaxError
from casereport.settings import VAR_NAME_RE, Refresh, did_you_mean, parse_refresh
from casereport.site import REPORT_NAME_RE, RESERVED_REPORT_NAMES

__all__ = [
    "AGGREGATION_ID_RE",
    "AGGREGATION_KEYS",
    "FORMATS",
    "MAX_LIMIT",
    "REPORT_KEYS",
    "REPORT_NAME_RE",
    "RESERVED_REPORT_NAMES",
    "TEMPLATE_NAME_RE",
    "check_for_each_key",
    "check_group",
    "check_query",
    "load_report",
    "load_reports",
]

AGGREGATION_ID_RE = re.compile(r"[a-z0-9][a-z0-9_]*\Z")
TEMPLATE_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}\Z")
GROUP_FIELD_RE = re.compile(r"[A-Za-z0-9_@][A-Za-z0-9_.@:-]{0,99}\Z")
FOR_EACH_KEY_RE = re.compile(r"[\w@][\w.:@+ -]{0,99}\Z")
MAX_LIMIT = 1000
FORMATS = ("markdown", "html", "pdf")

REPORT_KEYS = (
    "title",
    "description",
    "owner",
    "refresh",
    "formats",
    "template",
    *READING_KEYS,
    "vars",
    "aggregations",
    "moved",
    "checks",
    "notify",
)
AGGREGATION_KEYS = (
    "title",
    "query_filter",
    "group_by",
    "limit",
    "for_each",
    *READING_KEYS,
    "checks",
)


# --------------------------------------------------------------------------- shared checks


def check_query(text: str) -> tuple[str, int] | None:
    """``(reason, 0-based position)`` when ``text`` does not parse as a search query."""
    if is_plainly_valid(text):  # most queries: no tree to build
        return None
    return _query_problem(text)


@functools.lru_cache(maxsize=8192)
def _query_problem(text: str) -> tuple[str, int] | None:
    try:
        parse_query(text)
    except QuerySyntaxError as exc:
        return exc.reason, exc.position
    return None


def check_group(name: str, known: frozenset[str] = KNOWN_FIELD_SET) -> tuple[Severity, str] | None:
    """An error for an impossible ``group_by`` name, a warning for a likely typo of a known
    field or declared attribute (see ``known_fields``).

    Any other name is taken as an attribute key without a warning, unlike a query's field:
    grouping by a field no case has shows an empty table that says so, while a query naming
    one quietly counts nothing.
    """
    if name in known:
        return None
    if not GROUP_FIELD_RE.match(name):
        return (
            "error",
            f'invalid group_by field "{name}": use a case field such as status or '
            "priority, or a case attribute key (letters, digits, _ . @ : -)",
        )
    hint = unknown_field_hint(name, known)
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


def load_reports(reports_dir: Path, attributes: Collection[str] = ()) -> LoadResult:
    """Load and validate every ``*.yaml`` file in ``reports_dir``; ``attributes`` are the
    workspace's declared case attributes, taken in queries and ``group_by``."""
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
        # An error, not a warning: plan and apply would leave the report out unseen.
        diagnostics.append(
            Diagnostic(
                "error",
                f'report files end in ".yaml", so this one would be left out: rename it to '
                f"{stray.stem}.yaml",
                file=str(stray),
            )
        )
    if not files and not diagnostics:
        diagnostics.append(
            Diagnostic("warning", "no report files (*.yaml) found", file=str(reports_dir))
        )
    reports: list[ReportDefinition] = []
    check_only: list[ReportDefinition] = []
    known = known_fields(attributes)
    for path in files:
        checker = _load_report(path, None, known)
        diagnostics.extend(checker.diagnostics)
        if checker.usable is not None:
            reports.append(checker.usable)
        if checker.check_only is not None:
            check_only.append(checker.check_only)
    return LoadResult(
        tuple(reports), sort_diagnostics(diagnostics), tuple(files), tuple(check_only)
    )


def load_report(
    path: Path, text: str | None = None, attributes: Collection[str] = ()
) -> tuple[ReportDefinition | None, list[Diagnostic]]:
    """Load one report file (``text`` given: use it instead of reading ``path``)."""
    checker = _load_report(path, text, known_fields(attributes))
    return checker.usable, checker.diagnostics


def _load_report(path: Path, text: str | None, known: frozenset[str]) -> _Checker:
    """The checker that read ``path``: its usable report, its definition to check only (see
    ``LoadResult.check_only``) and its diagnostics."""
    file = str(path)
    checker = _Checker(file, known)
    if text is None:
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            checker.error(1, 1, f"not UTF-8 text: {exc.reason}")
            return checker
        except OSError as exc:
            checker.diagnostics.append(
                Diagnostic("error", f"cannot read file: {exc.strerror}", file)
            )
            return checker
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
        return checker
    report = checker.report(root, name, path)
    # Report-level problems (name, title, vars, ...) make the whole file unusable; a broken
    # aggregation is only left out, so expansion can still check the others. What was left
    # out is still expanded, for its variables' problems, but never planned.
    if checker.report_level_errors or not name_ok:
        checker.usable = None
        checker.check_only = checker.whole if checker.variables_ok else None
    else:
        checker.usable = report
        if checker.broken and checker.variables_ok and report is not None:
            checker.check_only = dataclasses.replace(
                report,
                title=_PLACEHOLDER,
                description=None,
                aggregations=tuple(checker.broken),
            )
    return checker


# --------------------------------------------------------------------------- validation

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_TEXT_TAGS = frozenset({_STR, _INT, _FLOAT, _BOOL})
_kind = node_kind


# A string that stands in for one a broken file lacks, in definitions only checked.
_PLACEHOLDER = SourceString("", 1, 1)


def _group_string(item: Node) -> SourceString | None:
    """A ``group_by`` entry that is a non-empty string, without checking it again."""
    if isinstance(item, ScalarNode) and item.tag == _STR and item.value.strip():
        return SourceString(item.value, item.line + 1, item.column + 1, item.style, item.raw)
    return None


# The records made for every aggregation and string are named tuples, built here straight
# from their fields, in order: the keyword-friendly __new__ a named tuple has is a Python
# function, which would cost a sixth of checking a workspace.
_new_record = tuple.__new__


class _Checker:
    """Validates one file's node tree field by field, collecting every diagnostic."""

    def __init__(self, file: str, known: frozenset[str]) -> None:
        self.file = file
        self.known = known
        self.diagnostics: list[Diagnostic] = []
        self.has_errors = False
        self.report_level_errors = False
        # Keys that a "did you mean" hint of the last mapping proposed: not reported as
        # missing too, so a typo gives one error, not two.
        self.suggested: set[str] = set()
        # What loading made of the file: the report to plan, if usable; the parts left out
        # for errors (a whole report, or broken aggregations), whose variables expansion
        # still checks; ``whole`` is every part, as far as it could be read.
        self.usable: ReportDefinition | None = None
        self.check_only: ReportDefinition | None = None
        self.whole: ReportDefinition | None = None
        self.broken: list[AggregationDefinition] = []
        self.variables_ok = True

    def error(
        self, line: int, column: int, message: str, detail: str = "", end: int | None = None
    ) -> None:
        self.has_errors = True
        self.diagnostics.append(
            Diagnostic("error", message, self.file, line, column, detail, end_column=end)
        )

    def warning(self, line: int, column: int, message: str, end: int | None = None) -> None:
        self.diagnostics.append(
            Diagnostic("warning", message, self.file, line, column, end_column=end)
        )

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
        record = (node.value, node.line + 1, node.column + 1, node.style, node.raw)
        return _new_record(SourceString, record)

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
            vars_before = len(self.diagnostics)
            variables = self.variables(fields["vars"][1])
            # A variable left out would make every use of it "undefined": no such checks.
            self.variables_ok = len(self.diagnostics) == vars_before
        moved = parse_moved(self, fields["moved"][1]) if "moved" in fields else ()
        notify = parse_notify(self, fields["notify"][1]) if "notify" in fields else None
        reading = parse_reading(self, fields)
        checks = parse_checks(self, fields["checks"][1]) if "checks" in fields else ()
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
        definition = ReportDefinition(
            name=name,
            path=path,
            title=title or _PLACEHOLDER,
            aggregations=tuple(aggregations),
            description=description,
            owner=owner,
            refresh=refresh,
            formats=formats,
            template=template,
            vars=variables,
            moved=moved,
            reading=reading,
            checks=checks,
            notify=notify,
        )
        if self.has_errors:  # (only then: a file without errors needs no second copy)
            self.whole = dataclasses.replace(definition, aggregations=(*aggregations, *self.broken))
        return None if title is None else definition

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
        reading = parse_reading(self, fields)
        checks = parse_checks(self, fields["checks"][1]) if "checks" in fields else ()
        failed = self.has_errors
        self.has_errors = before or failed
        if failed or query is None or limit is None or not groups:
            if "for_each" not in fields or for_each is not None:
                # Left out, but its ${...} are still checked: with what could be read.
                group_node = fields["group_by"][1] if "group_by" in fields else None
                items = group_node.items if isinstance(group_node, SeqNode) else []
                valid_groups = tuple(g for g in map(_group_string, items) if g is not None)
                self.broken.append(
                    AggregationDefinition(
                        agg_id,
                        key.line + 1,
                        key.column + 1,
                        title,
                        query or _PLACEHOLDER,
                        valid_groups,
                        limit or 1,
                        for_each,
                        reading,
                        checks,
                    )
                )
            return None
        line, column = key.line + 1, key.column + 1
        record = (agg_id, line, column, title, query, groups, limit, for_each, reading, checks)
        return _new_record(AggregationDefinition, record)

    def query(self, query: SourceString) -> None:
        problem = check_query(query.value)
        if problem is not None:
            reason, position = problem
            line, column = query.location_of(position)
            end = query.end_column_of(position)
            self.error(line, column, f"invalid query_filter: {reason}", query.value, end)
            return
        for message, position in check_query_fields(query.value, self.known):
            line, column = query.location_of(position)
            self.warning(line, column, message, query.end_column_of(position))

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
                problem = check_group(group.value, self.known)
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
