"""``casereport fmt``: rewrite report files in one canonical style, keeping comments.

The style: 2-space indentation with list items indented under their key; block style for
mappings; a list of scalars on one line (``[a, b]``) when that line stays within
``FLOW_WIDTH`` columns and no comment sits inside the list, else one item per line;
strings quoted only where YAML needs it (double quotes, or single quotes for a string
that holds a double quote or backslash); full-line
comments indented like the line after them; two spaces before an end-of-line comment; at
most one blank line in a row; a single trailing newline. Key order and comments (the
``# yaml-language-server: $schema=...`` line included) stay as the author wrote them.

ruamel.yaml's round-trip mode does the rewriting because it keeps comments; it is only
used here (loading uses PyYAML's faster C composer, see ``casereport.definitions.yamlnodes``).
Files that do not parse (YAML syntax, duplicate keys) are reported and left untouched.
"""

from __future__ import annotations

import difflib
import functools
import io
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from casereport.definitions.models import Diagnostic
from casereport.definitions.yamlnodes import (
    MapNode,
    Node,
    ScalarNode,
    SeqNode,
    YamlSyntaxError,
    compose,
    iter_strings,
    to_int,
    yaml_syntax_error,
)
from casereport.numbers import count_of

__all__ = ["FLOW_WIDTH", "FormatResult", "format_files", "format_text", "run", "target_files"]

FLOW_WIDTH = 80


@dataclass(frozen=True, slots=True)
class FormatResult:
    """The outcome for one file: its new text (None when it did not parse)."""

    path: Path
    original: str
    formatted: str | None
    error: Diagnostic | None = None

    @property
    def changed(self) -> bool:
        return self.formatted is not None and self.formatted != self.original

    def diff(self) -> str:
        """A unified diff from the original to the formatted text."""
        if self.formatted is None:
            return ""
        return "".join(
            difflib.unified_diff(
                self.original.splitlines(keepends=True),
                self.formatted.splitlines(keepends=True),
                fromfile=f"a/{self.path}",
                tofile=f"b/{self.path}",
            )
        )


