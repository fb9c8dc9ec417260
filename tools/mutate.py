"""`make mutate`: mutation testing of the engine with mutmut 3, within a time budget.

mutmut does the work: it mutates the modules `[tool.mutmut] only_mutate` names (in
pyproject.toml), records in one instrumented run of the suite which tests reach each
function, and runs each mutant against those tests only, in forked workers. What it does
not do, this wrapper adds, through mutmut's command line:

- a time budget (`--budget` seconds, `MUTATE_BUDGET` in make): when mutmut's own estimate
  of the run (the durations of the tests reaching each mutant) does not fit, an even sample
  is run, every k-th mutant of each module from a seeded offset, and the output says so;
  a run that still overruns is interrupted and its unchecked mutants are reported as such;
- each module's score, killed / (checked - listed equivalent), where mutmut prints one
  total; equivalent mutants are listed in docs/mutation-equivalent.txt with a reason;
- the survivors, with mutmut's diff of each, written to mutation-survivors.txt.

The one place it reaches inside mutmut is `prepare`: mutmut has no command that only writes
the mutants and records which tests reach them, and their names are needed before the
sample can be chosen (hence mutmut pinned to 3.8 in the dev extra).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT_FILE = ROOT / "docs" / "mutation-equivalent.txt"
SURVIVORS_FILE = ROOT / "mutation-survivors.txt"
MUTMUT = str(Path(sys.executable).parent / "mutmut")
PREPARE_LOG = ROOT / "mutants" / "mutate-prepare.log"
# A fresh clone's `make mutate` must finish within 90 minutes on two cores; the
# installation of the dev tools and mutmut's start-up come out of that.
DEFAULT_BUDGET = 80 * 60
# What one mutant costs beyond its tests: a fork, pytest's per-run set-up, the result.
PER_MUTANT_OVERHEAD = 0.3
# The line of `--prepare`'s output that estimates mutmut's clean run of the tests.
CLEAN_RUN = "clean-run"
KILLED = frozenset({"killed", "timeout", "caught by type check"})
NOT_RUN = frozenset({"not checked", "skipped", "check was interrupted by user"})


@dataclass(frozen=True)
class Sample:
    """The mutants chosen to run: every `step`-th of each module, from `offset`."""

    names: tuple[str, ...]
    step: int
    offset: int
    total: int


@dataclass(frozen=True)
class ModuleScore:
    """One module's result: `killed` out of `checked` mutants, `equivalent` set aside."""

    module: str
    killed: int
    checked: int
    equivalent: int
    not_run: int

    @property
    def score(self) -> float | None:
        denominator = self.checked - self.equivalent
        return None if denominator <= 0 else self.killed / denominator


def ordinal(number: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st, 33rd."""
    suffix = (
        "th" if number % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    )
    return f"{number}{suffix}"


def module_of(mutant: str) -> str:
    """`casereport.state.history.xǁHistoryǁadd__mutmut_3` -> `casereport.state.history`."""
    return mutant.rsplit(".", 1)[0]


def parse_estimates(text: str) -> dict[str, float]:
    """Read `123ms NAME` or `<no tests> NAME` lines (as `mutmut print-time-estimates`)."""
    estimates: dict[str, float] = {}
    for line in text.splitlines():
        head, _, name = line.strip().rpartition(" ")
        if "__mutmut_" not in name and name != CLEAN_RUN:
            continue
        if head == "<no tests>":
            estimates[name] = 0.0
        elif head.endswith("ms") and head[:-2].isdigit():
            estimates[name] = int(head[:-2]) / 1000
    return estimates


def parse_results(text: str) -> dict[str, str]:
    """Read `mutmut results --all true`: one `    NAME: status` line per mutant."""
    statuses: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, status = line.strip().partition(": ")
        if sep and "__mutmut_" in name:
            statuses[name] = status
    return statuses


def parse_equivalent(text: str, source: str = "mutation-equivalent.txt") -> dict[str, str]:
    """Read the list of equivalent mutants: `NAME: reason` a line, `#` comments."""
    reasons: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, _, reason = line.partition(":")
        if "__mutmut_" not in name or not reason.strip():
            raise ValueError(f"{source}:{number}: expected `MUTANT_NAME: why it is equivalent`")
        reasons[name.strip()] = reason.strip()
    return reasons


def choose_sample(
    estimates: Mapping[str, float],
    budget: float,
    *,
    workers: int,
    seed: int,
    overhead: float = PER_MUTANT_OVERHEAD,
    step: int | None = None,
) -> Sample:
    """Every mutant if the estimate fits the budget, else every k-th of each module.

    The estimate is mutmut's: the run time of the tests that reach a mutant (what a
    survivor costs), plus `overhead`, spread over `workers`. One seeded offset in 0..k-1
    applies to every module, so each module is sampled at the same rate; a budget already
    spent still runs one mutant of each module. A given `step` is k whatever the budget:
    with the same seed it picks the same mutants on any machine.
    """
    names = sorted(estimates)
    if step is None:
        cost = sum(estimates[name] + overhead for name in names) / max(workers, 1)
        step = 1 if cost <= budget else math.ceil(cost / max(budget, 1e-9))
    offset = random.Random(seed).randrange(step)
    by_module: dict[str, list[str]] = {}
    for name in names:
        by_module.setdefault(module_of(name), []).append(name)
    # A module shorter than the step still gives one mutant: its start wraps round.
    chosen = [
        name
        for module in sorted(by_module)
        for name in sorted(by_module[module], key=_mutant_order)[
            offset % len(by_module[module]) :: step
        ]
    ]
    return Sample(names=tuple(chosen), step=step, offset=offset, total=len(names))


def still_to_run(names: Iterable[str], before: Mapping[str, str]) -> list[str]:
    """The sampled mutants not already killed: a survivor is tried again (a test may have
    been added since), a killed one keeps its verdict while its function is unchanged
    (mutmut resets the verdicts of a function whose source changed)."""
    return [n for n in names if before.get(n, "not checked") not in KILLED]


def _mutant_order(name: str) -> tuple[str, int]:
    """Order a module's mutants as mutmut numbers them: by function, then number."""
    function, _, number = name.rpartition("__mutmut_")
    return function, int(number) if number.isdigit() else 0


