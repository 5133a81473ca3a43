"""ProcessBench's official critic prompt as a prompt of the generative scorer (issue 23): the prompt and the
\\boxed{index} extraction against values worked out by hand from QwenLM/ProcessBench code/run_eval.py
(`prepare_input_boxed`, `extract_answer`, int() or None, Counter voting), malformed critiques as None (a
miss), the scorer in ProcessBench's direct mode, and a critic directory for any model."""

from __future__ import annotations

import math
import re

import pytest

from rewardmodels.eval import processbench as pb
from rewardmodels.io import write_json
from rewardmodels.scorers import MANIFEST_NAME, load_scorer
from rewardmodels.scorers.generative import GenerativeScorer
from rewardmodels.scorers.verifier_chains import ScalingSettings, critic_step_scores
from rewardmodels.verification import critic_answer, critic_prompt, load_format, vote_critic_index

FMT = load_format()

EXPECTED_PROMPT = (
    "The following is a math problem and a solution (split into paragraphs, enclosed with tags and indexed "
    "from 0):\n\n[Math Problem]\n\nWhat is 2+3? Use {x}.\n\n[Solution]\n\n<paragraph_0>\n2 + 3 = 6\n"
    "</paragraph_0>\n\n<paragraph_1>\n So the answer is 6. \n</paragraph_1>\n\nYour task is to review and "
    "critique the solution paragraph by paragraph. Once you identify an error in a paragraph, return the index "
    "of the paragraph where the earliest error occurs. Otherwise, return the index of -1 (which typically "
    'denotes "not found").\n\nPlease put your final answer (i.e., the index) in \\boxed{}.'
)


def test_the_official_critic_prompt_by_hand():
    # tagged paragraphs from 0, steps as given (not stripped), the whole stripped, str.format of the template:
    # braces inside the problem are a value, not a field
    messages = critic_prompt("What is 2+3? Use {x}.", ["2 + 3 = 6", " So the answer is 6. "])
    assert messages == [{"role": "user", "content": EXPECTED_PROMPT}]


@pytest.mark.parametrize(
    "critique, index",
    [
        ("The earliest error is in paragraph 1, so \\boxed{1}", 1),
        ("Every paragraph is correct. \\boxed{-1}", -1),
        ("$\\boxed{ 3 }$.", 3),  # stripped
        ("At first \\boxed{2}; on reflection \\boxed{0}", 0),  # the last box
        ("\\boxed{+2}", 2),  # int("+2")
        # malformed: None, a miss for erroneous and correct samples alike
        ("\\boxed{2} and then \\boxed{two}", None),  # the last box decides, and is not an integer
        ("the error is in paragraph 1", None),  # no box
        ("\\boxed{}", None),
        ("\\boxed{1.0}", None),
        ("\\boxed{\\text{1}}", None),  # [^}]* stops at the inner brace: "\\text{1"
        ("\\boxed{1", None),  # never closed
        ("boxed{1}", None),  # no backslash
        ("", None),
    ],
)
def test_the_official_extraction_by_hand(critique, index):
    assert vote_critic_index([critique]) == index


def test_voting_is_the_most_common_answer_before_int():
    assert critic_answer("a \\boxed{ 2 } b \\boxed{ 3 }") == "3" and critic_answer("none") is None
    assert vote_critic_index(["\\boxed{2}", "\\boxed{-1}", "no box", "\\boxed{2}"]) == 2
    assert vote_critic_index(["\\boxed{3}", "\\boxed{1}"]) == 3  # a tie: the first seen (Counter order)
    assert vote_critic_index(["\\boxed{x}", "\\boxed{x}", "\\boxed{1}"]) is None  # "x" wins, then int fails
    assert vote_critic_index(["nothing", "\\boxed{}"]) is None
    assert vote_critic_index([]) is None


def test_step_scores_follow_the_critic_index():
    nan = math.nan
    assert critic_step_scores(-1, 3) == [1.0, 1.0, 1.0]
    assert critic_step_scores(1, 3)[:2] == [1.0, 0.0] and math.isnan(critic_step_scores(1, 3)[2])
    for undetermined in (None, 3, -2):
        assert all(math.isnan(v) for v in critic_step_scores(undetermined, 3))
    assert str(critic_step_scores(0, 2)) == str([0.0, nan])


class ScriptedCritic:
    """A critic whose replies are scripted per problem (in call order); records the prompts it was given."""

    fingerprint = "scripted-critic"

    def __init__(self, replies: dict[str, list[str]]):
        self.replies, self.prompts = {k: list(v) for k, v in replies.items()}, []

    def build_prompt(self, problem, prefix, params):
        raise AssertionError("the scorer renders its own prompts")

    def generate(self, prompts, params, seeds):
        self.prompts += prompts
        out = []
        for prompt in prompts:
            problem = re.search(r"\[Math Problem\]\n\n(.*?)\n\n\[Solution\]", prompt[0]["content"], re.S)
            out.append(self.replies[problem.group(1)].pop(0))
        return out


