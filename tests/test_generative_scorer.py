"""The generative verifier scorer: P(yes)/(P(yes)+P(no)) against the logits for both casings of Yes, forced
verdicts at the token budget, parallel scaling (K=1 is one plain chain, K=2 averages), sequential rounds
with a different trigger phrase each, per-step verdicts, step probabilities, and the endpoint backend
against a loopback server."""

from __future__ import annotations

import math
import shutil

import pytest
import torch

from rewardmodels.io import write_json
from rewardmodels.sampling import Completion, SamplingParams, render_prompt, sample_key, sample_seed
from rewardmodels.scorers import MANIFEST_NAME, load_scorer
from rewardmodels.scorers.capabilities import PredictsFirstError, ReportsCompute, ScoresSteps, ScoresTexts
from rewardmodels.scorers.generative import GenerativeScorer
from rewardmodels.scorers.verifier_chains import ScalingSettings
from rewardmodels.verification import load_format, verifier_prompt
from tests.openai_stub import StubServer, chat_reply

FMT = load_format()
PROBLEM, STEPS = "What is 1 + 1 and then + 2?", ["1 + 1 = 2", "2 + 2 = 5"]
GOOD_CHAIN = (
    "\nStep 1: right. The step is \\boxed{correct}\nStep 2: 2 + 2 is 4. The step is \\boxed{incorrect}\n"
    "Is the solution correct? No"
)


@pytest.fixture(scope="module")
def verifier_dir(tiny_llama, tmp_path_factory):
    """The tiny Llama as an exported generative verifier directory."""
    root = tmp_path_factory.mktemp("verifier")
    for f in tiny_llama.iterdir():
        shutil.copy(f, root / f.name)
    manifest = {"kind": "generative", "head": "causal_lm", "base_model": str(tiny_llama), "max_length": 512,
                "verification_format": FMT.to_dict(), "verifier": {"max_new_tokens": 6}}  # fmt: skip
    write_json(root / MANIFEST_NAME, manifest)
    return root


