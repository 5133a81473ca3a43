"""The `reference_probability` scorer (RLPR) against probabilities worked out by hand on a tiny random Llama:
each expected value comes from one unpadded forward of the exact token sequence and a softmax at each
reference token, token by token, while the scorer batches, pads and deduplicates. Also: its TRL reward
function, its manifest, and `/score` with references on the server."""

import json
import math

import pytest
import torch

import rewardmodels
from rewardmodels.errors import InputError
from rewardmodels.scorers.capabilities import ScoresAgainstReferences
from rewardmodels.scorers.reference_probability import ReferenceProbabilityScorer, reference_response
from rewardmodels.serving import ScoringService, ServerSettings
from tests.tiny import build_tokenizer, tiny_config

PROMPT = "Compute 4 + 8 - 2."
REFERENCE = "12345"  # several tokens of the tiny BPE (checked below), so the mean is over more than one
FALLBACK = "\nAnswer:\n"
P = PROMPT + "\n"  # plain prompt and response are joined with a newline unless the response starts with
# white space (`tokenization.join_plain`)
# (completion, what precedes the reference when the reasoning is kept, when it is not). The reference
# replaces the completion's own answer; what followed that answer is dropped.
PLAIN_CASES = [
    ("4 + 8 = 12\n12 - 2 = 10\n\\boxed{10} done", P + "4 + 8 = 12\n12 - 2 = 10\n\\boxed{", P + "\\boxed{"),
    ("so the sum is big\n\\boxed{7}", P + "so the sum is big\n\\boxed{", P + "\\boxed{"),
    ("4 + 8 = 12\n# Answer\n\n10", P + "4 + 8 = 12\n# Answer\n\n", P + "# Answer\n\n"),
    # no answer found: the whole completion is reasoning, then the fallback lead-in (which starts with white
    # space, so the no-reasoning response is joined to the prompt without a newline)
    ("hello world yes no", P + "hello world yes no" + FALLBACK, PROMPT + FALLBACK),
    # The lead-in ends in a space, which the byte-level BPE joins to the digits after it: that token covers
    # the reference's first characters, so it is a reference token (`causal.response_tokens`), and the
    # reference scored by hand is " 12345" after "... answer is".
    ("good bad\nThe answer is 3.", P + "good bad\nThe answer is", P + "The answer is"),
]
CHAT_COMPLETION = "4 + 8 = 12\n\\boxed{12}"
CHAT_HEAD = f"<|im_start|>user\n{PROMPT}<|im_end|>\n<|im_start|>assistant\n"  # tests/tiny.py CHAT_TEMPLATE


@pytest.fixture(scope="module")
def tiny_lm():
    from transformers import LlamaForCausalLM

    tokenizer = build_tokenizer()
    torch.manual_seed(0)
    return LlamaForCausalLM(tiny_config("llama", len(tokenizer), tokenizer.pad_token_id)).eval(), tokenizer


def hand_mean(model, tokenizer, context: str, reference: str, log: bool, chat: bool = False) -> float:
    """(1/T) sum_t p_t (or log p_t) over the reference's T tokens, p_t = softmax(logits at the position
    before token t)[token t], from one forward of context + reference alone, in float64."""
    special = not chat  # a chat rendering carries its special tokens in the text
    context_ids = tokenizer(context, add_special_tokens=special)["input_ids"]
    reference_ids = tokenizer(reference, add_special_tokens=False)["input_ids"]
    ids = context_ids + reference_ids
    # precondition: no token of context + reference spans the boundary, so these are the scored tokens
    assert tokenizer(context + reference, add_special_tokens=special)["input_ids"] == ids
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].double()
    terms = []
    for k, token in enumerate(reference_ids):
        p = torch.softmax(logits[len(context_ids) + k - 1], dim=-1)[token].item()
        terms.append(math.log(p) if log else p)
    return sum(terms) / len(terms)


