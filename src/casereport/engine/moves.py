"""Which ``moved:`` entries a plan carries out: those whose old address is in state.

A move is planned for each address in state under an entry's ``from`` whose new address
(under ``to``) is not in state yet; once done, the entry is a no-op, as Terraform's
``moved`` blocks are. Both the plan and apply (for a saved plan) read the result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from casereport.definitions.expand import ReportSpec
from casereport.state.model import AggregationState
from casereport.state.moves import moves_for


def planned_moves(
    reports: Sequence[ReportSpec], aggregations: Mapping[str, AggregationState]
) -> dict[str, str]:
    """New address -> old address for every move to make in ``aggregations``."""
    planned: dict[str, str] = {}
    for report in reports:
        for move in report.moves:
            for old, new in moves_for(aggregations, move.source, move.destination).items():
                if new not in aggregations:
                    planned.setdefault(new, old)
    return planned
