"""One number style for terminal and pages (casereport.numbers), and plurals by count."""

from __future__ import annotations

import pytest

from casereport.numbers import count_of, format_number
from casereport.render.filters import number


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (7.0, "7"),
        (1234, "1,234"),
        (1234567.0, "1,234,567"),
        (1234.5, "1,234.5"),
        (0.125, "0.12"),
        (2.0 / 3, "0.67"),
    ],
)
def test_format_number_and_the_page_filter_agree(value: float, text: str) -> None:
    assert format_number(value) == text
    assert number(value) == text  # what pages show


def test_count_of_says_one_and_many_right() -> None:
    assert count_of(1, "earlier result") == "1 earlier result"
    assert count_of(0, "earlier result") == "0 earlier results"
    assert count_of(12345, "case") == "12,345 cases"
    assert count_of(1.0, "report") == "1 report"
    assert count_of(2, "query", "queries") == "2 queries"
