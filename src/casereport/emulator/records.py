"""Building a case store's columns from Case records (a data file, or a test's list).

A case needs ``id`` (a non-empty string, unique), ``type`` ("case") and ``attributes`` (an
object); everything else is optional and unknown fields are kept as they are. Built-in
fields must be strings (``created_at`` an ISO 8601 timestamp), relationships objects whose
``data`` is null or names an ``id``, the free-form ``attributes`` map strings or lists of
strings; custom attribute values are compared as strings. ``included`` objects (users and
projects) need an ``id`` and a ``type``; the first of each is kept.

:func:`build_columns` checks every record and raises :class:`InvalidCaseData` naming the
first that is not usable and why; ``emulator.datafiles`` turns that into a message naming the
file and line. Apart from the store because validation and interning are one concern, run
once at load time, and the store never needs them to answer a query.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from casereport.emulator.columns import (
    ATTRIBUTE_ALIASES,
    MISSING_TIME,
    STRING_FIELDS,
    USER_RELATIONS,
    CaseColumns,
    CaseSource,
    Column,
    Int32Array,
    MultiColumn,
    RefColumn,
    SingleColumn,
    parse_time,
)

__all__ = ["InvalidCaseData", "build_columns", "included_kind"]


class InvalidCaseData(ValueError):
    """A record handed to ``CaseStore.from_cases`` is not a usable case (or included object).

    ``section`` is ``"data"`` or ``"included"``, ``index`` the record's 0-based position
    there, ``detail`` what is wrong with it.
    """

    def __init__(self, section: str, index: int, detail: str) -> None:
        self.section = section
        self.index = index
        self.detail = detail
        super().__init__(f"{section}[{index}]: {detail}")


class _RecordError(Exception):
    """What is wrong with one record (becomes ``InvalidCaseData``)."""


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


class _Interner:
    """Distinct strings → codes, in order of first appearance."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def code(self, value: str) -> int:
        code = self.index.get(value)
        if code is None:
            code = self.index[value] = len(self.index)
        return code

    @property
    def values(self) -> list[str]:
        return list(self.index)


class _SingleBuilder(_Interner):
    def __init__(self) -> None:
        super().__init__()
        self.codes: list[int] = []

    def add(self, value: str | None) -> None:
        self.codes.append(-1 if value is None else self.code(value))

    def array(self) -> Int32Array:
        return np.array(self.codes, dtype=np.int32)

    def column(self) -> SingleColumn:
        return SingleColumn(self.array(), self.values)


class _MultiBuilder(_Interner):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[int] = []
        self.codes: list[int] = []

    def add(self, row: int, values: Iterable[str]) -> None:
        seen: set[int] = set()
        for value in values:
            code = self.code(value)
            if code not in seen:
                seen.add(code)
                self.rows.append(row)
                self.codes.append(code)

    def column(self, size: int) -> MultiColumn:
        counts = np.bincount(np.array(self.rows, dtype=np.int64), minlength=size)
        offsets = np.zeros(size + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        return MultiColumn(offsets, np.array(self.codes, dtype=np.int32), self.values)


def _string(attributes: Mapping[str, Any], name: str) -> str | None:
    value = attributes.get(name)
    if value is None or isinstance(value, str):
        return value
    raise _RecordError(f"attributes.{name} must be a string, got {_json_type(value)}")


def _timestamp(attributes: Mapping[str, Any], name: str) -> int | None:
    value = _string(attributes, name)
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError:
        raise _RecordError(
            f"attributes.{name} is not an ISO 8601 timestamp: {json.dumps(value)}"
        ) from None


def _optional_object(container: Mapping[str, Any], name: str, path: str) -> Mapping[str, Any]:
    """``container[name]`` when it is an object, an empty one when absent or null."""
    value = container.get(name)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _RecordError(f"{path} must be an object, got {_json_type(value)}")
    return value


def _reference(relationships: Mapping[str, Any], name: str) -> str | None:
    relation = _optional_object(relationships, name, f"relationships.{name}")
    data = relation.get("data")
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise _RecordError(
            f"relationships.{name}.data must be an object or null, got {_json_type(data)}"
        )
    ident = data.get("id")
    if not isinstance(ident, str) or not ident:
        raise _RecordError(f"relationships.{name}.data.id must be a non-empty string")
    return ident


def _free_form(attributes: Mapping[str, Any]) -> dict[str, list[str]]:
    """The ``attributes`` map, keys canonical (case-folded, aliases merged), values lists."""
    raw = _optional_object(attributes, "attributes", "attributes.attributes")
    merged: dict[str, list[str]] = {}
    for key, value in raw.items():
        if isinstance(value, str):
            values = [value]
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            values = value
        elif value is None:
            values = []
        else:
            raise _RecordError(f"attributes.attributes.{key} must be a list of strings")
        folded = str(key).casefold()
        merged.setdefault(ATTRIBUTE_ALIASES.get(folded, folded), []).extend(values)
    return merged


def _scalar_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float | str):
        return str(value)
    return json.dumps(value, sort_keys=True)


