"""Remote-state figures (issue 14), against moto's S3 server in a process of its own:

- `casereport plan` of 1,000 reports x 10 aggregations with no change, the state in the
  bucket (target <= 1.5 s; the first plan of a machine downloads it, the next ones send a
  conditional GET that the unchanged state answers with 304);
- a no-op `make report` equivalent (`casereport apply --auto-approve --emulator` on this
  repository's reports) with the state in the bucket (target <= 1.0 s, the lock object
  taken and released included).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.error import URLError
from urllib.request import Request, urlopen

from bench_engine import AGGREGATIONS, REPORTS, full_state, write_workspace
from casereport.state.model import Source
from common import CASEREPORT, ROOT, figure

BUCKET = "casereport-bench"
CLOCK = 1_795_653_000  # 2026-11-26T00:30:00Z
KEYS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1"}


@contextlib.contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3 server on a free port of 127.0.0.1, with the bench bucket in it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urlopen(Request(f"{endpoint}/{BUCKET}", method="PUT"), timeout=2).close()
                break
            except (URLError, ConnectionError):
                time.sleep(0.05)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)


def _remote(root: Path, endpoint: str, prefix: str) -> dict[str, str]:
    (root / "casereport.toml").write_text(
        f'[backend]\nurl = "s3://{BUCKET}/{prefix}"\nendpoint_url = "{endpoint}"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DD_", "CASEREPORT_"))}
    # The clock of bench_engine's full state: its results are fresh, the plan a no-op.
    return {**env, **KEYS, "SOURCE_DATE_EPOCH": str(CLOCK)}


def _run(command: list[str], root: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No changes" in done.stdout, done.stdout[-2000:]
    return elapsed


def bench_remote_plan(endpoint: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_workspace(root, REPORTS, AGGREGATIONS)
        full_state(root, Source("emulator", "emulator", "bench"))
        env = _remote(root, endpoint, "plan")
        subprocess.run(
            [*CASEREPORT, "state", "push"], cwd=root, env=env, check=True, capture_output=True
        )
        plan = [*CASEREPORT, "plan", "--emulator"]
        local = min(_run(plan, root, {**env, "CASEREPORT_BACKEND": "local"}) for _ in range(3))
        shutil.rmtree(root / ".casereport")  # the bucket holds the state now
        first = _run(plan, root, env)
        best = min(_run(plan, root, env) for _ in range(3))
        figure(
            "backend.plan_command_1000x10_remote_state",
            best,
            "s",
            target=1.5,
            note=f"best of 3; the same plan on a local state {local:.2f} s; the first plan of "
            f"this machine, downloading the state: {first:.2f} s",
        )


def bench_remote_noop_report(endpoint: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copytree(ROOT / "reports", root / "reports")
        env = _remote(root, endpoint, "report")
        command = [*CASEREPORT, "apply", "--auto-approve", "--emulator"]
        subprocess.run(command, cwd=root, env=env, check=True, capture_output=True)
        timings = [_run(command, root, env) for _ in range(5)]
        local_env = {**env, "CASEREPORT_BACKEND": "local"}
        subprocess.run(command, cwd=root, env=local_env, check=True, capture_output=True)
        local = statistics.median(_run(command, root, local_env) for _ in range(5))
        figure(
            "backend.noop_report_remote_state",
            statistics.median(timings),
            "s",
            target=1.0,
            note="`casereport apply --auto-approve --emulator` as `make report` runs it, "
            f"median of 5, lock object taken and released; on a local state {local:.2f} s",
        )


def main() -> None:
    with s3_server() as endpoint:
        bench_remote_plan(endpoint)
        bench_remote_noop_report(endpoint)


if __name__ == "__main__":
    main()
