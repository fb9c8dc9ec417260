"""Filters' quick paths (``render/filters.py``): each gives what the full escaping gives.

The filters' expected outputs are in ``test_render``; these check that the shortcuts
taken for the common case (nothing to escape, no backtick, no line break) change nothing.
"""

from __future__ import annotations

import re

from hypothesis import example, given
from hypothesis import strategies as st

from casereport.render.filters import _MD_SPACE, _MD_SPECIAL, _md_escape_match, md_code, md_text

# Text rich in what the escaping looks at: specials, digits, line breaks, Unicode digits.
_TEXT = st.text(st.sampled_from("ab _-#+=.)1٣`*[]<>|~&;\r\n\t "), max_size=12) | st.text()


def _md_text_in_full(text: str) -> str:
    return _MD_SPECIAL.sub(_md_escape_match, _MD_SPACE.sub(" ", text))


def _md_code_in_full(text: str) -> str:
    text = _MD_SPACE.sub(" ", text)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


@given(_TEXT)
@example("10 groups came back")
@example("12) twelve")
@example("٣. three")
@example("-")
@example("")
def test_md_text_escapes_as_the_full_substitution_does(text: str) -> None:
    assert md_text(text) == _md_text_in_full(text)


@given(_TEXT)
@example("service:api -status:closed")
@example("a\r\nb")
def test_md_code_fences_as_the_full_substitution_does(text: str) -> None:
    assert md_code(text) == _md_code_in_full(text)
