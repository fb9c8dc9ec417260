"""The emulator's case store: columnar, dictionary-encoded, evaluated with numpy.

Layout
------
Cases are kept in columns rather than dicts, so that an aggregation over a million cases
is a handful of vectorised numpy operations:

- a single-valued field (status, priority, title, project, assignee, ...) is an int32 code
  per case (-1: the case lacks the field) plus the list of its distinct values;
- a multi-valued field (each key of the free-form ``attributes`` map, each custom
  attribute) is CSR: per-case offsets into one int32 code array, plus the distinct values.

A search value is tested once per *distinct* value of its field (plain Python over a short
list, so wildcards and containment cost nothing per case), which gives a lookup table;
``table[codes]`` then answers the term for every case at once. Case objects are built only
when asked for (a page of search results, an export): from the original records for
loaded data, from the columns for synthetic data. The store is read-only once built, so
concurrent readers (the HTTP app's worker threads) need no locking; its lazily built caches
are assigned whole, at worst computed twice.

Search semantics
----------------
Datadog documents the search syntax, not how each field matches; these are the emulator's
choices.

- Archived cases (``archived_at`` set) never match and are never counted.
- Matching is case-insensitive. In an unquoted value ``*`` is a wildcard for any run of
  characters (only ``*``: ``?``, ``[`` and every other character are literal), so
  ``field:*`` matches every case that has the field. A quoted value is literal.
- Free text (no field) matches a case whose title or description contains the value.
- ``title`` and ``description`` match by containment (``title:kube*`` = contains ``kube``);
  every other field by equality with the whole value (``service:case`` does not match
  ``case-api``; ``service:case*`` does).
- ``status``, ``status_name``, ``status_group``, ``priority``, ``type``, ``type_id``,
  ``key``, ``creation_source``, ``id``: the case's value (``status:open`` matches ``OPEN``,
  ``status:in_progress`` matches ``IN_PROGRESS``).
- ``project``: the project's id, key or name. ``assignee``, ``created_by``,
  ``modified_by``: the user's id, handle, email or name. A project or user that the data's
  ``included`` objects do not describe is known by its id only.
- Any other field is a key of the case's free-form ``attributes`` map; a case matches when
  any of its values does. ``service``/``services``, ``env``/``environments``,
  ``datacenter``/``datacenters`` and ``version``/``versions`` are one field each (real data
  shows both spellings; a case holding both keys has the union of their values). When no
  case has such a key, the name is looked up among custom attribute names; their values are
  compared as strings (numbers print as ``3`` or ``2.5``, booleans as ``true``/``false``,
  each element of a multi-valued attribute separately).
- Field names are case-insensitive (and stripped). Built-in names win over ``attributes``
  keys, which win over custom attributes. A field that no case has matches nothing; it is
  not an error.
- A case without a field (no priority, unassigned, an empty list) matches no value of it,
  so ``-priority:P1`` matches it. ``priority:NOT_DEFINED`` matches only cases that say so.

Aggregation and counts
----------------------
``total`` counts the matching cases. Grouping by a field gives one group per distinct value
among the matching cases: a case counts once in each of its values, and a case without the
field is left out (so the groups may sum to more or less than ``total``). Groups are ordered
by count, descending, then by group string (code-point order), and cut to ``limit``. Group
strings: enum-like fields as stored (``OPEN``, ``P1``), ``project`` by key (else id),
``assignee``/``created_by``/``modified_by`` by handle (else id), everything else its value.
Several group-by fields: one group per combination present (the cartesian product of a
case's values), named by the values joined with `` / `` in the order the fields are given.
Grouping by an unknown field gives no groups.

Search order
------------
``created_at``, ``priority`` or ``status``, ascending or descending; ties are broken by
``key`` ascending in natural order (``SUP-9`` before ``SUP-10``; case-insensitive), then by
position in the data. Priority ranks P1 highest, then P2 ... P5, then NOT_DEFINED (and any
unknown value); status ranks OPEN < IN_PROGRESS < CLOSED < any other value (alphabetical).
A case lacking the sort field ranks lowest: last in descending order, first in ascending.
"""

from __future__ import annotations

import copy
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeAlias

import numpy as np
from numpy.typing import NDArray

from casereport.definitions.query import And, MatchAll, Node, Not, Or, Term

__all__ = [
    "ATTRIBUTE_ALIASES",
    "MISSING_TIME",
    "SORT_FIELDS",
    "STRING_FIELDS",
    "USER_RELATIONS",
    "Aggregation",
    "CaseColumns",
    "CaseSource",
    "CaseStore",
    "Column",
    "FieldCounts",
    "InvalidCaseData",
    "LazyColumn",
    "MultiColumn",
    "Pattern",
    "RefColumn",
    "SearchPage",
    "SingleColumn",
    "format_time",
    "parse_time",
]

BoolArray: TypeAlias = NDArray[np.bool_]
Int32Array: TypeAlias = NDArray[np.int32]
Int64Array: TypeAlias = NDArray[np.int64]

