"""Case Management search syntax: parse a ``query_filter`` into a tree, and print it back.

Shared by the emulator (which evaluates the tree over its cases) and by report loading
(which checks every query before any API call). Pure Python, no heavy imports.

The tree
--------
- ``MatchAll()``: the empty query, which matches every (non-archived) case.
- ``Term(field, value, quoted)``: ``field:value``; ``field`` is None for free text, which
  searches title and description. An unquoted ``value`` containing ``*`` is a wildcard
  pattern; a quoted value is literal.
- ``Not(operand)``, ``And(operands)``, ``Or(operands)``: ``And``/``Or`` hold two or more
  operands and are flat (an ``And`` never directly holds an ``And``).

Value groups ``field:(a OR b)`` parse to the same tree as ``(field:a OR field:b)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from casereport.errors import QuerySyntaxError

__all__ = [
    "And",
    "MatchAll",
    "Node",
    "Not",
    "Or",
    "QuerySyntaxError",
    "Term",
    "parse",
    "to_string",
]


@dataclass(frozen=True)
class MatchAll:
    """The empty query: every case."""


@dataclass(frozen=True)
class Term:
    """``field:value``, or free text when ``field`` is None."""

    field: str | None
    value: str
    quoted: bool = False


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class And:
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    operands: tuple[Node, ...]


Node = MatchAll | Term | Not | And | Or


def parse(text: str) -> Node:
    """Parse a search query; raise ``QuerySyntaxError`` pointing at the offending column."""
    raise NotImplementedError  # implemented by the query parser work


def to_string(node: Node) -> str:
    """Print a tree as a query that ``parse`` reads back to an equal tree."""
    raise NotImplementedError  # implemented by the query parser work
