"""The emulator's case files: load cases from a file, and export a case set.

``load_cases(path)`` reads any of:

- a ``GET /api/v2/cases`` response: a JSON object ``{"data": [Case...], "included": [...]}``
  (``included`` optional: user and project objects, which give handles, project keys and
  names to search and group by);
- a JSON array of Case objects;
- NDJSON: one Case object per line. Tolerated: a line whose ``type`` is ``user`` or
  ``project`` is taken as an ``included`` object.

A case needs ``id``, ``type`` ("case") and ``attributes``; everything else is optional and
unknown fields are kept as they are (a case without ``status`` or ``priority`` simply lacks
that field). A file that breaks these rules fails with one line naming the file and the
record: ``cases.ndjson:17: record 17: missing attributes``, ``cases.json: data[3]:
attributes.status must be a string, got a number``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from casereport.emulator.records import InvalidCaseData
from casereport.emulator.store import CaseStore
from casereport.errors import EmulatorError

__all__ = ["export_cases", "load_cases"]


def load_cases(path: str | os.PathLike[str]) -> CaseStore:
    """A store of the cases in a data file (see the module docstring for the shapes)."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise EmulatorError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise EmulatorError(f"{name}: cannot read the file: {exc.strerror or exc}") from None
    stripped = text.lstrip()
    if not stripped:
        raise EmulatorError(f"{name}: the file is empty; {_SHAPES}")
    if stripped[0] not in "[{":
        return _load_ndjson(name, text)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        if stripped[0] == "{" and _first_line_is_json(text):
            return _load_ndjson(name, text)  # several lines, each a JSON object
        raise EmulatorError(
            f"{name}:{exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})"
        ) from None
    if isinstance(document, list):
        return _build(name, document, [], lambda section, index: f"{name}: [{index}]")
    if isinstance(document, dict) and "data" in document:
        return _load_response(name, document)
    if isinstance(document, dict) and "type" in document:
        # A single record: NDJSON of one line (or one case spread over several lines).
        first_line = text[: len(text) - len(stripped)].count("\n") + 1
        return _load_records(name, [(first_line, document)])
    raise EmulatorError(f"{name}: {_SHAPES}")


_SHAPES = 'expected a JSON object with "data", a JSON array of cases, or NDJSON (one case per line)'
_INCLUDED_TYPES = frozenset({"user", "users", "project", "projects"})


def _first_line_is_json(text: str) -> bool:
    """Is the first non-blank line a JSON value by itself (NDJSON rather than a document)?"""
    for line in text.splitlines():
        if line.strip():
            try:
                json.loads(line)
            except json.JSONDecodeError:
                return False
            return True
    return False


def _load_response(name: str, document: dict[str, Any]) -> CaseStore:
    data, included = document["data"], document.get("included")
    if not isinstance(data, list):
        raise EmulatorError(f'{name}: "data" must be a list of cases, got {_kind_of(data)}')
    if included is None:
        included = []
    if not isinstance(included, list):
        raise EmulatorError(f'{name}: "included" must be a list, got {_kind_of(included)}')
    return _build(name, data, included, lambda section, index: f"{name}: {section}[{index}]")


def _load_ndjson(name: str, text: str) -> CaseStore:
    records: list[tuple[int, Any]] = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append((line_number, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise EmulatorError(
                f"{name}:{line_number}: record {len(records) + 1}: invalid JSON: {exc.msg} "
                f"(column {exc.colno})"
            ) from None
    return _load_records(name, records)


def _load_records(name: str, records: list[tuple[int, Any]]) -> CaseStore:
    """NDJSON records (line number, value): cases, and user or project objects."""
    sections: dict[str, list[Any]] = {"data": [], "included": []}
    # Where each record of a section came from: (line number, record number).
    where: dict[str, list[tuple[int, int]]] = {"data": [], "included": []}
    for number, (line_number, value) in enumerate(records, start=1):
        is_included = isinstance(value, dict) and value.get("type") in _INCLUDED_TYPES
        section = "included" if is_included else "data"
        sections[section].append(value)
        where[section].append((line_number, number))

    def locate(section: str, index: int) -> str:
        line_number, number = where[section][index]
        return f"{name}:{line_number}: record {number}"

    return _build(name, sections["data"], sections["included"], locate)


def _build(
    name: str,
    cases: list[Any],
    included: list[Any],
    locate: Callable[[str, int], str],
) -> CaseStore:
    try:
        return CaseStore.from_cases(cases, included)
    except InvalidCaseData as exc:
        raise EmulatorError(f"{locate(exc.section, exc.index)}: {exc.detail}") from None


def _kind_of(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return "a string" if isinstance(value, str) else "a scalar"


def export_cases(store: CaseStore, out: TextIO, ndjson: bool = False) -> None:
    """Write every case (archived ones too) as a ``GET /api/v2/cases`` response, or NDJSON.

    The response shape (one case per line, then the ``included`` users and projects) loads
    back (``load_cases``) to a store giving the same answers. NDJSON is case objects only, so
    it loads back without user handles and project keys: grouping by project or user then
    shows ids, and searching them matches ids only; every other answer is the same.
    """

    def dump(obj: dict[str, Any]) -> str:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))

    if ndjson:
        for case in store.cases():
            out.write(dump(case) + "\n")
        return
    out.write('{"data":[')
    for index, case in enumerate(store.cases()):
        out.write(("\n" if index == 0 else ",\n") + dump(case))
    out.write('\n],"included":[')
    for index, obj in enumerate(store.included()):
        out.write(("\n" if index == 0 else ",\n") + dump(obj))
    out.write("\n]}\n")
