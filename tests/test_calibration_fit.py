"""Temperature scaling (issue 26) in pure pieces: the fit against optima worked out by hand, the refusal of
separated data, the stored calibration read and applied by hand, where a fit may be used, the split by prompt
and the points of each format."""

import math

import pytest

from rewardmodels.errors import InputError
from rewardmodels.eval import calibrate_data as data
from rewardmodels.eval.calibrate_results import fit_and_evaluate
from rewardmodels.eval.calibration_fit import fit_temperature, log_loss, separation
from rewardmodels.scorers.calibration import Calibration, as_logit, check_use, read_calibration


def test_fit_recovers_log_3_when_the_frequencies_are_three_quarters_and_one_quarter():
    # z = +1: 3 of 4 labels are 1; z = -1: 1 of 4. Two distinct z, so the fit reproduces both frequencies:
    # sigmoid(a + b) = 3/4 -> a + b = log 3;  sigmoid(-a + b) = 1/4 -> -a + b = -log 3;  so a = log 3, b = 0.
    z = [1.0] * 4 + [-1.0] * 4
    y = [1, 1, 1, 0] + [1, 0, 0, 0]
    fit = fit_temperature(z, y)
    assert fit.scale == pytest.approx(math.log(3), abs=1e-9)
    assert fit.bias == pytest.approx(0.0, abs=1e-9)
    # L = -(1/8) [6 log(3/4) + 2 log(1/4)]: each z has three points at p = 3/4 right and one at 1/4
    assert fit.log_loss == pytest.approx(-(6 * math.log(0.75) + 2 * math.log(0.25)) / 8, abs=1e-12)
    assert fit_temperature(z, y) == fit  # deterministic: the same numbers to the last bit


def test_fit_recovers_a_nonzero_bias():
    # z = 0: 1 of 5 labels is 1 -> sigmoid(b) = 1/5 -> b = log(1/4) = -log 4
    # z = 1: 1 of 2 -> sigmoid(a + b) = 1/2 -> a + b = 0 -> a = log 4
    fit = fit_temperature([0.0] * 5 + [1.0] * 2, [1, 0, 0, 0, 0] + [1, 0])
    assert fit.scale == pytest.approx(math.log(4), abs=1e-9)
    assert fit.bias == pytest.approx(-math.log(4), abs=1e-9)


def test_scale_alone_for_pairs():
    # b fixed at 0, one point (d, 1) per pair: 3 pairs with d = 1, 1 pair with d = -1.
    # dL/da = 0 <=> 3 (1 - sigmoid(a)) - sigmoid(a) = 0 <=> sigmoid(a) = 3/4 <=> a = log 3
    fit = fit_temperature([1.0, 1.0, 1.0, -1.0], [1, 1, 1, 1], fit_bias=False)
    assert fit.scale == pytest.approx(math.log(3), abs=1e-9) and fit.bias == 0.0


def test_log_loss_by_hand():
    # t = 2 * 0.5 + 0 = 1 with y = 1: softplus(1) - 1 = log(1 + e^-1); t = -1 with y = 0: log(1 + e^-1)
    assert log_loss([0.5, -0.5], [1, 0], scale=2.0) == pytest.approx(math.log(1 + math.exp(-1)), abs=1e-15)
    assert log_loss([0.0], [1]) == pytest.approx(math.log(2), abs=1e-15)


def test_separated_labels_have_no_finite_fit():
    assert "separate" in separation([0.1, 0.2, 0.9], [0, 0, 1])
    assert separation([0.1, 0.2, 0.9], [0, 1, 0]) is None
    assert separation([1.0, 2.0], [1, 1]) == "every label is 1"
    # ties across the labels at the boundary are still separation (quasi-complete): 0.5 <= 0.5
    assert separation([0.2, 0.5, 0.5, 0.9], [0, 0, 1, 1]) is not None
    assert "ranked the same way" in separation([0.3, 1.2, 0.0], [1, 1, 1], fit_bias=False)
    with pytest.raises(ValueError, match="no finite minimum"):
        fit_temperature([0.1, 0.2, 0.9], [0, 0, 1])


def test_stored_calibration_applied_by_hand():
    # probability score 0.8: z = log(0.8 / 0.2) = log 4; a = 2, b = 0 -> sigmoid(2 log 4) = 16 / 17
    cal = Calibration(scale=2.0, bias=0.0, score="probability", target="response")
    assert cal.probability(0.8) == pytest.approx(16 / 17, abs=1e-12)
    # logit score 1.5: a = 0.5, b = -0.75 -> sigmoid(0) = 1/2; NaN stays NaN
    cal = Calibration(scale=0.5, bias=-0.75, score="logit", target="pair")
    assert cal.probability(1.5) == 0.5 and math.isnan(cal.probability(math.nan))
    # a probability of exactly 1 is clamped to 1 - 1e-7 before the logit, so it stays finite
    assert as_logit(1.0, "probability") == pytest.approx(math.log((1 - 1e-7) / 1e-7), rel=1e-9)


