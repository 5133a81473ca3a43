"""A scorer's stored calibration (temperature scaling, issue 26): reading it from the manifest and applying it.

`rewardmodels calibrate` (eval/calibrate.py) fits p = sigmoid(a * z + b) by log-loss and stores the fit in the
scorer's manifest under `calibration`. This module is the side that reads and applies it: reward functions
(`as_reward_func(calibrated=True)`), `rewardmodels score --calibrated` and `rewardmodels serve --calibrated`
sit at or below the scorer layer, so it cannot live in eval. Pure functions.

  s   the raw value a scorer returns (`score`, or one step of `score_steps`)
  z   s as a logit, by the fit's `score` field: "logit" z = s (a BT head's reward, a DPO or implicit-PRM
      log-ratio); "probability" z = log(s / (1 - s)) with s clamped to [EPS, 1 - EPS], so that a probability
      of exactly 0 or 1 stays finite (a PRM head's sigmoid, a verifier's P(yes), an implicit PRM's sigmoid(q))
  p   sigmoid(a * z + b), a = `scale`, b = `bias`; a NaN score stays NaN (unscored)

The fit's `target` says what the labels were, and so what p is the probability of:

  response  labelled responses (prompt, completion, label 0/1): p = P(the response is correct)
  step      labelled steps (stepwise rows, ProcessBench rows): p = P(the step is correct)
  pair      preference pairs: sigmoid(a * (z_chosen - z_rejected)) = P(chosen preferred), b = 0. A bias is not
            identifiable from pairs (adding c to every score leaves every difference as it is), so it stays 0,
            and the per-response reward sigmoid(a * z) is the pair-calibrated logit read against 0: its
            differences are calibrated, its level is not a probability of anything on its own.

Where a fit applies (`check_use`): a fit on `score` (targets response and pair) applies to the scorer's
response score: a reward function without `aggregation`, `score --calibrated`, the server's /score and
/get_reward. A fit on `score_steps` (target step) applies to step scores (the server's /score_steps) and to a
reward that re-aggregates step scores with `min` or `last`: when a > 0 the map s -> p is increasing, so the
calibrated min (last) step equals the min (last) of the calibrated steps. For `prod` and `mean` it does not,
and they are refused, as is a step fit on the response score (an implicit PRM's response score is a logit,
its step scores probabilities: not one quantity).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rewardmodels.errors import InputError

CALIBRATION_KEY = "calibration"  # the manifest field
EPS = 1e-7  # probability clamp before the logit: |z| <= log((1 - EPS) / EPS) ~ 16.1
SCORE_SCALES = ("logit", "probability")
SOURCES = ("score", "score_steps")
TARGETS = ("response", "step", "pair")
TARGET_SOURCE = {"response": "score", "pair": "score", "step": "score_steps"}
# Aggregations of step scores that commute with an increasing map (module docstring).
COMMUTING_AGGREGATIONS = ("min", "last")


def sigmoid(x: float) -> float:
    """1 / (1 + exp(-x)), without overflow for large |x|."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def as_logit(value: float, score_scale: str) -> float:
    """z of a raw score s: s for "logit", log(s / (1 - s)) with s clamped to [EPS, 1 - EPS] for "probability"."""
    if score_scale == "logit" or math.isnan(value):
        return float(value)
    if score_scale != "probability":
        raise ValueError(f"score scale must be one of {SCORE_SCALES}, got {score_scale!r}")
    s = min(max(float(value), EPS), 1.0 - EPS)
    return math.log(s) - math.log1p(-s)


@dataclass(frozen=True)
class Calibration:
    """A fitted p = sigmoid(scale * z + bias) and what it applies to (module docstring)."""

    scale: float
    bias: float
    score: str  # "logit" or "probability": how z is read off the raw score
    target: str  # "response", "step" or "pair"

    @property
    def source(self) -> str:
        """The scorer call whose values the fit was made on: "score" or "score_steps"."""
        return TARGET_SOURCE[self.target]

    def probability(self, value: float) -> float:
        """sigmoid(scale * z + bias) of one raw score; NaN stays NaN."""
        if math.isnan(value):
            return math.nan
        return sigmoid(self.scale * as_logit(value, self.score) + self.bias)

    def probabilities(self, values: Sequence[float]) -> list[float]:
        return [self.probability(float(v)) for v in values]


def read_calibration(manifest: Mapping, where: str | None = None) -> Calibration | None:
    """The manifest's `calibration` as a `Calibration`, None when it has none. A malformed entry raises
    InputError naming `where` (the manifest file) and the field."""
    entry = manifest.get(CALIBRATION_KEY)
    if entry is None:
        return None

    def bad(field: str, reason: str) -> InputError:
        hint = "Re-run `rewardmodels calibrate`, or delete the field."
        return InputError(where, None, f"{CALIBRATION_KEY}.{field}", reason, hint=hint)

    if not isinstance(entry, Mapping):
        raise InputError(where, None, CALIBRATION_KEY, f"expected an object, got {type(entry).__name__}")
    numbers = {}
    for name in ("scale", "bias"):
        value = entry.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise bad(name, f"expected a finite number, got {value!r}")
        numbers[name] = float(value)
    for name, allowed in (("score", SCORE_SCALES), ("target", TARGETS)):
        if entry.get(name) not in allowed:
            raise bad(name, f"expected one of {allowed}, got {entry.get(name)!r}")
    return Calibration(numbers["scale"], numbers["bias"], entry["score"], entry["target"])


def check_use(
    calibration: Calibration, aggregation: str | None, kind: str = "this", declared_scale: str | None = None
) -> None:
    """ValueError when `calibration` does not apply to the reward asked for: the scorer's response score
    (`aggregation` None) or its step scores re-aggregated with `aggregation` (module docstring); or when the
    scorer declares those scores on another scale than the fit read them on (`declared_scale`: loaded with
    other options than at fitting, e.g. an implicit PRM's step_scores)."""
    if declared_scale is not None and declared_scale != calibration.score:
        raise ValueError(
            f"calibrated: the fit read the {kind} scorer's scores as {calibration.score}s, but as loaded they "
            f"are {declared_scale}s; load it with the options it was fitted with (the manifest's "
            "calibration.fitted_on.scorer_options)"
        )
    if aggregation is None:
        if calibration.source != "score":
            raise ValueError(
                f"calibrated: the {kind} scorer's calibration was fitted on step scores, which its response "
                "score is not; reward with aggregation='min' or 'last' (the calibrated worst or last step), "
                "or fit on labelled responses or pairs"
            )
        return
    if calibration.source != "score_steps":
        raise ValueError(
            f"calibrated: the {kind} scorer's calibration was fitted on its response score (target "
            f"{calibration.target}), not on the step scores that aggregation={aggregation!r} re-aggregates; "
            "drop the aggregation, or fit on labelled steps"
        )
    if aggregation not in COMMUTING_AGGREGATIONS or not calibration.scale > 0:
        raise ValueError(
            f"calibrated: a step calibration applies to aggregated step scores only through "
            f"{' or '.join(COMMUTING_AGGREGATIONS)} with a positive scale (then calibrating the aggregate "
            f"equals aggregating the calibrated steps); got aggregation={aggregation!r}, scale "
            f"{calibration.scale:.4g}"
        )


__all__ = [
    "CALIBRATION_KEY",
    "COMMUTING_AGGREGATIONS",
    "Calibration",
    "EPS",
    "SCORE_SCALES",
    "TARGETS",
    "as_logit",
    "check_use",
    "read_calibration",
    "sigmoid",
]
