"""The ProcessBench metric on hand-built cases, the threshold sweep, tuning on one subset, and the written files."""

import json

import numpy as np
import pytest

from rewardmodels.errors import InputError
from rewardmodels.eval import processbench as pb


def test_prediction_is_the_first_step_below_the_threshold():
    assert pb.predict_from_scores([0.9, 0.8, 0.7], 0.5) == -1  # all correct
    assert pb.predict_from_scores([0.1, 0.9, 0.9], 0.5) == 0  # early error
    assert pb.predict_from_scores([0.9, 0.8, 0.7, 0.2], 0.5) == 3  # late error
    assert pb.predict_from_scores([0.9, 0.5, 0.2], 0.5) == 2  # a score equal to t is not below it
    nan = float("nan")
    # An unscored step reached first leaves the prediction undetermined (official rule: a miss) ...
    assert pb.predict_from_scores([0.9, nan, 0.2], 0.5) is None
    assert pb.predict_from_scores([0.1, nan], 0.5) == 0  # ... but an error found before it stands
    # the old reading, kept as an option: an unscored step is never an error
    assert pb.predict_from_scores([0.9, nan, 0.2], 0.5, unscored="correct") == 2


def test_a_truncated_row_is_a_miss_on_both_sides():
    """Two correct and two erroneous samples; one of each truncated (its last step NaN). By hand at t = 0.5:
    the truncated correct sample is a miss (not "no error found"), so acc_correct = 1/2 rather than 1; the
    truncated erroneous sample whose error sits before the cut is still right; F1 = 2(1)(0.5)/1.5 = 2/3."""
    nan = float("nan")
    scores = [[0.9, 0.8], [0.9, nan], [0.2, 0.9], [0.3, nan]]
    labels = [-1, -1, 0, 0]
    predictions = [pb.predict_from_scores(s, 0.5) for s in scores]
    assert predictions == [-1, None, 0, 0]
    m = pb.subset_metrics(labels, predictions)
    assert (m["acc_erroneous"], m["acc_correct"]) == (1.0, 0.5) and m["f1"] == pytest.approx(2 / 3)
    old = pb.subset_metrics(labels, [pb.predict_from_scores(s, 0.5, unscored="correct") for s in scores])
    assert old["acc_correct"] == 1.0  # what the old default reported
    _, acc_cor, f1 = pb.f1_curve(scores, labels, np.array([0.5]))
    assert acc_cor[0] == 0.5 and f1[0] == pytest.approx(2 / 3)  # the sweep follows the same rule
    from rewardmodels.eval.processbench_metrics import solution_level_f1

    level = solution_level_f1(labels, predictions)
    assert level["accuracy"] == 0.75  # the undetermined sample is wrong at solution level too


def test_subset_metrics_by_hand():
    # every sample right
    m = pb.subset_metrics([-1, -1, 0, 3], [-1, -1, 0, 3])
    assert (m["acc_erroneous"], m["acc_correct"], m["f1"]) == (1.0, 1.0, 1.0)
    # off by one on one of two erroneous samples; one correct sample wrongly flagged
    m = pb.subset_metrics([2, 1, -1, -1], [1, 1, -1, 0])
    assert m["acc_erroneous"] == 0.5 and m["acc_correct"] == 0.5 and m["f1"] == pytest.approx(0.5)
    # 1 of 2 erroneous right, both correct samples right: F1 = 2 * 0.5 * 1 / 1.5
    m = pb.subset_metrics([2, 1, -1, -1], [2, 0, -1, -1])
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["n"] == 4 and m["n_erroneous"] == 2 and m["n_correct"] == 2
    # nothing right at all
    assert pb.subset_metrics([0, -1], [1, 0])["f1"] == 0.0
    # no correct samples: acc_correct and F1 are undefined, not zero
    m = pb.subset_metrics([0, 1], [0, 1])
    assert m["acc_correct"] is None and m["f1"] is None


SCORES = [
    [0.7, 0.65],  # label -1: right while t <= 0.65
    [0.8, 0.3],  # label 1:  right while 0.3 < t <= 0.8
    [0.5, 0.9],  # label 0:  right while t > 0.5
    [0.9, 0.7, 0.4],  # label 1: right while 0.7 < t <= 0.9, so never together with the first
]
LABELS = [-1, 1, 0, 1]


