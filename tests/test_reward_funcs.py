"""Scorers as TRL reward functions (`rewardmodels.scorers.reward_funcs`): the call contract, the options and
their order, options refused up front, the async variant, and every exported kind through `as_reward_func`."""

import asyncio
import math

import pytest

import rewardmodels
from rewardmodels.scorers.reward_funcs import clip_value, make_reward_func, parse_clip, reward_function
from tests import rl_fixtures
from tests.rl_fixtures import LengthScorer, StepScorer

tiny_prm_scorer = rl_fixtures.tiny_prm_scorer  # the fixture, for this module

PROMPTS = ["Compute 2 + 3.", "Compute 9 - 4."]
RESPONSES = ["2 + 3 = 5\n\nThe answer is 5.", "9 - 4 = 1\n\nThe answer is 1."]


def test_clip_bounds_by_hand():
    assert parse_clip(None) is None
    assert parse_clip(2) == (-2.0, 2.0)
    assert parse_clip((None, 1)) == (None, 1.0)
    assert [clip_value(v, (-2.0, 2.0)) for v in (-5.0, 0.5, 3.0)] == [-2.0, 0.5, 2.0]
    assert clip_value(-7.0, (None, 1.0)) == -7.0 and clip_value(7.0, (None, 1.0)) == 1.0
    assert math.isnan(clip_value(math.nan, (0.0, 1.0)))
    for bad, match in ((0, "must be > 0"), ((3, 1), "lo 3.0 is above hi 1.0"), ((1, 2, 3), "give c or")):
        with pytest.raises(ValueError, match=match):
            parse_clip(bad)


def test_trl_signature_plain_and_conversational():
    f = reward_function(LengthScorer(), name="length_rm")
    assert f.__name__ == "length_rm"
    # TRL passes completion_ids, every dataset column and trainer_state as keywords; none changes a score
    plain = f(prompts=PROMPTS, completions=["abc", "abcdefgh"], completion_ids=[[1], [2]], answer=["5", "5"])
    chat = f(
        prompts=[[{"role": "user", "content": p}] for p in PROMPTS],
        completions=[[{"role": "assistant", "content": c}] for c in ("abc", "abcdefgh")],
        trainer_state=None,
    )
    assert plain == chat == [3.0, 8.0]
    assert f(prompts=[], completions=[]) == []
    with pytest.raises(ValueError, match="2 prompts but 1 completions"):
        f(prompts=PROMPTS, completions=["x"])


def test_options_apply_in_order_normalize_then_clip():
    # lengths 4 and 30 -> normalised (4-10)/2 = -3 and (30-10)/2 = 10 -> clipped to [-2, 5]
    f = reward_function(LengthScorer(), normalize=True, clip=(-2, 5))
    assert f(PROMPTS, ["a" * 4, "a" * 30]) == [-2.0, 5.0]
    assert reward_function(LengthScorer(), clip=6)(PROMPTS, ["a" * 4, "a" * 30]) == [4.0, 6.0]


def test_step_aggregation_and_unscorable_samples_are_none():
    # steps "one two" (p = 1/3) and "three" (p = 1/2): min 1/3, prod 1/6, last 1/2, mean 5/12
    completion = "one two\n\nthree"
    expected = {"min": 1 / 3, "prod": 1 / 6, "last": 1 / 2, "mean": 5 / 12}
    for how, value in expected.items():
        got = reward_function(StepScorer(), aggregation=how)(["p", "p"], [completion, "CUT\n\nCUT"])
        assert got[0] == pytest.approx(value, abs=1e-12)
        assert got[1] is None  # every step unscored: NaN, returned as TRL's "not scored"
    assert reward_function(StepScorer(), aggregation="prod", clip=(0.2, None))(["p"], [completion]) == [0.2]


def test_options_a_scorer_cannot_honour_are_refused_when_made():
    with pytest.raises(ValueError, match="normalize: this steps scorer has no reward statistics"):
        reward_function(StepScorer(), normalize=True)
    with pytest.raises(ValueError, match="aggregation: this length scorer does not score steps"):
        reward_function(LengthScorer(), aggregation="min")
    with pytest.raises(ValueError, match="aggregation must be one of"):
        reward_function(StepScorer(), aggregation="max")
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        reward_function(LengthScorer(), batch_size=0)


def test_async_variant_is_a_coroutine_function_trl_awaits():
    from trl.trainer.utils import is_async_callable

    f = reward_function(LengthScorer(), asynchronous=True, normalize=True)
    assert is_async_callable(f) and not is_async_callable(reward_function(LengthScorer()))

    async def both():  # as TRL runs its async reward functions: gathered on one loop
        return await asyncio.gather(f(PROMPTS, ["a" * 12, "a"]), f(PROMPTS, ["a" * 14, "a" * 10]))

    assert asyncio.run(both()) == [[1.0, -4.5], [2.0, 0.0]]


