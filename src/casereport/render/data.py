"""A report's data files: ``<report>.json`` and ``<report>.csv``, built from state.

The same numbers as the report's pages, for other tools: each aggregation's total and
groups (raw value, display label, count) and what they are compared with (the run that
``compare:`` picks, as the pages do). Both formats are documented in ``docs/data-files.md``;
the JSON's schema is ``data_file_schema`` (``casereport schema --data-file``).

Output is deterministic: aggregations in the report's order, groups in ``order:`` order
(ties by count, then raw value), keys in a fixed order, no wall-clock time. orjson writes
the JSON: a site of 10,000 aggregations writes 1,000 of these files on every rebuild, and
it is several times faster than the standard library's ``json`` with the same output rules.

The CSV is RFC 4180 (CRLF line ends, quoted where needed: what the ``csv`` module writes)
and guards against formula injection (a spreadsheet runs a cell starting with ``=``,
``+``, ``-`` or ``@`` as a formula): see ``csv_text``.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson

from casereport.checks.results import CheckResult
from casereport.definitions.expand import AggregationSpec, ReportSpec
from casereport.definitions.reading import (
    ENUM_ORDERS,
    ORDER_NATURAL,
    Reading,
    display_label,
    order_key,
)
from casereport.render.checks_view import data_checks, report_results
from casereport.render.compare import compared_run
from casereport.state.comparable import comparable_history
from casereport.state.history import count
from casereport.state.model import AggregationState, Source

__all__ = [
    "CSV_COLUMNS",
    "DATA_FORMAT_VERSION",
    "csv_text",
    "data_files",
    "data_json",
    "report_data",
]

DATA_FORMAT_VERSION: Final = 1

CSV_COLUMNS: Final = (
    "report",
    "address",
    "title",
    "fetched_at",
    "total",
    "compared_fetched_at",
    "compared_total",
    "group",
    "label",
    "count",
    "compared_count",
)

# What a spreadsheet reads as the start of a formula (OWASP's list: tab and carriage
# return too), and the apostrophe that marks a guarded cell (so it is guarded as well:
# removing one leading apostrophe then always gives the value back).
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r", "'")
_NO_COUNT: Final = (0,)
# What makes a CSV cell quoted (RFC 4180): the delimiter, the quote, a line break.
_NEEDS_QUOTES: Final = re.compile('[,"\r\n]')


@functools.lru_cache(maxsize=16384)  # values repeat across aggregations (OPEN, P1, ...)
def _label(raw: str, fields: tuple[str, ...], reading: Reading) -> str:
    return display_label(raw, fields, reading)


_order_key = functools.lru_cache(maxsize=1024)(order_key)


@functools.lru_cache(maxsize=1024)
def _plain(fields: tuple[str, ...], reading: Reading) -> tuple[bool, bool]:
    """Whether ``order_key`` sorts these groups by count alone (no enum field to put in
    its meaning's order), and whether every label is the raw value (no ``labels:``, no
    enum field): each spares the general code, several times slower, for every group."""
    enums = any(field in ENUM_ORDERS for field in fields)
    by_count = reading.order == "count" or (reading.order == ORDER_NATURAL and not enums)
    return by_count, not reading.labels and not enums


def _largest_first(item: tuple[str, float]) -> tuple[float, str]:
    return (-item[1], item[0])


def clear_caches() -> None:
    """Forget memoised labels and order keys (for benchmarks and tests)."""
    for cached in (_label, _order_key, _plain, _text_cell):
        cached.cache_clear()


def _group_name(raw: Any) -> str:
    """A group's value as text, as the pages and history name it ("" when the API sent none)."""
    return raw if type(raw) is str else "" if raw is None else str(raw)


def _source(source: Source | None) -> dict[str, str] | None:
    return None if source is None else source.to_json()


def aggregation_data(spec: AggregationSpec, state: AggregationState | None) -> dict[str, Any]:
    """One aggregation of a data file: its definition, total, groups and comparison."""
    data: dict[str, Any] = {
        "address": spec.address,
        "title": spec.title,
        "query_filter": spec.query_filter,
        "group_by": list(spec.groups),
        "limit": spec.limit,
        "compare": spec.reading.compare,
        "fetched_at": None,
        "total": None,
        "compared_with": None,
        "groups": [],
    }
    if state is None:
        return data
    result = state.result
    history = comparable_history(state)  # since the query last changed, as the pages
    # The run the page compares with, picked the same way (render.compare).
    compared = compared_run(history, state.fetched_at, spec.reading, spec.limit)
    before: Mapping[str, float] = {}
    absent_is_zero = False
    if compared.found and compared.total is not None and compared.groups is not None:
        before = compared.groups
        data["compared_with"] = {"fetched_at": compared.stamp, "total": count(compared.total)}
        # A group that run did not record had no cases then, unless it recorded as many
        # groups as it could (its limit, or an old entry's largest few): then unknown.
        absent_is_zero = len(before) < compared.capacity
    fields, reading = spec.groups, spec.reading
    counted: list[tuple[str, float]] = []
    for group in result.get("groups") or ():
        raw = group.get("group")
        value = (group.get("value") or _NO_COUNT)[0]
        if type(value) is float and value.is_integer():  # (the API's 42.0 written as 42)
            value = int(value)
        counted.append((raw if type(raw) is str else _group_name(raw), value))
    # Ties (in every order) by count, then by raw value: the same order whatever the API's.
    by_count, plain = _plain(fields, reading)
    if not by_count:
        key = _order_key(fields, reading)
        counted.sort(key=lambda item: (*key(*item), -item[1], item[0]))
    elif not all(map(operator.gt, counts := [c for _, c in counted], counts[1:])):
        counted.sort(key=_largest_first)  # (the API sends them so, as a rule: no ties)
    absent = 0 if absent_is_zero else None
    rows = [
        {
            "group": name,
            "label": name if plain else _label(name, fields, reading),
            "count": number,
            "compared_count": before.get(name, absent),
        }
        for name, number in counted
    ]
    data.update(fetched_at=state.fetched_at, total=count(result["total"]), groups=rows)
    return data


