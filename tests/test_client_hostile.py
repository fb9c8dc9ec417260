"""The client against hostile servers (issue 11, points 5 to 7): nothing hangs, memory is
bounded, secrets stay secret.

Every server here is real HTTP on 127.0.0.1 (``hostile_server``), started by the test and
always stopped. Times are real but small (timeouts of half a second), and asserted only
as generous bounds ("ends within N times the timeout"). Whole runs of ``casereport`` go
through a subprocess, so that a hang is a failed test rather than a hung suite, and so
that the memory of the process can be measured.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import tracemalloc
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from apply_workspace import copy_reports
from casereport.api.client import CasesClient
from casereport.api.messages import AggregateRequest, AggregateResult
from casereport.api.settings import ClientSettings, Credentials
from casereport.cli import cli
from casereport.errors import ApiConnectionError, ApiError, ResponseFormatError
from casereport.state.model import load_state
from hostile_server import (
    OK_BYTES,
    answer,
    by_query,
    drip,
    endless,
    first_attempt_fails,
    groups_body,
    gzip_bomb,
    gzipped,
    hostile_server,
    shared_limit,
    silent,
    throttled_first,
)

API_KEY = "hostile-api-0d15c0ff-SECRET"
APP_KEY = "hostile-app-7a11ce5e-SECRET"
REQUEST = AggregateRequest("status:open", ("status",), 10)
MiB = 1024 * 1024
ADDRESSES = 19  # the example workspace: 3 reports, 19 aggregations, 19 distinct requests
REPORTS = {
    "security-cases": 4,
    "service-health": 10,
    "support-backlog": 5,
}


def aggregate_url(server_url: str) -> str:
    return f"{server_url}/api/v2/cases/aggregate"


def settings_for(url: str, **overrides: Any) -> ClientSettings:
    values: dict[str, Any] = {
        "base_url": url,
        "site": url,
        "credentials": Credentials(API_KEY, APP_KEY),
    }
    values.update(overrides)
    return ClientSettings(**values)


def call(
    url: str,
    request: AggregateRequest = REQUEST,
    *,
    rng: random.Random | None = None,
    **overrides: Any,
) -> tuple[AggregateResult | ApiError, float]:
    """One aggregate over real HTTP; the result or the error, and the seconds it took."""

    async def go() -> AggregateResult:
        async with CasesClient(settings_for(url, **overrides), rng=rng) as client:
            return await client.aggregate(request)

    started = time.monotonic()
    try:
        outcome: AggregateResult | ApiError = asyncio.run(go())
    except ApiError as exc:
        outcome = exc
    return outcome, time.monotonic() - started


def many(
    url: str, requests: list[AggregateRequest], **overrides: Any
) -> tuple[list[AggregateResult | ApiError], float]:
    async def go() -> list[AggregateResult | ApiError]:
        async with CasesClient(settings_for(url, **overrides)) as client:
            return await client.aggregate_many(requests)

    started = time.monotonic()
    results = asyncio.run(go())
    return results, time.monotonic() - started


def distinct(count: int) -> list[AggregateRequest]:
    return [
        AggregateRequest(f"priority:P{i % 5 + 1} -title:x{i}", ("status",), 10)
        for i in range(count)
    ]


def refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: nothing listens there, a connection is refused


# -- casereport in a subprocess ---------------------------------------------------------------


def environment(url: str, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DD_", "CASEREPORT_")) and k != "NO_COLOR"
    }
    env.update(
        CASEREPORT_API_URL=url,
        DD_API_KEY=API_KEY,
        DD_APP_KEY=APP_KEY,
        SOURCE_DATE_EPOCH="1800000000",
    )
    env.update(extra)
    return env


@dataclass(frozen=True)
class Run:
    """A finished ``casereport`` process: exit code, output, seconds, peak RSS (bytes)."""

    code: int
    stdout: str
    stderr: str
    seconds: float
    peak: int


# Runs the command given and writes its peak RSS (KiB) to the file named first. A process's
# peak counts what it held before exec, and a child forked from this large test process
# holds all of it until then: measured from this small go-between, the figure is the
# command's own (the go-between's few MB at most).
PEAK_OF = """\
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def casereport(cwd: Path, env: dict[str, str], *args: str, limit: float = 90.0) -> Run:
    """Run ``casereport ARGS``; killed (and the test failed) past ``limit`` seconds."""
    out, err, peak = cwd / ".stdout", cwd / ".stderr", cwd / ".peak"
    command = [sys.executable, "-m", "casereport", *args]
    with out.open("wb") as stdout, err.open("wb") as stderr:
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-c", PEAK_OF, str(peak), *command],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
        try:
            process.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            pytest.fail(f"casereport {' '.join(args)} still ran after {limit} s: it hangs")
        seconds = time.monotonic() - started
    return Run(
        process.returncode,
        out.read_text(encoding="utf-8"),
        err.read_text(encoding="utf-8"),
        seconds,
        int(peak.read_text(encoding="utf-8")) * 1024,
    )


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    copy_reports(tmp_path)
    return tmp_path


