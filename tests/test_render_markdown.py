"""Report descriptions (``render/markdown.py``): CommonMark through markdown-it-py, written
out as HTML, as Markdown for GitHub and as one line of text, with nothing unsafe getting
through any of them."""

from __future__ import annotations

import re
import subprocess
import sys
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from casereport.render.markdown import (
    description_html,
    description_md,
    description_text,
    parse_description,
)

ALLOWED_SCHEMES = ("http://", "https://", "mailto:")


def _described(text: str) -> tuple[str, str, str]:
    blocks = parse_description(text)
    return (
        str(description_html(blocks)),
        description_md(blocks),
        description_text(blocks),
    )


# -- what the pages showed before markdown-it-py, byte for byte -----------------------------


def test_description_subset_renders_to_html() -> None:
    html, markdown, text = _described(
        "Cases in the **SUP** project, *not* `closed`.\nSee [the runbook](https://x.example/r?a=1&b=2)."
        "\n\n- one\n- two_three"
    )
    assert html == (
        "<p>Cases in the <strong>SUP</strong> project, <em>not</em> <code>closed</code>. "
        'See <a href="https://x.example/r?a=1&amp;b=2">the runbook</a>.</p>\n'
        "<ul><li>one</li><li>two_three</li></ul>"
    )
    assert markdown == (
        "Cases in the **SUP** project, *not* `closed`. "
        "See [the runbook](https://x.example/r?a=1&b=2).\n\n- one\n- two_three"
    )
    assert text == "Cases in the SUP project, not closed. See the runbook. one two_three"


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "[click](javascript:alert(1))",
        "[click](JavaScript:alert`1`)",
        "[click](data:text/html,<script>alert(1)</script>)",
        '[x](https://ok.example" onmouseover="alert(1))',
        "`<b>` **<i>bold</i>**",
        "<a href='javascript:alert(1)'>x</a>",
    ],
)
def test_description_never_lets_markup_or_unsafe_links_through(hostile: str) -> None:
    html, markdown, _ = _described(hostile)
    assert "<script" not in html and "<img" not in html and "<i>" not in html
    assert "javascript:" not in re.sub(r">[^<]*<", "><", html)  # never inside a tag
    assert not re.search(r'href="(?!https?://)', html)
    assert "onmouseover=" not in re.sub(r">[^<]*<", "><", html)
    assert "<" not in re.sub(r"`[^`]*`", "", markdown.replace("\\<", ""))


def test_description_keeps_unclosed_markers_as_text() -> None:
    html, markdown, _ = _described("2 * 3 = 6 and a_b_c, **open")
    assert html == "<p>2 * 3 = 6 and a_b_c, **open</p>"
    assert markdown == "2 \\* 3 = 6 and a_b_c, \\*\\*open"


