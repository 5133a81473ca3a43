"""Augment, train and evaluate end to end on a tiny model: `build crome` (scripted oracle behind the
Generator protocol) writes pairs with ties, BT trains on them (both pair types logged) and exports, and
`eval robustness` scores the exported scorer on a RewardBench-format and an RM-Bench-format fixture."""

from __future__ import annotations

import argparse
import json
import math

from rewardmodels.data_builders import crome_cli
from rewardmodels.data_builders.synthetic import preference_rows
from tests.test_crome import ScriptedOracle


def test_augment_train_export_evaluate(tiny_llama, tmp_path, monkeypatch):
    rows = [
        {"prompt": f"Question {i}: {r['prompt']}", "chosen": r["chosen"], "rejected": r["rejected"]}
        for i, r in enumerate(preference_rows(4, seed=0))
    ]
    source = tmp_path / "rows.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))

    # build crome through its command line, the oracle replaced by the scripted one
    from rewardmodels import sampling

    monkeypatch.setattr(sampling.cli, "open_generator", lambda args: ScriptedOracle())
    pairs_path = tmp_path / "crome" / "pairs.jsonl"
    parser = argparse.ArgumentParser()
    crome_cli.add_arguments(parser)
    args = parser.parse_args(
        ["--input", str(source), "-o", str(pairs_path), "--cache", str(tmp_path / "oracle.sqlite"),
         "--transforms", "whitespace,filler", "--emit", "original=all,causal=all,neutral=6"]
    )  # fmt: skip
    assert crome_cli.run(args) == 0
    pairs = [json.loads(line) for line in pairs_path.read_text().splitlines()]
    stats = json.loads(pairs_path.with_suffix(".stats.json").read_text())
    assert stats["emitted"]["neutral"] == 6 and sum(p["tie"] for p in pairs) == 6
    assert stats["emitted"]["causal"] == sum(p["crome_type"] == "causal" for p in pairs) > 0

    from rewardmodels.bt.config import BTConfig
    from rewardmodels.bt.train import build_trainer
    from rewardmodels.export import export_scorer
    from rewardmodels.training.arguments import DataArguments, ModelArguments, parse_layered
    from rewardmodels.training.run import train_and_save

    run_dir = tmp_path / "run"
    model_args, data_args, config = parse_layered(
        (ModelArguments, DataArguments, BTConfig),
        ["--model_name_or_path", str(tiny_llama), "--train_data", str(pairs_path),
         "--output_dir", str(run_dir), "--max_steps", "3", "--per_device_train_batch_size", "8",
         "--save_strategy", "no", "--max_length", "256", "--learning_rate", "1e-2", "--logging_steps", "1",
         "--report_to", "none"],
    )  # fmt: skip
    trainer = build_trainer(model_args, data_args, config)
    train_and_save(trainer, config)
    history = trainer.state.log_history
    assert all(math.isfinite(h["loss"]) for h in history if "loss" in h)
    assert any("pairs/tie/loss" in h and "pairs/preference/loss" in h for h in history)
    scorer_dir = export_scorer(run_dir, tmp_path / "scorer")

    rb_rows = [
        {"id": i, "subset": "s", "prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]}
        for i, r in enumerate(preference_rows(6, seed=5))
    ]
    rb_path = tmp_path / "rb.jsonl"
    rb_path.write_text("".join(json.dumps(r) + "\n" for r in rb_rows))
    style_rows = [
        {"id": i, "domain": "math", "prompt": r["prompt"],
         "chosen": [r["chosen"], r["chosen"] + " Indeed.", "**" + r["chosen"] + "**"],
         "rejected": [r["rejected"], r["rejected"] + " Indeed.", "**" + r["rejected"] + "**"]}
        for i, r in enumerate(preference_rows(3, seed=6))
    ]  # fmt: skip
    style_path = tmp_path / "style.jsonl"
    style_path.write_text("".join(json.dumps(r) + "\n" for r in style_rows))
    out = tmp_path / "robustness"
    from rewardmodels.eval import robustness

    robustness.main(
        ["--scorer", str(scorer_dir), "--dataset", str(rb_path), "--style-dataset", str(style_path),
         "--transforms", "filler,typos", "--output-dir", str(out), "--no-progress", "--device", "cpu"]
    )  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    summary = results["scorers"][str(scorer_dir)]
    # the original accuracy equals the scorer's own scores compared pair by pair
    from rewardmodels.scorers import load_scorer

    scorer = load_scorer(scorer_dir, device="cpu")
    chosen = scorer.score([r["prompt"] for r in rb_rows], [r["chosen"] for r in rb_rows])
    rejected = scorer.score([r["prompt"] for r in rb_rows], [r["rejected"] for r in rb_rows])
    expected = sum(c > r for c, r in zip(chosen, rejected, strict=True)) / len(rb_rows)
    assert summary["original"]["accuracy"] == expected
    assert summary["transforms"]["filler"]["changed_pairs"] == len(rb_rows)
    assert len(summary["style"]["matrix"]) == 3 and summary["style"]["rows"] == 3
    assert (out / "report.md").read_text().startswith("# Reward-model robustness")
    assert (out / "report.png").exists()
