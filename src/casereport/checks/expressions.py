"""CEL expressions of ``assert``: compiled once each, with what their text names.

The CEL library is ``common-expression-language`` (``import cel``): Rust bindings that
compile an expression once into a program run at native speed against a prepared context,
so 10,000 checks over a large state take a few milliseconds. It is imported only here,
inside ``compile_expression``, so commands on a workspace without checks never load it.

Besides the program, the text is scanned for its string literals (``groups["P1"]``: a
group a check names reads as 0 when absent, see ``casereport.checks.evaluate``) and for
its value paths (``total``, ``groups["P1"]``, ``aggregations["a"].total``), the values a
result shows it saw.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = [
    "AGGREGATION_NAMES",
    "REPORT_NAMES",
    "CelSyntaxError",
    "Expression",
    "ValuePath",
    "compile_expression",
]

#: The names an aggregation's checks read, and a report's (see docs/checks.md).
AGGREGATION_NAMES = ("total", "groups", "compared", "change", "change_ratio", "limit")
REPORT_NAMES = ("aggregations",)

_STRING = r""""(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'"""
_STEP = rf"\s*\.\s*[A-Za-z_]\w*|\s*\[\s*(?:{_STRING})\s*\]"
_TOKEN = re.compile(rf"(?P<string>{_STRING})|(?<![\w.])(?P<path>[A-Za-z_]\w*(?:{_STEP})*)")
_STEPS = re.compile(rf"\.\s*(?P<field>[A-Za-z_]\w*)|\[\s*(?P<key>{_STRING})\s*\]")
_POSITION = re.compile(r"<input>:(\d+):(\d+):")


class CelSyntaxError(Exception):
    """An expression that does not parse: ``reason`` and the 0-based ``offset`` in the text
    where the library places it (0 when it does not say)."""

    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.offset = offset


class ValuePath(NamedTuple):
    """A value an expression reads: its root name, the fields and keys after it, and the
    path as CEL writes it (``groups["P1"]``, ``compared.total``)."""

    root: str
    steps: tuple[str, ...]
    text: str


@dataclass(frozen=True, slots=True)
class Expression:
    """A compiled ``assert``: its program, the top-level names it reads, its string literals
    and its value paths (root name, steps) in the order written."""

    text: str
    program: Any  # cel.Program
    names: frozenset[str]
    literals: frozenset[str]
    paths: tuple[ValuePath, ...]
    positions: dict[str, int]  # each name's first offset in the text


def _unquote(literal: str) -> str:
    body = literal[1:-1]
    return re.sub(r"\\(.)", r"\1", body) if "\\" in body else body


@functools.lru_cache(maxsize=4096)
def compile_expression(text: str) -> Expression:
    """``text`` compiled (once per distinct text), or ``CelSyntaxError``."""
    import cel

    try:
        program = cel.compile(text)
    except (ValueError, RuntimeError) as exc:
        raise _syntax_error(text, str(exc)) from None
    literals: set[str] = set()
    paths: list[ValuePath] = []
    positions: dict[str, int] = {}
    for token in _TOKEN.finditer(text):
        if token.group("string") is not None:
            literals.add(_unquote(token.group("string")))
            continue
        path = token.group("path")
        root = re.match(r"[A-Za-z_]\w*", path)
        assert root is not None  # (the pattern starts with one)
        positions.setdefault(root.group(), token.start("path"))
        steps: list[str] = []
        shown = [root.group()]
        for step in _STEPS.finditer(path, root.end()):
            if step.group("field") is not None:
                steps.append(step.group("field"))
                shown.append(f".{step.group('field')}")
            else:
                steps.append(_unquote(step.group("key")))
                literals.add(steps[-1])
                shown.append(f"[{json.dumps(steps[-1], ensure_ascii=False)}]")
        paths.append(ValuePath(root.group(), tuple(steps), "".join(shown)))
    names = frozenset(program.variables())
    return Expression(text, program, names, frozenset(literals), tuple(paths), positions)


def _syntax_error(text: str, message: str) -> CelSyntaxError:
    """The library's message made one line (``Syntax error: ...`` without the list of every
    token it expected), at the offset its ``<input>:line:col`` names."""
    offset = 0
    found = _POSITION.search(message)
    if found is not None:
        line, column = int(found.group(1)), int(found.group(2))
        lines = text.split("\n")
        offset = sum(len(part) + 1 for part in lines[: line - 1]) + column - 1
        offset = max(0, min(offset, len(text)))
    reason = message.split("\n", 1)[0]
    if "ERROR: " in message:
        reason = message.split("ERROR: ", 1)[1].split("\n", 1)[0]
        reason = _POSITION.sub("", reason).strip()
    reason = re.sub(r"\s*expecting \{.*", "", reason)
    return CelSyntaxError(reason or "not a CEL expression", offset)
