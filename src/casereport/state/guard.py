"""The last look before a state write: is the state what this run read, the lock its own?

A run stopped while it held the lock (SIGSTOP, a suspended laptop, a stalled CI runner)
can lose it to ``force-unlock``; the run after it then writes a newer state. When the
first run goes on, this check stops it before it writes pages or state over that newer
one: the state file must still carry the lineage and serial the run read, and the lock
file must still be the one it locked (same inode, same ID).
"""

from __future__ import annotations

import re
from pathlib import Path

import orjson

from casereport.errors import StateError
from casereport.state.lock import verify_held


def check_unchanged(path: Path, expected: tuple[str, int] | None) -> None:
    """Refuse to write unless the state file is still ``previous`` and the lock still ours.

    A run whose lock was removed (``force-unlock`` while it was stopped, say) may find a
    newer state written by another run: writing over it would lose that run's results.
    Checked right before each write, under the lock the writer believes it holds;
    ``expected`` is the (lineage, serial) the writer read, or None when it read no state.
    """
    verify_held(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = None
    except OSError as exc:
        raise StateError(f"{path}: cannot read the state: {exc.strerror or exc}") from None
    if expected is None and data is None:
        return
    found = _lineage_and_serial(data) if data is not None else None
    if expected is not None and found == expected:
        return
    read = "no state" if expected is None else f"serial {expected[1]}"
    now = "none" if found is None else f"serial {found[1]}"
    if found is not None and expected is not None and found[0] != expected[0]:
        now = f"another state (lineage {found[0]})"
    raise StateError(
        f"{path}: the state changed since this run read it ({read}, now {now}): another run "
        "wrote it; this run wrote nothing; run it again"
    )


_LINEAGE = re.compile(rb'\n  "lineage": "([^"\\\n]*)",?\n')
_SERIAL = re.compile(rb'\n  "serial": (\d+),?\n')


def _lineage_and_serial(data: bytes) -> tuple[str, int] | None:
    """The lineage and serial of state bytes, without parsing the whole file.

    ``serialise`` writes the top-level keys at an indent of two and everything nested
    deeper, so the two-space lines are the top-level ones (found with ``rfind``, which
    costs little on a state of many megabytes); a file written otherwise is parsed in full.
    """
    found = []
    for key, pattern in ((b"lineage", _LINEAGE), (b"serial", _SERIAL)):
        at = data.rfind(b'\n  "' + key + b'": ')
        match = pattern.match(data, at) if at >= 0 else None
        if match is None:
            break
        found.append(match.group(1))
    else:
        return found[0].decode("utf-8", "replace"), int(found[1])
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(raw, dict):
        return None
    lineage, serial = raw.get("lineage"), raw.get("serial")
    if isinstance(lineage, str) and type(serial) is int:
        return lineage, serial
    return None
