from __future__ import annotations

import torch

from rewardmodels.causal.logprobs import token_logprobs
from rewardmodels.training.trainer_base import RewardTrainerBase


class GenerativeSFTTrainer(RewardTrainerBase):
    """Completion-only SFT of a verifier. Batches follow `causal.batches`' completion contract: the model
    inputs plus `lm_positions` / `lm_targets`, one pair per chain token.

    Loss: L = -(1/n) sum_i log p(lm_targets[i] | tokens up to lm_positions[i]), the mean over the batch's n
    chain tokens (`logprobs.token_logprobs`: the LM head runs at those positions only), so prompt tokens are
    never predicted. Logged: `completion_nll` (the same mean) and `completion_tokens` (n per batch).
    """

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)
        positions, targets = inputs.pop("lm_positions"), inputs.pop("lm_targets")
        logps = token_logprobs(model, inputs, positions, targets)
        loss = -logps.mean()
        with torch.no_grad():
            self.record(
                {
                    "completion_nll": loss.detach(),
                    "completion_tokens": torch.tensor(float(targets.numel()), device=loss.device),
                }
            )
        return (loss, {"logps": logps}) if return_outputs else loss
