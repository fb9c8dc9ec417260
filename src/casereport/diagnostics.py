"""Source snippets under located messages, as rustc and Terraform show them.

A message that starts ``file:line:col: error:`` (or ``file:line: error:``, for a
template) is followed by the line it points at, with a line-number gutter and carets
under the span::

    reports/backlog.yaml:4:26: error: invalid query_filter: unbalanced ')'
       |
     4 |     query_filter: "status:open)"
       |                              ^

The first line stays exactly as it was (scripts and tests grep it); the snippet is
only added. An error about a command-line argument (``casereport query``'s QUERY) shows
that argument the same way, without a line number.

A span is known when the producer gave its end (``end_column``); otherwise it is read
from the source: a quoted scalar to its closing quote, a key up to its
``:`` or ``=``, a plain value up to a comment or the end of the line, a template line
from its first non-blank character. The file's text comes from disk and is shown with
control characters escaped (``terminal.escape``): report files are not trusted to drive
the terminal. Colour is the caller's choice (``terminal.use_colour``).

This module sits at the bottom layer with ``errors`` and ``terminal``, so definitions,
settings, templates and the CLI's one-line errors all share it.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from casereport.errors import ApiError, CaseReportError
from casereport.terminal import escape

__all__ = [
    "Span",
    "annotate",
    "argument_snippet",
    "infer_span",
    "snippet",
    "source_line",
    "span_of",
    "with_source",
]

# "path:12:5: error: ..." or "path:12: warning: ..." at the start of a line.
_LOCATED = re.compile(r"^(?P<file>[^\n]+?):(?P<line>\d+):(?:(?P<column>\d+):)? (?:error|warning): ")
_RED, _BLUE, _BOLD, _RESET = "\x1b[31m", "\x1b[34m", "\x1b[1m", "\x1b[0m"
# Past these, a snippet would be noise (a minified file, a runaway line).
_MAX_SHOWN = 240


class Span(NamedTuple):
    """1-based start and end of a span on one line; ``end_column`` is just past it."""

    line: int
    column: int
    end_line: int
    end_column: int


def _lines(file: str) -> tuple[str, ...] | None:
    """The file's lines, or None when it cannot be read as text."""
    try:
        path = Path(file).resolve()
        stat = path.stat()
    except (OSError, ValueError):
        return None
    # Many messages point into one file: read it once per version of it.
    return _read_lines(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=64)
def _read_lines(path: Path, mtime_ns: int, size: int) -> tuple[str, ...] | None:
    try:
        return tuple(path.read_text(encoding="utf-8").splitlines())
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def source_line(file: str, line: int) -> str | None:
    """Line ``line`` (1-based) of ``file``, or None when there is no such line."""
    lines = _lines(file)
    if lines is None or not 1 <= line <= len(lines):
        return None
    return lines[line - 1]


def _quoted_end(text: str, start: int) -> int:
    """Index just past the quoted scalar opening at ``start`` (end of line if unclosed)."""
    quote = text[start]
    i = start + 1
    while i < len(text):
        char = text[i]
        if quote == '"' and char == "\\":
            i += 2
            continue
        if char == quote:
            if quote == "'" and text[i + 1 : i + 2] == "'":  # '' is one quote in '...'
                i += 2
                continue
            return i + 1
        i += 1
    return len(text)


def _token_end(text: str, start: int) -> int:
    """Index just past the key or plain value that starts at ``start``."""
    rest = text[start:]
    if rest[:1] in ('"', "'"):
        return _quoted_end(text, start)
    in_flow = "[" in text[:start] or "{" in text[:start]
    stops = [r"\s#", r":(?=\s|$)", r"\s*=", r"\s*$"]
    if in_flow:
        stops.append(r"\s*[,\]}]")
    match = re.search("|".join(stops), rest)
    end = start + (match.start() if match else len(rest))
    while end > start + 1 and text[end - 1].isspace():
        end -= 1
    return max(end, start + 1)


def infer_span(file: str, line: int, column: int | None) -> Span:
    """The span a message at ``line:column`` of ``file`` points at, read from the source
    (the whole line from its first non-blank character when there is no column)."""
    text = source_line(file, line)
    if text is None:
        start = column or 1
        return Span(line, start, line, start + 1)
    if column is None:
        stripped = len(text) - len(text.lstrip())
        return Span(line, stripped + 1, line, max(len(text.rstrip()), stripped + 1) + 1)
    start = min(column - 1, len(text))
    return Span(line, column, line, _token_end(text, start) + 1)


