"""YAML text → nodes that know where they were written; YAML syntax errors, located.

Report files are composed, not constructed: validation needs every key and value with its
line and column, its source text, the tag it resolved to, and repeated keys kept (a dict
would drop them). PyYAML's composer gives that tree, and with libyaml (``CSafeLoader``'s C
parser and composer) it composes a typical report in about 0.15 ms, with the start and end
mark of every node, for all of YAML. ruamel.yaml, which loading used before, needs ~5 ms a
file in pure Python, too slow for workspaces of 1,000 files; it stays only in
``casereport.definitions.fmt``, whose round trip must keep comments.

What PyYAML leaves to this module, done the way ruamel.yaml did it so no message changed:

- Tags of plain scalars follow YAML 1.2 (``yes`` is a string, ``0o17`` an integer, ``1e3``
  a number), unless the file declares ``%YAML 1.1``; PyYAML alone resolves YAML 1.1.
- Aliases are followed when the nodes are converted: a recursive alias, more than
  ``MAX_NODES`` values once aliases are expanded ("billion laughs"), or aliases that
  repeat more than ``MAX_ALIAS_CHARS`` characters of text (a few aliases of a long value,
  doubled level after level, stay under any count of values) is an error; so is
  nesting deeper than ``MAX_FLOW_DEPTH``. libyaml refuses 1,000 levels itself, which keeps
  its C composer (it recurses once per level) within the stack; the pure-Python composer
  runs out of recursion sooner. Either way the first level too deep is then found by
  walking the parser's events, a loop.
- Syntax errors: libyaml's messages are terse ("did not find expected key") and do not
  name what was found, so a file libyaml rejects is parsed again by PyYAML's pure-Python
  parser, which words the error as ruamel.yaml did; only broken files pay for it.

Without libyaml, the pure-Python parser does everything (about 20 times slower) and a
one-line notice says so on stderr.
"""

from __future__ import annotations

import functools
import operator
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import yaml

__all__ = [
    "MAX_ALIAS_CHARS",
    "MAX_FLOW_DEPTH",
    "MAX_NODES",
    "MapNode",
    "Node",
    "ScalarNode",
    "SeqNode",
    "YamlSyntaxError",
    "compose",
    "iter_strings",
    "node_kind",
    "to_int",
    "value_positions",
    "yaml_syntax_error",
]

# Aliases can make a small file expand to a huge tree ("billion laughs"); no report needs
# anywhere near this many values.
MAX_NODES = 50_000
# ... and characters: what aliases repeat is counted by its source text, so a long value
# aliased many times is refused before anything downstream copies it (ten times the
# largest report file seen in practice).
MAX_ALIAS_CHARS = 100_000
# No report nests more than a few levels; deeper nesting is a mistake or an attack.
MAX_FLOW_DEPTH = 100

_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"


class ScalarNode(NamedTuple):
    """A YAML scalar: its text, resolved tag, style and source (0-based line/column).

    A named tuple, not a class with slots: most nodes are scalars, and a tuple is built
    in C (see ``_convert``), a third of the cost of converting a report's nodes.
    """

    value: str
    tag: str
    style: str
    raw: str
    line: int
    column: int


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


_TAG_NAMES = {
    _STR: "a string",
    "tag:yaml.org,2002:int": "an integer",
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:bool": "a boolean",
    _NULL: "empty (null)",
    "tag:yaml.org,2002:timestamp": "a date",
}


def node_kind(node: Node) -> str:
    """What a node is, for messages: "a mapping", "a list", "an integer", ..."""
    if isinstance(node, MapNode):
        return "a mapping"
    if isinstance(node, SeqNode):
        return "a list"
    return _TAG_NAMES.get(node.tag, f"a value tagged {node.tag}")


def to_int(text: str) -> int:
    """The value of a YAML 1.2 integer scalar (``0x1F``, ``0o17``, ``1_000``, ...)."""
    if text.isdigit() and text.isascii():  # the usual "14"
        return int(text)
    digits = text.replace("_", "")
    sign = -1 if digits.startswith("-") else 1
    digits = digits.lstrip("+-")
    for prefix, base in (("0b", 2), ("0o", 8), ("0x", 16)):
        if digits.startswith(prefix):
            return sign * int(digits[2:], base)
    return sign * int(digits, 10)


# --------------------------------------------------------------------------- composing


