"""Run the benchmarks (``make bench``): each bench/bench_*.py module's ``main()``, by name."""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(HERE))
    from common import host_speed  # (bench/ is on the path only from here)

    host_speed()  # before and after: the host's speed drifts during a run
    wanted = set(argv)
    for path in sorted(HERE.glob("bench_*.py")):
        name = path.stem
        if wanted and name not in wanted and name.removeprefix("bench_") not in wanted:
            continue
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        importlib.import_module(name).main()
        print(f"   ({time.perf_counter() - started:.1f} s)", flush=True)
    host_speed()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
