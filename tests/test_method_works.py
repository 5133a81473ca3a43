"""benchmarks/method_works.py end to end on a tiny random model, a couple of training steps: the printed line's
format, and its value against a figure computed another way (the trainer's own held-out evaluation, or by
hand from the exported scorer). The SmolLM2 runs themselves are benchmarks (docs/results.md), not tests."""

from __future__ import annotations

import json
import math
import re

import pytest

from benchmarks import method_works
from benchmarks.method_works_eval import accuracy_threshold, f1_at, f1_tuned, outcome_accuracy

LINE = re.compile(
    r"^method_works method=(?P<method>\S+) task=(?P<task>[abc]) seed=(?P<seed>\d+) metric=(?P<metric>\w+) "
    r"value=(?P<value>\S+) baseline=(?P<baseline>\S+) control=(?P<control>\S+) wall_s=(?P<wall>\d+)$"
)


def run(capsys, tiny_llama, tmp_path, method: str, *extra: str) -> tuple[list[re.Match], list[dict]]:
    output = tmp_path / "method_works.jsonl"
    argv = ["--method", method, "--task", "a", "--seed", "0", "--model", str(tiny_llama),
            "--train-rows", "32", "--test-rows", "16", "--steps", "2", "--output", str(output),
            "--workdir", str(tmp_path / "work"), "--train-flag=--learning_rate", "--train-flag=2e-2", *extra]  # fmt: skip
    capsys.readouterr()
    assert method_works.main(argv) == 0
    printed = capsys.readouterr().out.splitlines()
    matches = [LINE.match(line) for line in printed]
    assert printed and all(matches), printed  # stdout holds the result lines and nothing else
    records = [json.loads(line) for line in output.read_text().splitlines()]
    return matches, records


def test_bt_accuracy_is_the_trainers_and_a_finished_run_is_not_repeated(
    tiny_llama, tmp_path, capsys, monkeypatch
):
    from rewardmodels.data_builders import synthetic

    (line,), (record,) = run(capsys, tiny_llama, tmp_path, "bt")
    assert (line["method"], line["metric"], record["line"]) == ("bt", "pair_accuracy", line.group(0))
    # The exported scorer's held-out pair accuracy is the one BTTrainer computed on the same pairs.
    assert record["value"] == pytest.approx(record["details"]["trainer"]["final_eval"]["eval_accuracy"])
    assert float(line["value"]) == pytest.approx(record["value"], abs=5e-4)
    # The length rule, by hand: the longer answer wins, a tie is wrong; held-out problems are seed 1000.
    held_out = synthetic.preference_rows(16, seed=1000, task="a")
    assert record["baseline"] == sum(len(r["chosen"]) > len(r["rejected"]) for r in held_out) / 16
    assert 0 <= record["control"] <= 1
    # Run again: the stored line is printed, nothing is trained.
    monkeypatch.setattr(method_works, "run", lambda *a, **k: pytest.fail("a finished run ran again"))
    (again,), records = run(capsys, tiny_llama, tmp_path, "bt")
    assert again.group(0) == line.group(0) and len(records) == 1


def first_error(values: list[float]) -> int:
    return next((i for i, v in enumerate(values) if v < 0.5), -1)


