"""PRIME's online update: one CE pass on fresh rollouts, its gradient clipped, returning PRIME's process
rewards (raw log-ratio, batch-normalised, times 5) from before it; the normalisation by hand."""

from __future__ import annotations

import pytest
import torch

from rewardmodels.implicit_prm.online import online_optimizer, prime_process_rewards, update_on_rollouts
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


def test_prime_normalisation_of_a_small_batch_by_hand():
    # log-ratios l: rollout 1 (1, -3, 0.5), rollout 2 (2, 2); returns-to-go (-1.5, -2.5, 0.5) and (4, 2):
    # the batch's largest |return| is 4, so every l is divided by 4 + 1e-6 and multiplied by 5
    l1, l2 = torch.tensor([1.0, -3.0, 0.5]), torch.tensor([2.0, 2.0])
    s1, s2 = prime_process_rewards([l1, l2], beta=0.05)
    scale = 5 / (4 + 1e-6)
    assert s1.tolist() == pytest.approx([1.0 * scale, -3.0 * scale, 0.5 * scale], rel=1e-12)
    assert s2.tolist() == pytest.approx([2.0 * scale, 2.0 * scale], rel=1e-12)
    assert s1.dtype == torch.float64
    # whole granularity: each response's sum on its last token (-1.5 and 4), then the same normalisation
    w1, w2 = prime_process_rewards([l1, l2], beta=0.05, granularity="whole")
    assert w1.tolist() == pytest.approx([0.0, 0.0, -1.5 * scale]) and w2.tolist() == pytest.approx(
        [0.0, 4 * scale]
    )
    # norm none: beta * l (PRIME: "the normalizer is beta_train"), times the coefficient
    n1, _ = prime_process_rewards([l1, l2], beta=0.05, norm="none", coef=2.0)
    assert n1.tolist() == pytest.approx([0.1, -0.3, 0.05])
    # an all-zero batch stays zero (the 1e-6 guard), an empty rollout stays empty
    z, e = prime_process_rewards([torch.zeros(2), torch.zeros(0)], beta=0.05)
    assert z.tolist() == [0.0, 0.0] and e.numel() == 0
    with pytest.raises(ValueError, match="reward norm must be one of"):
        prime_process_rewards([l1], beta=0.05, norm="max")


def test_update_returns_the_rewards_from_before_and_moves_only_the_policy(tiny_llama, tiny_reference):
    scorer = make_scorer(tiny_llama, tiny_reference, aggregation="last")  # score() = r(y)
    want = scorer.token_rewards_ids(scorer.encode([p for p, _ in ROLLOUTS], [r for _, r in ROLLOUTS]))
    policy_before = {n: p.detach().clone() for n, p in scorer.policy.named_parameters()}
    reference_before = {n: p.detach().clone() for n, p in scorer.reference.named_parameters()}
    loss_before = ce_loss(scorer)
    got = update_on_rollouts(
        scorer, ROLLOUTS, LABELS, optimizer=torch.optim.SGD(scorer.policy.parameters(), lr=0.5)
    )
    # PRIME's rewards from the raw log-ratios l = w / beta: the largest |return-to-go| in the batch becomes 5
    log_ratios = [w / scorer.beta for w in want]
    largest = max(float(lr.flip(0).cumsum(0).flip(0).abs().max()) for lr in log_ratios)
    assert len(got) == 2 and got[0].dtype == torch.float64
    for g, lr in zip(got, log_ratios, strict=True):
        torch.testing.assert_close(g, 5 * lr / (largest + 1e-6), rtol=1e-12, atol=0)
    assert max(float(g.flip(0).cumsum(0).flip(0).abs().max()) for g in got) == pytest.approx(5.0, rel=1e-5)
    moved = [n for n, p in scorer.policy.named_parameters() if not torch.equal(p.detach(), policy_before[n])]
    assert len(moved) > len(policy_before) // 2
    assert all(torch.equal(p, reference_before[n]) for n, p in scorer.reference.named_parameters())
    assert not any(p.requires_grad for p in scorer.policy.parameters())  # scoring stays gradient-free
    loss_after = ce_loss(scorer)
    assert loss_after < loss_before  # the step went down the CE loss on these rollouts
    # the next call returns rewards of the updated policy, again from before its own update; norm none with
    # coefficient 1 gives the scorer's own w_t = beta * l_t
    after = scorer.token_rewards_ids(scorer.encode([p for p, _ in ROLLOUTS], [r for _, r in ROLLOUTS]))
    again = update_on_rollouts(
        scorer, ROLLOUTS, LABELS, optimizer=torch.optim.SGD(scorer.policy.parameters(), lr=0.5),
        reward_norm="none", reward_coef=1.0,
    )  # fmt: skip
    for g, w in zip(again, after, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-15)
    assert not torch.equal(after[0], want[0])


def test_the_gradient_is_clipped_before_the_step(tiny_llama, tiny_reference):
    # plain SGD at lr 1 moves the parameters by exactly the (clipped) gradient: its global norm is the clip
    def step_norm(clip):
        scorer = make_scorer(tiny_llama, tiny_reference)
        before = [p.detach().clone() for p in scorer.policy.parameters()]
        sgd = torch.optim.SGD(scorer.policy.parameters(), lr=1.0)
        update_on_rollouts(scorer, ROLLOUTS, LABELS, optimizer=sgd, grad_clip=clip)
        deltas = [(p.detach() - b).double() for p, b in zip(scorer.policy.parameters(), before, strict=True)]
        return float(torch.sqrt(sum((d**2).sum() for d in deltas)))

    unclipped = step_norm(None)
    assert unclipped > 2e-3
    assert step_norm(1e-3) == pytest.approx(1e-3, rel=1e-2)  # clip_grad_norm_: max_norm / (norm + 1e-6)


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