def format_text(text: str) -> str:
    """The canonical form of a report file's text; raise ``YamlSyntaxError`` if it does
    not parse."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    # The same syntax errors, positions and messages as `validate`.
    before = compose(text)
    _check_duplicate_keys(before)
    yaml = YAML()
    yaml.Emitter = _emitter_class()
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 1_000_000  # never fold long queries onto several lines
    yaml.preserve_quotes = False
    try:
        data = yaml.load(text)
    except YAMLError as exc:  # what only the round-trip loader checks: duplicate keys
        raise yaml_syntax_error(exc, text) from None
    if data is None:
        return _tidy(text, text)
    lines = text.split("\n")
    _restyle(data, 0, lines)
    out = io.StringIO()
    yaml.dump(data, out)
    formatted = _tidy(out.getvalue(), text)
    # A safety net: formatting must never change what the file means.
    try:
        after = compose(formatted)
    except YamlSyntaxError:
        after = None
    if after is None or _data(after) != _data(before):
        raise YamlSyntaxError(
            1, 1, "fmt cannot rewrite this file without changing its meaning (please report it)"
        )
    return formatted


def format_files(paths: Sequence[Path]) -> list[FormatResult]:
    """Format each file in memory (nothing is written)."""
    results = []
    for path in paths:
        try:
            original = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            error = Diagnostic("error", f"cannot read file: {reason}", str(path))
            results.append(FormatResult(path, "", None, error))
            continue
        try:
            formatted = format_text(original)
        except YamlSyntaxError as exc:
            error = Diagnostic("error", exc.message, str(path), exc.line, exc.column)
            results.append(FormatResult(path, original, None, error))
            continue
        results.append(FormatResult(path, original, formatted))
    return results


def _data(node: Node | None) -> Any:
    """What a node tree means, independent of style and position."""
    if isinstance(node, MapNode):
        return ("map", tuple((_data(k), _data(v)) for k, v in node.pairs))
    if isinstance(node, SeqNode):
        return ("seq", tuple(_data(item) for item in node.items))
    if node is None:
        return None
    value: Any = node.value
    tag = node.tag.rsplit(":", 1)[-1]
    if tag == "int":
        value = to_int(node.value)
    elif tag == "bool":
        value = node.value.lower() == "true"
    elif tag == "null":
        value = None
    elif tag == "float":
        text = node.value.replace("_", "").lower()
        value = "nan" if text == ".nan" else float(text.replace(".inf", "inf"))
    return (node.tag, value)


def _check_duplicate_keys(node: Node | None) -> None:
    if isinstance(node, MapNode):
        seen: dict[str, ScalarNode] = {}
        for key, value in node.pairs:
            if isinstance(key, ScalarNode):
                first = seen.setdefault(key.value, key)
                if first is not key:
                    raise YamlSyntaxError(
                        key.line + 1,
                        key.column + 1,
                        f'duplicate key "{key.value}" (first defined at line {first.line + 1})',
                    )
            _check_duplicate_keys(value)
    elif isinstance(node, SeqNode):
        for item in node.items:
            _check_duplicate_keys(item)


@functools.lru_cache(maxsize=1)
def _emitter_class() -> Any:
    """ruamel.yaml's emitter, preferring double quotes to single ones where a string
    needs quotes (single quotes stay for strings holding a double quote or backslash,
    which would otherwise need escapes)."""
    from ruamel.yaml.emitter import Emitter

    class DoubleQuotingEmitter(Emitter):
        def choose_scalar_style(self) -> Any:
            style = super().choose_scalar_style()
            value = self.event.value
            if style == "'" and '"' not in value and "\\" not in value:
                return '"'
            return style

    return DoubleQuotingEmitter


def _restyle(node: Any, indent: int, lines: list[str]) -> None:
    """Choose block or flow style for every collection, and normalise comment tokens."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(node, CommentedMap):
        node.fa.set_block_style()
        _end_of_line_comments(node, lines)
        for key, value in node.items():
            if isinstance(value, CommentedSeq):
                _end_of_line_comments(value, lines)
                if _fits_flow(value, node, key, indent + len(str(key)) + 2):
                    _to_flow(value, node, key)
                    continue
                value.fa.set_block_style()
            _restyle(value, indent + 2, lines)
    elif isinstance(node, CommentedSeq):
        node.fa.set_block_style()
        _end_of_line_comments(node, lines)
        for item in node:
            _restyle(item, indent + 4, lines)


