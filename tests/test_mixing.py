"""Per-source mixing options (data_builders/mixing.py): parsing, caps, weights, held-out splits drawn per
source before caps and weights, and BT's final evaluation per source."""

import json
import random
from collections import Counter

import pytest

from rewardmodels.bt.train import main as train_main
from rewardmodels.data_builders.mixing import MixSpec, mix_source, parse_mix, parse_mix_spec, weighted
from rewardmodels.errors import InputError
from rewardmodels.training.arguments import DataArguments
from rewardmodels.training.run import load_train_eval_rows, load_train_eval_sources


def test_parse_options_names_and_defaults():
    mix = parse_mix_spec("hh_rlhf:data/hh.jsonl.gz|rows=600, weight=0.5,eval=100")
    assert mix == MixSpec("hh_rlhf:data/hh.jsonl.gz", "hh_rlhf", 100, 600, 0.5)
    # the builder's own ?options stay in the spec; a plain file is named by its stem
    assert (
        parse_mix_spec("prm800k_pairs:x.parquet?exclude=m.jsonl|name=math").spec
        == "prm800k_pairs:x.parquet?exclude=m.jsonl"
    )
    assert parse_mix_spec("data/pairs.v2.jsonl") == MixSpec("data/pairs.v2.jsonl", "pairs")
    assert [m.name for m in parse_mix(["synthetic:n=8", "synthetic:n=9", "synthetic:n=7|name=s"])] == [
        "synthetic", "synthetic-2", "s",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("synthetic:n=8|rows=x", "invalid literal"),
        ("synthetic:n=8|weigth=2", "bad mixing option 'weigth=2'"),
        ("synthetic:n=8|weight=0", "weight > 0"),
        ("synthetic:n=8|rows=0", "rows >= 1"),
    ],
)
def test_bad_options_are_refused_naming_the_spec(text, fragment):
    with pytest.raises(InputError, match=fragment) as info:
        parse_mix_spec(text)
    assert "train_data" in str(info.value)


def test_weight_repeats_whole_copies_then_samples_the_remainder():
    rows = list("abcd")
    got = weighted(rows, 2.5, random.Random(0))
    assert len(got) == 10 and got[:8] == rows * 2
    counts = Counter(got)
    assert sorted(counts.values()) == [2, 2, 3, 3]  # the remainder of 2 rows has no repeats in it
    assert (
        len(weighted(rows, 0.5, random.Random(0))) == 2
        and len(set(weighted(rows, 0.5, random.Random(0)))) == 2
    )


def test_held_out_rows_come_first_and_never_reach_training():
    rows = [{"i": i} for i in range(20)]
    got = mix_source(
        MixSpec("s", "s", eval_rows=5, max_rows=6, weight=2.0), rows, seed=3, position=1, eval_fraction=0.5
    )
    held = {r["i"] for r in got.held_out}
    assert len(held) == 5 and got.read == 20 and got.distinct_train == 6 and len(got.train) == 12
    assert not held & {r["i"] for r in got.train}
    assert Counter(r["i"] for r in got.train).most_common()[-1][1] == 2  # weight 2: every kept row twice


def test_one_source_splits_as_the_pooled_split_did():
    # The split every run used before mixing: one seeded shuffle of the rows, the first max(1, int(n*f)) held out.
    rows = [{"i": i} for i in range(50)]
    order = list(range(50))
    random.Random(7).shuffle(order)
    got = mix_source(MixSpec("s", "s"), rows, seed=7, position=0, eval_fraction=0.1)
    assert [r["i"] for r in got.held_out] == order[:5] and [r["i"] for r in got.train] == order[5:]
    # no held-out rows and no cap: file order is kept
    assert mix_source(MixSpec("s", "s"), rows, 7, 0, 0.0).train == rows


def test_load_splits_each_source_and_names_the_held_out_rows():
    args = DataArguments(
        train_data=["synthetic:n=40,seed=0|eval=4,name=a", "synthetic:n=30,seed=1|rows=10,eval=3,name=b"]
    )
    train, held_out, names = load_train_eval_sources(args, "preference", seed=0)
    assert len(train) == 36 + 10 and names == ["a"] * 4 + ["b"] * 3 and len(held_out) == 7
    assert load_train_eval_rows(args, "preference", seed=0) == (train, held_out)
    with pytest.raises(ValueError, match="--eval_data and an `eval=N`"):
        load_train_eval_sources(
            DataArguments(train_data=args.train_data, eval_data=["synthetic:n=4"]), "preference", 0
        )
    with pytest.raises(InputError, match="source 'c' .* has 5 rows"):
        load_train_eval_sources(DataArguments(train_data=["synthetic:n=5|eval=5,name=c"]), "preference", 0)


def test_bt_final_eval_reports_each_source_and_they_add_up_to_the_pooled_figure(tiny_llama, tmp_path):
    out = tmp_path / "run"
    rc = train_main([
        "--model_name_or_path", str(tiny_llama), "--output_dir", str(out), "--max_steps", "2",
        "--train_data", "synthetic:n=40,seed=0|eval=6,name=a", "synthetic:n=40,seed=1|eval=10,weight=0.5,name=b",
        "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "4", "--save_strategy", "no",
        "--max_length", "128", "--learning_rate", "1e-2",
    ])  # fmt: skip
    assert rc == 0
    manifest = json.loads((out / "rewardmodels_training.json").read_text())
    by_source = manifest["final_eval_by_source"]
    assert set(by_source) == {"a", "b"}
    acc_a, acc_b = by_source["a"]["eval_a_accuracy"], by_source["b"]["eval_b_accuracy"]
    assert manifest["final_eval"]["eval_accuracy"] == pytest.approx((6 * acc_a + 10 * acc_b) / 16)
    assert manifest["train_data"][1].endswith("|eval=10,weight=0.5,name=b")