# -- what descriptions can hold now ---------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "html", "markdown", "text"),
    [
        pytest.param(
            'The security project\'s queue & "more".',
            "<p>The security project&#39;s queue &amp; &#34;more&#34;.</p>",
            'The security project\'s queue & "more".',
            'The security project\'s queue & "more".',
            id="text-escaped-by-markupsafe-as-the-pages-always-had-it",
        ),
        pytest.param(
            "See https://x.example/a_b, (http://y.example/p?q=1). Not www.z.example, "
            "ftp://f.example, mailto:m@x.example or m@x.example.",
            '<p>See <a href="https://x.example/a_b">https://x.example/a_b</a>, '
            '(<a href="http://y.example/p?q=1">http://y.example/p?q=1</a>). Not www.z.example, '
            "ftp://f.example, mailto:m@x.example or m@x.example.</p>",
            "See [https://x.example/a_b](https://x.example/a_b), "
            "([http://y.example/p?q=1](http://y.example/p?q=1)). Not www.z.example, "
            "ftp://f.example, mailto:m@x.example or m@x.example.",
            "See https://x.example/a_b, (http://y.example/p?q=1). Not www.z.example, "
            "ftp://f.example, mailto:m@x.example or m@x.example.",
            id="bare-http-urls-become-links-and-nothing-else-does",
        ),
        pytest.param(
            "[a](javascript:alert(1)) and [b](&#106;avascript:x)",
            "<p>[a](javascript:alert(1)) and [b](javascript:x)</p>",
            "\\[a\\](javascript:alert(1)) and \\[b\\](javascript:x)",
            "[a](javascript:alert(1)) and [b](javascript:x)",
            id="hostile-links-keep-their-words",
        ),
        pytest.param(
            "<javascript:alert(1)> and [c](<javascript:x>)",
            "<p>&lt;javascript:alert(1)&gt; and [c](&lt;javascript:x&gt;)</p>",
            "\\<javascript:alert(1)\\> and \\[c\\](\\<javascript:x\\>)",
            "<javascript:alert(1)> and [c](<javascript:x>)",
            id="hostile-autolinks-keep-their-words",
        ),
        pytest.param(
            "<div>\n<script>alert(1)</script>\n</div>",
            "<p>&lt;div&gt; &lt;script&gt;alert(1)&lt;/script&gt; &lt;/div&gt;</p>",
            "\\<div\\> \\<script\\>alert(1)\\</script\\> \\</div\\>",
            "<div> <script>alert(1)</script> </div>",
            id="raw-html-blocks-show-as-text",
        ),
        pytest.param(
            "# Why\n\nBecause.\n\n### How <b>\n\n###### Deep\n\nSetext\n------",
            "<h2>Why</h2>\n<p>Because.</p>\n<h3>How &lt;b&gt;</h3>\n<h4>Deep</h4>\n<h3>Setext</h3>",
            "## Why\n\nBecause.\n\n### How \\<b\\>\n\n#### Deep\n\n### Setext",
            "Why Because. How <b> Deep Setext",
            id="headings-below-the-page-never-skipping-a-level",
        ),
        pytest.param(
            "3. first\n4. second\n   - a `x`\n   - b\n     1. deep\n5. third",
            '<ol start="3"><li>first</li><li>second<ul><li>a <code>x</code></li><li>b<ol>'
            "<li>deep</li></ol></li></ul></li><li>third</li></ol>",
            "3. first\n4. second\n   - a `x`\n   - b\n     1. deep\n5. third",
            "first second a x b deep third",
            id="numbered-and-nested-lists",
        ),
        pytest.param(
            "- one\n\n- two\n\n  more\n\n* other\n\n1) x",
            "<ul><li><p>one</p>\n</li><li><p>two</p>\n<p>more</p>\n</li></ul>\n"
            "<ul><li>other</li></ul>\n<ol><li>x</li></ol>",
            "- one\n\n- two\n\n  more\n\n* other\n\n1. x",
            "one two more other x",
            id="loose-lists-and-two-lists-in-a-row",
        ),
        pytest.param(
            "| Team | Cases | Link |\n|:-----|------:|:----:|\n"
            "| <b>SUP</b> | `a\\|b` | [wiki](https://w.example/a?b=1&c=2) |\n"
            "| [x](javascript:alert(1)) | 2 |",
            '<div class="wrap"><table>\n<thead>\n<tr>\n'
            '<th style="text-align:left" scope="col">Team</th>\n'
            '<th style="text-align:right" scope="col">Cases</th>\n'
            '<th style="text-align:center" scope="col">Link</th>\n</tr>\n</thead>\n<tbody>\n'
            '<tr>\n<td style="text-align:left">&lt;b&gt;SUP&lt;/b&gt;</td>\n'
            '<td style="text-align:right"><code>a|b</code></td>\n'
            '<td style="text-align:center"><a href="https://w.example/a?b=1&amp;c=2">wiki</a>'
            "</td>\n</tr>\n"
            '<tr>\n<td style="text-align:left">[x](javascript:alert(1))</td>\n'
            '<td style="text-align:right">2</td>\n<td style="text-align:center"></td>\n</tr>\n'
            "</tbody>\n</table></div>",
            "| Team | Cases | Link |\n|:---|---:|:---:|\n"
            "| \\<b\\>SUP\\</b\\> | `a\\|b` | [wiki](https://w.example/a?b=1&c=2) |\n"
            "| \\[x\\](javascript:alert(1)) | 2 |   |",
            "Team Cases Link <b>SUP</b> a|b wiki [x](javascript:alert(1)) 2",
            id="tables-with-html-and-a-bad-link-in-cells",
        ),
        pytest.param(
            "```html\n<script>alert(1)</script>\n```\n\n    <b>indented</b>\n\n"
            "````\n```nested```\n````",
            '<div class="wrap"><pre><code>&lt;script&gt;alert(1)&lt;/script&gt;\n'
            "</code></pre></div>\n"
            '<div class="wrap"><pre><code>&lt;b&gt;indented&lt;/b&gt;\n</code></pre></div>\n'
            '<div class="wrap"><pre><code>```nested```\n</code></pre></div>',
            "```\n<script>alert(1)</script>\n```\n\n```\n<b>indented</b>\n```\n\n"
            "````\n```nested```\n````",
            "<script>alert(1)</script> <b>indented</b> ```nested```",
            id="fenced-and-indented-code",
        ),
        pytest.param(
            "> **Note** <i>this</i>\n> - and a list",
            "<blockquote>\n<p><strong>Note</strong> &lt;i&gt;this&lt;/i&gt;</p>\n"
            "<ul><li>and a list</li></ul></blockquote>",
            "> **Note** \\<i\\>this\\</i\\>\n>\n> - and a list",
            "Note <i>this</i> and a list",
            id="blockquotes",
        ),
        pytest.param(
            "one  \ntwo\\\nthree\nfour\n\n---\n\nafter",
            "<p>one<br>\ntwo<br>\nthree four</p>\n<hr>\n<p>after</p>",
            "one\\\ntwo\\\nthree four\n\n***\n\nafter",
            "one two three four after",
            id="line-breaks-and-rules",
        ),
        pytest.param(
            "![logo <b>](https://x.example/l.png) at <https://y.example/>, <ops@x.example> "
            'or [mail](mailto:ops@x.example "Ops & co")!',
            '<p>logo &lt;b&gt; at <a href="https://y.example/">https://y.example/</a>, '
            '<a href="mailto:ops@x.example">ops@x.example</a> '
            'or <a href="mailto:ops@x.example" title="Ops &amp; co">mail</a>!</p>',
            "logo \\<b\\> at [https://y.example/](https://y.example/), "
            '[ops@x.example](mailto:ops@x.example) or [mail](mailto:ops@x.example "Ops \\& co")!',
            "logo <b> at https://y.example/, ops@x.example or mail!",
            id="images-as-alt-text-autolinks-mailto",
        ),
    ],
)
def test_what_people_write_shows_as_written_and_safe(
    source: str, html: str, markdown: str, text: str
) -> None:
    assert _described(source) == (html, markdown, text)


