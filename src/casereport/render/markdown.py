"""Report descriptions: the Markdown report authors write, rendered safely.

A small safe subset (paragraphs, ``- `` lists, ``**bold**``, ``*em*``, `` `code` ``, links
to http(s) only, bare http(s) URLs) that escapes everything else, so raw HTML or a
``javascript:`` link cannot get through.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from casereport.render.filters import code_span, md_text

# Blocks are paragraphs and "- " lists; inlines are text, code, strong, em and links.
# Parsed once, then written out as HTML (escaped), as Markdown (re-escaped) or as text.


@dataclass(frozen=True, slots=True)
class _Inline:
    kind: str  # "text", "code", "strong", "em", "link"
    text: str = ""  # text and code
    children: tuple[_Inline, ...] = ()
    href: str = ""


_Block = tuple[str, tuple[tuple[_Inline, ...], ...]]  # ("p" | "ul", one or more items)

_BACKSLASH_ESCAPABLE = frozenset("\\`*_{}[]()#+-.!<>|~")
_LINK = re.compile(r"\[([^\]\n]+)\]\(\s*([^\s()<>]+)\s*\)")
_BARE_URL = re.compile(r"https?://[^\s<>()\[\]\"'`]+", re.IGNORECASE)
_SAFE_SCHEME = re.compile(r"https?://", re.IGNORECASE)
_LIST_ITEM = re.compile(r"^\s{0,3}[-*+]\s+(.*)$")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_MAX_NESTING = 8


def _find_closing(text: str, marker: str, start: int) -> int:
    """Index of the closing ``marker`` for emphasis opened before ``start``, or -1."""
    position = start
    while True:
        found = text.find(marker, position)
        if found < 0:
            return -1
        if found > start and not text[found - 1].isspace() and text[found - 1] != "\\":
            if marker == "_" and found + 1 < len(text) and text[found + 1].isalnum():
                position = found + 1
                continue
            if marker == "*" and text.startswith("**", found):
                position = found + 2
                continue
            return found
        position = found + 1


def _parse_inline(text: str, depth: int = 0) -> tuple[_Inline, ...]:
    nodes: list[_Inline] = []
    plain: list[str] = []

    def flush() -> None:
        if plain:
            nodes.append(_Inline("text", "".join(plain)))
            plain.clear()

    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in _BACKSLASH_ESCAPABLE:
            plain.append(text[i + 1])
            i += 2
            continue
        if char == "`":
            run = len(text) - i - len(text[i:].lstrip("`"))
            fence = "`" * run
            end = text.find(fence, i + run)
            while end >= 0 and text.startswith("`", end + run):
                end = text.find(fence, end + run + 1)
            if end >= 0:
                code = text[i + run : end]
                if len(code) > 1 and code[0] == " " and code[-1] == " " and code.strip():
                    code = code[1:-1]
                flush()
                nodes.append(_Inline("code", code))
                i = end + run
                continue
            plain.append(fence)
            i += run
            continue
        if depth < _MAX_NESTING and text.startswith(("**", "__"), i):
            marker = text[i : i + 2]
            end = _find_closing(text, marker, i + 2)
            if end > i + 2 and not text[i + 2].isspace():
                flush()
                nodes.append(
                    _Inline("strong", children=_parse_inline(text[i + 2 : end], depth + 1))
                )
                i = end + 2
                continue
        if depth < _MAX_NESTING and char in "*_":
            opens_word = char == "*" or i == 0 or not text[i - 1].isalnum()
            end = _find_closing(text, char, i + 1) if opens_word else -1
            if end > i + 1 and not text[i + 1].isspace():
                flush()
                nodes.append(_Inline("em", children=_parse_inline(text[i + 1 : end], depth + 1)))
                i = end + 1
                continue
        if char == "[":
            match = _LINK.match(text, i)
            if match:
                flush()
                label = _parse_inline(match.group(1), _MAX_NESTING)
                href = match.group(2)
                if _SAFE_SCHEME.match(href):
                    nodes.append(_Inline("link", children=label, href=href))
                else:  # javascript:, data:, relative paths: keep the words, drop the link
                    nodes.extend(label)
                i = match.end()
                continue
        if char in "hH":
            match = _BARE_URL.match(text, i)
            if match and (i == 0 or not text[i - 1].isalnum()):
                url = match.group(0).rstrip(".,;:!?")
                flush()
                nodes.append(_Inline("link", children=(_Inline("text", url),), href=url))
                i += len(url)
                continue
        plain.append(char)
        i += 1
    flush()
    return tuple(nodes)


def parse_description(text: str) -> tuple[_Block, ...]:
    """Parse a description into paragraphs and lists of inline nodes."""
    blocks: list[_Block] = []
    paragraph: list[str] = []
    items: list[list[str]] = []

    def close() -> None:
        if paragraph:
            blocks.append(("p", (_parse_inline(" ".join(paragraph)),)))
            paragraph.clear()
        if items:
            blocks.append(("ul", tuple(_parse_inline(" ".join(item)) for item in items)))
            items.clear()

    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if not line:
            close()
            continue
        item = _LIST_ITEM.match(raw)
        heading = _HEADING.match(raw)
        if item:
            if paragraph:
                close()
            items.append([item.group(1).strip()])
        elif heading:  # a heading inside a description would break the page's outline
            close()
            blocks.append(("p", ((_Inline("strong", children=_parse_inline(heading[1])),),)))
        elif items:
            items[-1].append(line)
        else:
            paragraph.append(line)
    close()
    return tuple(blocks)


def _inline_html(nodes: Iterable[_Inline]) -> str:
    out = []
    for node in nodes:
        if node.kind == "text":
            out.append(str(escape(node.text)))
        elif node.kind == "code":
            out.append(f"<code>{escape(node.text)}</code>")
        elif node.kind == "link":
            out.append(f'<a href="{escape(node.href)}">{_inline_html(node.children)}</a>')
        else:
            out.append(f"<{node.kind}>{_inline_html(node.children)}</{node.kind}>")
    return "".join(out)


def description_html(blocks: Sequence[_Block]) -> Markup:
    """Blocks as HTML; every piece of text is escaped, only http(s) links are kept."""
    out = []
    for kind, items in blocks:
        if kind == "p":
            out.append(f"<p>{_inline_html(items[0])}</p>")
        else:
            lis = "".join(f"<li>{_inline_html(item)}</li>" for item in items)
            out.append(f"<ul>{lis}</ul>")
    return Markup("\n".join(out))


def _inline_md(nodes: Iterable[_Inline]) -> str:
    out = []
    for node in nodes:
        if node.kind == "text":
            out.append(md_text(node.text))
        elif node.kind == "code":
            out.append(code_span(node.text.replace("\n", " ")))
        elif node.kind == "link":
            out.append(f"[{_inline_md(node.children)}]({node.href})")
        else:
            mark = "**" if node.kind == "strong" else "*"
            out.append(f"{mark}{_inline_md(node.children)}{mark}")
    return "".join(out)


def description_md(blocks: Sequence[_Block]) -> str:
    """Blocks as Markdown that shows the same thing (and no raw HTML) on GitHub."""
    out = []
    for kind, items in blocks:
        if kind == "p":
            out.append(_inline_md(items[0]))
        else:
            out.append("\n".join(f"- {_inline_md(item)}" for item in items))
    return "\n\n".join(out)


def _inline_text(nodes: Iterable[_Inline]) -> str:
    return "".join(
        n.text if n.kind in ("text", "code") else _inline_text(n.children) for n in nodes
    )


def description_text(blocks: Sequence[_Block]) -> str:
    """Blocks as plain text on one line (for a ``<meta name="description">``)."""
    return " ".join(_inline_text(item) for _, items in blocks for item in items)
