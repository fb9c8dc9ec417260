"""Over-long queries: the emulator answers a quick 400 and stays responsive; report files
are refused at ``validate`` with file:line:col, before any API call."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from casereport.definitions.expand import expand_workspace
from casereport.definitions.load import check_query
from casereport.definitions.query import MAX_QUERY_LENGTH, QuerySyntaxError, parse

KEYS = {"DD-API-KEY": "k-api", "DD-APPLICATION-KEY": "k-app"}
TOO_LONG = f"over the limit of {MAX_QUERY_LENGTH}"


def aggregate(query_filter: str) -> dict:
    return {
        "data": {
            "type": "aggregate",
            "attributes": {
                "query_filter": query_filter,
                "group_by": {"groups": ["status"], "limit": 3},
            },
        }
    }


# Each some 900 KB: what a plain list of terms costs, and what wildcards and free text
# in parentheses cost (minutes, before queries had a length limit).
HOSTILE = {
    "terms": " ".join(["status:open"] * 75_000),
    "free-text": "(" * 45 + " ".join(["x"] * 450_000) + ")" * 45,
    "wildcards": "title:*" + "a*" * 450_000,
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_900_kb_query_gets_a_quick_400_and_the_emulator_answers_next(emulator, name: str) -> None:
    server = emulator(cases=2000)
    query = HOSTILE[name]
    assert len(query) > 850_000
    url = f"{server.url}/api/v2/cases/aggregate"
    started = time.perf_counter()
    response = httpx.post(url, json=aggregate(query), headers=KEYS, timeout=10)
    assert time.perf_counter() - started < 2
    assert response.status_code == 400
    assert response.json() == {
        "errors": [
            {
                "status": "400",
                "title": "Bad Request",
                "detail": f"query_filter is {len(query)} characters long, {TOO_LONG}",
                "source": {"pointer": "/data/attributes/query_filter"},
            }
        ]
    }
    assert len(response.content) < 1_000  # the query is not echoed back
    started = time.perf_counter()
    again = httpx.post(url, json=aggregate("status:open"), headers=KEYS, timeout=10)
    assert again.status_code == 200
    assert time.perf_counter() - started < 1


def test_search_and_count_refuse_over_long_queries_too(emulator) -> None:
    server = emulator(cases=200)
    query = "x " * MAX_QUERY_LENGTH
    for path, param in (("/api/v2/cases", "filter"), ("/api/v2/cases/count", "query_filter")):
        response = httpx.get(f"{server.url}{path}", params={param: query}, headers=KEYS, timeout=10)
        assert response.status_code == 400
        assert response.json()["errors"][0]["detail"] == (
            f"{param} is {len(query)} characters long, {TOO_LONG}"
        )


def test_a_query_at_the_limit_is_fine_one_character_more_is_not(emulator) -> None:
    server = emulator(cases=200)
    words = ("status:open " * MAX_QUERY_LENGTH)[:MAX_QUERY_LENGTH]
    assert check_query(words) is None
    url = f"{server.url}/api/v2/cases/aggregate"
    assert httpx.post(url, json=aggregate(words), headers=KEYS).status_code == 200
    assert httpx.post(url, json=aggregate(words + "x"), headers=KEYS).status_code == 400
    with pytest.raises(QuerySyntaxError) as caught:
        parse(words + "x")
    assert caught.value.position == MAX_QUERY_LENGTH
    assert caught.value.reason == (
        f"query is {MAX_QUERY_LENGTH + 1} characters long, {TOO_LONG}: shorten it"
    )
    assert check_query(words + "x") == (caught.value.reason, MAX_QUERY_LENGTH)


def test_report_files_with_over_long_queries_fail_validate_where_the_limit_is_passed(
    tmp_path: Path,
) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    long_query = "status:open " + "title:word " * 400  # 4,412 characters, plain
    (reports / "long.yaml").write_text(
        "title: T\n"
        "vars:\n"
        f"  q: '{long_query.strip()}'\n"
        "aggregations:\n"
        "  plain:\n"
        f"    query_filter: {long_query.strip()}\n"
        "    group_by: [status]\n"
        "    limit: 3\n"
        "  expanded:\n"
        '    query_filter: "${var.q}"\n'
        "    group_by: [status]\n"
        "    limit: 3\n"
    )
    _, expansion = expand_workspace(tmp_path)
    lines = [str(d).replace(f"{tmp_path}/", "") for d in expansion.diagnostics]
    reason = f"query is {len(long_query.strip())} characters long, {TOO_LONG}: shorten it"
    assert lines[0] == (
        f"reports/long.yaml:6:{19 + MAX_QUERY_LENGTH}: error: invalid query_filter: {reason}"
    )
    assert lines[1].startswith(f"reports/long.yaml:10:20: error: invalid query_filter: {reason}")
    assert len(lines) == 2
