"""Escape sequences from report files, file names, state and the API never reach the
terminal raw: every command's output shows them as visible escapes (issue 11, point 7)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from casereport.cli import cli
from casereport.engine import views
from casereport.engine.plan import (
    CREATE,
    DELETE,
    REFRESH,
    RENDER,
    AggregationChange,
    Plan,
    ReportChange,
)
from casereport.state.model import Source
from casereport.terminal import clean, escape
from hostile_server import answer, by_query, hostile_server

# Set the window title, clear the screen, move the cursor home, a C1 CSI, a carriage return.
EVIL = "\x1b]0;pwned\x07\x1b[2J\x1b[H\x9b31m\rX"
SHOWN = "\\u001b]0;pwned\\u0007\\u001b[2J\\u001b[H\\u009b31m\\u000dX"
RAW = ("\x1b", "\x07", "\x9b", "\r")


def assert_no_raw_controls(text: str) -> None:
    for char in RAW:
        assert char not in text, repr(text)
    assert all(c.isprintable() or c in "\n\t" for c in text), repr(text)


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(cli, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reports").mkdir()
    for name in ("NO_COLOR", "CASEREPORT_DEBUG", "DD_SITE", "CASEREPORT_API_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def yaml_string(text: str) -> str:
    """``text`` as a YAML double-quoted string (JSON's escapes are YAML's)."""
    return json.dumps(text)


# --------------------------------------------------------------------------- the functions


def test_clean_keeps_layout_and_shows_every_other_control_character() -> None:
    assert clean("a\tb\nc") == "a\tb\nc"
    assert clean(EVIL) == SHOWN
    assert clean("\x00\x7f\x80\x9f é ✓") == "\\u0000\\u007f\\u0080\\u009f é ✓"
    assert escape("a\tb\nc\x1b") == "a\\u0009b\\u000ac\\u001b"
    # JSON stays JSON, with the same meaning, when cleaned.
    document = json.dumps({"v": "\x1b\x9b\x7f"}, ensure_ascii=False)
    assert json.loads(clean(document)) == {"v": "\x1b\x9b\x7f"}


# --------------------------------------------------------------------------- report files


def write_report(workspace: Path, name: str = "evil") -> None:
    (workspace / "reports" / f"{name}.yaml").write_text(
        f"title: {yaml_string('Title ' + EVIL)}\n"
        "aggregations:\n"
        "  by_status:\n"
        f"    title: {yaml_string('Agg ' + EVIL)}\n"
        f"    query_filter: {yaml_string('status:open title:' + EVIL.replace(' ', ''))}\n"
        "    group_by: [status]\n"
        "    limit: 3\n"
        "  other:\n"
        f"    for_each: {{a: {yaml_string(EVIL)}}}\n"
        "    query_filter: 'service:${each.value}'\n"
        "    group_by: [status]\n"
        "    limit: 3\n"
    )


def test_plan_shows_titles_and_queries_with_escapes_as_text(workspace: Path) -> None:
    write_report(workspace)
    result = run("plan", "--emulator")
    assert result.exit_code == 0, result.output
    assert_no_raw_controls(result.output)
    assert '"Agg \\u001b]0;pwned' in result.output
    markdown = run("plan", "--emulator", "--markdown")
    assert_no_raw_controls(markdown.output)
    # The JSON plan keeps its meaning.
    plan = json.loads(run("plan", "--emulator", "--json").output)
    assert f"Agg {EVIL}" in [change["title"] for change in plan["aggregations"]]


def test_the_coloured_plan_escapes_values_and_keeps_its_own_colour() -> None:
    hostile = Plan(
        source=Source("emulator", "emulator", f"cases {EVIL}"),
        previous_source=Source("datadog", f"site{EVIL}"),
        aggregations=(
            AggregationChange(
                f"r.a{EVIL}",
                "r",
                CREATE,
                "new",
                title=f"T{EVIL}",
                request={"query_filter": f"q{EVIL}", "groups": [EVIL], "limit": 3},
            ),
            AggregationChange(f"r.b{EVIL}", f"r{EVIL}", REFRESH, f"stale{EVIL}"),
            AggregationChange(f"r.c{EVIL}", "r", DELETE, f"gone{EVIL}"),
        ),
        reports=(ReportChange(f"r{EVIL}", DELETE, (f"why{EVIL}",), (f"r{EVIL}.html",)),),
        index=ReportChange("index", RENDER, (f"x{EVIL}",), ("index.html",)),
        state_lineage=None,
        state_serial=None,
        inputs_hash="0" * 64,
        created_at="2026-11-26T12:00:00Z",
        targets=(f"t{EVIL}",),
    )
    for colour in (False, True):
        text = views.render_human(hostile, colour=colour)
        ours = text
        for code in ("32", "33", "36", "35", "31", "1", "0"):
            ours = ours.replace(f"\x1b[{code}m", "")
        assert_no_raw_controls(ours)
        assert ours.count("\\u001b]0;pwned") >= 10
    assert "\x1b[32m+\x1b[0m" in views.render_human(hostile, colour=True)


def test_validate_and_fmt_show_file_names_and_keys_with_escapes_as_text(workspace: Path) -> None:
    (workspace / "reports" / f"bad{EVIL.replace('/', '')}.yaml").write_text(
        "title:  'T'\n"
    )  # (fmt rewrites it)
    (workspace / "reports" / "keys.yaml").write_text(
        f"title: T\n{yaml_string(EVIL)}: 1\naggregations: {{}}\n"
    )
    for command in (["validate"], ["fmt", "--check"], ["plan", "--emulator"]):
        result = run(*command)
        assert result.exit_code == 1, result.output
        assert_no_raw_controls(result.output)
        assert "\\u001b]0;pwned" in result.output


def test_a_bad_option_value_with_escapes_is_shown_as_text(workspace: Path) -> None:
    result = run("fmt", f"missing{EVIL}.yaml")
    assert result.exit_code == 1
    assert_no_raw_controls(result.output)
    result = run("plan", "--emulator", "--target", f"x{EVIL}")
    assert_no_raw_controls(result.output)


# --------------------------------------------------------------------------- API data


def api_environment(url: str) -> dict[str, str]:
    return {
        "CASEREPORT_API_URL": url,
        "DD_API_KEY": "fake-api-key",
        "DD_APP_KEY": "fake-app-key",
        "SOURCE_DATE_EPOCH": "1800000000",
    }


def evil_group() -> bytes:
    return json.dumps(
        {
            "data": {
                "id": "agg-1",
                "type": "aggregate",
                "attributes": {"total": 3.0, "groups": [{"group": EVIL, "value": [3.0]}]},
            }
        }
    ).encode()


def evil_error() -> bytes:
    return json.dumps(
        {"errors": [{"status": "400", "title": "Bad Request", "detail": f"bad query {EVIL}"}]}
    ).encode()


def test_group_values_and_server_errors_from_the_api_are_shown_as_text(workspace: Path) -> None:
    (workspace / "reports" / "api.yaml").write_text(
        "title: API\n"
        "aggregations:\n"
        "  good:\n"
        "    query_filter: status:open\n"
        "    group_by: [status]\n"
        "    limit: 3\n"
        "  bad:\n"
        "    query_filter: status:closed\n"
        "    group_by: [status]\n"
        "    limit: 3\n"
    )
    behaviour = by_query({"status:closed": answer(evil_error(), 400)}, answer(evil_group()))
    with hostile_server(behaviour) as server:
        env = api_environment(server.url)
        applied = run("apply", "--auto-approve", env=env)
        queried = run("query", "status:open", "--group-by", "status", env=env)
    assert applied.exit_code == 1, applied.output
    assert "bad query \\u001b]0;pwned" in applied.output
    assert_no_raw_controls(applied.output)
    assert queried.exit_code == 0, queried.output
    assert "\\u001b]0;pwned" in queried.output
    assert_no_raw_controls(queried.output)
    for command in (["state", "list"], ["state", "show", "api.good"], ["show"]):
        shown = run(*command)
        assert shown.exit_code == 0, shown.output
        assert_no_raw_controls(shown.output)
    assert "\\u001b]0;pwned" in run("state", "show", "api.good").output


def test_a_real_process_writes_no_raw_escape_to_its_streams(workspace: Path) -> None:
    write_report(workspace)
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "CASEREPORT_DEBUG")}
    process = subprocess.run(
        [sys.executable, "-m", "casereport", "plan", "--emulator"],
        cwd=workspace,
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert process.returncode == 0, process.stderr
    for stream in (process.stdout, process.stderr):
        assert_no_raw_controls(stream.decode())
    assert b"\\u001b]0;pwned" in process.stdout
