"""The apply journal: results checkpointed as they arrive, cheaper than rewriting state.

Rewriting a large state file for every result would cost more than fetching it, so apply
appends each result as one JSON line to ``<state>.journal`` and writes the state once at
the end. A background thread writes and fsyncs the lines in batches (group commit), so
the event loop never waits on the disk and a crash loses only results not yet synced.

The first line names the state the journal extends (``lineage``, ``serial``). A journal
whose header does not match the state file (say the apply finished writing the state but
died before removing the journal) is obsolete and ignored; a torn last line is ignored.
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
from casereport.state import (
    AggregationState,
    Source,
    State,
    load_state,
    new_state,
    parse_aggregation,
    write_state,
)

JOURNAL_VERSION = 1


def journal_path(state_path: Path) -> Path:
    return state_path.with_name(state_path.name + ".journal")


class Journal:
    """Append-only log of fetched aggregations, synced by a writer thread."""

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self._file.write(json.dumps(header, sort_keys=True) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._write, name="casereport-journal", daemon=True)
        self._thread.start()

    @classmethod
    def open(cls, state_path: Path, base: State | None, source: Source) -> Journal:
        """Start a journal extending ``base`` (the state as on disk) with ``source``'s data."""
        header = {
            "journal": JOURNAL_VERSION,
            "lineage": base.lineage if base is not None else None,
            "serial": base.serial if base is not None else 0,
            "source": source.to_json(),
        }
        return cls(journal_path(state_path), header)

    def append(self, entries: Sequence[AggregationState]) -> None:
        """Queue entries for writing; returns at once."""
        for entry in entries:
            line = {"address": entry.address, "entry": entry.to_json()}
            self._queue.put(json.dumps(line, sort_keys=True, ensure_ascii=False) + "\n")

    def _write(self) -> None:
        while True:
            item = self._queue.get()
            batch = [item]
            with contextlib.suppress(queue.Empty):
                while True:
                    batch.append(self._queue.get_nowait())
            lines = [line for line in batch if line is not None]
            if lines:
                self._file.write("".join(lines))
                self._file.flush()
                os.fsync(self._file.fileno())
            if None in batch:
                return

    def close(self) -> None:
        """Sync everything queued, then close."""
        self._queue.put(None)
        self._thread.join()
        self._file.close()


def _replay(state_path: Path, base: State | None) -> State | None:
    """``base`` with the journal's entries applied, or None when there is nothing to apply."""
    path = journal_path(state_path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None
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
    aggregations = dict(base.aggregations) if base is not None else {}
    for line in lines[1:]:
        try:
            record = json.loads(line)
            address = record["address"]
            aggregations[address] = parse_aggregation(path, address, record["entry"])
        except (ValueError, KeyError, TypeError, StateError):
            break  # a torn last line: the apply died while writing it
    current = base if base is not None else new_state()
    source = header.get("source")
    if isinstance(source, dict) and len(lines) > 1:
        current = replace(
            current, source=Source(str(source["kind"]), str(source["site"]), str(source["detail"]))
        )
    return replace(current, aggregations=aggregations)


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


def discard(state_path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        journal_path(state_path).unlink()