@pytest.mark.parametrize(
    ("source", "level", "expected"),
    [
        ("## a\n\n#### b", 2, ["h2", "h3"]),  # the first level used is the top
        ("### a\n\n# b\n\n###### c", 3, ["h3", "h3", "h4"]),  # a level never skips
        ("# a\n\n## b\n\n### c\n\n#### d\n\n##### e", 3, ["h3", "h4", "h5", "h6", "h6"]),
    ],
)
def test_headings_start_where_the_page_asks_and_never_skip(
    source: str, level: int, expected: list[str]
) -> None:
    tokens = parse_description(source)
    assert re.findall(r"<(h\d)>", str(description_html(tokens, level))) == expected
    hashes = re.findall(r"^(#+) ", description_md(tokens, level), re.MULTILINE)
    assert [f"h{len(h)}" for h in hashes] == expected


def test_a_heading_keeps_a_hash_at_its_end() -> None:
    html, markdown, _ = _described("# C# and F \\#")
    assert html == "<h2>C# and F #</h2>"
    assert markdown == "## C# and F \\#"  # not the closing sequence GitHub would drop


def test_an_image_after_an_exclamation_mark_stays_a_link() -> None:
    html, markdown, _ = _described("Wow!https://x.example and ![a](https://x.example/i.png)")
    assert html == '<p>Wow!<a href="https://x.example">https://x.example</a> and a</p>'
    assert markdown == "Wow\\![https://x.example](https://x.example) and a"


def test_link_destinations_are_written_so_github_reads_the_same_url() -> None:
    html, markdown, _ = _described("[a](https://x.example/a_(b)?c=1&amp;copy;)")
    assert html == '<p><a href="https://x.example/a_(b)?c=1&amp;copy;">a</a></p>'
    assert markdown == "[a](https://x.example/a_\\(b\\)?c=1\\&copy;)"


# -- nothing unsafe, whatever is written --------------------------------------------------