@pytest.mark.parametrize("unscored", ["miss", "correct"])
@pytest.mark.parametrize("gaps", [False, True])
def test_threshold_sweep_matches_brute_force(unscored, gaps):
    scores = [list(s) for s in SCORES]
    if gaps:  # unscored steps after, at and before the labelled error
        scores += [[0.9, 0.3, float("nan")], [0.6, float("nan"), 0.2], [float("nan"), 0.7]]
    labels = LABELS + ([1, 1, -1] if gaps else [])
    thresholds = np.array([0.0, 0.3, 0.35, 0.5, 0.55, 0.6, 0.62, 0.65, 0.7, 0.75, 0.8, 0.85, 1.0])
    acc_err, acc_cor, f1 = pb.f1_curve(scores, labels, thresholds, unscored)
    for i, t in enumerate(thresholds):
        m = pb.subset_metrics(labels, [pb.predict_from_scores(s, t, unscored) for s in scores])
        assert acc_err[i] == pytest.approx(m["acc_erroneous"]) and acc_cor[i] == pytest.approx(
            m["acc_correct"]
        )
        assert f1[i] == pytest.approx(m["f1"])


def test_tuning_picks_a_threshold_inside_the_best_interval():
    # t in (0.5, 0.65]: erroneous 2 of 3 right, correct 1 of 1 -> F1 0.8, the best there is
    t, f1 = pb.tune_threshold(SCORES, LABELS)
    assert 0.5 < t <= 0.65 and f1 == pytest.approx(0.8)
    assert t == pytest.approx(0.575)  # the midpoint between the neighbouring scores 0.5 and 0.65
    brute = max(
        pb.subset_metrics(LABELS, [pb.predict_from_scores(s, x) for s in SCORES])["f1"]
        for x in np.linspace(0, 1, 1001)
    )
    assert f1 == pytest.approx(brute)


def examples():
    rows = []
    for subset, scores, labels in (("alpha", SCORES, LABELS), ("beta", [[0.58, 0.9], [0.9, 0.52]], [-1, 1])):
        for i, (s, y) in enumerate(zip(scores, labels, strict=True)):
            rows.append(
                {
                    "id": f"{subset}-{i}",
                    "subset": subset,
                    "problem": "p",
                    "steps": ["x"] * len(s),
                    "label": y,
                    "step_scores": s,
                }
            )
    return rows


def test_tuning_on_one_subset_applies_to_the_others_and_says_so():
    results = pb.evaluate(examples(), threshold=0.5, tune_on="alpha")
    assert results["threshold"] == pytest.approx(0.575) and results["tuned_on"] == "alpha"
    assert "in-sample" in results["note"]
    # beta at t = 0.575: sample 0 (min 0.58) predicted -1, right; sample 1 flags step 1 (0.52), right
    assert results["subsets"]["beta"]["f1"] == 1.0
    assert results["subsets"]["alpha"]["f1"] == pytest.approx(0.8)
    assert results["average"]["f1"] == pytest.approx(0.9)
    assert results["average_f1_excluding_tuning_subset"] == 1.0
    fixed = pb.evaluate(examples(), threshold=0.5)
    assert fixed["threshold_source"] == "fixed" and fixed["subsets"]["beta"]["acc_erroneous"] == 0.0
    with pytest.raises(ValueError, match="no such subset"):
        pb.evaluate(examples(), tune_on="gamma")


class DirectPredictor:
    """A scorer that predicts the earliest error itself, as a generative verifier would."""

    def predict_first_error(self, prompts, steps):
        return [len(s) - 1 if len(s) > 2 else -1 for s in steps]


class FixedPRM:
    unscored_steps = 0

    def __init__(self, table):
        self.table = table

    def score_steps(self, prompts, steps, batch_size=16):
        return [self.table[p] for p in prompts]


def test_direct_predictors_skip_the_threshold(tmp_path):
    rows = [
        {"id": "a", "subset": "s", "problem": "p1", "steps": ["1", "2", "3"], "label": 2},
        {"id": "b", "subset": "s", "problem": "p2", "steps": ["1", "2"], "label": -1},
    ]
    results = pb.run(DirectPredictor(), rows, tmp_path, threshold=0.9)
    assert results["threshold"] is None and results["subsets"]["s"]["f1"] == 1.0
    with pytest.raises(ValueError, match="needs step scores"):
        pb.evaluate(rows, tune_on="s", mode="direct")


