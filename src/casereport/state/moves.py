"""Moving results in state to another address, history and all (``state mv``, ``moved:``).

An address is one of three kinds: a report (``support-weekly``), an aggregation
(``support-weekly.by_status``, or a ``for_each`` base ``support-weekly.open_by_priority``
standing for all of its keys) or one ``for_each`` instance
(``support-weekly.open_by_priority["billing"]``). A move maps every address in state
under the source to the same place under the destination: a report's aggregations keep
their ids, a ``for_each`` base's instances keep their keys.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Literal

from casereport.state.model import AggregationState

Kind = Literal["report", "aggregation", "instance"]

_REPORT = r"[a-z0-9][a-z0-9_-]{0,63}"
_AGGREGATION = r"[a-z0-9][a-z0-9_]*"
_ADDRESS_RE = re.compile(rf'({_REPORT})(?:\.({_AGGREGATION})(\["[^"]*"\])?)?\Z')


def address_kind(address: str) -> Kind | None:
    """The kind of an address, or None when it is not one."""
    match = _ADDRESS_RE.match(address)
    if match is None:
        return None
    if match[2] is None:
        return "report"
    return "instance" if match[3] else "aggregation"


def report_of(address: str) -> str:
    """The report an address belongs to."""
    return address.split(".", 1)[0]


def moved_address(address: str, source: str, destination: str) -> str | None:
    """Where ``address`` goes when ``source`` moves to ``destination``, or None if it stays.

    A report moves the addresses under it (``source.``), an aggregation itself and its
    ``for_each`` keys (``source[``) unless the destination is one key, an instance only
    itself.
    """
    if address == source:
        return destination
    kind = address_kind(source)
    if kind == "report" and address.startswith(f"{source}."):
        return destination + address[len(source) :]
    if (
        kind == "aggregation"
        and address.startswith(f"{source}[")
        and address_kind(destination) != "instance"
    ):
        return destination + address[len(source) :]
    return None


def moves_for(
    aggregations: Mapping[str, AggregationState], source: str, destination: str
) -> dict[str, str]:
    """Every address in ``aggregations`` that ``source -> destination`` moves: old -> new."""
    moves = {}
    for address in aggregations:
        target = moved_address(address, source, destination)
        if target is not None:
            moves[address] = target
    return moves


def relabel(entry: AggregationState, address: str) -> AggregationState:
    """The entry at another address (and report), its request, result and history kept."""
    return replace(entry, address=address, report=report_of(address))


def apply_moves(
    aggregations: Mapping[str, AggregationState], moves: Mapping[str, str]
) -> dict[str, AggregationState]:
    """``aggregations`` with each ``old -> new`` of ``moves`` done (old present, new not)."""
    moved = dict(aggregations)
    for old, new in moves.items():
        if old in moved and new not in moved:
            moved[new] = relabel(moved.pop(old), new)
    return moved