def test_plain_callable_adapter_checks_its_score_count():
    f = make_reward_func(lambda p, c: [1.0], "broken")
    with pytest.raises(ValueError, match="broken: 1 scores for 2 completions"):
        f(PROMPTS, RESPONSES)
    assert make_reward_func(lambda p, c: [math.nan, 2], "ok")(PROMPTS, RESPONSES) == [None, 2.0]


def test_bt_reward_func_equals_score_normalised_and_clipped(tiny_scorer):
    scorer = rewardmodels.load_scorer(tiny_scorer)
    raw = scorer.score(PROMPTS, RESPONSES)
    mean, std = scorer.manifest["reward_mean"], scorer.manifest["reward_std"]
    f = scorer.as_reward_func(normalize=True, clip=(-1.0, 1.0), batch_size=1)
    expected = [min(max((r - mean) / std, -1.0), 1.0) for r in raw]
    assert f(prompts=PROMPTS, completions=RESPONSES, completion_ids=None) == pytest.approx(expected, abs=1e-5)


def test_prm_reward_func_aggregates_the_scorers_step_scores(tiny_prm_scorer):
    scorer = rewardmodels.load_scorer(tiny_prm_scorer)
    steps = [r.split("\n\n") for r in RESPONSES]
    per_step = scorer.score_steps(PROMPTS, steps)
    assert scorer.as_reward_func()(PROMPTS, RESPONSES) == pytest.approx(
        scorer.score(PROMPTS, RESPONSES), abs=1e-6
    )
    got = scorer.as_reward_func(aggregation="last")(PROMPTS, RESPONSES)
    assert got == pytest.approx([p[-1] for p in per_step], abs=1e-6)
    with pytest.raises(ValueError, match="normalize: this prm scorer has no reward statistics"):
        scorer.as_reward_func(normalize=True)


@pytest.fixture(scope="module")
def two_tiny_lms(tiny_llama, tmp_path_factory):
    """(policy, reference, tokenizer): the tiny Llama and a differently seeded one of its shape."""
    from transformers import AutoTokenizer

    from rewardmodels.modeling import load_backbone
    from tests.tiny import save_tiny_model

    reference_dir = save_tiny_model(tmp_path_factory.mktemp("tiny-ref"), "llama", seed=1)

    def lm(path):
        return load_backbone(str(path), "causal_lm", dtype="float32", device="cpu").eval()

    return lm(tiny_llama), lm(reference_dir), AutoTokenizer.from_pretrained(str(tiny_llama))


def test_dpo_and_implicit_prm_reward_funcs_equal_their_scores(two_tiny_lms):
    import torch

    from rewardmodels.scorers.dpo import DPOScorer
    from rewardmodels.scorers.implicit_prm import ImplicitPRMScorer

    policy, reference, tokenizer = two_tiny_lms
    cpu = torch.device("cpu")
    for scorer in (DPOScorer(policy, reference, tokenizer, cpu, beta=0.1),
                   ImplicitPRMScorer(policy, reference, tokenizer, cpu, beta=0.05)):  # fmt: skip
        raw = scorer.score(PROMPTS, RESPONSES)
        assert raw[0] != raw[1]
        got = scorer.as_reward_func(clip=(min(raw), None))(PROMPTS, RESPONSES, completion_ids=None)
        assert got == pytest.approx(raw, abs=1e-9), scorer.kind
        assert scorer.as_reward_func(clip=(None, min(raw)))(PROMPTS, RESPONSES) == pytest.approx(
            [min(raw)] * 2
        )


def test_generative_verifier_reward_func_equals_its_score(tiny_tokenizer):
    from rewardmodels.scorers.generative import GenerativeScorer
    from rewardmodels.scorers.verifier_chains import ScalingSettings
    from tests.test_generative_eval import FMT, RuleVerifier

    scorer = GenerativeScorer(RuleVerifier(), tiny_tokenizer, FMT, ScalingSettings(parallel=1), {})
    responses = ["2 + 3 = 5\n\nThe answer is 5.", "2 + 3 = 6 WRONG\n\nThe answer is 6."]
    raw = scorer.score(PROMPTS[:1] * 2, responses)
    assert raw == pytest.approx([0.9, 0.1])  # P(yes) of the rule verifier
    assert scorer.as_reward_func(clip=(0.2, 0.8))(PROMPTS[:1] * 2, responses) == pytest.approx([0.8, 0.2])