HOSTILE = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//x.example/x.js></SCRIPT>",
    "<div onclick=alert(1)>\n\n*block*\n\n</div>",
    "<!-- comment --><?php x ?><![CDATA[x]]>",
    "a <b onmouseover=alert(1)>bold</b> inline",
    "[<img src=x onerror=alert(1)>](https://ok.example)",
    "# <script>alert(1)</script>",
    "| <b>a</b> | b |\n|---|---|\n| <img src=x> | <a href=javascript:alert(1)>c</a> |",
    "`<script>` and\n\n```\n</code></pre><script>alert(1)</script>\n```",
    "    <iframe src=javascript:alert(1)>",
    "> <svg onload=alert(1)>",
    "[a](javascript:alert(1)) [b](JAVASCRIPT:alert(1)) [c](JaVaScRiPt:alert(1))",
    "[a](&#106;avascript:alert(1)) [b](&#x6A;avascript:alert(1)) [c](javascript&#58;alert(1))",
    "[a](java%0ascript:alert(1)) [b]( javascript:alert(1)) [c](<javascript:alert(1)>)",
    "[a](\tjavascript:alert(1)) [b](javascript\t:alert(1))",
    "[a](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==) [b](data:image/png;base64,x)",
    "[a](vbscript:msgbox(1)) [b](VBScript:msgbox(1)) [c](file:///etc/passwd)",
    "[a](/relative) [b](//evil.example) [c](#top) [d](?q=1) [e](./x.html)",
    "<javascript:alert(1)> <JavaScript:alert(1)> <data:text/html,x> <vbscript:x> <file:///x>",
    "[a][ref]\n\n[ref]: javascript:alert(1)",
    '[a][ok]\n\n[ok]: https://ok.example "t" onmouseover="alert(1)',
    "![x](javascript:alert(1)) ![y](https://x.example/y.png) ![z][img]\n\n[img]: data:image/png;x",
    '![a "b" onerror=alert(1)](https://x.example/i.png "c")',
    "[**bold** <i>link</i>](https://ok.example 'title \" onmouseover=alert(1)')",
    "&lt;script&gt; &#60;script&#62; \\<script\\>",
]


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_comment(self, data: str) -> None:
        self.tags.append(("!--", {}))

    def handle_pi(self, data: str) -> None:
        self.tags.append(("?", {}))

    def handle_decl(self, decl: str) -> None:
        self.tags.append(("!", {}))

    def unknown_decl(self, data: str) -> None:
        self.tags.append(("![", {}))


ALLOWED_TAGS = {
    "p", "br", "hr", "em", "strong", "code", "pre", "blockquote", "ul", "ol", "li",
    "h2", "h3", "h4", "h5", "h6", "div", "table", "thead", "tbody", "tr", "th", "td", "a",
}  # fmt: skip


def _assert_safe_html(html: str) -> None:
    parser = _Tags()
    parser.feed(html)
    parser.close()
    for tag, attrs in parser.tags:
        assert tag in ALLOWED_TAGS, (tag, html)
        for name, value in attrs.items():
            allowed = {
                ("a", "href"), ("a", "title"), ("ol", "start"), ("div", "class"),
                ("th", "style"), ("td", "style"), ("th", "scope"),
            }  # fmt: skip
            assert (tag, name) in allowed, (tag, name, html)
            assert value is not None
            if name == "href":
                assert value.lower().startswith(ALLOWED_SCHEMES), (value, html)
            if name == "style":
                assert re.fullmatch(r"text-align:(left|center|right)", value), html


# GitHub's renderer, as near as markdown-it gets: raw HTML on, every link scheme accepted.
GITHUB_LIKE = MarkdownIt("commonmark", {"html": True}).enable("table")
GITHUB_LIKE.validateLink = lambda url: True  # type: ignore[method-assign]


def _assert_safe_markdown(markdown: str) -> None:
    def walk(tokens: list[Any]) -> None:
        for token in tokens:
            assert token.type not in ("html_block", "html_inline", "image"), (token, markdown)
            if token.type == "link_open":
                href = str(token.attrs["href"]).lower()
                assert href.startswith(ALLOWED_SCHEMES), (href, markdown)
            walk(token.children or [])

    walk(GITHUB_LIKE.parse(markdown))


@pytest.mark.parametrize("hostile", HOSTILE)
def test_no_html_no_image_and_no_other_link_gets_through(hostile: str) -> None:
    html, markdown, text = _described(hostile)
    _assert_safe_html(html)
    _assert_safe_markdown(markdown)
    assert "\n" not in text


def test_deep_nesting_and_long_runs_render_without_recursion_errors() -> None:
    for source in ("> " * 300 + "x", "- " * 300 + "x", "*" * 5000 + "x", "[" * 3000 + "x"):
        html, markdown, _ = _described(source)
        _assert_safe_html(html)
        _assert_safe_markdown(markdown)


