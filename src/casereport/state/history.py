"""History: the earlier results of one aggregation, stored by column.

Bounded to ``HISTORY_LIMIT`` earlier results (``history`` in ``casereport.toml``: a count, or
a duration, see ``settings.Retention``), each with its total and the count of every
group it returned (at most 1,000, the largest limit), oldest first. Kept apart from the state
model because it is a format of its own (space-separated columns, checked by regular
expressions at load time) read by rendering as much as by the engine.

Earlier versions kept only each result's ``CAPPED_GROUPS`` largest groups: a group absent
from such an entry may have been cut, so its count there is unknown, where a group absent
from a complete entry had no cases (unless that result filled its limit). The columns tell
them apart by ``complete``, the number of newest entries that hold every group: entries are
only ever appended, so the complete ones are always the newest, and a state written before
has no ``complete`` (every entry capped). No format change was needed: an older casereport
reads such a state, and writing it drops ``complete``, which only makes changes unknown.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast, overload

from casereport import clock
from casereport.definitions.reading import compare_tolerance
from casereport.settings import DEFAULT_HISTORY

#: How many earlier results are kept by default (``history`` in ``casereport.toml``).
HISTORY_LIMIT = DEFAULT_HISTORY.runs
#: How many groups (the largest) a history entry kept before entries recorded them all.
CAPPED_GROUPS = 5

JsonObject = Mapping[str, Any]

_MISSING = "_"


def _format_number(value: float) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def _parse_number(text: str) -> float | int:
    return int(text) if text.isdigit() else float(text)


# Counts below this are read from a table of their texts (``_small_counts``).
_SMALL_COUNTS = 10_000


@functools.cache  # made on first use: planning and ``--version`` never read a count
def _small_counts() -> dict[str, int]:
    return {str(number): number for number in range(_SMALL_COUNTS)}


def _parse_numbers(parts: list[str]) -> list[float]:
    # Counts are whole numbers, stored without a decimal point: int() reads those twice
    # as fast as float(), and an int is a float wherever a page uses it. Most are small,
    # and a look-up of the text reads those three times as fast as int() does (a page
    # reads 30 runs of 10 groups per aggregation).
    try:
        return cast(list[float], list(map(_small_counts().__getitem__, parts)))
    except KeyError:  # a larger count (or not a whole number: int() tells)
        pass
    try:
        return cast(list[float], list(map(int, parts)))
    except ValueError:
        return list(map(float, parts))


class History(Sequence[JsonObject]):
    """Earlier results of one aggregation, oldest first: ``{fetched_at, total, groups}`` each.

    Stored by column, each column one space-separated string, ``_`` where a result had no
    such group (or, in an entry written before entries were complete, where it was not among
    the result's largest ``CAPPED_GROUPS``); ``complete``, when there are such entries, counts
    the newest entries that hold every group::

        {"fetched_at": "2026-11-24T06:00:00Z 2026-11-25T06:00:00Z", "total": "97 103",
         "groups": {"OPEN": "40 44", "CLOSED": "_ 12"}, "complete": 1}

    As entries (``from_entries``, indexing), a complete entry carries ``"complete": True``.

    A full state holds 10,000 aggregations with 30 earlier results each: as JSON lists that
    would be millions of objects to build at every load, here it is a handful of strings
    per aggregation, checked by one regular expression each, and entries are only built
    when a page is rendered. Planning never pays for history it does not read.
    """

    __slots__ = ("_columns", "_entries", "_parsed")

    def __init__(self, columns: JsonObject | None = None) -> None:
        self._columns: JsonObject = columns or {"fetched_at": "", "total": "", "groups": {}}
        self._entries: tuple[JsonObject, ...] | None = None
        # Columns read as numbers, each once: a page's table, its tiles and its data file
        # read the same ones (keyed by reader).
        self._parsed: dict[str, Any] = {}

    @classmethod
    def from_entries(cls, entries: Iterable[JsonObject]) -> History:
        """History of ``entries``, oldest first; those marked ``"complete": True`` (as
        ``history_entry`` makes them) must be the newest."""
        if isinstance(entries, History):
            return entries
        entries = list(entries)
        names: dict[str, None] = {}
        for entry in entries:
            names.update(dict.fromkeys(entry.get("groups", {})))
        complete = 0
        for entry in reversed(entries):
            if entry.get("complete") is not True:
                break
            complete += 1
        if any(e.get("complete") is True for e in entries[: len(entries) - complete]):
            raise ValueError("a complete history entry is older than a capped one")

        def series(name: str) -> str:
            counts = (e.get("groups", {}).get(name) for e in entries)
            return " ".join(_MISSING if c is None else _format_number(c) for c in counts)

        columns: dict[str, Any] = {
            "fetched_at": " ".join(str(e["fetched_at"]) for e in entries),
            "total": " ".join(_format_number(e["total"]) for e in entries),
            "groups": {name: series(name) for name in names},
        }
        if complete:
            columns["complete"] = complete
        history = cls(columns)
        history._entries = tuple(entries)
        return history

    def appended(
        self, entry: JsonObject, limit: int = HISTORY_LIMIT, *, since: float | None = None
    ) -> History:
        """This history with ``entry`` (complete, as ``history_entry`` makes it) as its
        newest result and only the newest ``limit`` kept: the stored columns extended, no
        entry built (an entry holds up to 1,000 groups, and every fetch appends one).

        ``since`` (seconds since the epoch): the results fetched before it go too, all but
        ``entry``, which is always kept (the run a page compares with by default).
        """
        if entry.get("complete") is not True:
            raise ValueError("only a complete entry is appended to history")
        size = len(self)
        drop = max(0, size + 1 - limit)
        if since is not None:
            drop = max(drop, self._fetched_before(since))
        kept = size - drop

        def extend(text: str, item: str) -> str:
            if drop:
                text = text.split(" ", drop)[drop] if kept else ""
            return f"{text} {item}" if text else item

        groups: dict[str, str] = {}
        counts = entry["groups"]
        for name, text in self._columns["groups"].items():
            count = counts.get(name)
            column = extend(text, _MISSING if count is None else _format_number(count))
            if count is not None or column.strip("_ "):  # a column of gaps only goes
                groups[name] = column
        for name, count in counts.items():
            if name not in groups and name not in self._columns["groups"]:
                groups[name] = f"{'_ ' * kept}{_format_number(count)}"
        return History(
            {
                "fetched_at": extend(self._columns["fetched_at"], str(entry["fetched_at"])),
                "total": extend(self._columns["total"], _format_number(entry["total"])),
                "groups": groups,
                "complete": min(self.complete_count() + 1, kept + 1),
            }
        )

    def _fetched_before(self, since: float) -> int:
        """How many of the oldest results were fetched before ``since`` (read from the
        oldest until one was not: results are appended in the order they were fetched)."""
        dropped = 0
        for stamp in self.stamps():
            if epoch(stamp) >= since:
                break
            dropped += 1
        return dropped

    def latest_fetched_at(self) -> str | None:
        """When the newest earlier result was fetched (without building entries)."""
        stamps: str = self._columns["fetched_at"]
        return stamps.rsplit(" ", 1)[-1] if stamps else None

    # Column readers: what a page needs (a line per series, the run before this one) read
    # straight from the stored strings, without building an entry per run.

    def stamps(self) -> list[str]:
        """``fetched_at`` of each earlier result, oldest first."""
        return str(self._columns["fetched_at"]).split()

    def totals(self) -> list[float]:
        """The total of each earlier result, oldest first."""
        if "totals" not in self._parsed:
            self._parsed["totals"] = _parse_numbers(str(self._columns["total"]).split())
        return list(self._parsed["totals"])  # a copy: the caller may change it

    def group_counts(self, name: str) -> list[float | None] | None:
        """A group's count in each earlier result (None where it was not among that
        result's top groups), or None if no result recorded it."""
        text = self._columns["groups"].get(name)
        if text is None:
            return None
        parts = text.split()
        if _MISSING in text:  # validated columns hold none inside a number: scan the text
            counts = [None if p == _MISSING else _parse_number(p) for p in parts]
            return counts if any(c is not None for c in counts) else None
        return cast(list[float | None], _parse_numbers(parts))

    def compared_index(self, fetched_at: str, seconds: int | None) -> int | None:
        """Which earlier result a result fetched at ``fetched_at`` is compared with: the
        newest (``seconds`` None, ``compare: previous``), or the one nearest to ``seconds``
        before it, within ``compare_tolerance`` (the older of two equally near); None when
        there is no such result."""
        stamps = self.stamps()
        if seconds is None:
            return len(stamps) - 1 if stamps else None
        target = epoch(fetched_at) - seconds
        best: int | None = None
        best_distance: float = compare_tolerance(seconds)
        for index, stamp in enumerate(stamps):
            distance = abs(epoch(stamp) - target)
            if distance <= best_distance and (best is None or distance < best_distance):
                best, best_distance = index, distance
        return best

    def total_at(self, index: int) -> float:
        """The total of the earlier result at ``index`` (oldest first)."""
        return _parse_number(self._columns["total"].split()[index])

    def groups_at(self, index: int) -> dict[str, float]:
        """The groups the earlier result at ``index`` recorded: name -> count."""
        recorded = {}
        for name, text in self._columns["groups"].items():
            part = text.split()[index]
            if part != _MISSING:
                recorded[name] = _parse_number(part)
        return recorded

    def capacity_at(self, index: int, limit: int) -> int:
        """``capacities`` of the earlier result at ``index`` alone."""
        return limit if index >= len(self) - self.complete_count() else min(limit, CAPPED_GROUPS)

    def complete_count(self) -> int:
        """How many of the newest earlier results recorded every group they returned."""
        return int(self._columns.get("complete", 0))

    def capacities(self, limit: int) -> list[int]:
        """How many groups each earlier result could record, oldest first: all it returned
        (at most ``limit``), or for an entry written before that, its ``CAPPED_GROUPS``
        largest. A group absent from a result that recorded fewer had no cases then."""
        size = len(self)
        capped = size - self.complete_count()
        return [min(limit, CAPPED_GROUPS)] * capped + [limit] * (size - capped)

    def latest_capacity(self, limit: int) -> int:
        """``capacities`` of the newest earlier result alone (``limit`` when there is none)."""
        return limit if self.complete_count() or not len(self) else min(limit, CAPPED_GROUPS)

    def recorded_counts(self) -> list[int]:
        """How many groups each earlier result recorded."""
        counts = [0] * len(self)
        for text in self._columns["groups"].values():
            for index, part in enumerate(text.split()):
                if part != _MISSING:
                    counts[index] += 1
        return counts

    def latest_total(self) -> float | None:
        """The total of the newest earlier result."""
        totals: str = self._columns["total"]
        return _parse_number(totals.rsplit(" ", 1)[-1]) if totals else None

    def latest_groups(self) -> dict[str, float]:
        """The groups the newest earlier result recorded: name -> count."""
        if "latest_groups" not in self._parsed:
            self._parsed["latest_groups"] = self._read_latest_groups()
        return dict(self._parsed["latest_groups"])  # a copy: the caller may change it

    def _read_latest_groups(self) -> dict[str, float]:
        latest = {}
        for name, text in self._columns["groups"].items():
            last = text[text.rfind(" ") + 1 :]
            if last != _MISSING:
                latest[name] = _parse_number(last)
        return latest

    def columns(self) -> dict[str, Any]:
        """The JSON form written to state (``complete`` only where some entry is)."""
        columns = {
            "fetched_at": self._columns["fetched_at"],
            "total": self._columns["total"],
            "groups": dict(self._columns["groups"]),
        }
        if self._columns.get("complete"):
            columns["complete"] = self._columns["complete"]
        return columns

    def _materialise(self) -> tuple[JsonObject, ...]:
        if self._entries is None:
            stamps = self._columns["fetched_at"].split()
            totals = [_parse_number(t) for t in self._columns["total"].split()]
            groups = {name: text.split() for name, text in self._columns["groups"].items()}
            first_complete = len(stamps) - self.complete_count()
            entries: list[JsonObject] = []
            for index, stamp in enumerate(stamps):
                entry: dict[str, Any] = {
                    "fetched_at": stamp,
                    "total": totals[index],
                    "groups": {
                        name: _parse_number(series[index])
                        for name, series in groups.items()
                        if series[index] != _MISSING
                    },
                }
                if index >= first_complete:
                    entry["complete"] = True
                entries.append(entry)
            self._entries = tuple(entries)
        return self._entries

    def __len__(self) -> int:
        stamps: str = self._columns["fetched_at"]
        return stamps.count(" ") + 1 if stamps else 0

    @overload
    def __getitem__(self, index: int) -> JsonObject: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[JsonObject, ...]: ...
    def __getitem__(self, index: int | slice) -> JsonObject | tuple[JsonObject, ...]:
        return self._materialise()[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, History):
            return self.columns() == other.columns()
        if isinstance(other, Sequence) and not isinstance(other, str):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable-looking contents, like a list

    def __repr__(self) -> str:
        return f"History({list(self)!r})"


@functools.lru_cache(maxsize=4096)  # one apply stamps its results within seconds: few stamps
def epoch(stamp: str) -> float:
    """A stored ``fetched_at`` (ISO 8601, UTC) as seconds since the epoch."""
    return clock.parse(stamp).timestamp()


def count(value: float) -> float | int:
    """A count as stored: whole numbers as ints (``42``, not ``42.0``), to keep state small."""
    number = float(value)
    return int(number) if number.is_integer() else number


def history_entry(result: JsonObject, fetched_at: str) -> dict[str, Any]:
    """The compact form of a result kept in history: its total and the first count of every
    group (a limit is at most 1,000 groups), so each group's change is known next run."""
    groups = {}
    for group in result.get("groups", ()):
        values = group.get("value") or [0]
        groups[str(group["group"])] = count(values[0])
    return {
        "fetched_at": fetched_at,
        "total": count(result["total"]),
        "groups": groups,
        "complete": True,
    }


# The grammar of the columns, which loading checks (see ``State`` loading in ``model``).
_NUMBER = r"(?:[0-9]+|[0-9]*\.[0-9]+(?:e[-+]?[0-9]+)?|[0-9]+(?:\.[0-9]*)?e[-+]?[0-9]+|inf|nan)"
_TOTALS_RE = re.compile(rf"(?:{_NUMBER}(?: {_NUMBER})*)?")
_COUNTS_RE = re.compile(rf"(?:(?:{_NUMBER}|_)(?: (?:{_NUMBER}|_))*)?")
# A full state holds 10,000 aggregations, each with a column of stamps and one per group.
# The regular expressions, which try ``_NUMBER``'s alternatives at every item, would cost
# most of the time a state takes to load, so counts are first read by structure, several
# times faster: ASCII digits and spaces (seen by deleting bytes), single-spaced. What fails
# that (decimals, "_", other text, damage) is decided by the grammar; ``_whole_numbers``
# accepts a part of it.
_DIGITS_AND_SPACE = b"0123456789 "


def _single_spaced(text: str) -> bool:
    return "  " not in text and not text.startswith(" ") and not text.endswith(" ")


# Stamps repeat: every aggregation fetched in one run shares that run's stamp, so most
# columns are equal to one seen before, and a new column mostly repeats known stamps.
# Parsing each of a full state's 310,000 stamps would add a tenth of a second to loading.
@functools.lru_cache(maxsize=4096)
def _stamps(text: str) -> bool:
    """``fetched_at`` items, single-spaced, each a timestamp as a result's own
    ``fetched_at`` must be (pages and comparisons read them as times)."""
    return not text or (
        text.isascii() and _single_spaced(text) and all(map(_is_stamp, text.split(" ")))
    )


@functools.lru_cache(maxsize=65536)
def _is_stamp(text: str) -> bool:
    try:
        clock.parse(text)
    except ValueError:
        return False
    return True


def _whole_numbers(text: str) -> bool:
    """ASCII whole numbers with single spaces between them: a part of what both number
    grammars accept."""
    return (
        text.isascii()
        and not text.encode("ascii").translate(None, _DIGITS_AND_SPACE)
        and _single_spaced(text)
    )


_COLUMN_KEYS = frozenset(("fetched_at", "total", "groups", "complete"))


def valid_columns(history: Any) -> bool:
    """History columns (see ``History``): strings of equal item counts, numbers where due,
    and ``complete`` (when there) a count from 1 to the number of entries."""
    if type(history) is not dict or not _COLUMN_KEYS.issuperset(history):
        return False
    stamps, totals, groups = history.get("fetched_at"), history.get("total"), history.get("groups")
    if type(stamps) is not str or type(totals) is not str or type(groups) is not dict:
        return False
    size = stamps.count(" ")
    if not _stamps(stamps):
        return False
    if "complete" in history:
        complete = history["complete"]
        # Written only when some entry is complete: 0, like a bool or a float, is not ours.
        if type(complete) is not int or not stamps or not 1 <= complete <= size + 1:
            return False
    if not _whole_numbers(totals) and not _TOTALS_RE.fullmatch(totals):
        return False
    if totals.count(" ") != size or bool(totals) != bool(stamps):
        return False
    if not groups:
        return True
    if not stamps:
        return False
    series = groups.values()
    for text in series:
        if type(text) is not str or text.count(" ") != size:
            return False
    # Joined, the columns are whole numbers only if each of them is (an empty column
    # leaves two spaces, or one at an end): one check for all the groups.
    if _whole_numbers(" ".join(series)):
        return True
    return all(_COUNTS_RE.fullmatch(text) for text in series)
