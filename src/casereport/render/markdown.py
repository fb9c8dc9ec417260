"""Report descriptions: the Markdown report authors write, rendered safely.

markdown-it-py parses them (CommonMark, as GitHub does), so a description shows what its
author saw in the pull request: headings, numbered and nested lists, tables, code blocks,
quotes. It replaced a hand-written subset that knew only paragraphs, ``- `` lists and a
few inlines. What comes through:

- CommonMark with raw HTML off: HTML anywhere (inline, a block, a table cell, a heading,
  link text) shows as text;
- GitHub's tables, and bare ``http(s)://`` URLs as links (linkify-it-py, markdown-it-py's
  own engine for them, which knows where a URL ends: trailing punctuation, parentheses);
- links and autolinks to ``http``, ``https`` and ``mailto`` only: any other link
  (``javascript:``, ``data:``, ``vbscript:``, ``file:``, relative) keeps its words and
  loses the link (``_allowed_link``, markdown-it's ``validateLink``, which sees the URL
  with entities decoded);
- an image shows its alt text: a page loads nothing from elsewhere;
- headings move below the page's own: the description's first heading level becomes the
  ``heading_level`` the page asks for (``h2`` under a report's ``h1``, ``h3`` under an
  index entry's ``h2``), a level never skips and none goes past ``h6``.

The tokens are written three ways: HTML (markdown-it's renderer, with rules that keep
lists on one line and paragraphs' line breaks as spaces, as these pages always had them),
Markdown for GitHub (written here, every text escaped by ``filters.md_text``, so no raw
HTML and no other link can come through; mdformat, measured on the same tokens, escapes
only the first bracket of ``<script>``, leaves ``2 * 3`` unescaped and keeps line breaks,
so today's pages would change, and it needs a plugin for tables and markdown-it-py below
4) and one line of plain text for ``<meta name="description">``.
markdown-it-py is imported on the first description, not when ``casereport`` starts.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape

from casereport.render.filters import code_span, md_text

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.renderer import RendererHTML
    from markdown_it.token import Token
    from markdown_it.tree import SyntaxTreeNode

_LINK_SCHEMES = ("http://", "https://", "mailto:")
# In a link destination "(", ")" and an entity would change the URL GitHub reads.
_MD_HREF_SPECIAL = re.compile(r"[()\\]|&(?=#?\w+;)")
_ASCII_PUNCTUATION = re.compile(r"[!-/:-@\[-`{-~]")
_SPACES = re.compile(r"[ \t\r\n]+")
_CLOSING_HASHES = re.compile(r"(^|[ \t])(#+)$")  # would end an ATX heading: not its text
_LIST_TAGS = ("bullet_list", "ordered_list", "list_item")


def _allowed_link(url: str) -> bool:
    """``http``, ``https`` and ``mailto`` links only (``url`` has its entities decoded)."""
    return url.strip().lower().startswith(_LINK_SCHEMES)


# Normalising a URL (punycode, percent-encoding) is a tenth of parsing a description, and
# the same links (runbooks, dashboards) come back across a site's descriptions: once each,
# as markdown-it's own methods do it.
@functools.lru_cache(maxsize=4096)
def _normalized_link(url: str) -> str:
    from markdown_it.common.normalize_url import normalizeLink

    return normalizeLink(url)


@functools.lru_cache(maxsize=4096)
def _normalized_link_text(link: str) -> str:
    from markdown_it.common.normalize_url import normalizeLinkText

    return normalizeLinkText(link)


def clear_caches() -> None:
    """Forget memoised link normalisation (for benchmarks and tests)."""
    _normalized_link.cache_clear()
    _normalized_link_text.cache_clear()


@functools.cache
def _parser() -> MarkdownIt:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": True, "xhtmlOut": False})
    md.enable(["table", "linkify"])
    assert md.linkify is not None, "linkify-it-py is a dependency"
    md.linkify.set({"fuzzy_link": False, "fuzzy_email": False})  # "x.com", "a@b.c": text
    for schema in ("ftp:", "//", "mailto:"):  # bare http(s) URLs only, as before
        md.linkify.add(schema, None)
    md.validateLink = _allowed_link  # type: ignore[method-assign]
    md.normalizeLink = _normalized_link  # type: ignore[method-assign]
    md.normalizeLinkText = _normalized_link_text  # type: ignore[method-assign]
    for name, rule in _HTML_RULES.items():
        md.add_render_rule(name, rule)
    return md


def parse_description(text: str) -> tuple[Token, ...]:
    """Parse a description; each heading's depth below the description's top is in its ``meta``."""
    tokens = tuple(_parser().parse(text))
    headings = [t for t in tokens if t.type in ("heading_open", "heading_close")]
    top = min((int(t.tag[1:]) for t in headings), default=1)
    depth = -1
    for token in headings:
        if token.type == "heading_open":
            depth = min(int(token.tag[1:]) - top, depth + 1)  # never a level skipped
        token.meta["depth"] = depth
    for token in tokens:
        if token.type == "th_open":
            token.attrSet("scope", "col")  # as on the page's own tables
    return tokens


def _heading_level(token: Token | SyntaxTreeNode, heading_level: int) -> int:
    return min(heading_level + int(token.meta["depth"]), 6)


def _plain(tokens: Sequence[Token] | None) -> str:
    """Inline tokens as plain text: the words, code, and the alt text of images."""
    return "".join(
        t.content
        if t.type in ("text", "code_inline")
        else " "
        if t.type in ("softbreak", "hardbreak")
        else _plain(t.children)
        for t in tokens or ()
    )


def _code(content: str) -> str:
    """A code block's text ending in a newline (a fence left open at the end has none)."""
    return content if not content or content.endswith("\n") else content + "\n"


