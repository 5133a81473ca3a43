"""Implicit PRM: rewards, token values and step rewards against the two models' logits; the scorer's
aggregations, truncation and reference checks; the segmented kernel's plan across inference and gradient
passes."""

from __future__ import annotations

import inspect
import math

import pytest
import torch

from rewardmodels.causal.implicit_rewards import step_values, token_values
from rewardmodels.causal.response_tokens import EncodedResponse
from rewardmodels.steps import aggregate_steps, split_points
from tests.tiny import save_tiny_model

BETA = 0.5
PROMPT = "Compute 3 + 4 - 2. Work it out one step at a time."
STEPS = ["3 + 4 = 7", "7 - 2 = 5", "Answer: 5"]


@pytest.fixture(scope="module")
def tiny_reference(tmp_path_factory):
    """A second tiny Llama with the same tokenizer and other weights (seed 1)."""
    return save_tiny_model(tmp_path_factory.mktemp("tiny-ref"), "llama", seed=1)


def load_lm(path, attn="sdpa"):
    from rewardmodels.modeling import load_backbone

    return load_backbone(str(path), "causal_lm", device="cpu", attn_implementation=attn).eval()


def direct_logprobs(model, ids: list[int], start: int) -> torch.Tensor:
    """log_softmax of one unbatched forward, at the response tokens start .. len - 1."""
    x = torch.tensor([ids])
    with torch.no_grad():
        logp = model(x).logits[0, :-1].float().log_softmax(-1).gather(-1, x[0, 1:, None]).squeeze(-1)
    return logp[start - 1 :].double()


def make_scorer(policy_dir, reference_dir, **kwargs):
    from transformers import AutoTokenizer

    from rewardmodels.scorers.implicit_prm import ImplicitPRMScorer

    policy = load_lm(policy_dir)
    reference = load_lm(reference_dir) if reference_dir is not None else None
    tokenizer = AutoTokenizer.from_pretrained(str(policy_dir))
    options = {"beta": BETA, "step_separator": "\n", "use_chat_template": False, **kwargs}
    return ImplicitPRMScorer(policy, reference, tokenizer, torch.device("cpu"), **options)


# ---- pure pieces -------------------------------------------------------------------------------------------


def test_values_and_aggregations_by_hand():
    w = torch.tensor([0.5, -1.0, 0.25, 2.0, -0.5], dtype=torch.float64)
    assert token_values(w).tolist() == [0.5, -0.5, -0.25, 1.75, 1.25]
    # steps [0, 2), [2, 4); the last token (an EOS) belongs to no step
    assert step_values(w, [2, 4]).tolist() == [-0.5, 1.75]
    assert aggregate_steps([-0.5, 2.25], 1.25, "min") == -0.5
    assert aggregate_steps([-0.5, 2.25], 1.25, "sum") == 1.75
    assert aggregate_steps([-0.5, 2.25], 1.25, "last") == 1.25
    assert aggregate_steps([math.nan, 2.25], 1.25, "min") == 2.25
    assert math.isnan(aggregate_steps([math.nan], 1.25, "sum"))
    # min_q: the smallest step value q_k = r_1 + ... + r_k; steps (1, -3, 0.5) give q = (1, -2, -1.5), so -2,
    # where min r_k is -3; an unscored step adds nothing to q
    assert aggregate_steps([1.0, -3.0, 0.5], 0.0, "min_q") == -2.0
    assert aggregate_steps([1.0, math.nan, -3.0, 0.5], 0.0, "min_q") == -2.0
    assert aggregate_steps([1.0, -3.0, 0.5], 0.0, "min") == -3.0
    with pytest.raises(ValueError, match="aggregation must be one of"):
        aggregate_steps([1.0], 1.0, "prod")


def test_defaults_follow_the_reference():
    from rewardmodels.causal.implicit_rewards import DEFAULT_AGGREGATION, DEFAULT_STEP_SCORES
    from rewardmodels.implicit_prm.config import ImplicitPRMConfig
    from rewardmodels.scorers.implicit_prm import ImplicitPRMScorer

    assert (DEFAULT_AGGREGATION, DEFAULT_STEP_SCORES) == ("min", "sigmoid_q")
    fields = ImplicitPRMConfig.__dataclass_fields__
    assert fields["aggregation"].default == "min" and fields["step_scores"].default == "sigmoid_q"
    params = inspect.signature(ImplicitPRMScorer.__init__).parameters
    assert params["aggregation"].default == "min" and params["step_scores"].default == "sigmoid_q"


