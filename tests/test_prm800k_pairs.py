"""PRM800K preference pairs (`prm800k_pairs:`): same-prefix pairs, the fallback, the exclude file, the cap,
seeding, the answer written back from the parquet's `answer` field, and the spec through `load_rows`."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from rewardmodels.answers import STEP_JOIN
from rewardmodels.data_builders import prm800k_pairs as pp
from rewardmodels.data_builders.schema import preference_row_errors
from rewardmodels.data_builders.sources import load_rows


def critic(q, ctx, step, rating, preferred=True, answer=None):
    """One row of the stepwise-critic parquet (../shared/data/README.md): a rated step after `ctx`."""
    return {
        "instruction": q, "responses": list(ctx), "next_response": step, "rating": rating,
        "is_preferred_response": preferred, "is_human_response": False, "is_solution": answer is not None,
        "answer": answer, "error_reason": None,
    }  # fmt: skip


def trajectory(q, steps, ratings, answer=None, alternatives=()):
    """A main path (every step preferred, `answer` stated by the last) and `(k, text, rating, answer)`
    alternatives rated after step k's context."""
    rows = []
    for k, (step, rating) in enumerate(zip(steps, ratings, strict=True)):
        last = k == len(steps) - 1
        rows.append(critic(q, steps[:k], step, rating, answer=answer if last else None))
        for at, text, alt_rating, alt_answer in alternatives:
            if at == k:
                rows.append(critic(q, steps[:k], text, alt_rating, preferred=False, answer=alt_answer))
    return rows


def answered(step, answer):
    return f"{step}{STEP_JOIN}# Answer{STEP_JOIN}{answer}"


Q_SAME = "What is 2+3?"
PATH = ["Two plus three.", "2+3=5.", "So it is 5."]
BAD = "So it is 6."
Q_FALLBACK = "What is 3*3?"
Q_EXCLUDED = "What is 7+1?"
Q_GOLD = "What is 9-4?"


def write_parquet(path, rows):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.fixture
def critic_file(tmp_path):
    rows = [
        # the chosen path, and a -1 alternative at step 2: the same-prefix pair
        *trajectory(Q_SAME, PATH, [1.0, 1.0, 1.0], "5", alternatives=[(2, BAD, -1.0, None)]),
        # a second trajectory wrong at step 1 after another first step: it does not branch off the path
        *trajectory(Q_SAME, ["Add them.", "It is 23."], [1.0, -1.0], "23"),
        # no rejected branches off this chosen: it falls back to the other trajectory's error
        *trajectory(Q_FALLBACK, ["Three threes.", "3*3=9."], [1.0, 1.0], "9"),
        *trajectory(Q_FALLBACK, ["Multiply.", "3*3=6."], [0.0, -1.0], "6"),
        # a problem the exclude file has, with other white space
        *trajectory(Q_EXCLUDED, ["7+1=8."], [1.0], "8", alternatives=[(0, "7+1=9.", -1.0, "9")]),
        # every step rated >= 0, but the gold file says the answer is wrong: neither chosen nor rejected
        *trajectory(Q_GOLD, ["9-4=3."], [1.0], "3", alternatives=[(0, "9-4=2.", -1.0, "2")]),
    ]
    path = write_parquet(tmp_path / "critic.parquet", rows)
    exclude = tmp_path / "math500.jsonl"
    exclude.write_text(json.dumps({"problem": "  What  is\n7+1? ", "answer": "8"}) + "\n")
    gold = tmp_path / "gold.jsonl"
    gold.write_text(json.dumps({"problem": Q_GOLD, "answer": "5"}) + "\n")
    return path, exclude, gold


def triples(pairs):
    return [(p["prompt"], p["chosen"], p["rejected"]) for p in pairs]


def test_same_prefix_pair_is_the_path_against_its_wrong_step_and_the_fallback_when_none_branches(critic_file):
    path, exclude, gold = critic_file
    pairs, skipped = pp.build_prm800k_pairs(str(path), exclude=str(exclude), gold=str(gold))
    chosen = STEP_JOIN.join(PATH[:2] + [answered(PATH[2], "5")])
    assert triples(pairs) == [
        # the error-at-step-1 trajectory of the same problem is not used: a branching rejected exists
        (Q_SAME, chosen, STEP_JOIN.join(PATH[:2] + [BAD])),
        (
            Q_FALLBACK,
            STEP_JOIN.join(["Three threes.", answered("3*3=9.", "9")]),
            STEP_JOIN.join(["Multiply.", answered("3*3=6.", "6")]),
        ),
    ]
    assert all(not preference_row_errors(p, i) for i, p in enumerate(pairs))
    # each pair names the parquet row that begins its chosen solution's trajectory
    assert [(p.location.file, p.location.line) for p in pairs] == [(str(path), 1), (str(path), 7)]
    assert skipped[pp.EXCLUDED] == 2  # both solutions of the excluded problem
    assert skipped["wrong final answer"] == 1  # Q_GOLD's rated-correct path: 3, gold 5
    assert skipped["no correct solution of the problem"] == 1  # Q_GOLD's -1 alternative has no partner


