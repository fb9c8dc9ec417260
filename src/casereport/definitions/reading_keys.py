"""The reading keys of a report file: ``compare``, ``order``, ``labels``, ``better``, ``trend``.

Each may be written at report level, as the default of every aggregation of the report,
and in an aggregation (``for_each`` ones too), which overrides the report's: an
aggregation's ``labels`` add to the report's (its own win for the same value), every other
key replaces the report's::

    compare: 7d              # previous (default) or 12h, 7d, 4w: the run that long before
    order: natural           # natural (default), count, label, or [P1, P2, ...]
    labels: {NOT_DEFINED: No priority}   # raw group value -> what pages show
    better: lower            # lower or higher: colour changes as good or bad
    trend: [P1, P2]          # the groups a trend draws (default: the first by order)

Loading checks each value at its place (``parse_reading``, errors with a fix hint);
expansion resolves them into each ``AggregationSpec.reading`` (``resolve_reading``);
``retention_warnings`` says when a ``compare`` reaches further back than the workspace's
``history`` keeps. What the values mean is ``casereport.definitions.reading``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from casereport.definitions.checker import NodeChecker
from casereport.definitions.models import Diagnostic, ReadingKey, ReportDefinition, SourceString
from casereport.definitions.reading import (
    BETTER_CHOICES,
    COMPARE_PREVIOUS,
    DEFAULT_READING,
    ORDER_CHOICES,
    Reading,
    compare_tolerance,
    duration_seconds,
)
from casereport.definitions.yamlnodes import MapNode, Node, ScalarNode, SeqNode, node_kind
from casereport.settings import SETTINGS_FILE, Retention, did_you_mean

__all__ = ["READING_KEYS", "parse_reading", "resolve_reading", "retention_warnings"]

READING_KEYS = ("compare", "order", "labels", "better", "trend")
_READING_KEY_SET = frozenset(READING_KEYS)

_STR = "tag:yaml.org,2002:str"


def parse_reading(
    checker: NodeChecker, fields: Mapping[str, tuple[ScalarNode, Node]]
) -> tuple[ReadingKey, ...]:
    """The reading keys among a report's or an aggregation's ``fields``, each checked
    (errors at their place); a key with an error is left out."""
    if _READING_KEY_SET.isdisjoint(fields):  # most aggregations: one check, no loop
        return ()
    keys = []
    for name in READING_KEYS:
        if name in fields:
            node = fields[name][1]
            value = _PARSERS[name](checker, node)
            if value is not None:
                keys.append(ReadingKey(name, value, node.line + 1, node.column + 1))
    return tuple(keys)


def _word(checker: NodeChecker, node: Node, name: str, choices: Sequence[str]) -> str | None:
    """One of ``choices``, or None after an error (with "did you mean" for a near miss)."""
    if isinstance(node, ScalarNode) and node.tag == _STR and node.value in choices:
        return node.value
    listed = " or ".join((", ".join(choices[:-1]), choices[-1]))
    if isinstance(node, ScalarNode) and node.tag == _STR:
        hint = did_you_mean(node.value, choices)
        checker.at(node, f'unknown {name} "{node.value}"' + (hint or f": use {listed}"))
    else:
        checker.at(node, f'"{name}" must be {listed}, not {node_kind(node)}')
    return None


def _compare(checker: NodeChecker, node: Node) -> str | None:
    if isinstance(node, ScalarNode) and node.tag == _STR:
        if node.value == COMPARE_PREVIOUS or duration_seconds(node.value) is not None:
            return node.value
        hint = did_you_mean(node.value, (COMPARE_PREVIOUS,))
        checker.at(
            node,
            f'invalid compare "{node.value}"'
            + (hint or ': use "previous" or a whole number of hours, days or weeks (12h, 7d, 4w)'),
        )
        return None
    checker.at(
        node, f'"compare" must be "previous" or a duration such as 7d, not {node_kind(node)}'
    )
    return None


def _string(checker: NodeChecker, node: Node, what: str) -> SourceString | None:
    """A non-empty string; a number or boolean gets a hint to quote it (group values and
    labels are text)."""
    if isinstance(node, ScalarNode) and node.tag != _STR and node.value:
        checker.at(node, f'{what} must be text: quote {node.value} as "{node.value}"')
        return None
    return checker.string(node, what)


def _values(checker: NodeChecker, node: Node, name: str) -> tuple[str, ...] | None:
    """A non-empty list of unique group values (strings)."""
    if not isinstance(node, SeqNode):
        kind = node_kind(node)
        checker.at(node, f'"{name}" must be a list of group values such as [P1, P2], not {kind}')
        return None
    if not node.items:
        checker.at(node, f'"{name}" must list at least one group value, e.g. [P1, P2]')
        return None
    values: list[str] = []
    for item in node.items:
        found = _string(checker, item, f'"{name}" entries')
        if found is None:
            continue
        if found.value in values:
            checker.at(item, f'"{name}" lists "{found.value}" twice')
            continue
        values.append(found.value)
    return tuple(values) if len(values) == len(node.items) else None


def _order(checker: NodeChecker, node: Node) -> str | tuple[str, ...] | None:
    if isinstance(node, SeqNode):
        return _values(checker, node, "order")
    if isinstance(node, ScalarNode) and node.tag == _STR and node.value not in ORDER_CHOICES:
        hint = did_you_mean(node.value, ORDER_CHOICES)
        checker.at(
            node,
            f'unknown order "{node.value}"'
            + (hint or ": use natural, count, label or a list of group values such as [P1, P2]"),
        )
        return None
    if isinstance(node, ScalarNode) and node.tag == _STR:
        return node.value
    checker.at(
        node,
        f'"order" must be natural, count, label or a list of group values, not {node_kind(node)}',
    )
    return None


def _labels(checker: NodeChecker, node: Node) -> tuple[tuple[str, str], ...] | None:
    if not isinstance(node, MapNode):
        checker.at(
            node,
            '"labels" must be a mapping of group value to label, e.g. {NOT_DEFINED: No '
            f"priority}}, not {node_kind(node)}",
        )
        return None
    pairs: list[tuple[str, str]] = []
    fields = checker.mapping(node, (), "in labels", "label for")
    for raw, (key, value) in fields.items():
        if not raw.strip():
            checker.at(key, "a label's group value must not be empty")
            continue
        label = _string(checker, value, f'the label of "{raw}"')
        if label is not None:
            pairs.append((raw, label.value))
    return tuple(pairs) if len(pairs) == len(node.pairs) else None


def _better(checker: NodeChecker, node: Node) -> str | None:
    return _word(checker, node, "better", BETTER_CHOICES)


def _trend(checker: NodeChecker, node: Node) -> tuple[str, ...] | None:
    return _values(checker, node, "trend")


_PARSERS: dict[str, Any] = {
    "compare": _compare,
    "order": _order,
    "labels": _labels,
    "better": _better,
    "trend": _trend,
}


@functools.lru_cache(maxsize=1024)
def resolve_reading(report: tuple[ReadingKey, ...], aggregation: tuple[ReadingKey, ...]) -> Reading:
    """An aggregation's ``Reading``: the defaults, the report's keys, then its own."""
    if not report and not aggregation:
        return DEFAULT_READING
    values: dict[str, Any] = {}
    labels: dict[str, str] = {}
    for key in (*report, *aggregation):
        if key.name == "labels":
            labels.update(key.value)
        else:
            values[key.name] = key.value
    if labels:
        values["labels"] = tuple(labels.items())
    return replace(DEFAULT_READING, **values)


def retention_warnings(
    reports: Iterable[ReportDefinition], retention: Retention
) -> list[Diagnostic]:
    """A warning at each ``compare:`` duration that looks further back (with its tolerance,
    ``reading.compare_tolerance``) than a duration ``history`` keeps runs."""
    if retention.seconds is None:
        return []
    warnings = []
    for report in reports:
        keys = (*report.reading, *(k for a in report.aggregations for k in a.reading))
        for key in keys:
            seconds = duration_seconds(key.value) if key.name == "compare" else None
            if seconds is None:
                continue
            reach = seconds + compare_tolerance(seconds)
            if reach <= retention.seconds:
                continue
            needed = _span(reach)
            message = (
                f"compare: {key.value} looks for a run up to {needed} back, but "
                f'history = "{retention.text}" in {SETTINGS_FILE} keeps runs for '
                f'{retention.text} only: set history = "{needed}" or longer'
            )
            warnings.append(Diagnostic("warning", message, str(report.path), key.line, key.column))
    return warnings


def _span(seconds: int) -> str:
    """Whole days when exact, else hours rounded up: ``32d``, ``28h``."""
    if seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    return f"{-(-seconds // 3600)}h"
