"""Help that is true: every option is described, and every example in every ``--help``
runs as written.

``EXAMPLES`` lists, per command, the examples its help must show (so an example removed
or changed fails here until this list is changed too), and each is run by ``bash`` in a
workspace of its own: a copy of the example reports with a ``casereport`` on PATH that is
this source tree, the API at an emulator this module starts on 127.0.0.1 (through
``CASEREPORT_API_URL``), S3 at a moto server on 127.0.0.1 (``[backend] endpoint_url``),
a webhook target on 127.0.0.1 (``[notify.hook]``), and HOME in the temporary directory.
What an example needs first (a state, a saved plan, a lock, a pushed state) is in
``SETUP``; a run that listens on the fixed port of an example gets a free port instead
(``emulator serve``). Examples of ``publish`` need the Pulumi CLI and AWS: they are
skipped, with the reason shown, when ``pulumi`` is missing.
"""

from __future__ import annotations

import contextlib
import http.server
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import click
import httpx
import pytest

from casereport.cli import cli
from casereport.emulator.config import EmulatorConfig
from casereport.emulator.server import RunningEmulator, running_emulator
from s3_server import S3_ENV, S3Bucket, free_port, s3_server  # noqa: F401 (a fixture)

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "src"
LOCK_ID = "0f5b2c1e-8d7a-4c2e-9a51-3c6f7e2d9b10"
S3 = "s3://reports-state/casereport"

EXAMPLES: dict[str, list[str]] = {
    "": ["casereport query 'status:open' --group-by priority --emulator"],
    "apply": [
        "casereport apply --emulator --auto-approve",
        "casereport apply plan.json",
        "casereport apply --auto-approve --timeout 10 --max-rate-limit-wait 300",
        "casereport apply --emulator --auto-approve --json > apply.jsonl",
    ],
    "check": [
        "casereport check",
        "casereport check --junit checks.xml   # for a CI test report",
        "casereport check --json | jq '.checks[] | select(.passed | not)'",
    ],
    "completion": [
        "casereport completion bash > ~/.local/share/bash-completion/completions/casereport",
        "casereport completion zsh > ~/.zfunc/_casereport   # with fpath+=(~/.zfunc)",
        "casereport completion fish > ~/.config/fish/completions/casereport.fish",
    ],
    "demo": ["casereport demo demo-reports && cd demo-reports && casereport plan --emulator"],
    "emulator": ["casereport emulator export --cases 5 -o five-cases.json"],
    "emulator export": [
        "casereport emulator export --cases 200 --seed 3 -o cases.json",
        "casereport emulator export --now 2026-06-25T09:00Z --ndjson -o june-25.ndjson",
    ],
    "emulator serve": [
        "casereport emulator serve --cases 100000 --latency-ms 50 --rate-limit 100",
        "curl -s localhost:8710/api/v2/cases/aggregate -H 'DD-API-KEY: x' "
        "-H 'DD-APPLICATION-KEY: y' -H 'Content-Type: application/json' "
        '-d \'{"data":{"type":"aggregate","attributes":{"query_filter":"service:case-api", '
        '"group_by":{"groups":["status"],"limit":14}}}}\'',
    ],
    "fmt": ["casereport fmt", "casereport fmt --check --diff reports/support-backlog.yaml"],
    "force-unlock": [f"casereport force-unlock {LOCK_ID}"],
    "init": ["casereport init my-reports && cd my-reports && casereport validate"],
    "output": [
        "casereport output support-backlog",
        "casereport output support-backlog --csv > support-backlog.csv",
        "casereport output support-backlog | jq '.aggregations[].total'",
    ],
    "plan": [
        "casereport plan --emulator",
        "casereport plan --out plan.json && casereport apply plan.json",
        "casereport plan --markdown > plan.md   # for a pull-request comment",
    ],
    "publish": [
        "casereport publish --bucket acme-case-reports --region eu-west-1",
        "casereport publish --preview",
        "PULUMI_CONFIG_PASSPHRASE=... casereport publish --yes   # in CI",
    ],
    "query": [
        "casereport query 'service:case-api' --group-by status --limit 14 --emulator",
        "casereport query 'status:open priority:(P1 OR P2)' -g services --json",
        "casereport query 'status:open' -g team --timeout 10 --max-rate-limit-wait 300",
        "casereport query 'status:open priority:P1' --emulator   # a count",
    ],
    "notify": [
        "casereport notify --dry-run",
        "casereport notify",
        "casereport notify --force   # send the last run again, e.g. to try a new target",
    ],
    "render": ["casereport render --site-dir public", "casereport render --json"],
    "schema": [
        "casereport schema > schema/report.schema.json",
        "casereport schema --data-file > schema/data-file.schema.json",
        "casereport schema --apply-json > schema/apply-json.schema.json",
    ],
    "show": ["casereport show", "casereport show --json", "casereport show plan.json"],
    "state": ["casereport state list"],
    "state list": ["casereport state list support-backlog"],
    "state migrate": [
        f"casereport state migrate --to {S3}",
        f"casereport state migrate --backend {S3} --to local",
    ],
    "state mv": [
        "casereport state mv support-backlog support-queue",
        "casereport state mv support-backlog.by_status support-backlog.by_state",
    ],
    "state pull": [f"casereport state pull --backend {S3}"],
    "state push": [f"casereport state push --backend {S3}"],
    "state rm": ["casereport state rm support-backlog.by_status"],
    "state show": ["casereport state show 'service-health.open_by_priority[\"billing\"]'"],
    "validate": [
        "casereport validate",
        "casereport validate --strict   # in CI: a warning fails the build",
        "casereport validate --reports-dir reports --var environment=staging --json",
    ],
    "version": ["casereport version", "casereport version --json"],
    "workspace": ["casereport workspace list"],
    "workspace delete": ["casereport workspace delete staging"],
    "workspace list": [f"casereport workspace list --backend {S3}"],
    "workspace new": [
        "casereport workspace new staging && casereport plan --workspace staging --emulator"
    ],
}

