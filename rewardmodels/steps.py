"""Step-level scores shared by PRM training, PRM scoring and the evaluators: head logits at a step separator
to the probability that the step is correct, step probabilities to one solution score, and a response split
into steps.

This module is neutral ground: the PRM trainer and the PRM scorer both import it, so no trainer imports a
scorer. `AGGREGATIONS` is the one list of aggregation names (the PRM config's choices come from it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

AGGREGATIONS = ("min", "prod", "last", "mean")


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
    """One score from step probabilities p_1..p_k, NaN entries (steps that could not be scored) left out:
    min = min_i p_i, prod = prod_i p_i, last = p_k, mean = (1/k) sum_i p_i. No scored step gives NaN."""
    if how not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {how!r}")
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


def harmonic_mean(a: float | None, b: float | None) -> float | None:
    """2ab / (a + b); 0 when both are 0; None when either is undefined (a subset without such samples)."""
    if a is None or b is None:
        return None
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)


def split_response(response: str | Sequence[dict], split: str) -> list[str]:
    """A response as its non-empty, stripped steps: the text cut at every `split`. Chat messages count by
    their assistant turns joined with newlines. A response with no non-empty step is one step, itself."""
    if not isinstance(response, str):
        response = "\n".join(m["content"] for m in response if m.get("role", "assistant") == "assistant")
    steps = [s.strip() for s in response.split(split)]
    steps = [s for s in steps if s]
    return steps or [response]


__all__ = ["AGGREGATIONS", "aggregate", "split_response", "step_probabilities"]