def _custom(attributes: Mapping[str, Any]) -> dict[str, list[str]]:
    """Custom attribute values as strings, by case-folded name."""
    raw = _optional_object(attributes, "custom_attributes", "attributes.custom_attributes")
    result: dict[str, list[str]] = {}
    for name, entry in raw.items():
        value = entry.get("value") if isinstance(entry, Mapping) else entry
        items = value if isinstance(value, list) else [value]
        texts = [text for text in map(_scalar_text, items) if text is not None]
        result.setdefault(str(name).casefold(), []).extend(texts)
    return result


class _Builder:
    """Accumulates validated records into columns."""

    def __init__(self) -> None:
        self.size = 0
        self.ids: _SingleBuilder = _SingleBuilder()
        self.strings = {name: _SingleBuilder() for name in STRING_FIELDS}
        self.users = _Interner()
        self.user_codes: dict[str, list[int]] = {name: [] for name in USER_RELATIONS}
        self.projects = _Interner()
        self.project_codes: list[int] = []
        self.created: list[int] = []
        self.archived: list[bool] = []
        self.attributes: dict[str, _MultiBuilder] = {}
        self.custom: dict[str, _MultiBuilder] = {}

    def add(self, record: object) -> None:
        if not isinstance(record, Mapping):
            raise _RecordError(f"expected a case object, got {_json_type(record)}")
        for name in ("id", "type", "attributes"):
            if name not in record:
                raise _RecordError(f"missing {name}")
        ident = record["id"]
        if not isinstance(ident, str) or not ident:
            raise _RecordError(f"id must be a non-empty string, got {_json_type(ident)}")
        if record["type"] != "case":
            raise _RecordError(f'type must be "case", got {json.dumps(record["type"])}')
        attributes = record["attributes"]
        if not isinstance(attributes, Mapping):
            raise _RecordError(f"attributes must be an object, got {_json_type(attributes)}")
        if ident in self.ids.index:
            raise _RecordError(f"duplicate id {json.dumps(ident)}")
        strings = [_string(attributes, name) for name in STRING_FIELDS]
        created = _timestamp(attributes, "created_at")
        archived_at = _string(attributes, "archived_at")
        free_form = _free_form(attributes)
        custom = _custom(attributes)
        relationships = _optional_object(record, "relationships", "relationships")
        users = [_reference(relationships, name) for name in USER_RELATIONS]
        project = _reference(relationships, "project")

        # Valid: record it.
        row = self.size
        self.size += 1
        self.ids.add(ident)
        for name, value in zip(STRING_FIELDS, strings, strict=True):
            self.strings[name].add(value)
        for name, user in zip(USER_RELATIONS, users, strict=True):
            self.user_codes[name].append(-1 if user is None else self.users.code(user))
        self.project_codes.append(-1 if project is None else self.projects.code(project))
        self.created.append(MISSING_TIME if created is None else created)
        self.archived.append(archived_at is not None)
        for key, values in free_form.items():
            self.attributes.setdefault(key, _MultiBuilder()).add(row, values)
        for name, values in custom.items():
            self.custom.setdefault(name, _MultiBuilder()).add(row, values)

    def finish(self, included: list[dict[str, Any]], source: CaseSource) -> CaseColumns:
        by_ref: dict[tuple[str, str], Mapping[str, Any]] = {}
        for obj in included:
            by_ref.setdefault((included_kind(obj["type"]), obj["id"]), obj)
        fields: dict[str, Column] = {"id": self.ids.column()}
        fields.update((name, builder.column()) for name, builder in self.strings.items())
        user_ids = self.users.values
        user_labels, user_matches = _describe(user_ids, "user", ("handle",), by_ref)
        for name, codes in self.user_codes.items():
            fields[name] = RefColumn(
                np.array(codes, dtype=np.int32), user_ids, user_labels, user_matches
            )
        project_ids = self.projects.values
        project_labels, project_matches = _describe(project_ids, "project", ("key",), by_ref)
        fields["project"] = RefColumn(
            np.array(self.project_codes, dtype=np.int32),
            project_ids,
            project_labels,
            project_matches,
        )
        return CaseColumns(
            size=self.size,
            archived=np.array(self.archived, dtype=np.bool_),
            created_ms=np.array(self.created, dtype=np.int64),
            fields=fields,
            attributes={key: b.column(self.size) for key, b in self.attributes.items()},
            custom={name: b.column(self.size) for name, b in self.custom.items()},
            included=included,
            source=source,
        )