def compose(text: str) -> Node | None:
    """Parse ``text`` into a node tree (None for an empty document)."""
    loader = _loader()
    try:
        root = yaml.compose(text, Loader=loader)
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, text) from None
    except (RecursionError, _TooDeep):  # the pure-Python composer recurses once per level
        raise _syntax_error(None, text) from None
    if root is None:
        return None
    # libyaml does not count a byte order mark in its marks' indexes; PyYAML does.
    shift = 1 if text.startswith("\ufeff") and loader is not _PyLoader else 0
    return _convert(root, text, shift)


def _convert(root: Any, text: str, shift: int) -> Node:
    """PyYAML's nodes → ours. PyYAML composes an alias as the aliased node itself, so
    following aliases counts values against ``MAX_NODES`` and refuses recursion."""
    scalar = _scalar_converter(text, shift)
    if "*" in text and "&" in text:  # an alias ("*name") of an anchor ("&name"), maybe
        return _follow(root, scalar, counted=True, tracked=True)
    # Without both, no node is met twice: the tree is converted as it is, each scalar
    # straight from its parent. A document nested too deep, or one with a "*" and more
    # values than aliases may expand to (always refused), is walked again by ``_follow``
    # to refuse it where it always was.
    tree = _tree(root, scalar)
    if tree is None or ("*" in text and tree[1] > MAX_NODES):
        return _follow(root, scalar, counted="*" in text, tracked=False)
    return tree[0]


def _scalar_converter(text: str, shift: int) -> Callable[[Any], ScalarNode]:
    new_tuple = tuple.__new__

    def scalar(node: Any) -> ScalarNode:
        start = node.start_mark
        raw = text[start.index + shift : node.end_mark.index + shift]
        fields = (node.value, node.tag, node.style or "", raw, start.line, start.column)
        return new_tuple(ScalarNode, fields)  # (skips the Python-level __new__)

    return scalar


def _tree(root: Any, scalar: Callable[[Any], ScalarNode]) -> tuple[Node, int] | None:
    """The tree of a document in which no node is met twice, and its number of values;
    None when it is nested more than ``MAX_FLOW_DEPTH`` levels deep."""
    scalar_type, mapping_type = yaml.ScalarNode, yaml.MappingNode
    size = 1

    def collection(node: Any, depth: int) -> Node:
        nonlocal size
        if depth > MAX_FLOW_DEPTH:
            raise _TooDeep
        depth += 1
        start, children = node.start_mark, node.value
        if type(node) is mapping_type:
            size += 2 * len(children)
            pairs = [
                (
                    scalar(key) if type(key) is scalar_type else collection(key, depth),
                    scalar(value) if type(value) is scalar_type else collection(value, depth),
                )
                for key, value in children
            ]
            return MapNode(pairs, start.line, start.column)
        size += len(children)
        items = [
            scalar(item) if type(item) is scalar_type else collection(item, depth)
            for item in children
        ]
        return SeqNode(items, start.line, start.column)

    if type(root) is scalar_type:
        return scalar(root), size
    try:
        return collection(root, 1), size
    except _TooDeep:
        return None


class _TooDeep(Exception):
    pass


def _follow(
    root: Any, scalar: Callable[[Any], ScalarNode], *, counted: bool, tracked: bool
) -> Node:
    """The tree with aliases followed: ``counted``, every value counts against
    ``MAX_NODES``; ``tracked``, a node met inside itself is refused, and the text of
    every scalar met again counts against ``MAX_ALIAS_CHARS``."""
    budget, chars = MAX_NODES, MAX_ALIAS_CHARS
    active: set[int] = set()
    met: set[int] = set()  # the scalars converted once: met again, through an alias
    scalar_type, mapping_type = yaml.ScalarNode, yaml.MappingNode

    def convert(node: Any, depth: int) -> Node:
        nonlocal budget, chars
        start = node.start_mark
        if counted:
            if tracked and id(node) in active:
                message = "invalid YAML: recursive alias"
                raise YamlSyntaxError(start.line + 1, start.column + 1, message)
            budget -= 1
            if budget < 0:
                message = f"invalid YAML: more than {MAX_NODES} values once aliases are expanded"
                raise YamlSyntaxError(start.line + 1, start.column + 1, message)
        if type(node) is scalar_type:
            if tracked:
                if id(node) in met:
                    chars -= node.end_mark.index - start.index
                    if chars < 0:
                        raise YamlSyntaxError(
                            start.line + 1,
                            start.column + 1,
                            f"invalid YAML: aliases repeat more than {MAX_ALIAS_CHARS} "
                            "characters (use fewer aliases of this value, or shorter ones)",
                        )
                else:
                    met.add(id(node))
            return scalar(node)
        if depth > MAX_FLOW_DEPTH:
            raise _too_deep(start)
        depth += 1
        if tracked:
            active.add(id(node))
        result: Node
        if type(node) is mapping_type:
            pairs = [(convert(key, depth), convert(value, depth)) for key, value in node.value]
            result = MapNode(pairs, start.line, start.column)
        else:
            result = SeqNode(
                [convert(item, depth) for item in node.value], start.line, start.column
            )
        if tracked:
            active.discard(id(node))
        return result

    return convert(root, 1)


