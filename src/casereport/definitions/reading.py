"""How an aggregation's numbers are read: which run they are compared with, the order of
their groups, the groups' display labels, which direction of change is good, and which
groups a trend draws.

These are the report-file keys ``compare:``, ``order:``, ``labels:``, ``better:`` and
``trend:`` (each at report level as a default, overridable per aggregation). They change
how a page reads, never what is fetched: they are not part of a request's fingerprint.

Pages, data files and checks all read them through this module, so a table, its chart,
its matrix, its trend and the data files agree on order and labels.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from casereport.settings import parse_duration

__all__ = [
    "BETTER_CHOICES",
    "COMPARE_PREVIOUS",
    "DEFAULT_READING",
    "DURATION_RE",
    "ENUM_ORDERS",
    "GROUP_SEPARATOR",
    "ORDER_CHOICES",
    "Reading",
    "compare_tolerance",
    "display_label",
    "duration_seconds",
    "enum_words",
    "order_key",
    "split_group",
]

COMPARE_PREVIOUS: Final = "previous"
ORDER_NATURAL: Final = "natural"
ORDER_CHOICES: Final = ("natural", "count", "label")
BETTER_CHOICES: Final = ("lower", "higher")

# ``compare:`` durations: a whole number of hours, days or weeks (``12h``, ``7d``, ``4w``),
# a narrower form of the durations ``refresh`` takes (``settings.parse_duration``).
DURATION_RE: Final = re.compile(r"([1-9][0-9]{0,3})([hdw])")

# Known enums in their meaning's order (DATADOG_API.md, "The Case object"): the most urgent
# first, the value that says nothing last. ``natural`` order puts these first, in this
# order; values outside the list follow, by count.
ENUM_ORDERS: Final[Mapping[str, tuple[str, ...]]] = {
    "priority": ("P1", "P2", "P3", "P4", "P5", "NOT_DEFINED"),
    "status": ("OPEN", "IN_PROGRESS", "CLOSED"),
    "status_group": ("SG_OPEN", "SG_IN_PROGRESS", "SG_CLOSED"),
}

# How the API names a group of several fields: the values joined in the order the fields
# are given (the emulator's layout; Datadog does not document its own, DATADOG_API.md).
GROUP_SEPARATOR: Final = " / "


@dataclass(frozen=True, slots=True)
class Reading:
    """The reading keys of one aggregation, after report defaults and its own overrides.

    ``order`` is ``natural``, ``count``, ``label`` or an explicit tuple of raw values;
    ``labels`` maps raw values to display labels (pairs, in the order written, so the
    spec stays hashable); ``better`` is ``lower``, ``higher`` or None (changes not judged);
    ``trend`` lists the raw values a trend draws, or None (chosen by ``order``).
    """

    compare: str = COMPARE_PREVIOUS
    order: str | tuple[str, ...] = ORDER_NATURAL
    labels: tuple[tuple[str, str], ...] = ()
    better: str | None = None
    trend: tuple[str, ...] | None = None

    @property
    def compare_seconds(self) -> int | None:
        """``compare`` as seconds, or None for ``previous``."""
        return None if self.compare == COMPARE_PREVIOUS else duration_seconds(self.compare)

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)


DEFAULT_READING: Final = Reading()


def duration_seconds(text: str) -> int | None:
    """``7d`` -> 604800; None when ``text`` is not a duration ``DURATION_RE`` accepts."""
    return parse_duration(text) if DURATION_RE.fullmatch(text) else None


def compare_tolerance(seconds: int) -> int:
    """How far from "that long before" a run may be and still be compared with: a seventh
    of the duration, at least an hour (``1d``: 3 h 25 min; ``7d``: one day, so a weekly
    run that slipped a day still compares; ``28d``: four days)."""
    return max(3600, seconds // 7)


def enum_words(raw: str) -> str:
    """An enum value as words: ``IN_PROGRESS`` -> ``In progress``, ``SG_OPEN`` -> ``Open``,
    ``NOT_DEFINED`` -> ``Not defined``; ``P1`` stays ``P1``."""
    text = raw.removeprefix("SG_")
    if not text.isupper() or ("_" not in text and len(text) <= 2):
        return text
    words = text.replace("_", " ").lower()
    return words[0].upper() + words[1:]


def split_group(raw: str, fields: Sequence[str]) -> tuple[str, ...] | None:
    """A group's value per field (``"OPEN / P1"`` for ``[status, priority]``), or None when
    it does not split into one value per field."""
    if len(fields) < 2:
        return (raw,)
    parts = tuple(raw.split(GROUP_SEPARATOR))
    return parts if len(parts) == len(fields) else None


def display_label(raw: str, fields: Sequence[str], reading: Reading = DEFAULT_READING) -> str:
    """What a page shows for a group: its ``labels:`` entry, else known enum values as words
    (per field for a group of several fields), else the raw value."""
    labels = reading.label_map
    if raw in labels:
        return labels[raw]
    parts = split_group(raw, fields)
    if parts is None:
        return raw
    shown = []
    for field, part in zip(fields, parts, strict=True):
        if part in labels:
            shown.append(labels[part])
        elif part in ENUM_ORDERS.get(field, ()):
            shown.append(enum_words(part))
        else:
            shown.append(part)
    return GROUP_SEPARATOR.join(shown)


def order_key(
    fields: Sequence[str], reading: Reading = DEFAULT_READING
) -> Callable[[str, float], tuple[Any, ...]]:
    """A sort key of a group's raw value and count, for ``reading.order``; sort with it
    (stably) and every table, chart, matrix axis and trend agrees.

    ``count``: largest first. ``label``: by display label, case-insensitively. An explicit
    list: those values in that order, then the rest by count. ``natural``: a known enum's
    values in their meaning's order (field by field for a group of several fields), then
    the rest by count.
    """
    order = reading.order
    if order == "count":
        return lambda raw, count: (-count,)
    if order == "label":
        return lambda raw, count: (display_label(raw, fields, reading).casefold(),)
    if isinstance(order, tuple):
        listed = {value: rank for rank, value in enumerate(order)}
        return lambda raw, count: (listed.get(raw, len(listed)), -count)
    ranks = [{value: rank for rank, value in enumerate(ENUM_ORDERS.get(f, ()))} for f in fields]
    if not any(ranks):
        return lambda raw, count: (-count,)

    def natural(raw: str, count: float) -> tuple[Any, ...]:
        parts = split_group(raw, fields)
        if parts is None:
            return (len(ENUM_ORDERS), -count)
        return (*(r.get(p, len(r)) for r, p in zip(ranks, parts, strict=True)), -count)

    return natural
