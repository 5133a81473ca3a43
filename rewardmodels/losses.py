"""Losses as pure tensor functions. Every function here is tested against a value worked out by hand."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bradley_terry_losses(
    chosen_rewards: torch.Tensor,
    rejected_rewards: torch.Tensor,
    margin: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per pair: -log sigmoid(r_chosen - r_rejected - margin), unreduced (one value per pair)."""
    diff = chosen_rewards - rejected_rewards
    if margin is not None:
        diff = diff - margin
    return -F.logsigmoid(diff)


def bradley_terry_loss(
    chosen_rewards: torch.Tensor,
    rejected_rewards: torch.Tensor,
    margin: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean of -log sigmoid(r_chosen - r_rejected - margin) over pairs."""
    return bradley_terry_losses(chosen_rewards, rejected_rewards, margin).mean()


def center_rewards_penalty(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor) -> torch.Tensor:
    """Mean of (r_chosen + r_rejected)^2, which pulls rewards towards zero mean (Eisenstein et al., 2023)."""
    return ((chosen_rewards + rejected_rewards) ** 2).mean()


def tie_losses(rewards_a: torch.Tensor, rewards_b: torch.Tensor) -> torch.Tensor:
    """Per pair: -0.5 * (log sigmoid(a - b) + log sigmoid(b - a)), unreduced (one value per pair)."""
    diff = rewards_a - rewards_b
    return -0.5 * (F.logsigmoid(diff) + F.logsigmoid(-diff))


def tie_loss(rewards_a: torch.Tensor, rewards_b: torch.Tensor) -> torch.Tensor:
    """Bradley-Terry likelihood of a tie: both orders at probability 1/2, i.e. the mean of
    -0.5 * (log sigmoid(a - b) + log sigmoid(b - a)), minimised when a == b at log 2."""
    return tie_losses(rewards_a, rewards_b).mean()


def preference_and_tie_loss(
    chosen_rewards: torch.Tensor,
    rejected_rewards: torch.Tensor,
    tie: torch.Tensor,
    margin: torch.Tensor | None = None,
    tie_weight: float = 1.0,
) -> torch.Tensor:
    """Mean over all pairs of the per-pair loss: -log sigmoid(r_c - r_r - margin) for a preference pair,
    tie_weight * -0.5 * (log sigmoid(r_c - r_r) + log sigmoid(r_r - r_c)) for a tie (`tie` True; its margin
    is not used). Averaging over all pairs, rather than per type, keeps every pair's weight the same whatever
    a batch's mix of ties and preferences; a batch without ties gives exactly `bradley_terry_loss`."""
    tie = tie.bool()
    per_pair = torch.where(
        tie,
        tie_weight * tie_losses(chosen_rewards, rejected_rewards),
        bradley_terry_losses(chosen_rewards, rejected_rewards, margin),
    )
    return per_pair.mean()


def token_bce_loss(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy at masked positions, with hard (0/1) or soft (float in [0, 1]) targets.

    `logits` are single logits per position; positions where `mask` is False do not count.
    """
    mask = mask.bool()
    if not mask.any():
        return logits.sum() * 0.0
    return F.binary_cross_entropy_with_logits(logits[mask].float(), targets[mask].float())


def token_ce_loss(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Two-way (or k-way) cross-entropy at masked positions with integer targets."""
    mask = mask.bool()
    if not mask.any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits[mask].float(), targets[mask].long())


# ---- implicit process rewards (Yuan et al. 2024, "Free Process Rewards without Process Labels") ------------


def implicit_token_rewards(
    policy_logps: torch.Tensor, reference_logps: torch.Tensor, beta: float
) -> torch.Tensor:
    """Per response token t: beta * (log pi_theta(y_t | y_<t) - log pi_ref(y_t | y_<t)), in float64.

    Their running sum is the token value q_t = sum_{i <= t} of these, and a step's reward r_k is their sum
    over the step's tokens (q at the end of step k minus q at the end of step k - 1)."""
    return beta * (policy_logps.double() - reference_logps.double())


def implicit_rewards(
    policy_logp_sums: torch.Tensor, reference_logp_sums: torch.Tensor, beta: float
) -> torch.Tensor:
    """Per response: r_theta(y) = beta * (sum_t log pi_theta(y_t | y_<t) - sum_t log pi_ref(y_t | y_<t)),
    the log-probabilities *summed* over the response tokens (not averaged), in float64."""
    return beta * (policy_logp_sums.double() - reference_logp_sums.double())


def implicit_ce_losses(rewards: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per response, the cross-entropy objective on outcome labels l in [0, 1] (soft labels allowed):
    BCE(sigmoid(r), l) = -(l * log sigmoid(r) + (1 - l) * log sigmoid(-r)), unreduced."""
    return F.binary_cross_entropy_with_logits(rewards, labels.to(rewards.dtype), reduction="none")


def implicit_ce_loss(rewards: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over responses of `implicit_ce_losses`."""
    return implicit_ce_losses(rewards, labels).mean()


def implicit_dpo_loss(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor) -> torch.Tensor:
    """The DPO objective on implicit rewards, mean over pairs of -log sigmoid(r_theta(y_w) - r_theta(y_l)):
    `bradley_terry_loss` applied to r_theta, whose beta and reference terms make it DPO."""
    return bradley_terry_loss(chosen_rewards, rejected_rewards)
