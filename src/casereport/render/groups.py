"""A result's groups in the page's order (``order:``) and under their display labels
(``labels:`` and enum words), memoised: a site of 1,000 reports sorts and labels ten
million groups, under a few dozen (fields, reading) pairs.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from casereport.definitions.reading import ENUM_ORDERS, Reading, display_label, order_key

_NO_VALUES = (0.0,)


def clear_caches() -> None:
    """Forget memoised sort keys and labels (for benchmarks and tests)."""
    _sort_key.cache_clear()
    labeller.cache_clear()
    _enum_values.cache_clear()


def _group_sort_key(group: Mapping[str, Any]) -> tuple[float, str]:
    values = group.get("value") or _NO_VALUES
    label = group.get("group")
    return (-float(values[0]), "" if label is None else str(label))


def largest_first(groups: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Groups by count, largest first, then by label. The API sends them so, as a rule:
    seeing that their counts fall is cheaper than sorting them (a key made per group)."""
    counts = [float((group.get("value") or _NO_VALUES)[0]) for group in groups]
    if all(map(operator.gt, counts, counts[1:])):
        return list(groups)
    return sorted(groups, key=_group_sort_key)


def raw_value(group: Mapping[str, Any]) -> str:
    """A group's raw value as text (``""`` for none)."""
    raw = group.get("group")
    return raw if type(raw) is str else "" if raw is None else str(raw)


@functools.lru_cache(maxsize=1024)
def _sort_key(
    fields: tuple[str, ...], reading: Reading
) -> Callable[[Mapping[str, Any]], tuple[Any, ...]] | None:
    """The sort key of a group for ``reading.order``, or None where largest first (the
    API's order) is already that order: ``count``, and ``natural`` of fields with no
    known enum."""
    if reading.order == "count" or (
        reading.order == "natural" and not any(f in ENUM_ORDERS for f in fields)
    ):
        return None
    key = order_key(fields, reading)

    def group_key(group: Mapping[str, Any]) -> tuple[Any, ...]:
        return key(raw_value(group), float((group.get("value") or _NO_VALUES)[0]))

    return group_key


@functools.lru_cache(maxsize=256)
def _enum_values(field: str) -> frozenset[str]:
    return frozenset(ENUM_ORDERS.get(field, ()))


def ordered(
    groups: Sequence[Mapping[str, Any]], fields: tuple[str, ...], reading: Reading
) -> tuple[list[Mapping[str, Any]], float]:
    """The groups in the page's order (``reading.order``, ties largest first, then by
    value) and the largest count (0 without groups)."""
    largest = largest_first(groups)
    top = float((largest[0].get("value") or _NO_VALUES)[0]) if largest else 0.0
    key = _sort_key(fields, reading)
    if key is None:
        return largest, top
    # Natural order of one field puts its known values first; when no group has one, it
    # is largest first (seeing that is cheaper than sorting with a key per group).
    if (
        len(fields) == 1
        and reading.order == "natural"
        and _enum_values(fields[0]).isdisjoint([group.get("group") for group in largest])
    ):
        return largest, top
    return sorted(largest, key=key), top


class Labels(dict[str, str]):
    """Display labels by raw value, each found once (``labels[raw]``: a dict lookup for
    every value seen before, a plain-dict speed on the hot path)."""

    def __init__(self, fields: tuple[str, ...], reading: Reading) -> None:
        super().__init__()
        self.fields = fields
        self.reading = reading

    def __missing__(self, raw: str) -> str:
        shown = display_label(raw, self.fields, self.reading)
        if len(self) < 65536:
            self[raw] = shown
        return shown


@functools.lru_cache(maxsize=1024)
def labeller(fields: tuple[str, ...], reading: Reading) -> Labels | None:
    """Display labels of these fields' values, or None where every raw value is its own
    label (no ``labels:``, no known enum among the fields)."""
    if not reading.labels and not any(f in ENUM_ORDERS for f in fields):
        return None
    return Labels(fields, reading)
