"""Outcome rows for implicit PRMs: the PRM800K rule (official records and the stepwise parquet), pairs made
of outcome rows, sampled solutions labelled by their final answer (resuming from the sample cache), and the
build subcommands."""

from __future__ import annotations

import json

import pytest

from rewardmodels.data_builders import outcome
from rewardmodels.data_builders.schema import outcome_row_errors, preference_row_errors
from rewardmodels.data_builders.sources import load_rows
from rewardmodels.sampling import SampleCache, Sampler, SamplingParams


def test_the_prm800k_rule_by_hand():
    rule = outcome.outcome_of_solution
    done = ["2 + 3 = 5.", "# Answer\n\n5"]
    assert rule(done, [True, True], None) == (1.0, "rated correct, no gold answer to check")
    assert rule(done, [True, True], "5") == (1.0, "answer matches the gold one")
    assert rule(done, [True, True], "6") == (0.0, "wrong final answer")
    assert rule(done, [False, True], "5") == (0.0, "a step rated -1")  # an error, whatever the answer
    assert rule(done, [True, None], "5") == (None, "unrated step")
    assert rule(["2 + 3 = 5."], [True], "5") == (None, "no final answer")
    assert rule(["2 + 3 = 6."], [False], "5") == (None, "partial solution with an error")
    assert rule(["2 + 3 = 6."], [False], "5", partial=True) == (0.0, "a step rated -1")
    # only the last step's answer counts: an intermediate boxed value earlier is not the final answer
    assert rule(["So $\\boxed{7}$ so far.", "Keep going."], [True, True], "7") == (None, "no final answer")


def record(
    problem: str, truth: str, steps: list[tuple[str, int]], alternative: tuple[str, int] | None = None
):
    """An official PRM800K line: one chosen completion per step (and optionally a rated alternative first)."""
    out = []
    for k, (text, rating) in enumerate(steps):
        completions = [{"text": text, "rating": rating, "flagged": None}]
        if k == 0 and alternative is not None:
            completions.append({"text": alternative[0], "rating": alternative[1], "flagged": None})
        out.append({"completions": completions, "human_completion": None, "chosen_completion": 0})
    return {
        "question": {"problem": problem, "ground_truth_answer": truth},
        "label": {"steps": out, "finish_reason": "solution", "total_time": 1},
    }


