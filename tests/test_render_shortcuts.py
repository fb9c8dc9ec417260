"""Rendering's shortcuts: each gives what the plain way gives.

The expected outputs are in ``test_render`` and the golden pages; these check that the
shortcuts taken for the common case change nothing: Markdown escaping when there is
nothing to escape, code spans with no backtick or line break, text bars and remembered
changes (``filters``), the rounding of trend lines and sparklines (``charts``,
``filters.spark``), and groups left in the order they came when it is already theirs
(``context``).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from hypothesis import example, given
from hypothesis import strategies as st
from tests.chart_arithmetic import line_computed, spark_computed

from casereport.render.charts import _path
from casereport.render.filters import (
    _MD_SPACE,
    _MD_SPECIAL,
    _MINUS,
    _md_escape_match,
    delta,
    md_code,
    md_text,
    number,
    spark,
    textbar,
)
from casereport.render.groups import _group_sort_key
from casereport.render.groups import largest_first as _largest_first

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


# Counts as they come (whole, large, fractional) and values no count has (negative).
_VALUES = st.lists(
    st.integers(0, 10**16)
    | st.floats(-1e6, 1e16, allow_nan=False)
    | st.sampled_from([0, 0.5, 2.5, 2**51 + 0.5, 2**52, -3.7]),
    min_size=1,
    max_size=40,
)


def _outcome(make: Callable[[], str]) -> tuple[str, object]:
    """What ``make`` returns, or the type of error it raises (a scale overflowing)."""
    try:
        return "returns", make()
    except (OverflowError, ValueError) as error:
        return "raises", type(error)


@given(_VALUES, st.sampled_from([1.0, 2.0, 0.0, -1.0]))
@example([3, -2.5, 7], 1.0)
@example([1.1125369292536007e-308], 1.0)  # 100 / top overflows to infinity
def test_trend_lines_round_as_int_does(values: list[float], stretch: float) -> None:
    top = max(values) * stretch
    assert _outcome(lambda: _path(values, top, min(values), True)) == _outcome(
        lambda: line_computed(values, top)
    )


@given(_VALUES)
def test_sparklines_round_as_int_does(values: list[float]) -> None:
    low, high = min(values), max(values)
    assert _outcome(lambda: spark(values, low, high, True)) == _outcome(
        lambda: spark_computed(values, low, high)
    )


@given(st.none() | st.floats() | st.integers(-2, 2), st.sampled_from([20, 4, 1, 0]))
@example(1.0, 0)
@example(0.025, 20)
def test_text_bars_fill_as_the_clamped_share_does(fraction: float | None, width: int) -> None:
    share = 0.0 if fraction is None or fraction != fraction else fraction
    full = round(max(0.0, min(1.0, share)) * width)
    full = 1 if full == 0 and share > 0 else full
    assert textbar(fraction, width) == "█" * full + "░" * (width - full)


@given(st.none() | st.floats() | st.integers(-(10**6), 10**6))
@example(-0.0)
def test_changes_read_the_same_every_time(value: float | None) -> None:
    if value is None:
        expected = "–"
    elif value == 0:
        expected = "±0"
    else:
        expected = ("+" if value > 0 else _MINUS) + number(abs(value))
    assert delta(value) == delta(value) == expected


_GROUP = st.fixed_dictionaries(
    {"group": st.none() | st.sampled_from(["a", "b", "c"]) | st.integers(0, 3)},
    optional={"value": st.lists(st.integers(0, 5) | st.floats(0, 5), max_size=2)},
)


@given(st.lists(_GROUP, max_size=8))
@example([{"group": "b", "value": [2]}, {"group": "a", "value": [2.0]}])  # a tie: by label
@example([{"group": "a", "value": [3]}, {"group": "b", "value": [1]}])  # in order already
@example([{"group": "a", "value": [1]}, {"group": "b", "value": [3]}])
def test_groups_come_largest_first_as_sorting_puts_them(groups: list[dict[str, object]]) -> None:
    assert _largest_first(groups) == sorted(groups, key=_group_sort_key)
