"""RLPR's standard-deviation filter: drop the prompts whose rewards hardly differ across their group.

In a GRPO batch each prompt has a group of G completions, and completion i's advantage is (r_i - mean) / std
over its group. A group whose rewards nearly agree (the prompt is too easy or too hard for the policy, or a
noisy probability reward barely moves) gives advantages that are noise divided by a small std. RLPR (Yu et
al. 2025) removes such prompts from the batch before the update. A group's spread is the population std

    s = sqrt((1/G) sum_i (r_i - m)^2),   m = (1/G) sum_i r_i

and the prompt is kept when s >= beta: `kept_prompts(rewards, G, beta)`, a fixed threshold, is the default.

RLPR adjusts beta during training with an exponential moving average of the std it sees; what we could read
of the paper says that much but not the decay or the starting value, so `StdFilter(beta, momentum=m)` takes
both from the caller and reads the EMA as follows. At each step t, with s_1 .. s_P the group stds of that
step's P prompts:

    keep the prompts with s_j >= beta_t,   then   beta_{t+1} = m * beta_t + (1 - m) * (1/P) sum_j s_j

(the threshold a step filters with is the one before that step's update). `momentum=None` keeps beta fixed.

Rewards come flat, grouped by prompt: rewards[k*G : (k+1)*G] are prompt k's, as TRL's GRPOTrainer orders a
generation batch (each prompt's G completions one after another) on one process. A group holding a NaN
(an unscored completion) has a NaN std and is dropped. `std_filtered_reward_func` applies the filter inside a
TRL reward function, where dropping a prompt is not possible: every reward of a dropped group becomes 0.0,
so that group's rewards are constant and its GRPO advantages are exactly 0 (it adds nothing to the policy
gradient) when this is the trainer's only reward function; with others summed in, only this function's
part of the group's reward is flattened.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence


def group_stds(rewards: Sequence[float], group_size: int) -> list[float]:
    """The population std s of each consecutive group of `group_size` rewards (NaN for a group with a NaN)."""
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    if len(rewards) % group_size:
        raise ValueError(f"{len(rewards)} rewards do not split into groups of {group_size}")
    stds = []
    for start in range(0, len(rewards), group_size):
        group = [float(r) for r in rewards[start : start + group_size]]
        mean = sum(group) / group_size
        stds.append(math.sqrt(sum((r - mean) ** 2 for r in group) / group_size))
    return stds


def kept_prompts(rewards: Sequence[float], group_size: int, threshold: float) -> list[int]:
    """Indices of the prompts whose group std s satisfies s >= threshold (a NaN std never does)."""
    return [k for k, s in enumerate(group_stds(rewards, group_size)) if s >= threshold]


class StdFilter:
    """The filter with a fixed threshold (`momentum=None`) or RLPR's EMA-adjusted one (module docstring).
    `threshold` is the current beta; `last_stds` and `last_kept` describe the latest call."""

    def __init__(self, threshold: float, momentum: float | None = None):
        if not threshold >= 0:
            raise ValueError(f"threshold must be >= 0, got {threshold}")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must lie in [0, 1], got {momentum}")
        self.threshold = float(threshold)
        self.momentum = momentum
        self.last_stds: list[float] = []
        self.last_kept: list[int] = []

    def __call__(self, rewards: Sequence[float], group_size: int) -> list[int]:
        """The kept prompts of one step, by the threshold before this step's EMA update."""
        stds = group_stds(rewards, group_size)
        kept = [k for k, s in enumerate(stds) if s >= self.threshold]
        finite = [s for s in stds if not math.isnan(s)]
        if self.momentum is not None and finite:
            step_mean = sum(finite) / len(finite)
            self.threshold = self.momentum * self.threshold + (1.0 - self.momentum) * step_mean
        self.last_stds, self.last_kept = stds, kept
        return kept


def std_filtered_reward_func(reward_func: Callable, group_size: int, std_filter: StdFilter) -> Callable:
    """A synchronous `reward_func` with the filter applied to each call's rewards: a dropped prompt's G rewards
    become 0.0 (module docstring); None rewards (unscored) count as NaN, so their group is dropped."""

    def filtered(prompts, completions, **kwargs) -> list[float | None]:
        values = reward_func(prompts, completions, **kwargs)
        as_floats = [math.nan if v is None else float(v) for v in values]
        kept = set(std_filter(as_floats, group_size))
        return [v if k // group_size in kept else 0.0 for k, v in enumerate(values)]

    filtered.__name__ = filtered.__qualname__ = getattr(reward_func, "__name__", "reward")
    return filtered


__all__ = ["StdFilter", "group_stds", "kept_prompts", "std_filtered_reward_func"]
