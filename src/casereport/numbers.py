"""How casereport writes a number for people: one style in the terminal and on pages.

``query``'s table, plans, ``show`` and the rendered pages all write counts with a comma
between thousands and fractions with at most two decimals (``12,345``, ``0.5``), so a
figure read in the terminal looks the same on the page it becomes.
"""

from __future__ import annotations

__all__ = ["count_of", "format_number"]


def format_number(value: float) -> str:
    """``1234.0`` -> ``1,234``; a fraction keeps up to two decimals (``1,234.5``)."""
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def count_of(count: float, noun: str, plural: str | None = None) -> str:
    """``1 report``, ``2 reports``, ``1,234 earlier results``: the number in the same style,
    and the noun in the plural unless the count is one (``plural`` when not noun + "s")."""
    word = noun if count == 1 else (plural or f"{noun}s")
    return f"{format_number(count)} {word}"