def _describe(
    ids: list[str],
    kind: str,
    label_keys: tuple[str, ...],
    by_ref: Mapping[tuple[str, str], Mapping[str, Any]],
) -> tuple[list[str], list[list[str]]]:
    """Group labels and match values of referenced users or projects."""
    match_keys = ("handle", "email", "name") if kind == "user" else ("key", "name")
    labels: list[str] = []
    matches: list[list[str]] = []
    for ident in ids:
        obj = by_ref.get((kind, ident))
        attributes = obj.get("attributes") if obj is not None else None
        if not isinstance(attributes, Mapping):
            attributes = {}
        texts = [attributes.get(key) for key in match_keys]
        matches.append([ident, *(text for text in texts if isinstance(text, str) and text)])
        label = next(
            (attributes[key] for key in label_keys if isinstance(attributes.get(key), str)),
            ident,
        )
        labels.append(label or ident)
    return labels, matches


def _check_included(included: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validated ``included`` objects, first of each (type, id) kept."""
    result: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for index, obj in enumerate(included):
        if not isinstance(obj, Mapping):
            raise InvalidCaseData("included", index, f"expected an object, got {_json_type(obj)}")
        for name in ("id", "type"):
            if name not in obj:
                raise InvalidCaseData("included", index, f"missing {name}")
            if not isinstance(obj[name], str) or not obj[name]:
                raise InvalidCaseData("included", index, f"{name} must be a non-empty string")
        ref = (included_kind(obj["type"]), obj["id"])
        if ref not in seen:
            seen.add(ref)
            result.append(dict(obj))
    return result


class _RecordSource:
    """Case objects as they were loaded: returned as (deep) copies of the records."""

    def __init__(self, records: list[Mapping[str, Any]]) -> None:
        self._records = records

    def case(self, index: int) -> dict[str, Any]:
        return copy.deepcopy(dict(self._records[index]))


def included_kind(type_name: str) -> str:
    """``users``/``user`` → ``user``, ``projects``/``project`` → ``project``."""
    return type_name[:-1] if type_name in ("users", "projects") else type_name


def build_columns(
    cases: Iterable[Mapping[str, Any]], included: Iterable[Mapping[str, Any]] = ()
) -> CaseColumns:
    """The columns of Case objects (``GET /api/v2/cases`` ``data``) and their ``included``.

    Raises ``InvalidCaseData`` naming the first record that is not a usable case.
    """
    builder = _Builder()
    records: list[Mapping[str, Any]] = []
    for index, record in enumerate(cases):
        try:
            builder.add(record)
        except _RecordError as exc:
            raise InvalidCaseData("data", index, str(exc)) from None
        records.append(record)
    return builder.finish(_check_included(included), _RecordSource(records))
