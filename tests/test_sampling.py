"""The sampling seam: the local transformers backend on a tiny llama, the HTTP backend against a scripted
loopback server, the per-sample seeds, and the cache key (rendered prompt in it; old cache files refused)."""

import sqlite3
import time

import pytest
import torch

from rewardmodels.sampling import (
    EndpointError,
    EndpointGenerator,
    HFGenerator,
    SampleCache,
    Sampler,
    SamplingParams,
    SeededNucleusSampler,
    add_sampling_arguments,
    api_key_from_env,
    cut_at_stop,
    math_prompt,
    open_sampler,
    sample_key,
    sample_seed,
    top_logprobs,
)
from rewardmodels.sampling.core import DEFAULT_INSTRUCTION
from tests.openai_stub import StubServer, chat_reply, completions_reply

GREEDY = SamplingParams(max_new_tokens=8, temperature=0.0)
SAMPLED = SamplingParams(max_new_tokens=8, temperature=1.0, top_p=1.0)


@pytest.fixture(scope="module")
def tiny_generator(tiny_llama):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    return HFGenerator(model, AutoTokenizer.from_pretrained(tiny_llama), "tiny", batch_size=4)


# ---- local backend -----------------------------------------------------------------------------------------


def test_left_padding_a_prompt_beside_a_longer_one_keeps_its_greedy_output(tiny_generator):
    short, long = "hello world", "the question is what is good and what is bad, please answer the human"
    tok = tiny_generator.tokenizer
    assert len(tok(long)["input_ids"]) > len(tok(short)["input_ids"]) + 5  # the short row really is padded
    alone = tiny_generator.generate([short], GREEDY, [0])
    together = tiny_generator.generate([long, short], GREEDY, [0, 0])
    assert alone[0] and together[1] == alone[0]
    assert together[0] == tiny_generator.generate([long], GREEDY, [0])[0]


def test_each_sample_depends_on_its_own_seed_only(tiny_generator):
    prompt, other = "hello world", "the question is what is good and what is bad"
    batch = tiny_generator.generate([prompt, other, prompt], SAMPLED, [11, 5, 12])
    # the same seeds again, one at a time and in another batch composition: the same samples
    assert tiny_generator.generate([prompt], SAMPLED, [11]) == [batch[0]]
    assert tiny_generator.generate([prompt, prompt], SAMPLED, [12, 11]) == [batch[2], batch[0]]
    assert batch[0] != batch[2]  # another seed, another sample (8 tokens of a near-uniform tiny model)


def test_seeded_nucleus_sampler_draws_from_the_renormalised_nucleus():
    # p = [0.5, 0.3, 0.15, 0.05], top_p 0.7: the mass before token 2 is 0.8 >= 0.7, so the nucleus is {0, 1}
    # and the renormalised probabilities are 0.5 / 0.8 = 0.625 and 0.375.
    logits = torch.tensor([0.5, 0.3, 0.15, 0.05]).log().repeat(4000, 1)
    sampler = SeededNucleusSampler(range(4000), temperature=1.0, top_p=0.7)
    out = sampler(None, logits)
    choice = out.argmax(-1)
    assert torch.isinf(out).sum(-1).eq(3).all()  # one finite score per row: greedy must pick it
    counts = torch.bincount(choice, minlength=4) / 4000
    assert counts[2] == 0 and counts[3] == 0
    assert counts[0].item() == pytest.approx(0.625, abs=0.03)
    again = SeededNucleusSampler(range(4000), temperature=1.0, top_p=0.7)(None, logits).argmax(-1)
    assert torch.equal(again, choice)