def hand_pairs(model, tokenizer, log: bool) -> list[tuple[float, float]]:
    pairs = []
    for _, with_context, without_context in PLAIN_CASES:
        reference = " " + REFERENCE if with_context.endswith("is") else REFERENCE
        pairs.append(
            tuple(
                hand_mean(model, tokenizer, context, reference, log)
                for context in (with_context, without_context)
            )
        )
    chat_with = CHAT_HEAD + "4 + 8 = 12\n\\boxed{"
    chat_without = CHAT_HEAD + "\\boxed{"
    pairs.append(
        tuple(hand_mean(model, tokenizer, c, REFERENCE, log, chat=True) for c in (chat_with, chat_without))
    )
    return pairs


def scorer_inputs():
    prompts = [PROMPT] * len(PLAIN_CASES) + [[{"role": "user", "content": PROMPT}]]
    completions = [c for c, _, _ in PLAIN_CASES] + [[{"role": "assistant", "content": CHAT_COMPLETION}]]
    return prompts, completions, [REFERENCE] * len(completions)


def test_the_reference_takes_the_place_of_the_completions_answer():
    assert reference_response("a\n\\boxed{7} ok", "9") == ("a\n\\boxed{9", "a\n", "\\boxed{")
    assert reference_response("x. The answer is 7.", "9") == ("x. The answer is 9", "x. ", "The answer is ")
    assert reference_response("no answer", "9", "\nSo: ") == ("no answer\nSo: 9", "no answer", "\nSo: ")


@pytest.mark.parametrize("log_probability", [False, True])
def test_reward_is_the_clipped_difference_of_hand_computed_mean_probabilities(tiny_lm, log_probability):
    model, tokenizer = tiny_lm
    assert len(tokenizer(REFERENCE, add_special_tokens=False)["input_ids"]) >= 2
    expected = hand_pairs(model, tokenizer, log_probability)
    scorer = ReferenceProbabilityScorer(
        model, tokenizer, log_probability=log_probability, fallback_lead_in=FALLBACK
    )
    prompts, completions, references = scorer_inputs()
    # batch_size 3: sequences of different lengths share padded batches
    got = scorer.reference_probabilities(prompts, completions, references, batch_size=3)
    for (w, wo), (hand_w, hand_wo) in zip(got, expected, strict=True):
        assert w == pytest.approx(hand_w, abs=1e-6) and wo == pytest.approx(hand_wo, abs=1e-6)
    rewards = scorer.score_with_references(prompts, completions, references, batch_size=3)
    assert rewards == pytest.approx([max(0.0, w - wo) for w, wo in expected], abs=1e-6)
    # the clip is exercised: some reasonings lower the reference's probability (reward 0), some raise it
    assert any(w < wo for w, wo in expected) and any(w > wo for w, wo in expected)
    assert all(r == 0.0 for r, (w, wo) in zip(rewards, expected, strict=True) if w < wo)
    unclipped = ReferenceProbabilityScorer(
        model, tokenizer, log_probability=log_probability, clip=False, fallback_lead_in=FALLBACK
    )
    signed = unclipped.score_with_references(prompts, completions, references, batch_size=8)
    assert signed == pytest.approx([w - wo for w, wo in expected], abs=1e-6)
    if not log_probability:
        assert all(0.0 < w < 1.0 and 0.0 < wo < 1.0 for w, wo in expected)


def test_missing_references_are_unscored_and_a_live_policy_keeps_training(tiny_lm):
    model, tokenizer = tiny_lm
    scorer = ReferenceProbabilityScorer(model, tokenizer)
    model.train()
    try:
        values = scorer.score_with_references([PROMPT] * 3, ["\\boxed{1}"] * 3, [None, "", 12])
        assert model.training, "scoring restores the model's training mode"
    finally:
        model.eval()
    assert math.isnan(values[0]) and math.isnan(values[1]) and values[2] >= 0.0
    # an int reference is its str(): the same reward as "12"
    assert values[2] == pytest.approx(
        scorer.score_with_references([PROMPT], ["\\boxed{1}"], ["12"])[0], abs=1e-9
    )
    with pytest.raises(ValueError, match="pass references="):
        scorer.score([PROMPT], ["\\boxed{1}"])
    assert isinstance(scorer, ScoresAgainstReferences)