def _fits_flow(seq: Any, parent: Any, key: Any, width: int) -> bool:
    """A list of short one-line scalars that fits on the line, with no comment before its
    first item or inside it (comments after it move behind the closing bracket)."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    for item in seq:
        if isinstance(item, CommentedMap | CommentedSeq) or "\n" in str(item):
            return False
    slot = parent.ca.items.get(key) or [None, None, None, None]
    if any(token.value.strip() for token in _tokens(slot[3])):
        return False  # a comment line between the key and the list
    last = len(seq) - 1
    for index, tokens in seq.ca.items.items():
        for token in _tokens(tokens):
            inside = index != last or not token.value.startswith("\n")
            if token.value.strip() and inside:
                return False
    # Quoted items take two more characters; ", " separates them.
    text_width = sum(len(str(item)) + 2 for item in seq) + 2
    return width + text_width <= FLOW_WIDTH


def _to_flow(seq: Any, parent: Any, key: Any) -> None:
    """Make ``seq`` a flow list; what followed its last item now follows the list."""
    from ruamel.yaml.error import CommentMark
    from ruamel.yaml.tokens import CommentToken

    tail = "".join(t.value for t in _tokens(seq.ca.items.get(len(seq) - 1)))
    seq.ca.items.clear()
    seq.ca.comment = None
    seq.fa.set_flow_style()
    slot = parent.ca.items.setdefault(key, [None, None, None, None])
    slot[3] = None  # only blank lines were there (see _fits_flow)
    if not tail:
        return
    if slot[2] is None:
        slot[2] = CommentToken(tail, CommentMark(0))
    else:
        slot[2].value = slot[2].value.rstrip("\n") + "\n" + tail[1:]


def _tokens(value: Any) -> Iterator[Any]:
    from ruamel.yaml.tokens import CommentToken

    if isinstance(value, CommentToken):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _tokens(item)


def _end_of_line_comments(node: Any, lines: list[str]) -> None:
    """Put every end-of-line comment two spaces after its value."""
    for token in _tokens([node.ca.comment, list(node.ca.items.values())]):
        value = token.value
        mark = getattr(token, "start_mark", None)
        if not value.startswith("#") or mark is None or value.startswith(" "):
            continue
        line = lines[mark.line] if 0 <= mark.line < len(lines) else ""
        if line[: mark.column].strip():
            token.value = " " + value
            mark.column = 0


def _tidy(output: str, original: str) -> str:
    """Re-indent full-line comments, squeeze blank lines, end with one newline."""
    lines = output.split("\n")
    protected = _scalar_lines(output)
    result: list[str] = []
    for number, line in enumerate(lines):
        if number in protected:
            result.append(line)
            continue
        stripped = line.strip()
        if not stripped:
            if result and result[-1].strip():
                result.append("")
            continue
        if stripped.startswith("#"):
            line = " " * _next_indent(lines, number, protected) + stripped
        result.append(line.rstrip())
    while result and not result[-1].strip():
        result.pop()
    while result and not result[0].strip():
        result.pop(0)
    return "\n".join(result) + "\n" if result else ""


def _next_indent(lines: list[str], number: int, protected: set[int]) -> int:
    for index in range(number + 1, len(lines)):
        stripped = lines[index].lstrip(" ")
        if index in protected or not stripped or stripped.startswith("#"):
            continue
        return len(lines[index]) - len(stripped)
    return 0


def _scalar_lines(text: str) -> set[int]:
    """0-based numbers of lines that continue a multi-line scalar (not to be touched)."""
    protected: set[int] = set()
    try:
        root = compose(text)
    except YamlSyntaxError:
        return protected
    for node in iter_strings(root):
        if isinstance(node, ScalarNode) and "\n" in node.raw:
            extra = node.raw.rstrip("\n").count("\n")
            protected.update(range(node.line + 1, node.line + 1 + extra))
    return protected


def target_files(files: Sequence[Path], reports_dir: Path) -> tuple[list[Path], list[Diagnostic]]:
    """The files ``fmt`` works on: those named (a directory means its ``*.yaml``), or
    every ``*.yaml`` in the reports directory."""
    targets: list[Path] = []
    problems: list[Diagnostic] = []
    for path in files or [reports_dir]:
        if path.is_dir():
            targets.extend(sorted(p for p in path.glob("*.yaml") if p.is_file()))
        elif path.is_file():
            targets.append(path)
        else:
            problems.append(Diagnostic("error", "no such file or directory", str(path)))
    return list(dict.fromkeys(targets)), problems


def run(
    files: Sequence[Path],
    *,
    reports_dir: Path,
    check: bool,
    diff: bool,
    out: Callable[[str], None],
    err: Callable[[str], None],
) -> int:
    """``casereport fmt``: format (or with ``check``, only inspect) files; the exit code.

    Prints the name of each file that was (or, with ``check``, would be) rewritten, the
    diffs when ``diff``, and every file that does not parse as an error.
    """
    from casereport.fsutil import atomic_write_text

    targets, problems = target_files(files, reports_dir)
    for problem in problems:
        err(str(problem))
    results = format_files(targets)
    unformatted = 0
    for result in results:
        if result.error is not None:
            err(f"{result.error} (file left unchanged)")
            continue
        if not result.changed or result.formatted is None:
            continue
        unformatted += 1
        out(str(result.path))
        if diff:
            out(result.diff().rstrip("\n"))
        if not check:
            mode = result.path.stat().st_mode
            atomic_write_text(result.path, result.formatted)
            os.chmod(result.path, stat.S_IMODE(mode))
    failed = bool(problems) or any(r.error is not None for r in results)
    if check and unformatted:
        need = "needs" if unformatted == 1 else "need"
        counted = count_of(unformatted, "file")
        err(f"{counted} of {len(results)} {need} formatting: run casereport fmt")
    return 1 if failed or (check and unformatted) else 0
