"""Render report pages (Markdown, HTML and optionally PDF) from state, and write the site.

One environment factory (``environment``): the workspace's ``templates/`` is searched
before the templates shipped in the package, so a file named like a built-in template
overrides it and a report's ``template: NAME`` picks ``NAME.html.j2`` / ``NAME.md.j2``.
``StrictUndefined`` turns a typo in a template into an error. Autoescaping is on for every
template except Markdown ones (``*.md.j2``, ``*.txt.j2``), because group values come from
the API; Markdown templates escape with the ``md`` and ``md_cell`` filters instead.

Pages are built in memory, then each file is written atomically (a whole site is held in
memory at once: about 100 KB per report). A large site is rendered by one process per core
(``render_reports``), with the same result. Output is deterministic: the same state
renders byte-identical files (no wall-clock time, only the ``fetched_at`` of each result;
groups, reports and history in a fixed order; no randomness in ids).

Jinja2 is imported inside the functions that render, so planning does not pay for it.
Report descriptions are Markdown written by report authors, rendered by a small safe
subset here (paragraphs, ``- `` lists, ``**bold**``, ``*em*``, `` `code` ``, links to
http(s) only, bare http(s) URLs): no Markdown library is installed, and a subset that
escapes everything else cannot let raw HTML or a ``javascript:`` link through.

Template context
----------------
Every name a template can use. Numbers are floats, but those read from history (the
trend's ``values``, ``first``, ``last`` and ``max``) are ints when whole: print numbers
through the filters below. Timestamps are the ISO 8601 strings of state
(``2026-11-26T19:00:00Z``); format them with the filters too. Dicts are read with
``a.b`` (a key wins over a dict method: ``row.values`` is the list of numbers).

Ready-made fragments (names ending ``_html``, ``_svg``, ``_md``) hold the repeated rows of
tables and charts, escaped: one Jinja2 expression per table cell would make a site of
1,000 reports several times slower. The built-in templates use them and keep everything
else (page structure, headings, captions, text alternatives); a template of one's own can
build the same from the plain data next to them.

Report pages (``report.html.j2``, ``report.md.j2``, or a report's own ``template``):

- ``site_title``: ``"Case reports"``.
- ``report``: ``name``, ``title``, ``description`` (the Markdown source or None),
  ``description_html`` (safe HTML, empty when none), ``description_md`` (safe Markdown),
  ``description_text`` (plain text), ``owner`` (or None), ``formats`` (list),
  ``template``, ``files`` (format -> file name, e.g. ``{"html": "x.html"}``).
- ``source``: ``kind`` (``emulator``, ``datadog`` or ``none``), ``site``, ``detail``,
  ``description`` (e.g. "Datadog (datadoghq.com)"), ``is_demo`` (True for emulator data).
- ``demo_notice``: the sentence of the demo-data banner (shown when ``source.is_demo``).
- ``freshness``: ``newest`` and ``oldest`` ``fetched_at`` of the report's results (None when
  nothing was fetched), ``fetched`` and ``pending`` (counts of aggregations).
- ``compared``: True when some aggregation has a previous run to compare with.
- ``links``: ``index_html``, ``index_md`` and this report's ``html``, ``markdown``, ``pdf``
  file names (None for a format the report does not have).
- ``summary_html``, ``summary_md``: the rows of the summary table (title, total, change).
- ``aggregations``: a list, in definition order, of:

  - ``id`` (unique HTML id on the page), ``address``, ``title``,
  - ``query_filter`` (as written), ``query_text`` (the query in plain words),
    ``group_by`` (list of fields), ``group_by_text`` (plain words, "status and priority"),
    ``group_header`` (table header, "Status / priority"), ``limit``,
    ``summary`` (one sentence: what is counted, by what, at most how many groups),
  - ``fetched`` (False until the first apply), ``fetched_at``, ``total``,
    ``previous`` (None, or ``{fetched_at, total}`` of the run before), ``delta`` (total
    change, or None), ``delta_ratio`` (relative change, or None when unknown or from 0),
    ``cases_word`` ("case" or "cases"), ``change_text`` (the change in words: "+32 (+1.5%)
    since the previous run on …", or that this is the first run), ``caption`` (of the table),
  - ``rows``: per group, largest first: ``label``, ``values`` (every number the API
    returned), ``count`` (the first of them), ``extra_values`` (the rest), ``share``
    (count / total, or None), ``previous`` (count at the previous run, or None when
    unknown), ``change`` (or None), ``is_new`` (absent at the previous run), ``bar``
    (count / largest count, 0..1),
  - ``table_html``, ``table_md``: the rows of the groups table (label, cases, share with a
    text bar in Markdown, change when there is a previous run, other values when any),
  - ``extra_value_count`` (most extra values on a row, 0 normally), ``groups_sum``,
    ``truncated`` (as many groups as ``limit``: more may exist), ``dropped`` (groups of
    the previous run no longer listed: ``label``, ``previous``), ``notes`` (plain-text
    explanations shown under the table),
  - ``chart`` (None without groups): the bar chart: ``height`` (px), ``title``,
    ``summary`` (its text alternative), ``bars_svg`` (a label, value and bar per group),
  - ``trend``: None without history, else ``runs``, ``start``, ``end`` (timestamps),
    ``caption`` ("Trend over the last 13 runs (14 Nov 2026 – 26 Nov 2026)"), ``viewbox``,
    ``width``/``height``, ``max``, ``title``, ``summary`` (text alternative),
    ``paths_svg`` (axis and lines), ``legend_html`` (a list item per line and the scale),
    ``table_md`` (a Markdown table row per line: label, sparkline, first, latest)
    and ``series`` (the total first, then up to three top groups): ``label``, ``kind``
    (``total`` or ``group``), ``css`` (class name), ``values`` (None where unknown),
    ``first``, ``last``, ``path`` (SVG path data in the viewBox), ``spark`` (a text
    sparkline such as ``▁▃▅█``).

The index (``index.html.j2``, ``index.md.j2``): ``site_title``, ``source``,
``demo_notice``, ``freshness`` (over every report), ``links`` (``index_html``,
``index_md``) and ``reports``, sorted by name: ``name``, ``title``, ``description_html``,
``description_md``, ``description_text``, ``owner``, ``files``, ``link_html`` and
``link_md`` (the page to link from each index), ``freshness``, ``aggregations`` (``id``,
``title``, ``fetched``, ``fetched_at``, ``total``, ``delta``, ``link_html``, ``link_md``),
``table_html`` and ``table_md`` (the rows of its totals table).

Filters: ``number`` (1,234), ``percent`` (0.423 -> 42.3%), ``delta`` (+12, −3, ±0),
``delta_percent`` (+4.2%), ``date`` (26 Nov 2026, 19:00 UTC), ``day`` (26 Nov 2026),
``md`` (escape text for Markdown), ``md_cell`` (the same, for a table cell), ``md_code``
(a code span, whatever backticks the text holds), ``textbar``
(0.42 -> ``████████░░░░░░░░░░░░``, an optional width) and ``sparkline`` (numbers -> ``▁▃▅█``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import pickle
import re
import signal
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from markupsafe import Markup, escape

from casereport.definitions.expand import AggregationSpec, ReportSpec
from casereport.errors import RenderError
from casereport.fsutil import atomic_write_bytes, atomic_write_text, collector_paused
from casereport.site import FORMAT_SUFFIXES, INDEX_FILES
from casereport.state.model import HISTORY_GROUPS, AggregationState, History, Source

if TYPE_CHECKING:
    import jinja2

BUILTIN_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
SITE_TITLE = "Case reports"
DEMO_NOTICE = "Demo data from the local emulator: these numbers are synthetic, not from Datadog."
# Formats rendered by a template, and the template extension of each.
_TEMPLATE_EXTENSIONS = {"markdown": "md", "html": "html"}
_RENDERED_FORMATS = ("markdown", "html", "pdf")
_TREND_GROUPS = 3
_TREND_WIDTH = 600
_TREND_HEIGHT = 120
_CHART_ROW = 34  # px per bar: a label line, then the bar
_NO_VALUES = (0.0,)
_TREND_AXIS = (
    f'<line class="axis" x1="0" y1="{_TREND_HEIGHT - 4}" x2="{_TREND_WIDTH}" '
    f'y2="{_TREND_HEIGHT - 4}"/>\n'
)
_SERIES_CSS = tuple(f"s{i}" for i in range(_TREND_GROUPS + 1))
_CHART_LABEL = 28  # characters of a group label shown in the chart (the table has all)

# The rendered pages, keyed by site-relative file name; a PDF is bytes.
Pages = Mapping[str, str | bytes]


def _template_files(templates_dir: Path | None) -> list[Path]:
    folders = [BUILTIN_TEMPLATES]
    if templates_dir is not None and templates_dir.is_dir():
        folders.insert(0, templates_dir)
    files: list[Path] = []
    for folder in folders:
        files += sorted(p for p in folder.rglob("*.j2") if p.is_file())
    return files


def template_hashes(templates_dir: Path | None, names: Iterable[str]) -> dict[str, str]:
    """A hash per template name of every template file it could use.

    Templates include and extend each other, so any change to any template file
    re-renders every report (cheap next to guessing the include graph wrong).
    """
    digest = hashlib.sha256()
    for path in _template_files(templates_dir):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    shared = digest.hexdigest()
    return {
        name: hashlib.sha256(f"{name}\0{shared}".encode()).hexdigest()
        for name in sorted(set(names))
    }


# -- filters ----------------------------------------------------------------------------

_MINUS = "\u2212"  # a real minus sign: "−3" reads better than "-3" next to "+3"
# Counts repeat across a site (small integers above all): format each value once.
_NUMBERS: dict[float, str] = {}


def clear_caches() -> None:
    """Forget memoised formatting and query descriptions (for benchmarks and tests)."""
    _NUMBERS.clear()
    _LABELS.clear()
    for cached in (
        date,
        day,
        _parse_time,
        describe_query,
        _x_positions,
        _path_format,
        _bar_text,
        _description,
    ):
        cached.cache_clear()


def number(value: float | None) -> str:
    """``1234.0`` -> ``1,234``; a fraction keeps up to two decimals; None -> ``–``."""
    if value is None:
        return "–"
    text = _NUMBERS.get(value)
    if text is None:
        if value.is_integer() if isinstance(value, float) else isinstance(value, int):
            text = f"{int(value):,}"
        else:
            text = f"{value:,.2f}".rstrip("0").rstrip(".")
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
    if value == 0:
        return "±0"
    return ("+" if value > 0 else _MINUS) + number(abs(value))


def delta_percent(value: float | None) -> str:
    """A relative change: ``0.042`` -> ``+4.2%``; None -> ``–``."""
    if value is None:
        return "–"
    if value == 0:
        return "±0%"
    return ("+" if value > 0 else _MINUS) + percent(abs(value))


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@functools.lru_cache(maxsize=4096)
def _parse_time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


@functools.lru_cache(maxsize=4096)
def date(value: str | None) -> str:
    """``2026-11-26T19:00:00Z`` -> ``26 Nov 2026, 19:00 UTC`` (other text as it is)."""
    if value is None:
        return "never"
    moment = _parse_time(value)
    if moment is None:
        return value
    offset = moment.utcoffset()
    zone = "UTC" if offset is not None and not offset else moment.strftime("%z") or "UTC"
    return (
        f"{moment.day} {_MONTHS[moment.month - 1]} {moment.year}, "
        f"{moment.hour:02d}:{moment.minute:02d} {zone}"
    )


@functools.lru_cache(maxsize=4096)
def day(value: str | None) -> str:
    """``2026-11-26T19:00:00Z`` -> ``26 Nov 2026``."""
    if value is None:
        return "never"
    moment = _parse_time(value)
    if moment is None:
        return value
    return f"{moment.day} {_MONTHS[moment.month - 1]} {moment.year}"


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


_MD_MAYBE = re.compile(r"[\\`*\[\]<>|~_&\r\n]|^[#+=\d-]")


def _md_text(text: str) -> str:
    if not _MD_MAYBE.search(text):  # the common case: nothing to escape
        return text
    return _MD_SPECIAL.sub(_md_escape_match, _MD_SPACE.sub(" ", text))


def md(value: object) -> str:
    """Escape text for Markdown so it shows as typed (newlines become spaces)."""
    return _md_text(str(value).strip())


def md_cell(value: object) -> str:
    """Escape text for a Markdown table cell (``md``, which escapes ``|`` too)."""
    return md(value) or " "


def md_code(value: object) -> str:
    """Text as a Markdown code span, fenced so backticks inside it cannot end it."""
    return _code_md(_MD_SPACE.sub(" ", str(value)))


@functools.lru_cache(maxsize=256)
def _bar_text(full: int, width: int) -> str:
    return "█" * full + "░" * (width - full)


def textbar(fraction: float | None, width: int = 20) -> str:
    """A text bar for Markdown: ``0.42`` -> ``████████░░░░░░░░░░░░``."""
    if fraction is None or fraction != fraction:  # None or NaN
        fraction = 0.0
    full = round(max(0.0, min(1.0, fraction)) * width)
    if full == 0 and fraction > 0:
        full = 1  # a non-zero share is never drawn as nothing
    return _bar_text(full, width)


_SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Iterable[float | None]) -> str:
    """Numbers as a text sparkline, lowest to highest: ``▁▃▅█`` (a gap is a space)."""
    numbers = list(values)
    known = [v for v in numbers if v is not None]
    return _spark(numbers, min(known), max(known)) if known else ""


def _spark(values: Sequence[float | None], low: float, high: float, complete: bool = False) -> str:
    if high == low:
        return "".join([" " if v is None else _SPARKS[3] for v in values])
    scale = (len(_SPARKS) - 1) / (high - low)
    # int(x + 0.5) rounds these non-negative numbers, faster than round().
    offset = 0.5 - low * scale
    if complete or None not in values:
        return "".join([_SPARKS[int(v * scale + offset)] for v in values])  # type: ignore[operator]
    return "".join([" " if v is None else _SPARKS[int(v * scale + offset)] for v in values])


FILTERS: dict[str, Callable[..., Any]] = {
    "number": number,
    "percent": percent,
    "delta": delta,
    "delta_percent": delta_percent,
    "date": date,
    "day": day,
    "md": md,
    "md_cell": md_cell,
    "md_code": md_code,
    "textbar": textbar,
    "sparkline": sparkline,
}


# -- report descriptions: a safe Markdown subset ------------------------------------------
#
# Blocks are paragraphs and "- " lists; inlines are text, code, strong, em and links.
# Parsed once, then written out as HTML (escaped), as Markdown (re-escaped) or as text.


@dataclass(frozen=True, slots=True)
class _Inline:
    kind: str  # "text", "code", "strong", "em", "link"
    text: str = ""  # text and code
    children: tuple[_Inline, ...] = ()
    href: str = ""


_Block = tuple[str, tuple[tuple[_Inline, ...], ...]]  # ("p" | "ul", one or more items)

_BACKSLASH_ESCAPABLE = frozenset("\\`*_{}[]()#+-.!<>|~")
_LINK = re.compile(r"\[([^\]\n]+)\]\(\s*([^\s()<>]+)\s*\)")
_BARE_URL = re.compile(r"https?://[^\s<>()\[\]\"'`]+", re.IGNORECASE)
_SAFE_SCHEME = re.compile(r"https?://", re.IGNORECASE)
_LIST_ITEM = re.compile(r"^\s{0,3}[-*+]\s+(.*)$")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_MAX_NESTING = 8


def _find_closing(text: str, marker: str, start: int) -> int:
    """Index of the closing ``marker`` for emphasis opened before ``start``, or -1."""
    position = start
    while True:
        found = text.find(marker, position)
        if found < 0:
            return -1
        if found > start and not text[found - 1].isspace() and text[found - 1] != "\\":
            if marker == "_" and found + 1 < len(text) and text[found + 1].isalnum():
                position = found + 1
                continue
            if marker == "*" and text.startswith("**", found):
                position = found + 2
                continue
            return found
        position = found + 1


def _parse_inline(text: str, depth: int = 0) -> tuple[_Inline, ...]:
    nodes: list[_Inline] = []
    plain: list[str] = []

    def flush() -> None:
        if plain:
            nodes.append(_Inline("text", "".join(plain)))
            plain.clear()

    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in _BACKSLASH_ESCAPABLE:
            plain.append(text[i + 1])
            i += 2
            continue
        if char == "`":
            run = len(text) - i - len(text[i:].lstrip("`"))
            fence = "`" * run
            end = text.find(fence, i + run)
            while end >= 0 and text.startswith("`", end + run):
                end = text.find(fence, end + run + 1)
            if end >= 0:
                code = text[i + run : end]
                if len(code) > 1 and code[0] == " " and code[-1] == " " and code.strip():
                    code = code[1:-1]
                flush()
                nodes.append(_Inline("code", code))
                i = end + run
                continue
            plain.append(fence)
            i += run
            continue
        if depth < _MAX_NESTING and text.startswith(("**", "__"), i):
            marker = text[i : i + 2]
            end = _find_closing(text, marker, i + 2)
            if end > i + 2 and not text[i + 2].isspace():
                flush()
                nodes.append(
                    _Inline("strong", children=_parse_inline(text[i + 2 : end], depth + 1))
                )
                i = end + 2
                continue
        if depth < _MAX_NESTING and char in "*_":
            opens_word = char == "*" or i == 0 or not text[i - 1].isalnum()
            end = _find_closing(text, char, i + 1) if opens_word else -1
            if end > i + 1 and not text[i + 1].isspace():
                flush()
                nodes.append(_Inline("em", children=_parse_inline(text[i + 1 : end], depth + 1)))
                i = end + 1
                continue
        if char == "[":
            match = _LINK.match(text, i)
            if match:
                flush()
                label = _parse_inline(match.group(1), _MAX_NESTING)
                href = match.group(2)
                if _SAFE_SCHEME.match(href):
                    nodes.append(_Inline("link", children=label, href=href))
                else:  # javascript:, data:, relative paths: keep the words, drop the link
                    nodes.extend(label)
                i = match.end()
                continue
        if char in "hH":
            match = _BARE_URL.match(text, i)
            if match and (i == 0 or not text[i - 1].isalnum()):
                url = match.group(0).rstrip(".,;:!?")
                flush()
                nodes.append(_Inline("link", children=(_Inline("text", url),), href=url))
                i += len(url)
                continue
        plain.append(char)
        i += 1
    flush()
    return tuple(nodes)


def parse_description(text: str) -> tuple[_Block, ...]:
    """Parse a description into paragraphs and lists of inline nodes."""
    blocks: list[_Block] = []
    paragraph: list[str] = []
    items: list[list[str]] = []

    def close() -> None:
        if paragraph:
            blocks.append(("p", (_parse_inline(" ".join(paragraph)),)))
            paragraph.clear()
        if items:
            blocks.append(("ul", tuple(_parse_inline(" ".join(item)) for item in items)))
            items.clear()

    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if not line:
            close()
            continue
        item = _LIST_ITEM.match(raw)
        heading = _HEADING.match(raw)
        if item:
            if paragraph:
                close()
            items.append([item.group(1).strip()])
        elif heading:  # a heading inside a description would break the page's outline
            close()
            blocks.append(("p", ((_Inline("strong", children=_parse_inline(heading[1])),),)))
        elif items:
            items[-1].append(line)
        else:
            paragraph.append(line)
    close()
    return tuple(blocks)


def _inline_html(nodes: Iterable[_Inline]) -> str:
    out = []
    for node in nodes:
        if node.kind == "text":
            out.append(str(escape(node.text)))
        elif node.kind == "code":
            out.append(f"<code>{escape(node.text)}</code>")
        elif node.kind == "link":
            out.append(f'<a href="{escape(node.href)}">{_inline_html(node.children)}</a>')
        else:
            out.append(f"<{node.kind}>{_inline_html(node.children)}</{node.kind}>")
    return "".join(out)


def description_html(blocks: Sequence[_Block]) -> Markup:
    """Blocks as HTML; every piece of text is escaped, only http(s) links are kept."""
    out = []
    for kind, items in blocks:
        if kind == "p":
            out.append(f"<p>{_inline_html(items[0])}</p>")
        else:
            lis = "".join(f"<li>{_inline_html(item)}</li>" for item in items)
            out.append(f"<ul>{lis}</ul>")
    return Markup("\n".join(out))


def _code_md(text: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _inline_md(nodes: Iterable[_Inline]) -> str:
    out = []
    for node in nodes:
        if node.kind == "text":
            out.append(_md_text(node.text))
        elif node.kind == "code":
            out.append(_code_md(node.text.replace("\n", " ")))
        elif node.kind == "link":
            out.append(f"[{_inline_md(node.children)}]({node.href})")
        else:
            mark = "**" if node.kind == "strong" else "*"
            out.append(f"{mark}{_inline_md(node.children)}{mark}")
    return "".join(out)


def description_md(blocks: Sequence[_Block]) -> str:
    """Blocks as Markdown that shows the same thing (and no raw HTML) on GitHub."""
    out = []
    for kind, items in blocks:
        if kind == "p":
            out.append(_inline_md(items[0]))
        else:
            out.append("\n".join(f"- {_inline_md(item)}" for item in items))
    return "\n\n".join(out)


def _inline_text(nodes: Iterable[_Inline]) -> str:
    return "".join(
        n.text if n.kind in ("text", "code") else _inline_text(n.children) for n in nodes
    )


def description_text(blocks: Sequence[_Block]) -> str:
    """Blocks as plain text on one line (for a ``<meta name="description">``)."""
    return " ".join(_inline_text(item) for _, items in blocks for item in items)


# -- queries in plain words -------------------------------------------------------------

# How a field reads in a sentence; any other field reads as its name, with spaces.
_FIELD_WORDS = {
    "creation_source": "source",
    "created_by": "creator",
    "modified_by": "last editor",
    "services": "service",
    "env": "environment",
    "environments": "environment",
    "datacenters": "datacenter",
    "versions": "version",
    "status_name": "status",
    "status_group": "status group",
    "type_id": "type id",
}


def field_words(name: str) -> str:
    """A field as it reads in a sentence: ``creation_source`` -> ``source``."""
    lowered = name.strip().lower()
    return _FIELD_WORDS.get(lowered, lowered.replace("_", " ").replace(".", " "))


def _join(parts: Sequence[str], word: str = "and") -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return f"{', '.join(parts[:-1])} {word} {parts[-1]}"


_SPACE = re.compile(r"\s")


def _value_words(term: Any) -> str:
    value: str = term.value
    return f'"{value}"' if term.quoted or not value or _SPACE.search(value) else value


def _term_words(term: Any, negated: bool) -> str:
    """One ``field:value`` as a clause after "whose": ``status is not closed``."""
    if term.field is None:
        verb = "does not mention" if negated else "mentions"
        return f'title or description {verb} "{term.value}"'
    name = field_words(term.field)
    value = term.value
    if not term.quoted and "*" in value:
        inner = value.strip("*")
        if not inner:
            return f"{name} is not set" if negated else f"{name} is set"
        if "*" not in inner:
            shape = (value.startswith("*"), value.endswith("*"))
            verb = {
                (False, True): "starts with",
                (True, False): "ends with",
                (True, True): "contains",
            }[shape]
            if negated:
                verb = {"starts with": "does not start with", "ends with": "does not end with"}.get(
                    verb, "does not contain"
                )
            return f"{name} {verb} {inner}"
        verb = "does not match" if negated else "matches"
        return f"{name} {verb} the pattern {value} (* stands for any text)"
    return f"{name} is {'not ' if negated else ''}{_value_words(term)}"


def _same_field_values(node: Any) -> tuple[str, list[str]] | None:
    """For ``f:a OR f:b`` (plain values of one field): the field and the values."""
    from casereport.definitions.query import Term

    field = None
    values = []
    for operand in node.operands:
        if not isinstance(operand, Term) or operand.field is None:
            return None
        if not operand.quoted and "*" in operand.value:
            return None
        if field is not None and operand.field.lower() != field.lower():
            return None
        field = operand.field
        values.append(_value_words(operand))
    assert field is not None
    return field, values


def _clause(node: Any, negated: bool = False) -> str:
    from casereport.definitions.query import And, Not, Or, Term

    if isinstance(node, Term):
        return _term_words(node, negated)
    if isinstance(node, Not):
        return _clause(node.operand, not negated)
    if isinstance(node, Or):
        same = _same_field_values(node)
        if same is not None:
            field, values = same
            if negated:
                listed = (
                    f"neither {values[0]} nor {values[1]}"
                    if len(values) == 2
                    else (f"none of {', '.join(values)}")
                )
                return f"{field_words(field)} is {listed}"
            return f"{field_words(field)} is {_join(values, 'or')}"
        parts = [_nested(operand) for operand in node.operands]
        text = f"either {_join(parts, 'or')}"
        return f"not ({text})" if negated else text
    if isinstance(node, And):
        text = _join([_nested(operand) for operand in node.operands])
        return f"not ({text})" if negated else text
    return "every case"


def _nested(node: Any) -> str:
    from casereport.definitions.query import And, Or

    text = _clause(node)
    return f"({text})" if isinstance(node, And | Or) and not text.startswith("(") else text


# "field:value -field:value ...": the shape of most queries, read without the full parser
# (a tenth of the time). Anything else (quotes, parentheses, operators, wildcards,
# escapes, a second colon) goes to ``query.parse``; the tests check both agree.
_SIMPLE_TERM = re.compile(r"(-?)([A-Za-z0-9_.][A-Za-z0-9_.\-]*):([^\s()\"\\:*]+)")


def simple_query_tree(query_filter: str) -> Any:
    """The tree ``query.parse`` gives for a query of plain ``[-]field:value`` terms, else None."""
    from casereport.definitions.query import And, Not, Term

    words = query_filter.split()
    if not words:
        return None
    nodes: list[Any] = []
    for word in words:
        match = _SIMPLE_TERM.fullmatch(word)
        if match is None:
            return None
        negated, field, value = match.groups()
        term = Term(field, value)
        nodes.append(Not(term) if negated else term)
    return nodes[0] if len(nodes) == 1 else And(tuple(nodes))


@functools.lru_cache(maxsize=8192)
def describe_query(query_filter: str) -> str:
    """A query in plain words: ``project:SEC -status:closed`` ->
    "Cases in project SEC whose status is not closed"."""
    from casereport.definitions.query import And, MatchAll, Not, Or, Term, parse
    from casereport.errors import QuerySyntaxError

    tree = simple_query_tree(query_filter)
    if tree is None:
        try:
            tree = parse(query_filter)
        except QuerySyntaxError:
            return f"Cases matching the search {query_filter!r}"
    if isinstance(tree, MatchAll):
        return "All cases"
    operands = list(tree.operands) if isinstance(tree, And) else [tree]
    projects: list[str] = []
    clauses: list[str] = []
    excluded: list[str] = []
    for operand in operands:
        if (
            isinstance(operand, Term)
            and (operand.field or "").lower() == "project"
            and (operand.quoted or "*" not in operand.value)
        ):
            projects.append(f"in project {_value_words(operand)}")
            continue
        if isinstance(operand, Or):
            same = _same_field_values(operand)
            if same is not None and same[0].lower() == "project":
                projects.append(f"in project {_join(same[1], 'or')}")
                continue
        # "-(a OR b)" across fields reads best at the end: "..., excluding those where".
        if isinstance(operand, Not) and (
            isinstance(operand.operand, And)
            or (isinstance(operand.operand, Or) and _same_field_values(operand.operand) is None)
        ):
            excluded.append(_clause(operand.operand))
            continue
        clauses.append(_clause(operand))
    words = ["Cases"]
    if projects:
        words.append(_join(projects))
    if clauses:
        # "whose status is open", but "where either status is open or ..."
        lead = "where " if clauses[0].startswith("either ") else "whose "
        words.append(lead + _join(clauses))
    text = " ".join(words)
    if excluded:
        lead = (
            "All cases except those where "
            if len(words) == 1
            else f"{text}, excluding those where "
        )
        text = lead + _join([f"({e})" if len(excluded) > 1 else e for e in excluded], "or")
    return text


def describe_groups(groups: Sequence[str]) -> str:
    """Group-by fields in plain words: ``[status, priority]`` -> ``status and priority``."""
    return _join([field_words(g) for g in groups])


def _group_header(groups: Sequence[str]) -> str:
    text = " / ".join(field_words(g) for g in groups) or "group"
    return text[0].upper() + text[1:]


# -- charts and tables ----------------------------------------------------------------------
#
# The repeated rows of each aggregation (table rows, chart bars) are built here as ready
# HTML and Markdown fragments: a Jinja2 expression costs about a microsecond, and 1,000
# reports of 10 aggregations of 10 groups are a million of them. The templates keep the
# structure (headings, captions, the SVG elements and their text alternatives), and the
# plain data (``rows``, ``chart.bars``, ``trend.series``) is there for templates of one's own.


def _short(label: str, width: int = _CHART_LABEL) -> str:
    return label if len(label) <= width else label[: width - 1].rstrip() + "…"


@functools.lru_cache(maxsize=64)
def _x_positions(count: int) -> tuple[int, ...]:
    if count == 1:
        return (_TREND_WIDTH // 2,)
    step = (_TREND_WIDTH - 8) / (count - 1)
    return tuple(round(4 + i * step) for i in range(count))


@functools.lru_cache(maxsize=64)
def _path_format(count: int) -> str:
    # "M4 {} L24 {} ...": the x positions baked in, one format call fills in the heights.
    return "M" + " L".join(f"{x} {{}}" for x in _x_positions(count))


def _path(values: Sequence[float | None], top: float, complete: bool) -> str:
    """SVG path data of a line through ``values`` (a gap where a value is unknown);
    ``complete``: no value is unknown (the common case: one unbroken line)."""
    base = _TREND_HEIGHT - 4
    scale = (_TREND_HEIGHT - 8) / top if top > 0 else 0.0
    if complete:
        return _path_format(len(values)).format(*[base - int(v * scale + 0.5) for v in values])  # type: ignore[operator]
    parts = []
    pen_down = False
    for x, value in zip(_x_positions(len(values)), values, strict=True):
        if value is None:
            pen_down = False
            continue
        parts.append(f"{'L' if pen_down else 'M'}{x} {base - int(value * scale + 0.5)}")
        pen_down = True
    return " ".join(parts)


def _trend(
    title: str,
    history: History,
    stamps: Sequence[str],
    earlier_totals: Sequence[float],
    fetched_at: str,
    total: float,
    rows: Sequence[Mapping[str, Any]],
    limit: int,
) -> dict[str, Any] | None:
    """The trend of the total and the top groups: earlier results, then this one."""
    if not earlier_totals:
        return None
    totals: list[float | None] = [*earlier_totals, total]
    series_values: list[tuple[str, str, list[float | None]]] = [("Total", "total", totals)]
    # A group missing from a run had no cases then, unless that run recorded as many
    # groups as it could hold: then it may have been cut, and its count is unknown.
    capacity = min(limit, HISTORY_GROUPS)
    recorded: list[int] | None = None
    for row in rows:
        if len(series_values) > _TREND_GROUPS:
            break
        label = row["label"]
        values = history.group_counts(label)
        if values is None:
            continue
        if None in values:
            recorded = recorded or history.recorded_counts()
            values = [
                count if count is not None else None if held >= capacity else 0.0
                for count, held in zip(values, recorded, strict=True)
            ]
        values.append(row["count"])
        series_values.append((label, "group", values))
    ranges = []
    for _, _, values in series_values:
        complete = None not in values
        known = cast(list[float], values) if complete else [v for v in values if v is not None]
        ranges.append((known[0], known[-1], min(known), max(known), complete))
    top = max(high for _, _, _, high, _ in ranges)
    series = []
    summaries = []
    paths = []
    legend = []
    md_rows = []
    for index, ((label, kind, values), (first, last, low, high, complete)) in enumerate(
        zip(series_values, ranges, strict=True)
    ):
        css = _SERIES_CSS[index]
        path = _path(values, top, complete)
        spark = _spark(values, low, high, complete)
        series.append(
            {
                "label": label,
                "kind": kind,
                "css": css,
                "values": values,
                "first": first,
                "last": last,
                "path": path,
                "spark": spark,
            }
        )
        shown = escape(label) if label else "(empty)"
        first_text, last_text = number(first), number(last)
        md_rows.append(
            f"| {md_cell(label or '(empty)')} | `{spark}` | {first_text} | {last_text} |"
        )
        summaries.append(f"{label or '(empty)'} from {first_text} to {last_text}")
        paths.append(f'<path class="line {css}" d="{path}"/>')
        legend.append(
            f'<li><svg width="26" height="10" aria-hidden="true" focusable="false">'
            f'<line class="line {css}" x1="1" y1="5" x2="25" y2="5"/></svg>'
            f"{shown}: {first_text} → {last_text}</li>"
        )
    runs = len(totals)
    start = stamps[0]
    legend.append(f'<li class="muted">Scale 0 to {number(top)}</li>')
    return {
        "runs": runs,
        "caption": f"Trend over the last {runs} runs ({day(start)} – {day(fetched_at)})",
        "viewbox": f"0 0 {_TREND_WIDTH} {_TREND_HEIGHT}",
        "start": start,
        "end": fetched_at,
        "width": _TREND_WIDTH,
        "height": _TREND_HEIGHT,
        "max": top,
        "title": f"Trend over the last {runs} runs: {title}",
        "summary": (
            f"Over {runs} runs from {date(start)} to {date(fetched_at)}: "
            f"{'; '.join(summaries)}. The vertical axis runs from 0 to {number(top)}."
        ),
        "series": series,
        # The total is drawn last, on top of the groups.
        "paths_svg": Markup(_TREND_AXIS + "\n".join(reversed(paths))),
        "legend_html": Markup("\n".join(legend)),
        "table_md": "\n".join(md_rows),
    }


# -- template context -------------------------------------------------------------------


def _source_context(source: Source | None) -> dict[str, Any]:
    if source is None:
        return {
            "kind": "none",
            "site": "",
            "detail": "",
            "description": "no data fetched yet",
            "is_demo": False,
        }
    return {
        "kind": source.kind,
        "site": source.site,
        "detail": source.detail,
        "description": source.describe(),
        "is_demo": source.kind == "emulator",
    }


_ID_UNSAFE = re.compile(r"[^a-z0-9]+")
# Where a long group label may wrap in a narrow table (after _ - / . in identifiers).
_BREAKS = re.compile(r"([_/.-])(?=[^\s])")


def _html_id(spec_id: str, taken: set[str]) -> str:
    base = _ID_UNSAFE.sub("-", spec_id.lower()).strip("-") or "aggregation"
    candidate, counter = base, 1
    while candidate in taken:
        counter += 1
        candidate = f"{base}-{counter}"
    taken.add(candidate)
    return candidate


def _spec_anchor(spec: AggregationSpec, taken: set[str]) -> str:
    key = spec.aggregation_id if spec.key is None else f"{spec.aggregation_id}-{spec.key}"
    return _html_id(key, taken)


def _notes(
    groups: Sequence[str],
    limit: int,
    total: float,
    groups_sum: float,
    truncated: bool,
    extra: int,
    unknown_change: int,
) -> list[str]:
    """Plain-text explanations of what the table cannot say by itself.

    ``unknown_change``: how many groups the previous run recorded, when a group's change
    is unknown because it was not among them (0 otherwise).
    """
    notes = []
    if truncated:
        notes.append(
            f"{limit} groups came back, as many as the limit allows: there may be more, "
            "smaller ones that are not shown."
        )
    if total and groups_sum != total:
        reasons = [
            f"a case with no {_join([field_words(g) for g in groups], 'or')} is in no group",
            "a case with several values is counted in each",
        ]
        if truncated:
            reasons.insert(0, "groups past the limit are not listed")
        notes.append(
            f"The groups add up to {number(groups_sum)}, not {number(total)}: {_join(reasons)}."
        )
    if unknown_change:
        notes.append(
            "A change shown as – is unknown: the previous run recorded only its largest "
            f"{unknown_change} groups, and this group was not among them."
        )
    if extra:
        notes.append(
            "Some groups came with more than one number from the API: the first is the "
            "count, the others are shown as returned."
        )
    return notes


# A group label as the table cell (escaped, may wrap), the Markdown cell and the chart
# label: group values repeat across a site (statuses, priorities, services), so once each.
_LABELS: dict[str, tuple[str, str, str, str]] = {}


def _label_forms(label: str) -> tuple[str, str, str, str]:
    if not label:
        return ("(empty)",) * 4
    shown = str(escape(label))
    short = shown if len(label) <= _CHART_LABEL else str(escape(_short(label)))
    forms = (shown, _BREAKS.sub(r"\1<wbr>", shown), md_cell(label), short)
    if len(_LABELS) < 65536:
        _LABELS[label] = forms
    return forms


def _group_sort_key(group: Mapping[str, Any]) -> tuple[float, str]:
    values = group.get("value") or (0.0,)
    label = group.get("group")
    return (-float(values[0]), "" if label is None else str(label))


def aggregation_context(
    spec: AggregationSpec | str,
    request: Mapping[str, Any] | None = None,
    state: AggregationState | None = None,
    *,
    html_id: str = "",
) -> dict[str, Any]:
    """What a template sees of one aggregation (see the module docstring).

    Takes the aggregation's spec, or (the older form) its title and request.
    """
    if isinstance(spec, AggregationSpec):
        title, address = spec.title, spec.address
        query_filter, groups, limit = spec.query_filter, list(spec.groups), spec.limit
    else:
        assert request is not None
        title, address = spec, ""
        query_filter = str(request["query_filter"])
        groups, limit = [str(g) for g in request["groups"]], int(request["limit"])
    query_text = describe_query(query_filter)
    group_text = describe_groups(groups)
    per = (
        f"one row per combination of {group_text}"
        if len(groups) > 1
        else f"one row per {group_text}"
    )
    context: dict[str, Any] = {
        "id": html_id or _html_id(address or title, set()),
        "address": address,
        "title": title,
        "query_filter": query_filter,
        "query_text": query_text,
        "group_by": groups,
        "group_by_text": group_text,
        "group_header": _group_header(groups),
        "limit": limit,
        "summary": f"{query_text}, counted by {group_text} ({per}, at most {limit}).",
        "fetched": False,
        "fetched_at": None,
        "total": None,
        "previous": None,
        "delta": None,
        "delta_ratio": None,
        "rows": [],
        "extra_value_count": 0,
        "groups_sum": 0.0,
        "truncated": False,
        "dropped": [],
        "notes": [],
        "chart": None,
        "trend": None,
        "table_html": Markup(""),
        "table_md": "",
        "cases_word": "cases",
        "change_text": "",
        "caption": "",
    }
    if state is None:
        return context
    result = state.result
    total = float(result["total"])
    history = History.from_entries(state.history)
    earlier_totals = history.totals()
    stamps = history.stamps()
    previous = bool(earlier_totals)
    before = history.latest_groups()
    # Absent from a full previous run: maybe cut, so unknown; else it had no cases.
    absent_is_zero = previous and len(before) < min(limit, HISTORY_GROUPS)
    raw_groups = sorted(result.get("groups") or (), key=_group_sort_key)
    largest = float((raw_groups[0].get("value") or (0.0,))[0]) if raw_groups else 0.0
    extra = max((len(g.get("value") or ()) - 1 for g in raw_groups), default=0)

    rows = []
    html_rows = []
    svg_bars = []
    md_rows = []
    described = []
    groups_sum = 0.0
    unknown_change = 0
    compare = previous
    y = 13  # baseline of the first label in the bar chart
    for group in raw_groups:
        raw = group.get("group")
        label = raw if type(raw) is str else "" if raw is None else str(raw)
        values = group.get("value") or _NO_VALUES
        count = values[0]
        groups_sum += count
        share = count / total if total else None
        was = before.get(label)
        previous_count: float | None
        change: float | None
        if was is not None:
            previous_count, change = was, count - was
        elif absent_is_zero:
            previous_count, change = 0.0, count
        else:
            previous_count = change = None
        bar = count / largest if largest else 0.0
        rows.append(
            {
                "label": label,
                "values": values,
                "count": count,
                "extra_values": values[1:],
                "share": share,
                "previous": previous_count,
                "change": change,
                "is_new": compare and was is None and absent_is_zero,
                "bar": bar,
            }
        )
        shown, cell, md_label, short = _LABELS.get(label) or _label_forms(label)
        count_text = number(count)
        share_text = percent(share)
        cells = md_cells = ""
        if compare:
            change_text = "new" if was is None and absent_is_zero else delta(change)
            if change is None:
                unknown_change = len(before)
            cells = f'<td class="num">{change_text}</td>'
            md_cells = f" {change_text} |"
        if extra:
            others = ", ".join([number(v) for v in values[1:]]) or "–"
            cells += f'<td class="num">{others}</td>'
            md_cells += f" {others} |"
        html_rows.append(
            f'<tr><th scope="row">{cell}</th><td class="num">{count_text}</td>'
            f'<td class="num">{share_text}</td>{cells}</tr>'
        )
        md_rows.append(f"| {md_label} | {count_text} | `{textbar(share)}` {share_text} |{md_cells}")
        value_text = f"{count_text} ({share_text})"
        svg_bars.append(
            # A tooltip only where the label is cut short (the table has every label).
            f"<g>{f'<title>{shown}</title>' if short is not shown else ''}"
            f'<text x="0" y="{y}">{short}</text>'
            f'<text class="value" x="100%" y="{y}" text-anchor="end">{value_text}</text>'
            f'<rect class="track" x="0" y="{y + 5}" width="100%" height="10" rx="2"/>'
            f'<rect class="bar" x="0" y="{y + 5}" width="{max(bar * 100, 0.5):.1f}%" '
            'height="10" rx="2"/></g>'
        )
        described.append(f"{label or '(empty)'}: {count_text}")
        y += _CHART_ROW
    listed = {row["label"] for row in rows}
    dropped = [
        {"label": str(label), "previous": float(count)}
        for label, count in sorted(before.items(), key=lambda kv: (-float(kv[1]), str(kv[0])))
        if str(label) not in listed
    ]
    truncated = len(rows) >= limit
    previous_total = earlier_totals[-1] if previous else None
    chart = None
    if rows:
        chart = {
            "height": len(rows) * _CHART_ROW + 2,
            "title": f"Bar chart: {title}",
            "summary": (
                f"Cases per group, out of {number(total)} in total: {'; '.join(described)}."
            ),
            "bars_svg": Markup("\n".join(svg_bars)),
        }
    if previous_total is None:
        change_text = "the first run: nothing to compare with yet"
    else:
        moved = total - previous_total
        ratio = f" ({delta_percent(moved / previous_total)})" if previous_total else ""
        change_text = (
            f"{delta(moved)}{ratio}" if moved else "no change"
        ) + f" since the previous run on {date(stamps[-1])}"
    context.update(
        fetched=True,
        fetched_at=state.fetched_at,
        cases_word="case" if total == 1 else "cases",
        change_text=change_text,
        caption=f"Cases by {group_text}"
        + (f"; change since {date(stamps[-1])}" if previous else ""),
        total=total,
        previous=(
            {"fetched_at": stamps[-1], "total": float(previous_total)}
            if previous_total is not None
            else None
        ),
        delta=None if previous_total is None else total - previous_total,
        delta_ratio=((total - previous_total) / previous_total if previous_total else None),
        rows=rows,
        extra_value_count=extra,
        groups_sum=groups_sum,
        truncated=truncated,
        dropped=dropped,
        notes=_notes(groups, limit, total, groups_sum, truncated, extra, unknown_change),
        chart=chart,
        trend=_trend(title, history, stamps, earlier_totals, state.fetched_at, total, rows, limit),
        table_html=Markup("\n".join(html_rows)),
        table_md="\n".join(md_rows),
    )
    return context


@functools.lru_cache(maxsize=4096)  # a report's page and the index show the same text
def _description(text: str | None) -> dict[str, Any]:
    blocks = parse_description(text) if text else ()
    return {
        "description": text,
        "description_html": description_html(blocks),
        "description_md": description_md(blocks),
        "description_text": description_text(blocks),
    }


def _files(report: ReportSpec) -> dict[str, str]:
    return {fmt: f"{report.name}{FORMAT_SUFFIXES[fmt]}" for fmt in report.formats}


def _freshness(aggregations: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    fetched = [a["fetched_at"] for a in aggregations if a["fetched"]]
    return {
        "newest": max(fetched) if fetched else None,
        "oldest": min(fetched) if fetched else None,
        "fetched": len(fetched),
        "pending": len(aggregations) - len(fetched),
    }


def _totals_rows(items: Sequence[Mapping[str, Any]], links: Sequence[str]) -> tuple[Markup, str]:
    """Rows of a "total per aggregation" table, as HTML (linked titles) and Markdown."""
    html = []
    markdown = []
    for item, href in zip(items, links, strict=True):
        if not item["fetched"]:
            total, change = "not fetched", "–"
        else:
            total = number(item["total"])
            change = delta(item["delta"]) if item["delta"] is not None else "first run"
        title = item["title"]
        html.append(
            f'<tr><th scope="row"><a href="{escape(href)}">{escape(title)}</a></th>'
            f'<td class="num">{total}</td><td class="num">{change}</td></tr>'
        )
        markdown.append(f"| {md_cell(title)} | {total} | {change} |")
    return Markup("\n".join(html)), "\n".join(markdown)


def report_context(
    report: ReportSpec, aggregations: Mapping[str, AggregationState], source: Source | None
) -> dict[str, Any]:
    """The context of a report page (every name is listed in the module docstring)."""
    taken: set[str] = set()
    entries = [
        aggregation_context(
            spec,
            state=aggregations.get(spec.address),
            html_id=_spec_anchor(spec, taken),
        )
        for spec in report.aggregations
    ]
    files = _files(report)
    source_context = _source_context(source)
    summary_html, summary_md = _totals_rows(entries, [f"#{entry['id']}" for entry in entries])
    return {
        "site_title": SITE_TITLE,
        "report": {
            "name": report.name,
            "title": report.title,
            **_description(report.description),
            "owner": report.owner,
            "formats": list(report.formats),
            "template": report.template,
            "files": files,
        },
        "source": source_context,
        "demo_notice": DEMO_NOTICE,
        "freshness": _freshness(entries),
        "compared": any(entry["previous"] for entry in entries),
        "links": {
            "index_html": "index.html",
            "index_md": "index.md",
            "html": files.get("html"),
            "markdown": files.get("markdown"),
            "pdf": files.get("pdf"),
        },
        "aggregations": entries,
        "summary_html": summary_html,
        "summary_md": summary_md,
    }


def _index_entry(
    report: ReportSpec, aggregations: Mapping[str, AggregationState]
) -> dict[str, Any]:
    files = _files(report)
    page_html = files.get("html") or files.get("markdown") or files.get("pdf") or ""
    page_md = files.get("markdown") or page_html
    taken: set[str] = set()
    entries: list[dict[str, Any]] = []
    for spec in report.aggregations:
        state = aggregations.get(spec.address)
        anchor = _spec_anchor(spec, taken)
        total = float(state.result["total"]) if state is not None else None
        previous = History.from_entries(state.history).latest_total() if state is not None else None
        entries.append(
            {
                "id": anchor,
                "title": spec.title,
                "fetched": state is not None,
                "fetched_at": state.fetched_at if state is not None else None,
                "total": total,
                "delta": (
                    total - float(previous) if total is not None and previous is not None else None
                ),
                "link_html": f"{page_html}#{anchor}" if "html" in files else page_html,
                "link_md": page_md,
            }
        )
    table_html, table_md = _totals_rows(entries, [entry["link_html"] for entry in entries])
    return {
        "name": report.name,
        "title": report.title,
        **_description(report.description),
        "owner": report.owner,
        "files": files,
        "link_html": page_html,
        "link_md": page_md,
        "freshness": _freshness(entries),
        "aggregations": entries,
        "table_html": table_html,
        "table_md": table_md,
    }


def index_context(
    reports: Sequence[ReportSpec],
    aggregations: Mapping[str, AggregationState],
    source: Source | None,
) -> dict[str, Any]:
    """The context of the index pages (every name is listed in the module docstring)."""
    entries = [_index_entry(r, aggregations) for r in sorted(reports, key=lambda r: r.name)]
    every = [a for entry in entries for a in entry["aggregations"]]
    return {
        "site_title": SITE_TITLE,
        "source": _source_context(source),
        "demo_notice": DEMO_NOTICE,
        "freshness": _freshness(every),
        "links": {"index_html": "index.html", "index_md": "index.md"},
        "reports": entries,
    }


# -- the Jinja2 environment ---------------------------------------------------------------


def _autoescape(name: str | None) -> bool:
    # On unless the template writes Markdown or text: safe by default for new HTML/SVG names.
    return name is None or not name.endswith((".md.j2", ".md", ".txt.j2", ".txt"))


@functools.cache
def _environment_class() -> type[jinja2.Environment]:
    import jinja2

    class Environment(jinja2.Environment):
        """``agg.total`` looks up the key of a dict first.

        Jinja2 tries the attribute first, so ``row.values`` would be ``dict.values`` and
        every other lookup would raise and catch an AttributeError first (slow).
        """

        def getattr(self, obj: Any, attribute: str) -> Any:
            if type(obj) is dict:
                try:
                    return obj[attribute]
                except KeyError:
                    pass
            return super().getattr(obj, attribute)

    return Environment


def environment(templates_dir: Path | None) -> jinja2.Environment:
    """The one Jinja2 environment: workspace templates first, then the built-in ones."""
    import jinja2

    folders = [str(BUILTIN_TEMPLATES)]
    if templates_dir is not None and templates_dir.is_dir():
        folders.insert(0, str(templates_dir))
    env = _environment_class()(
        loader=jinja2.FileSystemLoader(folders),
        undefined=jinja2.StrictUndefined,
        autoescape=_autoescape,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(FILTERS)
    return env


# -- rendering ----------------------------------------------------------------------------


def _render(env: jinja2.Environment, template_name: str, context: Mapping[str, Any]) -> str:
    import jinja2

    try:
        return env.get_template(template_name).render(context)
    except jinja2.TemplateNotFound as exc:
        raise RenderError(
            f"template {exc.name} not found in the workspace templates/ or the built-in ones; "
            f"create it or fix the report's `template:`"
        ) from None
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError(f"{exc.filename or template_name}:{exc.lineno}: {exc.message}") from None
    except jinja2.TemplateError as exc:
        # Runtime errors (an undefined name under StrictUndefined) carry no position.
        raise RenderError(f"{template_name}: {exc}") from None
    except UnicodeDecodeError as exc:  # a template file (this one or one it uses)
        raise RenderError(
            f"{template_name}: a template is not UTF-8 text (byte {exc.object[exc.start]:#04x} "
            f"at offset {exc.start}); save the templates as UTF-8"
        ) from None


def render_report(
    report: ReportSpec,
    aggregations: Mapping[str, AggregationState],
    source: Source | None,
    env: jinja2.Environment,
) -> Pages:
    """A report's pages in memory: site-relative file name -> content (bytes for PDF)."""
    for fmt in report.formats:
        if fmt not in _RENDERED_FORMATS:
            raise RenderError(
                f"{report.path}: format {fmt!r} cannot be rendered; "
                f"use {', '.join(_RENDERED_FORMATS)}"
            )
    with collector_paused():
        context = report_context(report, aggregations, source)
        pages: dict[str, str | bytes] = {}
        html: str | None = None
        for fmt in report.formats:
            name = f"{report.name}{FORMAT_SUFFIXES[fmt]}"
            if fmt == "pdf":
                continue
            text = _render(env, f"{report.template}.{_TEMPLATE_EXTENSIONS[fmt]}.j2", context)
            if fmt == "html":
                html = text
            pages[name] = text
    if "pdf" in report.formats:
        from casereport.render.pdf import print_pdf

        if html is None:
            html = _render(env, f"{report.template}.html.j2", context)
        pages[f"{report.name}.pdf"] = print_pdf(html, fixed_date=context["freshness"]["newest"])
    return {name: pages[name] for name in sorted(pages)}


