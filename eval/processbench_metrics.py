"""The ProcessBench metric: predictions from step scores, per-subset accuracies and F1, and the threshold
sweep that finds the best threshold exactly. Pure functions over scores and labels, no I/O.

A PRM's prediction is the first step scored below a threshold t, or -1 when none is. Per subset:
  acc_erroneous  exact matches of the earliest-error index, over samples with label != -1
  acc_correct    share of label == -1 samples predicted as -1
  f1             their harmonic mean

An unscored step (NaN: cut by max_length, or a verdict that could not be parsed) reached before any flagged
step leaves the prediction undetermined: None, a miss for an erroneous and for a correct sample alike, as
ProcessBench's official evaluation counts a prediction it cannot extract. `unscored="correct"` keeps the old
reading (an unscored step is never an error), which inflates acc_correct.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from rewardmodels.steps import harmonic_mean

UNSCORED_RULES = ("miss", "correct")


def predict_from_scores(scores: Sequence[float], threshold: float, unscored: str = "miss") -> int | None:
    """The first step scored below `threshold`, or -1. A NaN step reached first gives None with
    `unscored="miss"` (the official rule), and is skipped as never an error with `unscored="correct"`."""
    for i, s in enumerate(scores):
        if s is None or math.isnan(s):
            if unscored == "miss":
                return None
            continue
        if s < threshold:
            return i
    return -1


def subset_metrics(labels: Sequence[int], predictions: Sequence[int]) -> dict:
    """acc_erroneous, acc_correct and F1 for one subset (fractions in [0, 1]; None when undefined)."""
    # A None prediction (undetermined) equals no label: a miss on either side.
    err = [p == y for y, p in zip(labels, predictions, strict=True) if y != -1]
    cor = [p == -1 for y, p in zip(labels, predictions, strict=True) if y == -1]
    acc_err = sum(err) / len(err) if err else None
    acc_cor = sum(cor) / len(cor) if cor else None
    return {
        "n": len(labels),
        "n_erroneous": len(err),
        "n_correct": len(cor),
        "acc_erroneous": acc_err,
        "acc_correct": acc_cor,
        "f1": harmonic_mean(acc_err, acc_cor),
    }


def _prefix_minima(scores: Sequence[float]) -> np.ndarray:
    # pred(t) = first i with s_i < t = first i with min(s_0..s_i) < t; NaN (unscored) never flags a step.
    values = np.array([np.inf if s is None or math.isnan(s) else s for s in scores], dtype=np.float64)
    return np.minimum.accumulate(values)


def _first_unscored(scores: Sequence[float]) -> int:
    return next((i for i, s in enumerate(scores) if s is None or math.isnan(s)), len(scores))


def f1_curve(
    step_scores: Sequence[Sequence[float]],
    labels: Sequence[int],
    thresholds: np.ndarray,
    unscored: str = "miss",
):
    """acc_erroneous, acc_correct and F1 at every threshold at once.

    An erroneous sample (label L) is right exactly when t lies in (m_L, m_{L-1}], with m the prefix minima of
    its scores (m_{-1} = +inf); a correct sample is right exactly when t <= m_last. With `unscored="miss"`
    (`predict_from_scores`), a sample whose first unscored step is k is right only if L < k (the scan
    reaches its error before the gap), and a correct sample with any unscored step is never right.
    """
    thresholds = np.asarray(thresholds, dtype=np.float64)
    err_hits = np.zeros_like(thresholds)
    cor_hits = np.zeros_like(thresholds)
    n_err = n_cor = 0
    for scores, label in zip(step_scores, labels, strict=True):
        m = _prefix_minima(scores)
        gap = _first_unscored(scores) if unscored == "miss" else len(scores)
        if label == -1:
            n_cor += 1
            cor_hits += (thresholds <= m[-1]) & (gap == len(scores))
        else:
            n_err += 1
            upper = m[label - 1] if label > 0 else np.inf
            err_hits += (thresholds > m[label]) & (thresholds <= upper) & (label < gap)
    acc_err = err_hits / n_err if n_err else np.full_like(thresholds, np.nan)
    acc_cor = cor_hits / n_cor if n_cor else np.full_like(thresholds, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(acc_err + acc_cor > 0, 2 * acc_err * acc_cor / (acc_err + acc_cor), 0.0)
    return acc_err, acc_cor, f1


def candidate_thresholds(step_scores: Sequence[Sequence[float]]) -> np.ndarray:
    """One threshold inside every interval on which predictions stay the same: F1 only changes where t
    crosses a step score, so the lowest score, the midpoints between neighbouring scores, and one value above
    the highest cover every distinct outcome."""
    values = np.unique(
        [s for scores in step_scores for s in scores if s is not None and not math.isnan(s)]
    ).astype(np.float64)
    if values.size == 0:
        return np.array([0.5])
    top = values[-1] + max(1e-6, (1.0 - values[-1]) / 2)
    return np.concatenate([values[:1], (values[1:] + values[:-1]) / 2, [top]])


def tune_threshold(
    step_scores: Sequence[Sequence[float]], labels: Sequence[int], unscored: str = "miss"
) -> tuple[float, float]:
    """The threshold with the highest F1 (ties: the one closest to 0.5), and that F1."""
    thresholds = candidate_thresholds(step_scores)
    _, _, f1 = f1_curve(step_scores, labels, thresholds, unscored)
    best = np.flatnonzero(f1 == f1.max())
    pick = best[np.argmin(np.abs(thresholds[best] - 0.5))]
    return float(thresholds[pick]), float(f1[pick])


def threshold_from_other_subsets(examples: list[dict], subset: str) -> dict | None:
    """`subset`'s metrics under the threshold tuned on every *other* subset's examples together (an
    out-of-sample figure for it), with that threshold, the subsets it was chosen on and their F1; None when
    no other subset exists."""
    others = [e for e in examples if e["subset"] != subset]
    if not others:
        return None
    threshold, tuning_f1 = tune_threshold([e["step_scores"] for e in others], [e["label"] for e in others])
    rows = [e for e in examples if e["subset"] == subset]
    predictions = [predict_from_scores(e["step_scores"], threshold) for e in rows]
    return {
        "threshold": threshold,
        "chosen_on": sorted({e["subset"] for e in others}),
        "tuning_f1": tuning_f1,
        **subset_metrics([e["label"] for e in rows], predictions),
    }


def threshold_provenance(examples: list[dict], subsets: list[str], tune_on: str) -> dict:
    """Which figure is which when the threshold was tuned on `tune_on`: every subset's F1 labelled
    in-sample (`tune_on` itself) or out-of-sample, and next to `tune_on`'s in-sample figure its F1 under a
    threshold chosen on the other subsets (`threshold_from_other_subsets`), or why there is none."""
    outside = f"out-of-sample (threshold tuned on {tune_on})"
    labels = {s: "in-sample (threshold tuned on it)" if s == tune_on else outside for s in subsets}
    other = threshold_from_other_subsets(examples, tune_on)
    none = f"none: no subset besides {tune_on} to choose a threshold on; its tuned F1 is in-sample only"
    return {"threshold_from": labels, "tuning_subset_with_threshold_from_other_subsets": other or none}


def out_of_sample_line(results: dict) -> str | None:
    """The report's sentence for the tuning subset's out-of-sample figure (`threshold_provenance`)."""
    other = results.get("tuning_subset_with_threshold_from_other_subsets")
    if not isinstance(other, dict):
        return f"Out-of-sample threshold for {results['tuned_on']}: {other}." if other else None

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f}"

    return (
        f"{results['tuned_on']} with t = {other['threshold']:.4g} chosen on the other subsets "
        f"({', '.join(other['chosen_on'])}), out-of-sample: acc_erroneous {pct(other['acc_erroneous'])}, "
        f"acc_correct {pct(other['acc_correct'])}, F1 {pct(other['f1'])}."
    )


def summarize(examples: list[dict]) -> dict:
    """Per-subset metrics and their means over subsets, from examples that carry `label` and `prediction`."""
    subsets: dict[str, dict] = {}
    for name in dict.fromkeys(e["subset"] for e in examples):
        rows = [e for e in examples if e["subset"] == name]
        subsets[name] = subset_metrics([e["label"] for e in rows], [e["prediction"] for e in rows])
    average = {}
    for key in ("acc_erroneous", "acc_correct", "f1"):
        values = [m[key] for m in subsets.values() if m[key] is not None]
        average[key] = sum(values) / len(values) if values else None
    return {"subsets": subsets, "average": average}


# ---- the solution-level figure, and compute ---------------------------------------------------------------

SOLUTION_LEVEL = (
    'binary F1 of "the solution contains a mistake" (a solution-level reading; ThinkPRM\'s released code has '
    "no ProcessBench evaluation to compare with), not the first-error F1 above: positive = label != -1, "
    "predicted positive = prediction != -1"
)


def solution_level_f1(labels: Sequence[int], predictions: Sequence[int]) -> dict:
    """Binary F1 of "the solution contains a mistake": a sample is positive when label != -1 and predicted
    positive when prediction != -1, whatever index either names. With TP, FP, FN counted so,
    precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2 TP / (2 TP + FP + FN) (None where a
    denominator is 0), accuracy = share of samples whose positive/negative call is right."""
    truth = [y != -1 for y in labels]
    # An undetermined prediction (None) is a miss either way: the opposite of the truth.
    called = [not t if p is None else p != -1 for t, p in zip(truth, predictions, strict=True)]
    tp = sum(t and c for t, c in zip(truth, called, strict=True))
    fp = sum(c and not t for t, c in zip(truth, called, strict=True))
    fn = sum(t and not c for t, c in zip(truth, called, strict=True))
    return {
        "n": len(truth),
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
        "f1": 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else None,
        "accuracy": sum(t == c for t, c in zip(truth, called, strict=True)) / len(truth) if truth else None,
    }


def solution_level_summary(examples: list[dict]) -> dict:
    """`solution_level_f1` per subset and its mean F1 over subsets (examples carry label and prediction)."""
    subsets = {}
    for name in dict.fromkeys(e["subset"] for e in examples):
        rows = [e for e in examples if e["subset"] == name]
        subsets[name] = solution_level_f1([e["label"] for e in rows], [e["prediction"] for e in rows])
    values = [m["f1"] for m in subsets.values() if m["f1"] is not None]
    return {"definition": SOLUTION_LEVEL, "subsets": subsets,
            "average": {"f1": sum(values) / len(values) if values else None}}  # fmt: skip


def solution_level_and_compute(examples: list[dict], compute: dict | None) -> dict:
    """The results' `solution_level` figures (`solution_level_summary`) and, when the scorer reports it,
    its `compute` (what scoring cost: tokens generated and the scaling settings)."""
    return {"solution_level": solution_level_summary(examples), **({"compute": compute} if compute else {})}


def solution_level_lines(results: dict) -> list[str]:
    """The report's lines for the solution-level F1, labelled apart from the first-error F1."""
    level = results.get("solution_level")
    if not level:
        return []

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f}"

    parts = [
        f"{name} F1 {pct(m['f1'])} (precision {pct(m['precision'])}, recall {pct(m['recall'])}, n={m['n']})"
        for name, m in level["subsets"].items()
    ]
    return [f"Solution-level F1 ({level['definition']}): " + "; ".join(parts) + ".", ""]


def compute_line(results: dict) -> list[str]:
    """The report's line on what scoring cost, for scorers that report it (`ReportsCompute`)."""
    c = results.get("compute")
    if not c:
        return []
    per = c.get("tokens_per_solution")
    line = f"Compute: {c.get('tokens_generated')} tokens generated for {c.get('solutions')} solutions"
    line += f" ({per:.1f} per solution)" if per is not None else ""
    settings = [f"{k}={c[k]}" for k in ("parallel", "rounds", "max_new_tokens", "temperature") if k in c]
    if "forced_verdicts" in c:
        settings.append(f"forced verdicts {c['forced_verdicts']} of {c.get('chains')} chains")
    return [line + (f"; {', '.join(settings)}" if settings else "") + ".", ""]
