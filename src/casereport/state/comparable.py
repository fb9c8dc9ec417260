"""The part of an aggregation's history a page may compare with.

A changed request (``query_changed_at``) keeps earlier results in state, but their numbers
count other cases: deltas and trends start from the first result of the new request.
"""

from __future__ import annotations

from casereport.state.history import History
from casereport.state.model import AggregationState


def comparable_history(entry: AggregationState) -> History:
    """The entry's history since its request last changed (all of it if it never did)."""
    history = History.from_entries(entry.history)
    changed_at = entry.query_changed_at
    if changed_at is None or not len(history):
        return history
    stamps = history.stamps()
    # Timestamps are UTC ``...Z`` strings of one format: their order is the text's.
    first = next((i for i, stamp in enumerate(stamps) if stamp >= changed_at), len(stamps))
    return history if first == 0 else History.from_entries(list(history)[first:])
