"""The apply journal: results checkpointed as they arrive, cheaper than rewriting state.

Rewriting a large state file for every result would cost more than fetching it, so apply
appends each result as one JSON line to ``<state>.journal`` and writes the state once at
the end. A background thread writes and fsyncs the lines in batches (group commit), so
the event loop never waits on the disk and a crash loses only results not yet synced.

The first line names the state the journal extends (``lineage``, ``serial``). A journal
whose header does not match the state file (say the apply finished writing the state but
died before removing the journal) is obsolete and ignored; a torn last line is ignored,
and so is a journal without a single whole entry. Replaying sets the state's source to the
journal's (results carry their source), putting the state's results of another source
aside as ``switch_source`` does.

The header also carries the ``apply --refresh`` the run is doing (``refresh``), so that a
kill leaves it recorded as unfinished in the state the journal is folded into, with no
result yet if none arrived.

Each apply's journal is a file of its own (created anew, never truncated in place), and a
run removes only its own: a run whose lock was removed while it was stopped must not
scribble over, or delete, the journal of the run that took the lock after it.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from casereport.errors import StateError
from casereport.state.model import (
    AggregationState,
    Source,
    State,
    load_state,
    new_state,
    parse_aggregation,
    switch_source,
    write_state,
)
from casereport.state.refresh import UnfinishedRefresh, parse_unfinished_refresh

JOURNAL_VERSION = 1


def journal_path(state_path: Path) -> Path:
    return state_path.with_name(state_path.name + ".journal")


class Journal:
    """Append-only log of fetched aggregations, synced by a writer thread."""

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # A new file, not the old one truncated: a stopped run still holding the old
            # one's descriptor then writes into a file nobody reads.
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            self._file = open(  # noqa: SIM115 - closed by close()
                os.open(path, flags, 0o644), "w", encoding="utf-8"
            )
            self.inode = os.fstat(self._file.fileno()).st_ino
        except OSError as exc:
            raise StateError(f"{path}: cannot write the apply journal: {exc.strerror}") from None
        try:
            self._file.write(json.dumps(header, sort_keys=True) + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as exc:
            with contextlib.suppress(OSError):
                self._file.close()
            raise StateError(f"{path}: cannot write the apply journal: {exc.strerror}") from None
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self.error: OSError | None = None  # the first failed write, if any
        self._thread = threading.Thread(target=self._write, name="casereport-journal", daemon=True)
        self._thread.start()

    @classmethod
    def open(
        cls,
        state_path: Path,
        base: State | None,
        source: Source,
        refresh: UnfinishedRefresh | None = None,
    ) -> Journal:
        """Start a journal extending ``base`` (the state as on disk) with ``source``'s data
        (``refresh``: the ``apply --refresh`` this run does, if it does one)."""
        header: dict[str, Any] = {
            "journal": JOURNAL_VERSION,
            "lineage": base.lineage if base is not None else None,
            "serial": base.serial if base is not None else 0,
            "source": source.to_json(),
        }
        if refresh is not None:
            header["refresh"] = refresh.to_json()
        return cls(journal_path(state_path), header)

    def append(self, entries: Sequence[AggregationState]) -> None:
        """Queue entries for writing; returns at once."""
        for entry in entries:
            line = {"address": entry.address, "entry": entry.to_json()}
            self._queue.put(json.dumps(line, sort_keys=True, ensure_ascii=False) + "\n")

    def _write(self) -> None:
        failed = False
        while True:
            item = self._queue.get()
            batch = [item]
            with contextlib.suppress(queue.Empty):
                while True:
                    batch.append(self._queue.get_nowait())
            lines = [line for line in batch if line is not None]
            if lines and not failed:
                try:
                    self._file.write("".join(lines))
                    self._file.flush()
                    os.fsync(self._file.fileno())
                except OSError as exc:
                    # The journal is only a checkpoint: apply goes on and writes the state at
                    # the end; an interruption from here on loses what was not synced.
                    self.error = exc
                    failed = True
            if None in batch:
                return

    def close(self) -> None:
        """Sync everything queued, then close."""
        self._queue.put(None)
        self._thread.join()
        with contextlib.suppress(OSError):
            self._file.close()


def _header_source(header: dict[str, Any]) -> Source | None:
    raw = header.get("source")
    if not isinstance(raw, dict):
        return None
    kind, site, detail = raw.get("kind"), raw.get("site"), raw.get("detail", "")
    if not (isinstance(kind, str) and isinstance(site, str) and isinstance(detail, str)):
        return None
    return Source(kind, site, detail)


def _replay(state_path: Path, base: State | None) -> State | None:
    """``base`` with the journal's entries applied, or None when there is nothing to apply."""
    path = journal_path(state_path)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(
            f"{path}: cannot read the apply journal: {exc.strerror or exc}; "
            "move it away to ignore what the interrupted apply fetched"
        ) from None
    try:
        header = json.loads(lines[0]) if lines else None
    except ValueError:
        header = None
    expected_lineage = base.lineage if base is not None else None
    expected_serial = base.serial if base is not None else 0
    if (
        not isinstance(header, dict)
        or header.get("journal") != JOURNAL_VERSION
        or header.get("lineage") != expected_lineage
        or header.get("serial") != expected_serial
    ):
        return None
    source = _header_source(header)
    if source is None:
        return None
    refresh = None
    if "refresh" in header:
        try:
            refresh = parse_unfinished_refresh(header["refresh"])
        except ValueError:
            return None
    # Results from another source are not comparable: they are put aside, not mixed in.
    current = switch_source(base, source) if base is not None else new_state()
    aggregations = dict(current.aggregations)
    replayed = 0
    for line in lines[1:]:
        try:
            record = json.loads(line)
            address = record["address"]
            if not isinstance(address, str):
                raise TypeError("address is not a string")
            aggregations[address] = parse_aggregation(path, address, record["entry"])
        except (ValueError, KeyError, TypeError, StateError):
            break  # a torn last line: the apply died while writing it
        replayed += 1
    if not replayed:
        # Killed before its first result: still a refresh to finish, of the same source's
        # results (a change of source fetches everything anyway).
        if refresh is None or base is None or base.unfinished_refresh == refresh:
            return None
        if base.source is None or base.source.identity != source.identity:
            return None
        return replace(base, unfinished_refresh=refresh)
    # Results carry their source: once one arrived, the state's source is the journal's.
    return replace(
        current,
        aggregations=aggregations,
        source=source,
        unfinished_refresh=refresh if refresh is not None else current.unfinished_refresh,
    )


def read_both(state_path: Path) -> tuple[State | None, State | None]:
    """The state file as it is, and as an interrupted apply's journal leaves it."""
    base = load_state(state_path)
    replayed = _replay(state_path, base)
    return base, (replayed if replayed is not None else base)


def load_with_journal(state_path: Path) -> State | None:
    """The state as an interrupted apply left it (read-only: writes nothing)."""
    base = load_state(state_path)
    replayed = _replay(state_path, base)
    return replayed if replayed is not None else base


def recover(state_path: Path) -> State | None:
    """Fold a leftover journal into the state file, then remove it (hold the lock)."""
    base = load_state(state_path)
    replayed = _replay(state_path, base)
    if replayed is not None:
        base = write_state(state_path, replayed, base)
    discard(state_path)
    return base


def discard(state_path: Path, own: Journal | None = None) -> None:
    """Remove the journal; with ``own``, only if the file still is that journal."""
    path = journal_path(state_path)
    if own is not None:
        try:
            if os.stat(path, follow_symlinks=False).st_ino != own.inode:
                return  # another run's journal: not ours to remove
        except FileNotFoundError:
            return
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