FRAGMENTS = [
    "a", "b c", " ", "\n", "\n\n", "# ", "### ", "- ", "* ", "1. ", "2) ", "> ", "    ", "```",
    "~~~", "`", "*", "**", "_", "__", "[", "]", "(", ")", "<", ">", "!", "|", "---", "\\", "=",
    "| a | b |\n|---|---|\n", "&amp;", "&#106;", "&#x3C;", "javascript:alert(1)",
    "data:text/html,x", "https://x.example/p_q", "mailto:a@b.example", "<script>", "<b>",
    "</b>", "<img src=x onerror=alert(1)>", '"', "'", "  \n", "[t](https://a.example/c)",
    "![i](https://a.example/i.png)", "<https://a.example>", "[ref]", "\n[ref]: javascript:x\n",
]  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=30).map("".join))
def test_any_mix_of_markup_stays_safe_in_html_markdown_and_text(source: str) -> None:
    html, markdown, text = _described(source)
    _assert_safe_html(html)
    _assert_safe_markdown(markdown)
    assert "\n" not in text and text == text.strip()


# Descriptions as people write them: blocks of words, emphasis, code, links and hostile text.
_WORDS = st.sampled_from(
    ["cases", "SUP", "snake_case", "2 * 3", "a<b", "&", "&amp;", "C#", "1.", "-", "#tag",
     "x|y", "~", "\\", "<b>bold</b>", "<script>", "[x]", "it's", '"q"', "=", "+1", "_u_"]
)  # fmt: skip
_INLINE = st.one_of(
    _WORDS,
    _WORDS.map(lambda w: f"**{w}**"),
    _WORDS.map(lambda w: f"*{w}*"),
    st.sampled_from(["`code`", "`` a`b ``", "`<b>`", "` x `"]),
    st.sampled_from(
        [
            "[docs](https://x.example/a_(b)?c=1&d=2)",
            "[bad](javascript:alert(1))",
            "<https://y.example/p>",
            "https://z.example/q.",
            "<ops@x.example>",
            "![alt](https://x.example/i.png)",
            '[t](https://x.example "a \\"b\\" | c")',
        ]
    ),
)
_LINE = st.lists(_INLINE, min_size=1, max_size=6).map(" ".join)
_CELL = _LINE.map(lambda line: line.replace("|", "\\|"))
_BLOCK = st.one_of(
    st.lists(_LINE, min_size=1, max_size=3).map("\n".join),
    st.tuples(st.integers(1, 6), _LINE).map(lambda h: "#" * h[0] + " " + h[1]),
    st.lists(_LINE, min_size=1, max_size=3).map(lambda items: "\n".join(f"- {i}" for i in items)),
    st.lists(_LINE, min_size=1, max_size=3).map(
        lambda items: "\n".join(f"{n}. {i}" for n, i in enumerate(items, 7))
    ),
    st.tuples(_LINE, _LINE).map(lambda pair: f"- {pair[0]}\n  - {pair[1]}"),
    _LINE.map(lambda line: f"> {line}"),
    st.sampled_from(["```\n<b>x</b>\n```", "````\n```\n````", "    code <i>"]),
    st.tuples(_CELL, _CELL, _CELL).map(lambda c: f"| {c[0]} | {c[1]} |\n|---|--:|\n| {c[2]} |"),
    st.just("---"),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_BLOCK, min_size=1, max_size=5).map("\n\n".join))
def test_the_markdown_shows_what_the_html_shows(source: str) -> None:
    tokens = parse_description(source)
    html = str(description_html(tokens))
    markdown = description_md(tokens)
    assert str(description_html(parse_description(markdown))) == html, markdown


# -- markdown-it-py only when a description is rendered ------------------------------------


def test_markdown_it_is_imported_only_to_render_a_description() -> None:
    code = (
        "import sys; from casereport.render.context import _description; "
        "loaded = 'markdown_it' in sys.modules; _description('**x**', 2); "
        "print(loaded, 'markdown_it' in sys.modules)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout == "False True\n"


# -- parsed once for a report's page and its index entry -----------------------------------


@pytest.mark.parametrize("text", ["A **plain** one.", "# Why\n\nIt has a heading.\n\n## More"])
def test_a_description_is_parsed_once_and_written_as_at_each_level(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from casereport.render import context

    parsed: list[str] = []
    monkeypatch.setattr(
        context, "parse_description", lambda text: parsed.append(text) or parse_description(text)
    )
    context.clear_caches()
    for level in (2, 3):
        tokens = parse_description(text)
        assert context._description(text, level) == {
            "description": text,
            "description_html": description_html(tokens, level),
            "description_md": description_md(tokens, level),
            "description_text": description_text(tokens),
        }
    assert parsed == [text]
    context.clear_caches()
