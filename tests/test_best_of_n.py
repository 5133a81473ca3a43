"""Best-of-N on hand-built candidates whose accuracies are worked out below, and the cached candidate builder."""

import json

import pytest

from rewardmodels.eval import best_of_n as bon
from rewardmodels.eval.best_of_n_sample import sample_candidates
from rewardmodels.sampling import SampleCache, Sampler, SamplingParams

# Problem A (gold 5): the scorer prefers a wrong 4; votes tie 2-2 between 5 and 4 (5.0 counts as 5).
A = {
    "id": "A",
    "problem": "What is 2+3?",
    "answer": "5",
    "candidates": ["so \\boxed{5}", "\\boxed{4}", "The answer is \\boxed{4}", "\\boxed{5.0}"],
}
# Problem B (gold 1/2): the top-scored candidate has no answer; 0.5 and 1/2 are one answer.
B = {
    "id": "B",
    "problem": "Half of 1?",
    "answer": "\\frac{1}{2}",
    "candidates": ["\\boxed{0.5}", "\\boxed{1/2}", "no answer here", "\\boxed{3}"],
}
SCORES = {"What is 2+3?": [0.2, 0.9, 0.3, 0.4], "Half of 1?": [0.1, 0.2, 0.95, 0.3]}


CANDIDATES = {A["problem"]: A["candidates"], B["problem"]: B["candidates"]}


class TableScorer:
    """Scores each (problem, candidate) pair from SCORES; counts calls and pairs, dies on call `die_on`."""

    def __init__(self, die_on: int | None = None):
        self.calls, self.pairs, self.die_on = 0, 0, die_on

    def score(self, prompts, responses, batch_size=16):
        self.calls += 1
        if self.calls == self.die_on:
            raise Killed
        self.pairs += len(responses)
        return [SCORES[p][CANDIDATES[p].index(r)] for p, r in zip(prompts, responses, strict=True)]


class Killed(Exception):
    pass


def test_answer_groups_use_math_verify():
    assert bon.judge(A) == ([True, False, False, True], [0, 1, 1, 0])
    assert bon.judge(B) == ([True, True, False, False], [0, 0, None, 1])


def test_answers_are_extracted_as_the_mc_labeller_extracts_them():
    from rewardmodels.answers import is_correct

    # The stated answer is 7; math-verify alone, reading the whole text, would take the later 4.
    stated = {
        "answer": "7",
        "candidates": ["The answer is 7. We check that 2 + 2 = 4.", "# Answer\n\n7\n\nso 4 is wrong", "4"],
    }
    assert bon.judge(stated) == ([True, True, False], [0, 0, 1])
    assert [is_correct(c, "7") for c in stated["candidates"]] == [True, True, False]


def test_hand_built_accuracies(tmp_path):
    problems = [dict(A), dict(B)]
    results = bon.run(TableScorer(), problems, tmp_path, title="table")
    # top1:     A picks 4 (wrong), B picks the answerless one (wrong)                  -> 0/2
    # majority: A ties 2-2, the answer seen first (5) wins (right); B 1/2 has 2 votes  -> 2/2
    # weighted: A 5 = 0.2 + 0.4 = 0.6 < 4 = 0.9 + 0.3 (wrong); B 1/2 = 0.3 ties 3 = 0.3, first seen wins (right)
    # pass@4: both; random: 2 of 4 right in each
    expected = {"top1": 0.0, "majority": 1.0, "weighted_majority": 0.5, "pass_at_n": 1.0, "random": 0.5}
    assert {m: results[m] for m in bon.METRICS} == pytest.approx(expected)
    assert results["weights"] == "raw" and results["n_candidates"] == 4
    # first 1 candidate: A \boxed{5} right, B 0.5 right
    assert results["at_n"]["1"] == pytest.approx({m: 1.0 for m in bon.METRICS})
    # first 2: A {5: 0.2, 4: 0.9}; B {1/2: 0.1 + 0.2}
    assert results["at_n"]["2"] == pytest.approx(
        {"top1": 0.5, "majority": 1.0, "weighted_majority": 0.5, "pass_at_n": 1.0, "random": 0.75}
    )
    assert set(results["at_n"]) == {"1", "2", "4"}
    lines = [json.loads(x) for x in (tmp_path / "per_problem.jsonl").read_text().splitlines()]
    assert lines[0]["top_index"] == 1 and lines[1]["answer_groups"] == [0, 0, None, 1]
    assert "| 4 | 0.0 | 100.0 | 50.0 | 100.0 | 50.0 |" in (tmp_path / "results.md").read_text()