# Built-in single-valued string fields of a case's ``attributes``.
STRING_FIELDS = (
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
SORT_FIELDS = ("created_at", "priority", "status")
# Fields matched by containment rather than equality.
_CONTAINS_FIELDS = frozenset({"title", "description"})
# Spellings of one ``attributes`` key; every spelling maps to the canonical (plural) one.
ATTRIBUTE_ALIASES = {
    "service": "services",
    "env": "environments",
    "datacenter": "datacenters",
    "version": "versions",
}
# A timestamp the case lacks; low enough to sort first, negatable without overflow.
MISSING_TIME = -(2**62)

_PRIORITY_RANK = {"P1": 6, "P2": 5, "P3": 4, "P4": 3, "P5": 2, "NOT_DEFINED": 1}
_STATUS_RANK = {"OPEN": 1, "IN_PROGRESS": 2, "CLOSED": 3}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NATURAL_KEY = re.compile(r"(.*?)(\d+)", re.DOTALL)


@dataclass(frozen=True)
class Aggregation:
    """The answer to ``POST /api/v2/cases/aggregate``."""

    total: int
    groups: list[tuple[str, int]]


@dataclass(frozen=True)
class FieldCounts:
    """One group-by field of ``GET /api/v2/cases/count``: its values with their counts."""

    field: str
    values: list[tuple[str, int]]


@dataclass(frozen=True)
class SearchPage:
    """One page of ``GET /api/v2/cases``."""

    cases: list[dict[str, Any]]
    total_cases: int
    included: list[dict[str, Any]]


class InvalidCaseData(ValueError):
    """A record handed to ``CaseStore.from_cases`` is not a usable case (or included object).

    ``section`` is ``"data"`` or ``"included"``, ``index`` the record's 0-based position
    there, ``detail`` what is wrong with it.
    """

    def __init__(self, section: str, index: int, detail: str) -> None:
        self.section = section
        self.index = index
        self.detail = detail
        super().__init__(f"{section}[{index}]: {detail}")


def parse_time(text: str) -> int:
    """Milliseconds since the epoch of an ISO 8601 timestamp (naive means UTC)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def format_time(ms: int) -> str:
    """The timestamp the emulator prints: ``2026-05-31T23:59:59.123Z``."""
    moment = _EPOCH + timedelta(milliseconds=ms)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


# -- matching values ------------------------------------------------------------------------


class Pattern:
    """One search value, tested against case-folded strings.

    ``exact`` is the folded value when the test is plain equality (no wildcard, no
    containment), so a column may answer it without testing every value.
    """

    __slots__ = ("_contains", "_needle", "_regex", "exact")

    def __init__(self, value: str, *, quoted: bool, contains: bool) -> None:
        folded = value.casefold()
        self._contains = contains
        self.exact: str | None = None
        self._needle: str | None = None
        self._regex: re.Pattern[str] | None = None
        if not quoted and "*" in folded:
            self._regex = re.compile(
                ".*".join(re.escape(part) for part in folded.split("*")), re.DOTALL
            )
        elif contains:
            self._needle = folded
        else:
            self.exact = folded

    def test(self, text: str) -> bool:
        if self._regex is not None:
            found = self._regex.search(text) if self._contains else self._regex.fullmatch(text)
            return found is not None
        if self._needle is not None:
            return self._needle in text
        return text == self.exact


# -- columns --------------------------------------------------------------------------------


class Column(ABC):
    """One searchable, groupable field over every case of a store."""

    @property
    @abstractmethod
    def labels(self) -> Sequence[str]:
        """The group string of each group code."""

    @abstractmethod
    def match(self, pattern: Pattern) -> BoolArray:
        """A new boolean array: which cases have a value matching ``pattern``."""

    @abstractmethod
    def group_counts(self, mask: BoolArray) -> Int64Array:
        """Per group code, how many of the ``mask`` cases have that value."""

    @abstractmethod
    def group_entries(self, mask: BoolArray) -> tuple[Int64Array, Int64Array]:
        """(case index, group code) of every value of the ``mask`` cases, by case index."""


class _Dictionary(Column):
    """A column whose codes index a list of distinct values."""

    def __init__(
        self,
        values: Sequence[str],
        match_values: Sequence[Sequence[str]] | None,
        distinct: bool = False,
    ) -> None:
        self.values = values
        # What a search value may equal, per code (default: the value itself).
        self._match_values = match_values
        self._folded: list[tuple[str, ...]] | None = None
        self._exact: dict[str, list[int]] | None = None
        self._labels: Sequence[str] = values
        self._group_lut: Int64Array | None = None
        if not distinct:
            index: dict[str, int] = {}
            group_of = [index.setdefault(value, len(index)) for value in values]
            if len(index) < len(values):
                # Distinct codes may share a label (two users, one handle): group by label.
                self._labels = list(index)
                self._group_lut = np.array(group_of, dtype=np.int64)

    @property
    def labels(self) -> Sequence[str]:
        return self._labels

    def _folded_values(self) -> list[tuple[str, ...]]:
        if self._folded is None:
            source = self._match_values or [(value,) for value in self.values]
            self._folded = [tuple(text.casefold() for text in texts) for texts in source]
        return self._folded

    def _value_table(self, pattern: Pattern) -> BoolArray:
        """Per code, does the value match; one extra False slot for code -1 (missing)."""
        table = np.zeros(len(self.values) + 1, dtype=np.bool_)
        if pattern.exact is not None:
            if self._exact is None:
                exact: dict[str, list[int]] = {}
                for code, texts in enumerate(self._folded_values()):
                    for text in set(texts):
                        exact.setdefault(text, []).append(code)
                self._exact = exact
            table[self._exact.get(pattern.exact, [])] = True
        else:
            folded = self._folded_values()
            table[:-1] = np.fromiter(
                (any(pattern.test(text) for text in texts) for texts in folded),
                dtype=np.bool_,
                count=len(folded),
            )
        return table

    def _to_groups(self, codes: NDArray[Any]) -> Int64Array:
        if self._group_lut is not None:
            grouped: Int64Array = self._group_lut[codes]
            return grouped
        return codes.astype(np.int64, copy=False)


class SingleColumn(_Dictionary):
    """A single-valued field: one int32 code per case, -1 where the case lacks it."""

    def __init__(
        self,
        codes: Int32Array,
        values: Sequence[str],
        *,
        match_values: Sequence[Sequence[str]] | None = None,
        distinct: bool = False,
    ) -> None:
        """``distinct``: the caller guarantees ``values`` has no duplicates."""
        super().__init__(values, match_values, distinct)
        self.codes = codes
        self._has_missing = bool(codes.size) and int(codes.min()) < 0

    def match(self, pattern: Pattern) -> BoolArray:
        table = self._value_table(pattern)
        return table[self.codes]

    def group_counts(self, mask: BoolArray) -> Int64Array:
        codes = self.codes[mask]
        if self._has_missing:
            codes = codes[codes >= 0]
        return np.bincount(self._to_groups(codes), minlength=len(self._labels))

    def group_entries(self, mask: BoolArray) -> tuple[Int64Array, Int64Array]:
        if self._has_missing:
            mask = mask & (self.codes >= 0)
        rows = np.flatnonzero(mask).astype(np.int64)
        return rows, self._to_groups(self.codes[rows])


class RefColumn(SingleColumn):
    """A relationship (project, user): codes index ``ids``; labels and match values vary."""

    def __init__(
        self,
        codes: Int32Array,
        ids: Sequence[str],
        labels: Sequence[str],
        match_values: Sequence[Sequence[str]],
    ) -> None:
        super().__init__(codes, labels, match_values=match_values)
        self.ids = ids


class MultiColumn(_Dictionary):
    """A multi-valued field in CSR form: case i holds ``codes[offsets[i]:offsets[i + 1]]``.

    A case's codes must be distinct (builders drop repeated values). Most cases hold one
    value, so matching reads a dense array of every case's first value (-1: none) and only
    scatters the few further values.
    """

    def __init__(self, offsets: Int64Array, codes: Int32Array, values: Sequence[str]) -> None:
        super().__init__(values, None)
        self.offsets = offsets
        self.codes = codes
        self._size = offsets.size - 1
        lengths = np.diff(offsets)
        # The case of every entry, for grouping entries by case.
        self.rows: Int32Array = np.repeat(np.arange(self._size, dtype=np.int32), lengths)
        has = lengths > 0
        self._first: Int32Array = np.full(self._size, -1, dtype=np.int32)
        self._first[has] = codes[offsets[:-1][has]]
        later = np.ones(codes.size, dtype=np.bool_)
        later[offsets[:-1][has]] = False
        self._later_rows: Int32Array = self.rows[later]
        self._later_codes: Int32Array = codes[later]

    def values_of(self, index: int) -> list[str]:
        """The values of case ``index``, in stored order."""
        start, stop = int(self.offsets[index]), int(self.offsets[index + 1])
        return [self.values[code] for code in self.codes[start:stop].tolist()]

    def match(self, pattern: Pattern) -> BoolArray:
        table = self._value_table(pattern)
        result = table[self._first]
        if self._later_codes.size:
            result[self._later_rows[table[self._later_codes]]] = True
        return result

    def group_counts(self, mask: BoolArray) -> Int64Array:
        first = self._first[mask]
        counts = np.bincount(self._to_groups(first[first >= 0]), minlength=len(self._labels))
        if self._later_codes.size:
            later = self._later_codes[mask[self._later_rows]]
            counts += np.bincount(self._to_groups(later), minlength=len(self._labels))
        return counts

    def group_entries(self, mask: BoolArray) -> tuple[Int64Array, Int64Array]:
        keep = mask[self.rows]
        return self.rows[keep].astype(np.int64), self._to_groups(self.codes[keep])


class LazyColumn(Column):
    """A column built on first use (the million distinct ids and keys of synthetic data)."""

    def __init__(self, build: Callable[[], Column]) -> None:
        self._build = build
        self._column: Column | None = None

    def get(self) -> Column:
        if self._column is None:
            self._column = self._build()
        return self._column

    @property
    def labels(self) -> Sequence[str]:
        return self.get().labels

    def match(self, pattern: Pattern) -> BoolArray:
        return self.get().match(pattern)

    def group_counts(self, mask: BoolArray) -> Int64Array:
        return self.get().group_counts(mask)

    def group_entries(self, mask: BoolArray) -> tuple[Int64Array, Int64Array]:
        return self.get().group_entries(mask)


def _single(column: Column) -> SingleColumn:
    if isinstance(column, LazyColumn):
        column = column.get()
    if not isinstance(column, SingleColumn):
        raise TypeError(f"expected a single-valued column, got {type(column).__name__}")
    return column


# -- the store ------------------------------------------------------------------------------


class CaseSource(Protocol):
    """Builds the Case object of one case on demand."""

    def case(self, index: int) -> dict[str, Any]: ...


class _RecordSource:
    """Case objects as they were loaded: returned as (deep) copies of the records."""

    def __init__(self, records: list[Mapping[str, Any]]) -> None:
        self._records = records

    def case(self, index: int) -> dict[str, Any]:
        return copy.deepcopy(dict(self._records[index]))


@dataclass
class CaseColumns:
    """Everything a ``CaseStore`` is made of.

    ``fields`` holds every built-in field: the ``STRING_FIELDS``, ``id``, ``project`` and the
    ``USER_RELATIONS`` (those four as ``RefColumn``). ``attributes`` and ``custom`` are keyed
    by case-folded name (``attributes`` by canonical spelling, see ``ATTRIBUTE_ALIASES``).
    ``created_ms`` holds ``MISSING_TIME`` where a case has no ``created_at``. ``key_rank``,
    when given, builds the natural-order rank of every case's key (a permutation of
    ``range(size)``); otherwise it is derived from the ``key`` column.
    """

    size: int
    archived: BoolArray
    created_ms: Int64Array
    fields: dict[str, Column]
    attributes: dict[str, Column]
    custom: dict[str, Column]
    included: list[dict[str, Any]]
    source: CaseSource
    key_rank: Callable[[], Int64Array] | None = field(default=None)


class CaseStore:
    """A read-only set of cases answering aggregate, count and search queries."""

    def __init__(self, columns: CaseColumns) -> None:
        self._size = columns.size
        self._live: BoolArray = ~columns.archived
        self._created = columns.created_ms
        self._fields = columns.fields
        self._attributes = columns.attributes
        self._custom = columns.custom
        self._included = columns.included
        self._source = columns.source
        self._key_rank_builder = columns.key_rank
        self._sort_keys: dict[str, Int64Array] = {}
        self._included_index: dict[tuple[str, str], dict[str, Any]] = {}
        for obj in columns.included:
            self._included_index.setdefault((_kind(obj["type"]), obj["id"]), obj)

    # -- construction

    @classmethod
    def synthetic(cls, n: int, seed: int) -> CaseStore:
        """The deterministic synthetic data set of ``n`` cases (see ``data.synthetic_cases``)."""
        from casereport.emulator.data import synthetic_cases

        return synthetic_cases(n, seed)

    @classmethod
    def from_cases(
        cls,
        cases: Iterable[Mapping[str, Any]],
        included: Iterable[Mapping[str, Any]] = (),
    ) -> CaseStore:
        """A store of Case objects (``GET /api/v2/cases`` ``data``) and their ``included``.

        Raises ``InvalidCaseData`` naming the first record that is not a usable case.
        """
        builder = _Builder()
        records: list[Mapping[str, Any]] = []
        for index, record in enumerate(cases):
            try:
                builder.add(record)
            except _RecordError as exc:
                raise InvalidCaseData("data", index, str(exc)) from None
            records.append(record)
        return cls(builder.finish(_check_included(included), _RecordSource(records)))

    # -- reading

    def __len__(self) -> int:
        """Every case, archived ones included."""
        return self._size

    def case(self, index: int) -> dict[str, Any]:
        """The Case object of case ``index`` (0-based, archived cases included)."""
        if not 0 <= index < self._size:
            raise IndexError(f"case index {index} out of range 0..{self._size - 1}")
        return self._source.case(index)

    def cases(self) -> Iterator[dict[str, Any]]:
        """Every Case object, archived ones included, in store order."""
        for index in range(self._size):
            yield self._source.case(index)

    def included(self) -> list[dict[str, Any]]:
        """The user and project objects the data comes with (``included``)."""
        return copy.deepcopy(self._included)

    # -- queries

    def evaluate(self, query: Node) -> BoolArray:
        """Which cases match ``query``: a new boolean array, False for archived cases."""
        result = self._eval(query)
        np.logical_and(result, self._live, out=result)
        return result

    def aggregate(self, query: Node, groups: Sequence[str], limit: int) -> Aggregation:
        """Count the matching cases, grouped by ``groups``; at most ``limit`` groups."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        mask = self.evaluate(query)
        return Aggregation(int(np.count_nonzero(mask)), self._group(mask, groups, limit))

    def count(self, query: Node, group_bys: Sequence[str], limit: int | None) -> list[FieldCounts]:
        """Per group-by field, the value counts of the matching cases (``limit`` each)."""
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        mask = self.evaluate(query)
        return [FieldCounts(name, self._group(mask, [name], limit)) for name in group_bys]

    def search(
        self,
        query: Node,
        *,
        page_size: int,
        page_number: int,
        sort_field: str,
        sort_asc: bool,
    ) -> SearchPage:
        """One page (numbered from 1) of the matching cases in the given order."""
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {page_size}")
        if page_number < 1:
            raise ValueError(f"page_number must be at least 1, got {page_number}")
        primary = self._sort_key(sort_field)
        rows = np.flatnonzero(self.evaluate(query))
        start, stop = (page_number - 1) * page_size, page_number * page_size
        page = self._order_page(rows, primary, sort_asc, start, stop)
        return SearchPage(
            [self._source.case(index) for index in page],
            int(rows.size),
            self._included_for(page),
        )

    # -- evaluation

    def _eval(self, node: Node) -> BoolArray:
        """``node`` over every case, archived ones included; always a new array."""
        if isinstance(node, Term):
            return self._term(node)
        if isinstance(node, And):
            result = np.ones(self._size, dtype=np.bool_)
            for operand in node.operands:
                np.logical_and(result, self._eval(operand), out=result)
            return result
        if isinstance(node, Or):
            result = np.zeros(self._size, dtype=np.bool_)
            for operand in node.operands:
                np.logical_or(result, self._eval(operand), out=result)
            return result
        if isinstance(node, Not):
            result = self._eval(node.operand)
            np.logical_not(result, out=result)
            return result
        if isinstance(node, MatchAll):
            return np.ones(self._size, dtype=np.bool_)
        raise TypeError(f"not a query node: {node!r}")

    def _term(self, term: Term) -> BoolArray:
        if term.field is None:
            pattern = Pattern(term.value, quoted=term.quoted, contains=True)
            result = self._fields["title"].match(pattern)
            np.logical_or(result, self._fields["description"].match(pattern), out=result)
            return result
        column = self._resolve(term.field)
        if column is None:
            return np.zeros(self._size, dtype=np.bool_)
        contains = term.field.casefold() in _CONTAINS_FIELDS
        return column.match(Pattern(term.value, quoted=term.quoted, contains=contains))

    def _resolve(self, name: str) -> Column | None:
        folded = name.strip().casefold()
        column = self._fields.get(folded)
        if column is not None:
            return column
        column = self._attributes.get(ATTRIBUTE_ALIASES.get(folded, folded))
        if column is not None:
            return column
        return self._custom.get(folded)

    # -- grouping

    def _group(
        self, mask: BoolArray, names: Sequence[str], limit: int | None
    ) -> list[tuple[str, int]]:
        found = [self._resolve(name) for name in names]
        columns = [column for column in found if column is not None]
        if not columns or len(columns) < len(found):
            return []
        if len(columns) == 1:
            (column,) = columns
            counts = column.group_counts(mask)
            keys = np.flatnonzero(counts)
            labels = column.labels
            return _top(keys, counts[keys], lambda ks: [labels[k] for k in ks.tolist()], limit)
        if any(not column.labels for column in columns):
            return []
        rows, keys = columns[0].group_entries(mask)
        size = len(columns[0].labels)
        decode: Callable[[Int64Array], list[Int64Array]] = _decode_leaf
        for column in columns[1:]:
            width = len(column.labels)
            if size * width >= 2**62:  # keep combined keys within int64: renumber them
                distinct, inverse = np.unique(keys, return_inverse=True)
                keys, size = inverse.astype(np.int64).ravel(), int(distinct.size)
                decode = _decode_via(distinct, decode)
            other_rows, other_codes = column.group_entries(mask)
            rows, keys, codes = _cross(rows, keys, other_rows, other_codes, self._size)
            keys = keys * width + codes
            size *= width
            decode = _decode_split(width, decode)
        if size <= 1 << 22:
            counts = np.bincount(keys, minlength=size)
            present = np.flatnonzero(counts)
            present_counts = counts[present]
        else:
            present, present_counts = np.unique(keys, return_counts=True)
        all_labels = [column.labels for column in columns]

        def label(ks: Int64Array) -> list[str]:
            parts = [part.tolist() for part in decode(ks)]
            return [
                " / ".join(labels[code] for labels, code in zip(all_labels, combo, strict=True))
                for combo in zip(*parts, strict=True)
            ]

        return _top(present, present_counts, label, limit)

    # -- ordering

    def _sort_key(self, name: str) -> Int64Array:
        if name not in SORT_FIELDS:
            raise ValueError(f"sort field must be one of {', '.join(SORT_FIELDS)}, got {name!r}")
        cached = self._sort_keys.get(name)
        if cached is not None:
            return cached
        if name == "created_at":
            key = self._created
        else:
            column = _single(self._fields[name])
            ranks = _PRIORITY_RANK if name == "priority" else _status_ranks(column.values)
            default = _PRIORITY_RANK["NOT_DEFINED"] if name == "priority" else 0
            table = [ranks.get(value.upper(), default) for value in column.values]
            key = np.array([*table, 0], dtype=np.int64)[column.codes]  # -1 (missing) → 0
        self._sort_keys[name] = key
        return key

    def _key_rank(self) -> Int64Array:
        cached = self._sort_keys.get("key")
        if cached is None:
            if self._key_rank_builder is not None:
                cached = self._key_rank_builder()
            else:
                cached = _natural_rank(_single(self._fields["key"]))
            self._sort_keys["key"] = cached
        return cached

    def _order_page(
        self, rows: NDArray[np.intp], primary: Int64Array, ascending: bool, start: int, stop: int
    ) -> list[int]:
        if start >= rows.size:
            return []
        values = primary[rows]
        if not ascending:
            values = -values
        ranks = self._key_rank()[rows]
        low, high = int(values.min()), int(values.max())
        span = self._size + 1
        if (high - low + 1) * span < 2**62:
            # One composite key (ranks are distinct): a partial sort is enough for one page.
            composite = (values - low) * span + ranks
            if stop < composite.size:
                head = np.argpartition(composite, stop - 1)[:stop]
                order = head[np.argsort(composite[head])]
            else:
                order = np.argsort(composite)
        else:
            order = np.lexsort((ranks, values))
        return [int(index) for index in rows[order[start:stop]]]

    def _included_for(self, page: list[int]) -> list[dict[str, Any]]:
        """The user and project objects the page's cases refer to, in order of reference."""
        found: dict[tuple[str, str], dict[str, Any]] = {}
        relations = [("user", name) for name in USER_RELATIONS] + [("project", "project")]
        for index in page:
            for kind, name in relations:
                column = _single(self._fields[name])
                code = int(column.codes[index])
                if code < 0 or not isinstance(column, RefColumn):
                    continue
                ref = (kind, column.ids[code])
                obj = self._included_index.get(ref)
                if obj is not None and ref not in found:
                    found[ref] = obj
        return copy.deepcopy(list(found.values()))


