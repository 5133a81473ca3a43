"""PRIME's online update: one CE pass on fresh rollouts, returning the token rewards from before it."""

from __future__ import annotations

import pytest
import torch

from rewardmodels.implicit_prm.online import online_optimizer, update_on_rollouts
from tests.test_implicit_prm import make_scorer
from tests.tiny import save_tiny_model

PROMPT = "Compute 3 + 4 - 2. Work it out one step at a time."
ROLLOUTS = [(PROMPT, "3 + 4 = 7\n7 - 2 = 5\nAnswer: 5"), (PROMPT, "3 + 4 = 8\n8 - 2 = 6\nAnswer: 6")]
LABELS = [1.0, 0.0]


@pytest.fixture(scope="module")
def tiny_reference(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny-ref"), "llama", seed=1)


def ce_loss(scorer) -> float:
    rewards = torch.tensor(
        scorer.score([p for p, _ in ROLLOUTS], [r for _, r in ROLLOUTS]), dtype=torch.float64
    )
    return torch.nn.functional.binary_cross_entropy_with_logits(
        rewards, torch.tensor(LABELS, dtype=torch.float64)
    ).item()


def test_update_returns_the_rewards_from_before_and_moves_only_the_policy(tiny_llama, tiny_reference):
    scorer = make_scorer(tiny_llama, tiny_reference)  # aggregation last: score() = r(y)
    want = scorer.token_rewards_ids(scorer.encode([p for p, _ in ROLLOUTS], [r for _, r in ROLLOUTS]))
    policy_before = {n: p.detach().clone() for n, p in scorer.policy.named_parameters()}
    reference_before = {n: p.detach().clone() for n, p in scorer.reference.named_parameters()}
    loss_before = ce_loss(scorer)
    got = update_on_rollouts(
        scorer, ROLLOUTS, LABELS, optimizer=torch.optim.SGD(scorer.policy.parameters(), lr=0.5)
    )
    assert len(got) == 2 and all(torch.equal(g, w) for g, w in zip(got, want, strict=True))
    assert got[0].dtype == torch.float64 and got[0].abs().max() > 0
    moved = [n for n, p in scorer.policy.named_parameters() if not torch.equal(p.detach(), policy_before[n])]
    assert len(moved) > len(policy_before) // 2
    assert all(torch.equal(p, reference_before[n]) for n, p in scorer.reference.named_parameters())
    assert not any(p.requires_grad for p in scorer.policy.parameters())  # scoring stays gradient-free
    loss_after = ce_loss(scorer)
    assert loss_after < loss_before  # the step went down the CE loss on these rollouts
    # the next call returns rewards of the updated policy, again from before its own update
    after = scorer.token_rewards_ids(scorer.encode([p for p, _ in ROLLOUTS], [r for _, r in ROLLOUTS]))
    again = update_on_rollouts(
        scorer, ROLLOUTS, LABELS, optimizer=torch.optim.SGD(scorer.policy.parameters(), lr=0.5)
    )
    assert all(torch.equal(g, w) for g, w in zip(again, after, strict=True))
    assert not torch.equal(after[0], want[0])


def test_default_optimizer_persists_per_scorer_and_bad_calls_are_refused(tiny_llama, tiny_reference):
    scorer = make_scorer(tiny_llama, tiny_reference)
    update_on_rollouts(scorer, ROLLOUTS, LABELS)
    optimizer = online_optimizer(scorer)
    assert optimizer.param_groups[0]["lr"] == 1e-6 and len(optimizer.state) > 0  # AdamW moments kept
    with pytest.raises(ValueError, match="2 rollouts but 1 labels"):
        update_on_rollouts(scorer, ROLLOUTS, [1.0])
    shared = make_scorer(tiny_llama, None)
    shared.reference = shared.policy
    with pytest.raises(ValueError, match="shares the policy's weights"):
        update_on_rollouts(shared, ROLLOUTS, LABELS)
