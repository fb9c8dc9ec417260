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

The syntax
----------
Datadog documents only part of the search bar; where it is silent, these are casereport's
choices.

- Terms: ``field:value``, ``field:"quoted value"``, bare words ``foo`` and quoted free text
  ``"kubernetes pods"``. A field name is letters, digits, ``_``, ``.`` and ``-`` (not first:
  a leading ``-`` is exclusion). A word whose text before its first ``:`` is not a field
  name (``a+b:c``, ``:x``) is free text. A value is the rest of the word: any characters but
  whitespace, ``(``, ``)`` and ``"``; it may contain ``:`` (``url:http://x``). A value with
  spaces needs quotes: Datadog's own example ``creation_source:Event Management`` reads as
  ``creation_source:Event`` AND the free text ``Management``.
- Operators, case-sensitive: ``OR``, ``AND`` (or just a space: adjacent terms are ANDed),
  ``NOT`` and the ``-`` prefix, which must touch its term (``-status:closed``,
  ``-(a OR b)``; a lone ``-`` is an error). Lowercase ``and``/``or``/``not`` are plain words.
  Precedence: ``NOT``/``-`` > ``AND`` > ``OR``; parentheses group.
- Value groups: ``priority:(P2 OR -P3 "P 4")`` takes the full syntax inside, with the field
  applied to every value; a field inside a group (``a:(b:c)``) is an error.