# -- helpers --------------------------------------------------------------------------------


def _kind(type_name: str) -> str:
    """``users``/``user`` → ``user``, ``projects``/``project`` → ``project``."""
    return type_name[:-1] if type_name in ("users", "projects") else type_name


def _top(
    keys: NDArray[Any],
    counts: NDArray[Any],
    label: Callable[[NDArray[Any]], list[str]],
    limit: int | None,
) -> list[tuple[str, int]]:
    """Groups ordered by count descending then label, cut to ``limit``."""
    if limit is not None and keys.size > limit:
        # Only groups at least as big as the limit-th biggest can make the cut.
        threshold = np.partition(counts, keys.size - limit)[keys.size - limit]
        keep = counts >= threshold
        keys, counts = keys[keep], counts[keep]
    pairs = sorted(
        zip(label(keys), (int(count) for count in counts.tolist()), strict=True),
        key=lambda pair: (-pair[1], pair[0]),
    )
    return pairs if limit is None else pairs[:limit]


def _cross(
    rows_a: Int64Array, keys_a: Int64Array, rows_b: Int64Array, codes_b: Int64Array, size: int
) -> tuple[Int64Array, Int64Array, Int64Array]:
    """Pair every entry of a with every entry of b of the same case (rows sorted)."""
    count_b = np.bincount(rows_b, minlength=size)
    start_b = np.cumsum(count_b) - count_b
    repeats = count_b[rows_a]
    out_rows = np.repeat(rows_a, repeats)
    out_keys = np.repeat(keys_a, repeats)
    # Entry p of the output pairs a's entry j with b's entry start_b[row] + (p - first_p(j)).
    first = np.cumsum(repeats) - repeats
    positions = np.repeat(start_b[rows_a] - first, repeats) + np.arange(out_rows.size)
    return out_rows, out_keys, codes_b[positions]