def report_data(
    report: ReportSpec,
    aggregations: Mapping[str, AggregationState],
    source: Source | None,
    checks: Sequence[CheckResult] | None = None,
) -> dict[str, Any]:
    """The content of ``<report>.json`` as plain data (keys in the order they are written);
    ``checks``: the report's check results, when the caller has them evaluated already."""
    data: dict[str, Any] = {
        "format_version": DATA_FORMAT_VERSION,
        "report": report.name,
        "title": report.title,
        "source": _source(source),
        "aggregations": [
            aggregation_data(spec, aggregations.get(spec.address)) for spec in report.aggregations
        ],
    }
    if report.has_checks:  # (only then: the files of reports without checks stay as they were)
        data["checks"] = data_checks(
            report_results(report, aggregations) if checks is None else checks
        )
    return data


def data_json(data: Mapping[str, Any]) -> str:
    """``report_data`` as the JSON file's text: indented, UTF-8 (not escaped), a final newline."""
    return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE).decode()


@functools.lru_cache(maxsize=16384)  # group values and labels repeat (OPEN, P1, ...)
def _text_cell(text: str) -> str:
    """A text cell as written: guarded against formula injection (a leading apostrophe
    where the text starts like a formula, or with an apostrophe, so that one is always the
    guard's), then quoted as RFC 4180 and the ``csv`` module (``QUOTE_MINIMAL``) quote."""
    if text.startswith(_FORMULA_STARTS):
        text = f"'{text}"
    if _NEEDS_QUOTES.search(text) is None:
        return text
    return '"' + text.replace('"', '""') + '"'


def _number(value: float | None) -> str:
    return "" if value is None else str(value)


def csv_text(data: Mapping[str, Any]) -> str:
    """``report_data`` as the CSV file's text: a header row (``CSV_COLUMNS``), then one row
    per aggregation and group; an aggregation without groups (not fetched yet, or no case
    in any group) has one row with the group's cells empty, so its total is still there.

    Every text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab, a carriage return
    or an apostrophe gets one more apostrophe in front (OWASP's advice against formula
    injection): a spreadsheet shows the text, and removing one leading apostrophe from a
    text cell that has one gives the exact value back (the JSON holds it untouched).
    Numbers and timestamps are never guarded (ours: digits, ``.``, ``e``, ``T``, ``Z``).

    The rows are joined here rather than by ``csv.writer``: an aggregation's first seven
    cells are the same on each of its rows and are quoted once, and the cells of a row
    are then a single f-string; through the ``csv`` module, building and writing the
    tuples took as long as the rest of the data files. The output is the module's, byte
    for byte (a test compares them on hostile values).
    """
    lines = [",".join(CSV_COLUMNS) + "\r\n"]
    report = _text_cell(data["report"])
    for item in data["aggregations"]:
        compared = item["compared_with"] or {}
        head = (
            f"{report},{_text_cell(item['address'])},{_text_cell(item['title'])},"
            f"{item['fetched_at'] or ''},{_number(item['total'])},"
            f"{compared.get('fetched_at', '')},{_number(compared.get('total'))},"
        )
        groups = item["groups"]
        if not groups:
            lines.append(f"{head},,,\r\n")
        for group in groups:
            name, label, was = group["group"], group["label"], group["compared_count"]
            name_cell = _text_cell(name)
            label_cell = name_cell if label is name else _text_cell(label)
            lines.append(
                f"{head}{name_cell},{label_cell},{group['count']},{'' if was is None else was}\r\n"
            )
    return "".join(lines)


def data_files(
    report: ReportSpec,
    aggregations: Mapping[str, AggregationState],
    source: Source | None,
    checks: Sequence[CheckResult] | None = None,
) -> dict[str, str]:
    """``<report>.json`` and ``<report>.csv``: site-relative file name -> text (``checks``
    as for ``report_data``)."""
    data = report_data(report, aggregations, source, checks)
    return {f"{report.name}.csv": csv_text(data), f"{report.name}.json": data_json(data)}
