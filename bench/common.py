"""Helpers shared by the benchmarks: a subprocess emulator, timing, figure printing and
state entries."""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.request import urlopen

from casereport.definitions.expand import AggregationSpec
from casereport.state.history import JsonObject
from casereport.state.model import AggregationState

ROOT = Path(__file__).resolve().parent.parent
CASEREPORT = [sys.executable, "-m", "casereport"]


def figure(
    name: str, value: float, unit: str, *, target: float | None = None, note: str = ""
) -> None:
    """Print one benchmark figure: ``name: value unit (target <= T, ratio R)``."""
    parts = []
    if target is not None:
        parts.append(f"target <= {target:g} {unit}, ratio {value / target:.2f}")
    if note:
        parts.append(note)
    suffix = f" ({'; '.join(parts)})" if parts else ""
    print(f"{name}: {value:.3f} {unit}{suffix}", flush=True)


#: The pure-Python loop ``host_speed`` times, as a script runs it (at module level, its
#: names global: the form every closing note since issue 10's quoted), and what it took on
#: the fastest host the figures were measured on.
HOST_LOOP = "total = 0\nfor number in range(20_000_000):\n    total += number\n"
HOST_LOOP_REFERENCE = 0.94


def host_speed() -> None:
    """Print this host's speed now: the CPU time of a fixed pure-Python loop. The shared
    machines differ (and drift within a run) by up to twice; every figure moves with this
    one, so figures from two hosts compare only beside it. No target is scaled by it."""
    code = compile(HOST_LOOP, "host_loop", "exec")
    started = time.process_time()
    exec(code, {})  # our own constant source, in a namespace of its own
    seconds = time.process_time() - started
    figure(
        "host.python_loop_20M",
        seconds,
        "s CPU",
        note=f"{seconds / HOST_LOOP_REFERENCE:.2f}x the {HOST_LOOP_REFERENCE} s of the fastest "
        "host measured; lower is faster",
    )


def aggregation_state(
    spec: AggregationSpec, result: JsonObject, history: Sequence[JsonObject], fetched_at: str
) -> AggregationState:
    """The state entry of ``spec`` as a fetch that returned ``result`` leaves it."""
    return AggregationState(
        address=spec.address,
        report=spec.report,
        title=spec.title,
        request=spec.request(),
        fingerprint=spec.fingerprint,
        result=result,
        fetched_at=fetched_at,
        history=history,
    )


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextlib.contextmanager
def emulator_process(*args: str, timeout: float = 180.0) -> Iterator[str]:
    """Run ``casereport emulator serve --port 0 ARGS`` in its own process; yield its base URL.

    A separate process, so the emulator and the client under test each get a core.
    """
    process = subprocess.Popen(
        [*CASEREPORT, "emulator", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + timeout
        url = None
        while url is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            match = re.search(r"listening on (http://\S+)", line)
            if match:
                url = match.group(1)
        if url is None:
            raise RuntimeError(f"emulator did not start: {process.stdout.read()}")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def emulator_stats(url: str) -> dict[str, object]:
    with urlopen(f"{url}/_emulator/stats", timeout=10) as response:
        stats: dict[str, object] = json.load(response)
    return stats