def test_exclusion_compares_problems_after_whitespace_normalisation(critic_file):
    path, exclude, _ = critic_file
    assert pp.normalize_problem("  What  is\n7+1? ") == Q_EXCLUDED
    kept, _ = pp.build_prm800k_pairs(str(path))
    assert Q_EXCLUDED in {p["prompt"] for p in kept}
    dropped, skipped = pp.build_prm800k_pairs(str(path), exclude=str(exclude))
    assert Q_EXCLUDED not in {p["prompt"] for p in dropped}
    assert len(dropped) == len(kept) - 1 and skipped[pp.EXCLUDED] == 2


def test_answers_are_written_back_from_the_answer_field():
    answers = pp.stated_answers([critic("Q", ["a"], "b", 1.0, answer=" 4 "), critic("Q", [], "a", 1.0)])
    assert answers == {("Q", ("a",), "b"): "4"}
    assert pp.with_stated_answer("Q", ["a", "b"], answers) == ["a", answered("b", "4")]
    assert pp.with_stated_answer("Q", ["a"], answers) == ["a"]  # step 'a' states no answer
    assert pp.with_stated_answer("Q", ["a", answered("b", "4")], answers) == ["a", answered("b", "4")]


def test_branches_off_by_hand():
    chosen = ["s0", "s1", "s2"]
    assert pp.branches_off(["s0", "s1", "bad"], [True, True, False], chosen)
    assert pp.branches_off(["s0", "bad", "more"], [True, False, None], chosen)  # ends after its error
    assert pp.branches_off(["bad"], [False], chosen)  # an error at the first step shares no step
    assert not pp.branches_off(["x0", "bad"], [True, False], chosen)  # another first step
    assert not pp.branches_off(["s0", "s1"], [True, False], chosen)  # same text as the chosen step
    assert not pp.branches_off(["s0", "s1"], [True, True], chosen)  # no error at all


def test_pair_indices_use_every_candidate_about_equally_often():
    eligible = [[0, 1, 2], [0, 1, 2]]
    assert sorted(pp.pair_indices(eligible, 3, random.Random(0))) == [
        (i, j) for i in (0, 1) for j in (0, 1, 2)
    ]
    for seed in range(5):
        capped = pp.pair_indices(eligible, 3, random.Random(seed), per_problem=3)
        assert sorted(Counter(i for i, _ in capped).values()) == [1, 2]  # the chosen take turns
        assert sorted(j for _, j in capped) == [0, 1, 2]  # each rejected once before any twice


FOUR_PLUS_FOUR = ["Four and four.", "4+4=8.", "The sum is 8."]


def two_chosen_three_wrong(tmp_path):
    """A problem with two correct solutions sharing FOUR_PLUS_FOUR[:2] (the second ends "Hence 8.") and a
    wrong alternative at each of the three steps of the first."""
    q, steps = "What is 4+4?", FOUR_PLUS_FOUR
    wrong = [(k, f"wrong step {k}.", -1.0, None) for k in range(3)]
    rows = trajectory(q, steps, [1.0, 1.0, 1.0], "8", alternatives=wrong)
    # a second correct solution: its last step is an alternative answer step off the same path
    rows.insert(len(rows) - 1, critic(q, steps[:2], "Hence 8.", 1.0, preferred=False, answer="8"))
    return write_parquet(tmp_path / "many.parquet", rows)


def test_per_problem_cap_and_seeded_determinism(tmp_path):
    steps, path = FOUR_PLUS_FOUR, two_chosen_three_wrong(tmp_path)
    every, _ = pp.build_prm800k_pairs(str(path))
    assert len(every) == 6  # 2 chosen x 3 rejected, every rejected branching off both
    assert all(p["rejected"].startswith(STEP_JOIN.join(steps[: int(p["rejected"][-2])])) for p in every)
    capped, _ = pp.build_prm800k_pairs(str(path), per_problem="2")
    assert len(capped) == 2 and len({p["chosen"] for p in capped}) == 2
    assert len({p["rejected"] for p in capped}) == 2
    again, _ = pp.build_prm800k_pairs(str(path), per_problem=2)
    assert triples(again) == triples(capped)
    others = {
        tuple(triples(pp.build_prm800k_pairs(str(path), per_problem=2, pair_seed=s)[0])) for s in range(1, 9)
    }
    assert len(others | {tuple(triples(capped))}) > 1  # the seed decides which pairs are kept


