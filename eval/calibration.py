"""Calibration in the evaluators: what the probability p and the label y are for each, and the results
entry, report lines and reliability diagram they share. Pure functions apart from `write_diagram`.

Every evaluator reports ECE (15 equal-width bins, issue 26), Brier and AUROC (`calibration_metrics`) of
its points, says in results.json what p and y were, and writes `calibration.png` next to its results.

- RewardBench (v1 and v2) and robustness (each variant): every (chosen, rejected) pair of scores c, r,
  all chosen x rejected combinations for v2 and RM-Bench style rows, is two points, one per order:
      p = sigmoid(c - r), y = 1      and      p = sigmoid(r - c), y = 0.
  Why both orders: with the chosen response always first every label is 1, so AUROC is undefined and ECE
  collapses to 1 - mean(p), which rewards pushing every p to 1 rather than calibration. Which response
  comes first is arbitrary; counting both, the bins above 1/2 hold each pair once with y = [c > r] and
  conf = max(sigmoid(c - r), sigmoid(r - c)), Guo et al.'s confidence-vs-accuracy reading, mirrored
  below 1/2. Brier is the same either way: (1 - sigmoid(c - r))^2 = sigmoid(r - c)^2.
- ProcessBench: each step's score as P(step correct), y = 1 for a step before the first error, 0 for the
  first wrong step. Steps after it are left out: ProcessBench's label says nothing about them. A solution
  labelled -1 gives every step y = 1. Only when every finite step score lies in [0, 1] (a PRM's
  probability, sigmoid(q) of an implicit PRM, a verifier's P(yes) or 1/0 verdict); otherwise, and for
  scorers that predict the error index without step scores, results.json says there is no probability.
- Best-of-N: each candidate's score as P(candidate's answer is correct), y = its math-verify verdict.
  The score as it is when every finite score lies in [0, 1] (as `best_of_n.weight_mode` "auto" decides),
  else sigmoid(score), the head's own sigmoid for a reward head; results.json says which.

A NaN score (unscored) gives no point; results.json counts such points as `unscored`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from rewardmodels.eval.calibration_metrics import calibration_metrics

EVAL_BINS = 15
DIAGRAM_NAME = "calibration.png"

PAIR_PROBABILITY = (
    "sigmoid(score_chosen - score_rejected), and sigmoid(score_rejected - score_chosen) for the reverse order"
)
PAIR_LABEL = "1 for the chosen-first order, 0 for the rejected-first order (every pair counted both ways)"
STEP_PROBABILITY = "the step score as P(step correct) (every finite step score lies in [0, 1])"
STEP_LABEL = (
    "1 for a step before the first error, 0 for the first wrong step; later steps left out (unlabelled)"
)
CANDIDATE_LABEL = "1 when the candidate's final answer matches the gold answer (math-verify)"


def sigmoid(x: float) -> float:
    """1 / (1 + exp(-x)), without overflow for large |x|."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def _nan(x) -> bool:
    return x is None or math.isnan(x)


def summarize(
    probs: Sequence[float],
    labels: Sequence[int],
    probability: str,
    label: str,
    unscored: int = 0,
    n_bins: int = EVAL_BINS,
) -> dict:
    """The results entry: what p and y are, `unscored` (points without a score), then `calibration_metrics`."""
    return {
        "probability": probability,
        "label": label,
        "unscored": unscored,
        **calibration_metrics(probs, labels, n_bins),
    }


def unavailable(reason: str) -> dict:
    """The results entry of a scorer that has no probability: the reason, and no figure invented."""
    return {"probability": None, "reason": reason}


def available(entry: Mapping | None) -> bool:
    return bool(entry) and entry.get("probability") is not None


# ---- pairs: RewardBench v1/v2, robustness ----------------------------------------------------------------


def pair_points(score_chosen, score_rejected) -> tuple[list[float], list[int], int]:
    """(p, y, unscored) of one record: two points per chosen x rejected combination (module docstring).
    A score may be a float or a list (v2, RM-Bench); a combination with a NaN score gives no point."""
    chosen = score_chosen if isinstance(score_chosen, list) else [score_chosen]
    rejected = score_rejected if isinstance(score_rejected, list) else [score_rejected]
    probs: list[float] = []
    labels: list[int] = []
    unscored = 0
    for c in chosen:
        for r in rejected:
            if _nan(c) or _nan(r) or math.isnan(c - r):  # inf - inf is NaN too
                unscored += 1
                continue
            probs += [sigmoid(c - r), sigmoid(r - c)]
            labels += [1, 0]
    return probs, labels, unscored


def pair_calibration(records: Sequence[Mapping], n_bins: int = EVAL_BINS) -> dict:
    """The calibration entry of RewardBench-style records (`score_chosen`, `score_rejected`)."""
    probs, labels, unscored = pooled(pair_points(r["score_chosen"], r["score_rejected"]) for r in records)
    return summarize(probs, labels, PAIR_PROBABILITY, PAIR_LABEL, unscored, n_bins)


def pooled(points: Iterable[tuple[list[float], list[int], int]]) -> tuple[list[float], list[int], int]:
    """The (p, y, unscored) of many rows as one: lists concatenated, unscored counts summed."""
    probs: list[float] = []
    labels: list[int] = []
    unscored = 0
    for p, y, u in points:
        probs += p
        labels += y
        unscored += u
    return probs, labels, unscored


# ---- steps: ProcessBench ---------------------------------------------------------------------------------


