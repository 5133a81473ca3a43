"""Process rewards of an implicit PRM, from per-token rewards: token values, step rewards and one score per
response. Neutral ground for the implicit-PRM trainer and scorer (neither imports the other).

With per-token rewards w_t = beta * (log pi_theta(y_t|y_<t) - log pi_ref(y_t|y_<t))
(`losses.implicit_token_rewards`) over the T response tokens:

  token values   q_t = sum_{i <= t} w_i                      (q_T = r_theta(y), the outcome reward)
  step rewards   r_k = q_{b_k} - q_{b_{k-1}} = sum of w_t over step k's tokens [b_{k-1}, b_k), b_{-1} = 0
  step values    q at the end of step k = r_1 + ... + r_k

and a response's score is one of (`steps.REWARD_AGGREGATIONS`, computed by `steps.aggregate_steps`;
`DEFAULT_AGGREGATION` is min):

  min    min_k r_k: the response is as good as its worst step (the default: the minimum over steps is
         what the issue reads from the paper for best-of-N; the authors' best-of-N code is not in our
         stored copy of PRIME-RL/ImplicitPRM, which holds README.md and eval/process_eval.sh only)
  min_q  min_k q_k: the lowest step value (q at the end of a step), a q-based variant
  last   q_T = r_theta(y): every response token, also those after the last step (an EOS)
  sum    sum_k r_k = q at the end of the last step

A positive rescaling of w (another beta at inference) leaves every ranking by these unchanged.

Per step, a ProcessBench reading is one of (`STEP_SCORES`; `DEFAULT_STEP_SCORES` is sigmoid_q):
sigmoid_q = sigmoid(q_k), a probability-like value thresholded as the authors' ProcessBench script does,
and reward = r_k.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from rewardmodels.causal.logprobs import step_sums

DEFAULT_AGGREGATION = "min"
STEP_SCORES = ("sigmoid_q", "reward")
DEFAULT_STEP_SCORES = "sigmoid_q"


def token_values(token_rewards: torch.Tensor) -> torch.Tensor:
    """q_t = sum_{i <= t} w_i for every response token, float64."""
    return token_rewards.cumsum(0, dtype=torch.float64)


def step_rewards(token_rewards: torch.Tensor, boundaries: Sequence[int]) -> torch.Tensor:
    """r_k = sum of w_t over the tokens of step k (`logprobs.step_sums`, boundaries as it takes them)."""
    return step_sums(token_rewards, boundaries)


def step_values(token_rewards: torch.Tensor, boundaries: Sequence[int]) -> torch.Tensor:
    """q at the end of every step: r_1 + ... + r_k, float64."""
    return step_rewards(token_rewards, boundaries).cumsum(0)


__all__ = [
    "DEFAULT_AGGREGATION",
    "DEFAULT_STEP_SCORES",
    "STEP_SCORES",
    "step_rewards",
    "step_values",
    "token_values",
]
