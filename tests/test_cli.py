"""The command line as a user meets it: version, help, one-line errors, query, emulator."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import httpx
import pytest
from click.testing import CliRunner

from casereport import __version__
from casereport.cli import CaseReportGroup, cli

SEED_EXAMPLE = (
    b'{"data":{"attributes":{"group_by":{"groups":["status"],"limit":14},'
    b'"query_filter":"service:case-api"},"type":"aggregate"}}'
)


def run(*args: str, env: dict[str, str] | None = None) -> click.testing.Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def all_commands(
    group: click.Group, prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], click.Command]]:
    found = []
    for name, command in sorted(group.commands.items()):
        path = (*prefix, name)
        found.append((path, command))
        if isinstance(command, click.Group):
            found.extend(all_commands(command, path))
    return found


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.output == f"casereport, version {__version__}\n"


@pytest.mark.parametrize(
    "path", [p for p, c in all_commands(cli) if not isinstance(c, click.Group)]
)
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    result = run(*path, "--help")
    assert result.exit_code == 0
    assert "Example" in result.output, f"casereport {' '.join(path)} --help has no example"


def test_help_starts_without_heavy_imports() -> None:
    code = (
        "import sys\n"
        "from casereport.cli import cli\n"
        "try:\n"
        "    cli.main(['--help'], standalone_mode=False)\n"
        "finally:\n"
        "    heavy = ('numpy', 'uvicorn', 'httpx', 'pulumi', 'pulumi_aws', 'jinja2',\n"
        "             'yaml', 'ruamel', 'markdown_it')\n"
        "    print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stderr.strip() == "[]"


def test_unexpected_exceptions_become_one_line_unless_debug() -> None:
    @click.group(cls=CaseReportGroup)
    @click.option("--debug", is_flag=True)
    @click.pass_context
    def group(ctx: click.Context, debug: bool) -> None:
        ctx.meta["casereport.debug"] = debug

    @group.command()
    def boom() -> None:
        raise ValueError("kaput")

    result = CliRunner().invoke(group, ["boom"])
    assert result.exit_code == 1
    assert result.output == (
        "Error: internal error: ValueError: kaput "
        "(re-run with --debug for the traceback, and please report it)\n"
    )
    debug = CliRunner().invoke(group, ["--debug", "boom"])
    assert isinstance(debug.exception, ValueError)


def test_query_against_the_emulator_prints_a_table() -> None:
    result = CliRunner().invoke(
        cli, ["query", "service:case-api", "--group-by", "status", "--limit", "14", "--emulator"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("Using the local emulator at http://127.0.0.1:")
    assert lines[1] == "Query: service:case-api   group by: status   limit: 14"
    assert re.match(r"STATUS\s+COUNT\s+SHARE$", lines[3])
    rows = lines[4:-2]
    assert {row.split()[0] for row in rows} <= {"OPEN", "IN_PROGRESS", "CLOSED"}
    assert all(re.match(r"\S+\s+\d{1,3}(,\d{3})*\s+\d+\.\d%$", row) for row in rows)
    found = re.match(r"Total: ([\d,]+) cases in (\d+) groups shown$", lines[-1])
    total = int(found.group(1).replace(",", ""))
    assert total == sum(int(row.split()[1].replace(",", "")) for row in rows)


def test_query_json_is_the_api_shape() -> None:
    result = CliRunner().invoke(
        cli, ["query", "status:open", "-g", "priority", "--json", "--emulator"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    attributes = payload["data"]["attributes"]
    assert payload["data"]["type"] == "aggregate"
    assert attributes["total"] == sum(g["value"][0] for g in attributes["groups"])


def test_query_with_a_bad_query_is_one_line_before_any_request() -> None:
    result = CliRunner().invoke(cli, ["query", "status:(open", "-g", "status", "--emulator"])
    assert result.exit_code == 1
    # Checked here, with the parser validate uses: no emulator started, nothing sent.
    assert result.stderr == (
        "Error: invalid query at column 8: unbalanced '(' after 'status:': 'status:(open'; "
        "fix it (Case Management search syntax: field:value, AND, OR, -, parentheses)\n"
    )


def test_query_without_group_by_counts() -> None:
    grouped = CliRunner().invoke(
        cli, ["query", "status:open", "-g", "status", "--json", "--emulator"]
    )
    counted = CliRunner().invoke(cli, ["query", "status:open", "--emulator"])
    as_json = CliRunner().invoke(cli, ["query", "status:open", "--json", "--emulator"])
    assert counted.exit_code == 0 and as_json.exit_code == 0, counted.output + as_json.output
    total = int(json.loads(grouped.stdout)["data"]["attributes"]["total"])
    assert counted.stdout == f"Query: status:open\n\n{total:,} cases\n"
    assert json.loads(as_json.stdout) == {"query_filter": "status:open", "total": total}


def test_query_without_credentials_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DD_API_KEY", "DD_APP_KEY", "DD_APPLICATION_KEY", "DD_BEARER_TOKEN", "DD_SITE"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(cli, ["query", "status:open", "-g", "status"])
    assert result.exit_code == 1
    assert len(result.output.splitlines()) == 1
    assert "DD_API_KEY" in result.output and "DD_APP_KEY" in result.output
    assert "DD_BEARER_TOKEN" in result.output


def test_query_with_an_unknown_site_lists_the_valid_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DD_SITE", "datadoghq.moon")
    monkeypatch.setenv("DD_API_KEY", "x")
    monkeypatch.setenv("DD_APP_KEY", "y")
    result = CliRunner().invoke(cli, ["query", "status:open", "-g", "status"])
    assert result.exit_code == 1
    assert len(result.output.splitlines()) == 1
    assert "datadoghq.moon" in result.output
    assert "us5.datadoghq.com" in result.output and "ddog-gov.com" in result.output


def test_emulator_export_writes_the_search_shape(tmp_path: Path) -> None:
    out = tmp_path / "cases.json"
    result = run("emulator", "export", "--cases", "25", "--seed", "3", "-o", str(out))
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert len(document["data"]) == 25
    assert {case["type"] for case in document["data"]} == {"case"}
    again = tmp_path / "again.json"
    run("emulator", "export", "--cases", "25", "--seed", "3", "-o", str(again))
    assert again.read_bytes() == out.read_bytes()
    ndjson = run("emulator", "export", "--cases", "4", "--ndjson").output.splitlines()
    assert [json.loads(line)["type"] for line in ndjson] == ["case"] * 4


@contextlib.contextmanager
def _served(*options: str) -> Iterator[str]:
    """``casereport emulator serve --port 0 OPTIONS`` in a process of its own: its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "casereport", "emulator", "serve", "--port", "0", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={"PYTHONUNBUFFERED": "1", "PATH": "/usr/bin:/bin"},
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+) \(", banner)
        assert match, banner
        yield match.group(1)
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_emulator_serve_answers_the_seed_example_like_curl() -> None:
    with _served("--cases", "300") as url:
        response = httpx.post(
            f"{url}/api/v2/cases/aggregate",
            content=SEED_EXAMPLE,
            headers={
                "DD-API-KEY": "a",
                "DD-APPLICATION-KEY": "b",
                "Content-Type": "application/json",
            },
        )
    assert response.status_code == 200
    data = response.json()["data"]
    assert set(data) == {"id", "type", "attributes"}
    assert set(data["attributes"]) == {"total", "groups"}
    assert all(set(g) == {"group", "value"} for g in data["attributes"]["groups"])


def test_emulator_serve_accepts_the_bearer_token_it_is_given() -> None:
    options = ("--cases", "50", "--api-key", "k-api", "--app-key", "k-app")
    with _served(*options, "--bearer-token", "tok") as url:
        statuses = [
            httpx.post(
                f"{url}/api/v2/cases/aggregate",
                content=SEED_EXAMPLE,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            ).status_code
            for token in ("tok", "other")
        ]
    assert statuses == [200, 403]


def test_emulator_serve_reports_a_busy_port_in_one_line() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = CliRunner().invoke(
            cli, ["emulator", "serve", "--port", str(port), "--cases", "10"]
        )
    assert result.exit_code == 1
    assert result.output == (
        f"Error: cannot listen on 127.0.0.1:{port}: Address already in use "
        "(is another emulator running? try --port 0 for a free port)\n"
    )


def test_emulator_serve_rejects_a_bad_error_rate() -> None:
    result = CliRunner().invoke(cli, ["emulator", "serve", "--error-rate", "2"])
    assert result.exit_code == 1
    assert result.output == "Error: --error-rate must be between 0 and 1, got 2.0\n"


@pytest.mark.parametrize(
    "command",
    [
        ("query", "status:open", "--group-by", "priority", "--emulator"),
        ("plan", "--emulator"),
        ("validate",),
        ("schema",),
    ],
)
def test_output_cut_short_by_its_reader_ends_quietly(tmp_path: Path, command: tuple) -> None:
    """`casereport ... | head -1` when head has already gone: no "internal error", no
    traceback (the reader's end of the pipe is closed before the command writes)."""
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "r.yaml").write_text(
        "title: Report\naggregations:\n  a:\n    title: Open\n    query_filter: status:open\n"
        "    group_by: [priority]\n    limit: 6\n"
    )
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "casereport", *command],
            cwd=tmp_path,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert done.returncode in (0, 1, -signal.SIGPIPE)
