"""Queries and group-by fields in plain words, for headings, summaries and captions."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

from casereport.definitions.query import And, MatchAll, Not, Or, Term, parse
from casereport.errors import QuerySyntaxError


def clear_caches() -> None:
    """Forget memoised query descriptions and terms (for benchmarks and tests)."""
    describe_query.cache_clear()
    _simple_node.cache_clear()


# How a field reads in a sentence; any other field reads as its name, with spaces.
_FIELD_WORDS = {
    "creation_source": "source",
    "created_by": "creator",
    "modified_by": "last editor",
    "services": "service",
    "env": "environment",
    "environments": "environment",
    "datacenters": "datacenter",
    "versions": "version",
    "status_name": "status",
    "status_group": "status group",
    "type_id": "type id",
}


def field_words(name: str) -> str:
    """A field as it reads in a sentence: ``creation_source`` -> ``source``."""
    lowered = name.strip().lower()
    return _FIELD_WORDS.get(lowered, lowered.replace("_", " ").replace(".", " "))


def join_words(parts: Sequence[str], word: str = "and") -> str:
    """``[a, b, c]`` -> ``a, b and c`` (or another last ``word``)."""
    if len(parts) <= 1:
        return "".join(parts)
    return f"{', '.join(parts[:-1])} {word} {parts[-1]}"


_SPACE = re.compile(r"\s")


def _value_words(term: Any) -> str:
    value: str = term.value
    return f'"{value}"' if term.quoted or not value or _SPACE.search(value) else value


def _term_words(term: Any, negated: bool) -> str:
    """One ``field:value`` as a clause after "whose": ``status is not closed``."""
    if term.field is None:
        verb = "does not mention" if negated else "mentions"
        return f'title or description {verb} "{term.value}"'
    name = field_words(term.field)
    value = term.value
    if not term.quoted and "*" in value:
        inner = value.strip("*")
        if not inner:
            return f"{name} is not set" if negated else f"{name} is set"
        if "*" not in inner:
            shape = (value.startswith("*"), value.endswith("*"))
            verb = {
                (False, True): "starts with",
                (True, False): "ends with",
                (True, True): "contains",
            }[shape]
            if negated:
                verb = {"starts with": "does not start with", "ends with": "does not end with"}.get(
                    verb, "does not contain"
                )
            return f"{name} {verb} {inner}"
        verb = "does not match" if negated else "matches"
        return f"{name} {verb} the pattern {value} (* stands for any text)"
    return f"{name} is {'not ' if negated else ''}{_value_words(term)}"


def _same_field_values(node: Any) -> tuple[str, list[str]] | None:
    """For ``f:a OR f:b`` (plain values of one field): the field and the values."""
    field = None
    values = []
    for operand in node.operands:
        if not isinstance(operand, Term) or operand.field is None:
            return None
        if not operand.quoted and "*" in operand.value:
            return None
        if field is not None and operand.field.lower() != field.lower():
            return None
        field = operand.field
        values.append(_value_words(operand))
    assert field is not None
    return field, values


def _clause(node: Any, negated: bool = False) -> str:
    if isinstance(node, Term):
        return _term_words(node, negated)
    if isinstance(node, Not):
        return _clause(node.operand, not negated)
    if isinstance(node, Or):
        same = _same_field_values(node)
        if same is not None:
            field, values = same
            if negated:
                listed = (
                    f"neither {values[0]} nor {values[1]}"
                    if len(values) == 2
                    else (f"none of {', '.join(values)}")
                )
                return f"{field_words(field)} is {listed}"
            return f"{field_words(field)} is {join_words(values, 'or')}"
        parts = [_nested(operand) for operand in node.operands]
        text = f"either {join_words(parts, 'or')}"
        return f"not ({text})" if negated else text
    if isinstance(node, And):
        text = join_words([_nested(operand) for operand in node.operands])
        return f"not ({text})" if negated else text
    return "every case"


def _nested(node: Any) -> str:
    text = _clause(node)
    return f"({text})" if isinstance(node, And | Or) and not text.startswith("(") else text


# "field:value -field:value ...": the shape of most queries, read without the full parser
# (a tenth of the time). Anything else (quotes, parentheses, operators, wildcards,
# escapes, a second colon) goes to ``query.parse``; the tests check both agree.
_SIMPLE_TERM = re.compile(r"(-?)([A-Za-z0-9_.][A-Za-z0-9_.\-]*):([^\s()\"\\:*]+)")


@functools.lru_cache(maxsize=8192)  # terms repeat across a site: -status:closed, service:api
def _simple_node(word: str) -> Term | Not | None:
    """One ``[-]field:value`` word as a node of the tree, or None if it is anything else."""
    match = _SIMPLE_TERM.fullmatch(word)
    if match is None:
        return None
    negated, field, value = match.groups()
    term = Term(field, value)
    return Not(term) if negated else term


def simple_query_tree(query_filter: str) -> Any:
    """The tree ``query.parse`` gives for a query of plain ``[-]field:value`` terms, else None."""
    words = query_filter.split()
    if not words:
        return None
    nodes: list[Any] = []
    for word in words:
        node = _simple_node(word)
        if node is None:
            return None
        nodes.append(node)
    return nodes[0] if len(nodes) == 1 else And(tuple(nodes))


@functools.lru_cache(maxsize=8192)
def describe_query(query_filter: str) -> str:
    """A query in plain words: ``project:SEC -status:closed`` ->
    "Cases in project SEC whose status is not closed"."""
    tree = simple_query_tree(query_filter)
    if tree is None:
        try:
            tree = parse(query_filter)
        except QuerySyntaxError:
            return f"Cases matching the search {query_filter!r}"
    if isinstance(tree, MatchAll):
        return "All cases"
    operands = list(tree.operands) if isinstance(tree, And) else [tree]
    projects: list[str] = []
    clauses: list[str] = []
    excluded: list[str] = []
    for operand in operands:
        if (
            isinstance(operand, Term)
            and (operand.field or "").lower() == "project"
            and (operand.quoted or "*" not in operand.value)
        ):
            projects.append(f"in project {_value_words(operand)}")
            continue
        if isinstance(operand, Or):
            same = _same_field_values(operand)
            if same is not None and same[0].lower() == "project":
                projects.append(f"in project {join_words(same[1], 'or')}")
                continue
        # "-(a OR b)" across fields reads best at the end: "..., excluding those where".
        if isinstance(operand, Not) and (
            isinstance(operand.operand, And)
            or (isinstance(operand.operand, Or) and _same_field_values(operand.operand) is None)
        ):
            excluded.append(_clause(operand.operand))
            continue
        clauses.append(_clause(operand))
    words = ["Cases"]
    if projects:
        words.append(join_words(projects))
    if clauses:
        # "whose status is open", but "where either status is open or ..."
        lead = "where " if clauses[0].startswith("either ") else "whose "
        words.append(lead + join_words(clauses))
    text = " ".join(words)
    if excluded:
        lead = (
            "All cases except those where "
            if len(words) == 1
            else f"{text}, excluding those where "
        )
        text = lead + join_words([f"({e})" if len(excluded) > 1 else e for e in excluded], "or")
    return text


def describe_groups(groups: Sequence[str]) -> str:
    """Group-by fields in plain words: ``[status, priority]`` -> ``status and priority``."""
    return join_words([field_words(g) for g in groups])


def group_header(groups: Sequence[str]) -> str:
    """The groups table's header: ``[status, priority]`` -> ``Status / priority``."""
    text = " / ".join(field_words(g) for g in groups) or "group"
    return text[0].upper() + text[1:]
