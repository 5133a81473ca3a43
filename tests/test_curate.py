"""`rewardmodels curate` end to end: planted overlaps dropped or reported, bad rows refused before any
scoring, length rebalancing by hand, and, on tiny random models, the consistency filter and the LIM score
equal to the scores computed the other way, with a cache that a re-run reads instead of loading a model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from rewardmodels.cli import main as cli_main
from rewardmodels.data_builders.curation import lim_scores, pair_signal, row_key

LONG = (
    "A farmer has seventeen sheep and all but nine run away through a hole in the old wooden fence; how many "
    "sheep does the farmer have left at the end of the day?"
)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def synthetic_pairs(n=12, seed=5):
    from rewardmodels.data_builders import synthetic

    return synthetic.preference_rows(n, seed=seed)


def test_planted_overlaps_are_dropped_and_counted_by_source(tmp_path):
    evals = write_jsonl(
        tmp_path / "bench.jsonl", [{"question": "Name three primary colours."}, {"question": LONG}]
    )
    pairs = [
        {
            "prompt": "name three  PRIMARY colours.",
            "chosen": "red, yellow, blue",
            "rejected": "green",
            "source": "web",
        },
        {"prompt": "Riddle time. " + LONG.lower(), "chosen": "nine", "rejected": "eight", "source": "web"},
        {"prompt": "What is 2 + 2?", "chosen": "4", "rejected": "5", "source": "web"},
        {"prompt": "Say hi.", "chosen": "hi", "rejected": "bye"},  # no source field: the spec's name
    ]
    data = write_jsonl(tmp_path / "pairs.jsonl", pairs)
    out = tmp_path / "out"
    assert cli_main(["curate", data, "--decontaminate", evals, "-o", str(out), "--no-progress"]) == 0
    dropped = read_jsonl(out / "dropped.jsonl")
    assert [d["prompt"] for d in dropped] == [pairs[0]["prompt"], pairs[1]["prompt"]]
    assert [d["reason"] for d in dropped] == ["contaminated:bench", "contaminated:bench"]
    assert [d["flags"]["overlaps"][0]["kind"] for d in dropped] == ["exact", "13-gram"]
    assert [(k["prompt"], k["source"]) for k in read_jsonl(out / "kept.jsonl")] == [
        ("What is 2 + 2?", "web"),
        ("Say hi.", "pairs"),
    ]
    report = json.loads((out / "report.json").read_text())
    assert report["counts"]["web"] == {
        "read": 3,
        "kept": 1,
        "flipped": 0,
        "dropped": 2,
        "reasons": {"contaminated": 2},
    }
    assert report["decontamination"]["by_source"] == {"web": {"bench": {"exact": 1, "13-gram": 1}}}
    assert "| web | bench | 1 | 1 |" in (out / "report.md").read_text()
    assert (out / "report.png").stat().st_size > 0
    # report only: nothing dropped, the same overlaps written
    again = tmp_path / "again"
    cli_main(["curate", data, "--decontaminate", evals, "--decontaminate-action", "report", "-o", str(again)])
    assert read_jsonl(again / "dropped.jsonl") == [] and len(read_jsonl(again / "kept.jsonl")) == 4
    assert read_jsonl(again / "overlaps.jsonl") == [
        {**o, "action": "keep"} for o in read_jsonl(out / "overlaps.jsonl")
    ]


def test_length_rebalancing_by_hand(tmp_path):
    # source a: 6 chosen-longer, 2 rejected-longer (share 0.75); source b: 1 and 3 (share 0.25)
    rows = [
        {"prompt": f"a{i}", "chosen": "long answer", "rejected": "short", "source": "a"} for i in range(6)
    ]
    rows += [
        {"prompt": f"a{i}", "chosen": "short", "rejected": "long answer", "source": "a"} for i in range(6, 8)
    ]
    rows += [{"prompt": "b0", "chosen": "long answer", "rejected": "short", "source": "b"}]
    rows += [
        {"prompt": f"b{i}", "chosen": "short", "rejected": "long answer", "source": "b"} for i in range(1, 4)
    ]
    data = write_jsonl(tmp_path / "pairs.jsonl", rows)
    out = tmp_path / "out"
    assert cli_main(["curate", data, "--length-target", "0.5", "--seed", "3", "-o", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    before, after = report["length"]["before"], report["length"]["after"]
    assert (before["a"]["share"], before["b"]["share"]) == (0.75, 0.25)
    # a: keep floor(0.5 x 2 / 0.5) = 2 of the 6 chosen-longer; b: keep floor(0.5 x 1 / 0.5) = 1 of the 3
    assert report["counts"]["a"]["dropped"] == 4 and report["counts"]["b"]["dropped"] == 2
    assert (after["a"]["share"], after["b"]["share"]) == (0.5, 0.5)
    assert {d["reason"] for d in read_jsonl(out / "dropped.jsonl")} == {"length_rebalance"}
    # the same seed drops the same pairs
    cli_main(["curate", data, "--length-target", "0.5", "--seed", "3", "-o", str(tmp_path / "twice")])
    assert read_jsonl(tmp_path / "twice" / "dropped.jsonl") == read_jsonl(out / "dropped.jsonl")


def test_bad_rows_and_settings_are_refused_before_any_scoring(tmp_path, capsys):
    data = write_jsonl(
        tmp_path / "pairs.jsonl",
        [{"prompt": "p", "chosen": "a", "rejected": "b"}, {"prompt": "p", "chosen": "a"}],
    )
    out = tmp_path / "out"
    assert cli_main(["curate", data, "--scorer", str(tmp_path / "nowhere"), "-o", str(out)]) == 2
    assert "pairs.jsonl, line 2, field 'rejected': missing field" in capsys.readouterr().err
    assert not out.exists()
    good = write_jsonl(tmp_path / "good.jsonl", [{"prompt": "p", "chosen": "a", "rejected": "b"}])
    assert cli_main(["curate", good, "--scorer", str(tmp_path / "nowhere"), "-o", str(out)]) == 2
    assert "nowhere: no such directory" in capsys.readouterr().err
    assert cli_main(["curate", good, "--length-target", "1.5", "-o", str(out)]) == 2
    assert cli_main(["curate", good, "--decontaminate", "mmlu", "-o", str(out)]) == 2
    assert "not a built-in evaluation set" in capsys.readouterr().err
    assert not out.exists()


@pytest.fixture(scope="module")
def tiny_run(tiny_llama, tmp_path_factory):
    """A tiny BT run on the pairs curated below, with a checkpoint at each of its 3 steps."""
    from rewardmodels.bt.train import main as train_main

    root = tmp_path_factory.mktemp("curate-run")
    data = write_jsonl(root / "pairs.jsonl", synthetic_pairs())
    train_main([
        "--model_name_or_path", str(tiny_llama), "--output_dir", str(root / "run"), "--train_data", data,
        "--eval_data", "synthetic:n=4,seed=9", "--max_steps", "3", "--save_steps", "1",
        "--per_device_train_batch_size", "4", "--max_length", "128", "--learning_rate", "5e-2",
        "--use_chat_template", "always",
    ])  # fmt: skip
    return root / "run", data


def test_consistency_and_lim_match_scores_computed_the_other_way(
    tiny_scorer, tiny_run, tmp_path, monkeypatch
):
    from rewardmodels import load_scorer
    from rewardmodels.eval import curate
    from rewardmodels.eval.run_checkpoints import load_point_scorer

    run, data = tiny_run
    rows = synthetic_pairs()

    def margins(scorer):
        out = []
        for row in rows:
            chosen, rejected = scorer.score([row["prompt"]] * 2, [row["chosen"], row["rejected"]])
            out.append(chosen - rejected)
        return out

    judge = margins(load_scorer(tiny_scorer))
    last = margins(load_point_scorer(run / "checkpoint-3"))
    # -tau halfway between two middle values of max(margins), so that about half the pairs have both margins
    # below it and none sits within float rounding of it
    worst = sorted(max(a, b) for a, b in zip(judge, last, strict=True))
    tau = -(worst[len(worst) // 2 - 1] + worst[len(worst) // 2]) / 2
    expected_flags = [a < -tau and b < -tau for a, b in zip(judge, last, strict=True)]
    assert 0 < sum(expected_flags) < len(rows)
    per_checkpoint = [margins(load_point_scorer(run / f"checkpoint-{k}")) for k in (1, 2, 3)]
    signals = [[pair_signal(m[i], "sigmoid") for m in per_checkpoint] for i in range(len(rows))]
    expected_lim, _ = lim_scores(signals)
    middle = sorted(expected_lim)[len(rows) // 2 - 1 : len(rows) // 2 + 1]
    threshold = sum(middle) / 2

    out = tmp_path / "out"
    argv = [
        "curate", data, "-o", str(out), "--scorer", str(tiny_scorer), "--checkpoints", str(run),
        "--consistency-checkpoints", "1", "--tau", str(tau), "--inconsistent", "flip", "--lim-signal", "sigmoid",
        "--lim-threshold", str(threshold), "--no-progress",
    ]  # fmt: skip
    assert cli_main(argv) == 0
    decisions = {d["key"]: d for d in read_jsonl(out / "decisions.jsonl")}
    keys = [row_key(r) for r in rows]
    judges = [str(tiny_scorer), f"{run}/checkpoint-3"]
    for key, a, b in zip(keys, judge, last, strict=True):
        assert [decisions[key]["margins"][j] for j in judges] == pytest.approx([a, b], abs=1e-5)
    assert [decisions[k]["lim"] for k in keys] == pytest.approx(expected_lim, abs=1e-5)
    flipped = [decisions[k]["action"] == "flip" for k in keys]
    assert flipped == expected_flags
    # LIM drops the kept (unflipped) pairs below the threshold; flipped pairs are exempt
    dropped = [decisions[k]["action"] == "drop" for k in keys]
    assert any(dropped) and dropped == [
        not f and s < threshold for f, s in zip(flipped, expected_lim, strict=True)
    ]
    kept = {row_key({**r, "chosen": r["rejected"], "rejected": r["chosen"]}) if r.get("flipped") else row_key(r): r
            for r in read_jsonl(out / "kept.jsonl")}  # fmt: skip
    for key, row, flip in zip(keys, rows, flipped, strict=True):
        if flip:
            assert kept[key]["chosen"] == row["rejected"] and kept[key]["flipped"] is True

    # a second run, with another threshold, reads every score from the cache and loads no model
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded although every score was cached")

    monkeypatch.setattr(curate, "load_scorer", refuse)
    monkeypatch.setattr(curate, "load_point_scorer", refuse)
    assert cli_main([*argv[:-3], "--lim-threshold", "-100", "--no-progress"]) == 0
    again = {d["key"]: d for d in read_jsonl(out / "decisions.jsonl")}
    assert [again[k]["lim"] for k in keys] == [decisions[k]["lim"] for k in keys]
    assert [again[k]["action"] for k in keys] == ["flip" if f else "keep" for f in flipped]
    assert not math.isnan(json.loads((out / "report.json").read_text())["lim"]["score_quantiles"]["0.5"])


def test_every_flag_has_help():
    from rewardmodels.eval import curate, learning_curve

    for parser in (curate.build_parser(), learning_curve.build_parser()):
        for action in parser._actions:
            assert action.help and action.help.strip(), f"{parser.prog}: {action.dest} has no help"
    from rewardmodels.cli import usage

    assert "curate " in usage() and "report curve" in usage()


def test_from_recipe_writes_a_recipe_that_trains_on_the_curated_pairs(tmp_path):
    import yaml

    from rewardmodels.training.arguments import DataArguments
    from rewardmodels.training.run import load_train_eval_sources

    recipe = {
        "train_data": [
            "synthetic:n=60,seed=1|eval=10,name=s1",
            "synthetic:n=40,seed=2,task=a|eval=5,rows=20,name=s2",
        ],
        "output_dir": "outputs/x",
        "seed": 0,
    }
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    out = tmp_path / "out"
    argv = ["curate", "--from-recipe", str(tmp_path / "r.yaml"), "--length-target", "0.5", "-o", str(out)]
    assert cli_main(argv) == 0
    curated = yaml.safe_load((out / "recipe.yaml").read_text())
    assert curated["output_dir"] == "outputs/x-curated"
    assert (
        curated["train_data"][0] == f"synthetic:n=60,seed=1|eval=10,name=s1,curated={out / 'decisions.jsonl'}"
    )
    before = load_train_eval_sources(DataArguments(train_data=recipe["train_data"]), "preference", 0)
    after = load_train_eval_sources(DataArguments(train_data=curated["train_data"]), "preference", 0)
    assert after[1] == before[1] and after[2] == before[2]  # the same held-out pairs and sources
    dropped = {row_key(r) for r in read_jsonl(out / "dropped.jsonl")}
    assert dropped and not dropped & {row_key(r) for r in after[0]}
    assert {row_key(r) for r in after[0]} <= {row_key(r) for r in before[0]}
    # a curated recipe is not curated again: the original is
    assert cli_main(["curate", "--from-recipe", str(out / "recipe.yaml"), "-o", str(tmp_path / "o2")]) == 2


def test_lim_scores_only_the_pairs_the_run_trained_on(tiny_run, tmp_path):
    run, data = tiny_run
    rows = synthetic_pairs()
    assert json.loads((run / "trained_keys.json").read_text()) == sorted({row_key(r) for r in rows})
    unseen = [{"prompt": f"Never seen {i}?", "chosen": "yes", "rejected": "no"} for i in range(3)]
    extra = write_jsonl(tmp_path / "extra.jsonl", unseen)
    out = tmp_path / "out"
    # threshold 2: every scored pair is below it (s <= 1), so exactly the trained pairs go
    assert (
        cli_main(["curate", data, extra, "--checkpoints", str(run), "--lim-threshold", "2", "-o", str(out)])
        == 0
    )
    decisions = read_jsonl(out / "decisions.jsonl")
    assert [d["action"] for d in decisions] == ["drop"] * 12 + ["keep"] * 3
    assert all("lim" in d for d in decisions[:12]) and not any("lim" in d for d in decisions[12:])
    lim = json.loads((out / "report.json").read_text())["lim"]
    assert (lim["pairs_scored"], lim["pairs_not_trained_on"], lim["pairs_below"]) == (12, 3, 12)


def test_the_shipped_curated_recipe_applies_to_the_shared_data_and_keeps_the_held_out_split():
    """recipes/bt/smollm2_mix_curated.yaml's shipped decisions cover every training row of the shared data
    (a changed source would be refused), its held-out pairs are the uncurated recipe's, and its training rows
    are a subset of the uncurated pool with none of the decontaminated pairs left."""
    import gzip

    from rewardmodels.data_builders.curation import row_key
    from rewardmodels.training.arguments import DataArguments, read_recipe
    from rewardmodels.training.run import load_train_eval_sources
    from tests.conftest import shared_data

    shared_data("prm800k_phase1_stepwise_train.parquet")
    recipes = Path(__file__).resolve().parents[1] / "recipes" / "bt"
    loaded = {}
    for name in ("smollm2_mix", "smollm2_mix_curated"):
        recipe = read_recipe(recipes / f"{name}.yaml")
        data = DataArguments(train_data=recipe.values["train_data"], invalid_rows="drop")
        loaded[name] = load_train_eval_sources(data, "preference", 0)
    (plain_train, plain_held, plain_src), (cur_train, cur_held, cur_src) = loaded.values()
    assert [row_key(r) for r in cur_held] == [row_key(r) for r in plain_held] and cur_src == plain_src
    with gzip.open(recipes / "curated" / "smollm2_mix_decisions.jsonl.gz", "rt") as f:
        decisions = [json.loads(line) for line in f]
    contaminated = {d["key"] for d in decisions if any(r.startswith("contaminated") for r in d["reasons"])}
    assert len(contaminated) == 12  # the report's count: 10 with MATH-500, 2 with the RewardBench sample
    cur_keys = {row_key(r) for r in cur_train}
    assert not cur_keys & contaminated
    assert len(cur_train) < len(plain_train)