- Escapes: inside quotes ``\\"`` is a quote and ``\\\\`` a backslash; any other backslash is
  kept as it is (``"C:\\temp"``). Outside quotes a backslash makes the next character plain
  text: ``title:a\\ b``, ``\\(``, ``\\-foo``, ``a\\:b`` (free text ``a:b``), ``\\AND`` (the
  word, not the operator). ``\\*`` is still a wildcard ``*``: quote a value to match ``*``
  literally.
- Nesting of parentheses and ``NOT``/``-`` is limited to 50 levels, so a hostile query
  cannot exhaust the stack; a query is at most ``MAX_QUERY_LENGTH`` (4,096) characters, so
  one cannot keep the emulator busy for minutes. Datadog documents no limit; real queries
  are a few hundred characters, even with long value groups.

Errors raise ``QuerySyntaxError`` whose ``position`` is the 0-based offset of the token at
fault: the dangling operator (``a AND``), the ``field:`` with no value, the unclosed ``(``
or ``"``, the stray ``)``.

Printing
--------
``to_string`` prints canonically: ``-x`` for ``Not``, single spaces for ``And``, `` OR ``
for ``Or``, parentheses only where precedence needs them. ``quoted`` is meaningful (a
quoted ``*`` is literal), so it is kept: quoted values are always printed in quotes, and
unquoted values are printed bare with backslash escapes where needed (``title:a\\ b``,
``\\-x``, ``\\OR``), so every normalised tree reads back equal. A normalised tree is what
``parse`` returns: ``MatchAll`` only as the whole tree, ``And``/``Or`` flat with two or more
operands, field names as above, unquoted values non-empty. Any other tree raises
``ValueError``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from casereport.errors import QuerySyntaxError

__all__ = [
    "MAX_QUERY_LENGTH",
    "And",
    "FieldTerm",
    "MatchAll",
    "Node",
    "Not",
    "Or",
    "QuerySyntaxError",
    "Term",
    "field_terms",
    "fields",
    "is_plainly_valid",
    "parse",
    "to_string",
    "too_long",
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

_MAX_DEPTH = 50
MAX_QUERY_LENGTH = 4096

_SPACE = re.compile(r"\s*")
# The plain characters of a word, up to whitespace, a paren, a quote or a backslash.
_WORD_RUN = re.compile(r'[^\s()"\\]*')
_QUOTED_RUN = re.compile(r'[^"\\]*')
_FIELD_NAME = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.\-]*")
# Characters a bare value must escape; free text also escapes ':' (else it reads as a field).
_VALUE_SPECIAL = re.compile(r'[\s()"\\]')
_FREE_TEXT_SPECIAL = re.compile(r'[\s()"\\:]')
_OPERATORS = frozenset({"AND", "OR", "NOT"})

# Queries as people write them, checked without building a tree (see ``is_plainly_valid``):
# terms and quoted strings, each perhaps negated by a touching "-", separated by spaces and
# perhaps AND or OR; a field's value group holds such values, without fields. Every piece
# is narrower than the tokenizer and parser allow (printable ASCII and spaces only, no
# escapes, no parentheses but a value group's, no "-" starting a word), so whatever
# matches parses; anything else is parsed. Explicit ASCII ranges, a bitmap test per
# character, make the expression several times cheaper than Unicode classes such as \s.
_PLAIN_CHAR = r"[!#-'*-\[\]-~]"  # printable ASCII but space ( ) " \
_PLAIN_VALUE_CHAR = r"[!#-'*-9;-\[\]-~]"  # ... and but ":"
_NOT_OPERATOR = rf"(?!(?:AND|OR|NOT)(?!{_PLAIN_CHAR}))"
_PLAIN_QUOTED = r'"[ !#-\[\]-~]*"'
_PLAIN_FIELD = r"[A-Za-z0-9_.][A-Za-z0-9_.\-]*"
# A whole word, as the tokenizer reads it, that does not end in ':' (a field without value).
_PLAIN_WORD = rf"{_NOT_OPERATOR}(?!-)(?>{_PLAIN_CHAR}+)(?<!:)"
# In a value group a word holds no ':' at all (a field there is an error).
_PLAIN_VALUE = rf"-?(?:{_NOT_OPERATOR}(?!-){_PLAIN_VALUE_CHAR}+|{_PLAIN_QUOTED})"
_PLAIN_JOIN = r" +(?:(?:AND|OR) +)?"
_PLAIN_GROUP = rf"\( *{_PLAIN_VALUE}(?:{_PLAIN_JOIN}{_PLAIN_VALUE})* *\)"
_PLAIN_CLAUSE = (
    rf"-?(?:{_PLAIN_WORD}|{_PLAIN_FIELD}:(?:{_PLAIN_QUOTED}|{_PLAIN_GROUP})|{_PLAIN_QUOTED})"
)
_PLAIN_QUERY = re.compile(rf" *(?:{_PLAIN_CLAUSE}(?:{_PLAIN_JOIN}{_PLAIN_CLAUSE})* *)?")


# Token kinds. A "term" token is a whole ``field:value`` or ``field:"value"``; a "group"
# token is ``field:`` directly followed by ``(`` (the paren is the next token).
_WORD = "word"
_QUOTED = "quoted"
_TERM = "term"
_GROUP = "group"
_LPAREN = "("
_RPAREN = ")"
_AND = "AND"
_OR = "OR"
_NOT = "NOT"
_EOF = "end"

_TERM_STARTS = frozenset({_WORD, _QUOTED, _TERM, _GROUP, _LPAREN, _NOT})


class _Token(NamedTuple):
    kind: str
    pos: int
    text: str = ""  # the value (unescaped), or the operator as written ("NOT" or "-")
    field: str | None = None
    quoted: bool = False


def parse(text: str) -> Node:
    """Parse a search query; raise ``QuerySyntaxError`` pointing at the offending column."""
    if len(text) > MAX_QUERY_LENGTH:
        raise QuerySyntaxError(too_long(text), text, MAX_QUERY_LENGTH)
    tokens = _tokenize(text)
    if len(tokens) == 1:
        return MatchAll()
    parser = _Parser(text, tokens)
    node = parser.parse_or(None, 0)
    tok = parser.tokens[parser.index]
    if tok.kind != _EOF:
        # parse_or stops only at the end or at a ')' nothing opened.
        raise QuerySyntaxError("unbalanced ')'", text, tok.pos)
    return node


def too_long(text: str) -> str:
    """Why ``text`` is refused when it is longer than ``MAX_QUERY_LENGTH``."""
    return f"query is {len(text)} characters long, over the limit of {MAX_QUERY_LENGTH}: shorten it"


def is_plainly_valid(text: str) -> bool:
    """True when ``text`` is a query of the plain, common shape, which always parses
    (``service:api -status:closed priority:(P1 OR P2)``): a check some ten times cheaper
    than ``parse``, for loading many reports. False decides nothing: ``parse`` does."""
    return len(text) <= MAX_QUERY_LENGTH and _PLAIN_QUERY.fullmatch(text) is not None


def to_string(node: Node) -> str:
    """Print a tree as a query that ``parse`` reads back to an equal tree.

    Raise ``ValueError`` for a tree no query can express: ``MatchAll`` inside another node,
    an empty ``And``/``Or``, an invalid field name, an empty unquoted value.
    """
    if isinstance(node, MatchAll):
        return ""
    return _print(node)


def fields(node: Node) -> frozenset[str]:
    """The field names a tree searches, without free text."""
    found: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, Term):
            if current.field is not None:
                found.add(current.field)
        elif isinstance(current, Not):
            stack.append(current.operand)
        elif isinstance(current, And | Or):
            stack.extend(current.operands)
    return frozenset(found)


class FieldTerm(NamedTuple):
    """A ``field:value`` as written: where its field and its value start (0-based)."""

    field: str
    position: int
    value: str
    value_position: int
    quoted: bool


def field_terms(text: str) -> list[FieldTerm]:
    """Every ``field:value`` of a query, in order, value groups spelled out (``a:(b OR c)``
    gives ``a:b`` and ``a:c``, each at its value); raise ``QuerySyntaxError`` when the
    query does not tokenize. Positions serve messages about a field or a value."""
    found: list[FieldTerm] = []
    group: str | None = None
    group_pos = 0
    depth = 0
    for tok in _tokenize(text):
        kind = tok.kind
        if group is not None:
            if kind == _LPAREN:
                depth += 1
            elif kind == _RPAREN:
                depth -= 1
                if depth == 0:
                    group = None
            elif kind in (_WORD, _QUOTED):
                found.append(FieldTerm(group, group_pos, tok.text, tok.pos, kind == _QUOTED))
        elif kind == _TERM and tok.field is not None:
            start = tok.pos + len(tok.field) + 1
            found.append(FieldTerm(tok.field, tok.pos, tok.text, start, tok.quoted))
        elif kind == _GROUP and tok.field is not None:
            group, group_pos, depth = tok.field, tok.pos, 0
    return found


# --- tokenizer ---------------------------------------------------------------------------


def _run_end(pattern: re.Pattern[str], text: str, start: int) -> int:
    match = pattern.match(text, start)
    assert match is not None  # every run pattern accepts the empty string
    return match.end()


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    n = len(text)
    i = _run_end(_SPACE, text, 0)
    while i < n:
        ch = text[i]
        if ch == "(":
            tokens.append(_Token(_LPAREN, i))
            i += 1
        elif ch == ")":
            tokens.append(_Token(_RPAREN, i))
            i += 1
        elif ch == '"':
            value, end = _read_quoted(text, i)
            tokens.append(_Token(_QUOTED, i, value))
            i = end
        elif ch == "-":
            # Exclusion must touch its term: "a - b" is more likely a typo than a NOT.
            if i + 1 >= n or text[i + 1] == ")" or text[i + 1].isspace():
                raise QuerySyntaxError("expected a term after '-'", text, i)
            tokens.append(_Token(_NOT, i, "-"))
            i += 1
        else:
            i = _read_word(text, i, tokens)
        i = _run_end(_SPACE, text, i)
    tokens.append(_Token(_EOF, n))
    return tokens


def _read_quoted(text: str, start: int) -> tuple[str, int]:
    """Read the quoted string opening at ``start``; return its value and the index after it."""
    parts: list[str] = []
    i = start + 1
    n = len(text)
    while True:
        end = _run_end(_QUOTED_RUN, text, i)
        parts.append(text[i:end])
        if end >= n:
            raise QuerySyntaxError("unterminated quoted string", text, start)
        if text[end] == '"':
            return "".join(parts), end + 1
        # A backslash escapes only '"' and '\'; before anything else it is literal.
        if end + 1 < n and text[end + 1] in '"\\':
            parts.append(text[end + 1])
            i = end + 2
        else:
            parts.append("\\")
            i = end + 1


def _read_word(text: str, start: int, tokens: list[_Token]) -> int:
    """Read the word at ``start`` (a term, an operator or a field group); return its end."""
    n = len(text)
    i = _run_end(_WORD_RUN, text, start)
    head = text[start:i]
    escapes: list[str] = []
    while i < n and text[i] == "\\":
        if i + 1 >= n:
            raise QuerySyntaxError("expected a character after '\\'", text, i)
        end = _run_end(_WORD_RUN, text, i + 2)
        escapes.append(text[i + 1 : end])
        i = end
    tail = "".join(escapes)

    # The field name is the plain text before the first ':' (an escape there makes free text).
    colon = head.find(":")
    if colon > 0 and _FIELD_NAME.fullmatch(head, 0, colon):
        field = head[:colon]
        value = head[colon + 1 :] + tail
        if value:
            tokens.append(_Token(_TERM, start, value, field))
            return i
        nxt = text[i] if i < n else ""
        if nxt == "(":
            tokens.append(_Token(_GROUP, start, "", field))
            return i
        if nxt == '"':
            value, end = _read_quoted(text, i)
            tokens.append(_Token(_TERM, start, value, field, True))
            return end
        raise QuerySyntaxError(f"missing value after '{field}:'", text, start)

    if not escapes and head in _OPERATORS:
        tokens.append(_Token(head, start, head))
    else:
        tokens.append(_Token(_WORD, start, head + tail))
    return i


# --- parser ------------------------------------------------------------------------------
#
#   or    := and ("OR" and)*
#   and   := unary (["AND"] unary)*
#   unary := ("NOT" | "-")* primary
#   primary := word | "quoted" | field:value | field:"value" | "(" or ")" | field:( or )
#
# Inside a value group ``field`` is set, and words and quoted strings become its terms.


class _Parser:
    __slots__ = ("index", "text", "tokens")

    def __init__(self, text: str, tokens: list[_Token]) -> None:
        self.text = text
        self.tokens = tokens
        self.index = 0

    def _error(self, reason: str, pos: int) -> QuerySyntaxError:
        return QuerySyntaxError(reason, self.text, pos)

    def _expect_term_after(self, operator: _Token) -> None:
        if self.tokens[self.index].kind not in _TERM_STARTS:
            raise self._error(f"expected a term after '{operator.text}'", operator.pos)

    def parse_or(self, field: str | None, depth: int) -> Node:
        operands = [self.parse_and(field, depth)]
        tokens = self.tokens
        while tokens[self.index].kind == _OR:
            operator = tokens[self.index]
            self.index += 1
            self._expect_term_after(operator)
            operands.append(self.parse_and(field, depth))
        return _combine(Or, operands)

    def parse_and(self, field: str | None, depth: int) -> Node:
        operands = [self.parse_unary(field, depth)]
        tokens = self.tokens
        while True:
            tok = tokens[self.index]
            if tok.kind == _AND:
                self.index += 1
                self._expect_term_after(tok)
            elif tok.kind not in _TERM_STARTS:
                break
            operands.append(self.parse_unary(field, depth))
        return _combine(And, operands)

    def parse_unary(self, field: str | None, depth: int) -> Node:
        tokens = self.tokens
        negations = 0
        # Iterative, so that a long run of '-' costs no stack.
        while tokens[self.index].kind == _NOT:
            operator = tokens[self.index]
            depth += 1
            if depth > _MAX_DEPTH:
                raise self._error(f"query nests more than {_MAX_DEPTH} levels deep", operator.pos)
            self.index += 1
            self._expect_term_after(operator)
            negations += 1
        node = self.parse_primary(field, depth)
        for _ in range(negations):
            node = Not(node)
        return node

    def parse_primary(self, field: str | None, depth: int) -> Node:
        tok = self.tokens[self.index]
        self.index += 1
        kind = tok.kind
        if kind == _WORD:
            return Term(field, tok.text)
        if kind == _QUOTED:
            return Term(field, tok.text, True)
        if kind in (_TERM, _GROUP) and field is not None:
            raise self._error(
                f"nested field '{tok.field}:' inside the value group of '{field}:'", tok.pos
            )
        if kind == _TERM:
            return Term(tok.field, tok.text, tok.quoted)
        if kind == _GROUP:
            paren = self.tokens[self.index]
            self.index += 1
            return self._parenthesised(paren, tok.field, depth, f" after '{tok.field}:'")
        if kind == _LPAREN:
            return self._parenthesised(tok, field, depth, "")
        if kind == _RPAREN:
            raise self._error("unbalanced ')'", tok.pos)
        # AND or OR where an expression starts: after '(' or at the very start.
        raise self._error(f"expected a term before '{tok.text}'", tok.pos)

    def _parenthesised(self, paren: _Token, field: str | None, depth: int, where: str) -> Node:
        depth += 1
        if depth > _MAX_DEPTH:
            raise self._error(f"query nests more than {_MAX_DEPTH} levels deep", paren.pos)
        kind = self.tokens[self.index].kind
        if kind == _RPAREN:
            what = "value group" if where else "parentheses"
            raise self._error(f"empty {what}{where}", paren.pos)
        if kind == _EOF:
            raise self._error(f"unbalanced '('{where}", paren.pos)
        node = self.parse_or(field, depth)
        if self.tokens[self.index].kind != _RPAREN:
            raise self._error(f"unbalanced '('{where}", paren.pos)
        self.index += 1
        return node


def _combine(kind: type[And] | type[Or], operands: list[Node]) -> Node:
    """One operand stays as it is; otherwise build ``kind``, flattening nested ``kind``."""
    if len(operands) == 1:
        return operands[0]
    flat: list[Node] = []
    for operand in operands:
        if isinstance(operand, kind):
            flat.extend(operand.operands)
        else:
            flat.append(operand)
    return kind(tuple(flat))


# --- printer -----------------------------------------------------------------------------


def _print(node: Node) -> str:
    if isinstance(node, Term):
        return _print_term(node)
    if isinstance(node, Not):
        operand = node.operand
        if isinstance(operand, And | Or):
            return f"-({_print(operand)})"
        return "-" + _print(operand)
    if isinstance(node, And):
        _check_operands(node)
        return " ".join(
            f"({_print(op)})" if isinstance(op, Or) else _print(op) for op in node.operands
        )
    if isinstance(node, Or):
        _check_operands(node)
        return " OR ".join(_print(op) for op in node.operands)
    raise ValueError("MatchAll can only be printed as a whole query, not inside another node")


def _check_operands(node: And | Or) -> None:
    if not node.operands:
        raise ValueError(f"cannot print an empty {type(node).__name__}")


def _print_term(term: Term) -> str:
    if term.quoted:
        value = '"' + term.value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    elif not term.value:
        raise ValueError(f"cannot print {term!r}: an empty value must be quoted")
    elif term.field is None:
        value = _FREE_TEXT_SPECIAL.sub(r"\\\g<0>", term.value)
        if value[0] == "-" or value in _OPERATORS:
            value = "\\" + value
    else:
        value = _VALUE_SPECIAL.sub(r"\\\g<0>", term.value)
    if term.field is None:
        return value
    if not _FIELD_NAME.fullmatch(term.field):
        raise ValueError(f"cannot print {term!r}: {term.field!r} is not a field name")
    return f"{term.field}:{value}"
