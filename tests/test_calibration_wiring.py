"""Calibration in the four evaluators (eval/calibration.py): each wiring on a tiny case worked out by hand,
through the evaluator's own metric layer, plus the results entry, report lines and PNG it writes."""

from __future__ import annotations

import math

import pytest

from rewardmodels.eval import best_of_n as bon
from rewardmodels.eval import calibration as cal
from rewardmodels.eval import processbench as pb
from rewardmodels.eval import rewardbench as rb

LN3 = math.log(3)  # sigmoid(ln 3) = 3/4, sigmoid(-ln 3) = 1/4
NAN = float("nan")
PNG = b"\x89PNG\r\n\x1a\n"


def s(x: float) -> float:
    return 1 / (1 + math.exp(-x))


# ---- pairs: RewardBench (and robustness) --------------------------------------------------------------


def rec(c, r):
    return {"score_chosen": c, "score_rejected": r}


# A, D right by ln 3; B wrong by ln 3; C a tie; E unscored. Each scored pair is two points:
#   A, D: (.75, 1) (.25, 0)   B: (.25, 1) (.75, 0)   C: (.5, 1) (.5, 0)          -> n = 8, unscored 1
PAIRS = [rec(LN3, 0.0), rec(0.0, LN3), rec(0.0, 0.0), rec(LN3, 0.0), rec(NAN, 1.0)]


def test_pair_calibration_by_hand():
    e = cal.pair_calibration(PAIRS)
    assert (e["n"], e["positives"], e["unscored"], e["n_bins"]) == (8, 4, 1, 15)
    # Brier: A, D 2 * .25^2 each; B 2 * .75^2; C 2 * .5^2 -> (.25 + 1.125 + .5) / 8 = 1.875 / 8
    assert e["brier"] == pytest.approx(0.234375)
    # 15 bins: .75 -> bin 11 {A, D: y=1; B: y=0}: acc 2/3, conf .75; .25 -> bin 3 {A, D: 0; B: 1}: acc 1/3,
    # conf .25; .5 -> bin 7 {1, 0}: acc .5 = conf. ECE = 3/8 * 1/12 + 3/8 * 1/12 = 1/16
    assert e["ece"] == pytest.approx(1 / 16)
    # positives {.75, .25, .5, .75} vs negatives {.25, .75, .5, .25}: each .75 beats .25, .5, .25 and ties
    # .75 -> 3.5, twice; .25 ties two .25 -> 1; .5 beats two .25, ties .5 -> 2.5. (7 + 1 + 2.5) / 16
    assert e["auroc"] == pytest.approx(10.5 / 16)


def test_v2_records_pair_every_chosen_with_every_rejected():
    p, y, unscored = cal.pair_points([2.0], [1.0, NAN, 3.0])
    # d = +1 and d = -1 (the NaN rejected gives no point)
    assert p == pytest.approx([s(1), s(-1), s(-1), s(1)]) and y == [1, 0, 1, 0] and unscored == 1
    # Brier: (1 - s(1))^2 + s(-1)^2 + (1 - s(-1))^2 + s(1)^2 over 4 = (s(1)^2 + s(-1)^2) / 2
    e = cal.pair_calibration([rec([2.0], [1.0, NAN, 3.0])])
    assert e["brier"] == pytest.approx((s(1) ** 2 + s(-1) ** 2) / 2)


def test_rewardbench_results_report_and_png(tmp_path):
    from tests.test_rewardbench import v1_rows

    rows, table = v1_rows([("a", LN3, 0.0), ("a", 0.0, LN3), ("b", 0.0, 0.0), ("b", LN3, 0.0)])
    data = rb.prepare_examples(rows, 1)
    from tests.test_rewardbench import StubScorer

    out = rb.run_rewardbench(StubScorer(table), data, tmp_path / "o", progress=False)
    c = out.results["calibration"]
    assert (c["n"], c["ece"], c["brier"], c["auroc"]) == (8, pytest.approx(1 / 16), pytest.approx(0.234375),
                                                          pytest.approx(10.5 / 16))  # fmt: skip
    assert c["probability"].startswith("sigmoid(score_chosen - score_rejected)")
    report = (tmp_path / "o" / "report.md").read_text()
    assert "| pairs | 8 | 0 | 6.2 | 23.4 | 65.6 |" in report  # x100
    assert (tmp_path / "o" / cal.DIAGRAM_NAME).read_bytes()[:8] == PNG