def last_token_probs(scorer, prompt) -> torch.Tensor:
    """softmax of the model's logits at the last token of the rendered prompt, computed directly."""
    ids = scorer.tokenizer(render_prompt(scorer.tokenizer, prompt), add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = scorer.generator.model(torch.tensor([ids])).logits[0, -1]
    return logits.double().softmax(-1)


def test_decision_probability_equals_the_logits_for_both_casings(verifier_dir):
    values = {}
    for choices in ("both", "trained", "lowercase"):
        scorer = load_scorer(verifier_dir, device="cpu", decision_choices=choices)
        assert isinstance(scorer, ScoresTexts | ScoresSteps | PredictsFirstError | ReportsCompute)
        # this byte-level tokenizer splits " Yes" into " ", "Y", "es": the answers part after the " " token
        assert scorer.answer_start == " "
        prompt = verifier_prompt(FMT, PROBLEM, STEPS, GOOD_CHAIN.rsplit(" ", 1)[0] + " ")
        assert prompt[1]["content"].endswith("Is the solution correct? ")
        p = last_token_probs(scorer, prompt)
        ids = {t: scorer.tokenizer.convert_tokens_to_ids(t) for t in ("Y", "yes", "N", "no")}
        yes_upper, yes_lower, no_upper, no_lower = (p[ids[t]].item() for t in ("Y", "yes", "N", "no"))
        expected = {
            "both": (yes_upper + yes_lower) / (yes_upper + yes_lower + no_upper + no_lower),
            "trained": yes_upper / (yes_upper + no_upper),
            "lowercase": yes_lower / (yes_lower + no_lower),
        }[choices]
        values[choices] = scorer.decision_scores([prompt])[0]
        assert values[choices] == pytest.approx(expected, abs=1e-6)
    assert len({round(v, 6) for v in values.values()}) == 3  # the three readings really differ


def test_forced_verdict_when_the_budget_is_hit(verifier_dir):
    scorer = load_scorer(verifier_dir, device="cpu", max_new_tokens=4, parallel=2, temperature=1.0)
    (value,) = scorer.score([PROBLEM], ["1 + 1 = 2\n\n2 + 2 = 4"])
    assert 0.0 <= value <= 1.0
    report = scorer.compute_report()
    # a random tiny model never writes the decision question in 4 tokens: both chains get it appended
    assert report["forced_verdicts"] == 2 and report["chains"] == 2 and report["solutions"] == 1
    assert report["parallel"] == 2 and report["max_new_tokens"] == 4
    # compute: the returned texts re-tokenized (the sample cache answers this second call)
    chains = scorer.chains([PROBLEM], [["1 + 1 = 2", "2 + 2 = 4"]])[0]
    texts = [t for c in chains for t in c.round_texts]
    assert report["tokens_generated"] == sum(len(scorer.tokenizer(t)["input_ids"]) for t in texts) > 0


def test_parallel_k1_is_one_plain_chain_and_k2_averages(verifier_dir):
    one = load_scorer(verifier_dir, device="cpu", parallel=1, temperature=1.0, seed=3)
    # plain scoring by hand: sample 0 of the verifier prompt through the generator, then read the logits
    prompt = verifier_prompt(FMT, PROBLEM, STEPS)
    params = SamplingParams(6, 1.0, 0.95, seed=3)
    seed = sample_seed(sample_key(one.generator.fingerprint, prompt, params, 0), 3)
    text = one.generator.generate([prompt], params, [seed])[0]
    body = text.split(FMT.decision_question)[0]
    forced = verifier_prompt(FMT, PROBLEM, STEPS, body.rstrip() + "\n" + FMT.decision_question + " ")
    p = last_token_probs(one, forced)
    ids = [one.tokenizer.convert_tokens_to_ids(t) for t in ("Y", "yes", "N", "no")]
    by_hand = (p[ids[0]] + p[ids[1]]).item() / p[ids].sum().item()
    assert one.score_solutions([PROBLEM], [STEPS])[0] == pytest.approx(by_hand, abs=1e-6)

    two = load_scorer(verifier_dir, device="cpu", parallel=2, temperature=1.0, seed=3)
    chains = two.chains([PROBLEM], [STEPS])[0]
    assert chains[0].round_texts == [text] and chains[1].round_texts != [text]  # sample 0 is shared
    each = two.decision_scores(two._scored_prompts([PROBLEM], [STEPS], [chains]))
    assert two.score_solutions([PROBLEM], [STEPS])[0] == pytest.approx(sum(each) / 2, abs=1e-9)


class ScriptedVerifier:
    """A generator whose replies are scripted per call (each round of chains is one call), which records
    every prompt; `complete` answers the decision question with fixed top log-probs."""

    fingerprint = "scripted-verifier"

    def __init__(self, rounds: list[list[str]], decision: dict[str, float] | None = None):
        self.rounds, self.calls, self.decisions = list(rounds), [], []
        self.decision = decision or {" Yes": math.log(0.6), " no": math.log(0.2), " No": math.log(0.1)}

    def build_prompt(self, problem, prefix, params):  # unused by the verifier
        raise AssertionError("the verifier builds its own prompts")

    def generate(self, prompts, params, seeds):
        self.calls.append(list(prompts))
        replies = self.rounds.pop(0)
        assert len(replies) == len(prompts)
        return list(replies)

    def complete(self, prompt, params, *, n=1, seed=None, top_logprobs=None):
        self.decisions.append(prompt)
        alternatives = [{"token": t, "logprob": lp} for t, lp in self.decision.items()]
        return [Completion(" Yes", "stop", {"content": [{"token": " Yes", "logprob": -0.5,
                                                         "top_logprobs": alternatives}]})]  # fmt: skip


def scripted_scorer(tokenizer, replies, **settings) -> tuple[GenerativeScorer, ScriptedVerifier]:
    generator = ScriptedVerifier(replies)
    return GenerativeScorer(generator, tokenizer, FMT, ScalingSettings(**settings), {}), generator


def test_sequential_rounds_append_a_different_trigger_phrase_each_round(tiny_tokenizer):
    scorer, gen = scripted_scorer(
        tiny_tokenizer,
        [["\nStep 1: fine. Is the solution correct? Yes"], [" Step 1: still fine."], [" ok\n"]],
        rounds=3,
    )
    (value,) = scorer.score_solutions([PROBLEM], [STEPS])
    assert value == pytest.approx(0.6 / 0.9)  # " Yes" / (" Yes" + " no" + " No"), casings summed
    openers = [call[0][1]["content"] for call in gen.calls]
    assert openers[0] == "Let's verify step by step:"
    assert openers[1] == "Let's verify step by step:\nStep 1: fine.\nLet me double check"
    assert openers[2] == openers[1] + " Step 1: still fine.\nLet's verify again"
    decision = gen.decisions[0][1]["content"]
    assert decision == openers[2] + " ok\nIs the solution correct?"
    report = scorer.compute_report()
    assert report["rounds_generated"] == report["rounds"] == 3
    assert report["forced_verdicts"] == 1  # the last round never asked the question
    with pytest.raises(ValueError, match="rounds=5 needs 4 trigger phrases"):
        ScalingSettings(rounds=5).check(FMT)


def test_step_verdicts_are_averaged_over_parallel_chains(tiny_tokenizer):
    other = GOOD_CHAIN.replace("\\boxed{incorrect}", "\\boxed{correct}").replace("? No", "? Yes")
    scorer, gen = scripted_scorer(tiny_tokenizer, [[GOOD_CHAIN, other]], parallel=2)
    assert scorer.score_steps([PROBLEM], [STEPS]) == [[1.0, 0.5]]
    scorer, gen = scripted_scorer(tiny_tokenizer, [[GOOD_CHAIN, "\nStep 1: cut off"]], parallel=2)
    assert scorer.predict_first_error([PROBLEM], [STEPS]) == [1]  # chain 2 has no verdicts: not an error
    assert scorer.compute_report()["forced_verdicts"] == 1
    assert len(gen.calls[0]) == 2 and gen.calls[0][0] == gen.calls[0][1]  # samples 0 and 1 of one prompt


def test_step_probabilities_read_the_label_token_after_the_brace(verifier_dir):
    scorer = load_scorer(verifier_dir, device="cpu", step_probabilities=True)
    assert scorer.label_start == "" and scorer.label_ids == [
        scorer.tokenizer.convert_tokens_to_ids("c"),
        scorer.tokenizer.convert_tokens_to_ids("i"),
    ]
    from rewardmodels.scorers.verifier_chains import Chain

    chain = Chain(GOOD_CHAIN.split("Is the solution")[0], [GOOD_CHAIN], False, 0)
    scored = scorer._scored_prompts([PROBLEM], [STEPS], [[chain]])
    (values,) = scorer._step_values([STEPS], [[chain]], scored, 4)[0:1]
    text = render_prompt(scorer.tokenizer, scored[0])
    enc = scorer.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    with torch.no_grad():
        logits = scorer.generator.model(torch.tensor([enc["input_ids"]])).logits[0]
    braces = [
        j for j, (a, b) in enumerate(enc["offset_mapping"]) if text[a:b] == "{" and text[b : b + 1] in "ci"
    ]
    assert len(braces) == 2
    expected = []
    for j in braces:
        p = logits[j].double().softmax(-1)
        expected.append((p[scorer.label_ids[0]] / (p[scorer.label_ids[0]] + p[scorer.label_ids[1]])).item())
    assert values[0] == pytest.approx(expected, abs=1e-6)


def test_the_endpoint_backend_generates_and_reads_top_logprobs(verifier_dir):
    decision = {"content": [{"token": " Yes", "logprob": -0.2, "top_logprobs": [
        {"token": " Yes", "logprob": -0.2}, {"token": " no", "logprob": -1.9},
        {"token": "Maybe", "logprob": -3.0},
    ]}]}  # fmt: skip
    replies = [(200, chat_reply(GOOD_CHAIN)), (200, chat_reply(" Yes", logprobs=[decision]))]
    with StubServer(replies) as stub:
        scorer = load_scorer(verifier_dir, endpoint=stub.url, endpoint_model="verifier", temperature=0.0)
        (value,) = scorer.score_solutions([PROBLEM], [STEPS])
    assert value == pytest.approx(math.exp(-0.2) / (math.exp(-0.2) + math.exp(-1.9)))
    (gen_path, _, gen_body), (dec_path, _, dec_body) = stub.requests
    assert gen_path == dec_path == "/v1/chat/completions"
    assert gen_body["continue_final_message"] is True and gen_body["max_tokens"] == 6
    assert dec_body["max_tokens"] == 1 and dec_body["top_logprobs"] == 20 and dec_body["logprobs"] is True
    assert dec_body["messages"][1]["content"].endswith("is \\boxed{incorrect}\nIs the solution correct?")
    assert scorer.compute_report()["backend"] == "endpoint"
    with pytest.raises(ValueError, match="local model"):
        load_scorer(verifier_dir, endpoint=stub.url, endpoint_model="v", step_probabilities=True)


def test_unknown_options_are_refused(verifier_dir):
    with pytest.raises(ValueError, match="unknown generative scorer option"):
        load_scorer(verifier_dir, device="cpu", paralel=2)