def failure_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("  ")]


# -- 5. nothing hangs ------------------------------------------------------------------------


def test_an_attempt_is_bounded_as_a_whole_against_a_server_dripping_bytes() -> None:
    # A byte every 20 ms: every read is quick, the whole answer takes some 2.5 s.
    with hostile_server(drip(OK_BYTES, 0.02)) as server:
        error, seconds = call(server.url, timeout=0.5, max_attempts=2)
    assert isinstance(error, ApiConnectionError)
    assert error.message == (
        f"could not reach {aggregate_url(server.url)} after 2 attempts: no complete answer "
        "within 0.5 s; check the network, DD_SITE or CASEREPORT_API_URL, or raise --timeout"
    )
    assert seconds < 4 * 0.5 + 0.25  # two timeouts and a backoff, with room to spare
    assert len(server.requests) == 2


def test_the_deadline_bounds_an_attempt_too() -> None:
    with hostile_server(silent) as server:
        error, seconds = call(server.url, timeout=30.0, deadline=0.5)
    assert isinstance(error, ApiConnectionError)
    assert error.message == (
        f"could not reach {aggregate_url(server.url)} after 1 attempt (the 0.5 s deadline "
        "leaves no time for another): no complete answer within 0.5 s; check the network, "
        "DD_SITE or CASEREPORT_API_URL, or raise --timeout"
    )
    assert seconds < 3 * 0.5


def check_unreachable(run: Run, url: str, cause: str, advice: str) -> None:
    """An apply of the example workspace whose every fetch failed so: one line each."""
    assert run.code == 1, run.stderr
    message = (
        f"could not reach {aggregate_url(url)}: it answered none of the last 3 attempts "
        f"({cause}), so no more are made; {advice}"
    )
    line = re.compile(rf"  (\S+?): {re.escape(message)} \(report ([a-z-]+) is not rendered\)")
    matches = [line.fullmatch(text) for text in failure_lines(run.stderr)]
    assert all(matches) and len(matches) == ADDRESSES, run.stderr
    addresses = [m.group(1) for m in matches if m]
    assert len(set(addresses)) == ADDRESSES
    reports = [m.group(2) for m in matches if m]
    assert {r: reports.count(r) for r in reports} == REPORTS
    assert all(a.startswith(f"{r}.") for a, r in zip(addresses, reports, strict=True))
    assert run.stdout.rstrip().endswith(
        f"Apply finished with errors: 0 fetched ({ADDRESSES} API calls), 0 reports rendered, "
        f"0 deleted. {ADDRESSES} failed:"
    )