def test_files_from_local_data(tmp_path):
    data = [
        {
            "id": "gsm8k-0",
            "generator": "g",
            "problem": "p0",
            "steps": ["a", "b"],
            "final_answer_correct": False,
            "label": 1,
        },
        {
            "id": "gsm8k-1",
            "generator": "g",
            "problem": "p1",
            "steps": ["a", "b"],
            "final_answer_correct": True,
            "label": -1,
        },
        {
            "id": "gsm8k-2",
            "generator": "g",
            "problem": "p2",
            "steps": ["a"],
            "final_answer_correct": True,
            "label": -1,
        },
    ]
    path = tmp_path / "processbench_gsm8k.json"
    path.write_text(json.dumps(data))
    rows = pb.load_examples([str(path)], limit=2)
    assert [r["subset"] for r in rows] == ["gsm8k", "gsm8k"] and [r["id"] for r in rows] == [
        "gsm8k-0",
        "gsm8k-1",
    ]
    scorer = FixedPRM({"p0": [0.9, 0.2], "p1": [0.8, float("nan")]})
    out = tmp_path / "out"
    results = pb.run(scorer, rows, out, threshold=0.5, extra={"limit": 2})
    # p1's last step is unscored (NaN): its prediction is undetermined, a miss (the official rule)
    assert results["subsets"]["gsm8k"] == {
        "n": 2,
        "n_erroneous": 1,
        "n_correct": 1,
        "acc_erroneous": 1.0,
        "acc_correct": 0.0,
        "f1": 0.0,
    }
    assert results["undetermined_predictions"] == 1 and results["unscored_steps"] == 1
    lines = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert lines[1] == {
        "id": "gsm8k-1",
        "subset": "gsm8k",
        "label": -1,
        "prediction": None,
        "step_scores": [0.8, None],
        "correct": False,
    }
    assert json.loads((out / "results.json").read_text())["limit"] == 2
    md = (out / "results.md").read_text()
    assert "| gsm8k | 2 | 1 | 1 | 100.0 | 0.0 | 0.0 |" in md and "first 2 rows" in md


def test_bad_rows_are_named(tmp_path):
    path = tmp_path / "pb.jsonl"
    path.write_text(json.dumps({"problem": "p", "steps": ["a"], "label": 3}) + "\n")
    with pytest.raises(ValueError, match=r"line 1, field 'label'"):
        pb.load_examples([str(path)])


def test_saved_scores_can_be_reused_to_tune_the_threshold(tmp_path):
    data = [
        {"id": "g-0", "problem": "p0", "steps": ["a", "b"], "label": 1},
        {"id": "g-1", "problem": "p1", "steps": ["a", "b"], "label": -1},
    ]
    path = tmp_path / "processbench_gsm8k.json"
    path.write_text(json.dumps(data))
    scorer = FixedPRM({"p0": [0.9, 0.6], "p1": [0.8, 0.7]})
    pb.run(scorer, pb.load_examples([str(path)]), tmp_path / "first", threshold=0.5)
    first = json.loads((tmp_path / "first" / "results.json").read_text())
    assert first["subsets"]["gsm8k"]["acc_erroneous"] == 0.0  # 0.6 is not below 0.5
    out = tmp_path / "tuned"
    argv = ["--reuse-scores", str(tmp_path / "first" / "predictions.jsonl"), "--dataset", str(path)]
    assert pb.main([*argv, "--tune-threshold-on", "gsm8k", "--output-dir", str(out)]) == 0
    tuned = json.loads((out / "results.json").read_text())
    # t in (0.6, 0.7] gets both right; the candidate there is the midpoint 0.65
    assert tuned["threshold"] == pytest.approx(0.65) and tuned["subsets"]["gsm8k"]["f1"] == 1.0
    assert tuned["scores_reused_from"].endswith("predictions.jsonl") and "in-sample" in tuned["note"]
    with pytest.raises(InputError, match="give exactly one of --scorer and --reuse-scores"):
        pb.main(["--dataset", str(path)])  # neither --scorer nor --reuse-scores


class Killed(Exception):
    pass


class CountingPRM(FixedPRM):
    """FixedPRM that counts its calls and the solutions it scored, and dies on call `die_on` (a kill)."""

    def __init__(self, table, die_on: int | None = None):
        super().__init__(table)
        self.calls, self.solutions, self.die_on = 0, 0, die_on

    def score_steps(self, prompts, steps, batch_size=16):
        self.calls += 1
        if self.calls == self.die_on:
            raise Killed
        self.solutions += len(prompts)
        return super().score_steps(prompts, steps, batch_size)