def test_robustness_reports_each_variant(tmp_path):
    from rewardmodels.eval.robustness_report import markdown_report, write_calibration_diagram
    from tests.test_robustness import LengthScorer, run

    summary = run(tmp_path, LengthScorer())
    c = summary["calibration"]
    assert set(c) == {"original", "filler", "answer_format", "style"}
    # original, score = characters: d = 20 - 6 = 14, 6 - 25 = -19, 3 - 7 = -4.
    # AUROC: positives s(14), s(-19), s(-4) against negatives s(-14), s(19), s(4): s(14) beats s(-14) and
    # s(4); s(-4) beats s(-14); s(-19) beats nothing -> 3 / 9
    o = c["original"]
    assert o["n"] == 6 and o["auroc"] == pytest.approx(1 / 3)
    # Brier: per pair 2 (1 - s(d))^2 over 2 points = mean of s(-d)^2 = (s(-14)^2 + s(19)^2 + s(4)^2) / 3
    assert o["brier"] == pytest.approx((s(-14) ** 2 + s(19) ** 2 + s(4) ** 2) / 3)
    # bin 14 holds s(14) (y=1), s(19) (0), s(4) (0): acc 1/3; bin 0 the mirror, acc 2/3, conf 1 - conf_14.
    # ECE = 1/2 |1/3 - conf_14| + 1/2 |2/3 - (1 - conf_14)| = conf_14 - 1/3
    assert o["ece"] == pytest.approx((s(14) + s(19) + s(4)) / 3 - 1 / 3)
    assert c["filler"]["auroc"] == 1.0  # every chosen answer is now the longer one
    assert c["answer_format"] == o  # nothing rewritten: the original scores
    assert c["style"]["n"] == 2 * 9 * 2  # two rows, 3 x 3 combinations, both orders
    results = {
        "dataset": "rb.jsonl", "pairs": 3, "transforms": ["filler", "answer_format"], "apply_to": "chosen",
        "style_dataset": "style.jsonl", "scorers": {"one": summary},
    }  # fmt: skip
    assert "| one: filler | 6 | 0 |" in markdown_report(results)
    assert write_calibration_diagram(tmp_path, results).read_bytes()[:8] == PNG


# ---- steps: ProcessBench -------------------------------------------------------------------------------


def test_step_points_stop_at_the_first_error():
    assert cal.step_points([0.9, 0.8, 0.3, 0.7], 2) == ([0.9, 0.8, 0.3], [1, 1, 0], 0)  # 0.7: after it
    assert cal.step_points([0.6, NAN], -1) == ([0.6], [1], 1)  # all correct; the NaN step unscored
    assert cal.step_points([NAN, 0.2, 0.5], 1) == ([0.2], [0], 1)


def examples():
    return [
        {"id": "1", "subset": "a", "step_scores": [0.9, 0.8, 0.3, 0.7], "label": 2},
        {"id": "2", "subset": "b", "step_scores": [0.6, 0.2], "label": -1},
        {"id": "3", "subset": "b", "step_scores": [0.4, 0.9], "label": 0},
    ]