def score_modules(
    statuses: Mapping[str, str], equivalent: Iterable[str], modules: Iterable[str]
) -> list[ModuleScore]:
    """Each module's score; `equivalent` mutants count only if they were checked."""
    listed = set(equivalent)
    scores = []
    for module in sorted(set(modules)):
        mine = {n: s for n, s in statuses.items() if module_of(n) == module}
        checked = [n for n, s in mine.items() if s not in NOT_RUN]
        scores.append(
            ModuleScore(
                module=module,
                killed=sum(1 for n in checked if mine[n] in KILLED and n not in listed),
                checked=len(checked),
                equivalent=sum(1 for n in checked if n in listed),
                not_run=len(mine) - len(checked),
            )
        )
    return scores


def survivors(statuses: Mapping[str, str], equivalent: Iterable[str]) -> list[str]:
    """Checked mutants that no test killed and that are not listed as equivalent."""
    listed = set(equivalent)
    return sorted(n for n, s in statuses.items() if s not in KILLED | NOT_RUN and n not in listed)


def format_scores(scores: Iterable[ModuleScore]) -> list[str]:
    """One line per module: score, killed / (checked - equivalent), what was not run."""
    lines = []
    for s in scores:
        denominator = s.checked - s.equivalent
        percent = "   n/a" if s.score is None else f"{100 * s.score:5.1f}%"
        line = f"  {percent}  {s.module}: {s.killed} killed of {denominator}"
        if s.equivalent:
            line += f" ({s.equivalent} equivalent set aside)"
        if s.not_run:
            line += f", {s.not_run} not run"
        lines.append(line)
    return lines


def prepare() -> None:
    """Begin as `mutmut run` does, then print each mutant's estimate as
    `mutmut print-time-estimates` does (`123ms NAME`, or `<no tests> NAME`).

    Run in a child process (`--prepare`): mutmut keeps its state in module globals, runs the
    suite from this process (in a child it forks: `process_isolation = "forkserver"`) and
    changes `sys.path`. mutmut has no command that only writes the
    mutants, and `print-time-estimates` on its own would drop the recorded tests of every
    function whose hash it has not seen in the same process, so the two are done together.
    """
    from mutmut.__main__ import (
        collect_or_load_stats,
        collect_source_file_mutation_data,
        create_mutants,
        estimated_worst_case_time,
    )
    from mutmut.mutation.trampoline import set_mutant_under_test
    from mutmut.state import state
    from mutmut.utils.file_utils import copy_also_copy_files, copy_src_dir, setup_source_paths
    from mutmut.workers.isolation import get_mutant_runner

    set_mutant_under_test("mutant_generation")
    Path("mutants").mkdir(exist_ok=True)
    # mutmut prints every file it walks, from its worker processes too, and the suite's
    # output: all of it goes to a log (fd 1), shown by the parent if this step fails.
    sys.stdout.flush()
    saved = os.dup(1)
    with PREPARE_LOG.open("w", encoding="utf-8") as log:
        os.dup2(log.fileno(), 1)
        try:
            copy_src_dir()
            copy_also_copy_files()
            setup_source_paths()
            create_mutants(2)
            collect_or_load_stats(get_mutant_runner(2), apply_config_invalidation=True)
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
    # `mutmut run` first runs the tests of the chosen mutants once unmutated: at most all.
    print(f"{int(sum(state().duration_by_test.values()) * 1000)}ms {CLEAN_RUN}")
    mutants, _ = collect_source_file_mutation_data(mutant_names=())
    for _, name, _ in mutants:
        seconds = estimated_worst_case_time(name.replace("__init__.", ""))
        print(f"{int(seconds * 1000)}ms {name}" if seconds else f"<no tests> {name}")


