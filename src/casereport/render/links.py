"""Drill-down links: from a number on a page to the cases behind it in the Datadog app.

Only for data fetched from Datadog (emulator data has no app to open). The URL is the form
Datadog's own docs use for a case search (DATADOG_API.md, "Links into the Datadog app"):
``https://<app host>/cases?query=<the search-bar query, URL-encoded>``. A group's link adds
``field:value`` for each of its fields to the aggregation's query.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from urllib.parse import quote

from casereport.definitions.reading import split_group
from casereport.render.words import simple_query_tree

# The app host of each Datadog site (the first column of the API reference's site tables).
# Kept here rather than read from ``api.settings``: rendering does not import the client.
APP_HOSTS = {
    "datadoghq.com": "app.datadoghq.com",
    "us3.datadoghq.com": "us3.datadoghq.com",
    "us5.datadoghq.com": "us5.datadoghq.com",
    "datadoghq.eu": "app.datadoghq.eu",
    "ap1.datadoghq.com": "ap1.datadoghq.com",
    "ap2.datadoghq.com": "ap2.datadoghq.com",
    "uk1.datadoghq.com": "uk1.datadoghq.com",
    "ddog-gov.com": "app.ddog-gov.com",
    "us2.ddog-gov.com": "us2.ddog-gov.com",
}

# A value that reads as one search term as it is; anything else is quoted.
_PLAIN_VALUE = re.compile(r"[^\s()\"\\:*]+")


def app_host(kind: str, site: str) -> str | None:
    """The Datadog app host to link to for data from ``kind``/``site``; None for emulator
    data and for an API URL given instead of a site (its app is not known)."""
    return APP_HOSTS.get(site) if kind == "datadog" else None


def case_list_url(host: str, query: str) -> str:
    """The app's case list for a search-bar query."""
    return f"https://{host}/cases?query={quote(query, safe='')}"


def _term(field: str, value: str) -> str:
    if _PLAIN_VALUE.fullmatch(value):
        return f"{field}:{value}"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{field}:"{escaped}"'


@functools.lru_cache(maxsize=4096)
def _base(query_filter: str) -> str:
    """The aggregation's query as the start of a group's: a query of anything but plain
    terms goes in parentheses, so that ``a OR b`` stays one condition next to the group's."""
    query = query_filter.strip()
    if not query or simple_query_tree(query) is not None:
        return query
    return f"({query})"


def group_query(query_filter: str, fields: Sequence[str], raw: str) -> str | None:
    """The query of one group: the aggregation's with ``field:value`` for each of the
    group's fields; None when the group has no value to search for (empty, or a group of
    several fields that does not split into one value per field)."""
    parts = split_group(raw, fields)
    if parts is None or not all(parts):
        return None
    terms = " ".join(_term(field, value) for field, value in zip(fields, parts, strict=True))
    base = _base(query_filter)
    return f"{base} {terms}" if base else terms


def group_url(host: str, query_filter: str, fields: Sequence[str], raw: str) -> str | None:
    """The app's case list of one group (see ``group_query``)."""
    query = group_query(query_filter, fields, raw)
    return None if query is None else case_list_url(host, query)
