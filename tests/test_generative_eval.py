"""The generative scorer through the evaluators' capability protocols (ProcessBench, RewardBench, best-of-N,
no kind-specific code in them), the solution-level F1 by hand, and the compute report next to
accuracy."""

from __future__ import annotations

import math
import re

import pytest

from rewardmodels.eval import best_of_n as bon
from rewardmodels.eval import processbench as pb
from rewardmodels.eval import rewardbench as rb
from rewardmodels.eval.processbench_metrics import solution_level_f1
from rewardmodels.sampling import Completion
from rewardmodels.scorers.generative import GenerativeScorer
from rewardmodels.scorers.verifier_chains import ScalingSettings
from rewardmodels.verification import load_format, verdict_text

FMT = load_format()


def test_solution_level_f1_by_hand():
    # positives (a wrong step exists): rows 0, 2, 4. Row 0 is caught at the wrong index but still counts as a
    # detected mistake (TP), row 2 is missed (FN), row 4 caught (TP); row 3 is a false alarm (FP), row 1 TN.
    m = solution_level_f1([2, -1, 0, -1, 1], [1, -1, -1, 0, 1])
    assert m == {
        "n": 5,
        "precision": 2 / 3,
        "recall": 2 / 3,
        "f1": 2 * 2 / (2 * 2 + 1 + 1),
        "accuracy": 3 / 5,
    }
    none_called = solution_level_f1([-1, 0], [-1, -1])
    assert none_called["precision"] is None and none_called["f1"] == 0.0 and none_called["recall"] == 0.0
    assert solution_level_f1([-1, -1], [-1, -1])["f1"] is None  # no mistake present or called: undefined


class RuleVerifier:
    """A verifier that judges a solution step incorrect when it contains WRONG, and answers the decision
    question Yes with probability 0.9 when its chain found no incorrect step, else 0.1."""

    fingerprint = "rule-verifier"

    def build_prompt(self, problem, prefix, params):
        raise AssertionError("unused")

    def generate(self, prompts, params, seeds):
        out = []
        for prompt in prompts:
            steps = re.findall(r"^Step (\d+): (.*)$", prompt[0]["content"], flags=re.M)
            lines = [f"Step {i}: check. {verdict_text(FMT, 'WRONG' not in s)}" for i, s in steps]
            out.append("\n" + "\n".join(lines) + "\nIs the solution correct?")
        return out

    def complete(self, prompt, params, *, n=1, seed=None, top_logprobs=None):
        p = 0.1 if "\\boxed{incorrect}" in prompt[-1]["content"] else 0.9
        alternatives = [
            {"token": " Yes", "logprob": math.log(p)},
            {"token": " No", "logprob": math.log(1 - p)},
        ]
        return [Completion(" Yes", "stop", {"content": [{"token": " Yes", "logprob": 0.0,
                                                         "top_logprobs": alternatives}]})]  # fmt: skip


@pytest.fixture()
def scorer(tiny_tokenizer):
    return GenerativeScorer(RuleVerifier(), tiny_tokenizer, FMT, ScalingSettings(parallel=2), {})


def test_processbench_reads_first_errors_both_f1s_and_compute(scorer, tmp_path):
    examples = [
        {"id": "0", "subset": "gsm8k", "problem": "p0", "steps": ["a", "b WRONG", "c WRONG"], "label": 1},
        {"id": "1", "subset": "gsm8k", "problem": "p1", "steps": ["a", "b"], "label": -1},
        {"id": "2", "subset": "gsm8k", "problem": "p2", "steps": ["a WRONG", "b"], "label": 1},  # found at 0
    ]
    results = pb.run(scorer, examples, tmp_path / "pb")
    assert [e["prediction"] for e in examples] == [1, -1, 0]
    assert results["subsets"]["gsm8k"]["f1"] == pytest.approx(2 * 0.5 * 1.0 / 1.5)  # first-error F1
    level = results["solution_level"]
    assert level["subsets"]["gsm8k"]["f1"] == 1.0 and "contains a mistake" in level["definition"]
    compute = results["compute"]
    assert compute["solutions"] == 3 and compute["chains"] == 6 and compute["forced_verdicts"] == 0
    assert compute["tokens_generated"] > 0 and compute["parallel"] == 2
    report = (tmp_path / "pb" / "results.md").read_text()
    assert "Solution-level F1" in report and "Compute: " in report and "parallel=2" in report


def test_rewardbench_scores_pointwise_p_yes(scorer, tmp_path):
    pair = {"prompt": "q", "chosen": "x = 1\n\ny = 2", "rejected": "x = 1\n\ny = WRONG"}
    rows = [{**pair, "subset": "math-prm", "id": 0}]
    out = rb.run_rewardbench(scorer, rb.prepare_examples(rows, 1), tmp_path / "rb", progress=False)
    record = out.records[0]
    assert record["score_chosen"] == pytest.approx(0.9) and record["score_rejected"] == pytest.approx(0.1)
    assert out.results["accuracy"] == 1.0 and out.results["compute"]["solutions"] == 2


def test_best_of_n_picks_the_candidate_the_verifier_trusts(scorer, tmp_path):
    problem = {"id": "A", "problem": "What is 2+3?", "answer": "5",
               "candidates": ["2 + 3 = 6 WRONG\n\n\\boxed{6}", "2 + 3 = 5\n\n\\boxed{5}"]}  # fmt: skip
    results = bon.run(scorer, [problem], tmp_path / "bon")
    assert problem["scores"] == pytest.approx([0.1, 0.9])
    assert results["compute"]["solutions"] == 2 and results["compute"]["tokens_generated"] > 0


def test_the_compute_curve_plots_each_run_at_its_compute(tiny_tokenizer, tmp_path):
    from rewardmodels.errors import InputError
    from rewardmodels.eval.compute_curve import curve_points, main

    examples = [{"id": "0", "subset": "gsm8k", "problem": "p", "steps": ["a", "b WRONG"], "label": 1},
                {"id": "1", "subset": "gsm8k", "problem": "q", "steps": ["a"], "label": -1}]  # fmt: skip
    files = []
    for k in (1, 2):
        scorer = GenerativeScorer(RuleVerifier(), tiny_tokenizer, FMT, ScalingSettings(parallel=k), {})
        pb.run(scorer, [dict(e) for e in examples], tmp_path / f"k{k}")
        files.append(str(tmp_path / f"k{k}" / "results.json"))
    points = curve_points(files)
    assert [(p["run"].split()[0], p["metric"]) for p in points] == [
        ("K=1", "first-error F1"), ("K=1", "solution-level F1"), ("K=2", "first-error F1"),
        ("K=2", "solution-level F1"),
    ]  # fmt: skip
    assert points[2]["tokens_per_solution"] == pytest.approx(2 * points[0]["tokens_per_solution"])
    assert main([*files, "--output-dir", str(tmp_path / "curve")]) == 0
    assert (tmp_path / "curve" / "compute_curve.png").stat().st_size > 1000
    assert "| K=2 R=1 B=8192 | solution-level F1 |" in (tmp_path / "curve" / "compute_curve.md").read_text()
    bare = tmp_path / "bare.json"
    bare.write_text('{"benchmark": "processbench", "average": {"f1": 0.5}}')
    with pytest.raises(InputError, match="no compute recorded"):
        curve_points([str(bare)])
