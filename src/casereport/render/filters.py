"""Jinja2 filters: numbers, changes, dates, Markdown escaping, text bars and sparklines.

Each is also used by the context builders (``context``, ``charts``), which format the
ready-made table rows with the same functions a template would use.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from math import floor
from typing import Any

from casereport.numbers import format_number

_MINUS = "\u2212"  # a real minus sign: "−3" reads better than "-3" next to "+3"
# Counts repeat across a site (small integers above all): format each value once.
_NUMBERS: dict[float, str] = {}
_DELTAS: dict[float, str] = {}  # changes too: small ones above all


def clear_caches() -> None:
    """Forget memoised number and date formatting (for benchmarks and tests)."""
    _NUMBERS.clear()
    _DELTAS.clear()
    for cached in (date, day, weekday, _parse_time, _bar_text, _levels):
        cached.cache_clear()


def number(value: float | None) -> str:
    """``1234.0`` -> ``1,234``; a fraction keeps up to two decimals; None -> ``–``."""
    if value is None:
        return "–"
    text = _NUMBERS.get(value)
    if text is None:
        text = format_number(value)  # (the terminal's style: casereport.numbers)
        if value < 0:
            text = text.replace("-", _MINUS)
        if len(_NUMBERS) < 65536:
            _NUMBERS[value] = text
    return text


def percent(value: float | None) -> str:
    """A ratio as a percentage: ``0.423`` -> ``42.3%``; tiny non-zero shares say ``<0.1%``."""
    if value is None:
        return "–"
    if 0 < abs(value) < 0.0005:
        return "<0.1%"
    text = f"{value:.1%}"
    return text.replace(".0%", "%") if text in ("100.0%", "0.0%") else text


def delta(value: float | None) -> str:
    """A change: ``+12``, ``−3``, ``±0``; None (unknown) -> ``–``."""
    if value is None:
        return "–"
    text = _DELTAS.get(value)
    if text is None:
        text = "±0" if value == 0 else ("+" if value > 0 else _MINUS) + number(abs(value))
        if len(_DELTAS) < 65536:
            _DELTAS[value] = text
    return text


_UP, _DOWN = "\u25b2", "\u25bc"  # ▲ ▼


def judged(value: float | None, better: str | None) -> tuple[str, str]:
    """A change as text and its CSS class: with ``better`` (``lower`` or ``higher``), an
    arrow before the sign and ``good`` or ``bad`` (the colour never says it alone); else
    the plain ``delta`` and no class."""
    text = delta(value)
    if better is None or not value:  # not judged, unknown, or no change
        return text, ""
    rising = value > 0
    return (
        f"{_UP if rising else _DOWN} {text}",
        "good" if rising == (better == "higher") else "bad",
    )


def delta_arrow(value: float | None, better: str | None = None) -> str:
    """A change with an arrow when ``better`` judges it: ``▲ +12``, ``▼ −3`` (else ``delta``)."""
    return judged(value, better)[0]


def delta_percent(value: float | None) -> str:
    """A relative change: ``0.042`` -> ``+4.2%``; None -> ``–``."""
    if value is None:
        return "–"
    if value == 0:
        return "±0%"
    return ("+" if value > 0 else _MINUS) + percent(abs(value))


_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@functools.lru_cache(maxsize=4096)
def _parse_time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


@functools.lru_cache(maxsize=4096)
def date(value: str | None) -> str:
    """``2026-11-26T19:00:00Z`` -> ``26 Nov 2026, 19:00 UTC`` (other text as it is)."""
    moment = None if value is None else _parse_time(value)
    if moment is None:
        return day(value)  # "never", or the text as it is
    offset = moment.utcoffset()
    zone = "UTC" if offset is not None and not offset else moment.strftime("%z") or "UTC"
    return f"{day(value)}, {moment.hour:02d}:{moment.minute:02d} {zone}"


@functools.lru_cache(maxsize=4096)
def weekday(value: str, year: bool = False, time: bool = False) -> str:
    """``2026-11-30T06:00:00Z`` -> ``Mon 30 Nov`` (``year``: ``Mon 30 Nov 2026``; ``time``:
    ``Mon 30 Nov, 06:00 UTC``): a run named as a reader says it."""
    moment = _parse_time(value)
    if moment is None:
        return value
    text = f"{_WEEKDAYS[moment.weekday()]} {moment.day} {MONTHS[moment.month - 1]}"
    if year:
        text += f" {moment.year}"
    if time:
        text += f", {moment.hour:02d}:{moment.minute:02d} UTC"
    return text


@functools.lru_cache(maxsize=4096)
def day(value: str | None) -> str:
    """``2026-11-26T19:00:00Z`` -> ``26 Nov 2026``."""
    if value is None:
        return "never"
    moment = _parse_time(value)
    if moment is None:
        return value
    return f"{moment.day} {MONTHS[moment.month - 1]} {moment.year}"


# Markdown specials escaped in running text. ``_`` inside a word never makes emphasis in
# GitHub-flavoured Markdown, so ``IN_PROGRESS`` stays readable as plain text.
_MD_SPECIAL = re.compile(
    r"[\\`*\[\]<>|~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])|&(?=#?\w+;)|^[#+=-]|^(\d+)[.)]"
)
_MD_SPACE = re.compile(r"\s*[\r\n]+\s*")


def _md_escape_match(match: re.Match[str]) -> str:
    if match.group(1) is not None:  # "1." at the start would begin a list
        return f"{match.group(1)}\\{match.group(0)[-1]}"
    return "\\" + match.group(0)


# What ``_MD_SPECIAL`` and ``_MD_SPACE`` can match anywhere, and what only at the start.
# Apart, each is a quick scan: one pattern with a ``^`` branch tries every branch at every
# position (five times slower on a sentence, and "10 groups came back" went the slow way).
_MD_MAYBE = re.compile(r"[\\`*\[\]<>|~_&\r\n]")
_MD_START = re.compile(r"[#+=-]|(\d+)[.)]")


def md_text(text: str) -> str:
    """Escape Markdown specials in running text (line breaks fold to spaces)."""
    if not _MD_MAYBE.search(text):  # the common case: nothing to escape past the start
        start = _MD_START.match(text)
        return text if start is None else _md_escape_match(start) + text[start.end() :]
    return _MD_SPECIAL.sub(_md_escape_match, _MD_SPACE.sub(" ", text))


def md(value: object) -> str:
    """Escape text for Markdown so it shows as typed (newlines become spaces)."""
    return md_text(str(value).strip())


def md_cell(value: object) -> str:
    """Escape text for a Markdown table cell (``md``, which escapes ``|`` too)."""
    return md(value) or " "


def md_code(value: object) -> str:
    """Text as a Markdown code span, fenced so backticks inside it cannot end it."""
    text = str(value)
    if "\n" in text or "\r" in text:  # else nothing to fold (and no regex scan)
        text = _MD_SPACE.sub(" ", text)
    return code_span(text)


def code_span(text: str) -> str:
    """``text`` as a Markdown code span, fenced by one more backtick than it holds."""
    if "`" not in text:  # the common case: one backtick each side, no padding
        return f"`{text}`"
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


@functools.lru_cache(maxsize=256)
def _bar_text(full: int, width: int) -> str:
    return "█" * full + "░" * (width - full)


def textbar(fraction: float | None, width: int = 20) -> str:
    """A text bar for Markdown: ``0.42`` -> ``████████░░░░░░░░░░░░``."""
    if fraction is None or not fraction > 0:  # None, NaN, nothing or less: an empty bar
        return _bar_text(0, width)
    full = round(fraction * width) if fraction < 1 else width  # one or more: the whole bar
    return _bar_text(full or 1, width)  # a non-zero share is never drawn as nothing


# A tuple: indexing a string makes a new one-character string each time (these are past
# Latin-1, which Python keeps one of each), a tuple hands back the same eight.
_SPARKS = tuple("▁▂▃▄▅▆▇█")


# Largest end a table of sparkline levels is made for: counts are far below it, and past
# 2 ** 53 floats no longer hold every whole number the table would list.
_TABLED_VALUE = 2**52
# Widest range tabled: 1,024 tables kept of at most this many entries each (a history of
# 1,000 runs would otherwise keep tables of a thousand entries).
_TABLED_WIDTH = 64


@functools.lru_cache(maxsize=1024)  # ranges repeat across a site's sparklines of counts
def _levels(low: float, high: float) -> dict[float | None, str]:
    """The sparkline character of each whole number from ``low`` to ``high`` on that scale,
    as ``spark`` computes it (so equal whatever the type of the value looked up); empty
    unless both ends are whole numbers from 0 to ``_TABLED_VALUE``."""
    if not (0 <= low < high <= _TABLED_VALUE and low == int(low) and high == int(high)):
        return {}
    scale = (len(_SPARKS) - 1) / (high - low)
    offset = 0.5 - low * scale
    return {v: _SPARKS[floor(v * scale + offset)] for v in range(int(low), int(high) + 1)}


def sparkline(values: Iterable[float | None]) -> str:
    """Numbers as a text sparkline, lowest to highest: ``▁▃▅█`` (a gap is a space)."""
    numbers = list(values)
    known = [v for v in numbers if v is not None]
    return spark(numbers, min(known), max(known)) if known else ""


def spark(values: Sequence[float | None], low: float, high: float, complete: bool = False) -> str:
    """A sparkline on a given scale; ``complete``: no value is None (the fast path)."""
    if high == low:
        return "".join([" " if v is None else _SPARKS[3] for v in values])
    if high - low <= min(len(values), _TABLED_WIDTH) and (complete or None not in values):
        try:
            # Whole numbers read their level from a table: a sparkline of counts over a
            # narrow range, no wider than it is long (most are: the table costs no more to
            # make than the sparkline, and ranges repeat), costs no arithmetic per value.
            return "".join(map(_levels(low, high).__getitem__, values))
        except KeyError:  # a fraction, or a value outside the range
            pass
    scale = (len(_SPARKS) - 1) / (high - low)
    # floor(x + 0.5) rounds to the nearest level, faster than round(); x is never below 0
    # (no value is below ``low``), where floor() is int() and the quicker call.
    offset = 0.5 - low * scale
    if complete or None not in values:
        return "".join([_SPARKS[floor(v * scale + offset)] for v in values])  # type: ignore[operator]
    return "".join([" " if v is None else _SPARKS[floor(v * scale + offset)] for v in values])


FILTERS: dict[str, Callable[..., Any]] = {
    "number": number,
    "percent": percent,
    "delta": delta,
    "delta_percent": delta_percent,
    "delta_arrow": delta_arrow,
    "date": date,
    "day": day,
    "weekday": weekday,
    "md": md,
    "md_cell": md_cell,
    "md_code": md_code,
    "textbar": textbar,
    "sparkline": sparkline,
}