def test_reward_function_reads_the_reference_column(tiny_lm):
    model, tokenizer = tiny_lm
    scorer = ReferenceProbabilityScorer(model, tokenizer, fallback_lead_in=FALLBACK)
    prompts, completions, references = scorer_inputs()
    reward = scorer.as_reward_func(reference_column="solution")
    assert reward.__name__ == "reference_probability_reward"
    got = reward(prompts=prompts, completions=completions, completion_ids=None, solution=references,
                 trainer_state=None, log_metric=print)  # fmt: skip
    assert got == pytest.approx(scorer.score_with_references(prompts, completions, references), abs=1e-9)
    assert reward(prompts=[PROMPT], completions=["x"], solution=[None]) == [None]
    with pytest.raises(ValueError, match=r"no 'solution' column .* its columns: answer, prompt_id \("):
        reward(
            prompts=[PROMPT],
            completions=["x"],
            answer=["1"],
            prompt_id=[0],
            trainer_state=None,
            log_extra=None,
        )


def test_manifest_loads_the_scorer_and_bad_options_are_named(tiny_llama, tmp_path, tiny_lm):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory = tmp_path / "rlpr"
    directory.mkdir()
    manifest = {
        "kind": "reference_probability",
        "model": str(tiny_llama),
        "log_probability": True,
        "clip": False,
    }
    (directory / "reward_model.json").write_text(json.dumps(manifest))
    scorer = rewardmodels.load_scorer(directory, device="cpu")
    assert isinstance(scorer, ReferenceProbabilityScorer) and scorer.log_probability and not scorer.clip
    direct = ReferenceProbabilityScorer(
        AutoModelForCausalLM.from_pretrained(tiny_llama), AutoTokenizer.from_pretrained(tiny_llama),
        log_probability=True, clip=False,
    )  # fmt: skip
    args = ([PROMPT, PROMPT], ["4 + 8 = 12\n\\boxed{12}", "no idea"], ["10", "10"])
    assert scorer.score_with_references(*args) == pytest.approx(direct.score_with_references(*args), abs=1e-6)
    (directory / "reward_model.json").write_text(json.dumps({**manifest, "clip": "yes"}))
    with pytest.raises(InputError, match=r"reward_model.json, field 'clip': must be bool, got 'yes'"):
        rewardmodels.load_scorer(directory)


def test_score_endpoint_takes_one_reference_per_response(tiny_lm):
    from tests.test_serve import call, serving

    model, tokenizer = tiny_lm
    scorer = ReferenceProbabilityScorer(model, tokenizer, clip=False)
    prompts, responses = [PROMPT, PROMPT], ["4 + 8 = 12\n\\boxed{12}", "\\boxed{3}"]
    expected = scorer.score_with_references(prompts, responses, ["10", "11"])
    service = ScoringService(scorer, ServerSettings(max_batch_size=1))  # one item per forward
    body = {"prompts": prompts, "responses": responses, "references": ["10", "11"]}
    assert service.answer_now("score", body)["scores"] == pytest.approx(expected, abs=1e-6)
    with serving(scorer) as (url, _):
        status, reply, _ = call(url + "/score", body)
        assert status == 200 and reply["scores"] == pytest.approx(expected, abs=1e-6)
        for bad, message in [
            ({"prompts": prompts, "responses": responses}, "missing field 'references'"),
            ({**body, "references": ["10"]}, "2 prompts but 1 references"),
            ({**body, "references": ["10", 11]}, "references[1] must be a string, got a number"),
            ({**body, "references": ["10", " "]}, "references[1] is empty"),
        ]:
            status, reply, _ = call(url + "/score", bad)
            assert status == 400 and message in reply["error"], reply
        status, reply, _ = call(url + "/get_reward", {"prompts": prompts, "responses": responses})
        assert status == 400 and "POST /score with" in reply["error"]
        # TRL through the server: the dataset's reference column travels as /score's references
        from rewardmodels.serving.client import remote_reward_func

        remote = remote_reward_func(url, reference_column="answer", asynchronous=False, retries=0)
        got = remote(prompts=prompts, completions=responses, answer=["10", "11"], trainer_state=None)
        assert got == pytest.approx(expected, abs=1e-6)
        with pytest.raises(ValueError, match="no 'answer' column to send as references; columns: reference"):
            remote(prompts=prompts, completions=responses, reference=["10", "11"], trainer_state=None)
