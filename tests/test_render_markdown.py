"""Report descriptions (``render/markdown.py``): written out as HTML, as Markdown for
GitHub and as one line of text, with nothing unsafe getting through any of them."""

from __future__ import annotations

import re

import pytest

from casereport.render.markdown import (
    description_html,
    description_md,
    description_text,
    parse_description,
)


def _described(text: str) -> tuple[str, str, str]:
    blocks = parse_description(text)
    return (
        str(description_html(blocks)),
        description_md(blocks),
        description_text(blocks),
    )


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
