from __future__ import annotations

import torch

from rewardmodels.losses import token_bce_loss, token_ce_loss
from rewardmodels.modeling import rewards_at
from rewardmodels.steps import step_probabilities
from rewardmodels.trainer_base import RewardTrainerBase


def first_error_index(values: list[float], threshold: float = 0.5) -> int:
    """Index of the first value below `threshold`, or -1: the earliest wrong step of a solution."""
    return next((i for i, v in enumerate(values) if v < threshold), -1)


def first_error_accuracy(probs: torch.Tensor, labels: torch.Tensor, sequence: torch.Tensor) -> torch.Tensor:
    """Share of solutions whose predicted earliest wrong step (first probability < 0.5, or none) matches the
    labelled one, counted over each solution's labelled steps in order."""
    probs, labels, sequence = probs.tolist(), labels.tolist(), sequence.tolist()
    hits, rows = [], sorted(set(sequence))
    for row in rows:
        idx = [i for i, s in enumerate(sequence) if s == row]
        hits.append(first_error_index([probs[i] for i in idx]) == first_error_index([labels[i] for i in idx]))
    return torch.tensor(hits, dtype=torch.float32).mean() if hits else torch.tensor(float("nan"))


class PRMTrainer(RewardTrainerBase):
    """Step-level PRM trainer. Batches come from `PaddedStepCollator` (or a packer with the same contract):
    `reward_positions` at each labelled step's separator, `step_labels` one target per position."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        logits = rewards_at(model, inputs)
        labels = inputs["step_labels"].to(logits.device)
        # Only separator positions were gathered, so every row of `logits` is a labelled step.
        everywhere = torch.ones_like(labels, dtype=torch.bool)
        if self.args.loss_type == "ce":
            loss = token_ce_loss(logits, (labels >= 0.5).long(), everywhere)
        else:
            loss = token_bce_loss(logits.squeeze(-1), labels, everywhere)
        with torch.no_grad():
            probs = step_probabilities(logits.detach())
            # Scalars, not per-step vectors: ranks hold different numbers of steps, and gathering tensors of
            # different sizes across processes would fail.
            metrics = {
                "step_accuracy": ((probs >= 0.5) == (labels >= 0.5)).float().mean(),
                "step_abs_error": (probs - labels.float()).abs().mean(),
            }
            if "step_sequence" in inputs:
                metrics["first_error_accuracy"] = first_error_accuracy(
                    probs.cpu(), labels.cpu(), inputs["step_sequence"].cpu()
                ).to(logits.device)
            self.record(metrics)
        if return_outputs:
            return loss, {"step_probs": probs}
        return loss