def test_prm_f1_matches_the_trainer_and_a_hand_count(tiny_llama, tmp_path, capsys):
    from rewardmodels.data_builders import synthetic
    from rewardmodels.scorers import load_scorer

    (line,), (record,) = run(capsys, tiny_llama, tmp_path, "prm", "--keep")
    assert (line["metric"], record["metric"]) == ("first_error_f1", "first_error_f1")
    details = record["details"]
    # PRMTrainer's pooled held-out figures (fractions) at threshold 0.5, on the same rows. A tiny random model
    # cannot do arithmetic, so it calls every step right; the F1 arithmetic itself is checked by hand below.
    trainer = details["trainer"]["final_eval"]
    assert record["value"] == pytest.approx(100 * trainer["eval_first_error_f1"])
    assert details["trained"]["acc_correct"] == pytest.approx(100 * trainer["eval_first_error/acc_correct"])
    assert details["trained"]["acc_erroneous"] == pytest.approx(100 * trainer["eval_first_error/acc_error"])
    # By hand from the kept scorer's step probabilities.
    rows = synthetic.stepwise_rows(16, seed=1000, task="a")
    scorer = load_scorer(tmp_path / "work" / "prm-taska-seed0" / "run-scorer")
    predicted = [
        first_error(s)
        for s in scorer.score_steps([r["prompt"] for r in rows], [r["completions"] for r in rows])
    ]
    gold = [r["first_error"] for r in rows]
    erroneous = [p == g for p, g in zip(predicted, gold, strict=True) if g != -1]
    correct = [p == -1 for p, g in zip(predicted, gold, strict=True) if g == -1]
    a, b = sum(erroneous) / len(erroneous), sum(correct) / len(correct)
    assert record["value"] == pytest.approx(0.0 if a + b == 0 else 200 * a * b / (a + b))
    assert record["baseline"] == pytest.approx(details["baselines"]["position_prior"]["f1"])
    assert set(details["baselines"]) == {"all_correct", "random", "length", "position_prior"}
    assert not math.isnan(record["control"])


def test_first_error_f1_by_hand():
    scores = [[0.9, 0.2], [0.9, 0.9], [0.3, 0.9], [math.nan, 0.9], [0.8, 0.6]]
    labels = [1, -1, 1, -1, -1]
    # Predictions at 0.5: 1 (right), -1 (right), 0 (wrong), None (unscored first: a miss), -1 (right).
    m = f1_at(scores, labels, 0.5)
    assert (m["acc_erroneous"], m["acc_correct"]) == (50.0, pytest.approx(200 / 3))
    assert m["f1"] == pytest.approx(2 * 50 * (200 / 3) / (50 + 200 / 3))
    assert m["first_error_accuracy"] == 0.6
    # Tuned on the first two rows (any t in (0.2, 0.9] gets both right), then applied to the others.
    tuned = f1_tuned(scores[:2], labels[:2], scores[2:], labels[2:])
    assert 0.2 < tuned["threshold"] <= 0.9 and tuned["tuning_f1"] == 100.0


def test_outcome_threshold_by_hand():
    scores, labels = [-2.0, -1.0, 0.5, 1.0, 3.0], [False, True, False, True, True]
    # t = -1.5 gets 4 of 5 right (only the 0.5 one wrong); t = 0.75 also 4 of 5; the smaller t is kept.
    assert accuracy_threshold(scores, labels) == -1.5
    assert outcome_accuracy(scores, labels, 0.0) == 0.6  # -1.0 and 0.5 wrong
    assert outcome_accuracy([math.nan], [True]) == 0.0


def test_line_format():
    from benchmarks.method_works_runs import Line

    text = method_works.format_line("prm", "a", 2, Line("first_error_f1", 81.25, 33.3333, math.nan), 287.4)
    assert text == (
        "method_works method=prm task=a seed=2 metric=first_error_f1 value=81.2 baseline=33.3 control=nan wall_s=287"
    )


def test_the_results_table_averages_seeds_and_shows_each():
    from benchmarks.method_works_table import table

    def record(method, metric, seed, value, baseline, control, wall):
        return {"method": method, "task": "a", "metric": metric, "seed": seed, "value": value,
                "baseline": baseline, "control": control, "wall_s": wall}  # fmt: skip

    records = [
        record("prm", "first_error_f1", 1, 90.0, 39.0, 0.0, 150.4),
        record("bt", "pair_accuracy", 0, 1.0, 0.115, 0.53, 120.0),
        record("prm", "first_error_f1", 0, 96.3, 39.3, 0.0, 149.5),
    ]
    rows = table(records).splitlines()
    assert len(rows) == 4  # header, rule, one row per (method, task, metric) in first-seen order
    assert (
        rows[2]
        == "| prm | a | first_error_f1 | 93.2 | 0, 1 | 96.3, 90.0 | 39.3, 39.0 | 0.0, 0.0 | 150, 150 |"
    )
    assert rows[3] == "| bt | a | pair_accuracy | 1.000 | 0 | 1.000 | 0.115 | 0.530 | 120 |"