def span_of(
    file: str | None, line: int | None, column: int | None, end_column: int | None = None
) -> Span | None:
    """The span of a located message: the given end when known, else ``infer_span``."""
    if file is None or line is None:
        return None
    if column is not None and end_column is not None and end_column > column:
        return Span(line, column, line, end_column)
    return infer_span(file, line, column)


def _width(text: str) -> int:
    """Terminal columns ``text`` takes: two for a wide character (CJK, most emoji)."""
    if text.isascii():
        return len(text)
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


# A settings key that names an environment variable (``secret_env``, ``webhook_url_env``):
# when its value is wrong it is often the secret itself, pasted in. The error line never
# repeats it; the snippet would print the whole line into a CI log, so there is none.
_ENV_NAME_KEY = re.compile(r"""\s*["']?[A-Za-z0-9_.-]*_env["']?\s*=""")


def _may_hold_a_secret(file: str, text: str) -> bool:
    return file.endswith(".toml") and _ENV_NAME_KEY.match(text) is not None


def snippet(span: Span, file: str, *, colour: bool = False) -> str:
    """The gutter, the source line and carets under ``span`` (empty without the line)."""
    text = source_line(file, span.line)
    if text is None or _may_hold_a_secret(file, text):
        return ""
    start = min(span.column - 1, len(text))
    end = max(start + 1, min(span.end_column - 1, len(text) + 1))
    return _underlined(text, start, end, str(span.line), colour=colour)


def argument_snippet(text: str, index: int, *, colour: bool = False) -> str:
    """A command-line argument (``casereport query``'s QUERY) with a caret under the
    character at 0-based ``index``, in the gutter of a file's snippet, without a number."""
    start = min(max(index, 0), len(text))
    return _underlined(text, start, start + 1, "", colour=colour)


def _underlined(text: str, start: int, end: int, number: str, *, colour: bool) -> str:
    """The gutter, ``text`` and carets under ``text[start:end]``."""
    if len(text) > _MAX_SHOWN:
        if start > _MAX_SHOWN - 20:
            return ""
        text = text[:_MAX_SHOWN] + "…"
        end = min(end, len(text))
    # Escape piece by piece, so the carets stay under the characters they mark.
    before, marked = escape(text[:start]), escape(text[start:end]) or " "
    after = escape(text[end:])
    pad = " " * len(number)
    carets = "^" * _width(marked)
    if colour:
        number, bar = f"{_BLUE}{number}{_RESET}", f"{_BLUE}|{_RESET}"
        carets = f"{_BOLD}{_RED}{carets}{_RESET}"
    else:
        bar = "|"
    return (
        f"{pad} {bar}\n{number} {bar} {before}{marked}{after}".rstrip()
        + f"\n{pad} {bar} {' ' * _width(before)}{carets}"
    )


def annotate(
    message: str, *, colour: bool = False, ends: Mapping[tuple[str, int, int], int] | None = None
) -> str:
    """``message`` with a snippet under each of its lines that names a place in a file
    that can be read; every line of the message is kept as it was. ``ends`` gives the
    end column of spans the producer knew (``CaseReportError.span_ends``)."""
    out: list[str] = []
    for line in message.split("\n"):
        out.append(line)
        match = _LOCATED.match(line)
        if match is None:
            continue
        file, number = match["file"], int(match["line"])
        if ": " in file and source_line(file, number) is None:
            # "report NAME: path:3: error: ...": a render error names its report first.
            file = file.rsplit(": ", 1)[1]
        column = int(match["column"]) if match["column"] else None
        end = (ends or {}).get((file, number, column or 0))
        span = span_of(file, number, column, end) or infer_span(file, number, column)
        shown = snippet(span, file, colour=colour)
        if shown:
            out.append(shown)
    return "\n".join(out)


def with_source(error: CaseReportError, *, colour: bool = False) -> str:
    """``error``'s message with the snippets ``annotate`` adds. Not an API error's: its
    message holds a server's words, which must not make us print a line of a local file."""
    if isinstance(error, ApiError):
        return error.message
    message = annotate(error.message, colour=colour, ends=error.span_ends)
    if error.argument is not None:
        shown = argument_snippet(*error.argument, colour=colour)
        if shown:
            message = f"{message}\n{shown}"
    return message
