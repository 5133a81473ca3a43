"""Exported scorers as reward functions inside TRL's GRPOTrainer: a tiny random policy, on CPU, two real
optimisation steps with a BT scorer and a PRM scorer side by side. What the trainer received is checked
against our own scores of the same completions: the values our functions returned, and the per-step reward
means the trainer logged from them."""

import pytest
import torch

import rewardmodels
from rewardmodels.steps import aggregate, split_response
from tests import rl_fixtures

tiny_prm_scorer = rl_fixtures.tiny_prm_scorer  # the fixture, for this module


def recording(reward_func, calls: list):
    """`reward_func` that also keeps (prompts, completions, values) of every call."""

    def wrapper(prompts, completions, **kwargs):
        values = reward_func(prompts, completions, **kwargs)
        calls.append((list(prompts), list(completions), values))
        return values

    wrapper.__name__ = reward_func.__name__
    return wrapper


def two_step_grpo_config(tmp_path, num_generations: int):
    """Two GRPO steps of 4 completions of up to 6 tokens on CPU, a step size that moves a tiny policy."""
    from trl import GRPOConfig

    return GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        num_generations=num_generations,
        max_completion_length=6,
        max_steps=2,
        learning_rate=1e-2,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=0,
    )


@pytest.mark.slow
def test_bt_and_prm_scorers_drive_two_grpo_steps(tiny_scorer, tiny_prm_scorer, tiny_llama, tmp_path):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOTrainer

    bt, prm = rewardmodels.load_scorer(tiny_scorer), rewardmodels.load_scorer(tiny_prm_scorer)
    bt_calls, prm_calls = [], []
    bt_func = recording(bt.as_reward_func(), bt_calls)
    prm_func = recording(prm.as_reward_func(aggregation="mean"), prm_calls)
    assert bt_func.__name__ != prm_func.__name__
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    policy = AutoModelForCausalLM.from_pretrained(tiny_llama)
    before = {n: p.detach().clone() for n, p in policy.named_parameters()}
    prompts = [[{"role": "user", "content": f"Compute {a} + {b}."}] for a, b in [(1, 2), (3, 4)]]
    args = two_step_grpo_config(tmp_path, num_generations=2)
    trainer = GRPOTrainer(
        model=policy,
        reward_funcs=[bt_func, prm_func],
        args=args,
        train_dataset=Dataset.from_list([{"prompt": p} for p in prompts]),
        processing_class=tokenizer,
    )
    trainer.train()
    logged = [h for h in trainer.state.log_history if f"rewards/{bt_func.__name__}/mean" in h]
    assert len(bt_calls) == len(prm_calls) == len(logged) == 2, "one reward call and one log per step"
    for scorer, func, calls, how in ((bt, bt_func, bt_calls, None), (prm, prm_func, prm_calls, "mean")):
        for (seen_prompts, completions, values), log in zip(calls, logged, strict=True):
            assert len(values) == 4 and all(isinstance(c, list) for c in completions)  # conversational
            # what our function handed GRPO is our scorer's own score of those conversations
            if how is None:
                expected = scorer.score(seen_prompts, completions)
            else:
                steps = [split_response(c, scorer.response_step_split) for c in completions]
                expected = [aggregate(p, how) for p in scorer.score_steps(seen_prompts, steps)]
            assert values == pytest.approx(expected, abs=1e-5)
            # and the trainer received exactly those values: its logged mean is theirs (float32)
            assert log[f"rewards/{func.__name__}/mean"] == pytest.approx(sum(values) / len(values), abs=1e-5)
    changed = [n for n, p in trainer.model.named_parameters() if not torch.equal(p.detach(), before[n])]
    assert changed, "two GRPO steps with scorer rewards changed no policy parameter"


@pytest.mark.slow
def test_rlpr_reward_drives_two_grpo_steps_of_the_live_policy(tiny_llama, tmp_path):
    """RLPR's setup: the policy being trained scores its own completions against the dataset's reference
    column (`reference_probability` scorer on the live model), through two real GRPO steps."""
    import math

    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOTrainer

    from rewardmodels.scorers.reference_probability import ReferenceProbabilityScorer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    policy = AutoModelForCausalLM.from_pretrained(tiny_llama)
    scorer = ReferenceProbabilityScorer(policy, tokenizer)
    calls = []
    reward = recording(scorer.as_reward_func(reference_column="reference"), calls)
    before = {n: p.detach().clone() for n, p in policy.named_parameters()}
    rows = [{"prompt": f"Compute {a} + {b}.", "reference": str(a + b)} for a, b in [(1, 2), (3, 4)]]
    args = two_step_grpo_config(tmp_path, num_generations=4)
    trainer = GRPOTrainer(
        model=policy,
        reward_funcs=[reward],
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    trainer.train()
    logged = [h for h in trainer.state.log_history if f"rewards/{reward.__name__}/mean" in h]
    assert len(calls) == len(logged) == 2, "one reward call and one log per step"
    for (prompts, completions, values), log in zip(calls, logged, strict=True):
        assert len(values) == 4 and all(isinstance(c, str) for c in completions)
        assert len(set(prompts)) == 1 and prompts[0] in {r["prompt"] for r in rows}  # one group of 4
        assert all(v is not None and math.isfinite(v) and v >= 0.0 for v in values), values
        assert log[f"rewards/{reward.__name__}/mean"] == pytest.approx(sum(values) / len(values), abs=1e-5)
    assert any(v > 0.0 for _, _, values in calls for v in values), "every reward was clipped to 0"
    assert policy.training, "scoring gave the live policy back in training mode"
    changed = [n for n, p in trainer.model.named_parameters() if not torch.equal(p.detach(), before[n])]
    assert changed, "two GRPO steps with RLPR rewards changed no policy parameter"
