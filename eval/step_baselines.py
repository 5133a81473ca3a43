"""Model-free baselines of a step PRM, as pure functions over stepwise rows: each gives one predicted
first-error index per solution (-1 = no error), scored with ProcessBench's first-error F1
(`processbench_metrics.subset_metrics`), so every PRM figure can stand beside what no model reaches.

The gold index of a row is its first step labelled wrong (`verification.first_wrong_step`: False, or a
number below 0.5; None is unknown), or -1. The baselines:

  all_correct     always -1: acc_correct 1, acc_erroneous 0, so F1 0; what a PRM that flags nothing scores.
  random          seeded, uniform over {-1, 0, ..., n-1} for a solution of n steps.
  length          s_k = -(characters of steps 1..k) (`length_scores`), flagged at the first s_k < t: "the
                  first error comes after c characters". t is tuned on the training rows
                  (`processbench_metrics.tune_threshold`, the best-F1 threshold, ties closest to 0.5).
  position_prior  P(correct | step index k, number of steps n) fitted on the training rows: the share of
                  labelled steps at (k, n) read as correct (`verification.label_is_correct`: True, or a
                  number >= 0.5), an unseen (k, n) falling back to the share at k over every n, then to the
                  share over all steps. A solution of n steps is predicted to go wrong at the first k with
                  P(correct | k, n) < 0.5, or -1 when there is none. This is what a PRM that learned only
                  where errors tend to sit (and no arithmetic) would predict.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from rewardmodels.eval.processbench_metrics import predict_from_scores, subset_metrics, tune_threshold
from rewardmodels.verification import first_wrong_step, label_is_correct

BASELINES = ("all_correct", "random", "length", "position_prior")


def gold_first_errors(rows: Sequence[dict]) -> list[int]:
    """Each row's first step labelled wrong, or -1 (module docstring)."""
    return [first_wrong_step(row["labels"]) for row in rows]


def first_error_f1(rows: Sequence[dict], predictions: Sequence[int]) -> dict:
    """ProcessBench's figures of `predictions` against the rows' gold indices: acc_erroneous (exact index
    over erroneous rows), acc_correct (share of error-free rows predicted -1) and F1, their harmonic mean
    (fractions in [0, 1]; None when a side has no rows), with the counts."""
    return subset_metrics(gold_first_errors(rows), list(predictions))


def all_correct_predictions(rows: Sequence[dict]) -> list[int]:
    """-1 for every row."""
    return [-1 for _ in rows]


def random_predictions(rows: Sequence[dict], seed: int = 0) -> list[int]:
    """Uniform over {-1, 0, ..., n-1} per row of n steps, from `random.Random(seed)` in row order."""
    rng = random.Random(seed)
    return [rng.randrange(-1, len(row["completions"])) for row in rows]


def length_scores(steps: Sequence[str]) -> list[float]:
    """-(characters of steps 1..k) for every step k."""
    total, out = 0, []
    for step in steps:
        total += len(step)
        out.append(-float(total))
    return out


def tune_length_threshold(train_rows: Sequence[dict]) -> float:
    """The threshold on `length_scores` with the best first-error F1 on `train_rows`."""
    scores = [length_scores(row["completions"]) for row in train_rows]
    threshold, _ = tune_threshold(scores, gold_first_errors(train_rows))
    return threshold


def length_predictions(rows: Sequence[dict], threshold: float) -> list[int]:
    """The first step whose length score is below `threshold`, or -1, per row."""
    return [predict_from_scores(length_scores(row["completions"]), threshold) for row in rows]


@dataclass(frozen=True)
class PositionPrior:
    """Counts of (correct, labelled) steps per (k, n), per k, and over all steps (module docstring)."""

    by_position: dict[tuple[int, int], tuple[int, int]]
    by_index: dict[int, tuple[int, int]]
    overall: tuple[int, int]

    def p_correct(self, k: int, n: int) -> float:
        """P(correct | k, n) with the fallbacks: (k, n), then k, then every step; 1 with no labels at all."""
        correct, total = self.by_position.get((k, n)) or self.by_index.get(k) or self.overall
        return correct / total if total else 1.0

    def predict(self, n: int) -> int:
        """The first k of a solution of n steps with P(correct | k, n) < 0.5, or -1."""
        return next((k for k in range(n) if self.p_correct(k, n) < 0.5), -1)


def fit_position_prior(train_rows: Sequence[dict]) -> PositionPrior:
    """Count the labelled steps of `train_rows` by (step index, number of steps); unknown labels are skipped."""
    correct: Counter = Counter()
    total: Counter = Counter()
    for row in train_rows:
        n = len(row["completions"])
        for k, label in enumerate(row["labels"]):
            if label is None:
                continue
            for key in ((k, n), k, None):
                total[key] += 1
                correct[key] += label_is_correct(label)
    by_position = {key: (correct[key], total[key]) for key in total if isinstance(key, tuple)}
    by_index = {key: (correct[key], total[key]) for key in total if isinstance(key, int)}
    return PositionPrior(by_position, by_index, (correct[None], total[None]))


def position_prior_predictions(rows: Sequence[dict], prior: PositionPrior) -> list[int]:
    """`prior.predict(n)` for every row of n steps."""
    return [prior.predict(len(row["completions"])) for row in rows]


def baseline_table(train_rows: Sequence[dict], test_rows: Sequence[dict], seed: int = 0) -> dict[str, dict]:
    """Every baseline's `first_error_f1` on `test_rows`, by name (BASELINES), the length threshold and the
    position prior fitted on `train_rows` and the random one drawn with `seed`; the length entry also
    carries the threshold it used."""
    threshold = tune_length_threshold(train_rows)
    predictions = {
        "all_correct": all_correct_predictions(test_rows),
        "random": random_predictions(test_rows, seed),
        "length": length_predictions(test_rows, threshold),
        "position_prior": position_prior_predictions(test_rows, fit_position_prior(train_rows)),
    }
    table = {name: first_error_f1(test_rows, predicted) for name, predicted in predictions.items()}
    table["length"]["threshold"] = threshold
    return table
