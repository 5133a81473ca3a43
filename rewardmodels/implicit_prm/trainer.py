from __future__ import annotations

import torch

from rewardmodels.causal.batches import batch_logprob_parts
from rewardmodels.causal.logprobs import response_logprobs, sum_logprobs
from rewardmodels.implicit_prm.reference import Reference
from rewardmodels.losses import (
    bradley_terry_losses,
    implicit_ce_loss,
    implicit_ce_losses,
    implicit_dpo_loss,
    implicit_rewards,
)
from rewardmodels.training.trainer_base import RewardTrainerBase


class ImplicitPRMTrainer(RewardTrainerBase):
    """Implicit PRM trainer. Batches follow `causal.batches`' response-group contract: the policy's response
    log-probs come from `logprobs.response_logprobs` (padded rows, packed rows or a pair's shared-prompt
    tree), the reference's from the batch (`reference_logps`, cached by the first pass) or, without them,
    from `reference` run on the same batch under no_grad first.

    Loss, with r = beta * (sum_t log pi_theta - sum_t log pi_ref) per response (`losses.implicit_rewards`):
    CE: mean BCE(sigmoid(r), label) over outcome rows; DPO: mean -log sigmoid(r_w - r_l) over pairs.

    Logged: `accuracy` (CE: sign of r agrees with label >= 0.5; DPO: r_w > r_l), `rewards/positive` and
    `rewards/negative` (CE, by label) or `rewards/chosen`, `rewards/rejected` and `margin` (DPO).
    """

    def __init__(self, *args, reference: Reference, **kwargs):
        super().__init__(*args, **kwargs)
        self.reference = reference

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        parts = batch_logprob_parts(inputs)
        reference = inputs.get("reference_logps")
        if reference is None:  # no cache: the reference runs now, before the policy's gradient pass
            reference = self.reference.logp_sums(parts)
        policy = torch.stack([sum_logprobs(lp) for lp in response_logprobs(model, parts)])
        rewards = implicit_rewards(policy, reference.to(policy.device), self.args.beta)
        if self.args.objective == "ce":
            labels = inputs["outcome_labels"].to(rewards.device)
            loss = implicit_ce_loss(rewards, labels)
            self.collect_rewards(rewards.unsqueeze(1))
            with torch.no_grad():
                self._record_outcomes(rewards.detach(), labels)
        else:
            chosen, rejected = rewards.view(-1, 2).unbind(1)
            loss = implicit_dpo_loss(chosen, rejected)
            self.collect_rewards(rewards.view(-1, 2))
            with torch.no_grad():
                self._record_pairs(chosen.detach(), rejected.detach())
        loss = loss.float()
        if return_outputs:
            return loss, {"rewards": rewards}
        return loss

    def _record_outcomes(self, rewards: torch.Tensor, labels: torch.Tensor) -> None:
        positive = labels >= 0.5
        self.record(
            {"accuracy": ((rewards > 0) == positive).float(), "ce": implicit_ce_losses(rewards, labels)}
        )
        self.record({"rewards/positive": rewards}, where=positive)
        self.record({"rewards/negative": rewards}, where=~positive)

    def _record_pairs(self, chosen: torch.Tensor, rejected: torch.Tensor) -> None:
        self.record(
            {
                "accuracy": (chosen > rejected).float(),
                "margin": chosen - rejected,
                "rewards/chosen": chosen,
                "rewards/rejected": rejected,
                "dpo": bradley_terry_losses(chosen, rejected),
            }
        )