def test_official_prm800k_records_are_checked_against_their_ground_truth(tmp_path):
    path = tmp_path / "phase2_train.jsonl"
    lines = [
        record("What is 2+3?", "5", [("2+3=5.", 1), ("# Answer\n\n5", 0)], alternative=("2+3=6.", -1)),
        record("What is 2+4?", "6", [("2+4=7.", 0), ("# Answer\n\n7", 1)]),  # rated fine, answer wrong
        record("What is 2+5?", "7", [("2+5=8.", -1), ("# Answer\n\n8", 1)]),
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    rows, report = load_rows(f"prm800k_outcome:{path}", "outcome")
    got = {(r["prompt"], r["completion"]): r["label"] for r in rows}
    assert got == {
        ("What is 2+3?", "2+3=5.\n\n# Answer\n\n5"): 1.0,
        ("What is 2+4?", "2+4=7.\n\n# Answer\n\n7"): 0.0,
        ("What is 2+5?", "2+5=8.\n\n# Answer\n\n8"): 0.0,
    }
    assert all(r["answer_checked"] for r in rows)
    assert report.dropped["partial solution with an error"] == 1  # the alternative "2+3=6." alone
    with_partial, _ = load_rows(f"prm800k_outcome:{path}?partial=true", "outcome")
    assert {r["completion"]: r["label"] for r in with_partial}["2+3=6."] == 0.0


def critic(q, ctx, step, rating):
    return {
        "instruction": q, "responses": ctx, "next_response": step, "answer": None, "is_human_response": False,
        "is_solution": step.startswith("#"), "is_preferred_response": True, "rating": rating,
    }  # fmt: skip


@pytest.fixture
def critic_file(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    q1, q2 = "What is 1+1?", "What is 2*2?"
    rows = [
        critic(q1, [], "1+1 is 2.", 1.0),
        critic(q1, ["1+1 is 2."], "# Answer\n\n2", 0.0),
        critic(q2, [], "2*2 is 5.", -1.0),
        critic(q2, ["2*2 is 5."], "# Answer\n\n5", 1.0),
        critic(q1, [], "1+1 is 11.", -1.0),  # a second trajectory of q1, ending in an answer after an error
        critic(q1, ["1+1 is 11."], "# Answer\n\n11", 1.0),
        critic(q2, [], "2*2 is 4.", 1.0),  # stops before an answer: no outcome
    ]
    path = tmp_path / "critic.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    gold = tmp_path / "gold.jsonl"
    gold.write_text(json.dumps({"problem": q1, "answer": "3"}) + "\n")  # a wrong gold, to see it is used
    return path, gold


def test_stepwise_parquet_outcome_rows_with_and_without_gold(critic_file):
    path, gold = critic_file
    rows, report = load_rows(f"prm800k_stepwise_outcome:{path}", "outcome")
    assert sorted((r["completion"], r["label"], r["answer_checked"]) for r in rows) == [
        ("1+1 is 11.\n\n# Answer\n\n11", 0.0, False),
        ("1+1 is 2.\n\n# Answer\n\n2", 1.0, False),  # no gold: the raters' non-negative ratings stand
        ("2*2 is 5.\n\n# Answer\n\n5", 0.0, False),
    ]
    assert report.dropped["no final answer"] == 1
    checked, _ = load_rows(f"prm800k_stepwise_outcome:{path}?gold={gold}", "outcome")
    by = {r["completion"]: (r["label"], r["answer_checked"]) for r in checked}
    assert by["1+1 is 2.\n\n# Answer\n\n2"] == (0.0, True)  # the gold file says 3
    assert by["2*2 is 5.\n\n# Answer\n\n5"] == (0.0, False)  # not in the gold file
    assert not any(outcome_row_errors(r, i) for i, r in enumerate(rows))


def test_pairs_by_hand_and_from_the_parquet(critic_file):
    rows = [
        {"prompt": "A", "completion": "a1", "label": 1.0},
        {"prompt": "A", "completion": "a2", "label": 0.8},
        {"prompt": "A", "completion": "a3", "label": 0.0},
        {"prompt": "B", "completion": "b1", "label": 1.0},  # no incorrect solution of B: no pair
    ]
    assert outcome.pairs_from_outcomes(rows) == [
        {"prompt": "A", "chosen": "a1", "rejected": "a3"},
        {"prompt": "A", "chosen": "a2", "rejected": "a3"},
    ]
    assert len(outcome.pairs_from_outcomes(rows, per_prompt=1)) == 1
    path, _ = critic_file
    pairs, _ = load_rows(f"prm800k_stepwise_pairs:{path}", "preference")
    assert [(p["prompt"], p["chosen"], p["rejected"]) for p in pairs] == [
        ("What is 1+1?", "1+1 is 2.\n\n# Answer\n\n2", "1+1 is 11.\n\n# Answer\n\n11")
    ]
    assert not preference_row_errors(pairs[0], 0)


class Scripted:
    """Solutions by sample index; counts its calls, so a run served from the cache is seen to sample nothing."""

    fingerprint = "scripted-outcomes"

    def __init__(self):
        self.calls = 0

    def build_prompt(self, problem, prefix, params):
        return problem

    def generate(self, prompts, params, seeds):
        self.calls += 1
        texts = ["So \\boxed{20}.", "It is \\boxed{21}.", "No idea.", "\\boxed{20.0}"]
        return texts[: len(prompts)]


def test_sampled_solutions_are_labelled_by_their_answer_and_resume_from_the_cache(tmp_path):
    problems = [{"problem": "What is (2 + 3) * 4?", "answer": "20", "unique_id": "p1"}]
    first = Scripted()
    sampler = Sampler(first, SampleCache(tmp_path / "s.sqlite"), SamplingParams())
    rows = outcome.sample_outcome_rows(problems, sampler, 4)
    sampler.cache.close()
    assert [(r["completion"], r["label"]) for r in rows] == [
        ("So \\boxed{20}.", 1.0), ("It is \\boxed{21}.", 0.0), ("No idea.", 0.0), ("\\boxed{20.0}", 1.0),
    ]  # fmt: skip
    assert [r["id"] for r in rows] == ["p1#0", "p1#1", "p1#2", "p1#3"] and first.calls == 1
    again = Scripted()
    resumed = Sampler(again, SampleCache(tmp_path / "s.sqlite"), SamplingParams())
    assert outcome.sample_outcome_rows(problems, resumed, 4) == rows
    assert again.calls == 0 and resumed.hits == 4
    with pytest.raises(ValueError, match="row 0: needs 'problem'"):
        outcome.sample_outcome_rows([{"problem": "x"}], resumed, 1)


def test_build_subcommands(critic_file, tmp_path, capsys):
    from rewardmodels.data_builders.cli import main

    path, gold = critic_file
    out = tmp_path / "outcome.jsonl"
    assert main(["prm800k-stepwise-outcome", f"{path}?gold={gold}", "-o", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 3
    assert main(["synthetic", "--schema", "outcome", "--n", "4", "-o", str(tmp_path / "syn.jsonl")]) == 0
    synthetic = [json.loads(line) for line in (tmp_path / "syn.jsonl").read_text().splitlines()]
    assert len(synthetic) == 4 and all(isinstance(r["label"], bool) for r in synthetic)
    with pytest.raises(SystemExit):
        main(["outcome-samples", "--help"])
    assert "--problems" in capsys.readouterr().out
