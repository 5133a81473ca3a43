"""Temperature scaling with a scale and a bias, fitted by log-loss: pure functions over arrays, no I/O.

With logits z_i (a scorer's raw score as a logit, `scorers.calibration.as_logit`) and labels y_i in {0, 1}:

  t_i       a * z_i + b
  p_i       sigmoid(t_i)
  log-loss  L(a, b) = (1/n) sum_i [softplus(t_i) - y_i * t_i],  softplus(t) = log(1 + e^t)
            (= -(1/n) sum_i [y_i log p_i + (1 - y_i) log(1 - p_i)], computed from t so p = 0 or 1 stays finite)
  gradient  dL/da = (1/n) sum_i (p_i - y_i) z_i,   dL/db = (1/n) sum_i (p_i - y_i)
  Hessian   (1/n) sum_i w_i [[z_i^2, z_i], [z_i, 1]],  w_i = p_i (1 - p_i)

L is convex, so Newton's method from (a, b) = (1, 0) (the scorer as it is) finds the minimum; each step is
halved until L does not increase, and the fit stops when the Newton step is below float precision
(STEP_TOL) or no step lowers L; a gradient still above GRAD_TOL then is an error. Deterministic: float64,
no randomness. `fit_bias=False` fixes b = 0 and fits a alone (pairs: `scorers.calibration` says why).

The minimum is finite only when the labels are not separated by z: if every z of label 1 lies at or above
every z of label 0 (or at or below), L keeps falling as |a| grows (the fit would say "infinitely sure"), and
with one label only, as |b| grows. `separation` finds this before fitting, and `fit_temperature` refuses it.

Worked case (tests/test_calibration_fit.py): z in {-1, +1}, P(y=1 | z=1) = 3/4, P(y=1 | z=-1) = 1/4. With two
distinct z the fit reproduces both frequencies: sigmoid(a + b) = 3/4 and sigmoid(-a + b) = 1/4, so
a + b = log 3 and -a + b = -log 3: a = log 3, b = 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

STEP_TOL = 1e-13  # a Newton step below STEP_TOL * (1 + max |parameter|) ends the fit
GRAD_TOL = 1e-8  # the gradient at the end must be below this, or the fit failed
MAX_ITERATIONS = 100


@dataclass(frozen=True)
class TemperatureFit:
    scale: float
    bias: float
    log_loss: float  # L at the fit
    iterations: int  # Newton steps taken


def _arrays(logits: Sequence[float], labels: Sequence[int | bool]) -> tuple[np.ndarray, np.ndarray]:
    z = np.asarray(logits, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    if z.shape != y.shape:
        raise ValueError(f"{z.size} logits but {y.size} labels")
    if not np.all(np.isfinite(z)):
        raise ValueError("logits must be finite (drop unscored points first)")
    if not np.all((y == 0.0) | (y == 1.0)):
        raise ValueError("labels must be 0 or 1")
    return z, y


def log_loss(
    logits: Sequence[float], labels: Sequence[int | bool], scale: float = 1.0, bias: float = 0.0
) -> float:
    """L(a, b) = (1/n) sum_i [softplus(a z_i + b) - y_i (a z_i + b)]; NaN for no points."""
    z, y = _arrays(logits, labels)
    if not z.size:
        return math.nan
    t = scale * z + bias
    return float(np.mean(np.logaddexp(0.0, t) - y * t))


def separation(logits: Sequence[float], labels: Sequence[int | bool], fit_bias: bool = True) -> str | None:
    """Why the log-loss has no finite minimum, or None when it has one (module docstring). With `fit_bias`,
    one label only, or the labels split by z (ties included); without, every nonzero z*(2y-1) of one sign."""
    z, y = _arrays(logits, labels)
    if not z.size:
        return "there are no points"
    if fit_bias:
        pos, neg = z[y == 1.0], z[y == 0.0]
        if not pos.size or not neg.size:
            return f"every label is {int(y[0])}"
        if neg.max() <= pos.min() or pos.max() <= neg.min():
            return "the scores separate the labels completely (every label-1 score lies on one side of every label-0 score)"
        return None
    signed = z * (2.0 * y - 1.0)  # > 0: the point is on the side of its label
    if np.all(signed >= 0.0) or np.all(signed <= 0.0):
        return "every pair is ranked the same way (or tied): the scores separate the labels completely"
    return None


def fit_temperature(
    logits: Sequence[float], labels: Sequence[int | bool], fit_bias: bool = True
) -> TemperatureFit:
    """The (a, b) minimising L (module docstring) by damped Newton from (1, 0); ValueError when the minimum
    is not finite (`separation`) or Newton has not converged in MAX_ITERATIONS steps."""
    z, y = _arrays(logits, labels)
    why = separation(z, y, fit_bias)
    if why is not None:
        raise ValueError(f"the log-loss has no finite minimum: {why}")
    features = np.stack([z, np.ones_like(z)], axis=1) if fit_bias else z[:, None]
    theta = np.array([1.0, 0.0] if fit_bias else [1.0])

    def loss(params: np.ndarray) -> float:
        t = features @ params
        return float(np.mean(np.logaddexp(0.0, t) - y * t))

    def gradient(params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = 0.5 * (1.0 + np.tanh(0.5 * (features @ params)))  # sigmoid, without overflow
        return features.T @ (p - y) / z.size, p

    current, iterations = loss(theta), 0
    grad, p = gradient(theta)
    while iterations < MAX_ITERATIONS:
        hessian = (features * (p * (1.0 - p))[:, None]).T @ features / z.size
        step = np.linalg.solve(hessian, grad)
        if np.max(np.abs(step)) <= STEP_TOL * (1.0 + np.max(np.abs(theta))):
            break  # Newton converges quadratically: a step this small means the minimum to float precision
        shrink = 1.0  # damping: the step is halved until L does not rise
        while shrink > 1e-12 and loss(theta - shrink * step) > current:
            shrink /= 2.0
        if shrink <= 1e-12:
            break  # no step lowers L: at the minimum to float precision
        theta = theta - shrink * step
        current, iterations = loss(theta), iterations + 1
        grad, p = gradient(theta)
    if np.max(np.abs(grad)) >= GRAD_TOL:  # stopped away from the minimum
        raise ValueError(f"the temperature fit did not converge (gradient {np.max(np.abs(grad)):.3g})")
    return TemperatureFit(float(theta[0]), float(theta[1]) if fit_bias else 0.0, current, iterations)


__all__ = [
    "GRAD_TOL",
    "MAX_ITERATIONS",
    "STEP_TOL",
    "TemperatureFit",
    "fit_temperature",
    "log_loss",
    "separation",
]