def render_index(
    reports: Sequence[ReportSpec],
    aggregations: Mapping[str, AggregationState],
    source: Source | None,
    env: jinja2.Environment,
) -> dict[str, str]:
    """``index.html`` and ``index.md`` listing every report."""
    with collector_paused():
        context = index_context(reports, aggregations, source)
        return {name: _render(env, f"{name}.j2", context) for name in INDEX_FILES}


# -- many reports at once ----------------------------------------------------------------

# Below this many reports a site renders in well under a second: not worth a process.
PARALLEL_MIN_REPORTS = 64
# A cgroup (v2) CPU quota: "max 100000" for none, "200000 100000" for two CPUs' worth.
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")

Rendered = dict[str, Pages | RenderError]


def render_reports(
    reports: Sequence[ReportSpec],
    aggregations: Mapping[str, AggregationState],
    source: Source | None,
    env: jinja2.Environment,
    *,
    processes: int | None = None,
) -> Rendered:
    """Render many reports: report name -> its pages, or the RenderError that stopped it.

    Rendering is CPU-bound Python, so a large site is shared out among forked processes,
    one per available core (``processes`` overrides the count; 1 renders here only). Each
    child renders every n-th report and hands its pages back through a temporary file;
    the pages are the same whichever process renders them, so the result is too. A child
    never writes the site: if one fails in any way, this process renders its share itself,
    so an unexpected error surfaces here as it would without children.
    """
    count = process_count(len(reports)) if processes is None else max(1, processes)
    if count == 1:
        return _render_share(reports, aggregations, source, env)
    _preload_templates(env)
    shares = [reports[index::count] for index in range(count)]
    children: list[_Child | None] = []
    with collector_paused(), contextlib.ExitStack() as cleanup:
        for share in shares[1:]:
            child = _fork_share(share, aggregations, source, env)
            if child is not None:
                cleanup.callback(child.stop)  # however this ends, no child outlives it
            children.append(child)
        results = _render_share(shares[0], aggregations, source, env)
        for child, share in zip(children, shares[1:], strict=True):
            received = child.collect() if child is not None else None
            results.update(
                received
                if received is not None
                else _render_share(share, aggregations, source, env)
            )
    return {report.name: results[report.name] for report in reports}