def test_an_apply_against_a_silent_server_ends_within_a_few_timeouts(workspace: Path) -> None:
    with hostile_server(silent) as server:
        run = casereport(
            workspace, environment(server.url), "apply", "--auto-approve", "--timeout", "0.5"
        )
        sent = len(server.requests)
    check_unreachable(
        run,
        server.url,
        "no complete answer within 0.5 s",
        "check the network, DD_SITE or CASEREPORT_API_URL, or raise --timeout",
    )
    # Sixteen attempts at once, one timeout: then the server is taken as down.
    assert sent <= 16 + 2
    assert run.seconds < 20 * 0.5, run.seconds


def test_an_apply_against_a_refusing_server_ends_at_once(workspace: Path) -> None:
    url = f"http://127.0.0.1:{refused_port()}"
    run = casereport(workspace, environment(url), "apply", "--auto-approve")
    check_unreachable(
        run,
        url,
        "ConnectError: [Errno 111] Connection refused",
        "check the network, DD_SITE or CASEREPORT_API_URL",
    )
    assert run.seconds < 15, run.seconds


CAP_MESSAGE = (
    "rate limited at {url}: the limit resets in {wait} s, longer than the {cap} s casereport "
    "waits; try again later, or raise the cap with --max-rate-limit-wait (max_rate_limit_wait "
    "in casereport.toml)"
)


def test_a_rate_limit_reset_past_the_cap_fails_at_once(workspace: Path) -> None:
    with hostile_server(
        answer(b'{"errors": ["Too Many Requests"]}', 429, X_RateLimit_Reset="3600")
    ) as server:
        run = casereport(workspace, environment(server.url), "query", "status:open", "-g", "status")
        sent = len(server.requests)
    assert run.code == 1
    assert (
        run.stderr
        == "Error: " + CAP_MESSAGE.format(url=aggregate_url(server.url), wait=3600, cap=120) + "\n"
    )
    assert sent == 1
    assert run.seconds < 30, run.seconds


def test_the_rate_limit_cap_is_a_setting_and_the_flag_wins(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workspace)
    (workspace / "casereport.toml").write_text("max_rate_limit_wait = 0.5\n", encoding="utf-8")
    query = ("query", "status:open", "-g", "status")
    with hostile_server(throttled_first("1")) as server:
        env = environment(server.url)
        capped = CliRunner().invoke(cli, list(query), env=env)
        assert capped.exit_code == 1
        assert (
            capped.output
            == "Error: " + CAP_MESSAGE.format(url=aggregate_url(server.url), wait=1, cap=0.5) + "\n"
        )
        server.requests.clear()
        waited = CliRunner().invoke(cli, [*query, "--max-rate-limit-wait", "5"], env=env)
        assert waited.exit_code == 0, waited.output
        assert "OPEN" in waited.output
        assert len(server.requests) == 2


def test_429s_from_another_client_are_waited_out_not_failures() -> None:
    # For 3 s another client has spent the shared limit: every window of 0.5 s answers 429.
    storm = 3.0
    with hostile_server(shared_limit(storm, 0.5)) as server:
        results, seconds = many(server.url, distinct(48), parallelism=16)
        throttled = sum(
            1 for r in server.requests if r.received - server.requests[0].received < storm
        )
    failed = [r for r in results if isinstance(r, ApiError)]
    assert failed == []
    assert throttled > 6  # the 429s did come, more than the attempts allowed for failures
    # Everyone waited together: the storm and a little, never a storm per round of 16.
    assert seconds < storm + 3.0, seconds


class _Highest(random.Random):
    """Backoff always draws its ceiling (almost): a quarter of a second for a first retry."""

    def random(self) -> float:
        return 0.99


def test_a_request_waiting_to_retry_holds_no_slot() -> None:
    a, b = distinct(2)

    async def both(url: str) -> list[AggregateResult]:
        settings = settings_for(url, parallelism=1)
        async with CasesClient(settings, rng=_Highest()) as client:
            return list(await asyncio.gather(client.aggregate(a), client.aggregate(b)))

    with hostile_server(first_attempt_fails(503)) as server:
        results = asyncio.run(both(server.url))
        order = [r.query for r in server.requests]
    assert all(isinstance(r, AggregateResult) for r in results)
    # B went while A waited out its backoff, not after A was done.
    assert order == [a.query_filter, b.query_filter, a.query_filter, b.query_filter]


