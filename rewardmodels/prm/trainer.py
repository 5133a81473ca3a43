from __future__ import annotations

import torch

from rewardmodels.losses import token_bce_loss, token_ce_loss
from rewardmodels.modeling import rewards_at
from rewardmodels.steps import harmonic_mean, step_probabilities
from rewardmodels.training.trainer_base import RewardTrainerBase


def first_error_index(values: list[float], threshold: float = 0.5) -> int:
    """Index of the first value below `threshold`, or -1: the earliest wrong step of a solution."""
    return next((i for i, v in enumerate(values) if v < threshold), -1)


def first_error_hits(probs: torch.Tensor, labels: torch.Tensor, sequence: torch.Tensor) -> dict[str, tuple]:
    """Per solution of a batch, whether its predicted earliest wrong step (first probability < 0.5, or none)
    matches the labelled one, counted over each solution's labelled steps in order. Returned as
    (hits, solutions) totals: over all solutions (`first_error_accuracy`), over solutions labelled with an
    error (`first_error/acc_error`) and over solutions labelled all correct (`first_error/acc_correct`), the
    two halves of ProcessBench's F1."""
    probs, labels, sequence = probs.tolist(), labels.tolist(), sequence.tolist()
    counts = {
        "first_error_accuracy": [0, 0],
        "first_error/acc_error": [0, 0],
        "first_error/acc_correct": [0, 0],
    }
    for row in sorted(set(sequence)):
        idx = [i for i, s in enumerate(sequence) if s == row]
        truth = first_error_index([labels[i] for i in idx])
        hit = int(first_error_index([probs[i] for i in idx]) == truth)
        for name in (
            "first_error_accuracy",
            "first_error/acc_error" if truth >= 0 else "first_error/acc_correct",
        ):
            counts[name][0] += hit
            counts[name][1] += 1
    return {name: (torch.tensor(float(h)), torch.tensor(float(n))) for name, (h, n) in counts.items()}


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
            # (sum, count) totals, pooled over the logging interval and over processes: ranks hold different
            # numbers of steps, and a mean of batch means would overweight a short last batch.
            steps = torch.tensor(float(labels.numel()))
            totals = {
                "step_accuracy": (((probs >= 0.5) == (labels >= 0.5)).float().sum(), steps),
                "step_abs_error": ((probs - labels.float()).abs().sum(), steps),
            }
            if "step_sequence" in inputs:
                totals.update(first_error_hits(probs.cpu(), labels.cpu(), inputs["step_sequence"].cpu()))
            self.record_totals(totals)
        if return_outputs:
            return loss, {"step_probs": probs}
        return loss

    def derived_metrics(self, logs: dict[str, float], prefix: str) -> None:
        """`first_error_f1` (ProcessBench's definition) from the pooled halves, when both were seen."""
        acc_error, acc_correct = (
            logs.get(f"{prefix}first_error/acc_error"),
            logs.get(f"{prefix}first_error/acc_correct"),
        )
        if acc_error is not None and acc_correct is not None:
            logs[f"{prefix}first_error_f1"] = harmonic_mean(acc_error, acc_correct)
