"""Hypothesis strategies for search-query trees (``casereport.definitions.query``).

``nodes()`` draws normalised trees, the ones ``parse`` returns, so
``parse(to_string(tree)) == tree`` holds for every draw. Evaluation tests narrow it to the
fields and values their cases hold::

    nodes(fields=["status", "priority", None], values=["OPEN", "P1", "P*"], max_leaves=6)

where ``None`` in ``fields`` stands for free text.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

from casereport.definitions.query import And, MatchAll, Node, Not, Or, Term

__all__ = ["field_names", "nodes", "terms", "tricky_values"]

# Values that exercise the printer's escaping and quoting.
TRICKY_VALUES = (
    "AND",
    "OR",
    "NOT",
    "and",
    "-",
    "-x",
    "a:b",
    ":",
    "(",
    ")",
    "a b",
    '"',
    "\\",
    "\\AND",
    "*",
    "P*",
    "a\tb",
    "é",
)

# Nesting of parentheses and negations that parse accepts is bounded (50 levels).
_MAX_DEPTH = 12


def field_names() -> st.SearchStrategy[str]:
    """Any name ``parse`` reads as a field: letters, digits, ``_``, ``.``, ``-`` (not first)."""
    return st.from_regex(r"[A-Za-z0-9_.][A-Za-z0-9_.\-]{0,11}", fullmatch=True)


def tricky_values() -> st.SearchStrategy[str]:
    """Values worth printing: arbitrary text, often with operators, escapes and quotes."""
    return st.one_of(st.sampled_from(TRICKY_VALUES), st.text(max_size=12))


def terms(
    fields: Sequence[str | None] | None = None,
    values: Sequence[str] | None = None,
    quoted: bool | None = None,
) -> st.SearchStrategy[Term]:
    """``Term`` leaves; ``quoted=None`` draws both, and an empty value is always quoted."""
    field_strategy: st.SearchStrategy[str | None] = (
        st.one_of(st.none(), field_names()) if fields is None else st.sampled_from(fields)
    )
    value_strategy = tricky_values() if values is None else st.sampled_from(values)
    quoted_strategy = st.booleans() if quoted is None else st.just(quoted)
    return st.builds(
        lambda field, value, is_quoted: Term(field, value, is_quoted or not value),
        field_strategy,
        value_strategy,
        quoted_strategy,
    )


def nodes(
    fields: Sequence[str | None] | None = None,
    values: Sequence[str] | None = None,
    max_leaves: int = 8,
    quoted: bool | None = None,
    match_all: bool = True,
) -> st.SearchStrategy[Node]:
    """Normalised query trees; ``match_all`` also draws the empty query ``MatchAll()``."""
    trees = st.recursive(
        terms(fields, values, quoted),
        lambda children: st.one_of(
            children.map(Not),
            st.lists(children, min_size=2, max_size=4).map(_and),
            st.lists(children, min_size=2, max_size=4).map(_or),
        ),
        max_leaves=max_leaves,
    ).filter(lambda tree: _depth(tree) <= _MAX_DEPTH)
    if match_all:
        return st.one_of(st.just(MatchAll()), trees)
    return trees


def _and(operands: list[Node]) -> Node:
    flat: list[Node] = []
    for operand in operands:
        flat.extend(operand.operands if isinstance(operand, And) else (operand,))
    return And(tuple(flat))


def _or(operands: list[Node]) -> Node:
    flat: list[Node] = []
    for operand in operands:
        flat.extend(operand.operands if isinstance(operand, Or) else (operand,))
    return Or(tuple(flat))


def _depth(node: Node) -> int:
    """Nesting as ``parse`` counts it: each ``Not``, and each parenthesised group."""
    if isinstance(node, Not):
        return 1 + _depth(node.operand)
    if isinstance(node, And | Or):
        return 1 + max(_depth(operand) for operand in node.operands)
    return 0
