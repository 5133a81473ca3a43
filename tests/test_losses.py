import math

import pytest
import torch

from rewardmodels.losses import (
    bradley_terry_loss,
    bradley_terry_losses,
    center_rewards_penalty,
    implicit_ce_loss,
    implicit_ce_losses,
    implicit_dpo_loss,
    implicit_rewards,
    implicit_token_rewards,
    preference_and_tie_loss,
    tie_loss,
    tie_losses,
    token_bce_loss,
    token_ce_loss,
)


def test_bradley_terry_by_hand():
    # diffs 0 and ln(3): -log(1/2) = ln 2 ; -log sigmoid(ln 3) = -log(3/4) = ln(4/3)
    chosen = torch.tensor([1.0, math.log(3.0)])
    rejected = torch.tensor([1.0, 0.0])
    expected = (math.log(2) + math.log(4 / 3)) / 2
    assert math.isclose(bradley_terry_loss(chosen, rejected).item(), expected, rel_tol=1e-6)


def test_bradley_terry_margin_shifts_the_difference():
    # r_c - r_r = 2, margin 2 -> sigmoid(0) -> ln 2
    loss = bradley_terry_loss(torch.tensor([3.0]), torch.tensor([1.0]), margin=torch.tensor([2.0]))
    assert math.isclose(loss.item(), math.log(2), rel_tol=1e-6)


def test_center_penalty_by_hand():
    # (1 + -1)^2 = 0 ; (2 + 1)^2 = 9 ; mean 4.5
    assert center_rewards_penalty(torch.tensor([1.0, 2.0]), torch.tensor([-1.0, 1.0])).item() == 4.5


def test_tie_loss_minimum_is_log2_at_equal_rewards():
    assert math.isclose(tie_loss(torch.tensor([0.7]), torch.tensor([0.7])).item(), math.log(2), rel_tol=1e-6)
    # diff ln 3: -0.5*(log 3/4 + log 1/4) = 0.5*(ln(4/3) + ln 4)
    value = tie_loss(torch.tensor([math.log(3.0)]), torch.tensor([0.0])).item()
    assert math.isclose(value, 0.5 * (math.log(4 / 3) + math.log(4)), rel_tol=1e-6)


def test_per_pair_losses_by_hand():
    # BT: diffs 0, ln 3 and (ln 3 - margin ln 3 = 0) -> ln 2, ln(4/3), ln 2
    chosen = torch.tensor([1.0, math.log(3.0), math.log(3.0)])
    rejected = torch.tensor([1.0, 0.0, 0.0])
    margin = torch.tensor([0.0, 0.0, math.log(3.0)])
    got = bradley_terry_losses(chosen, rejected, margin).tolist()
    assert got == [
        pytest.approx(math.log(2)),
        pytest.approx(math.log(4 / 3)),
        pytest.approx(math.log(2), abs=1e-7),
    ]
    # tie: diff 0 -> ln 2 ; diff ln 3 -> 0.5 * (ln(4/3) + ln 4), and the same with the sides swapped
    ties = tie_losses(torch.tensor([0.3, math.log(3.0), 0.0]), torch.tensor([0.3, 0.0, math.log(3.0)]))
    both_orders = 0.5 * (math.log(4 / 3) + math.log(4))
    assert ties.tolist() == pytest.approx([math.log(2), both_orders, both_orders])


def test_preference_and_tie_loss_is_the_mean_over_all_pairs_by_hand():
    chosen = torch.tensor([math.log(3.0), 0.5, 2.0, math.log(3.0)])
    rejected = torch.tensor([0.0, 0.5, 2.0, 0.0])
    tie = torch.tensor([False, True, False, True])
    margin = torch.tensor([0.0, 5.0, 0.0, 0.0])  # a tie's margin is not used
    # preference: ln(4/3) and ln 2; ties (weight 2): 2 * ln 2 and 2 * 0.5 * (ln(4/3) + ln 4)
    expected = (math.log(4 / 3) + 2 * math.log(2) + math.log(2) + (math.log(4 / 3) + math.log(4))) / 4
    got = preference_and_tie_loss(chosen, rejected, tie, margin, tie_weight=2.0).item()
    assert math.isclose(got, expected, rel_tol=1e-6)
    # Without ties it is the BT loss, bit for bit.
    none = torch.zeros(4, dtype=torch.bool)
    assert (
        preference_and_tie_loss(chosen, rejected, none, margin).item()
        == bradley_terry_loss(chosen, rejected, margin).item()
    )