def test_split_points_keep_the_split_with_the_step_it_ends():
    text = "a = 1\n\nb = 2\n\n\n\nAnswer: 2\n\n"
    # "a = 1\n\n" ends at 7; the empty piece between the two middle splits joins the next step; trailing
    # splits belong to the last step
    assert split_points(text, "\n\n") == [7, 14, len(text)]
    assert split_points("one step", "\n\n") == [8]
    assert split_points("", "\n\n") == [0]


# ---- formulas through two tiny models ----------------------------------------------------------------------


def test_rewards_values_and_step_rewards_equal_the_formulas_from_both_models_logits(
    tiny_llama, tiny_reference
):
    scorer = make_scorer(tiny_llama, tiny_reference, aggregation="min", step_scores="reward")
    text = "\n".join(STEPS)
    [encoded] = scorer.encode([PROMPT], [text])
    start = encoded.response_start
    want_w = BETA * (
        direct_logprobs(scorer.policy, encoded, start) - direct_logprobs(scorer.reference, encoded, start)
    )
    [w] = scorer.token_rewards_ids([encoded])
    torch.testing.assert_close(w, want_w, rtol=0, atol=1e-6)
    assert w.abs().max() > 1e-3  # two different models: the ratio is not 0
    # step boundaries from the offsets: step k ends after the separator that ends it
    bounds = encoded.step_boundaries
    assert len(bounds) == 3 and bounds[-1] <= len(w)
    q = torch.cumsum(want_w, 0)
    want_steps = [float(q[bounds[0] - 1]), float(q[bounds[1] - 1] - q[bounds[0] - 1]),
                  float(q[bounds[2] - 1] - q[bounds[1] - 1])]  # fmt: skip
    [steps] = scorer.score_steps([PROMPT], [STEPS])
    assert steps == pytest.approx(want_steps, abs=1e-6)
    scorer.step_scores = "sigmoid_q"
    [values] = scorer.score_steps([PROMPT], [STEPS])
    assert values == pytest.approx([1 / (1 + math.exp(-float(q[b - 1]))) for b in bounds], abs=1e-6)
    # score(): min / sum of step rewards, or q at the final token = r(y)
    assert scorer.score([PROMPT], [text]) == pytest.approx([min(want_steps)], abs=1e-6)
    scorer.aggregation = "sum"
    assert scorer.score([PROMPT], [text]) == pytest.approx([sum(want_steps)], abs=1e-6)
    scorer.aggregation = "last"
    assert scorer.score([PROMPT], [text]) == pytest.approx([float(want_w.sum())], abs=1e-6)
    scorer.aggregation = "min_q"
    q_steps = [sum(want_steps[: k + 1]) for k in range(3)]
    assert scorer.score([PROMPT], [text]) == pytest.approx([min(q_steps)], abs=1e-6)
    # the defaults: min over step rewards, sigmoid(q) per step
    default = make_scorer(tiny_llama, tiny_reference)
    assert default.score([PROMPT], [text]) == pytest.approx([min(want_steps)], abs=1e-6)
    assert default.score_steps([PROMPT], [STEPS])[0] == pytest.approx(values, abs=1e-9)


def test_groups_tree_equals_sequence_by_sequence(tiny_llama, tiny_reference):
    scorer = make_scorer(tiny_llama, tiny_reference, aggregation="min")
    responses = ["\n".join(STEPS), "3 + 4 = 8\n8 - 2 = 6\nAnswer: 6", "Answer: 5"]
    groups = [scorer.encode([PROMPT] * 3, responses), scorer.encode(["What is 2 + 2?"], ["4"])]
    flat = scorer.score_ids([s for g in groups for s in g])
    tree = scorer.score_groups_ids(groups)
    assert [v for g in tree for v in g] == pytest.approx(flat, abs=1e-6)
    assert len({round(v, 6) for v in flat}) == 4