def process_count(reports: int) -> int:
    """How many processes render a site of ``reports`` reports."""
    if reports < PARALLEL_MIN_REPORTS or sys.platform != "linux":
        # fork is what makes this cheap: children share the loaded state without copying
        # or pickling it. Linux only: elsewhere fork is missing or (macOS) unsafe.
        return 1
    return max(1, min(_usable_cores(), reports // PARALLEL_MIN_REPORTS))


def _usable_cores() -> int:
    """The cores this process may use: its CPU affinity, capped by a cgroup CPU quota
    (a container limited to 2 CPUs on a 64-core host sees 64 in its affinity)."""
    cores = len(os.sched_getaffinity(0))
    with contextlib.suppress(OSError, ValueError):
        quota, period = CGROUP_CPU_MAX.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, int(quota) // int(period)))
    return cores


def _each_rendered(
    reports: Sequence[ReportSpec],
    aggregations: Mapping[str, AggregationState],
    source: Source | None,
    env: jinja2.Environment,
) -> Iterator[tuple[str, Pages | RenderError]]:
    """Each report's name and pages (or render error), one at a time."""
    for report in reports:
        try:
            yield report.name, render_report(report, aggregations, source, env)
        except RenderError as exc:
            yield report.name, exc


def _render_share(
    reports: Sequence[ReportSpec],
    aggregations: Mapping[str, AggregationState],
    source: Source | None,
    env: jinja2.Environment,
) -> Rendered:
    return dict(_each_rendered(reports, aggregations, source, env))


def _preload_templates(env: jinja2.Environment) -> None:
    """Compile every template once, before forking, rather than once in every process."""
    import jinja2

    for name in env.list_templates(extensions=["j2"]):
        # A broken template is reported by the render that needs it.
        with contextlib.suppress(jinja2.TemplateError, UnicodeDecodeError):
            env.get_template(name)


class _Child:
    """A forked process rendering a share of the reports into a temporary file."""

    def __init__(self, pid: int, output: IO[bytes]) -> None:
        self.pid = pid
        self.output = output
        self.running = True

    def collect(self) -> Rendered | None:
        """Wait for the child; its results, or None if it failed (its share is then redone)."""
        _, status = os.waitpid(self.pid, 0)
        self.running = False
        if os.waitstatus_to_exitcode(status) != 0:
            return None
        self.output.seek(0)
        results: Rendered = {}
        try:
            while True:
                name, value = pickle.load(self.output)
                if name is None:  # the child's end mark: everything arrived
                    return results
                results[name] = RenderError(value) if isinstance(value, str) else value
        except (pickle.UnpicklingError, EOFError, ValueError):
            return None

    def stop(self) -> None:
        if self.running:  # this process is leaving early (Ctrl-C, an error): end the child
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
            self.running = False
        self.output.close()


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _fork_share(
    reports: Sequence[ReportSpec],
    aggregations: Mapping[str, AggregationState],
    source: Source | None,
    env: jinja2.Environment,
) -> _Child | None:
    """A child rendering ``reports``, or None if none could be started (then render here)."""
    try:
        # Owned by the _Child from here on, which closes it in stop().
        output = tempfile.TemporaryFile(prefix="casereport-render-")  # noqa: SIM115
    except OSError:
        return None
    # Ctrl-C waits until the child has its own handling: a child interrupted before that
    # would unwind this process's stack, and release the state lock the parent holds.
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        pid = os.fork()
    except OSError:  # out of processes or memory: this process renders the share itself
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        output.close()
        return None
    if pid:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        return _Child(pid, output)
    code = 1
    try:
        # A stop signal now ends the child at once, running no code of the parent's.
        for number in _STOP_SIGNALS:
            signal.signal(number, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        _close_inherited_files(keep=output.fileno())
        # Each report as it is done, so little is left to hand over when the last one is.
        for name, value in _each_rendered(reports, aggregations, source, env):
            # A render error travels as its message: exceptions do not pickle reliably.
            shipped = value.message if isinstance(value, RenderError) else value
            pickle.dump((name, shipped), output, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.dump((None, None), output)
        output.flush()
        code = 0
    finally:
        # Straight out: no atexit handlers, no cleanup of what belongs to the parent.
        os._exit(code)


def _close_inherited_files(keep: int) -> None:
    """Close every file descriptor but 0-2 and ``keep``, the state lock above all: a lock
    is released when its last holder closes it, and if the parent is killed the next run
    must find it free at once, not when this child is done."""
    try:
        open_fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: every possible number (slow only where the limit is huge)
        os.closerange(3, keep)
        os.closerange(keep + 1, os.sysconf("SC_OPEN_MAX"))
        return
    for fd in open_fds:  # only the open ones
        if fd > 2 and fd != keep:
            with contextlib.suppress(OSError):  # the listing's own descriptor, now closed
                os.close(fd)


# -- writing the site ---------------------------------------------------------------------


def content_hash(content: str | bytes) -> str:
    """sha256 of a page as written (UTF-8 for text)."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    return hashlib.sha256(data).hexdigest()


def write_site_files(site_dir: Path, files: Pages) -> dict[str, str]:
    """Write each file atomically; return name -> sha256 of what was written."""
    hashes = {}
    for name in sorted(files):
        content = files[name]
        if isinstance(content, bytes):
            atomic_write_bytes(site_dir / name, content)
        else:
            atomic_write_text(site_dir / name, content)
        hashes[name] = content_hash(content)
    return hashes


def remove_site_files(site_dir: Path, names: Iterable[str]) -> None:
    """Remove those site files; one already gone is fine."""
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            (site_dir / name).unlink()


def clean_partial_writes(site_dir: Path) -> None:
    """Remove temporary files left by an interrupted atomic write (``.<name>.*.tmp``)."""
    if site_dir.is_dir():
        for leftover in site_dir.glob(".*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
