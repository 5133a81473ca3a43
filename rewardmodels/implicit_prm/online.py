"""PRIME's online implicit-PRM update: score fresh rollouts, then train the PRM on their outcome labels.

`update_on_rollouts(scorer, rollouts, labels)` does, for an `ImplicitPRMScorer`:

  1. the per-token log-ratios l_t = log pi_theta(y_t|y_<t) - log pi_ref(y_t|y_<t) of every rollout, with the
     PRM as it is *before* the update (PRIME's single-forward `update=after` recipe: the scores come from the
     pass that also computes the loss), turned into PRIME's process rewards (`prime_process_rewards`);
  2. one CE pass over the rollouts: the mean of BCE(sigmoid(beta * sum_t l_t), label)
     (`losses.implicit_ce_loss`, beta the scorer's, 0.05 as PRIME's beta_train), gradients accumulated over
     length-sorted batches, the gradient norm clipped, then one optimizer step.

PRIME's process rewards, by default (`prime_process_rewards`), for the B rollouts of one call (the batch):

  s_{i,t} = l_{i,t}                                        granularity token (whole: s_{i,T_i} = sum_t l_{i,t},
                                                           0 before it)
  s_{i,t} <- s_{i,t} / (max_{j,u} |sum_{v >= u} s_{j,v}| + 1e-6)    norm batch_norm: divided by the largest
                                                           absolute return-to-go in the batch, so that no
                                                           return exceeds 1 (norm none: s <- beta * s)
  s_{i,t} <- coef * s_{i,t}                                coef 5: PRIME's reward coefficient

What each default follows (PRIME-RL/PRIME's training code, read in its stored mirror zkcpku/PRIME):
  raw log-ratio, no beta    training/verl/workers/actor/dp_prime.py:123 (q = log_probs - ref_log_probs)
  batch_norm by max |return| dp_prime.py:241-243 (reverse cumsum, abs().max() + 1e-6); prime_norm:
                            batch_norm is the default of training/verl/trainer/config/ppo_trainer.yaml:130
  coef 5                    training/examples/run_prime_main.sh:60 (reward_model.rm_coef=5); verl's PRIME
                            recipe multiplies the RLOO'd implicit rewards by reward_dpo_coef 5
  gradient clipping 10      run_prime_main.sh:69 (prime_model.optim.grad_clip=10.0; dp_prime.py:67-75)
  lr 1e-6, AdamW, decay 0   run_prime_main.sh:68; ppo_trainer.yaml:147, 152
  beta 0.05                 run_prime_main.sh:67 (beta_train), used only in the CE loss (dp_prime.py:185)
  token granularity         run_prime_main.sh:64

Knobs that differ from PRIME, and why:
  - one optimizer step per call, over all its rollouts: PRIME steps once per mini-batch of
    ppo_mini_batch_size (256) rollouts; a caller wanting that passes that many rollouts per call.
  - the normalisation runs over one call's rollouts (PRIME: the rollouts of one RL step, the same thing
    when a loop calls once per step, as recipes/rl/prime_loop.py does).
  - float64 sums on our side and whatever dtype the scorer loaded (PRIME: bf16 autocast); only rounding.
  - no PRM learning-rate warm-up (PRIME's is 0 steps too) and no accuracy filter of the prompts (a loop's
    job: PRIME keeps prompts whose accuracy lies in [0.2, 0.8]).
`reward_norm="none", reward_coef=1.0` gives back this module's earlier output, w_t = beta * l_t.

The reference stays frozen. The optimizer persists per scorer across calls (AdamW, lr 1e-6 as in PRIME,
weight decay 0, unless one is passed), so its moments carry over from one RL step to the next.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import torch

from rewardmodels.causal.logprobs import padded_batch, response_logprobs, response_positions, sum_logprobs
from rewardmodels.losses import implicit_ce_losses, implicit_rewards
from rewardmodels.scorers.base import length_sorted_batches

DEFAULT_LEARNING_RATE = 1e-6  # PRIME's PRM learning rate
PRIME_REWARD_COEF = 5.0  # PRIME's reward_model.rm_coef
PRIME_GRAD_CLIP = 10.0  # PRIME's reward_model.prime_model.optim.grad_clip
NORM_EPS = 1e-6  # PRIME's guard against an all-zero batch
REWARD_NORMS = ("batch_norm", "none")
GRANULARITIES = ("token", "whole")
_optimizers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def online_optimizer(scorer, learning_rate: float = DEFAULT_LEARNING_RATE) -> torch.optim.Optimizer:
    """The scorer's optimizer for online updates, made on first use and kept for the scorer's lifetime."""
    if scorer not in _optimizers:
        _optimizers[scorer] = torch.optim.AdamW(
            scorer.policy.parameters(), lr=learning_rate, weight_decay=0.0
        )
    return _optimizers[scorer]


def prime_process_rewards(
    log_ratios: Sequence[torch.Tensor],
    *,
    beta: float,
    norm: str = "batch_norm",
    coef: float = PRIME_REWARD_COEF,
    granularity: str = "token",
) -> list[torch.Tensor]:
    """PRIME's token-level process rewards of a batch of rollouts from their per-token log-ratios l_t (module
    docstring): per rollout a float64 tensor as long as its l. `beta` scales the rewards only when `norm` is
    none (PRIME: "if set to none, the normalizer is beta_train")."""
    if norm not in REWARD_NORMS:
        raise ValueError(f"reward norm must be one of {REWARD_NORMS}, got {norm!r}")
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
    scores = [lr.detach().to(torch.float64).cpu() for lr in log_ratios]
    if granularity == "whole":  # the whole response is one step: its reward sits on its last token
        scores = [torch.cat([torch.zeros(max(s.numel() - 1, 0), dtype=s.dtype), s.sum().reshape(-1)])
                  if s.numel() else s for s in scores]  # fmt: skip
    if norm == "batch_norm":
        returns = [s.flip(0).cumsum(0).flip(0).abs().max() for s in scores if s.numel()]
        largest = float(torch.stack(returns).max()) if returns else 0.0
        scores = [s / (largest + NORM_EPS) for s in scores]
    else:
        scores = [beta * s for s in scores]
    return [coef * s for s in scores]


def update_on_rollouts(
    scorer,
    rollouts: Sequence[tuple],
    labels: Sequence[float],
    *,
    optimizer: torch.optim.Optimizer | None = None,
    batch_size: int = 8,
    reward_norm: str = "batch_norm",
    reward_coef: float = PRIME_REWARD_COEF,
    granularity: str = "token",
    grad_clip: float | None = PRIME_GRAD_CLIP,
) -> list[torch.Tensor]:
    """One CE update of `scorer`'s policy on `rollouts` ((prompt, response) pairs) with outcome `labels` in
    [0, 1], the gradient's global norm clipped to `grad_clip` (None: not clipped); returns each rollout's
    process rewards (`prime_process_rewards` with these settings; float64, CPU) computed before the update."""
    if len(rollouts) != len(labels):
        raise ValueError(f"{len(rollouts)} rollouts but {len(labels)} labels")
    if scorer.reference is scorer.policy:
        raise ValueError("the scorer's reference shares the policy's weights; an update would move both")
    encoded = scorer.encode([r[0] for r in rollouts], [r[1] for r in rollouts])
    # the scorer gives w_t = beta * l_t; PRIME's rewards start from l_t itself
    log_ratios = [w / scorer.beta for w in scorer.token_rewards_ids(encoded, batch_size)]
    before = prime_process_rewards(
        log_ratios, beta=scorer.beta, norm=reward_norm, coef=reward_coef, granularity=granularity
    )
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
        if grad_clip is not None:  # PRIME clips the PRM's gradient before every step
            torch.nn.utils.clip_grad_norm_(policy.parameters(), max_norm=grad_clip)
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


__all__ = [
    "DEFAULT_LEARNING_RATE",
    "GRANULARITIES",
    "PRIME_GRAD_CLIP",
    "PRIME_REWARD_COEF",
    "REWARD_NORMS",
    "online_optimizer",
    "prime_process_rewards",
    "update_on_rollouts",
]