# What an example needs before it runs (shell lines, in the workspace): "applied" is a
# workspace after one apply, a saved plan is written by `plan --out`, and so on.
APPLY = "casereport apply --auto-approve >/dev/null"
LOCK = (
    "mkdir -p .casereport && printf '%s' '{\"id\": \"" + LOCK_ID + '", "operation": '
    '"apply", "who": "ci@build-7", "pid": 0, "created": "2026-11-26T09:00:00Z", '
    '"path": ".casereport/state.json"}\' > .casereport/state.json.lock'
)
SETUP: dict[str, list[str]] = {
    "casereport apply plan.json": ["casereport plan --out plan.json >/dev/null"],
    "casereport show plan.json": ["casereport plan --out plan.json >/dev/null"],
    "casereport render --site-dir public": [APPLY],
    "casereport render --json": [APPLY],
    "casereport check": [APPLY],
    "casereport check --junit checks.xml   # for a CI test report": [APPLY],
    "casereport check --json | jq '.checks[] | select(.passed | not)'": [APPLY],
    "casereport notify --dry-run": [APPLY],
    "casereport notify": [APPLY],
    "casereport notify --force   # send the last run again, e.g. to try a new target": [APPLY],
    "casereport show": [APPLY],
    "casereport show --json": [APPLY],
    "casereport output support-backlog": [APPLY],
    "casereport output support-backlog --csv > support-backlog.csv": [APPLY],
    "casereport output support-backlog | jq '.aggregations[].total'": [APPLY],
    "casereport state list": [APPLY],
    "casereport state list support-backlog": [APPLY],
    "casereport state show 'service-health.open_by_priority[\"billing\"]'": [APPLY],
    "casereport state rm support-backlog.by_status": [APPLY],
    "casereport state mv support-backlog support-queue": [APPLY],
    "casereport state mv support-backlog.by_status support-backlog.by_state": [APPLY],
    f"casereport force-unlock {LOCK_ID}": [APPLY, LOCK],
    f"casereport state migrate --to {S3}": [APPLY],
    f"casereport state migrate --backend {S3} --to local": [
        APPLY,
        f"casereport state push --backend {S3} >/dev/null",
        "rm .casereport/state.json",
    ],
    f"casereport state push --backend {S3}": [APPLY],
    f"casereport state pull --backend {S3}": [
        APPLY,
        f"casereport state push --backend {S3} >/dev/null",
        "rm .casereport/state.json",
    ],
    "casereport workspace delete staging": ["casereport workspace new staging >/dev/null"],
    "casereport completion bash > ~/.local/share/bash-completion/completions/casereport": [
        "mkdir -p ~/.local/share/bash-completion/completions"
    ],
    "casereport completion zsh > ~/.zfunc/_casereport   # with fpath+=(~/.zfunc)": [
        "mkdir -p ~/.zfunc"
    ],
    "casereport completion fish > ~/.config/fish/completions/casereport.fish": [
        "mkdir -p ~/.config/fish/completions"
    ],
}
# What a run must have done, beyond exiting 0 (a file written, a line printed).
WROTE: dict[str, str] = {
    "casereport completion bash > ~/.local/share/bash-completion/completions/casereport": (
        "home/.local/share/bash-completion/completions/casereport"
    ),
    "casereport completion zsh > ~/.zfunc/_casereport   # with fpath+=(~/.zfunc)": (
        "home/.zfunc/_casereport"
    ),
    "casereport completion fish > ~/.config/fish/completions/casereport.fish": (
        "home/.config/fish/completions/casereport.fish"
    ),
    "casereport emulator export --cases 5 -o five-cases.json": "work/five-cases.json",
    "casereport emulator export --cases 200 --seed 3 -o cases.json": "work/cases.json",
    "casereport emulator export --now 2026-06-25T09:00Z --ndjson -o june-25.ndjson": (
        "work/june-25.ndjson"
    ),
    "casereport output support-backlog --csv > support-backlog.csv": "work/support-backlog.csv",
    "casereport plan --markdown > plan.md   # for a pull-request comment": "work/plan.md",
    "casereport render --site-dir public": "work/public/index.html",
    "casereport check --junit checks.xml   # for a CI test report": "work/checks.xml",
    "casereport apply --emulator --auto-approve --json > apply.jsonl": "work/apply.jsonl",
    "casereport schema --apply-json > schema/apply-json.schema.json": (
        "work/schema/apply-json.schema.json"
    ),
    "casereport init my-reports && cd my-reports && casereport validate": (
        "work/my-reports/casereport.toml"
    ),
}
NEEDS_PULUMI = set(EXAMPLES["publish"])


