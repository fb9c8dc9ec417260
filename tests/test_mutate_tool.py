"""tools/mutate.py (`make mutate`): its sampling, parsing and scoring, without a mutation run."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parent.parent / "tools" / "mutate.py"
_SPEC = importlib.util.spec_from_file_location("mutate_tool", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
mutate = importlib.util.module_from_spec(_SPEC)
sys.modules["mutate_tool"] = mutate
_SPEC.loader.exec_module(mutate)

HISTORY = "casereport.state.history"
PLAN = "casereport.engine.plan"


def names(module: str, function: str, count: int) -> list[str]:
    return [f"{module}.{function}__mutmut_{n}" for n in range(1, count + 1)]


def test_module_of_strips_the_mangled_function_and_class() -> None:
    assert mutate.module_of(f"{HISTORY}.xǁHistoryǁappend__mutmut_12") == HISTORY
    assert mutate.module_of(f"{PLAN}.x_build_plan__mutmut_1") == PLAN


@pytest.mark.parametrize(
    ("number", "said"),
    [
        (1, "1st"),
        (2, "2nd"),
        (3, "3rd"),
        (4, "4th"),
        (11, "11th"),
        (12, "12th"),
        (13, "13th"),
        (21, "21st"),
        (33, "33rd"),
        (44, "44th"),
        (111, "111th"),
        (122, "122nd"),
    ],
)
def test_the_step_reads_as_an_ordinal(number: int, said: str) -> None:
    assert mutate.ordinal(number) == said


def test_a_budget_that_fits_runs_every_mutant() -> None:
    estimates = dict.fromkeys(names(HISTORY, "x_f", 10), 1.0)
    sample = mutate.choose_sample(estimates, 100.0, workers=2, seed=1, overhead=0.0)
    assert (sample.step, sample.offset, sample.total) == (1, 0, 10)
    assert sorted(sample.names) == sorted(estimates)


def test_a_short_budget_takes_every_kth_mutant_of_each_module_from_a_seeded_offset() -> None:
    estimates = dict.fromkeys(names(HISTORY, "x_f", 30) + names(PLAN, "x_g", 12), 1.0)
    # 42 mutants of 1 s on 2 workers is 21 s; a 7 s budget needs one in ceil(21 / 7) = 3.
    sample = mutate.choose_sample(estimates, 7.0, workers=2, seed=5, overhead=0.0)
    assert sample.step == 3
    assert 0 <= sample.offset < 3
    picked_history = [n for n in sample.names if mutate.module_of(n) == HISTORY]
    picked_plan = [n for n in sample.names if mutate.module_of(n) == PLAN]
    assert len(picked_history) == 10
    assert len(picked_plan) == 4
    numbers = [int(n.rpartition("_")[2]) for n in picked_history]
    # In mutmut's numbering (1, 2, ... 10, 11, not 1, 10, 11 as strings): evenly spaced.
    assert numbers == list(range(sample.offset + 1, 31, 3))
    again = mutate.choose_sample(estimates, 7.0, workers=2, seed=5, overhead=0.0)
    assert again == sample


def test_a_given_step_picks_the_same_sample_whatever_the_budget() -> None:
    # A sample stated in a note (every 3rd, seed 5) is picked again on a faster or
    # slower machine, where the budget alone would choose another step.
    estimates = dict.fromkeys(names(HISTORY, "x_f", 30) + names(PLAN, "x_g", 12), 1.0)
    by_budget = mutate.choose_sample(estimates, 7.0, workers=2, seed=5, overhead=0.0)
    for budget in (1.0, 7.0, 1e9):
        given = mutate.choose_sample(estimates, budget, workers=2, seed=5, overhead=0.0, step=3)
        assert given == by_budget
    everything = mutate.choose_sample(estimates, 1.0, workers=2, seed=5, overhead=0.0, step=1)
    assert (everything.step, len(everything.names)) == (1, 42)


def test_a_step_below_one_is_refused_before_mutmut_starts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as stopped:
        mutate.main(["--step", "0"])
    assert stopped.value.code == 2
    assert "--step 0: give a whole number of 1 or more (1 runs all)" in capsys.readouterr().err


def test_a_spent_budget_still_runs_one_mutant_of_each_module() -> None:
    estimates = dict.fromkeys(names(HISTORY, "x_f", 30) + names(PLAN, "x_g", 2), 1.0)
    for seed in range(10):
        sample = mutate.choose_sample(estimates, -50.0, workers=2, seed=seed, overhead=0.0)
        assert sorted(mutate.module_of(n) for n in sample.names) == [PLAN, HISTORY]


def test_the_offset_depends_on_the_seed() -> None:
    estimates = dict.fromkeys(names(HISTORY, "x_f", 100), 1.0)
    offsets = {
        mutate.choose_sample(estimates, 5.0, workers=1, seed=seed, overhead=0.0).offset
        for seed in range(20)
    }
    assert len(offsets) > 1
    assert offsets <= set(range(20))


def test_the_overhead_per_mutant_counts_in_the_estimate() -> None:
    estimates = dict.fromkeys(names(HISTORY, "x_f", 10), 0.0)
    assert mutate.choose_sample(estimates, 1.0, workers=1, seed=0, overhead=0.0).step == 1
    assert mutate.choose_sample(estimates, 1.0, workers=1, seed=0, overhead=0.5).step == 5


def test_parse_estimates_reads_times_and_mutants_without_tests() -> None:
    text = (
        f"Running stats\n  done\n<no tests> {HISTORY}.x_a__mutmut_1\n1234ms {PLAN}.x_b__mutmut_2\n"
    )
    assert mutate.parse_estimates(text) == {
        f"{HISTORY}.x_a__mutmut_1": 0.0,
        f"{PLAN}.x_b__mutmut_2": 1.234,
    }


def test_parse_estimates_reads_the_clean_run_line_of_prepare() -> None:
    text = f"61500ms {mutate.CLEAN_RUN}\n2ms {PLAN}.x_b__mutmut_2\n"
    assert mutate.parse_estimates(text) == {mutate.CLEAN_RUN: 61.5, f"{PLAN}.x_b__mutmut_2": 0.002}


def test_only_mutants_not_already_killed_run_again() -> None:
    sampled = [f"{HISTORY}.x_a__mutmut_{n}" for n in range(1, 6)]
    before = {
        sampled[0]: "killed",
        sampled[1]: "survived",
        sampled[2]: "timeout",
        sampled[3]: "not checked",
    }
    assert mutate.still_to_run(sampled, before) == [sampled[1], sampled[3], sampled[4]]


def test_parse_results_reads_each_status() -> None:
    text = f"    {HISTORY}.x_a__mutmut_1: killed\n    {HISTORY}.x_a__mutmut_2: no tests\nnoise\n"
    assert mutate.parse_results(text) == {
        f"{HISTORY}.x_a__mutmut_1": "killed",
        f"{HISTORY}.x_a__mutmut_2": "no tests",
    }


def test_parse_equivalent_needs_a_reason_on_each_line() -> None:
    text = f"# comment\n\n{HISTORY}.x_a__mutmut_3: the loop ends either way\n"
    assert mutate.parse_equivalent(text) == {f"{HISTORY}.x_a__mutmut_3": "the loop ends either way"}
    with pytest.raises(ValueError, match=r"^eq.txt:2: expected `MUTANT_NAME: why"):
        mutate.parse_equivalent(f"# c\n{HISTORY}.x_a__mutmut_3:\n", "eq.txt")


def test_scores_set_equivalents_aside_and_leave_unrun_mutants_out() -> None:
    statuses = {
        f"{HISTORY}.x_a__mutmut_1": "killed",
        f"{HISTORY}.x_a__mutmut_2": "timeout",
        f"{HISTORY}.x_a__mutmut_3": "survived",
        f"{HISTORY}.x_a__mutmut_4": "survived",
        f"{HISTORY}.x_a__mutmut_5": "no tests",
        f"{HISTORY}.x_a__mutmut_6": "not checked",
        f"{PLAN}.x_b__mutmut_1": "killed",
    }
    equivalent = {f"{HISTORY}.x_a__mutmut_4", f"{HISTORY}.x_a__mutmut_6"}
    plan, history = mutate.score_modules(statuses, equivalent, {HISTORY, PLAN})
    assert plan == mutate.ModuleScore(PLAN, killed=1, checked=1, equivalent=0, not_run=0)
    # 5 checked, 1 of them equivalent: 2 killed of 4; the unchecked one is only "not run".
    assert history == mutate.ModuleScore(HISTORY, killed=2, checked=5, equivalent=1, not_run=1)
    assert history.score == 0.5
    assert mutate.survivors(statuses, equivalent) == [
        f"{HISTORY}.x_a__mutmut_3",
        f"{HISTORY}.x_a__mutmut_5",
    ]
    assert mutate.format_scores([history, plan]) == [
        f"   50.0%  {HISTORY}: 2 killed of 4 (1 equivalent set aside), 1 not run",
        f"  100.0%  {PLAN}: 1 killed of 1",
    ]


def test_a_module_with_nothing_checked_has_no_score() -> None:
    (only,) = mutate.score_modules({f"{PLAN}.x_b__mutmut_1": "not checked"}, set(), {PLAN})
    assert only.score is None
    assert mutate.format_scores([only]) == [f"     n/a  {PLAN}: 0 killed of 0, 1 not run"]


def test_the_equivalent_list_in_docs_parses() -> None:
    mutate.parse_equivalent(mutate.EQUIVALENT_FILE.read_text(encoding="utf-8"))
