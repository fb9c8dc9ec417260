"""Operator commands on state: ``state list|show|rm|mv``, ``show`` and ``force-unlock``."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from casereport.errors import StateError
from casereport.numbers import count_of, format_number
from casereport.state import journal
from casereport.state.lock import LockInfo, force_unlock, state_lock
from casereport.state.model import State, remove_addresses, write_state
from casereport.state.moves import address_kind, apply_moves, moves_for


def _require(state: State | None, path: Path) -> State:
    if state is None:
        raise StateError(f"no state at {path}; run `casereport apply` first")
    return state


def list_addresses(state_path: Path, prefixes: tuple[str, ...] = ()) -> list[str]:
    """Aggregation addresses in state, sorted; only those under ``prefixes`` if given."""
    state = _require(journal.load_with_journal(state_path), state_path)
    return [
        address
        for address in sorted(state.aggregations)
        if not prefixes
        or any(address == p or address.startswith((f"{p}.", f"{p}[")) for p in prefixes)
    ]


def show_address(state_path: Path, address: str) -> str:
    """One aggregation's state entry as indented JSON."""
    state = _require(journal.load_with_journal(state_path), state_path)
    entry = state.aggregations.get(address)
    if entry is None:
        raise StateError(
            f"no aggregation {address!r} in {state_path}; `casereport state list` shows them"
        )
    return json.dumps({address: entry.to_json()}, indent=2, sort_keys=True, ensure_ascii=False)


def remove(state_path: Path, addresses: tuple[str, ...], *, lock_timeout: float = 0.0) -> list[str]:
    """Forget aggregations (or whole reports) in state; the next apply fetches them anew."""
    with state_lock(state_path, "state rm", timeout=lock_timeout):
        state = _require(journal.recover(state_path), state_path)
        removed: set[str] = set()
        reports: set[str] = set()
        for wanted in addresses:
            matches = {
                a
                for a, entry in state.aggregations.items()
                if a == wanted or entry.report == wanted or a.startswith(f"{wanted}[")
            }
            if not matches and wanted not in state.reports:
                raise StateError(
                    f"no aggregation or report {wanted!r} in {state_path}; nothing was removed"
                )
            removed |= matches
            if wanted in state.reports:
                reports.add(wanted)
        updated = remove_addresses(state, removed)
        if reports:
            # Its pages are remembered, so the next apply or render removes them (and the
            # index entry) when the report is no longer defined, or takes them over when it is.
            forgotten = dict(updated.forgotten_pages)
            forgotten.update({name: dict(state.reports[name].outputs) for name in reports})
            updated = replace(
                updated,
                reports={n: r for n, r in updated.reports.items() if n not in reports},
                forgotten_pages=forgotten,
            )
        write_state(state_path, updated, state)
    return sorted(removed | reports)


def move(
    state_path: Path, source: str, destination: str, *, lock_timeout: float = 0.0
) -> list[tuple[str, str]]:
    """Move a report or an address in state, results and history kept (``state mv``).

    A report's pages are put with those ``state rm`` forgot: the next apply removes them
    (the renamed report renders its own), unless a report of that name is defined again.
    Returns the moves made, ``(old, new)`` sorted.
    """
    kind, target_kind = address_kind(source), address_kind(destination)
    for address, what in ((source, "source"), (destination, "destination")):
        if address_kind(address) is None:
            raise StateError(
                f"{what} {address!r} is not a report or an address "
                '(report, report.aggregation or report.aggregation["key"])'
            )
    if source == destination:
        raise StateError(
            f"{source!r} is both the source and the destination; give the address to move it to"
        )
    with state_lock(state_path, "state mv", timeout=lock_timeout):
        state = _require(journal.recover(state_path), state_path)
        moves = moves_for(state.aggregations, source, destination)
        is_report = source in state.reports
        several = any(a.startswith(f"{source}[") for a in state.aggregations)
        if not moves and not is_report and not several:
            raise StateError(f"no report or aggregation {source!r} in {state_path}; nothing moved")
        if (kind == "report") != (target_kind == "report") or (
            several and target_kind == "instance"
        ):
            what = "a report" if kind == "report" else "an aggregation"
            raise StateError(
                f"cannot move {what} ({source!r}) to {destination!r}: "
                "move a report to a report, an aggregation to an aggregation"
            )
        clash = sorted(set(moves.values()) & set(state.aggregations))
        if clash or (kind == "report" and destination in state.reports):
            held = clash[0] if clash else destination
            raise StateError(
                f"{held!r} is already in {state_path}; `casereport state rm` it first "
                "if it is to be replaced"
            )
        updated = replace(state, aggregations=apply_moves(state.aggregations, moves))
        if is_report:
            forgotten = dict(updated.forgotten_pages)
            forgotten[source] = dict(state.reports[source].outputs)
            updated = replace(
                updated,
                reports={n: r for n, r in state.reports.items() if n != source},
                forgotten_pages=forgotten,
            )
        write_state(state_path, updated, state)
    done = sorted(moves.items())
    return [(source, destination), *done] if is_report else done


def describe_state(state_path: Path) -> str:
    """``casereport show``: the state in brief, one line per aggregation."""
    state = _require(journal.load_with_journal(state_path), state_path)
    lines = [
        f"State {state_path}: serial {state.serial}, lineage {state.lineage}",
        f"Source: {state.source.describe() if state.source else 'none yet'}",
        "",
    ]
    for address in sorted(state.aggregations):
        entry = state.aggregations[address]
        total = format_number(float(entry.result.get("total", 0)))
        groups = count_of(len(entry.result.get("groups", ())), "group")
        earlier = count_of(len(entry.history), "earlier result")
        lines.append(f"{address}: total {total}, {groups}, fetched {entry.fetched_at}, {earlier}")
    lines += ["", f"Reports: {', '.join(sorted(state.reports)) or 'none rendered yet'}"]
    return "\n".join(lines)


# The shape of `show --json`; a change that breaks a reader raises it.
SHOW_JSON_FORMAT_VERSION = 1


def state_json(state_path: Path, casereport_version: str) -> str:
    """``casereport show --json``: the state's content, wrapped with the versions of this
    output's shape and of casereport (as ``terraform show -json``); see docs/state.md."""
    state = _require(journal.load_with_journal(state_path), state_path)
    document = {
        "format_version": SHOW_JSON_FORMAT_VERSION,
        "casereport_version": casereport_version,
        "state_path": str(state_path),
        "state": state.to_json(),
    }
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def unlock(state_path: Path, lock_id: str) -> LockInfo:
    """``casereport force-unlock ID``."""
    return force_unlock(state_path, lock_id)