def _too_deep(mark: Any) -> YamlSyntaxError:
    message = f"invalid YAML: nested more than {MAX_FLOW_DEPTH} levels deep"
    return YamlSyntaxError(mark.line + 1, mark.column + 1, message)


def _first_too_deep(text: str) -> YamlSyntaxError | None:
    """The error for the first collection nested deeper than ``MAX_FLOW_DEPTH``, if any.

    Events come from a loop, not recursion, so any depth is safe. libyaml reads up to
    1,024 characters ahead and may stop at its own limit before that collection: then
    PyYAML's pure-Python parser, which has no limit, walks the events instead.
    """
    for loader in dict.fromkeys((_loader(), _PY_LOADER)):
        depth = 0
        try:
            for event in yaml.parse(text, Loader=loader):
                if isinstance(event, yaml.CollectionStartEvent):
                    depth += 1
                    if depth > MAX_FLOW_DEPTH:
                        return _too_deep(event.start_mark)
                elif isinstance(event, yaml.CollectionEndEvent):
                    depth -= 1
        except yaml.YAMLError:
            continue
        return None
    return None


# --------------------------------------------------------------------------- loaders

# ruamel.yaml's YAML 1.2 rules for plain scalars (first characters, tag, pattern).
_YAML12_TAGS = (
    ("tTfF", "bool", r"(?:true|True|TRUE|false|False|FALSE)\Z"),
    (
        "-+0123456789.",
        "float",
        r"""(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))\Z""",
    ),
    (
        "-+0123456789",
        "int",
        r"""(?:[-+]?0b[0-1_]+
        |[-+]?0o?[0-7_]+
        |[-+]?[0-9_]+
        |[-+]?0x[0-9a-fA-F_]+)\Z""",
    ),
    ("<", "merge", r"<<\Z"),
    ("~nN", "null", r"(?:~|null|Null|NULL)\Z"),
    (
        "0123456789",
        "timestamp",
        r"""(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
        |[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?
        (?:[Tt]|[\ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?
        (?:[\ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)\Z""",
    ),
    ("=", "value", r"=\Z"),
)
_RESOLVERS: dict[str, list[tuple[str, re.Pattern[str]]]] = {}
for _first, _name, _pattern in _YAML12_TAGS:
    for _char in _first:
        _RESOLVERS.setdefault(_char, []).append(
            (f"tag:yaml.org,2002:{_name}", re.compile(_pattern, re.X))
        )
# A "%YAML 1.1" directive before the document, after blank, comment or %TAG lines.
_YAML11 = re.compile(r"\ufeff?(?:[ \t]*(?:#[^\r\n]*)?\r?\n|%TAG[^\r\n]*\r?\n)*%YAML[ \t]+1\.1\b")


@functools.lru_cache(maxsize=4096)
def _yaml12_tag(value: str) -> str:
    if not value:
        return _NULL
    for tag, pattern in _RESOLVERS.get(value[0], ()):
        if pattern.match(value):
            return tag
    return _STR


@functools.lru_cache(maxsize=4096)
def _yaml11_tag(value: str) -> str:
    resolver = yaml.resolver.Resolver()
    return str(resolver.resolve(yaml.ScalarNode, value, (True, False)))  # type: ignore[no-untyped-call]


_SCALAR_NODE, _MAPPING_NODE = yaml.ScalarNode, yaml.MappingNode  # (once per node: no lookups)