# -- HTML: markdown-it's renderer, with these rules -------------------------------------


def _text(self: RendererHTML, tokens: Sequence[Token], idx: int, *_: Any) -> str:
    return str(escape(tokens[idx].content))  # markupsafe's escaping, as every page's text


def _code_inline(self: RendererHTML, tokens: Sequence[Token], idx: int, *_: Any) -> str:
    return f"<code>{escape(tokens[idx].content)}</code>"


def _code_block(self: RendererHTML, tokens: Sequence[Token], idx: int, *_: Any) -> str:
    # Fenced or indented alike, in a scrolling box like the page's tables.
    return f'<div class="wrap"><pre><code>{escape(_code(tokens[idx].content))}</code></pre></div>\n'


def _softbreak(*_: Any) -> str:
    return " "  # a paragraph's line breaks are spaces, as GitHub shows them


def _image(self: RendererHTML, tokens: Sequence[Token], idx: int, *_: Any) -> str:
    return str(escape(_plain(tokens[idx].children)))  # the alt text, never an <img>


def _heading(self: RendererHTML, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    level = _heading_level(token, env["heading_level"])
    return f"<h{level}>" if token.nesting == 1 else f"</h{level}>\n"


def _list_tag(self: RendererHTML, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    # A list on one line (<ul><li>a</li><li>b</li></ul>), as the pages always showed it.
    token = tokens[idx]
    html = self.renderToken(tokens, idx, options, env).strip("\n")
    return html + "\n" if token.nesting == -1 and token.level == 0 else html


def _table(self: RendererHTML, tokens: Sequence[Token], idx: int, *_: Any) -> str:
    return '<div class="wrap"><table>\n' if tokens[idx].nesting == 1 else "</table></div>\n"


_HTML_RULES: dict[str, Callable[..., str]] = {  # (renderer, tokens, idx, options, env)
    "text": _text,
    "code_inline": _code_inline,
    "code_block": _code_block,
    "fence": _code_block,
    "softbreak": _softbreak,
    "image": _image,
    "heading_open": _heading,
    "heading_close": _heading,
    "table_open": _table,
    "table_close": _table,
    **{f"{tag}_{end}": _list_tag for tag in _LIST_TAGS for end in ("open", "close")},
}


def description_html(tokens: Sequence[Token], heading_level: int = 2) -> Markup:
    """The description as HTML: text escaped, only allowed links, headings from ``h{level}``."""
    md = _parser()
    html = md.renderer.render(tokens, md.options, {"heading_level": heading_level})
    return Markup(html.rstrip("\n"))


# -- Markdown: written from the tokens --------------------------------------------------


def description_md(tokens: Sequence[Token], heading_level: int = 2) -> str:
    """The description as Markdown that GitHub shows the same way, with no raw HTML."""
    from markdown_it.tree import SyntaxTreeNode

    return _md_blocks(SyntaxTreeNode(tokens).children, heading_level, tight=False)


def _md_blocks(nodes: Sequence[SyntaxTreeNode], heading_level: int, tight: bool) -> str:
    out: list[str] = []
    previous = ""
    alternate = False
    for node in nodes:
        # Two lists in a row take turns with "-"/"*" (or "."/")"): one marker would merge them.
        alternate = node.type == previous and not alternate
        out.append(_md_block(node, heading_level, alternate))
        previous = node.type
    return ("\n" if tight else "\n\n").join(out)


def _md_block(node: SyntaxTreeNode, heading_level: int, alternate: bool) -> str:
    kind = node.type
    if kind == "paragraph":
        return _md_inline(node.children[0].children)
    if kind == "heading":
        text = _CLOSING_HASHES.sub(r"\1\\\2", _md_inline(node.children[0].children, "heading"))
        return f"{'#' * _heading_level(node, heading_level)} {text}".rstrip()
    if kind in ("bullet_list", "ordered_list"):
        return _md_list(node, heading_level, alternate)
    if kind == "blockquote":
        body = _md_blocks(node.children, heading_level, tight=False)
        return "\n".join(f"> {line}" if line else ">" for line in body.split("\n"))
    if kind in ("fence", "code_block"):
        content = _code(node.content)
        longest = max((len(run) for run in re.findall(r"`+", content)), default=0)
        fence = "`" * max(3, longest + 1)
        return f"{fence}\n{content}{fence}"  # content ends with a newline, or is empty
    if kind == "table":
        return _md_table(node)
    return "***"  # hr, the only block left: "---" under a line of text makes a heading


def _md_list(node: SyntaxTreeNode, heading_level: int, alternate: bool) -> str:
    items = node.children
    tight = any(c.type == "paragraph" and c.hidden for item in items for c in item.children)
    start = int(node.attrs.get("start", 1))
    out = []
    for number, item in enumerate(items, start):
        if node.type == "bullet_list":
            marker = "*" if alternate else "-"
        else:
            marker = f"{number}{')' if alternate else '.'}"
        body = _md_blocks(item.children, heading_level, tight).split("\n")
        indent = " " * (len(marker) + 1)
        lines = [f"{marker} {body[0]}".rstrip()]
        lines.extend(indent + line if line else "" for line in body[1:])
        out.append("\n".join(lines))
    return ("\n" if tight else "\n\n").join(out)


def _md_table(node: SyntaxTreeNode) -> str:
    rows = [row for section in node.children for row in section.children]
    lines = [_md_row(row) for row in rows]
    delimiters = []
    for cell in rows[0].children:
        align = str(cell.attrs.get("style", "")).removeprefix("text-align:")
        left = ":" if align in ("left", "center") else ""
        right = ":" if align in ("right", "center") else ""
        delimiters.append(f"{left}---{right}")
    lines.insert(1, "|" + "|".join(delimiters) + "|")
    return "\n".join(lines)


def _md_row(row: SyntaxTreeNode) -> str:
    cells = [_md_inline(c.children[0].children, "cell") if c.children else "" for c in row.children]
    return "| " + " | ".join(cell or " " for cell in cells) + " |"


def _md_inline(nodes: Sequence[SyntaxTreeNode], where: str = "text") -> str:
    """Inline nodes as Markdown; ``where``: ``text``, or a one-line ``heading`` or ``cell``."""
    out = []
    for node in nodes:
        kind = node.type
        if kind == "text":
            out.append(md_text(node.content))
        elif kind == "code_inline":
            code = code_span(node.content)
            out.append(code.replace("|", "\\|") if where == "cell" else code)  # "|" ends a cell
        elif kind == "softbreak":
            out.append(" ")
        elif kind == "hardbreak":
            out.append("\\\n" if where == "text" else " ")
        elif kind in ("em", "strong"):
            inner = _md_inline(node.children, where)
            # "*" against an inner "*" would merge with it ("*" + "*u*" + "*" reads as bold).
            mark = "_" if inner[:1] == "*" or inner[-1:] == "*" else "*"
            mark = mark * 2 if kind == "strong" else mark
            out.append(f"{mark}{inner}{mark}")
        elif kind == "link":
            href = _MD_HREF_SPECIAL.sub(lambda m: "\\" + m[0], str(node.attrs["href"]))
            title = str(node.attrs.get("title", ""))
            if title:
                title = ' "' + _ASCII_PUNCTUATION.sub(r"\\\g<0>", _SPACES.sub(" ", title)) + '"'
            if out and out[-1].endswith("!"):  # "![" would make it an image
                out[-1] = out[-1][:-1] + "\\!"
            out.append(f"[{_md_inline(node.children, where)}]({href}{title})")
        elif kind == "image":
            out.append(md_text(_plain(node.token.children if node.token else None)))
    return "".join(out)


# -- Plain text ---------------------------------------------------------------------------


def description_text(tokens: Sequence[Token]) -> str:
    """The description as plain text on one line (for a ``<meta name="description">``)."""
    words = []
    for token in tokens:
        if token.type == "inline":
            words.append(_plain(token.children))
        elif token.type in ("fence", "code_block"):
            words.append(token.content)
    return _SPACES.sub(" ", " ".join(words)).strip()