def mutmut(*args: str) -> str:
    """Run one mutmut command from the repository's root and return what it printed."""
    done = subprocess.run(
        [MUTMUT, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise SystemExit(f"mutate: `mutmut {args[0]}` failed (exit {done.returncode}), see above")
    return done.stdout


def run_mutants(names: Iterable[str], workers: int, seconds: float) -> bool:
    """`mutmut run NAMES`; interrupted (as Ctrl-C would) after `seconds`. True if it finished."""
    process = subprocess.Popen(
        [MUTMUT, "run", "--max-children", str(workers), *names],
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        return process.wait(timeout=max(seconds, 1)) == 0
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
        process.wait()
        return False


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET, help="seconds, all in")
    parser.add_argument("--modules", default="", help="only these, e.g. casereport.state.history")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument(
        "--step", type=int, default=None, help="run every STEP-th mutant, whatever the budget"
    )
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.step is not None and options.step < 1:
        parser.error(f"--step {options.step}: give a whole number of 1 or more (1 runs all)")
    os.chdir(ROOT)  # mutmut reads pyproject.toml and writes mutants/ where it runs
    if options.prepare:
        prepare()
        return 0
    started = time.monotonic()
    wanted = set(options.modules.replace(",", " ").split())

    print("mutate: writing the mutants (mutants/), then one run of the suite to learn which")
    print("        tests reach each function (the longest step; mutmut keeps it for next time)")
    prepared = subprocess.run(
        [sys.executable, __file__, "--prepare"], capture_output=True, text=True, check=False
    )
    if prepared.returncode != 0:
        log = PREPARE_LOG.read_text(encoding="utf-8") if PREPARE_LOG.exists() else ""
        sys.stderr.write(log[-6000:] + prepared.stdout[-2000:] + prepared.stderr[-4000:])
        raise SystemExit(f"mutate: mutmut could not begin (exit {prepared.returncode}), see above")
    estimates = parse_estimates(prepared.stdout)
    clean_run = estimates.pop(CLEAN_RUN, 0.0)
    if wanted:
        estimates = {n: t for n, t in estimates.items() if module_of(n) in wanted}
    if not estimates:
        raise SystemExit(f"mutate: no mutants in {', '.join(sorted(wanted)) or 'the engine'}")
    left = options.budget - (time.monotonic() - started) - clean_run
    sample = choose_sample(
        estimates, left, workers=options.workers, seed=options.seed, step=options.step
    )
    if sample.step > 1:
        why = (
            f"the step given (--step {sample.step})"
            if options.step is not None
            else f"the budget ({options.budget:.0f} s) is short of the full set"
        )
        print(
            f"mutate: {why}: running every {ordinal(sample.step)} mutant of each module from offset"
            f" {sample.offset} (seed {options.seed}), {len(sample.names)} of {sample.total}"
            f" (again: MUTATE_STEP={sample.step})"
        )
    else:
        print(f"mutate: running all {sample.total} mutants")
    before = parse_results(mutmut("results", "--all", "true"))
    pending = still_to_run(sample.names, before)
    if len(pending) < len(sample.names):
        print(
            f"mutate: {len(sample.names) - len(pending)} killed in an earlier run keep their"
            " verdict (`rm -rf mutants` to start over)"
        )
    finished = not pending or run_mutants(
        pending, options.workers, options.budget - (time.monotonic() - started)
    )
    if not finished:
        print("mutate: stopped at the budget; the mutants not reached are reported as not run")

    chosen = set(sample.names)
    statuses = {
        n: s for n, s in parse_results(mutmut("results", "--all", "true")).items() if n in chosen
    }
    equivalent = parse_equivalent(EQUIVALENT_FILE.read_text(encoding="utf-8"), EQUIVALENT_FILE.name)
    scores = score_modules(statuses, equivalent, {module_of(n) for n in chosen})
    print("mutate: killed / (checked - equivalent), per module")
    print("\n".join(format_scores(scores)))
    left_alive = survivors(statuses, equivalent)
    with SURVIVORS_FILE.open("w", encoding="utf-8") as out:
        out.write(f"# {len(left_alive)} survivors (`mutmut show NAME`, `mutmut apply NAME`)\n")
        for name in left_alive:
            out.write(f"\n## {name}: {statuses[name]}\n{mutmut('show', name)}")
    print(f"mutate: {len(left_alive)} survivors written to {SURVIVORS_FILE.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
