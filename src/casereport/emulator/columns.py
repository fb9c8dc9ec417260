"""How the emulator lays cases out: dictionary-encoded columns, matched with numpy.

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
when asked for (a page of search results, an export), by the :class:`CaseSource` of the
columns: from the original records for loaded data, from the columns for synthetic data.
Timestamps are milliseconds since the epoch (:func:`parse_time`, :func:`format_time`).

Apart from the store because two builders fill these columns, ``emulator.records`` from
loaded Case records and ``emulator.synthetic`` for the synthetic set, and neither needs the
store's query code; the store (``emulator.store``) only reads them.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeAlias

import numpy as np
from numpy.typing import NDArray

from casereport.definitions.fields import CASE_STRING_FIELDS, USER_RELATIONS

__all__ = [
    "ATTRIBUTE_ALIASES",
    "MISSING_TIME",
    "STRING_FIELDS",
    "USER_RELATIONS",
    "CaseColumns",
    "CaseSource",
    "Column",
    "LazyColumn",
    "MultiColumn",
    "Pattern",
    "RefColumn",
    "SingleColumn",
    "format_time",
    "parse_time",
]

BoolArray: TypeAlias = NDArray[np.bool_]
Int32Array: TypeAlias = NDArray[np.int32]
Int64Array: TypeAlias = NDArray[np.int64]

# Built-in single-valued string fields of a case's ``attributes``, and its user relations.
STRING_FIELDS = CASE_STRING_FIELDS
# Spellings of one ``attributes`` key; every spelling maps to the canonical (plural) one.
ATTRIBUTE_ALIASES = {
    "service": "services",
    "env": "environments",
    "datacenter": "datacenters",
    "version": "versions",
}
# A timestamp the case lacks; low enough to sort first, negatable without overflow.
MISSING_TIME = -(2**62)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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


# -- a case set -----------------------------------------------------------------------------


class CaseSource(Protocol):
    """Builds the Case object of one case on demand."""

    def case(self, index: int) -> dict[str, Any]: ...


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