def test_stop_strings_end_and_are_cut_from_a_sample(tiny_generator):
    assert cut_at_stop("a\n\nb STOP c", ["STOP", "\n\n"]) == "a"
    assert cut_at_stop("abc", ["x"]) == "abc"
    text = tiny_generator.generate(["hello world"], GREEDY, [0])[0]
    stop = text[len(text) // 2 :][:2]
    assert stop.strip()
    cut = tiny_generator.generate(["hello world"], SamplingParams(8, 0.0, stop=(stop,)), [0])[0]
    assert cut == text[: text.find(stop)]


def test_math_prompts_render_through_the_chat_template_and_continue_the_prefix(tiny_generator):
    params = SamplingParams(instruction="Box it.")
    assert math_prompt("What is 2+3?", [], "Box it.") == [
        {"role": "user", "content": "What is 2+3?\nBox it."}
    ]
    text = tiny_generator.build_prompt("What is 2+3?", ["2 + 3 = 5.", "So 5."], params)
    assert text == (
        "<|im_start|>user\nWhat is 2+3?\nBox it.<|im_end|>\n<|im_start|>assistant\n2 + 3 = 5.\n\nSo 5.\n\n"
    )


def test_load_goes_through_load_backbone(tiny_llama):
    gen = HFGenerator.load(str(tiny_llama), device="cpu")
    assert gen.fingerprint.startswith(f"{tiny_llama}@") and gen.model.device.type == "cpu"
    assert len(gen.generate(["hello world"] * 2, GREEDY, [0, 1])) == 2


# ---- HTTP backend -----------------------------------------------------------------------------------------


def endpoint(url: str, **kwargs) -> EndpointGenerator:
    return EndpointGenerator(url, "served-model", **{"timeout": 5.0, "backoff": 0.01, **kwargs})


def test_completions_request_and_answer(monkeypatch):
    monkeypatch.setenv("RM_TEST_API_KEY", "sekret")
    with StubServer([(200, completions_reply("A", "B", order=[1, 0]))]) as server:
        gen = endpoint(server.url, api_key=api_key_from_env("RM_TEST_API_KEY"))
        params = SamplingParams(max_new_tokens=5, temperature=0.5, top_p=0.9, stop=("\n\n",))
        assert gen.generate(["Problem: 1+1\nSolution:\n"] * 2, params, [5, 9]) == ["A", "B"]
    [(path, headers, body)] = server.requests
    assert path == "/v1/completions" and headers["Authorization"] == "Bearer sekret"
    assert body == {
        "model": "served-model",
        "prompt": "Problem: 1+1\nSolution:\n",
        "n": 2,
        "max_tokens": 5,
        "temperature": 0.5,
        "top_p": 0.9,
        "seed": 5,
        "stop": ["\n\n"],
    }
    assert gen.fingerprint == f"{server.url}/v1#served-model"
    assert "sekret" not in repr(gen) and "sekret" not in gen.fingerprint


def test_chat_request_continues_the_prefix_and_keeps_logprobs():
    alternatives = [{"token": "Yes", "logprob": -0.1}, {"token": "No", "logprob": -2.4}]
    yes_no = {"content": [{"token": "Yes", "logprob": -0.1, "top_logprobs": alternatives}]}
    with StubServer([(200, chat_reply("5 * 4 = 20.", logprobs=[yes_no]))]) as server:
        gen = endpoint(server.url + "/v1/")
        prompt = gen.build_prompt("What is (2+3)*4?", ["2 + 3 = 5."], SamplingParams())
        (completion,) = gen.complete(prompt, SamplingParams(max_new_tokens=1), top_logprobs=2)
    assert completion.text == "5 * 4 = 20." and top_logprobs(completion) == [{"Yes": -0.1, "No": -2.4}]
    path, _, body = server.requests[0]
    assert path == "/v1/chat/completions"
    assert body["messages"] == [
        {"role": "user", "content": f"What is (2+3)*4?\n{DEFAULT_INSTRUCTION}"},
        {"role": "assistant", "content": "2 + 3 = 5.\n\n"},
    ]
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    assert body["logprobs"] is True and body["top_logprobs"] == 2 and "seed" not in body


def test_completions_logprobs_format_reads_the_same():
    from rewardmodels.sampling import Completion

    lp = {"tokens": ["Yes"], "token_logprobs": [-0.1], "top_logprobs": [{"Yes": -0.1, "No": -2.4}]}
    assert top_logprobs(Completion("Yes", "length", lp)) == [{"Yes": -0.1, "No": -2.4}]
    assert top_logprobs(Completion("Yes")) == []


def test_greedy_rows_of_one_prompt_are_one_single_sample_request():
    with StubServer([(200, chat_reply("same"))]) as server:
        gen = endpoint(server.url)
        prompt = [{"role": "user", "content": "hi"}]
        assert gen.generate([prompt] * 3, SamplingParams(temperature=0.0), [1, 2, 3]) == ["same"] * 3
    assert len(server.requests) == 1 and server.requests[0][2]["n"] == 1
    assert "continue_final_message" not in server.requests[0][2]


def test_503_and_429_are_retried_until_an_answer():
    replies = [
        (503, {"error": {"message": "loading"}}),
        (429, {"error": "slow down"}, 0, {"Retry-After": "0"}),
        (200, completions_reply("ok")),
    ]
    with StubServer(replies) as server:
        assert endpoint(server.url, max_retries=3).generate(["p"], SAMPLED, [0]) == ["ok"]
    assert len(server.requests) == 3


def test_retries_are_bounded():
    with StubServer([(503, {"error": {"message": "overloaded"}})]) as server:
        with pytest.raises(EndpointError, match=r"no answer after 3 attempts .*HTTP 503: overloaded"):
            endpoint(server.url, max_retries=2).generate(["p"], SAMPLED, [0])
    assert len(server.requests) == 3


def test_a_400_is_a_clear_error_naming_the_url_and_is_not_retried():
    with StubServer([(400, {"error": {"message": "n must be at most 8"}})]) as server:
        with pytest.raises(EndpointError) as caught:
            endpoint(server.url).generate(["p"], SAMPLED, [0])
    assert str(caught.value) == f"{server.url}/v1/completions answered HTTP 400: n must be at most 8"
    assert len(server.requests) == 1


def test_a_hanging_server_hits_the_timeout():
    with StubServer([(200, completions_reply("late"), 3.0)]) as server:
        start = time.monotonic()
        with pytest.raises(EndpointError, match=r"no answer after 2 attempts .*no answer within 0.3 s"):
            endpoint(server.url, timeout=0.3, max_retries=1).generate(["p"], SAMPLED, [0])
        assert time.monotonic() - start < 2.5
    assert len(server.requests) == 2


def test_a_malformed_answer_names_the_url():
    with StubServer([(200, {"choices": [{"index": 0}]})]) as server:
        with pytest.raises(EndpointError, match=r"/v1/completions: choice 0 has no text in 'text'"):
            endpoint(server.url).generate(["p"], SAMPLED, [0])


def test_endpoint_flags_build_an_endpoint_sampler(tmp_path, monkeypatch):
    from rewardmodels.cli_common import ArgumentParser

    parser = ArgumentParser()
    add_sampling_arguments(parser, "tokens")
    base = ["--endpoint", "http://127.0.0.1:9", "--cache", str(tmp_path / "c.sqlite")]
    monkeypatch.setenv("RM_TEST_API_KEY", "k")
    key_flags = ["--endpoint-model", "m", "--api-key-env", "RM_TEST_API_KEY"]
    sampler = open_sampler(
        parser.parse_args([*base, *key_flags, "--max-retries", "0", "--request-timeout", "2"])
    )
    sampler.cache.close()
    gen = sampler.generator
    assert isinstance(gen, EndpointGenerator) and gen.fingerprint == "http://127.0.0.1:9/v1#m"
    assert (gen.max_retries, gen.timeout) == (0, 2.0)
    with pytest.raises(ValueError, match="--endpoint needs --endpoint-model"):
        open_sampler(parser.parse_args(base))
    monkeypatch.delenv("RM_TEST_API_KEY")
    with pytest.raises(
        ValueError, match="--api-key-env RM_TEST_API_KEY: that environment variable is not set"
    ):
        open_sampler(parser.parse_args([*base, "--endpoint-model", "m", "--api-key-env", "RM_TEST_API_KEY"]))


# ---- cache ------------------------------------------------------------------------------------------------


class Recording:
    """A generator whose sample is its prompt, seed and a call counter, recording every call."""

    fingerprint = "recording"

    def __init__(self):
        self.calls: list[tuple[list, list[int]]] = []

    def build_prompt(self, problem, prefix, params):
        return "MC: " + problem + " | " + " ".join(prefix)

    def generate(self, prompts, params, seeds):
        self.calls.append((list(prompts), list(seeds)))
        return [f"{p!r} seed={s}" for p, s in zip(prompts, seeds, strict=True)]


def verifier_template(problem, prefix):
    steps = "".join(f"Step {i + 1}: {s}\n" for i, s in enumerate(prefix))
    return [{"role": "user", "content": f"Verify.\n{problem}\n{steps}Is every step correct?"}]


def test_two_templates_for_one_problem_and_prefix_never_share_a_sample(tmp_path):
    problem, prefix = "What is 2+3?", ["2 + 3 = 5."]
    gen = Recording()
    sampler = Sampler(gen, SampleCache(tmp_path / "c.sqlite"), SamplingParams())
    mc = sampler.samples(problem, prefix, 2)
    verified = sampler.complete(verifier_template(problem, prefix), 2)
    assert len(gen.calls) == 2 and len(sampler.cache) == 4 and not set(mc) & set(verified)
    assert gen.calls[1][0][0] == verifier_template(problem, prefix)  # the verifier got its own prompt
    assert sampler.samples(problem, prefix, 2) == mc and len(gen.calls) == 2  # and each reads its own back


def test_a_second_run_makes_no_generator_calls(tmp_path):
    requests = [("prompt one", 3), ([{"role": "user", "content": "prompt two"}], 2)]
    first = Sampler(Recording(), SampleCache(tmp_path / "c.sqlite"), SamplingParams())
    texts = first.complete_many(requests)
    assert len(first.generator.calls) == 1 and first.generated == 5  # all missing samples in one call
    first.cache.close()
    gen = Recording()
    again = Sampler(gen, SampleCache(tmp_path / "c.sqlite"), SamplingParams())
    assert again.complete_many(requests) == texts
    assert gen.calls == [] and again.generated == 0 and again.hits == 5


def test_a_sample_seed_depends_on_its_key_not_on_what_else_is_missing(tmp_path):
    params = SamplingParams(seed=7)
    gen = Recording()
    partial = Sampler(gen, SampleCache(tmp_path / "a.sqlite"), params)
    partial.complete("p", 3)
    partial.complete("p", 5)  # samples 3 and 4 only
    fresh = Recording()
    Sampler(fresh, SampleCache(tmp_path / "b.sqlite"), params).complete("p", 5)
    assert gen.calls[1][1] == fresh.calls[0][1][3:]
    assert gen.calls[0][1] == fresh.calls[0][1][:3]
    assert fresh.calls[0][1][4] == (int(sample_key("recording", "p", params, 4)[:8], 16) + 7) % 2**31
    assert sample_seed("0000000a" + "0" * 56, 2**31 - 1) == 9


def test_other_settings_are_other_samples_but_the_instruction_lives_in_the_prompt():
    base = sample_key("g", "p", SamplingParams(), 0)
    assert base != sample_key("g", "p", SamplingParams(top_p=0.5), 0)
    assert base != sample_key("g", "p", SamplingParams(stop=("x",)), 0)
    assert base != sample_key("g", "p", SamplingParams(), 1)
    assert base != sample_key("h", "p", SamplingParams(), 0)
    assert base == sample_key("g", "p", SamplingParams(instruction="x"), 0)
    # text and a chat are different prompts even when they would print alike
    chat = [{"role": "user", "content": "[]"}]
    assert sample_key("g", "[]", SamplingParams(), 0) != sample_key("g", chat, SamplingParams(), 0)
    with pytest.raises(ValueError, match="prompt message 1"):
        sample_key("g", [{"role": "user", "content": "a"}, {"role": "assistant"}], SamplingParams(), 0)


def test_old_or_foreign_cache_files_are_refused(tmp_path):
    old = tmp_path / "old.sqlite"
    with sqlite3.connect(old) as db:  # how schema 1 (keys without the rendered prompt) looked
        db.execute("CREATE TABLE samples (key TEXT PRIMARY KEY, text TEXT NOT NULL)")
    with pytest.raises(
        ValueError, match=r"old.sqlite: a sample cache of schema version 1, .* version 2 only"
    ):
        SampleCache(old)
    new = tmp_path / "new.sqlite"
    cache = SampleCache(new)
    cache.put_many([("k", "v")])
    cache.close()
    assert SampleCache(new).get("k") == "v"  # this version reopens its own files
    with sqlite3.connect(new) as db:
        db.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    with pytest.raises(ValueError, match="schema version 3"):
        SampleCache(new)


def test_sampling_params_name_a_bad_setting():
    with pytest.raises(ValueError, match="top_p must be in"):
        SamplingParams(top_p=0.0)
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        SamplingParams(temperature=-1.0)
