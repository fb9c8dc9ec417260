"""A saved plan's fields as ``Plan.from_json`` reads them: a request apply could not send is
refused, and the fields added within format 1 may be absent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from casereport.engine.plan import Plan
from test_plan import BACKLOG, plan_for


def saved(tmp_path: Path) -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(
        json.dumps(plan_for([BACKLOG], None, tmp_path / "site").to_json())
    )
    return raw


@pytest.mark.parametrize("limit", ["5", 5.0, 2.5, None, True, [5]])
def test_a_saved_plan_whose_limit_is_not_an_integer_is_refused(
    tmp_path: Path, limit: object
) -> None:
    raw = saved(tmp_path)
    raw["aggregations"][0]["request"]["limit"] = limit
    with pytest.raises(ValueError, match=r"^backlog\.by_priority: no valid request to fetch$"):
        Plan.from_json(raw)


def test_a_saved_plan_whose_limit_is_an_integer_is_read(tmp_path: Path) -> None:
    raw = saved(tmp_path)
    raw["aggregations"][0]["request"]["limit"] = 7
    assert Plan.from_json(raw).aggregations[0].request == {
        **raw["aggregations"][0]["request"],
        "limit": 7,
    }


def test_a_saved_plan_without_new_or_source_detail_is_read(tmp_path: Path) -> None:
    raw = saved(tmp_path)
    assert raw["source"]["detail"] and any(r["new"] for r in raw["reports"])
    del raw["source"]["detail"]
    for change in [*raw["reports"], raw["index"]]:
        del change["new"]
    raw["previous_source"] = {"kind": "datadog", "site": "datadoghq.eu"}

    plan = Plan.from_json(raw)

    assert plan.source.detail == ""
    assert plan.previous_source is not None and plan.previous_source.detail == ""
    assert not any(r.new for r in plan.reports) and not plan.index.new


@pytest.mark.parametrize("name", ["support-backlog", "../index", ""])
def test_a_saved_plan_whose_index_is_misnamed_is_refused(tmp_path: Path, name: str) -> None:
    raw = saved(tmp_path)
    raw["index"]["name"] = name
    with pytest.raises(ValueError) as caught:
        Plan.from_json(raw)
    assert str(caught.value) == f"the site index is named {name!r}, not 'index'"
