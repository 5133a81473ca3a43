"""Scorers as reward functions for RL loops: TRL `GRPOTrainer(reward_funcs=...)`, or any loop that calls
f(prompts, completions).

`reward_function(scorer, ...)` is the one adapter; every kind's `as_reward_func(**options)` returns it. The
call contract is TRL 1.x's: `f(prompts=, completions=, completion_ids=, **kwargs) -> list[float | None]`.

- `prompts`, `completions`: plain strings, or chat messages (TRL's conversational format: a prompt is a
  message list, a completion the list holding the assistant's message). The scorer renders them in its own
  format, so `completion_ids` (the policy's tokens, in the policy's vocabulary) and every other keyword
  (dataset columns, `trainer_state`, `log_metric`, ...) are accepted and not read.
- One value per completion, in order, from one batched call of the scorer. `None` where the scorer could not
  score a completion (its score is NaN: a PRM response whose every step lies beyond max_length); TRL reads
  `None` as "this function does not score that sample".
- `asynchronous=True` gives an `async def` function that scores in a worker thread, so TRL runs it
  concurrently with its other async reward functions. Calls into one scorer hold that scorer's lock, so two
  reward functions of one scorer never enter its model from two threads at once.

The options act on each score r, in this order:

  aggregation a  (step scorers) r = a(p_1, ..., p_k), the step probabilities of the completion cut into
                 steps at the scorer's `response_step_split` (`steps.aggregate` states min, prod, last, mean)
  normalize      r = (r - mean) / std, with the reward statistics the manifest recorded at export
                 (the scorer's `NormalizesScores.normalize`)
  calibrated     r = sigmoid(a * z + b), the fit `rewardmodels calibrate` stored in the manifest, z the score
                 as a logit (`scorers.calibration`); not with normalize, and only where the fit applies: a fit
                 on response scores or pairs without aggregation, a fit on step scores with min or last
  clip (lo, hi)  r = min(max(r, lo), hi); a single number c means (-c, c), None leaves that side open

Options a scorer cannot honour are refused when the function is made, not at the first training step.
A new scorer kind needs: `score` (ScoresTexts), and for the options `normalize` (NormalizesScores),
`score_steps` plus a `response_step_split` attribute (ScoresSteps, SplitsResponses) and a `manifest`
(CarriesManifest, for `calibrated`); its `as_reward_func` is `return reward_function(self, name=...,
**options)`.

`reference_probability_reward_function(scorer, **options)` is RLPR's reward (`scorers/reference_probability.py`):
the scorer's probability of the reference answer in a dataset column after the completion's reasoning, minus
that without the reasoning, clipped at 0.

`rlcr_reward_function(**options)` needs no scorer: the RLCR reward, correctness - (confidence - correctness)^2
on the completion's stated confidence, with the reference answer from a dataset column (`scorers/rlcr.py`).
"""

from __future__ import annotations

import asyncio
import math
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rewardmodels.scorers.calibration import Calibration, check_use, read_calibration
from rewardmodels.scorers.capabilities import (
    CarriesManifest,
    DeclaresScoreScale,
    DeclaresStepScoreScale,
    NormalizesScores,
    ScoresSteps,
    SplitsResponses,
)
from rewardmodels.steps import PROBABILITY_AGGREGATIONS, aggregate, check_aggregation, split_response

# What TRL's GRPOTrainer passes a reward function besides the dataset's columns.
TRAINER_KEYWORDS = frozenset({"trainer_state", "log_extra", "log_metric", "environments"})

Clip = tuple[float | None, float | None]


def parse_clip(clip: float | Sequence[float | None] | None) -> Clip | None:
    """None, a bound c > 0 meaning (-c, c), or a (lo, hi) pair with either side None; lo <= hi."""
    if clip is None:
        return None
    if isinstance(clip, (int, float)):
        if not clip > 0:
            raise ValueError(f"clip: a single bound c means (-c, c) and must be > 0, got {clip}")
        return (-float(clip), float(clip))
    if len(clip) != 2:
        raise ValueError(f"clip: give c or (lo, hi), got {clip!r}")
    lo, hi = (None if v is None else float(v) for v in clip)
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"clip: lo {lo} is above hi {hi}")
    return (lo, hi)


