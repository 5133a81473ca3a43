"""The pure curation rules: LIM score, consistency, flipping, length share and rebalancing, and the
`curated=` mixing option that applies a curate run's decisions after the held-out split."""

from __future__ import annotations

import json
import math
import random

import pytest

from rewardmodels.data_builders import mixing
from rewardmodels.data_builders.curation import (
    apply_decisions,
    flipped,
    inconsistent,
    length_share,
    length_sign,
    lim_keep,
    lim_scores,
    pair_signal,
    rebalance_drops,
    row_key,
)
from rewardmodels.errors import InputError


def test_lim_score_by_hand():
    # 3 pairs x 2 checkpoints. abar^1 = (0 + 1 + 0) / 3 = 1/3, abar^2 = (1 + 1 + 0) / 3 = 2/3
    # denominator = (1 - 1/3)^2 + (1 - 2/3)^2 = 4/9 + 1/9 = 5/9
    # pair 0: (0 - 1/3)^2 + (1 - 2/3)^2 = 2/9 -> 1 - (2/9) / (5/9) = 0.6
    # pair 1: (1 - 1/3)^2 + (1 - 2/3)^2 = 5/9 -> 0;  pair 2: (0 - 1/3)^2 + (0 - 2/3)^2 = 5/9 -> 0
    scores, means = lim_scores([[0, 1], [1, 1], [0, 0]])
    assert means == pytest.approx([1 / 3, 2 / 3])
    assert scores == pytest.approx([0.6, 0.0, 0.0])
    assert lim_keep(scores, threshold=0.6) == [True, False, False]
    # top fraction: ceil(0.5 x 3) = 2 pairs, the tie between pairs 1 and 2 goes to the earlier one
    assert lim_keep(scores, threshold=None, top_fraction=0.5) == [True, True, False]


def test_lim_score_with_sigmoid_signals_and_the_zero_denominator_guard():
    # sigmoid(0) = 0.5 and sigmoid(ln 3) = 3/4. Signals [[0.5, 0.75], [0.5, 0.25]]: abar = [0.5, 0.5],
    # denominator = 0.25 + 0.25 = 0.5; each pair is 0.25 away at k=2: 1 - 0.0625 / 0.5 = 0.875
    a = [[pair_signal(0.0, "sigmoid"), pair_signal(math.log(3), "sigmoid")], [0.5, 0.25]]
    assert a[0] == pytest.approx([0.5, 0.75])
    assert lim_scores(a)[0] == pytest.approx([0.875, 0.875])
    assert pair_signal(0.0, "correct") == 0.0 and pair_signal(1e-9, "correct") == 1.0
    with pytest.raises(InputError, match=r"sum_k \(1 - abar\^k\)\^2 = 0"):
        lim_scores([[1, 1], [1, 1]])


def test_inconsistent_needs_every_scorer_below_minus_tau():
    margins = [[-2.0, -2.0, 0.5, -1.0], [-1.5, 0.1, -3.0, -1.0]]
    # pair 0: both < -1; pair 1 and 2: one scorer disagrees; pair 3: -1 is not < -1
    assert inconsistent(margins, tau=1.0) == [True, False, False, False]
    assert inconsistent(margins, tau=0.5) == [True, False, False, True]


def test_flip_swaps_the_pair_and_drops_its_margin():
    row = {"prompt": "p", "chosen": "a", "rejected": "b", "margin": 2.0, "source": "s"}
    assert flipped(row) == {"prompt": "p", "chosen": "b", "rejected": "a", "source": "s", "flipped": True}
    assert row_key(row) == row_key({"prompt": "p", "chosen": "a", "rejected": "b"})  # extra fields ignored
    assert row_key(flipped(row)) != row_key(row)


def test_length_share_and_rebalance_by_hand():
    rows = [{"prompt": "", "chosen": "x" * n, "rejected": "y" * m} for n, m in [(5, 1)] * 6 + [(1, 5)] * 2]
    rows.append({"prompt": "", "chosen": "abc", "rejected": "xyz"})  # equal length: no signal
    rows.append({"prompt": "", "chosen": "long one", "rejected": "b", "tie": True})  # a tie: not counted
    share = length_share(rows)
    assert (share.chosen_longer, share.rejected_longer, share.equal, share.share) == (6, 2, 1, 0.75)
    signs = [length_sign(r) for r in rows]
    # target 0.5 from 6 longer / 2 shorter: keep floor(0.5 x 2 / 0.5) = 2 longer, drop 6 - 2 = 4 of them
    drops = rebalance_drops(signs, 0.5, random.Random(0))
    assert len(drops) == 4 and all(signs[i] == 1 for i in drops)
    assert drops == rebalance_drops(signs, 0.5, random.Random(0))  # seeded: the same pairs each time
    kept = [r for i, r in enumerate(rows) if i not in set(drops)]
    assert length_share(kept).share == 0.5
    # target 0.9 from 0.75: keep floor(0.1 x 6 / 0.9) = 0 of the 2 rejected-longer pairs
    assert sorted(rebalance_drops(signs, 0.9, random.Random(0))) == [6, 7]
    assert rebalance_drops(signs, 0.75, random.Random(0)) == []


def write_decisions(path, rows, actions):
    path.write_text(
        "".join(
            json.dumps({"key": row_key(r), "action": a}) + "\n" for r, a in zip(rows, actions, strict=True)
        )
    )
    return str(path)


def test_apply_decisions_and_unknown_rows(tmp_path):
    rows = [{"prompt": str(i), "chosen": "c", "rejected": "r"} for i in range(3)]
    path = write_decisions(tmp_path / "d.jsonl", rows, ["keep", "drop", "flip"])
    from rewardmodels.data_builders.curation import read_decisions

    out, counts = apply_decisions(rows, read_decisions(path), "src", path)
    assert [(r["prompt"], r["chosen"]) for r in out] == [("0", "c"), ("2", "r")]
    assert counts == {"keep": 1, "drop": 1, "flip": 1}
    with pytest.raises(InputError, match="1 of 4 training rows of source 'src' are not in this curate"):
        apply_decisions(
            rows + [{"prompt": "new", "chosen": "c", "rejected": "r"}], read_decisions(path), "src", path
        )


def test_the_curated_mixing_option_keeps_the_held_out_split(tmp_path):
    rows = [{"prompt": f"q{i}", "chosen": "good", "rejected": "bad"} for i in range(20)]
    # drop every row whose number is odd, flip row 0
    actions = ["flip" if i == 0 else ("drop" if i % 2 else "keep") for i in range(20)]
    path = write_decisions(tmp_path / "decisions.jsonl", rows, actions)
    plain = mixing.mix_source(
        mixing.parse_mix_spec("x.jsonl|eval=5"), rows, seed=3, position=1, eval_fraction=0
    )
    spec = mixing.parse_mix_spec(f"x.jsonl|eval=5,curated={path}")
    assert spec.curated == path and spec.has_options
    cur = mixing.mix_source(spec, rows, seed=3, position=1, eval_fraction=0)
    assert cur.held_out == plain.held_out  # the same held-out rows, whatever the decisions say
    expected = [
        flipped(r) if r["prompt"] == "q0" else r for r in plain.train if int(r["prompt"][1:]) % 2 == 0
    ]
    assert cur.train == expected
    assert cur.distinct_train == len(expected) < len(plain.train)
