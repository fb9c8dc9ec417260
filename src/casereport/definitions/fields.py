"""What a case's fields are: which hold one value per case, which can hold several.

Datadog's Case object (DATADOG_API.md) has fixed single-valued fields (``status``,
``priority``, ``project``, the user relations, ...) and a free-form ``attributes`` map whose
values are lists of strings (``team``, ``services``, ...), plus custom attributes that may be
multi-valued. Grouping by single-valued fields puts each case in at most one group, so
groups that add up to the total are all the groups there are; grouping by any other field
can count a case in several groups, and no sum says whether groups were left out.

``KNOWN_FIELDS`` is the one list of the fields casereport knows, for ``group_by`` and for
the fields of a ``query_filter`` alike; any other name is read as a key of the case's
attributes, and is accepted without a warning once declared in ``casereport.toml``
(``attributes = ["region"]``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable

from casereport.definitions.query import field_terms
from casereport.errors import QuerySyntaxError
from casereport.settings import did_you_mean

__all__ = [
    "ATTRIBUTE_KEYS",
    "CASE_STRING_FIELDS",
    "KNOWN_FIELDS",
    "KNOWN_FIELD_SET",
    "SINGLE_VALUED_FIELDS",
    "TIMESTAMP_FIELDS",
    "USER_RELATIONS",
    "all_single_valued",
    "check_query_fields",
    "known_fields",
    "unknown_field_hint",
]

# The Case object's single-valued string attributes, and its user relations (DATADOG_API.md).
CASE_STRING_FIELDS = (
    "key",
    "title",
    "description",
    "status",
    "status_name",
    "status_group",
    "priority",
    "type",
    "type_id",
    "creation_source",
)
USER_RELATIONS = ("assignee", "created_by", "modified_by")
TIMESTAMP_FIELDS = ("created_at", "modified_at", "closed_at", "archived_at")
# The keys every case's free-form ``attributes`` map has, and the singular spellings real
# data also shows (the emulator reads them as aliases of the plural keys).
ATTRIBUTE_KEYS = (
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

# A case's fields with one value at most: its attributes outside the free-form map, and the
# single relations (a case has one project, one assignee, one creator, one last modifier).
SINGLE_VALUED_FIELDS = frozenset((*CASE_STRING_FIELDS, "project", *USER_RELATIONS))

# Every case field casereport knows, to search or group by. Archived cases are never
# searched, but ``archived_at`` is still a field.
KNOWN_FIELDS = (*CASE_STRING_FIELDS, "project", *USER_RELATIONS, *TIMESTAMP_FIELDS, *ATTRIBUTE_KEYS)

KNOWN_FIELD_SET = frozenset(KNOWN_FIELDS)
# A superset of the fields a query names: every run of field-name characters before a ":"
# (a leading "-" is an exclusion). When all are known and nothing looks like a comparison or
# a range, the query needs no closer look, which is what almost every query gets.
_CANDIDATE_FIELD = re.compile(r"(?<![A-Za-z0-9_.\-])-*([A-Za-z0-9_.][A-Za-z0-9_.\-]*):")
_MAYBE_UNDOCUMENTED = re.compile(r"[<>\[{]")
_COMPARISON_START = ("<", ">")
_RANGE_START = {"[": "]", "{": "}"}


def all_single_valued(fields: Iterable[str]) -> bool:
    """Whether every one of ``fields`` holds at most one value per case (names are matched
    as the API matches them, whatever their case); an unknown field may hold several."""
    return all(field.lower() in SINGLE_VALUED_FIELDS for field in fields)


def known_fields(attributes: Collection[str] = ()) -> frozenset[str]:
    """The field names taken without a warning: ``KNOWN_FIELDS`` and the workspace's
    declared ``attributes``."""
    return KNOWN_FIELD_SET.union(attributes) if attributes else KNOWN_FIELD_SET


def unknown_field_hint(name: str, known: frozenset[str]) -> str:
    """A "did you mean" suffix naming the known field or attribute nearest ``name``."""
    return did_you_mean(name.lower(), sorted(known), cutoff=0.75)


def _declare(name: str) -> str:
    return f'declare it in casereport.toml (attributes = ["{name}"]) if cases have it'


# Cached: the same query often recurs across reports, and a hit costs a tenth of a check.
@functools.lru_cache(maxsize=16384)
def check_query_fields(
    text: str, known: frozenset[str] = KNOWN_FIELD_SET
) -> tuple[tuple[str, int], ...]:
    """Warnings ``(message, 0-based position)`` for a query that parses: a field neither a
    known case field nor a declared attribute, and syntax Datadog does not document
    (comparisons such as ``created_at:>now-7d``, ranges such as ``[a TO b]``)."""
    if known.issuperset(_CANDIDATE_FIELD.findall(text)) and not _MAYBE_UNDOCUMENTED.search(text):
        return ()
    return _query_field_problems(text, known)


@functools.lru_cache(maxsize=4096)
def _query_field_problems(text: str, known: frozenset[str]) -> tuple[tuple[str, int], ...]:
    try:
        terms = field_terms(text)
    except QuerySyntaxError:  # reported as a syntax error
        return ()
    found: list[tuple[str, int]] = []
    named: set[str] = set()
    for term in terms:
        field = term.field
        if field not in known and field not in named:
            named.add(field)
            hint = unknown_field_hint(field, known)
            found.append(
                (
                    f'query field "{field}" is not a known case field or a declared attribute'
                    + (hint or f": {_declare(field)}"),
                    term.position,
                )
            )
        if term.quoted or not term.value:
            continue
        if term.value.startswith(_COMPARISON_START):
            found.append(
                (
                    f'undocumented search syntax: "{field}:{term.value}" compares, and Datadog '
                    "documents no comparison operators for Case Management search (casereport "
                    f'reads "{term.value}" as a plain value, as its emulator does)',
                    term.value_position,
                )
            )
        elif term.value[0] in _RANGE_START:
            close = text.find(_RANGE_START[term.value[0]], term.value_position)
            shown = text[term.value_position : close + 1] if close > 0 else term.value
            words = '", "'.join(shown.split())
            found.append(
                (
                    f'undocumented search syntax: "{field}:{shown}" is a range, and Datadog '
                    "documents no ranges for Case Management search (casereport reads it as "
                    f'the words "{words}", as its emulator does)',
                    term.value_position,
                )
            )
    return tuple(found)
