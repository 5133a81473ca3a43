"""The MC rollout labeller: label arithmetic with a scripted generator (the fake is used for that only), the
on-disk cache across interrupted and repeated runs, and the real transformers generation path on a tiny model."""

import pytest

from rewardmodels.answers import is_correct, split_solution
from rewardmodels.data_builders.mc_labeller import label_problems, label_solution
from rewardmodels.data_builders.schema import stepwise_row_errors
from rewardmodels.sampling import HFGenerator, SampleCache, Sampler, SamplingParams

PROBLEM = "What is (2 + 3) * 4?"
STEPS = ["2 + 3 = 5.", "5 * 4 = 21.", "The answer is \\boxed{21}."]
# Continuations by prefix length: after step 1, 3 of 4 reach 20; after the slip in step 2, none does.
SCRIPT = {
    1: ["so \\boxed{20}", "\\boxed{20}", "it is \\boxed{25}", "\\boxed{20.0}"],
    2: ["\\boxed{21}", "\\boxed{21}", "no idea", "\\boxed{19}"],
}


class ScriptedGenerator:
    fingerprint = "scripted"

    def __init__(self, fail_after: int | None = None):
        self.calls = 0
        self.fail_after = fail_after

    def build_prompt(self, problem, prefix, params):
        return f"{problem}\n" + "\n\n".join(prefix)

    def generate(self, prompts, params, seeds):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("simulated interruption")
        self.calls += 1
        assert len(set(prompts)) == 1  # the labeller asks for one prefix's rollouts at a time
        k = prompts[0].count("\n\n") + 1  # number of steps in the prefix
        return SCRIPT[k][-len(prompts) :]


def sampler(tmp_path, gen, params: SamplingParams | None = None):
    return Sampler(gen, SampleCache(tmp_path / "samples.sqlite"), params or SamplingParams())


def test_answer_checking_goes_through_math_verify():
    assert is_correct("thus \\boxed{20}", "20")
    assert is_correct("\\boxed{\\frac{1}{2}}", "0.5")
    assert not is_correct("\\boxed{21}", "20")
    assert not is_correct("I do not know", "20")


def test_hard_and_soft_labels(tmp_path):
    hard = label_solution(
        sampler(tmp_path, ScriptedGenerator()), PROBLEM, "20", STEPS, rollouts=4, mode="hard"
    )
    assert hard["mc_correct"] == [3, 0]
    assert hard["labels"] == [True, False, False]  # last step: the solution's own answer (21) is wrong
    assert not hard["solution_correct"] and not stepwise_row_errors(hard, 0)
    soft = label_solution(
        sampler(tmp_path, ScriptedGenerator()), PROBLEM, "20", STEPS, rollouts=4, mode="soft"
    )
    assert soft["labels"] == [0.75, 0.0, 0.0]
    right = label_solution(
        sampler(tmp_path, ScriptedGenerator()), PROBLEM, "21", STEPS, rollouts=4, mode="soft"
    )
    assert right["mc_correct"] == [0, 2] and right["labels"] == [0.0, 0.5, 1.0]


def test_cache_resumes_an_interrupted_run_and_a_rerun_samples_nothing(tmp_path):
    problems = [{"problem": PROBLEM, "answer": "20", "completions": STEPS, "id": "p0"}]
    first = ScriptedGenerator(fail_after=1)
    with pytest.raises(KeyboardInterrupt):
        label_problems(problems, sampler(tmp_path, first), rollouts=4)
    assert len(SampleCache(tmp_path / "samples.sqlite")) == 4  # the first prefix's samples were kept
    second = ScriptedGenerator()
    resumed = sampler(tmp_path, second)
    rows = label_problems(problems, resumed, rollouts=4)
    assert second.calls == 1 and resumed.hits == 4 and resumed.generated == 4
    third = ScriptedGenerator()
    again = sampler(tmp_path, third)
    assert label_problems(problems, again, rollouts=4) == rows
    assert third.calls == 0 and again.generated == 0 and again.hits == 8
    # other sampling parameters are other samples
    fourth = ScriptedGenerator()
    label_problems(problems, sampler(tmp_path, fourth, SamplingParams(temperature=1.0)), rollouts=4)
    assert fourth.calls == 2


def test_split_solution_keeps_the_tail():
    assert split_solution("a\n\n\n\nb\n\n c ") == ["a", "b", "c"]
    assert split_solution("a\n\nb\n\nc\n\nd", max_steps=2) == ["a", "b\n\nc\n\nd"]


def test_tiny_model_generates_labels_and_reuses_its_cache(tiny_llama, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gen = HFGenerator(
        AutoModelForCausalLM.from_pretrained(tiny_llama), AutoTokenizer.from_pretrained(tiny_llama), "tiny"
    )
    params = SamplingParams(max_new_tokens=6, temperature=1.0)
    problems = [{"problem": "Compute 2 + 3.", "answer": "5"}]
    first = sampler(tmp_path, gen, params)
    rows = label_problems(problems, first, rollouts=2, mode="soft", solutions_per_problem=1, step_split=" ")
    # one sampled solution, split into steps; every step but the last got 2 rollouts
    assert len(rows) == 1 and first.generated == 1 + 2 * (len(rows[0]["completions"]) - 1)
    assert not stepwise_row_errors(rows[0], 0)
    assert all(0.0 <= x <= 1.0 for x in rows[0]["labels"]) and rows[0]["generator"] == "tiny"
    again = sampler(tmp_path, gen, params)
    assert (
        label_problems(problems, again, rollouts=2, mode="soft", solutions_per_problem=1, step_split=" ")
        == rows
    )
    assert again.generated == 0 and again.hits == first.generated


def test_build_mc_labels_samples_on_an_endpoint_and_a_rerun_samples_nothing(tmp_path, capsys):
    import json

    from rewardmodels.data_builders.cli import main as build
    from tests.openai_stub import StubServer, chat_reply

    problems = tmp_path / "problems.jsonl"
    row = {"problem": PROBLEM, "answer": "20", "completions": STEPS, "id": "p0"}
    problems.write_text(json.dumps(row) + "\n")
    cache = tmp_path / "c.sqlite"
    with StubServer([(200, chat_reply("\\boxed{20}", "\\boxed{3}"))]) as server:
        endpoint = ["--endpoint", server.url, "--endpoint-model", "m"]
        args = ["mc-labels", "--problems", str(problems), "--rollouts", "2", "--cache", str(cache), *endpoint]
        assert build([*args, "--output", str(tmp_path / "a.jsonl")]) == 0
        assert len(server.requests) == 2  # one request per step prefix, n = 2 rollouts each
        assert "samples: 4 generated" in capsys.readouterr().out
        assert build([*args, "--output", str(tmp_path / "b.jsonl")]) == 0
        assert len(server.requests) == 2  # the rerun asked the server nothing
        assert "samples: 0 generated, 4 from the cache" in capsys.readouterr().out
    first = server.requests[0][2]
    assert first["n"] == 2 and first["messages"][1] == {"role": "assistant", "content": STEPS[0] + "\n\n"}
    (row,) = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert row["mc_correct"] == [1, 1] and row["labels"] == [True, True, False]
    assert row["generator"] == f"{server.url}/v1#m"
    assert (tmp_path / "a.jsonl").read_text() == (tmp_path / "b.jsonl").read_text()