def clip_value(value: float, clip: Clip | None) -> float:
    """min(max(value, lo), hi), an open side (None) not applied; NaN stays NaN."""
    if clip is None or math.isnan(value):
        return value
    lo, hi = clip
    if lo is not None:
        value = max(value, lo)
    if hi is not None:
        value = min(value, hi)
    return value


@dataclass(frozen=True)
class RewardOptions:
    """What a reward function does to the scorer's scores (the module docstring gives the order)."""

    normalize: bool = False
    clip: Clip | None = None
    aggregation: str | None = None
    batch_size: int | None = None  # sequences per forward; None: the scorer's own default
    calibrated: bool = False  # sigmoid(a * z + b) with the manifest's calibration

    def check(self, scorer) -> None:
        """ValueError naming the option a scorer cannot honour."""
        kind = scorer.kind
        if self.normalize and not isinstance(scorer, NormalizesScores):
            raise ValueError(f"normalize: this {kind} scorer has no reward statistics to normalise with")
        if self.calibrated:
            if self.normalize:
                raise ValueError(
                    "calibrated and normalize exclude each other: a calibrated reward is a probability, "
                    "sigmoid(a * z + b); standardising it would undo that"
                )
            check_use(
                scorer_calibration(scorer), self.aggregation, kind, declared_scale(scorer, self.aggregation)
            )
        if self.aggregation is not None:
            check_aggregation(self.aggregation, PROBABILITY_AGGREGATIONS)
            if not (isinstance(scorer, ScoresSteps) and isinstance(scorer, SplitsResponses)):
                raise ValueError(f"aggregation: this {kind} scorer does not score steps")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")


def declared_scale(scorer, aggregation: str | None) -> str | None:
    """What the scorer says the values a reward calibrates are: its `score_scale` (no aggregation) or its
    `step_score_scale` (step scores re-aggregated); None when it does not say."""
    if aggregation is None:
        return scorer.score_scale if isinstance(scorer, DeclaresScoreScale) else None
    return scorer.step_score_scale if isinstance(scorer, DeclaresStepScoreScale) else None


def scorer_calibration(scorer) -> Calibration:
    """The calibration stored in the scorer's manifest; ValueError when there is none (InputError, a
    ValueError, naming the field when it is malformed)."""
    manifest = scorer.manifest if isinstance(scorer, CarriesManifest) else {}
    calibration = read_calibration(manifest, "the scorer's manifest")
    if calibration is None:
        raise ValueError(
            f"calibrated: this {scorer.kind} scorer's manifest has no `calibration`; fit one first with "
            "`rewardmodels calibrate SCORER --dataset D`"
        )
    return calibration


def raw_scores(scorer, prompts: Sequence, completions: Sequence, options: RewardOptions) -> list[float]:
    """The scorer's scores, before normalisation and clipping: `score`, or with an aggregation, the
    aggregated `score_steps` of each completion cut at the scorer's `response_step_split`."""
    batch = {} if options.batch_size is None else {"batch_size": options.batch_size}
    if options.aggregation is None:
        return [float(v) for v in scorer.score(prompts, completions, **batch)]
    steps = [split_response(c, scorer.response_step_split) for c in completions]
    return [aggregate(p, options.aggregation) for p in scorer.score_steps(prompts, steps, **batch)]


def finish_scores(scorer, values: Sequence[float], options: RewardOptions) -> list[float | None]:
    """normalize or calibrate, then clip; a NaN score (unscorable) becomes None."""
    values = list(values)
    if options.normalize:
        values = [float(v) for v in scorer.normalize(values)]
    if options.calibrated:
        values = scorer_calibration(scorer).probabilities(values)
    return [None if math.isnan(v) else clip_value(v, options.clip) for v in values]