# -- 6. memory is bounded ------------------------------------------------------------------


def too_large(url: str, size: str, stage: str) -> str:
    return (
        f"refused the response from {aggregate_url(url)} (HTTP 200): the body is larger than "
        f"{size} ({stage}); an aggregate answer is far smaller, so check CASEREPORT_API_URL "
        "points at the Datadog API"
    )


@pytest.mark.parametrize(
    ("length", "stage"), [(False, "on the wire"), (True, "by its Content-Length")]
)
def test_a_body_past_the_cap_is_refused_in_one_line(length: bool, stage: str) -> None:
    with hostile_server(endless(4 * MiB, length=length)) as server:
        error, _ = call(server.url, max_response_bytes=MiB)
    assert isinstance(error, ResponseFormatError)
    assert error.message == too_large(server.url, "1 MiB", stage)
    assert len(server.requests) == 1  # not retried


def test_an_apply_against_a_server_sending_120_mb_bodies_stays_under_200_mb(
    workspace: Path,
) -> None:
    # No Content-Length: each body runs to the end of the connection, 120 MB of it, to
    # every one of the 19 requests, 16 of them at once.
    with hostile_server(endless(120_000_000)) as server:
        run = casereport(workspace, environment(server.url), "apply", "--auto-approve")
    assert run.code == 1, run.stderr
    message = too_large(server.url, "16 MiB", "on the wire")
    lines = failure_lines(run.stderr)
    assert len(lines) == ADDRESSES
    assert all(f": {message} (report " in line for line in lines), lines[0]
    print(f"peak RSS of casereport apply: {run.peak / 1e6:.0f} MB")
    assert run.peak <= 200_000_000, f"peak RSS {run.peak / 1e6:.0f} MB"


def test_a_gzip_bomb_never_inflates_past_the_cap() -> None:
    tracemalloc.start()
    try:
        with hostile_server(gzip_bomb(256 * MiB)) as server:
            tracemalloc.reset_peak()
            error, _ = call(server.url)
            _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(error, ResponseFormatError)
    assert error.message == too_large(server.url, "16 MiB", "decompressed")
    assert peak < 40 * MiB, f"{peak / MiB:.0f} MiB"


def test_a_gzipped_answer_within_the_cap_is_read() -> None:
    with hostile_server(gzipped(groups_body(1000))) as server:
        result, _ = call(server.url, AggregateRequest("", ("key",), 1000))
    assert isinstance(result, AggregateResult)
    assert len(result.groups) == 1000


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", gzip.compress(OK_BYTES[:40]) + gzip.compress(OK_BYTES[40:])),  # two members
        ("deflate", zlib.compress(OK_BYTES)),
        ("deflate", _raw_deflate(OK_BYTES)),  # as some servers send it
        ("identity", OK_BYTES),
    ],
    ids=["gzip members", "deflate", "raw deflate", "identity"],
)
def test_every_encoding_a_server_may_use_is_read(encoding: str, body: bytes) -> None:
    with hostile_server(answer(body, Content_Encoding=encoding)) as server:
        result, _ = call(server.url)
    assert isinstance(result, AggregateResult)
    assert result.total == 100.0


