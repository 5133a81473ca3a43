"""The synthetic task's difficulty ladder (task a, b, c): where the slip sits per row kind, the problem ranges,
seeds, the `synthetic:...,task=` spec, and the templated verification chains of task a."""

from __future__ import annotations

import hashlib
import json

import pytest

from rewardmodels.data_builders import synthetic
from rewardmodels.data_builders.chain_rows import load_chain_rows
from rewardmodels.data_builders.sources import load_rows
from rewardmodels.verification import load_format, parse_chain

N = 60


def digest(rows: list[dict]) -> str:
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()[:16]


def working(line: str) -> tuple[int, str, int, int]:
    """`a op b = r` -> (a, op, b, r)."""
    left, result = line.split(" = ")
    a, op, b = left.split(" ")
    return int(a), op, int(b), int(result)


def is_right(line: str) -> bool:
    a, op, b, r = working(line)
    return r == (a + b if op == "+" else a - b)


def answer(line: str) -> int:
    return int(line.removeprefix("Answer: "))


def test_no_task_keeps_the_pre_ladder_rows_byte_for_byte():
    # digests of the rows these calls gave before the ladder existed (taken from the previous commit)
    assert digest(synthetic.preference_rows(50, seed=0)) == "429235857eeca5dc"
    assert (
        digest(synthetic.preference_rows(50, seed=1, answer_slip_rate=0.2, max_ops=3)) == "d3677fe7382b4981"
    )
    assert digest(synthetic.stepwise_rows(50, seed=3)) == "67abab580078d93f"
    assert digest(synthetic.stepwise_rows(50, seed=4, error_rate=0.3, max_operand=9)) == "88499d2fa64ac54b"
    assert digest(synthetic.outcome_rows(50, seed=3)) == "e93dd24c886eb25c"
    assert synthetic.stepwise_rows(50, seed=3, task=None) == synthetic.stepwise_rows(50, seed=3)


def test_task_a_rows_by_hand_on_seed_0():
    rows = synthetic.stepwise_rows(6, seed=0, task="a")
    assert [r["first_error"] for r in rows] == [-1, -1, -1, -1, 2, 4]
    # 3 + 11 = 14, 14 + 9 = 23: both working lines right, the answer misreported as 27 (slip +4)
    assert rows[4] == {
        "prompt": "Compute 3 + 11 + 9. Work it out one step at a time.",
        "completions": ["3 + 11 = 14", "14 + 9 = 23", "Answer: 27"],
        "labels": [True, True, False],
        "first_error": 2,
    }
    pair = synthetic.preference_rows(1, seed=0, task="a")[0]
    assert pair["chosen"] == "13 + 3 = 16\n16 + 18 = 34\nAnswer: 34"
    assert pair["rejected"] == "13 + 3 = 16\n16 + 18 = 34\nAnswer: 27"


def test_task_a_slips_only_the_answer_line_in_every_row_kind():
    rows = synthetic.stepwise_rows(N, seed=5, task="a")
    wrong = [r for r in rows if r["first_error"] != -1]
    assert 0 < len(wrong) < N
    for r in rows:
        *lines, last = r["completions"]
        assert all(is_right(line) for line in lines)
        truth = working(lines[-1])[3]
        if r["first_error"] == -1:
            assert r["labels"] == [True] * len(r["completions"]) and answer(last) == truth
        else:
            # exactly one False label, on the Answer step, and the answer is off by 3..9
            assert r["first_error"] == len(r["completions"]) - 1
            assert r["labels"] == [True] * len(lines) + [False]
            assert 3 <= abs(answer(last) - truth) <= 9
    outcomes = synthetic.outcome_rows(N, seed=5, task="a")
    assert [o["label"] for o in outcomes] == [r["first_error"] == -1 for r in rows]
    assert [o["completion"] for o in outcomes] == ["\n".join(r["completions"]) for r in rows]
    for pair in synthetic.preference_rows(N, seed=5, task="a"):
        chosen, rejected = pair["chosen"].split("\n"), pair["rejected"].split("\n")
        assert chosen[:-1] == rejected[:-1] and answer(chosen[-1]) != answer(rejected[-1])