def test_spec_through_load_rows(critic_file):
    path, exclude, gold = critic_file
    rows, report = load_rows(
        f"prm800k_pairs:{path}?exclude={exclude},gold={gold},per_problem=1", "preference"
    )
    built, skipped = pp.build_prm800k_pairs(str(path), exclude=str(exclude), gold=str(gold), per_problem=1)
    assert triples(rows) == triples(built) and len(rows) == 2
    assert report.dropped[pp.EXCLUDED] == 2 and report.kept == 2
    assert report.dropped == skipped


def test_exclude_file_rows_without_a_problem_are_refused(critic_file, tmp_path):
    from rewardmodels.errors import InputError

    path, _, _ = critic_file
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"problem": "ok"}) + "\n" + json.dumps({"text": "no problem"}) + "\n")
    with pytest.raises(InputError, match="line 2.*problem"):
        pp.build_prm800k_pairs(str(path), exclude=str(bad))


LONG_PATH = ["Start.", "Step one.", "Step two.", "Step three.", "The end is 7."]


def test_matched_chosen_is_cut_to_the_rejected_number_of_steps(tmp_path):
    q = "What is 3+4?"
    wrong = [(2, "Step two is 8.", -1.0, None), (4, "The end is 8.", -1.0, "8")]
    rows = [
        *trajectory(q, LONG_PATH, [1.0] * 5, "7", alternatives=wrong),
        # a fallback problem: its chosen stays whole
        *trajectory(Q_FALLBACK, ["Three threes.", "3*3=9."], [1.0, 1.0], "9"),
        # (an error at step 0 would branch off with an empty shared prefix; this one is at step 1)
        *trajectory(Q_FALLBACK, ["Multiply.", "3*3=6."], [0.0, -1.0]),
    ]
    path = write_parquet(tmp_path / "long.parquet", rows)
    full, _ = pp.build_prm800k_pairs(str(path))
    matched, skipped = pp.build_prm800k_pairs(str(path), chosen="matched")
    whole = STEP_JOIN.join(LONG_PATH[:4] + [answered(LONG_PATH[4], "7")])
    short_rejected = STEP_JOIN.join(LONG_PATH[:2] + ["Step two is 8."])
    long_rejected = STEP_JOIN.join(LONG_PATH[:4] + [answered("The end is 8.", "8")])
    fallback = (
        Q_FALLBACK, STEP_JOIN.join(["Three threes.", answered("3*3=9.", "9")]), "Multiply.\n\n3*3=6."
    )  # fmt: skip
    assert sorted(triples(full)) == sorted([(q, whole, short_rejected), (q, whole, long_rejected), fallback])
    assert sorted(triples(matched)) == sorted(
        [
            (q, STEP_JOIN.join(LONG_PATH[:3]), short_rejected),  # 3 steps against 3: path[:3]
            (q, whole, long_rejected),  # the rejected is as long as the chosen: the whole chosen
            fallback,  # no shared prefix: the whole chosen
        ]
    )
    assert not skipped["duplicate pair (matched chosen)"]
    assert pp.matched_chosen(["a", "b"], ["a", "x", "y"]) == ["a", "b"]  # longer rejected: all of it


def test_matched_chosen_drops_the_repeat_of_two_chosen_cut_to_one_text(tmp_path):
    path = two_chosen_three_wrong(tmp_path)
    matched, skipped = pp.build_prm800k_pairs(str(path), chosen="matched")
    # 6 pairs as in full; the two chosen share steps[:2], so the pairs with the errors at steps 0 and 1
    # come out twice: 4 kept, 2 repeats counted
    assert len(matched) == 4 and skipped["duplicate pair (matched chosen)"] == 2
    assert sorted(len(p["chosen"].split(STEP_JOIN)) for p in matched) == [1, 2, 5, 5]


def test_matched_spec_through_load_rows_and_a_bad_value(critic_file):
    path, exclude, gold = critic_file
    rows, _ = load_rows(f"prm800k_pairs:{path}?exclude={exclude},gold={gold},chosen=matched", "preference")
    built, _ = pp.build_prm800k_pairs(str(path), exclude=str(exclude), gold=str(gold), chosen="matched")
    assert triples(rows) == triples(built)
    # PATH's error is at step 2 of 3: the rejected is as long as the chosen, which stays whole
    whole, rejected = STEP_JOIN.join(PATH[:2] + [answered(PATH[2], "5")]), STEP_JOIN.join(PATH[:2] + [BAD])
    assert triples(rows)[0] == (Q_SAME, whole, rejected)
    from rewardmodels.errors import InputError

    with pytest.raises(InputError, match="chosen.*'short'"):
        pp.build_prm800k_pairs(str(path), chosen="short")