def _decode_leaf(keys: Int64Array) -> list[Int64Array]:
    return [keys]


def _decode_split(
    width: int, inner: Callable[[Int64Array], list[Int64Array]]
) -> Callable[[Int64Array], list[Int64Array]]:
    return lambda keys: [*inner(keys // width), keys % width]


def _decode_via(
    distinct: Int64Array, inner: Callable[[Int64Array], list[Int64Array]]
) -> Callable[[Int64Array], list[Int64Array]]:
    return lambda keys: inner(distinct[keys])


def _status_ranks(values: Sequence[str]) -> dict[str, int]:
    others = sorted({value.upper() for value in values} - set(_STATUS_RANK))
    return {**_STATUS_RANK, **{value: 4 + i for i, value in enumerate(others)}}


def _natural_key(key: str) -> tuple[str, int, str]:
    """Sort key of a case key: ``SUP-9`` before ``SUP-10``, case-insensitive."""
    found = _NATURAL_KEY.fullmatch(key)
    if found is None:
        return (key.casefold(), -1, key)
    return (found.group(1).casefold(), int(found.group(2)), key)


def _natural_rank(column: SingleColumn) -> Int64Array:
    """Every case's position in key order (missing keys first), ties by position."""
    order = sorted(range(len(column.values)), key=lambda code: _natural_key(column.values[code]))
    value_rank = np.empty(len(column.values) + 1, dtype=np.int64)
    value_rank[order] = np.arange(len(order))
    value_rank[-1] = -1  # code -1: no key
    by_case = np.lexsort((np.arange(column.codes.size), value_rank[column.codes]))
    rank = np.empty(column.codes.size, dtype=np.int64)
    rank[by_case] = np.arange(column.codes.size)
    return rank


# -- building from records ------------------------------------------------------------------


class _RecordError(Exception):
    """What is wrong with one record (becomes ``InvalidCaseData``)."""


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


class _Interner:
    """Distinct strings → codes, in order of first appearance."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def code(self, value: str) -> int:
        code = self.index.get(value)
        if code is None:
            code = self.index[value] = len(self.index)
        return code

    @property
    def values(self) -> list[str]:
        return list(self.index)


class _SingleBuilder(_Interner):
    def __init__(self) -> None:
        super().__init__()
        self.codes: list[int] = []

    def add(self, value: str | None) -> None:
        self.codes.append(-1 if value is None else self.code(value))

    def array(self) -> Int32Array:
        return np.array(self.codes, dtype=np.int32)

    def column(self) -> SingleColumn:
        return SingleColumn(self.array(), self.values)


class _MultiBuilder(_Interner):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[int] = []
        self.codes: list[int] = []

    def add(self, row: int, values: Iterable[str]) -> None:
        seen: set[int] = set()
        for value in values:
            code = self.code(value)
            if code not in seen:
                seen.add(code)
                self.rows.append(row)
                self.codes.append(code)

    def column(self, size: int) -> MultiColumn:
        counts = np.bincount(np.array(self.rows, dtype=np.int64), minlength=size)
        offsets = np.zeros(size + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        return MultiColumn(offsets, np.array(self.codes, dtype=np.int32), self.values)


def _string(attributes: Mapping[str, Any], name: str) -> str | None:
    value = attributes.get(name)
    if value is None or isinstance(value, str):
        return value
    raise _RecordError(f"attributes.{name} must be a string, got {_json_type(value)}")


def _timestamp(attributes: Mapping[str, Any], name: str) -> int | None:
    value = _string(attributes, name)
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError:
        raise _RecordError(
            f"attributes.{name} is not an ISO 8601 timestamp: {json.dumps(value)}"
        ) from None


def _reference(relationships: Mapping[str, Any], name: str) -> str | None:
    relation = relationships.get(name)
    if relation is None:
        return None
    if not isinstance(relation, Mapping):
        raise _RecordError(f"relationships.{name} must be an object, got {_json_type(relation)}")
    data = relation.get("data")
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise _RecordError(
            f"relationships.{name}.data must be an object or null, got {_json_type(data)}"
        )
    ident = data.get("id")
    if not isinstance(ident, str) or not ident:
        raise _RecordError(f"relationships.{name}.data.id must be a non-empty string")
    return ident


def _free_form(attributes: Mapping[str, Any]) -> dict[str, list[str]]:
    """The ``attributes`` map, keys canonical (case-folded, aliases merged), values lists."""
    raw = attributes.get("attributes")
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise _RecordError(f"attributes.attributes must be an object, got {_json_type(raw)}")
    merged: dict[str, list[str]] = {}
    for key, value in raw.items():
        if isinstance(value, str):
            values = [value]
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            values = value
        elif value is None:
            values = []
        else:
            raise _RecordError(f"attributes.attributes.{key} must be a list of strings")
        folded = str(key).casefold()
        merged.setdefault(ATTRIBUTE_ALIASES.get(folded, folded), []).extend(values)
    return merged


def _scalar_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float | str):
        return str(value)
    return json.dumps(value, sort_keys=True)


def _custom(attributes: Mapping[str, Any]) -> dict[str, list[str]]:
    """Custom attribute values as strings, by case-folded name."""
    raw = attributes.get("custom_attributes")
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise _RecordError(f"attributes.custom_attributes must be an object, got {_json_type(raw)}")
    result: dict[str, list[str]] = {}
    for name, entry in raw.items():
        value = entry.get("value") if isinstance(entry, Mapping) else entry
        items = value if isinstance(value, list) else [value]
        texts = [text for text in map(_scalar_text, items) if text is not None]
        result.setdefault(str(name).casefold(), []).extend(texts)
    return result


class _Builder:
    """Accumulates validated records into columns."""

    def __init__(self) -> None:
        self.size = 0
        self.ids: _SingleBuilder = _SingleBuilder()
        self.strings = {name: _SingleBuilder() for name in STRING_FIELDS}
        self.users = _Interner()
        self.user_codes: dict[str, list[int]] = {name: [] for name in USER_RELATIONS}
        self.projects = _Interner()
        self.project_codes: list[int] = []
        self.created: list[int] = []
        self.archived: list[bool] = []
        self.attributes: dict[str, _MultiBuilder] = {}
        self.custom: dict[str, _MultiBuilder] = {}

    def add(self, record: object) -> None:
        if not isinstance(record, Mapping):
            raise _RecordError(f"expected a case object, got {_json_type(record)}")
        for name in ("id", "type", "attributes"):
            if name not in record:
                raise _RecordError(f"missing {name}")
        ident = record["id"]
        if not isinstance(ident, str) or not ident:
            raise _RecordError(f"id must be a non-empty string, got {_json_type(ident)}")
        if record["type"] != "case":
            raise _RecordError(f'type must be "case", got {json.dumps(record["type"])}')
        attributes = record["attributes"]
        if not isinstance(attributes, Mapping):
            raise _RecordError(f"attributes must be an object, got {_json_type(attributes)}")
        if ident in self.ids.index:
            raise _RecordError(f"duplicate id {json.dumps(ident)}")
        strings = [_string(attributes, name) for name in STRING_FIELDS]
        created = _timestamp(attributes, "created_at")
        archived_at = _string(attributes, "archived_at")
        free_form = _free_form(attributes)
        custom = _custom(attributes)
        relationships = record.get("relationships")
        if relationships is None:
            relationships = {}
        elif not isinstance(relationships, Mapping):
            raise _RecordError(f"relationships must be an object, got {_json_type(relationships)}")
        users = [_reference(relationships, name) for name in USER_RELATIONS]
        project = _reference(relationships, "project")

        # Valid: record it.
        row = self.size
        self.size += 1
        self.ids.add(ident)
        for name, value in zip(STRING_FIELDS, strings, strict=True):
            self.strings[name].add(value)
        for name, user in zip(USER_RELATIONS, users, strict=True):
            self.user_codes[name].append(-1 if user is None else self.users.code(user))
        self.project_codes.append(-1 if project is None else self.projects.code(project))
        self.created.append(MISSING_TIME if created is None else created)
        self.archived.append(archived_at is not None)
        for key, values in free_form.items():
            self.attributes.setdefault(key, _MultiBuilder()).add(row, values)
        for name, values in custom.items():
            self.custom.setdefault(name, _MultiBuilder()).add(row, values)

    def finish(self, included: list[dict[str, Any]], source: CaseSource) -> CaseColumns:
        by_ref: dict[tuple[str, str], Mapping[str, Any]] = {}
        for obj in included:
            by_ref.setdefault((_kind(obj["type"]), obj["id"]), obj)
        fields: dict[str, Column] = {"id": self.ids.column()}
        fields.update((name, builder.column()) for name, builder in self.strings.items())
        user_ids = self.users.values
        user_labels, user_matches = _describe(user_ids, "user", ("handle",), by_ref)
        for name, codes in self.user_codes.items():
            fields[name] = RefColumn(
                np.array(codes, dtype=np.int32), user_ids, user_labels, user_matches
            )
        project_ids = self.projects.values
        project_labels, project_matches = _describe(project_ids, "project", ("key",), by_ref)
        fields["project"] = RefColumn(
            np.array(self.project_codes, dtype=np.int32),
            project_ids,
            project_labels,
            project_matches,
        )
        return CaseColumns(
            size=self.size,
            archived=np.array(self.archived, dtype=np.bool_),
            created_ms=np.array(self.created, dtype=np.int64),
            fields=fields,
            attributes={key: b.column(self.size) for key, b in self.attributes.items()},
            custom={name: b.column(self.size) for name, b in self.custom.items()},
            included=included,
            source=source,
        )


def _describe(
    ids: list[str],
    kind: str,
    label_keys: tuple[str, ...],
    by_ref: Mapping[tuple[str, str], Mapping[str, Any]],
) -> tuple[list[str], list[list[str]]]:
    """Group labels and match values of referenced users or projects."""
    match_keys = ("handle", "email", "name") if kind == "user" else ("key", "name")
    labels: list[str] = []
    matches: list[list[str]] = []
    for ident in ids:
        obj = by_ref.get((kind, ident))
        attributes = obj.get("attributes") if obj is not None else None
        if not isinstance(attributes, Mapping):
            attributes = {}
        texts = [attributes.get(key) for key in match_keys]
        matches.append([ident, *(text for text in texts if isinstance(text, str) and text)])
        label = next(
            (attributes[key] for key in label_keys if isinstance(attributes.get(key), str)),
            ident,
        )
        labels.append(label or ident)
    return labels, matches


def _check_included(included: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validated ``included`` objects, first of each (type, id) kept."""
    result: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for index, obj in enumerate(included):
        if not isinstance(obj, Mapping):
            raise InvalidCaseData("included", index, f"expected an object, got {_json_type(obj)}")
        for name in ("id", "type"):
            if name not in obj:
                raise InvalidCaseData("included", index, f"missing {name}")
            if not isinstance(obj[name], str) or not obj[name]:
                raise InvalidCaseData("included", index, f"{name} must be a non-empty string")
        ref = (_kind(obj["type"]), obj["id"])
        if ref not in seen:
            seen.add(ref)
            result.append(dict(obj))
    return result