def test_read_calibration_names_the_bad_field():
    entry = {"scale": 1.5, "bias": 0.0, "score": "logit", "target": "pair"}
    assert read_calibration({"calibration": entry}) == Calibration(1.5, 0.0, "logit", "pair")
    assert read_calibration({}) is None
    with pytest.raises(InputError, match=r"field 'calibration.scale': expected a finite number"):
        read_calibration({"calibration": {**entry, "scale": "big"}}, "m.json")
    with pytest.raises(InputError, match=r"field 'calibration.target'"):
        read_calibration({"calibration": {**entry, "target": "tokens"}}, "m.json")


def test_where_a_fit_applies():
    response_fit = Calibration(1.0, 0.0, "logit", "response")
    step_fit = Calibration(2.0, 0.1, "probability", "step")
    check_use(response_fit, None)
    check_use(step_fit, "min")
    check_use(step_fit, "last")
    with pytest.raises(ValueError, match="fitted on step scores"):
        check_use(step_fit, None)
    with pytest.raises(ValueError, match="fitted on its response score"):
        check_use(response_fit, "min")
    with pytest.raises(ValueError, match="min or last"):
        check_use(step_fit, "prod")
    with pytest.raises(ValueError, match="positive scale"):
        check_use(Calibration(-1.0, 0.0, "probability", "step"), "min")
    # an implicit PRM fitted with step_scores=reward (logits), loaded with sigmoid_q (probabilities)
    with pytest.raises(ValueError, match="read the implicit_prm scorer's scores as logits, but as loaded"):
        check_use(Calibration(1.0, 0.0, "logit", "step"), "min", "implicit_prm", declared_scale="probability")


def test_split_keeps_a_prompt_on_one_side_and_is_seeded():
    rows = [{"prompt": f"p{i // 2}", "completion": "c", "label": i % 2} for i in range(20)]  # 10 prompts x 2
    fit, held = data.split_rows(rows, "responses", 0.5, seed=3)
    assert len(fit) == len(held) == 10 and sorted(fit + held) == list(range(20))
    assert {rows[i]["prompt"] for i in fit}.isdisjoint({rows[i]["prompt"] for i in held})
    assert data.split_rows(rows, "responses", 0.5, seed=3) == (fit, held)
    assert data.split_rows(rows, "responses", 0.5, seed=4) != (fit, held)
    with pytest.raises(InputError, match="cannot be split"):
        data.split_rows(rows[:2], "responses", 0.5, seed=0)  # one prompt


def test_points_of_each_format():
    # pairs: d = z_c - z_r with probability scores 0.8 and 0.5 -> log 4 - 0 ; a NaN score -> unscored
    z, y, unscored = data.points("pairs", [{}, {}], [[0.8, 0.5], [math.nan, 0.5]], "probability")
    assert z == [pytest.approx(math.log(4))] and y == [1] and unscored == 1
    # processbench: first error at step 1 of 3 -> labels 1, 0, (left out)
    row = {"problem": "q", "steps": ["a", "b", "c"], "label": 1}
    assert data.points("processbench", [row], [[0.5, 0.2, 0.9]], "logit") == ([0.5, 0.2], [1, 0], 0)
    steps = {"prompt": "q", "completions": ["a", "b"], "labels": [None, False]}
    assert data.points("steps", [steps], [[3.0, -1.0]], "logit") == ([-1.0], [0], 0)


def test_pair_metrics_count_both_orders():
    # Fit on d = 1, 1, 1, -1 (a = log 3, b = 0: test above); held out: one pair with d = 1.
    # Both orders: p = sigmoid(log 3) = 3/4 with y = 1, p = 1/4 with y = 0 -> Brier (1/16 + 1/16) / 2 = 1/16
    out = fit_and_evaluate("pairs", ([1.0, 1.0, 1.0, -1.0], [1, 1, 1, 1]), ([1.0], [1]))
    after = out["heldout"]["after"]
    assert out["fit"]["scale"] == pytest.approx(math.log(3)) and out["fit"]["bias"] == 0.0
    assert after["n"] == 2 and after["brier"] == pytest.approx(1 / 16)
    # ECE: bins 3 (p = 1/4, y = 0) and 11 (p = 3/4, y = 1): each |acc - conf| = 1/4 -> ECE 1/4
    assert after["ece"] == pytest.approx(0.25)
    assert after["log_loss"] == pytest.approx(-math.log(0.75))


def test_bad_rows_name_line_and_field():
    rows = [{"prompt": "p", "completion": "c", "label": 1}, {"prompt": "p", "completion": "c", "label": 0.5}]
    with pytest.raises(InputError, match=r"row 2, field 'label': soft label"):
        data.checked_rows(rows, "responses", "d.jsonl")
    assert data.detect_format([{"prompt": "p", "response": "r", "label": 0}], "d") == "responses"
    renamed = data.checked_rows([{"prompt": "p", "response": "r", "label": 0}], "responses", "d")
    assert renamed[0]["completion"] == "r"
    with pytest.raises(InputError, match="cannot tell the format"):
        data.detect_format([{"text": "x"}], "d.jsonl")
