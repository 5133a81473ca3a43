"""The robustness evaluator: its arithmetic on hand-built scores, the runner with a scorer whose scores are
worked out by hand (length-following), resume, an RM-Bench-format fixture, and bad rows refused first."""

from __future__ import annotations

import json

import pytest

from rewardmodels.data_builders.spurious import FILLER_CLOSING, FILLER_OPENING
from rewardmodels.errors import InputError
from rewardmodels.eval import robustness as rob
from rewardmodels.eval.robustness_metrics import length_bias, style_matrix, transform_effect


def rec(c, r):
    return {"score_chosen": c, "score_rejected": r}


# ---- arithmetic ----------------------------------------------------------------------------------------


def test_transform_effect_counts_drop_and_flips_over_all_pairs():
    original = [rec(2, 1), rec(2, 1), rec(1, 2), rec(1, 1)]  # right, right, wrong, wrong (tie)
    after = [rec(2, 1), rec(0, 1), rec(3, 2), rec(1, 1)]  # right, wrong, right, wrong
    e = transform_effect(original, after, [False, True, True, False])
    assert (e["accuracy_original"], e["accuracy"], e["drop"]) == (0.5, 0.5, 0.0)
    assert (e["flips"], e["flip_rate"], e["changed_pairs"]) == (2, 0.5, 2)


def test_length_bias_splits_by_the_longer_response():
    records = [rec(2, 1), rec(2, 1), rec(1, 2), rec(2, 1), rec(0, 1)]
    lengths = [(10, 5), (9, 3), (4, 8), (3, 9), (5, 5)]
    out = length_bias(records, lengths)
    assert out["chosen_longer"] == {"pairs": 2, "accuracy": 1.0}
    assert out["chosen_shorter"] == {"pairs": 2, "accuracy": 0.5}
    assert out["same_length"] == {"pairs": 1, "accuracy": 0.0}
    assert out["gap"] == 0.5


def test_style_matrix_matches_rm_bench_triangles():
    # Row 1: chosen [3, 5, 7], rejected [4, 6, 8]; row 2: chosen [1, 1, 9], rejected [0, 0, 0].
    records = [rec([3, 5, 7], [4, 6, 8]), rec([1, 1, 9], [0, 0, 0])]
    m = style_matrix(records)
    # row 1 wins where chosen_i > rejected_j: (1,0), (2,0), (2,1); row 2 wins everywhere.
    assert m["matrix"] == [[0.5, 0.5, 0.5], [1.0, 0.5, 0.5], [1.0, 1.0, 0.5]]
    assert m["hard"] == pytest.approx(0.5) and m["normal"] == pytest.approx(0.5)
    assert m["easy"] == pytest.approx(1.0)


# ---- the runner with a hand-checkable scorer -----------------------------------------------------------


class LengthScorer:
    """score = number of characters of the response: a reward model that follows length only."""

    kind = "stub"

    def __init__(self):
        self.sequences = 0

    def score(self, prompts, responses, batch_size: int = 16):
        self.sequences += len(responses)
        return [float(len(r)) for r in responses]


PAIRS = [
    {"id": 0, "subset": "a", "prompt": "q0", "chosen": "A long right answer.", "rejected": "Short."},
    {"id": 1, "subset": "a", "prompt": "q1", "chosen": "Brief.", "rejected": "A long wrong answer here."},
    {"id": 2, "subset": "b", "prompt": "q2", "chosen": "Yes", "rejected": "No, no."},
]
STYLE = [
    {"id": "s0", "domain": "chat", "prompt": "p", "chosen": ["a" * 3, "a" * 5, "a" * 7],
     "rejected": ["a" * 4, "a" * 6, "a" * 8]},
    {"id": "s1", "domain": "math", "prompt": "p", "chosen": ["b", "bb", "b" * 9], "rejected": ["c"] * 3},
]  # fmt: skip


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run(tmp_path, scorer, transforms=("filler", "answer_format"), apply_to="chosen"):
    pairs = rob.load_pairs(str(write_jsonl(tmp_path / "rb.jsonl", PAIRS)), None, False).examples
    style = rob.load_style_rows(str(write_jsonl(tmp_path / "style.jsonl", STYLE)), None)
    desc = {"path": "length-scorer"}
    return rob.evaluate_scorer(
        scorer, desc, tmp_path / "out", pairs, list(transforms), apply_to, style, progress=False
    )