def walk(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, click.Command]]:
    yield " ".join(path), command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from walk(sub, (*path, name))


def examples_in(help_text: str) -> list[str]:
    """The commands under "Example:" or "Examples:", with a line that ends in a backslash
    or inside a quoted string joined to the next (by a space)."""
    found = re.search(r"^\s*Examples?:\n(.*)", help_text, re.S | re.M)
    if found is None:
        return []
    examples: list[str] = []
    pending = ""
    for line in found.group(1).splitlines():
        text = line.strip()
        if not text:
            continue
        if pending:
            text = f"{pending} {text}"
        if text.endswith("\\"):
            pending = text[:-1].rstrip()
            continue
        if text.count("'") % 2:  # a quoted string goes on
            pending = text
            continue
        pending = ""
        examples.append(text)
    return examples


def test_every_option_is_described() -> None:
    for name, command in walk(cli):
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help and param.help.strip(), f"casereport {name} {param.opts[0]}"


def test_every_command_shows_the_expected_examples() -> None:
    shown = {name: examples_in(command.help or "") for name, command in walk(cli)}
    assert shown == EXAMPLES
    assert all(shown.values()), [name for name, found in shown.items() if not found]


# -- running them ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    with running_emulator(EmulatorConfig(port=0, cases=2000)) as running:
        yield running