def test_task_b_is_single_digit_with_one_or_two_ops_and_a_carried_working_slip():
    rows = synthetic.stepwise_rows(N, seed=5, task="b")
    # 2 - 3 = -1 slipped by +7 to 6, carried into 6 - 1 = 5 and the answer: every step is wrong from step 0
    assert synthetic.stepwise_rows(1, seed=0, task="b")[0] == {
        "prompt": "Compute 2 - 3 - 1. Work it out one step at a time.",
        "completions": ["2 - 3 = 6", "6 - 1 = 5", "Answer: 5"],
        "labels": [False, False, False],
        "first_error": 0,
    }
    assert {len(r["completions"]) - 1 for r in rows} == {1, 2}
    for r in rows:
        numbers = r["prompt"].removeprefix("Compute ").split(".")[0].split(" ")[::2]
        assert all(1 <= int(x) <= 9 for x in numbers)
        *lines, last = r["completions"]
        assert (
            answer(last) == working(lines[-1])[3]
        )  # the answer line never slips: it reports the carried value
        assert [i for i, line in enumerate(lines) if not is_right(line)] == (
            [] if r["first_error"] == -1 else [r["first_error"]]
        )
    assert any(r["first_error"] != -1 for r in rows) and any(r["first_error"] == -1 for r in rows)


def test_task_c_is_the_full_task_and_its_pairs_have_no_answer_slips():
    rows = synthetic.stepwise_rows(N, seed=5, task="c")
    assert {len(r["completions"]) - 1 for r in rows} == {2, 3, 4}
    numbers = [
        int(x) for r in rows for x in r["prompt"].removeprefix("Compute ").split(".")[0].split(" ")[::2]
    ]
    assert min(numbers) >= 1 and max(numbers) <= 20 and max(numbers) > 9
    assert all(0 <= r["first_error"] < len(r["completions"]) - 1 for r in rows if r["first_error"] != -1)
    for pair in synthetic.preference_rows(N, seed=5, task="c"):
        *lines, last = pair["rejected"].split("\n")
        assert sum(not is_right(line) for line in lines) == 1 and answer(last) == working(lines[-1])[3]


def test_seeds_and_tasks_give_their_own_deterministic_problems():
    for make in (synthetic.preference_rows, synthetic.stepwise_rows, synthetic.outcome_rows):
        by_task = {t: make(20, seed=2, task=t) for t in synthetic.TASKS}
        assert all(make(20, seed=2, task=t) == rows for t, rows in by_task.items())
        variants = [*by_task.values(), make(20, seed=2)]
        assert all(x != y for i, x in enumerate(variants) for y in variants[i + 1 :])
        # another seed is a held-out set of problems
        prompts = {r["prompt"] for r in by_task["c"]}
        assert prompts != {r["prompt"] for r in make(20, seed=3, task="c")}


def test_a_task_refuses_the_settings_it_fixes_and_unknown_tasks():
    with pytest.raises(ValueError, match="unknown synthetic task 'd'"):
        synthetic.stepwise_rows(3, task="d")
    with pytest.raises(ValueError, match="fixes the problem ranges; drop max_ops"):
        synthetic.outcome_rows(3, task="b", max_ops=4)
    with pytest.raises(ValueError, match="drop answer_slip_rate"):
        synthetic.preference_rows(3, task="a", answer_slip_rate=0.5)
    # error_rate stays free: at 1 every task-a row misreports its answer
    rows = synthetic.stepwise_rows(10, task="a", error_rate=1.0)
    assert [r["first_error"] for r in rows] == [len(r["completions"]) - 1 for r in rows]


def test_the_spec_takes_a_task_and_names_a_bad_one():
    rows, report = load_rows("synthetic:n=20,seed=1,task=a", "stepwise")
    assert rows == synthetic.stepwise_rows(20, seed=1, task="a") and report.kept == 20
    pairs, _ = load_rows("synthetic:n=5, task = b", "preference")
    assert pairs == synthetic.preference_rows(5, task="b")
    with pytest.raises(ValueError, match=r"synthetic:n=5,task=e: unknown task 'e'; the ladder has a, b, c"):
        load_rows("synthetic:n=5,task=e", "stepwise")


def test_task_a_verification_chains_flag_only_the_answer_step():
    fmt = load_format()
    chains, sources = load_chain_rows(["templated:synthetic:n=20,seed=0,task=a"], fmt)
    stepwise = synthetic.stepwise_rows(20, seed=0, task="a")
    assert sources == {"templated": 20}
    assert [c["steps"] for c in chains] == [r["completions"] for r in stepwise]
    for chain, row in zip(chains, stepwise, strict=True):
        parsed = parse_chain(fmt, chain["chain"], len(chain["steps"]))
        assert parsed.verdicts == row["labels"]
        assert parsed.decision is chain["solution_correct"] is (row["first_error"] == -1)
    assert any(not c["solution_correct"] for c in chains)