def step_points(step_scores: Sequence[float], label: int) -> tuple[list[float], list[int], int]:
    """(p, y, unscored) of one solution: steps 0 .. label (all steps when label = -1), y = [i < label]."""
    last = len(step_scores) - 1 if label == -1 else label
    probs: list[float] = []
    labels: list[int] = []
    unscored = 0
    for i, s in enumerate(step_scores[: last + 1]):
        if _nan(s):
            unscored += 1
            continue
        probs.append(float(s))
        labels.append(0 if i == label else 1)
    return probs, labels, unscored


def processbench_calibration(
    examples: Sequence[Mapping], mode: str = "scores", n_bins: int = EVAL_BINS
) -> dict:
    """{"calibration": pooled entry, "calibration_by_subset": one per subset} of scored ProcessBench
    examples (`step_scores`, `label`, `subset`); without step scores in [0, 1], the reason instead."""
    if mode == "direct":
        return {
            "calibration": unavailable("the scorer predicts the first-error index and gives no step scores")
        }
    finite = [s for e in examples for s in e["step_scores"] if not _nan(s)]
    outside = [s for s in finite if not 0.0 <= s <= 1.0]
    if outside:
        return {
            "calibration": unavailable(
                f"{len(outside)} step scores lie outside [0, 1] (e.g. {outside[0]:.4g}): not probabilities"
            )
        }

    def entry(rows: Sequence[Mapping]) -> dict:
        probs, labels, unscored = pooled(step_points(e["step_scores"], e["label"]) for e in rows)
        return summarize(probs, labels, STEP_PROBABILITY, STEP_LABEL, unscored, n_bins)

    subsets = list(dict.fromkeys(e["subset"] for e in examples))
    return {
        "calibration": entry(examples),
        "calibration_by_subset": {s: entry([e for e in examples if e["subset"] == s]) for s in subsets},
    }


# ---- candidates: best-of-N -------------------------------------------------------------------------------


def best_of_n_calibration(problems: Sequence[Mapping], n_bins: int = EVAL_BINS) -> dict:
    """The calibration entry of judged best-of-N problems (`scores`, `correct` per candidate)."""
    from rewardmodels.eval.best_of_n import weight_mode

    scores = [s for p in problems for s in p["scores"]]
    raw = weight_mode(scores, "auto") == "raw"
    probs: list[float] = []
    labels: list[int] = []
    unscored = 0
    for problem in problems:
        for s, ok in zip(problem["scores"], problem["correct"], strict=True):
            if _nan(s):
                unscored += 1
                continue
            probs.append(float(s) if raw else sigmoid(s))
            labels.append(int(bool(ok)))
    how = (
        "the candidate's score as P(correct) (every finite score lies in [0, 1])"
        if raw
        else "sigmoid(candidate's score) as P(correct) (scores outside [0, 1]: not probabilities as they are)"
    )
    return summarize(probs, labels, how, CANDIDATE_LABEL, unscored, n_bins)


# ---- report ----------------------------------------------------------------------------------------------


def entries_of(results: Mapping, pooled: str) -> dict[str, Mapping | None]:
    """The named calibration entries of an evaluator's results: `calibration` under the name `pooled`, then
    each of `calibration_by_subset` (where the evaluator reports per subset)."""
    return {pooled: results.get("calibration"), **(results.get("calibration_by_subset") or {})}


def markdown_lines(entries: Mapping[str, Mapping | None]) -> list[str]:
    """The report's calibration table (one row per named entry; x100 for ECE and Brier, AUROC as is) and
    what p and y were, or why an entry has no probability."""
    from rewardmodels.eval.report import markdown_table

    shown = {name: e for name, e in entries.items() if available(e)}
    lines: list[str] = []
    if shown:
        bins = next(iter(shown.values()))["n_bins"]
        rows = [[name, e["n"], e["unscored"], e["ece"], e["brier"], e["auroc"]] for name, e in shown.items()]
        table = markdown_table(
            ["Calibration", "points", "unscored", "ECE (x100)", "Brier (x100)", "AUROC (x100)"],
            rows,
            percent_columns=(3, 4, 5),
            align_right=(1, 2, 3, 4, 5),
        )
        described = {(e["probability"], e["label"]) for e in shown.values()}
        lines += [f"Calibration ({bins} equal-width bins; reliability diagram: {DIAGRAM_NAME}).", ""]
        lines += [f"p = {p}; y = {y}." for p, y in described] + ["", table, ""]
    for name, e in entries.items():
        if e and not available(e):
            lines += [f"Calibration of {name}: none, {e['reason']}.", ""]
    return lines


def write_diagram(
    output_dir: str | os.PathLike, entries: Mapping[str, Mapping | None], title: str = ""
) -> Path | None:
    """`calibration.png` in `output_dir` with one curve per entry that has points; None when none has."""
    from rewardmodels.eval.calibration_plot import write_reliability_diagram

    curves = {name: e for name, e in entries.items() if available(e) and e.get("n")}
    if not curves:
        return None
    return write_reliability_diagram(Path(output_dir) / DIAGRAM_NAME, curves, title)


__all__ = [
    "DIAGRAM_NAME",
    "EVAL_BINS",
    "available",
    "best_of_n_calibration",
    "entries_of",
    "markdown_lines",
    "pair_calibration",
    "pair_points",
    "processbench_calibration",
    "sigmoid",
    "step_points",
    "summarize",
    "unavailable",
    "write_diagram",
]
