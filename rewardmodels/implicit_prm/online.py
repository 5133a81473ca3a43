"""PRIME's online implicit-PRM update: score fresh rollouts, then train the PRM on their outcome labels.

`update_on_rollouts(scorer, rollouts, labels)` does, for an `ImplicitPRMScorer`:

  1. the token rewards w_t = beta * (log pi_theta(y_t|y_<t) - log pi_ref(y_t|y_<t)) of every rollout, with
     the policy as it is *before* the update (what PRIME hands to its advantage estimate by default);
  2. one CE pass over the rollouts: the mean of BCE(sigmoid(r(y)), label) (`losses.implicit_ce_loss`, r the
     summed w_t), gradients accumulated over length-sorted batches, then one optimizer step.

The reference stays frozen. The optimizer persists per scorer across calls (AdamW, lr 1e-6 as in PRIME,
unless one is passed), so its moments carry over from one RL step to the next.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import torch

from rewardmodels.logprobs import padded_batch, response_logprobs, response_positions, sum_logprobs
from rewardmodels.losses import implicit_ce_losses, implicit_rewards
from rewardmodels.scorers.base import length_sorted_batches

DEFAULT_LEARNING_RATE = 1e-6  # PRIME's PRM learning rate
_optimizers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def online_optimizer(scorer, learning_rate: float = DEFAULT_LEARNING_RATE) -> torch.optim.Optimizer:
    """The scorer's optimizer for online updates, made on first use and kept for the scorer's lifetime."""
    if scorer not in _optimizers:
        _optimizers[scorer] = torch.optim.AdamW(
            scorer.policy.parameters(), lr=learning_rate, weight_decay=0.0
        )
    return _optimizers[scorer]


def update_on_rollouts(
    scorer,
    rollouts: Sequence[tuple],
    labels: Sequence[float],
    *,
    optimizer: torch.optim.Optimizer | None = None,
    batch_size: int = 8,
) -> list[torch.Tensor]:
    """One CE update of `scorer`'s policy on `rollouts` ((prompt, response) pairs) with outcome `labels` in
    [0, 1]; returns each rollout's per-token rewards (float64, CPU) computed before the update."""
    if len(rollouts) != len(labels):
        raise ValueError(f"{len(rollouts)} rollouts but {len(labels)} labels")
    if scorer.reference is scorer.policy:
        raise ValueError("the scorer's reference shares the policy's weights; an update would move both")
    encoded = scorer.encode([r[0] for r in rollouts], [r[1] for r in rollouts])
    before = scorer.token_rewards_ids(encoded, batch_size)
    optimizer = optimizer or online_optimizer(scorer)
    policy = scorer.policy
    policy.requires_grad_(True)
    try:
        optimizer.zero_grad()
        target = torch.tensor([float(x) for x in labels], dtype=torch.float64)
        for batch_idx in length_sorted_batches([len(s) for s in encoded], batch_size):
            items = [encoded[i] for i in batch_idx]
            positions = [response_positions(s, s.response_start) for s in items]
            batch = padded_batch(items, positions, scorer.pad_id).to(scorer.device)
            sums = torch.stack([sum_logprobs(lp) for lp in response_logprobs(policy, batch)])
            rewards = implicit_rewards(sums, reference_sums(scorer, batch), scorer.beta)
            losses = implicit_ce_losses(rewards, target[batch_idx].to(rewards.device))
            (losses.sum() / len(encoded)).backward()  # the mean over all rollouts, batch by batch
        optimizer.step()
        optimizer.zero_grad()
    finally:
        policy.requires_grad_(False)
    return before


@torch.no_grad()
def reference_sums(scorer, batch) -> torch.Tensor:
    """sum_t log pi_ref(y_t|y_<t) per sequence of the batch (0 for a reference-free scorer)."""
    if scorer.reference is None:
        return torch.zeros(len(batch.counts), dtype=torch.float64, device=batch.positions.device)
    return torch.stack([sum_logprobs(lp) for lp in response_logprobs(scorer.reference, batch)])


__all__ = ["DEFAULT_LEARNING_RATE", "online_optimizer", "update_on_rollouts"]
