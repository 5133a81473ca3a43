"""The model-free step-PRM baselines (eval/step_baselines.py), on a 3-row training set worked by hand: the
position-prior table and its fallbacks, the tuned length threshold, the predictions and their F1."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from rewardmodels.data_builders import synthetic
from rewardmodels.eval import step_baselines as sb


def row(steps: list[str], labels: list) -> dict:
    return {"prompt": "p", "completions": steps, "labels": labels}


# Training rows. Cumulative lengths: R1 1,2,3 (no error); R2 3,6,9 (error at 1, step 2 unlabelled, as
# ProcessBench's after_error=unlabelled); R3 2,6 (error at 1).
TRAIN = [
    row(["a", "a", "a"], [True, True, True]),
    row(["aaa", "aaa", "aaa"], [True, False, None]),
    row(["aa", "aaaa"], [True, False]),
]
# Test rows and their gold first errors: -1, 1, 3, 0.
TEST = [
    row(["a", "a", "a"], [True, True, True]),
    row(["aa", "aaaa"], [True, False]),
    row(["a", "a", "a", "aa"], [True, True, True, False]),
    row(["aaaa", "a", "a"], [False, False, False]),
]


def test_gold_first_errors_read_the_labels():
    assert sb.gold_first_errors(TRAIN) == [-1, 1, 1]
    assert sb.gold_first_errors(TEST) == [-1, 1, 3, 0]
    assert sb.gold_first_errors([row(["x", "y", "z"], [None, 0.7, 0.2])]) == [2]  # soft: first below 0.5


def test_the_position_prior_table_by_hand():
    prior = sb.fit_position_prior(TRAIN)
    # (k, n): (correct, labelled). R2's unlabelled step 2 is not counted.
    assert prior.by_position == {
        (0, 3): (2, 2),
        (1, 3): (1, 2),
        (2, 3): (1, 1),
        (0, 2): (1, 1),
        (1, 2): (0, 1),
    }
    assert prior.by_index == {0: (3, 3), 1: (1, 3), 2: (1, 1)}
    assert prior.overall == (5, 7)
    assert prior.p_correct(1, 3) == 0.5  # seen (k, n)
    assert prior.p_correct(1, 4) == pytest.approx(1 / 3)  # unseen n: falls back to k = 1 over every n
    assert prior.p_correct(3, 4) == pytest.approx(5 / 7)  # unseen k: the overall rate
    # n = 3: priors 1, 0.5, 1 and 0.5 is not below 0.5 -> -1; n = 2: 1, 0 -> 1; n = 4: 1, 1/3 -> 1
    assert [prior.predict(n) for n in (3, 2, 4)] == [-1, 1, 1]
    assert sb.position_prior_predictions(TEST, prior) == [-1, 1, 1, -1]


def test_the_length_threshold_is_tuned_on_the_training_rows():
    assert sb.length_scores(["ab", "c", ""]) == [-2.0, -3.0, -3.0]
    # Candidates -9, -7.5, -4.5, -2.5, -1.5, 0 give F1 0, 0, 1, 0, 0, 0 on TRAIN: only t = -4.5 puts R1's
    # flag nowhere (min -3) and R2's and R3's at step 1 (first length score -6 < -4.5).
    assert sb.tune_length_threshold(TRAIN) == -4.5
    # a step is flagged once 5 characters have been written: TEST's last row is flagged at 1, not 0
    assert sb.length_predictions(TEST, -4.5) == [-1, 1, 3, 1]


def test_random_and_all_correct_predictions():
    assert sb.all_correct_predictions(TEST) == [-1, -1, -1, -1]
    rng = random.Random(7)
    assert sb.random_predictions(TEST, seed=7) == [rng.randrange(-1, len(r["completions"])) for r in TEST]
    many = [row(["s"] * 3, [True] * 3)] * 4000
    counts = Counter(sb.random_predictions(many, seed=1))
    assert set(counts) == {-1, 0, 1, 2} and all(900 < c < 1100 for c in counts.values())
    assert sb.random_predictions(many, seed=1) != sb.random_predictions(many, seed=2)


def test_the_f1_by_hand():
    # position prior [-1, 1, 1, -1] against gold [-1, 1, 3, 0]: erroneous 1 of 3 right, correct 1 of 1,
    # F1 = 2 (1/3)(1) / (1/3 + 1) = 0.5
    m = sb.first_error_f1(TEST, [-1, 1, 1, -1])
    assert (m["n_erroneous"], m["n_correct"]) == (3, 1)
    assert m["acc_erroneous"] == pytest.approx(1 / 3) and m["acc_correct"] == 1.0
    assert m["f1"] == pytest.approx(0.5)
    table = sb.baseline_table(TRAIN, TEST, seed=7)
    assert list(table) == list(sb.BASELINES)
    assert table["position_prior"]["f1"] == pytest.approx(0.5)
    assert table["all_correct"]["acc_correct"] == 1.0 and table["all_correct"]["f1"] == 0.0
    # length [-1, 1, 3, 1]: erroneous 2 of 3, correct 1 of 1, F1 = 2 (2/3) / (5/3) = 0.8
    assert table["length"]["f1"] == pytest.approx(0.8) and table["length"]["threshold"] == -4.5
    assert table["random"] == sb.first_error_f1(TEST, sb.random_predictions(TEST, seed=7))


def test_the_position_prior_of_task_a_can_only_flag_the_answer_step():
    # In task a only the Answer step is ever wrong, in about half the rows: every working step's prior is 1,
    # the Answer step's sits near 0.5, so the prior flags the Answer step of every row of some lengths and
    # nothing in the others, far below the step PRM's target (F1 >= 0.8) on held-out problems.
    train = synthetic.stepwise_rows(400, seed=0, task="a")
    test = synthetic.stepwise_rows(200, seed=1, task="a")
    prior = sb.fit_position_prior(train)
    assert all(prior.p_correct(k, n) == 1.0 for n in (3, 4, 5) for k in range(n - 1))
    assert all(0.3 < prior.p_correct(n - 1, n) < 0.7 for n in (3, 4, 5))
    predictions = sb.position_prior_predictions(test, prior)
    assert all(p in (-1, len(r["completions"]) - 1) for p, r in zip(predictions, test, strict=True))
    table = sb.baseline_table(train, test, seed=0)
    assert table["position_prior"]["f1"] < 0.6 and table["all_correct"]["f1"] == 0.0
