"""What a case's fields are: which hold one value per case, which can hold several.

Datadog's Case object (DATADOG_API.md) has fixed single-valued fields (``status``,
``priority``, ``project``, the user relations, ...) and a free-form ``attributes`` map whose
values are lists of strings (``team``, ``services``, ...), plus custom attributes that may be
multi-valued. Grouping by single-valued fields puts each case in at most one group, so
groups that add up to the total are all the groups there are; grouping by any other field
can count a case in several groups, and no sum says whether groups were left out.

``KNOWN_FIELDS`` is the one list of the fields casereport knows, for ``group_by`` and for
the fields of a ``query_filter`` alike; any other name is read as a key of the case's
attributes, and is accepted without a warning once declared in ``casereport.toml``
(``attributes = ["region"]``).
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["KNOWN_FIELDS", "SINGLE_VALUED_FIELDS", "all_single_valued"]

# A case's fields with one value at most: its attributes outside the free-form map, and the
# single relations (a case has one project, one assignee, one creator, one last modifier).
SINGLE_VALUED_FIELDS = frozenset(
    {
        "key",
        "title",
        "description",
        "status",
        "status_name",
        "status_group",
        "priority",
        "type",
        "type_id",
        "creation_source",
        "project",
        "assignee",
        "created_by",
        "modified_by",
    }
)

# Every case field casereport knows, to search or group by: the Case object's attributes and
# relations (DATADOG_API.md), the keys every case's free-form ``attributes`` map has, and the
# singular spellings real data also shows (the emulator reads them as aliases of the plural
# keys). Archived cases are never searched, but ``archived_at`` is still a field.
KNOWN_FIELDS = (
    "status",
    "status_name",
    "status_group",
    "priority",
    "type",
    "type_id",
    "key",
    "title",
    "description",
    "creation_source",
    "project",
    "assignee",
    "created_by",
    "modified_by",
    "created_at",
    "modified_at",
    "closed_at",
    "archived_at",
    "team",
    "services",
    "service",
    "environments",
    "env",
    "datacenters",
    "datacenter",
    "versions",
    "version",
)


def all_single_valued(fields: Iterable[str]) -> bool:
    """Whether every one of ``fields`` holds at most one value per case (names are matched
    as the API matches them, whatever their case); an unknown field may hold several."""
    return all(field.lower() in SINGLE_VALUED_FIELDS for field in fields)
