"""The results of `rewardmodels calibrate` from its points: the fit, the held-out metrics before and after,
and the manifest entry. Pure functions; the points are (z, y) as `eval/calibrate_data.points` makes them.

  before   p = sigmoid(z): the scorer as it is (a = 1, b = 0); for a probability scorer, its own probability
  after    p = sigmoid(a * z + b), the fit
  metrics  ECE (EVAL_BINS = 15 equal-width bins), Brier, AUROC and the reliability curve
           (`calibration_metrics`), and the log-loss (`calibration_fit.log_loss`)

Pairs: the fit takes (d, 1) per pair with b = 0 (`eval/calibrate.py` says why); the metrics count both
orders, (d, 1) and (-d, 0), as the evaluators do (`eval.calibration.pair_points`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rewardmodels.eval.calibration import EVAL_BINS, pair_points, sigmoid
from rewardmodels.eval.calibration_fit import fit_temperature, log_loss, separation
from rewardmodels.eval.calibration_metrics import calibration_metrics


def metrics_entry(
    fmt: str, logits: Sequence[float], labels: Sequence[int], scale: float, bias: float
) -> dict:
    """ECE, Brier, AUROC, reliability (`calibration_metrics`, EVAL_BINS bins) and log-loss of
    p = sigmoid(scale * z + bias); pairs count both orders (`eval.calibration.pair_points`)."""
    if fmt == "pairs":  # (d, 1) -> sigmoid(a d) with y = 1 and sigmoid(-a d) with y = 0
        probs, ys = [], []
        for d in logits:
            p, y, _ = pair_points(scale * d, 0.0)
            probs += p
            ys += y
        z2, y2 = [v for d in logits for v in (d, -d)], [v for _ in logits for v in (1, 0)]
        loss = log_loss(z2, y2, scale, bias)
    else:
        probs = [sigmoid(scale * z + bias) for z in logits]
        ys, loss = list(labels), log_loss(logits, labels, scale, bias)
    return {**calibration_metrics(probs, ys, EVAL_BINS), "log_loss": None if math.isnan(loss) else loss}


def fit_and_evaluate(fmt: str, fit_points: tuple, held_points: tuple) -> dict:
    """{"fit": a, b, fit-part log-loss; "heldout": {"before", "after"}}: fit on `fit_points` (z, y), metrics
    on `held_points`. Pairs fit a alone (b = 0). ValueError when the fit part has no finite minimum."""
    fit_bias = fmt != "pairs"
    (z_fit, y_fit), (z_held, y_held) = fit_points, held_points
    why = separation(z_fit, y_fit, fit_bias)
    if why is not None:
        raise ValueError(
            f"the fit part cannot be fitted: {why}; the log-loss falls forever as the scale grows"
        )
    fit = fit_temperature(z_fit, y_fit, fit_bias)
    return {
        "fit": {
            "scale": fit.scale,
            "bias": fit.bias,
            "fit_bias": fit_bias,
            "newton_iterations": fit.iterations,
            "log_loss_before": log_loss(z_fit, y_fit),
            "log_loss_after": fit.log_loss,
        },
        "heldout": {
            "before": metrics_entry(fmt, z_held, y_held, 1.0, 0.0),
            "after": metrics_entry(fmt, z_held, y_held, fit.scale, fit.bias),
        },
    }


def manifest_entry(results: dict) -> dict:
    """The manifest's `calibration`: what `scorers.calibration.read_calibration` reads, and its provenance."""
    fit, before, after = results["fit"], results["heldout"]["before"], results["heldout"]["after"]
    return {
        "method": "temperature scaling: p = sigmoid(scale * z + bias)",
        "scale": fit["scale"],
        "bias": fit["bias"],
        "score": results["score_scale"],
        "target": results["target"],
        "source": results["source"],
        "fitted_on": results["fitted_on"],
        "n_bins": EVAL_BINS,
        **{f"{name}_before": before[name] for name in ("ece", "brier", "log_loss")},
        **{f"{name}_after": after[name] for name in ("ece", "brier", "log_loss")},
    }


__all__ = ["fit_and_evaluate", "manifest_entry", "metrics_entry"]
