"""The step vocabulary, one for every step scorer: a response split into steps, per-step scores, and the names
and functions that turn a response's step scores into one score.

Shared by PRM training and scoring, the implicit PRM, the generative verifier, reward functions, the server
and best-of-N. This module is neutral ground: trainers and scorers both import it, so no trainer imports a
scorer.

Splitting (`step_spans`, the one rule): a step is the non-blank text between two occurrences of the split
string. `split_response` gives the steps' texts, stripped; `split_points` where each step ends, as character
offsets (after the split that ends it, the last at the end of the text).

Aggregation names (`AGGREGATIONS`, one registry): each kind of step score supports its own subset.
  step probabilities p_1..p_k (PRM, generative verifier, reward functions, server, best-of-N):
      `PROBABILITY_AGGREGATIONS`, by `aggregate`
  step rewards r_1..r_K with the outcome reward q_T (implicit PRM): `REWARD_AGGREGATIONS`, by
      `aggregate_rewards`
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch

AGGREGATIONS = {
    "min": "the worst step: min_k p_k, or min_k r_k for step rewards",
    "prod": "prod_k p_k",
    "last": "the last step: p_k, or for step rewards the outcome reward q_T (every response token)",
    "mean": "(1/k) sum_k p_k",
    "min_q": "the lowest step value min_k q_k, q_k = r_1 + ... + r_k",
    "sum": "sum_k r_k, q at the end of the last step",
}
PROBABILITY_AGGREGATIONS = ("min", "prod", "last", "mean")
REWARD_AGGREGATIONS = ("min", "min_q", "last", "sum")


def check_aggregation(how: str, supported: Sequence[str]) -> None:
    """Refuse an aggregation name that is not in `supported` (a subset of `AGGREGATIONS`)."""
    if how not in supported:
        raise ValueError(f"aggregation must be one of {tuple(supported)}, got {how!r}")


def step_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """P(step correct) from head logits, always float32.

    (n, 2) logits z -> softmax(z)[:, 1] = 1 / (1 + exp(z_0 - z_1)) (index 1 = correct, as in
    Qwen2.5-Math-PRM); (n, 1) or (n,) logits z -> sigmoid(z) = 1 / (1 + exp(-z)).
    """
    logits = logits.float()
    if logits.dim() == 2 and logits.shape[-1] == 2:
        return logits.softmax(-1)[:, 1]
    if logits.dim() == 2 and logits.shape[-1] == 1:
        logits = logits.squeeze(-1)
    if logits.dim() != 1:
        raise ValueError(f"expected (n, 1) or (n, 2) step logits, got shape {tuple(logits.shape)}")
    return torch.sigmoid(logits)


def aggregate(probs: Sequence[float], how: str) -> float:
    """One score from step probabilities p_1..p_k (`PROBABILITY_AGGREGATIONS`), NaN entries (steps that could
    not be scored) left out: min = min_i p_i, prod = prod_i p_i, last = p_k, mean = (1/k) sum_i p_i. No
    scored step gives NaN."""
    check_aggregation(how, PROBABILITY_AGGREGATIONS)
    values = [p for p in probs if not math.isnan(p)]
    if not values:
        return float("nan")
    if how == "min":
        return min(values)
    if how == "prod":
        return math.prod(values)
    if how == "last":
        return values[-1]
    return sum(values) / len(values)


def aggregate_steps(rewards: Sequence[float], outcome: float, how: str) -> float:
    """One score from step rewards r_1..r_K (`REWARD_AGGREGATIONS`; NaN entries, steps that could not be
    scored, left out: they add nothing to q) and the outcome reward q_T: `last` -> q_T, `min` -> min_k r_k,
    `min_q` -> min_k q_k with q_k = r_1 + ... + r_k, `sum` -> sum_k r_k; NaN when no step is scored (all but
    last)."""
    check_aggregation(how, REWARD_AGGREGATIONS)
    if how == "last":
        return float(outcome)
    values = [float(r) for r in rewards if not math.isnan(r)]
    if not values:
        return float("nan")
    if how == "min_q":
        return min(itertools.accumulate(values))
    return min(values) if how == "min" else math.fsum(values)


def harmonic_mean(a: float | None, b: float | None) -> float | None:
    """2ab / (a + b); 0 when both are 0; None when either is undefined (a subset without such samples)."""
    if a is None or b is None:
        return None
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)


def step_spans(response: str, split: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of every step: each non-blank piece of `response` between occurrences
    of `split` (the split itself belongs to no span)."""
    if not split:
        raise ValueError("the step split must be a non-empty string")
    spans, at = [], 0
    while (found := response.find(split, at)) >= 0:
        if response[at:found].strip():
            spans.append((at, found))
        at = found + len(split)
    if response[at:].strip():
        spans.append((at, len(response)))
    return spans


def split_response(response: str | Sequence[dict], split: str) -> list[str]:
    """A response as its non-empty, stripped steps (`step_spans`). Chat messages count by their assistant
    turns joined with newlines. A response with no non-empty step is one step, itself."""
    if not isinstance(response, str):
        response = "\n".join(m["content"] for m in response if m.get("role", "assistant") == "assistant")
    steps = [response[start:end].strip() for start, end in step_spans(response, split)]
    return steps or [response]


def split_points(response: str, split: str) -> list[int]:
    """Where each step of `response` (`step_spans`) ends, as character offsets: just after the split that
    ends it (the split belongs to the step it ends), the last step at the end of the text. Blank text between
    two adjacent splits is no step of its own: its characters join the step after it, and trailing splits
    and blanks join the last step. A text with no step is one step that ends at its end."""
    ends = [end + len(split) for _, end in step_spans(response, split)]
    if not ends:
        return [len(response)]
    ends[-1] = len(response)
    return ends


__all__ = [
    "AGGREGATIONS",
    "PROBABILITY_AGGREGATIONS",
    "REWARD_AGGREGATIONS",
    "aggregate",
    "aggregate_steps",
    "check_aggregation",
    "harmonic_mean",
    "split_points",
    "split_response",
    "step_probabilities",
    "step_spans",
]