@pytest.mark.parametrize(
    ("encoding", "body", "problem"),
    [
        ("br", OK_BYTES, "unsupported Content-Encoding 'br'"),
        ("gzip, gzip", OK_BYTES, "unsupported Content-Encoding 'gzip, gzip'"),
        (
            "gzip",
            b"not gzip at all",
            "corrupt gzip data (Error -3 while decompressing data: incorrect header check)",
        ),
    ],
)
def test_an_unreadable_encoding_is_one_line(encoding: str, body: bytes, problem: str) -> None:
    with hostile_server(answer(body, Content_Encoding=encoding)) as server:
        error, _ = call(server.url)
    assert isinstance(error, ResponseFormatError)
    assert error.message == (
        f"unreadable response from {aggregate_url(server.url)}: {problem}; "
        "check CASEREPORT_API_URL points at the Datadog API"
    )
    assert len(server.requests) == 1


def test_the_client_keeps_at_most_limit_groups(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="casereport.api")
    with hostile_server(answer(groups_body(5000))) as server:
        result, _ = call(server.url, AggregateRequest("", ("status",), 10))
    assert isinstance(result, AggregateResult)
    assert [g.group for g in result.groups] == [f"g{i}" for i in range(10)]
    assert (
        f"{aggregate_url(server.url)} sent 5000 groups for a limit of 10: the last 4990 dropped"
        in caplog.messages
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            b'{"data": {"id": "x", "attributes": {"total": NaN, "groups": []}}}',
            "invalid number NaN (JSON has no NaN or Infinity)",
        ),
        (
            b'{"data": {"id": "x", "attributes": {"total": 1, "groups": '
            b'[{"group": "a", "value": [Infinity]}]}}}',
            "invalid number Infinity (JSON has no NaN or Infinity)",
        ),
        (
            b'{"data": {"id": "x", "attributes": {"total": -Infinity, "groups": []}}}',
            "invalid number -Infinity (JSON has no NaN or Infinity)",
        ),
        (
            b'{"data": {"id": "x", "attributes": {"total": 1e999, "groups": []}}}',
            "invalid number 1e999 (out of a double's range)",
        ),
        (b"[" * 100_000, "nested too deeply to be an API response"),
    ],
    ids=["NaN", "Infinity", "-Infinity", "1e999", "100000 ["],
)
def test_invalid_numbers_and_deep_nesting_fail_one_request(body: bytes, reason: str) -> None:
    with hostile_server(answer(body)) as server:
        error, _ = call(server.url)
    assert isinstance(error, ResponseFormatError)
    assert error.message == (
        f"unexpected response from {aggregate_url(server.url)} (HTTP 200): the body is not "
        f"valid JSON (application/json: {reason}); check CASEREPORT_API_URL points at the "
        "Datadog API"
    )


def test_an_integer_past_a_doubles_range_is_an_invalid_number() -> None:
    body = b'{"data": {"id": "x", "attributes": {"total": 1' + b"0" * 400 + b', "groups": []}}}'
    with hostile_server(answer(body)) as server:
        error, _ = call(server.url)
    assert isinstance(error, ResponseFormatError)
    assert error.message == (
        f"unexpected response from {aggregate_url(server.url)} (HTTP 200): "
        "data.attributes.total is an invalid number (not finite); the aggregate endpoint may "
        "have changed, please report it"
    )


def test_a_deeply_nested_error_body_is_still_one_line() -> None:
    with hostile_server(answer(b"[" * 100_000, 400)) as server:
        error, _ = call(server.url)
    assert isinstance(error, ApiError)
    assert error.message.startswith(
        f"Datadog rejected the request (HTTP 400) at {aggregate_url(server.url)}: [[[["
    )
    assert "\n" not in error.message and len(error.message) < 500


def test_an_apply_survives_a_deeply_nested_answer(workspace: Path) -> None:
    deep = {"creation_source:SECURITY_SIGNAL": answer(b"[" * 100_000)}
    with hostile_server(by_query(deep, answer())) as server:
        run = casereport(workspace, environment(server.url), "apply", "--auto-approve")
    assert run.code == 1, run.stderr
    assert failure_lines(run.stderr) == [
        f"  security-cases.signals_by_status: unexpected response from "
        f"{aggregate_url(server.url)} (HTTP 200): the body is not valid JSON (application/json: "
        "nested too deeply to be an API response); check CASEREPORT_API_URL points at the "
        "Datadog API (report security-cases is not rendered)"
    ]
    state = load_state(workspace / ".casereport" / "state.json")
    assert state is not None
    assert len(state.aggregations) == ADDRESSES - 1
    assert sorted(state.reports) == ["service-health", "support-backlog"]
    assert (workspace / "site" / "support-backlog.html").is_file()