def test_interrupted_run_resumes_without_rescoring(tmp_path):
    full = bon.run(TableScorer(), [dict(A), dict(B)], tmp_path / "full", chunk=1)
    cut = tmp_path / "cut"
    with pytest.raises(Killed):
        bon.run(TableScorer(die_on=2), [dict(A), dict(B)], cut, chunk=1)
    assert len((cut / bon.JOURNAL_NAME).read_text().splitlines()) == 1  # problem A was journalled
    again = TableScorer()
    resumed = bon.run(again, [dict(A), dict(B)], cut, chunk=1)
    assert again.calls == 1 and again.pairs == len(B["candidates"])  # only problem B was scored
    assert resumed == full
    for name in ("results.json", "per_problem.jsonl", "results.md"):
        assert (cut / name).read_bytes() == (tmp_path / "full" / name).read_bytes(), name
    # other candidates in the same output dir are other data: refused before anything is scored
    changed = dict(B, candidates=[*B["candidates"][:3], "\\boxed{1/2}"])
    with pytest.raises(ValueError, match="different evaluation"):
        bon.run(TableScorer(), [dict(A), changed], cut, chunk=1)
    fresh = TableScorer()
    bon.run(fresh, [dict(A), dict(B)], cut, chunk=1, fingerprint={"scorer": "other"}, overwrite=True)
    assert fresh.calls == 2


def test_real_valued_scores_vote_through_a_sigmoid():
    assert bon.weight_mode([0.2, 0.9], "auto") == "raw"
    assert bon.weight_mode([-1.0, 2.0], "auto") == "sigmoid"
    assert bon.to_weights([0.0, float("nan")], "sigmoid") == [0.5, 0.0]
    # sigmoid(0.5) = 0.622 for the lone answer vs 2 * sigmoid(-0.4) = 0.803 for the pair: the pair wins;
    # summing the raw rewards instead (0.5 vs -0.8) would pick the lone answer.
    correct, groups, scores = [True, False, False], [0, 1, 1], [0.5, -0.4, -0.4]
    m = bon.problem_metrics(correct, groups, scores, bon.to_weights(scores, "sigmoid"))
    assert m["weighted_majority"] == 0.0 and m["top1"] == 1.0 and m["majority"] == 0.0
    assert (
        bon.problem_metrics(correct, groups, scores, bon.to_weights(scores, "raw"))["weighted_majority"]
        == 1.0
    )


def test_candidate_rows_validation(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"problem": "p", "answer": "1", "candidates": []}) + "\n")
    with pytest.raises(ValueError, match=r"line 1, field 'candidates'"):
        bon.load_candidates(str(path))


class Scripted:
    fingerprint = "scripted"

    def __init__(self):
        self.calls = 0

    def build_prompt(self, problem, prefix, params):
        return problem + "|" + "|".join(prefix)

    def generate(self, prompts, params, seeds):
        self.calls += 1
        return [f"{prompt} sample {i} \\boxed{{{i}}}" for i, prompt in enumerate(prompts)]


def test_candidate_builder_caches_samples(tmp_path):
    problems = [{"problem": "p1", "answer": "1", "unique_id": "u1"}, {"problem": "p2", "answer": "2"}]
    gen = Scripted()
    cache = SampleCache(tmp_path / "c.sqlite")
    rows = sample_candidates(problems, Sampler(gen, cache, SamplingParams()), n=3)
    assert gen.calls == 2 and len(cache) == 6
    assert rows[0]["id"] == "u1" and rows[0]["candidates"][2].endswith("\\boxed{2}")
    again = Sampler(gen, cache, SamplingParams())
    assert sample_candidates(problems, again, n=3) == rows and gen.calls == 2 and again.generated == 0
    # asking for more reuses the first three and samples only the missing ones
    more = Sampler(gen, cache, SamplingParams())
    bigger = sample_candidates(problems[:1], more, n=5)
    assert bigger[0]["candidates"][:3] == rows[0]["candidates"] and more.generated == 2 and more.hits == 3


def test_the_implicit_prm_default_min_aggregation_picks_by_the_worst_step():
    from rewardmodels.causal.implicit_rewards import DEFAULT_AGGREGATION
    from rewardmodels.steps import aggregate_steps

    # three candidates to 2+3 with their step rewards r_k (q_T = their sum: no token after the last step)
    problem = {"id": "C", "problem": "What is 2+3?", "answer": "5",
               "candidates": ["\\boxed{5}", "\\boxed{4}", "\\boxed{6}"]}  # fmt: skip
    steps = [[0.4, -0.3, 0.2], [1.5, -0.9, 0.1], [-0.5, 0.3, 0.1]]

    def top1(how):
        scores = [aggregate_steps(r, sum(r), how) for r in steps]
        return scores, bon.evaluate([dict(problem, scores=scores)])["top1"]

    # min (the default): worst steps -0.3, -0.9, -0.5 -> the first candidate, the correct one
    assert DEFAULT_AGGREGATION == "min"
    scores, hit = top1(DEFAULT_AGGREGATION)
    assert scores == pytest.approx([-0.3, -0.9, -0.5]) and hit == 1.0
    # last (q_T): 0.3, 0.7, -0.1 -> the second, wrong; min_q (q_k = 0.4, 0.1, 0.3 | 1.5, 0.6, 0.7 | ...): 0.1,
    # 0.6, -0.5 -> the second, wrong
    scores, hit = top1("last")
    assert scores == pytest.approx([0.3, 0.7, -0.1]) and hit == 0.0
    scores, hit = top1("min_q")
    assert scores == pytest.approx([0.1, 0.6, -0.5]) and hit == 0.0
