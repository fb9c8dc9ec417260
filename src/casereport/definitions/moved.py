"""``moved:`` entries: renames that keep results and history, like Terraform's ``moved``.

A report lists what it was called before, at report level::

    moved:
      - {from: by_state, to: by_status}                   # an aggregation of this report
      - {from: 'by_team["ops"]', to: 'by_team["sre"]'}    # one for_each key
      - {from: old-report.by_status, to: by_status}       # from another (old) report
      - {from: old-report}                                # the whole report was renamed

``to`` is always in this report (``agg`` or ``agg["key"]``); without ``to``, ``from`` is the
report's old name and every ``old-report.X`` becomes ``this-report.X``. An aggregation
without a key moves its ``for_each`` keys with it. Loading checks each entry's shape
(``parse_moved``); the workspace check (``check_moves``) that no ``from`` is still
defined, that every ``to`` is, and that no entry moves an address twice or in a chain.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from casereport.definitions.checker import NodeChecker
from casereport.definitions.models import Diagnostic, MovedEntry
from casereport.definitions.yamlnodes import MapNode, Node, ScalarNode, SeqNode

_REPORT = r"[a-z0-9][a-z0-9_-]{0,63}"
_AGGREGATION = r'[a-z0-9][a-z0-9_]*(?:\["[^"\\]*"\])?'
REPORT_RE = re.compile(rf"{_REPORT}\Z")
LOCAL_RE = re.compile(rf"{_AGGREGATION}\Z")
QUALIFIED_RE = re.compile(rf"{_REPORT}\.{_AGGREGATION}\Z")
#: Any ``from``: a report name, an aggregation of this report or of another.
MOVED_FROM_RE = re.compile(rf"(?:{_REPORT}|(?:{_REPORT}\.)?{_AGGREGATION})\Z")
MOVED_KEYS = ("from", "to")


def _text(checker: NodeChecker, node: Node, what: str) -> str | None:
    if isinstance(node, ScalarNode) and node.tag.endswith(":str") and node.value:
        return node.value
    checker.at(node, f'moved: "{what}" must be an address (a string)')
    return None


def parse_moved(checker: NodeChecker, node: Node) -> tuple[MovedEntry, ...]:
    """The report's ``moved:`` list, each entry's shape checked (errors at their place)."""
    if not isinstance(node, SeqNode):
        checker.at(node, '"moved" must be a list of {from, to} entries')
        return ()
    entries = []
    for item in node.items:
        if not isinstance(item, MapNode):
            checker.at(item, 'a "moved" entry must be a mapping: {from: OLD, to: NEW}')
            continue
        fields = checker.mapping(item, MOVED_KEYS, "in a moved entry")
        if "from" not in fields:
            if "from" not in checker.suggested:  # a typo of it already has its error
                checker.at(item, 'a "moved" entry needs "from" (the old address)')
            continue
        source = _text(checker, fields["from"][1], "from")
        target = _text(checker, fields["to"][1], "to") if "to" in fields else None
        if source is None or ("to" in fields and target is None):
            continue
        where = fields["from"][1]
        if target is None:
            if not REPORT_RE.match(source):
                checker.at(
                    where,
                    f'moved: "from: {source}" without "to" names the report this one was '
                    'renamed from; for an aggregation add "to"',
                )
                continue
        elif not (LOCAL_RE.match(source) or QUALIFIED_RE.match(source)):
            checker.at(
                where,
                f'moved: "from: {source}" is not an address: agg, agg["key"], '
                "or old-report.agg for another report's",
            )
            continue
        elif not LOCAL_RE.match(target):
            checker.at(
                fields["to"][1],
                f'moved: "to: {target}" must be an aggregation of this report: '
                'agg or agg["key"], without a report name',
            )
            continue
        elif source == target:
            checker.at(where, f'moved: "{source}" is moved to itself')
            continue
        entries.append(MovedEntry(source, target, where.line + 1, where.column + 1))
    return tuple(entries)


@dataclass(frozen=True, slots=True)
class Move:
    """A ``moved`` entry with full addresses: ``source`` (a report or an address) to
    ``destination`` (this report, or one of its addresses), and where it was written."""

    source: str
    destination: str
    file: str
    line: int
    column: int


def resolve(report: str, file: Path, entries: Iterable[MovedEntry]) -> tuple[Move, ...]:
    """The entries of ``report`` as full addresses."""
    moves = []
    for entry in entries:
        if entry.to is None:
            source, destination = entry.source, report
        else:
            qualified = QUALIFIED_RE.match(entry.source)
            source = entry.source if qualified else f"{report}.{entry.source}"
            destination = f"{report}.{entry.to}"
        moves.append(Move(source, destination, str(file), entry.line, entry.column))
    return tuple(moves)


class _Aggregation(Protocol):
    @property
    def address(self) -> str: ...


class _Report(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def aggregations(self) -> Sequence[_Aggregation]: ...
    @property
    def moves(self) -> tuple[Move, ...]: ...


def _defined(address: str, reports: set[str], addresses: set[str], bases: set[str]) -> bool:
    if "." not in address:
        return address in reports
    return address in addresses or address in bases


def check_moves(reports: Sequence[_Report]) -> list[Diagnostic]:
    """Every ``moved`` entry of the workspace against what is defined; errors located."""
    moves = [move for report in reports for move in report.moves]
    if not moves:
        return []
    names = {report.name for report in reports}
    addresses = {a.address for report in reports for a in report.aggregations}
    bases = {address.split("[", 1)[0] for address in addresses}
    diagnostics = []
    first: dict[str, Move] = {}
    into: dict[str, Move] = {}
    destinations = {move.destination: move for move in moves}

    def error(move: Move, message: str) -> None:
        diagnostics.append(Diagnostic("error", message, move.file, move.line, move.column))

    for move in moves:
        earlier = first.setdefault(move.source, move)
        if earlier is not move:
            error(
                move,
                f'moved: "{move.source}" is already moved to "{earlier.destination}" '
                f"({earlier.file}:{earlier.line})",
            )
        elif (other := into.setdefault(move.destination, move)) is not move:
            error(
                move,
                f'moved: "{move.destination}" already takes the results of "{other.source}" '
                f"({other.file}:{other.line}); one old address per new one",
            )
        elif move.source in destinations:
            via = destinations[move.source]
            error(
                move,
                f'moved: "{move.source}" is moved on again: a chain or cycle with '
                f'"{via.source}" -> "{via.destination}" ({via.file}:{via.line}); '
                "move each old address straight to where it is now",
            )
        elif _defined(move.source, names, addresses, bases):
            error(
                move,
                f'moved: "{move.source}" is still defined; "from" names an old address '
                "that no report defines any more",
            )
        elif not _defined(move.destination, names, addresses, bases):
            error(move, f'moved: "to" address "{move.destination}" is not defined')
    return diagnostics