class _Resolver(yaml.resolver.BaseResolver):
    """Resolves plain scalars as ruamel.yaml did (see the module docstring)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        yaml11 = "%YAML" in text and _YAML11.match(text) is not None
        self.plain_tag = _yaml11_tag if yaml11 else _yaml12_tag

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is _SCALAR_NODE:
            return self.plain_tag(value) if implicit[0] else _STR
        return _MAP if kind is _MAPPING_NODE else _SEQ

    # PyYAML's path resolvers (tags by position in the tree) are not used, but composing
    # calls these two hooks for every node: built-ins whose result is ignored cost less
    # than any Python function (3% of loading a workspace).
    descend_resolver = staticmethod(operator.is_)  # type: ignore[assignment]  # (node, index)
    ascend_resolver = staticmethod(tuple)  # type: ignore[assignment]  # ()


class _PyLoader(
    yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, yaml.composer.Composer, _Resolver
):
    """PyYAML's ``SafeLoader`` up to composing (nodes, not Python objects), in Python."""

    def __init__(self, text: str) -> None:
        yaml.reader.Reader.__init__(self, text)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        _Resolver.__init__(self, text)
        self.depth = 0

    # PyYAML's composer recurses once per level. It stops here, not at the interpreter's
    # recursion limit (which a host may have raised past what the C stack holds, and
    # which its scanner takes seconds to reach): the caller then finds the first level
    # too deep in the events. Twice the limit, so that below it the converted tree is
    # checked as libyaml's is (a document may hold more values than allowed first).
    def _nested(self, compose: Callable[[Any], Any], anchor: Any) -> Any:
        self.depth += 1
        if self.depth > 2 * MAX_FLOW_DEPTH:
            raise _TooDeep
        node = compose(anchor)
        self.depth -= 1
        return node

    def compose_sequence_node(self, anchor: Any) -> Any:
        return self._nested(super().compose_sequence_node, anchor)

    def compose_mapping_node(self, anchor: Any) -> Any:
        return self._nested(super().compose_mapping_node, anchor)


_PY_LOADER: Any = _PyLoader  # (PyYAML's stubs know only its own loader classes)


@functools.lru_cache(maxsize=1)
def _loader() -> type[Any]:
    """PyYAML's ``CSafeLoader`` up to composing; the pure-Python one without libyaml."""
    if getattr(yaml, "CSafeLoader", None) is None:
        print(
            "casereport: libyaml is not available, so YAML is read by PyYAML's slower "
            "pure-Python parser",
            file=sys.stderr,
        )
        return _PyLoader

    from yaml._yaml import CParser

    class CLoader(CParser, _Resolver):
        def __init__(self, text: str) -> None:
            CParser.__init__(self, text)
            _Resolver.__init__(self, text)

    return CLoader


# --------------------------------------------------------------------------- errors

# The wording of the most common mistakes, and what to tell a person instead.
_FRIENDLIER = (
    ("found character '\\t' that cannot start any token", "tab character: indent with spaces"),
    ("expected <block end>", "bad indentation: this line does not line up with the lines above"),
    (
        "mapping values are not allowed here",
        'unexpected ":": quote a value that contains ": "',
    ),
)


def _syntax_error(exc: yaml.YAMLError | None, text: str) -> YamlSyntaxError:
    """``exc`` as one located message; None: a composer ran out of recursion.

    Nesting too deep for a composer (libyaml refuses 1,000 levels) is located in the
    parser's events. libyaml's other messages are terse ("did not find expected key"), so
    PyYAML's pure-Python parser reads the file again to word the error as ruamel.yaml did.
    """
    if exc is None or "nesting depth" in str(getattr(exc, "problem", "")):
        too_deep = _first_too_deep(text)
        if too_deep is not None:
            return too_deep
    elif _loader() is not _PyLoader:
        try:
            yaml.compose(text, Loader=_PY_LOADER)
        except yaml.YAMLError as pure:
            exc = pure
        except (RecursionError, _TooDeep):
            too_deep = _first_too_deep(text)
            if too_deep is not None:
                return too_deep
    if exc is None:
        return YamlSyntaxError(1, 1, "invalid YAML: nested too deeply")
    return yaml_syntax_error(exc, text)


def yaml_syntax_error(exc: Exception, text: str) -> YamlSyntaxError:
    """One located, one-line ``YamlSyntaxError`` for a PyYAML or ruamel.yaml error (both
    mark errors the same way)."""
    if hasattr(exc, "problem_mark"):
        mark = exc.problem_mark or getattr(exc, "context_mark", None)
        started = getattr(exc, "context_mark", None)
        problem = " ".join(str(getattr(exc, "problem", None) or "invalid YAML").split())
        context = " ".join(str(getattr(exc, "context", None) or "").split())
        for their_text, friendlier in _FRIENDLIER:
            if problem.startswith(their_text):
                problem = friendlier
                if context == "while scanning for the next token":
                    context = ""
        if context.startswith("found duplicate anchor") and started is not None:
            anchor = context.removeprefix("found ").removesuffix("; first occurrence")
            problem = f"{anchor} (first defined at line {started.line + 1})"
        elif context and getattr(exc, "problem", None):
            if problem.startswith("but "):
                problem = f"{context}, {problem}"
            else:
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
