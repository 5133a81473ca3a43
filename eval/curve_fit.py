"""ScaleRL's saturating compute curve, fitted by least squares (Levenberg-Marquardt in numpy).

    R(C) = R0 + (A - R0) / (1 + (C_mid / C)^B)

R0 is the value as C -> 0, A the ceiling as C -> infinity, C_mid the compute at which half the gain from R0
to A is reached, and B > 0 how sharply it rises around C_mid (on a log-C axis the curve is a logistic in
log C with slope B). The fit runs in (A, log C_mid, B[, R0]) so that C_mid, spanning orders of magnitude,
is as well conditioned as the rest; R0 is fitted too unless it is given (fixed to a measurement).

Uncertainty: the covariance of the estimate from the Jacobian at the optimum, s^2 (J^T J)^-1 with
s^2 = RSS / (n - p) (n points, p fitted parameters). C_mid's standard error comes from log C_mid's by the
delta method, err(C_mid) = C_mid x err(log C_mid); `c_mid_interval` is exp(log C_mid +- err) as well. With
n <= p there is no residual degree of freedom and every error is NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

MAX_ITERATIONS = 500
EXPONENT_LIMIT = 700.0  # exp() of more overflows a float64


def saturating_curve(compute, r0: float, a: float, c_mid: float, b: float):
    """R(C) = R0 + (A - R0) / (1 + (C_mid / C)^B), for C > 0 (scalar or array)."""
    c = np.asarray(compute, dtype=float)
    u = np.exp(np.clip(b * (math.log(c_mid) - np.log(c)), -EXPONENT_LIMIT, EXPONENT_LIMIT))
    return r0 + (a - r0) / (1.0 + u)


@dataclass
class CurveFit:
    a: float
    c_mid: float
    b: float
    r0: float
    a_err: float
    c_mid_err: float
    b_err: float
    r0_err: float | None  # None when R0 was given rather than fitted
    log_c_mid_err: float
    rss: float
    points: int
    dof: int
    converged: bool

    @property
    def c_mid_interval(self) -> tuple[float, float]:
        """exp(log C_mid -+ err(log C_mid)): the one-sigma interval, asymmetric in C."""
        spread = math.exp(min(self.log_c_mid_err, EXPONENT_LIMIT))  # NaN stays NaN
        return self.c_mid / spread, self.c_mid * spread

    def to_dict(self) -> dict:
        """The fit as JSON values: NaN and infinite errors (no degree of freedom, a flat direction) as None."""
        values = {**asdict(self), "c_mid_interval": list(self.c_mid_interval)}
        return {k: _finite(v) for k, v in values.items()}


def _finite(value):
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _model(x: np.ndarray, theta: np.ndarray, r0: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Values and Jacobian (points x parameters) in theta = (A, m = log C_mid, B[, R0]), at x = log C.

    With u = exp(B (m - x)) and g = 1 / (1 + u): f = R0 + (A - R0) g, and
    df/dA = g, df/dm = -(A - R0) g^2 u B, df/dB = -(A - R0) g^2 u (m - x), df/dR0 = 1 - g."""
    a, m, b = theta[:3]
    base = theta[3] if r0 is None else r0
    u = np.exp(np.clip(b * (m - x), -EXPONENT_LIMIT, EXPONENT_LIMIT))
    g = 1.0 / (1.0 + u)
    f = base + (a - base) * g
    shared = -(a - base) * g * g * u
    columns = [g, shared * b, shared * (m - x)] + ([1.0 - g] if r0 is None else [])
    return f, np.stack(columns, axis=1)


def _levenberg_marquardt(x, y, theta, r0) -> tuple[np.ndarray, float, bool]:
    lam = 1e-3
    f, jac = _model(x, theta, r0)
    rss = float(np.sum((y - f) ** 2))
    for _ in range(MAX_ITERATIONS):
        residual = y - f
        jtj = jac.T @ jac
        step = np.linalg.lstsq(jtj + lam * np.diag(np.diag(jtj) + 1e-12), jac.T @ residual, rcond=None)[0]
        trial = theta + step
        f_new, jac_new = _model(x, trial, r0)
        rss_new = float(np.sum((y - f_new) ** 2))
        if np.isfinite(rss_new) and rss_new <= rss:
            small = np.all(np.abs(step) <= 1e-12 * (np.abs(theta) + 1e-12)) or rss - rss_new <= 1e-15 * max(
                rss, 1e-30
            )
            theta, f, jac, rss = trial, f_new, jac_new, rss_new
            lam = max(lam / 10.0, 1e-12)
            if small:
                return theta, rss, True
        else:
            lam *= 10.0
            if lam > 1e12:
                return theta, rss, True  # no step improves: at a minimum to float precision
    return theta, rss, False


def fit_curve(compute: Sequence[float], values: Sequence[float], r0: float | None = None) -> CurveFit:
    """Least-squares fit of `saturating_curve` to (compute, value) points (compute > 0), from several
    starting points (C_mid at quantiles of log C, B in 0.5..4), keeping the lowest RSS. `r0`: fix R0 to it."""
    x = np.log(np.asarray(compute, dtype=float))
    y = np.asarray(values, dtype=float)
    p = 3 if r0 is not None else 4
    if len(x) != len(y) or len(x) < p:
        raise ValueError(f"fitting {p} parameters needs at least {p} points with compute > 0, got {len(x)}")
    if not np.all(np.isfinite(x)) or not np.all(np.isfinite(y)):
        raise ValueError("compute must be > 0 and every value finite")
    best = None
    for q in (0.1, 0.3, 0.5, 0.7, 0.9):
        for b0 in (0.5, 1.0, 2.0, 4.0):
            start = [float(y.max()), float(np.quantile(x, q)), b0] + ([float(y.min())] if r0 is None else [])
            theta, rss, converged = _levenberg_marquardt(x, y, np.array(start), r0)
            if best is None or rss < best[1]:
                best = (theta, rss, converged)
    theta, rss, converged = best
    _, jac = _model(x, theta, r0)
    dof = len(x) - p
    if dof > 0:
        covariance = (rss / dof) * np.linalg.pinv(jac.T @ jac)
        errors = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    else:
        errors = np.full(p, math.nan)
    c_mid = math.exp(theta[1])
    return CurveFit(
        a=float(theta[0]),
        c_mid=c_mid,
        b=float(theta[2]),
        r0=float(theta[3]) if r0 is None else float(r0),
        a_err=float(errors[0]),
        c_mid_err=float(c_mid * errors[1]),
        b_err=float(errors[2]),
        r0_err=float(errors[3]) if r0 is None else None,
        log_c_mid_err=float(errors[1]),
        rss=rss,
        points=len(x),
        dof=dof,
        converged=converged,
    )


__all__ = ["CurveFit", "fit_curve", "saturating_curve"]
