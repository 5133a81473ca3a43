from __future__ import annotations

import torch

from rewardmodels.losses import (
    bradley_terry_losses,
    center_rewards_penalty,
    preference_and_tie_loss,
    tie_losses,
)
from rewardmodels.modeling import rewards_at
from rewardmodels.training.trainer_base import RewardTrainerBase


class BTTrainer(RewardTrainerBase):
    """Bradley-Terry trainer. Batches come from a pair collator: chosen rewards first, rejected second, and
    optionally `margin` and `tie` per pair (the contract in `rewardmodels.collators`).

    Loss: the mean over all pairs of the BT loss (preference pairs) or `tie_loss_weight` times the tie loss
    (tie pairs), so a pair weighs the same whatever the mix of its batch (`losses.preference_and_tie_loss`),
    plus the optional centring penalty over every pair's rewards.

    Logged (per train/eval mode): `accuracy` and `margin` over preference pairs only (a tie has no right
    order), `rewards/chosen` and `rewards/rejected` over all pairs, and per pair type
    `pairs/preference/loss`, `pairs/preference/accuracy`, `pairs/tie/loss` and `pairs/tie/abs_margin`
    (mean |r_a - r_b|, which the tie loss pulls towards 0). Per-type losses are unweighted.
    """

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        rewards = rewards_at(model, inputs).squeeze(-1)
        chosen, rejected = rewards.chunk(2)
        self.collect_rewards(torch.stack([chosen, rejected], dim=1))  # dim 0 = pairs, for gathering
        margin = inputs.get("margin") if self.args.use_margin else None
        tie = inputs.get("tie")
        if tie is None:
            tie = torch.zeros(chosen.shape, dtype=torch.bool, device=chosen.device)
        loss = preference_and_tie_loss(chosen, rejected, tie, margin, self.args.tie_loss_weight)
        if self.args.center_rewards_coefficient:
            loss = loss + self.args.center_rewards_coefficient * center_rewards_penalty(chosen, rejected)
        with torch.no_grad():
            self.record_pair_metrics(chosen, rejected, tie, margin)
        if return_outputs:
            return loss, {"rewards_chosen": chosen, "rewards_rejected": rejected}
        return loss

    def record_pair_metrics(
        self,
        chosen: torch.Tensor,
        rejected: torch.Tensor,
        tie: torch.Tensor,
        margin: torch.Tensor | None,
    ) -> None:
        diff = chosen - rejected
        correct = (diff > 0).float()
        self.record({"rewards/chosen": chosen, "rewards/rejected": rejected})
        self.record(
            {
                "accuracy": correct,
                "margin": diff,
                "pairs/preference/accuracy": correct,
                "pairs/preference/loss": bradley_terry_losses(chosen, rejected, margin),
            },
            where=~tie,
        )
        self.record(
            {"pairs/tie/loss": tie_losses(chosen, rejected), "pairs/tie/abs_margin": diff.abs()}, where=tie
        )