def test_reference_free_and_same_weights(tiny_llama):
    free = make_scorer(tiny_llama, None)
    [encoded] = free.encode([PROMPT], ["\n".join(STEPS)])
    [w] = free.token_rewards_ids([encoded])
    torch.testing.assert_close(
        w, BETA * direct_logprobs(free.policy, encoded, encoded.response_start), atol=1e-6, rtol=0
    )
    same = make_scorer(tiny_llama, tiny_llama)
    same.reference = same.policy
    assert same.score([PROMPT], ["\n".join(STEPS)]) == [0.0]


def test_score_steps_truncation_marks_steps_beyond_max_length_nan(tiny_llama, tiny_reference):
    scorer = make_scorer(tiny_llama, tiny_reference)
    [full] = scorer.score_steps([PROMPT], [STEPS])
    [encoded] = scorer.encode([PROMPT], ["\n".join(STEPS)])
    cut_at = encoded.response_start + encoded.step_boundaries[1] + 1  # the first two steps and a token
    scorer.max_length = cut_at
    [cut] = scorer.score_steps([PROMPT], [STEPS])
    assert cut[:2] == pytest.approx(full[:2], abs=1e-6) and math.isnan(cut[2])
    assert scorer.unscored_steps == 1
    scorer.max_length = 4  # not even the prompt fits
    assert all(math.isnan(v) for v in scorer.score_steps([PROMPT], [STEPS])[0])


def test_keep_first_tokens():
    from rewardmodels.scorers.implicit_prm import keep_first_tokens

    encoded = EncodedResponse(list(range(10)), 3, [2, 5, 7])
    assert keep_first_tokens(encoded, 10) == (encoded, 3)
    cut, kept = keep_first_tokens(encoded, 8)  # room for 5 response tokens: steps ending at 2 and 5
    assert list(cut) == list(range(8)) and cut.step_boundaries == (2, 5) and kept == 2
    assert keep_first_tokens(encoded, 3)[1] == 0


# ---- the segmented kernel's plan ---------------------------------------------------------------------------


def test_a_plan_built_in_inference_mode_serves_a_later_gradient_pass(tiny_llama):
    from rewardmodels.causal.logprobs import packed_batch, response_logprobs, sum_logprobs
    from rewardmodels.packing import PackUnit

    model = load_lm(tiny_llama)
    ids = [4, 90, 88, 268, 204, 77, 78]
    unit = PackUnit(ids[:5], [ids[5:], [40, 41, 42]], [[4, 5], [4, 5, 6]], [0, 1])
    batch = packed_batch([unit], pad_token_id=1, attention="segments")
    with torch.inference_mode():  # the reference's pass builds the kernel's plan on this batch
        before = response_logprobs(model, batch)
    model.train()
    policy = response_logprobs(model, batch)  # failed with "Inference tensors cannot be saved for backward"
    sum(sum_logprobs(lp) for lp in policy).backward()
    assert model.model.layers[0].self_attn.q_proj.weight.grad.abs().sum() > 0
    for b, p in zip(before, policy, strict=True):
        torch.testing.assert_close(b, p.detach())


# ---- loading: the reference's presence and fingerprint -----------------------------------------------------


def write_scorer_dir(tmp_path, policy_dir, reference, fingerprint=None, ref_free=False):
    import shutil

    from rewardmodels.io import write_json

    out = tmp_path / "scorer"
    shutil.copytree(policy_dir, out)
    write_json(out / "reward_model.json", {
        "kind": "implicit_prm", "head": "causal_lm", "beta": BETA, "reference": reference,
        "reference_fingerprint": fingerprint, "ref_free": ref_free, "step_separator": "\n",
        "use_chat_template": False, "max_length": 256, "aggregation": "min",
    })  # fmt: skip
    return out


