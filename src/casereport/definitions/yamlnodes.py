"""YAML text → nodes that know where they were written; YAML syntax errors, located.

Parsing strategy: loading must stay fast for large workspaces (1,000 files in well under a
second), and ruamel.yaml's pure-Python composer alone needs ~5 ms a file. So a small
composer here reads the plain block YAML that reports are written in (block mappings and
sequences, one-line plain or quoted scalars, one-line flow lists of scalars) straight into
position-carrying nodes, and hands any file that uses anything else (block scalars,
anchors, tags, multi-line scalars, flow mappings, ...) or that might be malformed to
ruamel.yaml's composer, which also produces every syntax error message. Both give the same
node tree, which ``tests/test_load.py`` checks against ruamel.yaml on generated documents.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import Any

__all__ = [
    "MAX_FLOW_DEPTH",
    "MAX_NODES",
    "MapNode",
    "Node",
    "ScalarNode",
    "SeqNode",
    "YamlSyntaxError",
    "compose",
    "iter_strings",
    "to_int",
    "value_positions",
    "yaml_syntax_error",
]

_STR = "tag:yaml.org,2002:str"


class ScalarNode:
    """A YAML scalar: its text, resolved tag, style and source (0-based line/column)."""

    __slots__ = ("column", "line", "raw", "style", "tag", "value")

    def __init__(self, value: str, tag: str, style: str, raw: str, line: int, column: int):
        self.value = value
        self.tag = tag
        self.style = style
        self.raw = raw
        self.line = line
        self.column = column


class MapNode:
    """A YAML mapping; ``pairs`` keeps order and duplicates (checked by the loader)."""

    __slots__ = ("column", "line", "pairs")

    def __init__(self, pairs: list[tuple[Node, Node]], line: int, column: int):
        self.pairs = pairs
        self.line = line
        self.column = column


class SeqNode:
    """A YAML sequence."""

    __slots__ = ("column", "items", "line")

    def __init__(self, items: list[Node], line: int, column: int):
        self.items = items
        self.line = line
        self.column = column


Node = ScalarNode | MapNode | SeqNode


class YamlSyntaxError(Exception):
    """A file that is not valid YAML; ``line`` and ``column`` are 1-based."""

    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.column = column
        self.message = message


def iter_strings(node: Node | None) -> Iterator[ScalarNode]:
    """Every scalar of a node tree, in document order (used by tests and fmt)."""
    if node is None:
        return
    if isinstance(node, ScalarNode):
        yield node
    elif isinstance(node, MapNode):
        for key, value in node.pairs:
            yield from iter_strings(key)
            yield from iter_strings(value)
    else:
        for item in node.items:
            yield from iter_strings(item)


def to_int(text: str) -> int:
    """The value of a YAML 1.2 integer scalar (``0x1F``, ``0o17``, ``1_000``, ...)."""
    digits = text.replace("_", "")
    sign = -1 if digits.startswith("-") else 1
    digits = digits.lstrip("+-")
    for prefix, base in (("0b", 2), ("0o", 8), ("0x", 16)):
        if digits.startswith(prefix):
            return sign * int(digits[2:], base)
    return sign * int(digits, 10)


# Aliases can make a small file expand to a huge tree ("billion laughs"); no report needs
# anywhere near this many values.
MAX_NODES = 50_000
# ruamel.yaml slows down quadratically with flow nesting ("[[[[..."), then overflows the
# stack; no report nests more than a few levels.
MAX_FLOW_DEPTH = 100


def compose(text: str) -> Node | None:
    """Parse ``text`` into a node tree (None for an empty document)."""
    try:
        return _FastComposer(text).compose()
    except _Unsupported:
        pass
    _check_flow_depth(text)
    try:
        return _ruamel_compose(text)
    except RecursionError:
        raise YamlSyntaxError(1, 1, "invalid YAML: nested too deeply") from None


def _check_flow_depth(text: str) -> None:
    """Refuse brackets nested deeper than ``MAX_FLOW_DEPTH`` (quotes and comments skipped,
    roughly: this is a guard, not a parser)."""
    if text.count("[") + text.count("{") <= MAX_FLOW_DEPTH:
        return
    depth = 0
    quote = ""
    line = 1
    start = 0
    comment = False
    for index, char in enumerate(text):
        if char == "\n":
            line, start, comment = line + 1, index + 1, False
        elif comment:
            continue
        elif quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == start or text[index - 1] in " \t"):
            comment = True
        elif char in "[{":
            depth += 1
            if depth > MAX_FLOW_DEPTH:
                column = index - start + 1
                message = f"invalid YAML: nested more than {MAX_FLOW_DEPTH} levels deep"
                raise YamlSyntaxError(line, column, message)
        elif char in "]}":
            depth = max(0, depth - 1)


def _ruamel_compose(text: str) -> Node | None:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    yaml = YAML(typ="safe", pure=True)
    try:
        node = yaml.compose(text)
    except YAMLError as exc:
        raise yaml_syntax_error(exc, text) from None
    if node is None:
        return None
    return _convert(node, text, set(), [MAX_NODES])


# ruamel.yaml's wording for the most common mistakes, and what to tell a person instead.
_FRIENDLIER = (
    ("found character '\\t' that cannot start any token", "tab character: indent with spaces"),
    ("expected <block end>", "bad indentation: this line does not line up with the lines above"),
    (
        "mapping values are not allowed here",
        'unexpected ":": quote a value that contains ": "',
    ),
)


def yaml_syntax_error(exc: Exception, text: str) -> YamlSyntaxError:
    """One located, one-line ``YamlSyntaxError`` for any ruamel.yaml error."""
    from ruamel.yaml.error import MarkedYAMLError

    if isinstance(exc, MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
        context = " ".join(str(exc.context or "").split())
        for ruamel_text, friendlier in _FRIENDLIER:
            if problem.startswith(ruamel_text):
                problem = friendlier
                if context == "while scanning for the next token":
                    context = ""
        if context and exc.problem:
            if problem.startswith("but "):
                problem = f"{context}, {problem}"
            else:
                started = exc.context_mark
                where = ""
                if started is not None and mark is not None and started.line != mark.line:
                    where = f" started at line {started.line + 1}, column {started.column + 1}"
                problem = f"{problem} ({context}{where})"
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        return YamlSyntaxError(line, column, f"invalid YAML: {problem}")
    message = " ".join(str(exc).split())
    position = getattr(exc, "position", None)
    character = getattr(exc, "character", None)
    if isinstance(character, str | int) and isinstance(position, int):
        code = ord(character) if isinstance(character, str) else character
        message = f"unacceptable character U+{code:04X}: special characters are not allowed"
    if isinstance(position, int):
        before = text[:position]
        line = before.count("\n") + 1
        column = position - (before.rfind("\n") + 1) + 1
        return YamlSyntaxError(line, column, f"invalid YAML: {message}")
    return YamlSyntaxError(1, 1, f"invalid YAML: {message}")


def _convert(node: Any, text: str, active: set[int], budget: list[int]) -> Node:
    from ruamel.yaml.nodes import MappingNode, SequenceNode
    from ruamel.yaml.nodes import ScalarNode as RScalar

    mark = node.start_mark
    if id(node) in active:
        raise YamlSyntaxError(mark.line + 1, mark.column + 1, "invalid YAML: recursive alias")
    budget[0] -= 1
    if budget[0] < 0:
        raise YamlSyntaxError(
            mark.line + 1,
            mark.column + 1,
            f"invalid YAML: more than {MAX_NODES} values once aliases are expanded",
        )
    line, column = mark.line, mark.column
    tag = str(node.tag.value if hasattr(node.tag, "value") else node.tag)
    if isinstance(node, RScalar):
        raw = text[node.start_mark.index : node.end_mark.index]
        return ScalarNode(node.value, tag, node.style or "", raw, line, column)
    active.add(id(node))
    try:
        if isinstance(node, MappingNode):
            return MapNode(
                [
                    (_convert(k, text, active, budget), _convert(v, text, active, budget))
                    for k, v in node.value
                ],
                line,
                column,
            )
        if isinstance(node, SequenceNode):
            items = [_convert(item, text, active, budget) for item in node.value]
            return SeqNode(items, line, column)
    finally:
        active.discard(id(node))
    raise YamlSyntaxError(line + 1, column + 1, "invalid YAML: unexpected node")


class _Unsupported(Exception):
    """The fast composer does not handle this text; ruamel.yaml will."""


# Characters the fast path leaves to ruamel.yaml: tabs, CR, odd line breaks, BOM, and
# anything YAML does not allow in a stream (ruamel.yaml reports those).
_ODD_CHARS = re.compile(
    "[^\n\x20-\x7e\xa0-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]|[\u2028\u2029]"
)
_KEY_RE = re.compile(r"([A-Za-z0-9_][A-Za-z0-9_.\-/ ]*?) *:(?: +|$)")
_PLAIN_BAD_START = frozenset("[]{},#&*!|>'\"%@`")
_FLOW_PLAIN_RE = re.compile(r"[^,\[\]{}#:'\"]+")
_DQ_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "t": "\t", "/": "/"}


@functools.lru_cache(maxsize=1)
def _resolver() -> Any:
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).resolver


@functools.lru_cache(maxsize=4096)
def _plain_tag(value: str) -> str:
    from ruamel.yaml.nodes import ScalarNode as RScalar

    return str(_resolver().resolve(RScalar, value, (True, False)))


class _FastComposer:
    """Composes the plain block YAML of report files; raises ``_Unsupported`` otherwise."""

    def __init__(self, text: str) -> None:
        if _ODD_CHARS.search(text):
            raise _Unsupported
        self.lines = lines = text.split("\n")
        significant: list[tuple[int, int]] = []
        for number, line in enumerate(lines):
            stripped = line.lstrip(" ")
            if not stripped or stripped[0] == "#":
                continue
            indent = len(line) - len(stripped)
            # Directives and document markers ("---", "...") are left to ruamel.yaml.
            if indent == 0 and (
                line[0] == "%" or (line[:3] in ("---", "...") and line[3:4] in ("", " "))
            ):
                raise _Unsupported
            significant.append((number, indent))
        self.sig = significant
        self.pos = 0

    def compose(self) -> Node | None:
        if not self.sig:
            return None
        node = self.node(self.sig[0][1])
        if self.pos != len(self.sig):
            raise _Unsupported
        return node

    def is_item(self, number: int, indent: int) -> bool:
        line = self.lines[number]
        return line.startswith("-", indent) and (len(line) == indent + 1 or line[indent + 1] == " ")

    def node(self, indent: int) -> Node:
        number, _ = self.sig[self.pos]
        if self.is_item(number, indent):
            return self.sequence(indent)
        return self.mapping(indent)

    def mapping(self, indent: int) -> MapNode:
        sig, lines = self.sig, self.lines
        first_number = sig[self.pos][0]
        pairs: list[tuple[Node, Node]] = []
        while self.pos < len(sig):
            number, at = sig[self.pos]
            if at < indent:
                break
            if at > indent:
                raise _Unsupported
            line = lines[number]
            match = _KEY_RE.match(line, at)
            if match is None:
                raise _Unsupported
            text = match.group(1)
            key = ScalarNode(text, _plain_tag(text), "", text, number, at)
            self.pos += 1
            start = match.end()
            if start < len(line) and line[start] != "#":
                value = self.inline(line, start, number)
                if self.pos < len(sig) and sig[self.pos][1] > indent:
                    raise _Unsupported
            elif self.pos < len(sig) and sig[self.pos][1] > indent:
                value = self.node(sig[self.pos][1])
            elif (
                self.pos < len(sig)
                and sig[self.pos][1] == indent
                and self.is_item(sig[self.pos][0], indent)
            ):
                value = self.sequence(indent)
            else:
                raise _Unsupported
            pairs.append((key, value))
        return MapNode(pairs, first_number, indent)

    def sequence(self, indent: int) -> SeqNode:
        sig, lines = self.sig, self.lines
        first_number = sig[self.pos][0]
        items: list[Node] = []
        while self.pos < len(sig):
            number, at = sig[self.pos]
            if at < indent or (at == indent and not self.is_item(number, at)):
                break
            if at > indent:
                raise _Unsupported
            line = lines[number]
            start = at + 1
            while start < len(line) and line[start] == " ":
                start += 1
            if start >= len(line) or line[start] == "#":
                raise _Unsupported
            items.append(self.inline(line, start, number))
            self.pos += 1
            if self.pos < len(sig) and sig[self.pos][1] > indent:
                raise _Unsupported
        return SeqNode(items, first_number, indent)

    def inline(self, line: str, start: int, number: int) -> Node:
        """A value that starts at ``line[start]`` and ends on this line."""
        first = line[start]
        if first == '"' or first == "'":
            node, end = self.quoted(line, start, number)
            self.end_of_line(line, end)
            return node
        if first == "[":
            return self.flow_sequence(line, start, number)
        if first in _PLAIN_BAD_START:
            raise _Unsupported
        end = line.find(" #", start)
        value = line[start : end if end >= 0 else len(line)].rstrip(" ")
        if first in "-?:" and (len(value) == 1 or value[1] == " "):
            raise _Unsupported
        if ": " in value or value.endswith(":"):
            raise _Unsupported
        return ScalarNode(value, _plain_tag(value), "", value, number, start)

    def quoted(self, line: str, start: int, number: int) -> tuple[ScalarNode, int]:
        quote = line[start]
        i = start + 1
        parts: list[str] = []
        if quote == "'":
            while True:
                close = line.find("'", i)
                if close < 0:
                    raise _Unsupported
                parts.append(line[i:close])
                if line.startswith("''", close):
                    parts.append("'")
                    i = close + 2
                    continue
                break
        else:
            while True:
                close = line.find('"', i)
                escape = line.find("\\", i)
                if close < 0:
                    raise _Unsupported
                if 0 <= escape < close:
                    parts.append(line[i:escape])
                    char = line[escape + 1 : escape + 2]
                    if char not in _DQ_ESCAPES:
                        raise _Unsupported
                    parts.append(_DQ_ESCAPES[char])
                    i = escape + 2
                    continue
                parts.append(line[i:close])
                break
        end = close + 1
        raw = line[start:end]
        return ScalarNode("".join(parts), _STR, quote, raw, number, start), end

    def end_of_line(self, line: str, end: int) -> None:
        rest = line[end:]
        if rest and (rest[0] != " " or rest.strip(" ")[:1] not in ("", "#")):
            raise _Unsupported

    def flow_sequence(self, line: str, start: int, number: int) -> SeqNode:
        items: list[Node] = []
        i = start + 1
        length = len(line)
        while i < length and line[i] == " ":
            i += 1
        if i < length and line[i] == "]":
            self.end_of_line(line, i + 1)
            return SeqNode(items, number, start)
        while True:
            while i < length and line[i] == " ":
                i += 1
            if i >= length:
                raise _Unsupported
            if line[i] in "'\"":
                item, i = self.quoted(line, i, number)
                items.append(item)
            else:
                match = _FLOW_PLAIN_RE.match(line, i)
                if match is None:
                    raise _Unsupported
                value = match.group().rstrip(" ")
                if (
                    not value
                    or value[0] in _PLAIN_BAD_START
                    or (value[0] in "-?" and (len(value) == 1 or value[1] == " "))
                ):
                    raise _Unsupported
                items.append(ScalarNode(value, _plain_tag(value), "", value, number, i))
                i += len(value)
            while i < length and line[i] == " ":
                i += 1
            if i >= length:
                raise _Unsupported
            if line[i] == "]":
                self.end_of_line(line, i + 1)
                return SeqNode(items, number, start)
            if line[i] != ",":
                raise _Unsupported
            i += 1
            while i < length and line[i] == " ":
                i += 1
            if i >= length or line[i] == "]":
                raise _Unsupported


# --------------------------------------------------------------------------- positions

_ESCAPES = {
    "0": "\0",
    "a": "\a",
    "b": "\b",
    "t": "\t",
    "\t": "\t",
    "n": "\n",
    "v": "\v",
    "f": "\f",
    "r": "\r",
    "e": "\x1b",
    " ": " ",
    '"': '"',
    "/": "/",
    "\\": "\\",
    "N": "\x85",
    "_": "\xa0",
    "L": "\u2028",
    "P": "\u2029",
}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}


def value_positions(
    value: str, raw: str, style: str, line: int, column: int
) -> list[tuple[int, int]] | None:
    """1-based file positions of each character of ``value`` (plus one past its end),
    rebuilt from the scalar's source ``raw`` (YAML folds lines and reads escapes, and
    marks only where a scalar starts and ends); None when the rebuild does not give
    ``value``."""
    if not raw:
        return None
    if style in ("|", ">"):
        built = _block_positions(raw, style, line, column)
    else:
        built = _flow_positions(raw, style, line, column)
    if built is None:
        return None
    text, positions = built
    if style in ("|", ">"):
        if not text.startswith(value):
            return None
        return positions[: len(value) + 1]
    return positions if text == value else None


def _flow_positions(
    raw: str, style: str, line: int, column: int
) -> tuple[str, list[tuple[int, int]]] | None:
    quoted = style in ("'", '"')
    i, end = (1, len(raw) - 1) if quoted else (0, len(raw))
    out: list[str] = []
    positions: list[tuple[int, int]] = []
    keep = 0  # characters before this index are never trimmed (escapes, folded breaks)
    row, col = line, column + i
    try:
        while i < end:
            char = raw[i]
            if char == "\n":
                while len(out) > keep and out[-1] in " \t":
                    out.pop()
                    positions.pop()
                at = (row, col)
                i, row, col = i + 1, row + 1, 1
                breaks = 0
                while True:
                    while i < end and raw[i] in " \t":
                        i, col = i + 1, col + 1
                    if i < end and raw[i] == "\n":
                        i, row, col, breaks = i + 1, row + 1, 1, breaks + 1
                        continue
                    break
                out.extend("\n" * breaks if breaks else " ")
                positions.extend([at] * (breaks or 1))
                keep = len(out)
                continue
            if style == "'" and char == "'":
                out.append("'")
                positions.append((row, col))
                i, col = i + 2, col + 2
                keep = len(out)
                continue
            if style == '"' and char == "\\":
                escape = raw[i + 1]
                if escape == "\n":
                    i, row, col = i + 2, row + 1, 1
                    while i < end and raw[i] in " \t":
                        i, col = i + 1, col + 1
                    keep = len(out)
                    continue
                if escape in _HEX_ESCAPES:
                    size = _HEX_ESCAPES[escape]
                    out.append(chr(int(raw[i + 2 : i + 2 + size], 16)))
                    positions.append((row, col))
                    i, col = i + 2 + size, col + 2 + size
                elif escape in _ESCAPES:
                    out.append(_ESCAPES[escape])
                    positions.append((row, col))
                    i, col = i + 2, col + 2
                else:
                    return None
                keep = len(out)
                continue
            out.append(char)
            positions.append((row, col))
            i, col = i + 1, col + 1
    except (IndexError, ValueError):
        return None
    positions.append((row, col))
    return "".join(out), positions


def _block_positions(
    raw: str, style: str, line: int, column: int
) -> tuple[str, list[tuple[int, int]]] | None:
    rows = raw.split("\n")
    content = rows[1:]
    indents = [len(r) - len(r.lstrip(" ")) for r in content if r.strip()]
    if not indents:
        return None
    indent = min(indents)
    out: list[str] = []
    positions: list[tuple[int, int]] = []
    previous_folds = False
    for offset, row_text in enumerate(content):
        row = line + 1 + offset
        body = row_text[indent:]
        folds = style == ">" and bool(body) and not body.startswith(" ")
        if style == ">" and previous_folds and out[-1] == "\n":
            if folds:
                out[-1] = " "  # a line break between two folded lines is a space
            elif not body:
                out.pop()  # before an empty line, the break itself is dropped
                positions.pop()
        for k, char in enumerate(body):
            out.append(char)
            positions.append((row, indent + k + 1))
        out.append("\n")
        positions.append((row, indent + len(body) + 1))
        previous_folds = folds
    positions.append(positions[-1])
    return "".join(out), positions
