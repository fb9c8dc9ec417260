"""The trend's look-up tables give what the arithmetic gives.

A trend reads each whole-number count's height on the plot, its sparkline level and the
count itself from tables (``charts._height_texts``, ``filters._levels``,
``history._small_counts``) instead of computing them value by value. These check that
each table's answer is the computed one, for ints and for the equal floats a page mixes
with them (this run's count is a float, earlier ones are ints), and that a value no table
holds (a fraction, a count past the table, a value outside the range) still reads as it
did. ``test_render_shortcuts`` checks the arithmetic itself against ``int()``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from tests.chart_arithmetic import line_computed, spark_computed

from casereport.render.charts import _path, clear_caches, nice_scale
from casereport.render.filters import _levels, spark
from casereport.state.history import History, _parse_numbers

# Whole counts as both types, and now and then a fraction no table holds.
_COUNT = st.integers(0, 2500) | st.integers(0, 2500).map(float) | st.sampled_from([0.5, 7.25])
_COUNTS = st.lists(_COUNT, min_size=1, max_size=40)


@given(_COUNTS, st.sampled_from([None, 1.0, 1.5, 3.0]))
@example([0, 100.0, 37], None)
@example([2000, 1999.0], None)  # the largest scale with a table
@example([2001, 7], None)  # past it: computed
@example([3, 2.5, 1], None)  # a fraction after whole numbers have been looked up
def test_trend_line_heights_from_the_table_are_the_computed_ones(
    values: list[float], stretch: float | None
) -> None:
    # The trend's scale ends at a round number (``nice_scale``); any end is checked too.
    top = nice_scale(max(values))[0] if stretch is None else max(values) * stretch
    clear_caches()
    assert _path(values, top, min(values), True) == line_computed(values, top)
    assert _path(values, top, min(values), True) == line_computed(values, top)  # cached


_NARROW = st.integers(0, 5000).flatmap(
    lambda base: st.lists(
        st.integers(base, base + 40) | st.integers(base, base + 40).map(float),
        min_size=1,
        max_size=40,
    )
)


@given(_NARROW | _COUNTS)
@example([5, 9.0, 7, 5.0])
@example([90, 91, 92, 100.0])
@example([1, 2.5, 3])
def test_sparkline_levels_from_the_table_are_the_computed_ones(values: list[float]) -> None:
    low, high = min(values), max(values)
    assert spark(values, low, high, True) == spark_computed(values, low, high)
    # Another range's table, with the same values: each is read on its own scale.
    assert spark(values, low - 1, high + 2, True) == spark_computed(values, low - 1, high + 2)


def _outcome(make: Callable[[], str]) -> tuple[str, object]:
    try:
        return "returns", make()
    except IndexError as error:  # a level past the last character
        return "raises", type(error)


@pytest.mark.parametrize(
    ("values", "low", "high"),
    [
        ([1, 2, 3], 1, 2),  # above the range: past the last level, as computed
        ([1, 2, 3], 0.5, 3),  # an end that is not a whole number: no table
        ([1, 2, 3], 3, 1),  # reversed
        ([2, 3], 2, 10**17),  # wider than the values are long: no table
        ([2**53, 2**53 + 1], 2**53, 2**53 + 1),  # past the largest end a table is made for
    ],
)
def test_a_sparkline_no_table_answers_for_reads_as_computed(
    values: list[float], low: float, high: float
) -> None:
    assert _outcome(lambda: spark(values, low, high, True)) == _outcome(
        lambda: spark_computed(values, low, high)
    )


def test_a_sparkline_with_a_gap_leaves_a_space() -> None:
    assert spark([1, None, 3], 1, 3) == "▁ █"


@given(st.lists(st.integers(0, 20000) | st.sampled_from(["007", "1.5", "2e3"]), min_size=1))
@example(["9999", "10000"])
def test_counts_read_from_the_table_are_what_int_reads(parts: list[int | str]) -> None:
    texts = [str(p) for p in parts]
    try:
        expected: list[float] = list(map(int, texts))
    except ValueError:
        expected = list(map(float, texts))
    read = _parse_numbers(texts)
    assert read == expected
    assert [type(v) for v in read] == [type(v) for v in expected]


def test_a_history_column_reads_the_same_through_the_table() -> None:
    history = History(
        {
            "fetched_at": "2026-11-24T06:00:00Z 2026-11-25T06:00:00Z 2026-11-26T06:00:00Z",
            "total": "12 10000 7",
            "groups": {"A": "3 _ 0", "B": "1 2 3", "C": "0.5 2 3"},
        }
    )
    assert history.totals() == [12, 10000, 7]
    assert history.group_counts("A") == [3, None, 0]
    assert history.group_counts("B") == [1, 2, 3]
    assert [type(v) for v in history.group_counts("B") or ()] == [int, int, int]
    assert history.group_counts("C") == [0.5, 2.0, 3.0]
    assert [type(v) for v in history.group_counts("C") or ()] == [float, float, float]


def test_a_long_sparkline_over_a_wide_range_keeps_no_table() -> None:
    # A table per range is kept (1,024 of them): a history of 1,000 runs must not keep
    # tables of a thousand entries each. Its sparkline is computed, the same.
    values = list(range(1000))
    _levels.cache_clear()
    assert spark(values, 0, 999, True) == spark_computed(values, 0, 999)
    assert _levels.cache_info().currsize == 0
    assert spark(values[:40], 0, 39, True) == spark_computed(values[:40], 0, 39)
    assert _levels.cache_info().currsize == 1  # a narrow one is tabled
