"""The PRIME-style loop (recipes/rl/prime_loop.py): its advantages (PRIME's RLOO, and the GRPO-shaped option)
by hand, and two iterations on tiny models in which the implicit PRM's policy moves between iterations, its
reference never does, and the RL policy is updated."""

import pytest
import torch

from recipes.rl.prime_loop import (
    Loop,
    advantages,
    iteration,
    leave_one_out,
    outcome_advantages,
    prime_advantages,
    returns_to_go,
    synthetic_problems,
)
from rewardmodels.sampling import SampleCache, SamplingParams
from tests.tiny import save_tiny_model


def test_advantages_by_hand():
    assert returns_to_go(torch.tensor([1.0, 2.0, 3.0])).tolist() == [6.0, 5.0, 3.0]
    assert outcome_advantages([1.0, 1.0]) == [0.0, 0.0]  # the group agrees: no outcome signal
    # group [o=1: w=(1, 2)], [o=0: w=(3,)]: A^o = +-1; G = (3, 2) and (3,); baseline (3 + 3) / 2 = 3
    got = advantages([1.0, 0.0], [torch.tensor([1.0, 2.0]), torch.tensor([3.0])], group_size=2)
    assert got[0].tolist() == pytest.approx([1.0, 0.0], abs=1e-5) and got[1].tolist() == pytest.approx(
        [-1.0], abs=1e-5
    )
    with pytest.raises(ValueError, match="groups of 2"):
        advantages([1.0], [torch.tensor([1.0])], group_size=2)


def test_prime_rloo_advantages_by_hand():
    # one group of n = 2: process rewards s_1 = (0.2, -0.1), s_2 = (0.4); outcomes 1 and 0; outcome coefficient 5
    # process RLOO: baseline (mean s_1 + mean s_2) / (n - 1) = 0.05 + 0.4 = 0.45; s * 2 - 0.45 ->
    #   (-0.05, -0.65) and (0.35)
    # outcome RLOO: o * 2 - (1 + 0) = 1 and -1, times 5 on the last token -> combined (-0.05, 4.35), (-4.65)
    # returns-to-go (4.30, 4.35) and (-4.65); whitened over the three tokens: mean 4/3, unbiased variance
    # ((4.30 - 4/3)^2 + (4.35 - 4/3)^2 + (-4.65 - 4/3)^2) / 2
    got = prime_advantages([1.0, 0.0], [torch.tensor([0.2, -0.1]), torch.tensor([0.4])], group_size=2)
    returns = [4.30, 4.35, -4.65]
    mean = 4 / 3
    std = (sum((g - mean) ** 2 for g in returns) / 2 + 1e-8) ** 0.5
    want = [(g - mean) / std for g in returns]
    assert got[0].tolist() == pytest.approx(want[:2], abs=1e-9) and got[1].tolist() == pytest.approx(want[2:])
    assert leave_one_out([torch.tensor([1.0]), torch.tensor([0.0])], 2)[0].tolist() == [
        1.0
    ]  # 1 - mean of other
    with pytest.raises(ValueError, match="groups of 2 or more"):
        prime_advantages([1.0], [torch.tensor([1.0])], group_size=1)


def test_synthetic_problems_have_their_answers():
    (question, answer), *_ = synthetic_problems(3)
    assert question and answer.lstrip("-").isdigit()


@pytest.mark.slow
def test_two_iterations_move_the_prm_and_never_its_reference(tiny_llama, tmp_path):
    from transformers import AutoTokenizer

    from rewardmodels.modeling import load_backbone
    from rewardmodels.scorers.implicit_prm import ImplicitPRMScorer

    reference_dir = save_tiny_model(tmp_path / "ref", "llama", seed=1)
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_llama))

    def lm(path):
        return load_backbone(str(path), "causal_lm", dtype="float32", device="cpu").eval()

    prm = ImplicitPRMScorer(lm(tiny_llama), lm(reference_dir).requires_grad_(False), tokenizer,
                            torch.device("cpu"), beta=0.05)  # fmt: skip
    policy = lm(tiny_llama)
    loop = Loop(policy, tokenizer, prm, torch.optim.SGD(policy.parameters(), lr=0.1),
                SampleCache(tmp_path / "samples.sqlite"), SamplingParams(max_new_tokens=6, temperature=1.0))  # fmt: skip

    def snapshot(model):
        return {n: p.detach().clone() for n, p in model.named_parameters()}

    reference0, prm0, policy0 = snapshot(prm.reference), snapshot(prm.policy), snapshot(policy)
    problems = synthetic_problems(2)
    figures = [iteration(loop, 0, problems, samples=2)]
    prm1, policy1 = snapshot(prm.policy), snapshot(policy)
    figures.append(iteration(loop, 1, problems, samples=2))
    prm2 = snapshot(prm.policy)

    def moved(a, b):
        return [n for n in a if not torch.equal(a[n], b[n])]

    assert moved(prm0, prm1) and moved(prm1, prm2), "the implicit PRM did not change between iterations"
    assert not moved(reference0, snapshot(prm.reference)), "the reference moved"
    assert moved(policy0, policy1), "the RL policy was not updated"
    assert [f["rollouts"] for f in figures] == [4, 4] and all(0 <= f["outcome_mean"] <= 1 for f in figures)
    # the second iteration sampled the updated policy afresh: its samples are new cache entries
    assert len(loop.cache) == 8