def test_processbench_calibration_by_hand(tmp_path):
    results = pb.evaluate(examples(), threshold=0.5)
    # points: (.9,1) (.8,1) (.3,0) | (.6,1) (.2,1) | (.4,0); the 0.7 and the last 0.9 lie after an error
    c = results["calibration"]
    assert (c["n"], c["positives"], c["unscored"]) == (6, 4, 0)
    # Brier: .01 + .04 + .09 + .16 + .64 + .16 = 1.1, over 6
    assert c["brier"] == pytest.approx(1.1 / 6)
    # every point alone in its bin (15 bins: 13, 12, 4, 9, 3, 6): ECE = mean |y - p| = 2.2 / 6
    assert c["ece"] == pytest.approx(2.2 / 6)
    # positives .9 .8 .6 .2 against negatives .3 .4: the first three beat both, .2 neither -> 6 / 8
    assert c["auroc"] == pytest.approx(0.75)
    a, b = results["calibration_by_subset"]["a"], results["calibration_by_subset"]["b"]
    assert a["auroc"] == 1.0 and a["brier"] == pytest.approx(0.14 / 3) and a["ece"] == pytest.approx(0.2)
    # b: (.6,1) (.2,1) (.4,0): .6 beats .4, .2 does not -> 1/2; Brier (.16 + .64 + .16) / 3
    assert b["auroc"] == 0.5 and b["brier"] == pytest.approx(0.32) and b["ece"] == pytest.approx(1.6 / 3)
    for e in examples():
        e.update(problem="p", steps=["s"] * len(e["step_scores"]))
    pb.write_outputs(results, [dict(e, prediction=-1) for e in examples()], tmp_path, "t")
    text = (tmp_path / "results.md").read_text()
    assert "| all steps | 6 | 0 | 36.7 | 18.3 | 75.0 |" in text and "| b | 3 | 0 |" in text
    assert (tmp_path / cal.DIAGRAM_NAME).read_bytes()[:8] == PNG


def test_processbench_without_probabilities_says_so():
    rows = [{"id": "1", "subset": "a", "step_scores": [2.0, -1.0], "label": 1}]  # raw rewards, not in [0, 1]
    results = pb.evaluate(rows, threshold=0.0)
    assert (
        results["calibration"]["probability"] is None and "outside [0, 1]" in results["calibration"]["reason"]
    )
    assert "calibration_by_subset" not in results
    text = "\n".join(cal.markdown_lines(cal.entries_of(results, "all steps")))
    assert "Calibration of all steps: none, 2 step scores lie outside [0, 1]" in text
    direct = pb.evaluate([{"id": "1", "subset": "a", "label": 0, "prediction": 0}], mode="direct")
    assert (
        direct["calibration"]["probability"] is None
        and "first-error index" in direct["calibration"]["reason"]
    )


# ---- candidates: best-of-N -----------------------------------------------------------------------------


def problem(answer, candidates, scores):
    return {"id": answer, "problem": "q", "answer": answer, "candidates": candidates, "scores": scores}


def test_best_of_n_probabilities_as_they_are():
    problems = [
        problem("7", ["\\boxed{7}", "\\boxed{3}"], [0.9, 0.2]),
        problem("5", ["\\boxed{4}", "\\boxed{5}"], [0.6, NAN]),
    ]
    c = bon.evaluate(problems)["calibration"]
    # points (.9, 1) (.2, 0) (.6, 0); the NaN candidate is unscored
    assert (c["n"], c["positives"], c["unscored"]) == (3, 1, 1)
    assert c["probability"].startswith("the candidate's score as P(correct)")
    assert c["brier"] == pytest.approx((0.01 + 0.04 + 0.36) / 3)  # .41 / 3
    assert c["ece"] == pytest.approx((0.1 + 0.2 + 0.6) / 3)  # bins 13, 3, 9: each alone
    assert c["auroc"] == 1.0  # .9 beats .2 and .6


def test_best_of_n_real_scores_through_a_sigmoid(tmp_path):
    problems = [problem("7", ["\\boxed{7}", "\\boxed{3}"], [LN3, -LN3])]
    results = bon.evaluate(problems)
    c = results["calibration"]
    # sigmoid: (.75, 1) (.25, 0); Brier (.0625 + .0625) / 2; bins 11 and 3 alone: ECE (.25 + .25) / 2
    assert c["probability"].startswith("sigmoid") and c["brier"] == pytest.approx(0.0625)
    assert c["ece"] == pytest.approx(0.25) and c["auroc"] == 1.0
    assert "| candidates | 2 | 0 | 25.0 | 6.2 | 100.0 |" in bon.markdown_report(results, "t")
    assert cal.write_diagram(tmp_path, {"candidates": c}).read_bytes()[:8] == PNG
