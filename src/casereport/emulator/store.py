"""The emulator's case store: aggregate, count and search queries, evaluated with numpy.

:class:`CaseStore` answers queries over a case set laid out in columns (``emulator.columns``
describes the layout), built from Case records (:meth:`CaseStore.from_cases`, through
``emulator.records``) or handed in whole (``emulator.synthetic`` builds the synthetic set). The
store is read-only once built, so concurrent readers (the HTTP app's worker threads) need no
locking; its lazily built caches are assigned whole, at worst computed twice.

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
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from casereport.definitions.query import And, MatchAll, Node, Not, Or, Term
from casereport.emulator.columns import (
    ATTRIBUTE_ALIASES,
    USER_RELATIONS,
    BoolArray,
    CaseColumns,
    Column,
    Int64Array,
    LazyColumn,
    Pattern,
    RefColumn,
    SingleColumn,
)
from casereport.emulator.records import build_columns, included_kind

__all__ = [
    "SORT_FIELDS",
    "Aggregation",
    "CaseStore",
    "FieldCounts",
    "SearchPage",
]

SORT_FIELDS = ("created_at", "priority", "status")
# Fields matched by containment rather than equality.
_CONTAINS_FIELDS = frozenset({"title", "description"})

_PRIORITY_RANK = {"P1": 6, "P2": 5, "P3": 4, "P4": 3, "P5": 2, "NOT_DEFINED": 1}
_STATUS_RANK = {"OPEN": 1, "IN_PROGRESS": 2, "CLOSED": 3}
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


def _single(column: Column) -> SingleColumn:
    if isinstance(column, LazyColumn):
        column = column.get()
    if not isinstance(column, SingleColumn):
        raise TypeError(f"expected a single-valued column, got {type(column).__name__}")
    return column


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
            self._included_index.setdefault((included_kind(obj["type"]), obj["id"]), obj)

    # -- construction

    @classmethod
    def from_cases(
        cls,
        cases: Iterable[Mapping[str, Any]],
        included: Iterable[Mapping[str, Any]] = (),
    ) -> CaseStore:
        """A store of Case objects (``GET /api/v2/cases`` ``data``) and their ``included``.

        Raises ``InvalidCaseData`` naming the first record that is not a usable case.
        """
        return cls(build_columns(cases, included))

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
