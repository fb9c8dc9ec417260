"""The emulator over real HTTP: shapes, auth, validation, rate limits and faults."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from casereport.emulator.app import RateLimiter

KEYS = {"DD-API-KEY": "k-api", "DD-APPLICATION-KEY": "k-app"}
SEED_EXAMPLE = (
    b'{"data":{"attributes":{"group_by":{"groups":["status"],"limit":14},'
    b'"query_filter":"service:case-api"},"type":"aggregate"}}'
)


def _case(number: int, status: str, priority: str, services: list[str], **extra: Any) -> dict:
    attributes = {
        "key": f"SUP-{number}",
        "title": extra.pop("title", f"Case number {number}"),
        "description": "",
        "status": status,
        "priority": priority,
        "type": "STANDARD",
        "created_at": f"2026-01-{number:02d}T00:00:00Z",
        "attributes": {"services": services, "team": ["support"]},
        **extra,
    }
    return {
        "id": f"00000000-0000-0000-0000-{number:012d}",
        "type": "case",
        "attributes": attributes,
    }


CASES = [
    _case(1, "OPEN", "P1", ["case-api"]),
    _case(2, "OPEN", "P2", ["case-api", "billing"]),
    _case(3, "CLOSED", "P2", ["case-api"]),
    _case(4, "IN_PROGRESS", "P3", ["billing"]),
    _case(5, "OPEN", "P3", ["checkout"]),
    _case(6, "CLOSED", "P4", ["case-api"], archived_at="2026-02-01T00:00:00Z"),
]


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "cases.json"
    path.write_text(json.dumps({"data": CASES}))
    return path


def aggregate_body(query_filter: str, groups: list[str], limit: int) -> dict:
    return {
        "data": {
            "type": "aggregate",
            "attributes": {
                "query_filter": query_filter,
                "group_by": {"groups": groups, "limit": limit},
            },
        }
    }


def test_seed_example_answers_with_the_documented_shape(emulator, data_file: Path) -> None:
    server = emulator(data=data_file)
    response = httpx.post(
        f"{server.url}/api/v2/cases/aggregate", content=SEED_EXAMPLE, headers=KEYS
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    data = response.json()["data"]
    assert data["type"] == "aggregate"
    assert data["id"].startswith("agg-")
    # Case 6 is archived and never counts.
    assert data["attributes"] == {
        "total": 3.0,
        "groups": [{"group": "OPEN", "value": [2.0]}, {"group": "CLOSED", "value": [1.0]}],
    }
    for header in ("limit", "period", "remaining", "reset", "name"):
        assert f"x-ratelimit-{header}" in response.headers


def test_response_ids_are_unique(emulator, data_file: Path) -> None:
    server = emulator(data=data_file)
    ids = {
        httpx.post(
            f"{server.url}/api/v2/cases/aggregate", content=SEED_EXAMPLE, headers=KEYS
        ).json()["data"]["id"]
        for _ in range(5)
    }
    assert len(ids) == 5


def test_several_group_by_fields_join_values_in_order(emulator, data_file: Path) -> None:
    server = emulator(data=data_file)
    body = aggregate_body("status:open", ["status", "priority"], 10)
    response = httpx.post(f"{server.url}/api/v2/cases/aggregate", json=body, headers=KEYS)
    assert response.json()["data"]["attributes"]["groups"] == [
        {"group": "OPEN / P1", "value": [1.0]},
        {"group": "OPEN / P2", "value": [1.0]},
        {"group": "OPEN / P3", "value": [1.0]},
    ]


@pytest.mark.parametrize(
    ("headers", "status", "body"),
    [
        ({}, 401, {"errors": ["Unauthorized"]}),
        ({"DD-API-KEY": "k-api"}, 401, {"errors": ["Unauthorized"]}),
        ({"DD-API-KEY": "wrong", "DD-APPLICATION-KEY": "k-app"}, 403, {"errors": ["Forbidden"]}),
        ({"DD-API-KEY": "k-api", "DD-APPLICATION-KEY": "wrong"}, 403, {"errors": ["Forbidden"]}),
        ({"Authorization": "Bearer other"}, 403, {"errors": ["Forbidden"]}),
        ({"Authorization": "Bearer tok"}, 200, None),
        (KEYS, 200, None),
        # Datadog's official client sends every credential it has: one right one is enough.
        ({**KEYS, "Authorization": "Bearer tok"}, 200, None),
        ({**KEYS, "Authorization": "Bearer other"}, 200, None),
        (
            {"DD-API-KEY": "wrong", "DD-APPLICATION-KEY": "k-app", "Authorization": "Bearer tok"},
            200,
            None,
        ),
        ({"DD-API-KEY": "k-api", "Authorization": "Bearer tok"}, 200, None),
        (
            {"DD-API-KEY": "wrong", "DD-APPLICATION-KEY": "x", "Authorization": "Bearer other"},
            403,
            {"errors": ["Forbidden"]},
        ),
    ],
)
def test_authentication(emulator, data_file: Path, headers: dict, status: int, body: Any) -> None:
    server = emulator(data=data_file, api_key="k-api", app_key="k-app", bearer_token="tok")
    response = httpx.post(
        f"{server.url}/api/v2/cases/aggregate", content=SEED_EXAMPLE, headers=headers
    )
    assert response.status_code == status
    if body is not None:
        assert response.json() == body


def test_official_client_with_keys_and_a_token_is_accepted(emulator, data_file: Path) -> None:
    """Datadog's own client, configured with both keys and an OAuth token, sends all three
    headers: one right credential lets it in, whichever the server knows."""
    from datadog_api_client import ApiClient, Configuration
    from datadog_api_client.exceptions import ForbiddenException
    from datadog_api_client.v2.api.case_management_api import CaseManagementApi
    from datadog_api_client.v2.model.case_aggregate_group_by import CaseAggregateGroupBy
    from datadog_api_client.v2.model.case_aggregate_request import CaseAggregateRequest
    from datadog_api_client.v2.model.case_aggregate_request_attributes import (
        CaseAggregateRequestAttributes,
    )
    from datadog_api_client.v2.model.case_aggregate_request_data import CaseAggregateRequestData
    from datadog_api_client.v2.model.case_aggregate_resource_type import (
        CaseAggregateResourceType,
    )

    body = CaseAggregateRequest(
        data=CaseAggregateRequestData(
            type=CaseAggregateResourceType.AGGREGATE,
            attributes=CaseAggregateRequestAttributes(
                query_filter="status:open",
                group_by=CaseAggregateGroupBy(groups=["status"], limit=5),
            ),
        )
    )

    def total(server: Any, api_key: str, token: str) -> float:
        configuration = Configuration(host=server.url, access_token=token)
        configuration.api_key["apiKeyAuth"] = api_key
        configuration.api_key["appKeyAuth"] = "k-app"
        configuration.retries = 0
        with ApiClient(configuration) as api_client:
            return CaseManagementApi(api_client).aggregate_cases(body=body).data.attributes.total

    keys_only = emulator(data=data_file, api_key="k-api", app_key="k-app")
    both = emulator(data=data_file, api_key="k-api", app_key="k-app", bearer_token="tok")
    assert total(keys_only, "k-api", "any-token") == 3.0  # the keys are right
    assert total(both, "wrong", "tok") == 3.0  # the token is right (so it was sent)
    assert total(both, "k-api", "other") == 3.0  # the keys are right
    with pytest.raises(ForbiddenException):
        total(both, "wrong", "other")


def test_any_keys_are_accepted_when_none_are_configured(emulator, data_file: Path) -> None:
    server = emulator(data=data_file)
    response = httpx.post(
        f"{server.url}/api/v2/cases/aggregate",
        content=SEED_EXAMPLE,
        headers={"DD-API-KEY": "a", "DD-APPLICATION-KEY": "b"},
    )
    assert response.status_code == 200


def _attrs(**overrides: Any) -> dict:
    attributes: dict[str, Any] = {
        "query_filter": "service:case-api",
        "group_by": {"groups": ["status"], "limit": 14},
    }
    attributes.update(overrides)
    return {"data": {"type": "aggregate", "attributes": attributes}}


BAD_BODIES = [
    (b"{not json", "malformed JSON body: ", None),
    (b"[1, 2]", "the body must be a JSON object, got an array", ""),
    (b"{}", "missing required field 'data'", "/data"),
    (json.dumps({"data": []}).encode(), "'data' must be an object, got an array", "/data"),
    (
        json.dumps({"data": {"attributes": {}}}).encode(),
        "missing required field 'data.type'",
        "/data/type",
    ),
    (
        json.dumps({"data": {"type": "search", "attributes": {}}}).encode(),
        "'data.type' must be 'aggregate', got 'search'",
        "/data/type",
    ),
    (
        json.dumps({"data": {"type": "aggregate"}}).encode(),
        "missing required field 'data.attributes'",
        "/data/attributes",
    ),
    (
        json.dumps({"data": {"type": "aggregate", "attributes": {"group_by": {}}}}).encode(),
        "missing required field 'data.attributes.query_filter'",
        "/data/attributes/query_filter",
    ),
    (
        json.dumps(_attrs(query_filter=5)).encode(),
        "'data.attributes.query_filter' must be a string, got an integer",
        "/data/attributes/query_filter",
    ),
    (
        json.dumps(_attrs(group_by={"limit": 3})).encode(),
        "missing required field 'data.attributes.group_by.groups'",
        "/data/attributes/group_by/groups",
    ),
    (
        json.dumps(_attrs(group_by={"groups": ["status"]})).encode(),
        "missing required field 'data.attributes.group_by.limit'",
        "/data/attributes/group_by/limit",
    ),
    (
        json.dumps(_attrs(group_by={"groups": ["status"], "limit": "3"})).encode(),
        "'data.attributes.group_by.limit' must be an integer, got a string",
        "/data/attributes/group_by/limit",
    ),
    (
        json.dumps(_attrs(group_by={"groups": ["status"], "limit": True})).encode(),
        "'data.attributes.group_by.limit' must be an integer, got a boolean",
        "/data/attributes/group_by/limit",
    ),
    (
        json.dumps(_attrs(group_by={"groups": [], "limit": 3})).encode(),
        "'data.attributes.group_by.groups' must name at least one field",
        "/data/attributes/group_by/groups",
    ),
    (
        json.dumps(_attrs(group_by={"groups": ["status", 4], "limit": 3})).encode(),
        "'data.attributes.group_by.groups[1]' must be a non-empty string, got an integer",
        "/data/attributes/group_by/groups/1",
    ),
    (
        json.dumps(_attrs(group_by={"groups": ["status"], "limit": 0})).encode(),
        "'data.attributes.group_by.limit' must be between 1 and 1000, got 0",
        "/data/attributes/group_by/limit",
    ),
    (
        json.dumps(_attrs(group_by={"groups": ["status"], "limit": 1001})).encode(),
        "'data.attributes.group_by.limit' must be between 1 and 1000, got 1001",
        "/data/attributes/group_by/limit",
    ),
    (
        json.dumps(_attrs(query_filter="status:open AND (priority:P1")).encode(),
        "invalid query_filter at column 17: ",
        "/data/attributes/query_filter",
    ),
]


@pytest.mark.parametrize(("body", "detail", "pointer"), BAD_BODIES)
def test_bad_bodies_get_a_jsonapi_400(
    emulator, data_file: Path, body: bytes, detail: str, pointer: str | None
) -> None:
    server = emulator(data=data_file)
    response = httpx.post(f"{server.url}/api/v2/cases/aggregate", content=body, headers=KEYS)
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["status"] == "400"
    assert error["title"] == "Bad Request"
    assert error["detail"].startswith(detail), error["detail"]
    if pointer is None:
        assert "source" not in error
    else:
        assert error["source"] == {"pointer": pointer}


def test_unknown_paths_and_methods(emulator, data_file: Path) -> None:
    server = emulator(data=data_file)
    response = httpx.get(f"{server.url}/api/v2/nope", headers=KEYS)
    assert response.status_code == 404
    assert response.json() == {
        "errors": [
            {"status": "404", "title": "Not Found", "detail": "no such endpoint: GET /api/v2/nope"}
        ]
    }
    response = httpx.get(f"{server.url}/api/v2/cases/aggregate", headers=KEYS)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert server.stats()["requests"]["unmatched"] == {"404": 1, "405": 1}


def test_rate_limit_answers_429_past_the_limit_and_recovers(emulator, data_file: Path) -> None:
    server = emulator(data=data_file, rate_limit=3, rate_period=1)
    url = f"{server.url}/api/v2/cases/aggregate"
    # The limiter's clock held still, so all five requests land in one window however
    # slowly a busy machine sends them (its window arithmetic: the tests below).
    now = [1_000_000.25]
    server.app.rate_limiter = RateLimiter(3, 1, clock=lambda: now[0])
    statuses = [httpx.post(url, content=SEED_EXAMPLE, headers=KEYS) for _ in range(5)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429, 429]
    assert [r.headers["x-ratelimit-remaining"] for r in statuses] == ["2", "1", "0", "0", "0"]
    assert statuses[3].headers["x-ratelimit-limit"] == "3"
    assert statuses[3].headers["x-ratelimit-period"] == "1"
    assert statuses[3].headers["x-ratelimit-reset"] == "1"
    assert statuses[3].json()["errors"][0]["title"] == "Too Many Requests"
    now[0] += float(statuses[4].headers["x-ratelimit-reset"])  # the reset: a new window
    assert httpx.post(url, content=SEED_EXAMPLE, headers=KEYS).status_code == 200
    counts = server.stats()["requests"]["POST /api/v2/cases/aggregate"]
    assert counts == {"200": 4, "429": 2}


def test_rate_limiter_windows_are_calendar_aligned() -> None:
    now = [100.25]
    limiter = RateLimiter(limit=2, period=10, clock=lambda: now[0])
    assert limiter.take() == (
        True,
        {
            "x-ratelimit-limit": "2",
            "x-ratelimit-period": "10",
            "x-ratelimit-remaining": "1",
            "x-ratelimit-reset": "10",
            "x-ratelimit-name": "cases",
        },
    )
    now[0] = 109.5
    allowed, headers = limiter.take()
    assert allowed and headers["x-ratelimit-remaining"] == "0"
    assert headers["x-ratelimit-reset"] == "1"
    assert limiter.take()[0] is False
    now[0] = 110.0  # a new window starts on the period boundary
    assert limiter.take()[0] is True


def test_error_rate_injects_500_and_503_in_both_error_shapes(emulator, data_file: Path) -> None:
    server = emulator(data=data_file, error_rate=0.5)
    url = f"{server.url}/api/v2/cases/aggregate"
    responses = [httpx.post(url, content=SEED_EXAMPLE, headers=KEYS) for _ in range(60)]
    by_status: dict[int, list[httpx.Response]] = {}
    for response in responses:
        by_status.setdefault(response.status_code, []).append(response)
    assert set(by_status) == {200, 500, 503}
    assert 10 <= len(by_status[200]) <= 50
    assert by_status[500][0].json() == {"errors": ["Internal Server Error"]}
    assert by_status[503][0].json()["errors"][0]["status"] == "503"
    # An outage, not throttling: no reset for the official client to wait out before its
    # retry; the other rate-limit headers are there as on every API response.
    for response in by_status[500] + by_status[503]:
        assert "x-ratelimit-reset" not in response.headers
        assert response.headers["x-ratelimit-limit"]
    assert all("x-ratelimit-reset" in r.headers for r in by_status[200])


def test_latency_is_injected_concurrently(emulator, data_file: Path) -> None:
    server = emulator(data=data_file, latency_ms=200)
    url = f"{server.url}/api/v2/cases/aggregate"

    async def burst() -> list[int]:
        import asyncio

        async with httpx.AsyncClient() as client:
            responses = await asyncio.gather(
                *(client.post(url, content=SEED_EXAMPLE, headers=KEYS) for _ in range(10))
            )
        return [r.status_code for r in responses]

    import asyncio

    started = time.perf_counter()
    assert asyncio.run(burst()) == [200] * 10
    elapsed = time.perf_counter() - started
    # Ten requests with 200 ms each overlap: one round of latency, not ten.
    assert 0.2 <= elapsed < 1.5


def test_search_pages_sorts_and_includes(emulator, data_file: Path) -> None:
    server = emulator(data=data_file)
    response = httpx.get(
        f"{server.url}/api/v2/cases",
        params={
            "page[size]": 2,
            "page[number]": 2,
            "sort[field]": "created_at",
            "sort[asc]": "true",
        },
        headers=KEYS,
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.api+json"
    payload = response.json()
    assert [case["attributes"]["key"] for case in payload["data"]] == ["SUP-3", "SUP-4"]
    assert payload["meta"] == {"page": {"current": 2, "size": 2, "total": 3}, "total_cases": 5}
    filtered = httpx.get(
        f"{server.url}/api/v2/cases", params={"filter": "status:open"}, headers=KEYS
    ).json()
    assert [c["attributes"]["key"] for c in filtered["data"]] == ["SUP-5", "SUP-2", "SUP-1"]
    assert filtered["meta"]["page"] == {"current": 1, "size": 3, "total": 1}


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"page[size]": "101"}, "page[size] must be between 1 and 100, got 101"),
        ({"page[number]": "0"}, "page[number] must be at least 1, got 0"),
        ({"page[size]": "x"}, "page[size] must be an integer, got 'x'"),
        ({"sort[field]": "title"}, "sort[field] must be one of created_at, priority, status"),
        ({"sort[asc]": "maybe"}, "sort[asc] must be true or false, got 'maybe'"),
        ({"filter": "(status:open"}, "invalid filter at column 1: "),
    ],
)
def test_search_rejects_bad_parameters(
    emulator, data_file: Path, params: dict, detail: str
) -> None:
    server = emulator(data=data_file)
    response = httpx.get(f"{server.url}/api/v2/cases", params=params, headers=KEYS)
    assert response.status_code == 400
    assert response.json()["errors"][0]["detail"].startswith(detail)


def test_count_endpoint(emulator, data_file: Path) -> None:
    server = emulator(data=data_file)
    response = httpx.get(
        f"{server.url}/api/v2/cases/count",
        params={"query_filter": "service:case-api", "group_bys": "status,priority", "limit": 2},
        headers=KEYS,
    )
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["type"] == "count"
    assert data["attributes"]["groups"] == [
        {
            "group": "status",
            "group_values": [{"value": "OPEN", "count": 2}, {"value": "CLOSED", "count": 1}],
        },
        {
            "group": "priority",
            "group_values": [{"value": "P2", "count": 2}, {"value": "P1", "count": 1}],
        },
    ]


def test_large_responses_are_gzipped_when_asked(emulator) -> None:
    server = emulator(cases=500)
    response = httpx.get(
        f"{server.url}/api/v2/cases",
        params={"page[size]": 50},
        headers={**KEYS, "Accept-Encoding": "gzip"},
    )
    assert response.headers["content-encoding"] == "gzip"
    assert len(response.json()["data"]) == 50  # httpx decodes it
    raw = httpx.get(
        f"{server.url}/api/v2/cases",
        params={"page[size]": 50},
        headers={**KEYS, "Accept-Encoding": "identity"},
    )
    assert "content-encoding" not in raw.headers
    assert raw.json() == response.json()
    assert int(response.headers["content-length"]) < len(raw.content)


def test_stats_count_requests_by_route_and_status_and_reset(emulator, data_file: Path) -> None:
    server = emulator(data=data_file)
    httpx.post(f"{server.url}/api/v2/cases/aggregate", content=SEED_EXAMPLE, headers=KEYS)
    httpx.post(f"{server.url}/api/v2/cases/aggregate", content=b"{}", headers=KEYS)
    httpx.post(f"{server.url}/api/v2/cases/aggregate", content=SEED_EXAMPLE)
    httpx.get(f"{server.url}/api/v2/cases", headers=KEYS)
    stats = server.stats()
    assert stats["requests"] == {
        "GET /api/v2/cases": {"200": 1},
        "POST /api/v2/cases/aggregate": {"200": 1, "400": 1, "401": 1},
    }
    assert stats["total"] == 4
    assert stats["cases"] == 6
    assert httpx.delete(f"{server.url}/_emulator/stats").status_code == 200
    # A stats read counts itself after answering, so only the reset shows.
    assert server.stats()["requests"] == {"DELETE /_emulator/stats": {"200": 1}}


def test_listening_socket_makes_asyncio_disable_nagle() -> None:
    import socket

    from casereport.emulator.server import _bind

    sock = _bind("127.0.0.1", 0)
    try:
        # asyncio sets TCP_NODELAY on accepted sockets only when proto says TCP; without it
        # every keep-alive response waits for the client's delayed ACK.
        assert sock.proto == socket.IPPROTO_TCP
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        sock.close()


def test_refused_requests_carry_the_rate_limit_headers_without_spending_the_budget(
    emulator, data_file: Path
) -> None:
    server = emulator(data=data_file, rate_limit=1000, rate_period=60)
    unauthorised = httpx.post(f"{server.url}/api/v2/cases/aggregate", content=SEED_EXAMPLE)
    unknown = httpx.get(f"{server.url}/api/v2/nope", headers=KEYS)
    wrong_method = httpx.get(f"{server.url}/api/v2/cases/aggregate", headers=KEYS)
    for response in (unauthorised, unknown, wrong_method):
        assert response.headers["x-ratelimit-limit"] == "1000"
        assert response.headers["x-ratelimit-remaining"] == "1000"
    assert wrong_method.headers["allow"] == "POST"
    counted = httpx.post(f"{server.url}/api/v2/cases/aggregate", content=SEED_EXAMPLE, headers=KEYS)
    assert counted.headers["x-ratelimit-remaining"] == "999"
