"""What casereport writes to a terminal carries no control sequence it did not mean.

Report files (titles, queries, ``for_each`` keys), file names, state and plans, and the
API (group values, servers' error messages) are not trusted to drive the terminal: an
escape sequence among them could rewrite earlier lines, hide text, set the window title
or, on some terminals, answer back. So while a command runs, its standard output and
error pass through ``clean``, in one place (``casereport.cli``), rather than at each of
the many places that put data into messages; C0 and C1 control characters and DEL become
visible escapes (ESC is shown as ``\\u001b``), newlines and tabs stay as layout.

The ``\\u00XX`` form is chosen because it keeps JSON output valid and unchanged in meaning
(JSON escapes the same way; ``json.dumps`` leaves only DEL and C1 characters raw), and
it is as visible as ``\\x1b`` elsewhere. Colour (the plan's, on a terminal) and the
progress bar are ours: they write to ``raw`` streams, and the plan view escapes each value
it shows with ``escape``.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator
from typing import Any, TextIO

__all__ = ["clean", "clean_output", "disable_colour", "escape", "raw", "use_colour"]

# C0 but tab and newline, DEL, C1 (ESC is \x1b; CSI is \x1b[ or the single \x9b).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_ANY_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


# Set by --no-color for the rest of the command; each command starts with it unset.
_colour_disabled = False


def disable_colour(disabled: bool = True) -> None:
    """No colour for the rest of this command (``--no-color``); ``False`` clears it."""
    global _colour_disabled
    _colour_disabled = disabled


def use_colour(stream_is_tty: bool) -> bool:
    """Colour only on a terminal, never with --no-color, NO_COLOR set (https://no-color.org)
    or TERM=dumb."""
    if _colour_disabled or not stream_is_tty or os.environ.get("NO_COLOR"):
        return False
    return os.environ.get("TERM") != "dumb"


def _visible(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def clean(text: str) -> str:
    """``text`` with every control character but newline and tab made visible."""
    if text.isprintable():  # (the usual line: nothing to look for)
        return text
    return _CONTROL.sub(_visible, text)


def escape(text: str) -> str:
    """One value shown inside a line: every control character visible, newline and tab
    included (a value must not start lines of its own)."""
    if text.isprintable():
        return text
    return _ANY_CONTROL.sub(_visible, text)


class _CleanWriter:
    """A text stream that cleans what is written to it, and is otherwise the stream."""

    def __init__(self, stream: TextIO) -> None:
        self._casereport_raw = stream

    def write(self, text: str) -> int:
        self._casereport_raw.write(clean(text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._casereport_raw, name)


def raw(stream: TextIO) -> TextIO:
    """The stream under a cleaning one (for our own colour and progress bar)."""
    underlying: TextIO = getattr(stream, "_casereport_raw", stream)
    return underlying


@contextlib.contextmanager
def clean_output() -> Iterator[None]:
    """Standard output and error cleaned (see the module docstring) inside the block."""
    saved = sys.stdout, sys.stderr
    if isinstance(sys.stdout, _CleanWriter) or sys.stdout is None or sys.stderr is None:
        yield  # (already cleaned, or no streams to clean)
        return
    sys.stdout = _CleanWriter(sys.stdout)
    sys.stderr = _CleanWriter(sys.stderr)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
