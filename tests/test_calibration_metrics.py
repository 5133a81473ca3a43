"""Calibration metrics (eval/calibration_metrics.py) against values worked out by hand, and AUROC against a
pairwise count computed a second way."""

import math
import random

import pytest

from rewardmodels.eval import calibration_metrics as cm

# Five points, five bins: [0, .2) [.2, .4) [.4, .6) [.6, .8) [.8, 1].
PROBS = [0.1, 0.4, 0.35, 0.8, 1.0]
LABELS = [0, 0, 1, 1, 1]


def test_bins_follow_the_stated_convention():
    # floor(p * 5): 0.1 -> 0; 0.4 -> 2 (a lower edge opens its bin); 0.35 -> 1; 0.8 -> 4; 1.0 -> 5 -> capped 4
    assert cm.bin_index(PROBS, 5).tolist() == [0, 2, 1, 4, 4]
    assert cm.bin_index([0.0, 0.9, 1.0], 10).tolist() == [0, 9, 9]  # p = 1.0 shares the last bin


def test_reliability_curve_by_hand():
    curve = cm.reliability_curve(PROBS, LABELS, n_bins=5)
    assert curve["count"] == [1, 1, 1, 0, 2]
    # bin 4 holds 0.8 and 1.0, both positive: conf (0.8 + 1.0) / 2 = 0.9, acc 1
    assert curve["confidence"][3] is None and curve["accuracy"][3] is None
    assert [curve["confidence"][k] for k in (0, 1, 2, 4)] == pytest.approx([0.1, 0.35, 0.4, 0.9])
    assert [curve["accuracy"][k] for k in (0, 1, 2, 4)] == [0.0, 1.0, 0.0, 1.0]
    assert curve["lower"] == pytest.approx([0, 0.2, 0.4, 0.6, 0.8]) and curve["upper"][-1] == 1.0


def test_ece_by_hand():
    # |acc - conf| per bin: .1, .65, .4, (empty), .1 with weights 1/5, 1/5, 1/5, 2/5
    # ECE = (.1 + .65 + .4 + 2 * .1) / 5 = 1.35 / 5 = 0.27
    assert cm.expected_calibration_error(PROBS, LABELS, n_bins=5) == pytest.approx(0.27)
    # p = 1.0 with label 1 sits in the last bin with nothing else: perfectly calibrated there
    assert cm.expected_calibration_error([1.0], [1], n_bins=10) == 0.0
    # last bin of 10 holds 0.95 (y=1) and 1.0 (y=0): conf .975, acc .5 -> (2/3) * .475; bin 0: 0.0, y=0 -> 0
    assert cm.expected_calibration_error([0.0, 0.95, 1.0], [0, 1, 0], 10) == pytest.approx(2 / 3 * 0.475)
    assert math.isnan(cm.expected_calibration_error([], [], 10))


def test_brier_by_hand():
    # (.1-0)^2 + (.4-0)^2 + (.35-1)^2 + (.8-1)^2 + (1-1)^2 = .01 + .16 + .4225 + .04 + 0 = .6325; / 5
    assert cm.brier_score(PROBS, LABELS) == pytest.approx(0.1265)
    assert cm.brier_score([0.5, 0.5], [True, False]) == pytest.approx(0.25)


def test_auroc_by_hand():
    # positives .35, .8, 1.0 against negatives .1, .4: .35 beats .1 only; .8 and 1.0 beat both -> 5 of 6
    # ranks: .1:1 .35:2 .4:3 .8:4 1.0:5; R+ = 11; (11 - 3*4/2) / (3*2) = 5/6
    assert cm.auroc(PROBS, LABELS) == pytest.approx(5 / 6)
    # ties: positives .5, .9 against negatives .5, .5: two ties (1/2 each) and two wins -> 3/4
    # ranks: the three .5 share (1+2+3)/3 = 2, .9 is 4; R+ = 6; (6 - 3) / 4
    assert cm.auroc([0.5, 0.5, 0.5, 0.9], [1, 0, 0, 1]) == pytest.approx(0.75)


def test_auroc_with_one_class_is_nan():
    assert math.isnan(cm.auroc([0.2, 0.7], [1, 1]))
    assert math.isnan(cm.auroc([0.2, 0.7], [0, 0]))
    assert cm.calibration_metrics([0.2, 0.7], [1, 1], 5)["auroc"] is None  # JSON-ready


def test_auroc_perfect_reversed_and_pairwise():
    assert cm.auroc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert cm.auroc([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0]) == 0.0
    rng = random.Random(7)
    for _ in range(20):
        n = rng.randint(2, 40)
        probs = [round(rng.random(), 1) for _ in range(n)]  # rounding makes ties common
        labels = [rng.random() < 0.4 for _ in range(n)]
        labels[0], labels[1] = True, False  # both classes present
        pos = [p for p, y in zip(probs, labels, strict=True) if y]
        neg = [p for p, y in zip(probs, labels, strict=True) if not y]
        pairwise = sum((a > b) + 0.5 * (a == b) for a in pos for b in neg) / (len(pos) * len(neg))
        assert cm.auroc(probs, labels) == pytest.approx(pairwise)


def test_ece_and_brier_of_a_random_array_agree_with_a_direct_loop():
    rng = random.Random(3)
    probs = [rng.random() for _ in range(50)] + [1.0, 0.0]
    labels = [int(rng.random() < p) for p in probs]
    bins: dict[int, list[int]] = {}
    for i, p in enumerate(probs):
        bins.setdefault(min(int(p * 15), 14), []).append(i)
    ece = sum(
        len(ix) / len(probs) * abs(sum(labels[i] for i in ix) / len(ix) - sum(probs[i] for i in ix) / len(ix))
        for ix in bins.values()
    )
    assert cm.expected_calibration_error(probs, labels, 15) == pytest.approx(ece)
    assert sum(cm.reliability_curve(probs, labels, 15)["count"]) == len(probs)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        cm.brier_score([1.5], [1])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        cm.auroc([float("nan"), 0.2], [1, 0])
    with pytest.raises(ValueError, match="0 or 1"):
        cm.expected_calibration_error([0.5], [2])
    with pytest.raises(ValueError, match="labels"):
        cm.brier_score([0.5, 0.5], [1])


def test_summary_is_json_ready():
    m = cm.calibration_metrics(PROBS, LABELS, n_bins=5)
    assert (m["n"], m["positives"], m["n_bins"]) == (5, 3, 5)
    assert m["ece"] == pytest.approx(0.27) and m["brier"] == pytest.approx(0.1265)
    assert m["auroc"] == pytest.approx(5 / 6)
    empty = cm.calibration_metrics([], [], 5)
    assert empty["ece"] is None and empty["brier"] is None and empty["auroc"] is None