class _Hook(http.server.BaseHTTPRequestHandler):
    """A webhook receiver that takes every delivery."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def webhook() -> Iterator[str]:
    """The URL of a webhook target on 127.0.0.1 (for notify's examples)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/casereport"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def sandbox(
    tmp_path: Path,
    emulator: RunningEmulator,
    webhook: str,
    s3_server: str,  # noqa: F811 (the fixture)
) -> tuple[Path, dict[str, str]]:
    """A workspace (tmp/work), a HOME (tmp/home), a casereport on PATH; the environment."""
    work, home, bin_dir = tmp_path / "work", tmp_path / "home", tmp_path / "bin"
    for directory in (work, home, bin_dir):
        directory.mkdir()
    shutil.copytree(REPO / "reports", work / "reports")
    shutil.copytree(REPO / "schema", work / "schema")
    (work / "casereport.toml").write_text(
        f'[vars]\nenvironment = "prod"\n\n[backend]\nendpoint_url = "{s3_server}"\n\n'
        f'[notify.hook]\ntype = "webhook"\nurl = "{webhook}"\nsecret_env = "HOOK_SECRET"\n'
        'on = ["always"]\n',
        encoding="utf-8",
    )
    shim = bin_dir / "casereport"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m casereport "$@"\n', encoding="utf-8")
    shim.chmod(0o755)
    httpx.put(f"{s3_server}/reports-state", timeout=10)  # (an existing bucket is fine)
    S3Bucket(s3_server, "reports-state").clear()  # each example starts from an empty one
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(home),
        "PYTHONPATH": str(SRC),
        "CASEREPORT_API_URL": emulator.url,
        "DD_API_KEY": "fake-api-key",
        "DD_APP_KEY": "fake-app-key",
        "SOURCE_DATE_EPOCH": "1795719600",
        "LC_ALL": "C.UTF-8",
        "HOOK_SECRET": "help-examples-hmac-key",
        **S3_ENV,
    }
    return work, env


def bash(line: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", line],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


RUNNABLE = [
    (name, example)
    for name, examples in EXAMPLES.items()
    if name != "emulator serve"
    for example in examples
]


@pytest.mark.parametrize(("name", "example"), RUNNABLE)
def test_example_runs(name: str, example: str, sandbox: tuple[Path, dict[str, str]]) -> None:
    if example in NEEDS_PULUMI and shutil.which("pulumi") is None:
        pytest.skip("publish needs the Pulumi CLI and AWS credentials (pulumi is not on PATH)")
    work, env = sandbox
    for step in SETUP.get(example, []):
        done = bash(step, work, env)
        assert done.returncode == 0, f"setup {step!r}: {done.stdout}{done.stderr}"
    result = bash(example, work, env)
    assert result.returncode == 0, f"{example}\n{result.stdout}{result.stderr}"
    assert "Traceback" not in result.stderr
    if example in WROTE:
        written = work.parent / WROTE[example]
        assert written.is_file() and written.stat().st_size > 0, written


@contextlib.contextmanager
def serving(command: str, cwd: Path, env: dict[str, str]) -> Iterator[str]:
    """Run ``command`` (a server) in the background until the block ends; its first line."""
    process = subprocess.Popen(
        ["bash", "-c", f"exec {command}"],
        cwd=cwd,
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline()
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_emulator_serve_example_and_its_curl(sandbox: tuple[Path, dict[str, str]]) -> None:
    serve, curl = EXAMPLES["emulator serve"]
    work, env = sandbox
    port = free_port()  # the example's 8710 may be taken: a free port, as tests must
    with serving(f"{serve} --port {port}", work, env) as banner:
        assert f"listening on http://127.0.0.1:{port} (100000 synthetic cases" in banner, banner
        assert "rate limit 100/1 s; Ctrl-C stops)" in banner
        result = bash(curl.replace("localhost:8710", f"127.0.0.1:{port}"), work, env)
        assert result.returncode == 0, result.stderr
        assert '"type":"aggregate"' in result.stdout.replace(" ", "")


def test_emulator_banner_agrees_with_its_help(sandbox: tuple[Path, dict[str, str]]) -> None:
    work, env = sandbox
    help_text = bash("casereport emulator serve --help", work, env).stdout
    assert "as good as none" in help_text and "100,000 per 60 s" in help_text
    command = f"casereport emulator serve --cases 10 --port {free_port()}"
    with serving(command, work, env) as banner:
        assert "rate limit 100,000/60 s (the default, as good as none)" in banner, banner
    # And every default the help shows is the one the emulator uses.
    defaults = EmulatorConfig()
    for option, value in (
        ("--host", defaults.host),
        ("--port", defaults.port),
        ("--cases", defaults.cases),
        ("--seed", defaults.seed),
        ("--latency-ms", defaults.latency_ms),
        ("--error-rate", defaults.error_rate),
    ):
        shown = re.search(rf"{option}[^\[]*\[default: ([^\]]+)\]", help_text, re.S)
        assert shown is not None, option
        assert shown.group(1) == str(value), option
