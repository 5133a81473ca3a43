"""Calibration metrics of probabilities against binary labels: pure functions over arrays, no I/O.

With p_i in [0, 1] the stated probability that y_i = 1, and y_i in {0, 1}, over n points:

  bins         B equal-width bins on [0, 1]; point i goes to bin b(p) = min(floor(p * B), B - 1), computed in
               float64. So bin k holds [k/B, (k+1)/B) for k < B - 1, and the last bin is closed, [(B-1)/B, 1]:
               p = 1.0 falls in bin B - 1, not in a bin of its own.
  reliability  per bin k with n_k > 0 points: conf_k = mean of p_i, acc_k = mean of y_i, over i in bin k
  ECE          sum over non-empty bins of (n_k / n) * |acc_k - conf_k|        (Naeini et al. 2015, Guo 2017)
  Brier        (1/n) * sum_i (p_i - y_i)^2
  AUROC        P(p_+ > p_-) + 0.5 * P(p_+ = p_-) for a random positive and a random negative, computed as
               Mann-Whitney: (R_+ - n_+ (n_+ + 1) / 2) / (n_+ n_-), with R_+ the sum of the positives' ranks
               among all p (1-based, tied values sharing their average rank). With only one class present
               (n_+ = 0 or n_- = 0) it is undefined and returned as NaN.

Every function refuses a probability outside [0, 1] or NaN and a label other than 0/1; callers decide what an
unscored point is (the evaluators drop and count it, `eval/calibration.py`). An empty input gives NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def _checked(probs: Sequence[float], labels: Sequence[int | bool]) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probs, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    if p.shape != y.shape:
        raise ValueError(f"{p.size} probabilities but {y.size} labels")
    # NaN fails both comparisons, so it is refused here too.
    if not np.all((p >= 0.0) & (p <= 1.0)):
        raise ValueError("probabilities must lie in [0, 1] (and not be NaN)")
    if not np.all((y == 0.0) | (y == 1.0)):
        raise ValueError("labels must be 0 or 1")
    return p, y


def bin_index(probs: Sequence[float], n_bins: int) -> np.ndarray:
    """b(p) = min(floor(p * B), B - 1) per probability (module docstring): p = 1.0 joins the last bin."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    p = np.asarray(probs, dtype=np.float64)
    return np.minimum(np.floor(p * n_bins).astype(np.int64), n_bins - 1)


def reliability_curve(probs: Sequence[float], labels: Sequence[int | bool], n_bins: int = 10) -> dict:
    """Per equal-width bin k (lower = k/B, upper = (k+1)/B): `count` n_k, `confidence` conf_k (mean p) and
    `accuracy` acc_k (mean y); conf_k and acc_k are None for an empty bin. Lists of length B."""
    p, y = _checked(probs, labels)
    idx = bin_index(p, n_bins)
    counts = np.bincount(idx, minlength=n_bins)
    conf_sum = np.bincount(idx, weights=p, minlength=n_bins)
    acc_sum = np.bincount(idx, weights=y, minlength=n_bins)
    confidence = [float(conf_sum[k] / counts[k]) if counts[k] else None for k in range(n_bins)]
    accuracy = [float(acc_sum[k] / counts[k]) if counts[k] else None for k in range(n_bins)]
    return {
        "lower": [k / n_bins for k in range(n_bins)],
        "upper": [(k + 1) / n_bins for k in range(n_bins)],
        "count": [int(c) for c in counts],
        "confidence": confidence,
        "accuracy": accuracy,
    }


def expected_calibration_error(
    probs: Sequence[float], labels: Sequence[int | bool], n_bins: int = 10
) -> float:
    """ECE = sum_k (n_k / n) |acc_k - conf_k| over non-empty equal-width bins; bin k = [k/B, (k+1)/B) for
    k < B - 1 and the last bin [(B-1)/B, 1] closed, so p = 1.0 counts in bin B - 1. NaN for no points."""
    curve = reliability_curve(probs, labels, n_bins)
    n = sum(curve["count"])
    if n == 0:
        return math.nan
    return float(
        sum(
            (c / n) * abs(a - f)
            for c, a, f in zip(curve["count"], curve["accuracy"], curve["confidence"], strict=True)
            if c
        )
    )


def brier_score(probs: Sequence[float], labels: Sequence[int | bool]) -> float:
    """Brier = (1/n) sum_i (p_i - y_i)^2; NaN for no points."""
    p, y = _checked(probs, labels)
    return float(np.mean((p - y) ** 2)) if p.size else math.nan


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """1-based ranks of `values` in ascending order, each run of equal values given its average rank."""
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(v, kind="mergesort")
    ranks = np.empty(v.size, dtype=np.float64)
    sorted_v = v[order]
    start = 0
    while start < v.size:
        end = start
        while end + 1 < v.size and sorted_v[end + 1] == sorted_v[start]:
            end += 1
        # positions start..end (0-based) share the mean of the ranks start+1 .. end+1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def auroc(probs: Sequence[float], labels: Sequence[int | bool]) -> float:
    """AUROC = (R_+ - n_+ (n_+ + 1) / 2) / (n_+ n_-) (Mann-Whitney, ties at their average rank), i.e.
    P(p_+ > p_-) + 0.5 P(p_+ = p_-). NaN when only one class is present: there is no pair to rank."""
    p, y = _checked(probs, labels)
    n_pos = int(y.sum())
    n_neg = int(y.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return math.nan
    r_pos = float(average_ranks(p)[y == 1.0].sum())
    return (r_pos - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def calibration_metrics(probs: Sequence[float], labels: Sequence[int | bool], n_bins: int = 10) -> dict:
    """n, positives, ECE, Brier, AUROC and the reliability curve of one set of points, JSON-ready: an
    undefined figure (NaN: no points, or AUROC with one class) is None."""

    def clean(x: float) -> float | None:
        return None if math.isnan(x) else x

    p, y = _checked(probs, labels)
    return {
        "n": int(p.size),
        "positives": int(y.sum()),
        "n_bins": n_bins,
        "ece": clean(expected_calibration_error(p, y, n_bins)),
        "brier": clean(brier_score(p, y)),
        "auroc": clean(auroc(p, y)),
        "reliability": reliability_curve(p, y, n_bins),
    }


__all__ = [
    "auroc",
    "average_ranks",
    "bin_index",
    "brier_score",
    "calibration_metrics",
    "expected_calibration_error",
    "reliability_curve",
]