def test_load_scorer_checks_the_reference(tiny_llama, tiny_reference, tmp_path):
    from rewardmodels.causal.fingerprints import model_fingerprint
    from rewardmodels.errors import InputError
    from rewardmodels.scorers import load_scorer

    good = model_fingerprint(str(tiny_reference))
    assert good != model_fingerprint(str(tiny_llama))
    scorer = load_scorer(
        write_scorer_dir(tmp_path / "a", tiny_llama, str(tiny_reference), good), device="cpu"
    )
    assert scorer.aggregation == "min" and scorer.reference is not None
    direct = make_scorer(tiny_llama, tiny_reference, aggregation="min")
    text = "\n".join(STEPS)
    assert scorer.score([PROMPT], [text]) == pytest.approx(direct.score([PROMPT], [text]), abs=1e-9)
    assert (
        load_scorer(scorer_dir := tmp_path / "a" / "scorer", device="cpu", aggregation="last").aggregation
        == "last"
    )
    with pytest.raises(InputError, match="reference_fingerprint.*other weights"):
        load_scorer(write_scorer_dir(tmp_path / "b", tiny_llama, str(tiny_llama), good), device="cpu")
    with pytest.raises(InputError, match="reference model '/nonexistent/ref' is missing"):
        load_scorer(write_scorer_dir(tmp_path / "c", tiny_llama, "/nonexistent/ref", good), device="cpu")
    free = load_scorer(write_scorer_dir(tmp_path / "d", tiny_llama, None, ref_free=True), device="cpu")
    assert free.reference is None and len(free.score([PROMPT], [text])) == 1
    # a scorer trained against a reference, scored reference-free on request (the reference is not loaded)
    trained = write_scorer_dir(tmp_path / "e", tiny_llama, "/nonexistent/ref", good)
    dropped = load_scorer(trained, device="cpu", ref_free=True)
    assert dropped.reference is None and dropped.score([PROMPT], [text]) == free.score([PROMPT], [text])
    # an explicit override wins over the manifest's
    assert load_scorer(scorer_dir, device="cpu", reference=str(tiny_reference)).reference is not None


def test_capabilities(tiny_llama, tiny_reference):
    from rewardmodels.scorers.capabilities import (
        PrefersBatchSize,
        ReportsTruncation,
        RunsOnDevice,
        ScoresGroups,
        ScoresSteps,
        ScoresTexts,
        ScoresTokenIds,
    )

    scorer = make_scorer(tiny_llama, tiny_reference)
    for protocol in (ScoresTexts, ScoresTokenIds, ScoresGroups, ScoresSteps, ReportsTruncation, RunsOnDevice,
                     PrefersBatchSize):  # fmt: skip
        assert isinstance(scorer, protocol), protocol.__name__


def test_reward_func_returns_the_scores(tiny_llama, tiny_reference):
    scorer = make_scorer(tiny_llama, tiny_reference, aggregation="min")
    completions = ["\n".join(STEPS), "Answer: 6"]
    reward = scorer.as_reward_func()
    assert reward.__name__ == "implicit_prm_reward"
    got = reward(prompts=[PROMPT] * 2, completions=completions, completion_ids=[[1], [2]])
    assert got == pytest.approx(scorer.score([PROMPT] * 2, completions), abs=1e-9)


def test_target_logprobs_and_their_gradient_equal_log_softmax_gather(monkeypatch):
    import rewardmodels.causal.logprobs as logprobs

    monkeypatch.setattr(logprobs, "LOG_SOFTMAX_ROWS", 3)  # several chunks, the last one short
    torch.manual_seed(0)
    logits = (torch.randn(7, 50) * 4).requires_grad_(True)
    targets = torch.randint(0, 50, (7,))
    weights = torch.randn(7)
    got = logprobs.TargetLogprobs.apply(logits, targets)
    (got * weights).sum().backward()
    fast = logits.grad.clone()
    logits.grad = None
    want = logits.log_softmax(-1).gather(-1, targets[:, None]).squeeze(-1)
    (want * weights).sum().backward()
    torch.testing.assert_close(got, want, rtol=0, atol=2e-6)
    torch.testing.assert_close(fast, logits.grad, rtol=0, atol=1e-6)
    assert got.dtype == torch.float32 and fast.abs().max() > 0.1
    half = logits.detach().bfloat16().requires_grad_(True)  # a bf16 head: float32 values, bf16 gradient
    logprobs.TargetLogprobs.apply(half, targets).sum().backward()
    assert half.grad.dtype == torch.bfloat16