# -- 7. secrets stay secret ------------------------------------------------------------------


def test_credentials_in_the_api_url_are_refused_and_never_shown(workspace: Path) -> None:
    with hostile_server(answer()) as server:
        port = server.url.rsplit(":", 1)[1]
        url = f"http://casereport:hunter2-SECRET@127.0.0.1:{port}"
        message = (
            "Error: CASEREPORT_API_URL must not carry credentials (user:password@), since the "
            f"URL is recorded in state and plans: remove them from 'http://***@127.0.0.1:{port}' "
            "and set DD_API_KEY and DD_APP_KEY (or DD_BEARER_TOKEN) instead\n"
        )
        for args in (
            ("plan", "--out", "plan.json"),
            ("apply", "--auto-approve"),
            ("query", "status:open", "-g", "status"),
        ):
            run = casereport(workspace, environment(url), *args)
            assert (run.code, run.stdout, run.stderr) == (1, "", message), args
        assert server.requests == []
    assert not (workspace / "plan.json").exists()
    assert not (workspace / ".casereport" / "state.json").exists()


@pytest.mark.parametrize(
    ("variable", "char", "what"),
    [
        ("DD_API_KEY", "\n", "a control character (a line break, NUL or escape code?)"),
        ("DD_APP_KEY", "\r", "a control character (a line break, NUL or escape code?)"),
        ("DD_APPLICATION_KEY", "\x1b", "a control character (a line break, NUL or escape code?)"),
        ("DD_BEARER_TOKEN", "\x85", "a control character (a line break, NUL or escape code?)"),
        ("DD_API_KEY", "\x7f", "a control character (a line break, NUL or escape code?)"),
        ("DD_API_KEY", "\x00", "a control character (a line break, NUL or escape code?)"),
        ("DD_APP_KEY", " ", "a space"),
        ("DD_APP_KEY", "é", "a non-ASCII character"),
    ],
)
def test_keys_with_control_characters_are_refused_unshown(
    variable: str, char: str, what: str
) -> None:
    secret = f"0d15c0ff{char}ee5e4a1b-SECRET"
    env = {"DD_API_KEY": API_KEY, "DD_APP_KEY": APP_KEY, "DD_BEARER_TOKEN": "t-SECRET"}
    if variable == "DD_APPLICATION_KEY":
        del env["DD_APP_KEY"]
    env[variable] = secret
    with pytest.raises(Exception) as caught:
        ClientSettings.from_env(env)
    message = str(caught.value)
    assert message == (
        f"{variable} holds {what}, which no Datadog key or token has: set {variable} to the "
        "key alone (check how it was pasted or read from a file)"
    )
    for part in secret.split(char):
        assert part not in message


def test_a_key_with_a_line_break_never_reaches_the_wire_or_the_terminal(workspace: Path) -> None:
    with hostile_server(answer()) as server:
        env = environment(server.url, DD_API_KEY="0d15c0ff\nee5e4a1b-SECRET")
        for args in (("query", "status:open", "-g", "status"), ("apply", "--auto-approve")):
            run = casereport(workspace, env, *args)
            assert run.code == 1
            assert run.stderr == (
                "Error: DD_API_KEY holds a control character (a line break, NUL or escape "
                "code?), which no Datadog key or token has: set DD_API_KEY to the key alone "
                "(check how it was pasted or read from a file)\n"
            )
            assert "0d15c0ff" not in run.stdout + run.stderr
        assert server.requests == []