def critic_scorer(tokenizer, replies, **settings):
    generator = ScriptedCritic(replies)
    settings = ScalingSettings(**settings)
    scorer = GenerativeScorer(generator, tokenizer, FMT, settings, {}, prompt="processbench_critic")
    return scorer, generator


def test_processbench_scores_a_critic_directly_with_misses_for_unextractable_critiques(
    tiny_tokenizer, tmp_path
):
    replies = {
        "p0": ["Paragraph 1 is wrong: \\boxed{1}"],  # label 1: a hit
        "p1": ["All fine. \\boxed{-1}"],  # label -1: a hit
        "p2": ["I cannot tell."],  # label 2: None, a miss
        "p3": ["\\boxed{7}"],  # label -1: an index outside the solution, a miss
    }
    scorer, generator = critic_scorer(tiny_tokenizer, replies)
    examples = [
        {"id": str(i), "subset": "gsm8k", "problem": f"p{i}", "steps": ["a", "b", "c"], "label": label}
        for i, label in enumerate([1, -1, 2, -1])
    ]
    results = pb.run(scorer, examples, tmp_path / "pb")
    assert pb.scoring_mode(scorer) == "direct"
    assert [e["prediction"] for e in examples] == [1, -1, None, 7]
    m = results["subsets"]["gsm8k"]
    # acc_erroneous = 1/2 (p0 hit, p2 miss), acc_correct = 1/2 (p1 hit, p3 miss), F1 = 2ab/(a+b) = 0.5
    assert (m["acc_erroneous"], m["acc_correct"], m["f1"]) == (0.5, 0.5, 0.5)
    assert results["undetermined_predictions"] == 1
    assert results["compute"]["unextractable_critiques"] == 1
    assert results["compute"]["prompt"] == "processbench_critic" and results["compute"]["chains"] == 4
    # the official chat: one user message, no assistant opener
    assert sorted(p[0]["content"] for p in generator.prompts) == sorted(
        critic_prompt(f"p{i}", ["a", "b", "c"])[0]["content"] for i in range(4)
    )
    assert all(len(p) == 1 for p in generator.prompts)


def test_parallel_critiques_are_voted_and_score_is_the_share_saying_no_error(tiny_tokenizer):
    replies = {"p": ["\\boxed{1}", "\\boxed{-1}", "\\boxed{1}", "junk"] * 2}
    scorer, _ = critic_scorer(tiny_tokenizer, replies, parallel=4, temperature=1.0, top_p=0.9)
    assert scorer.predict_first_error(["p"], [["a", "b", "c"]]) == [1]
    assert scorer.compute_report()["unextractable_critiques"] == 1
    steps = scorer.score_steps(["p"], [["a", "b", "c"]])[0]
    assert steps[:2] == [1.0, 0.0] and math.isnan(steps[2])
    scorer, _ = critic_scorer(tiny_tokenizer, {"p": ["\\boxed{1}", "\\boxed{-1}", "\\boxed{-1}", "junk"]},
                              parallel=4, temperature=1.0)  # fmt: skip
    assert scorer.score_solutions(["p"], [["a", "b"]]) == [pytest.approx(2 / 3)]  # 2 of 3 with an index


def test_the_critic_prompt_refuses_what_it_cannot_do(tiny_tokenizer):
    with pytest.raises(ValueError, match="one round"):
        critic_scorer(tiny_tokenizer, {}, rounds=2)
    with pytest.raises(ValueError, match="prompt must be one of"):
        GenerativeScorer(ScriptedCritic({}), tiny_tokenizer, FMT, ScalingSettings(), {}, prompt="judge")


def test_a_critic_directory_for_any_model_is_a_manifest_naming_it(tiny_llama, tmp_path):
    critic = tmp_path / "critic"
    critic.mkdir()
    write_json(critic / MANIFEST_NAME, {"kind": "generative", "model": str(tiny_llama),
                                        "verifier": {"prompt": "processbench_critic"}})  # fmt: skip
    scorer = load_scorer(critic, device="cpu", max_new_tokens=3)
    assert scorer.critic and scorer.settings.temperature == 0.0  # greedy: the official decoding
    # a random tiny model writes no \boxed{} in 3 tokens: undetermined, counted
    assert scorer.predict_first_error(["What is 1 + 1?"], [["1 + 1 = 3"]]) == [None]
    report = scorer.compute_report()
    assert report["unextractable_critiques"] == 1 and report["max_new_tokens"] == 3
    write_json(critic / MANIFEST_NAME, {"kind": "generative", "model": str(tiny_llama)})
    with pytest.raises(ValueError, match="no verification_format"):
        load_scorer(critic, device="cpu")