def test_token_bce_hard_and_soft_only_masked_positions():
    logits = torch.tensor([[0.0, 100.0, math.log(3.0)]])
    mask = torch.tensor([[True, False, True]])
    hard = token_bce_loss(logits, torch.tensor([[1.0, 0.0, 1.0]]), mask).item()
    # position 0: -log(1/2) ; position 2: -log(3/4); the masked-out 100 would be huge if it counted
    assert math.isclose(hard, (math.log(2) + math.log(4 / 3)) / 2, rel_tol=1e-6)
    soft = token_bce_loss(logits, torch.tensor([[0.5, 0.0, 0.25]]), mask).item()
    # soft target t: -(t log p + (1-t) log(1-p)); p0 = 1/2 -> ln 2 ; p2 = 3/4 -> -(.25 ln .75 + .75 ln .25)
    pos2 = -(0.25 * math.log(0.75) + 0.75 * math.log(0.25))
    assert math.isclose(soft, (math.log(2) + pos2) / 2, rel_tol=1e-6)


def test_token_ce_by_hand():
    logits = torch.tensor([[[0.0, math.log(3.0)], [5.0, 5.0]]])
    targets = torch.tensor([[1, 0]])
    mask = torch.tensor([[True, False]])
    # softmax([0, ln 3]) = [1/4, 3/4] -> -log(3/4)
    assert math.isclose(token_ce_loss(logits, targets, mask).item(), math.log(4 / 3), rel_tol=1e-6)


def test_empty_mask_gives_zero_with_gradient():
    logits = torch.tensor([[1.0]], requires_grad=True)
    loss = token_bce_loss(logits, torch.tensor([[1.0]]), torch.tensor([[False]]))
    loss.backward()
    assert loss.item() == 0.0 and logits.grad is not None


# ---- implicit PRM --------------------------------------------------------------------------------------------


def test_implicit_rewards_by_hand():
    # beta 0.05: 0.05 * (-10 - -12) = 0.1 ; 0.05 * (-4 - -4) = 0 ; summed log-probs, float64
    rewards = implicit_rewards(torch.tensor([-10.0, -4.0]), torch.tensor([-12.0, -4.0]), 0.05)
    assert rewards.dtype == torch.float64
    assert rewards.tolist() == pytest.approx([0.1, 0.0], abs=1e-15)
    # per token, beta 0.5: 0.5 * (-1 - -1.5) = 0.25 ; 0.5 * (-2 - -1) = -0.5
    tokens = implicit_token_rewards(torch.tensor([-1.0, -2.0]), torch.tensor([-1.5, -1.0]), 0.5)
    assert tokens.tolist() == [0.25, -0.5]
    assert tokens.sum().item() == implicit_rewards(torch.tensor(-3.0), torch.tensor(-2.5), 0.5).item()


def test_implicit_ce_loss_by_hand():
    # r = 0, label 1: -log sigmoid(0) = ln 2 ; r = ln 3, label 0: -log(1 - 3/4) = ln 4 ; mean 1.5 ln 2
    rewards = torch.tensor([0.0, math.log(3.0)], dtype=torch.float64)
    labels = torch.tensor([1.0, 0.0])
    assert implicit_ce_losses(rewards, labels).tolist() == pytest.approx([math.log(2), math.log(4)])
    assert implicit_ce_loss(rewards, labels).item() == pytest.approx(1.5 * math.log(2))
    # a soft label 0.25 at r = ln 3: -(0.25 log 3/4 + 0.75 log 1/4)
    soft = implicit_ce_loss(rewards[1:], torch.tensor([0.25])).item()
    assert soft == pytest.approx(-(0.25 * math.log(0.75) + 0.75 * math.log(0.25)))


def test_implicit_dpo_loss_by_hand():
    # r_w - r_l = ln 3 in one pair, 0 in the other: (ln 4/3 + ln 2) / 2
    chosen = torch.tensor([math.log(3.0) + 0.2, 0.7], dtype=torch.float64)
    rejected = torch.tensor([0.2, 0.7], dtype=torch.float64)
    assert implicit_dpo_loss(chosen, rejected).item() == pytest.approx((math.log(4 / 3) + math.log(2)) / 2)