def test_runner_on_a_length_following_scorer(tmp_path):
    scorer = LengthScorer()
    s = run(tmp_path, scorer)
    # original: only pair 0 has the longer chosen answer
    assert s["original"] == {"pairs": 3, "accuracy": pytest.approx(1 / 3)}
    assert s["length_bias"]["chosen_longer"]["accuracy"] == 1.0 and s["length_bias"]["gap"] == 1.0
    # filler on the chosen side adds len(opening) + len(closing) + 4 characters: every chosen is longer
    assert len(FILLER_OPENING) + len(FILLER_CLOSING) + 4 > len(PAIRS[1]["rejected"])
    f = s["transforms"]["filler"]
    assert (f["accuracy"], f["changed_pairs"], f["flips"]) == (1.0, 3, 2)
    assert f["drop"] == pytest.approx(1 / 3 - 1.0)
    # answer_format finds no final answer: nothing changes, nothing is rescored
    a = s["transforms"]["answer_format"]
    assert (a["changed_pairs"], a["flips"], a["accuracy"]) == (0, 0, pytest.approx(1 / 3))
    # style, by length: row s0 ([3, 5, 7] vs [4, 6, 8]) wins at (1,0), (2,0), (2,1); row s1 ([1, 2, 9] vs
    # [1, 1, 1]) wins every cell but (0, j), where 1 ties 1
    assert s["style"]["matrix"] == [[0.0, 0.0, 0.0], [1.0, 0.5, 0.5], [1.0, 1.0, 0.5]]
    assert s["style"]["by_domain"]["chat"]["hard"] == 0.0 and s["style"]["rows"] == 2
    # original pairs, filler pairs, style rows (s1's three identical "c" scored once); no answer_format
    assert scorer.sequences == 6 + 6 + (6 + 4)

    again = LengthScorer()
    assert run(tmp_path, again) == s and again.sequences == 0  # resumed from the journals


def test_apply_to_both_keeps_a_length_bias_but_not_the_ranking(tmp_path):
    s = run(tmp_path, LengthScorer(), transforms=("filler",), apply_to="both")
    assert s["transforms"]["filler"]["flips"] == 0  # the same characters added to both sides


def test_report_and_chart_side_by_side(tmp_path):
    from rewardmodels.eval.robustness_report import markdown_report, write_chart

    s = run(tmp_path, LengthScorer())
    results = {
        "dataset": "rb.jsonl", "pairs": 3, "transforms": ["filler", "answer_format"], "apply_to": "chosen",
        "style_dataset": "style.jsonl", "scorers": {"one": s, "two": s},
    }  # fmt: skip
    text = markdown_report(results)
    assert "| filler | 3 | 100.0 | -66.7 | 66.7 | 100.0 | -66.7 | 66.7 |" in text
    assert "| gap (longer - shorter) | – | 100.0 | 100.0 |" in text
    write_chart(tmp_path / "chart.png", results)
    assert (tmp_path / "chart.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"prompt": "p", "chosen": ["a", "b"], "rejected": ["a", "b", "c"]}, "chosen"),
        ({"prompt": "p", "chosen": ["a", "b", "c"], "rejected": ["a", "", "c"]}, "rejected"),
        ({"prompt": 3, "chosen": ["a", "b", "c"], "rejected": ["a", "b", "c"]}, "prompt"),
    ],
)
def test_bad_style_rows_name_file_line_and_field_before_any_model(tmp_path, bad, field):
    path = write_jsonl(tmp_path / "style.jsonl", [STYLE[0], bad])
    with pytest.raises(InputError) as e:
        rob.main(["--scorer", str(tmp_path / "missing"), "--style-dataset", str(path)])
    assert e.value.file == str(path) and e.value.line == 2 and e.value.field == field


def test_unknown_transform_is_refused(tmp_path):
    with pytest.raises(InputError, match="--transforms"):
        rob.main(["--scorer", "x", "--dataset", "y", "--transforms", "rot13"])


def test_evenly_spaced_sample():
    assert rob.evenly_spaced(list(range(10)), 4) == [0, 2, 5, 7]
    assert rob.evenly_spaced([1, 2], None) == [1, 2]