def resumable_rows():
    table, rows = {}, []
    for i in range(6):
        problem = "p" * (i + 1)  # distinct lengths: the chunk plan sorts them
        table[problem] = [0.9 - 0.1 * i, 0.3 + 0.1 * i]
        rows.append(
            {"id": f"r{i}", "subset": "s", "problem": problem, "steps": ["a", "b"], "label": i % 3 - 1}
        )
    return rows, table


def test_interrupted_run_resumes_without_rescoring(tmp_path):
    rows, table = resumable_rows()
    full = pb.run(CountingPRM(table), [dict(r) for r in rows], tmp_path / "full", chunk=2)

    cut = tmp_path / "cut"
    with pytest.raises(Killed):
        pb.run(CountingPRM(table, die_on=2), [dict(r) for r in rows], cut, chunk=2)
    assert len((cut / pb.JOURNAL_NAME).read_text().splitlines()) == 2  # the first chunk was journalled
    assert not (cut / "results.json").exists()

    again = CountingPRM(table)
    resumed = pb.run(again, [dict(r) for r in rows], cut, chunk=2)
    assert again.calls == 2 and again.solutions == 4  # only the two chunks left
    assert resumed == full
    for name in ("results.json", "predictions.jsonl", "results.md"):
        assert (cut / name).read_bytes() == (tmp_path / "full" / name).read_bytes(), name

    # another threshold on the same scores: nothing is scored again
    idle = CountingPRM(table)
    other = pb.run(idle, [dict(r) for r in rows], cut, threshold=0.45, chunk=2)
    assert idle.calls == 0 and other["threshold"] == 0.45


def test_journal_from_other_settings_is_refused_unless_overwrite(tmp_path):
    rows, table = resumable_rows()
    pb.run(CountingPRM(table), [dict(r) for r in rows], tmp_path, fingerprint={"scorer": "a"})
    with pytest.raises(ValueError, match="different evaluation"):
        pb.run(CountingPRM(table), [dict(r) for r in rows], tmp_path, fingerprint={"scorer": "b"})
    fresh = CountingPRM(table)
    pb.run(fresh, [dict(r) for r in rows], tmp_path, fingerprint={"scorer": "b"}, overwrite=True)
    assert fresh.solutions == len(rows)


def test_every_bad_row_is_reported_with_its_field(tmp_path):
    path = tmp_path / "pb.jsonl"
    rows = [
        {"problem": "p", "steps": ["a"], "label": -1},
        {"problem": 3, "steps": ["a"], "label": 0},
        {"problem": "p", "steps": [], "label": -1},
        {"problem": "p", "steps": ["a", "b"], "label": True},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(pb.DataValidationError) as err:
        pb.load_examples([str(path)])
    assert [(e.index, e.field, e.kind) for e in err.value.errors] == [
        (1, "problem", "wrong type"),
        (2, "steps", "wrong type"),
        (3, "label", "wrong type"),
    ]
    assert "line 2, field 'problem': wrong type" in str(err.value)


class UndecidedPredictor:
    """A direct predictor whose output for one-step solutions cannot be read (a critic with no \\boxed{})."""

    calls = 0

    def predict_first_error(self, prompts, steps):
        UndecidedPredictor.calls += 1
        return [None if len(s) == 1 else 0 for s in steps]


def test_an_undetermined_direct_prediction_is_a_miss_and_survives_resume(tmp_path):
    rows = [
        {"id": "a", "subset": "s", "problem": "p1", "steps": ["1", "2"], "label": 0},
        {"id": "b", "subset": "s", "problem": "p2", "steps": ["1"], "label": -1},
    ]
    first = pb.run(UndecidedPredictor(), [dict(r) for r in rows], tmp_path)
    # a: predicted 0 = label 0 (hit); b: None, a miss although "no error" was the truth
    assert first["subsets"]["s"]["acc_erroneous"] == 1.0 and first["subsets"]["s"]["acc_correct"] == 0.0
    assert first["undetermined_predictions"] == 1
    UndecidedPredictor.calls = 0
    again = pb.run(UndecidedPredictor(), [dict(r) for r in rows], tmp_path)  # read back from the journal
    assert UndecidedPredictor.calls == 0 and again == first