def score_completions(
    scorer, prompts: Sequence, completions: Sequence, options: RewardOptions
) -> list[float | None]:
    """One reward per completion, as a reward function returns it."""
    prompts, completions = list(prompts), list(completions)
    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
    if not completions:
        return []
    return finish_scores(scorer, raw_scores(scorer, prompts, completions, options), options)


# One lock per scorer object: every reward function of that scorer takes it around its model calls.
_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def scorer_lock(scorer) -> threading.Lock:
    with _LOCKS_GUARD:
        lock = _LOCKS.get(scorer)
        if lock is None:
            lock = _LOCKS[scorer] = threading.Lock()
        return lock


def make_reward_func(
    score: Callable[..., list[float]], name: str, asynchronous: bool = False, pass_columns: bool = False
) -> Callable:
    """A plain `score(prompts, completions)` callable behind TRL's signature: lengths checked, NaN -> None,
    keywords accepted and ignored, or, with `pass_columns`, handed on as `score(prompts, completions,
    keywords)` (TRL passes the dataset's columns that way); `asynchronous` runs it in a worker thread."""

    def call(prompts, completions, columns: dict) -> list[float | None]:
        prompts, completions = list(prompts), list(completions)
        if len(prompts) != len(completions):
            raise ValueError(f"{name}: {len(prompts)} prompts but {len(completions)} completions")
        extra = (columns,) if pass_columns else ()
        values = [float(v) for v in score(prompts, completions, *extra)] if completions else []
        if len(values) != len(completions):
            raise ValueError(f"{name}: {len(values)} scores for {len(completions)} completions")
        return [None if math.isnan(v) else v for v in values]

    if asynchronous:

        async def reward_func(prompts, completions, completion_ids=None, **kwargs) -> list[float | None]:
            return await asyncio.to_thread(call, prompts, completions, kwargs)

    else:

        def reward_func(prompts, completions, completion_ids=None, **kwargs) -> list[float | None]:
            return call(prompts, completions, kwargs)

    reward_func.__name__ = reward_func.__qualname__ = name
    return reward_func


def reward_function(
    scorer,
    *,
    name: str | None = None,
    normalize: bool = False,
    clip: float | Sequence[float | None] | None = None,
    aggregation: str | None = None,
    batch_size: int | None = None,
    asynchronous: bool = False,
    calibrated: bool = False,
) -> Callable:
    """`scorer` as a TRL reward function (the module docstring states the contract and the options)."""
    options = RewardOptions(normalize, parse_clip(clip), aggregation, batch_size, calibrated)
    options.check(scorer)
    lock = scorer_lock(scorer)

    def score(prompts: list, completions: list) -> list[float]:
        with lock:
            values = score_completions(scorer, prompts, completions, options)
        return [math.nan if v is None else v for v in values]

    return make_reward_func(score, name or f"{scorer.kind}_reward", asynchronous)


def rlcr_reward_function(**options) -> Callable:
    """The RLCR reward as a TRL reward function (`scorers.rlcr.rlcr_reward_func`: answer_column, tag,
    answer_tag, missing_penalty, name)."""
    from rewardmodels.scorers.rlcr import rlcr_reward_func

    return rlcr_reward_func(**options)


def reference_probability_reward_function(scorer, **options) -> Callable:
    """RLPR's reward as a TRL reward function: a `reference_probability` scorer's
    `score_with_references`, with the references from a dataset column
    (`scorers.reference_probability.reference_probability_reward_func`: reference_column, batch_size,
    asynchronous, name)."""
    from rewardmodels.scorers.reference_probability import reference_probability_reward_func

    return reference_probability_reward_func(scorer, **options)


__all__ = [
    "RewardOptions",
    "clip_value",
    "finish_scores",
    "make_reward_func",
    "parse_clip",
    "raw_scores",
    "reference_probability_reward_function",
    "reward_function",
    "rlcr_reward_function",
    "score_completions",
    "scorer_calibration",
    "scorer_lock",
]
