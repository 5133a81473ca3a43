"""`rewardmodels demo`: the README's first command.

Trains a Bradley-Terry scorer with LoRA on the embedded default model (SmolLM2-135M-Instruct) and the
synthetic arithmetic task, prints held-out pair accuracy before and after training (held-out rows come from
a different seed than the training rows), exports the scorer and shows where it went. Any `train bt` flag
can be appended to override the recipe, e.g. `rewardmodels demo --max_steps 20`.
"""

from __future__ import annotations

import time
from pathlib import Path

from rewardmodels.cli_common import setup_logging

# Mirrors recipes/bt/smollm2_synthetic.yaml (a test keeps the two equal), so the demo also works from an
# installed wheel where the recipes folder is not present.
DEMO_RECIPE: dict = {
    "model_name_or_path": "smollm2-135m",
    "train_data": ["synthetic:n=2000,seed=0,answer_slip_rate=1.0"],
    "eval_data": ["synthetic:n=100,seed=1,answer_slip_rate=1.0"],
    "use_chat_template": "auto",
    "max_length": 128,
    "use_lora": True,
    "lora_r": 16,
    "lora_alpha": 32,
    "learning_rate": 3e-4,
    "lr_scheduler_type": "cosine",
    "warmup_steps": 5,
    "per_device_train_batch_size": 8,
    "per_device_eval_batch_size": 32,
    "max_steps": 40,
    "logging_steps": 10,
    "save_steps": 20,
    "save_total_limit": 2,
    "seed": 0,
    "output_dir": "outputs/demo",
}


def recipe_argv(recipe: dict) -> list[str]:
    argv: list[str] = []
    for key, value in recipe.items():
        values = value if isinstance(value, list) else [value]
        argv += [f"--{key}", *[str(v) for v in values]]
    return argv


def main(argv: list[str] | None = None) -> int:
    from rewardmodels.bt.config import BTConfig
    from rewardmodels.bt.train import build_trainer
    from rewardmodels.export import export_scorer
    from rewardmodels.training.arguments import DataArguments, ModelArguments, parse_layered
    from rewardmodels.training.run import final_eval, train_and_save

    setup_logging()
    model_args, data_args, args = parse_layered(
        (ModelArguments, DataArguments, BTConfig),
        recipe_argv(DEMO_RECIPE) + list(argv or []),
        prog="rewardmodels demo",
        description=__doc__,
    )
    started = time.time()
    trainer = build_trainer(model_args, data_args, args)
    before = trainer.evaluate()["eval_accuracy"]
    print(
        f"\nheld-out pair accuracy before training: {before:.3f} ({len(trainer.eval_dataset)} pairs)\n",
        flush=True,
    )
    results: dict = {}
    train_and_save(trainer, args, finalize=lambda t: results.update(final_eval(t)))
    scorer_dir = Path(args.output_dir) / "scorer"
    if trainer.args.should_save:
        export_scorer(args.output_dir, scorer_dir, overwrite=True)
        after = results["eval_accuracy"]
        print(
            "\n"
            f"held-out pair accuracy before training: {before:.3f}\n"
            f"held-out pair accuracy after training:  {after:.3f}  ({after - before:+.3f})\n"
            f"training output:  {Path(args.output_dir).resolve()}\n"
            f"exported scorer:  {scorer_dir.resolve()}\n"
            f"wall time: {time.time() - started:.0f}s\n\n"
            "Use it:\n"
            f"  rewardmodels score {scorer_dir} --input rows.jsonl --output scores.jsonl\n"
            f"  python -c \"import rewardmodels; s = rewardmodels.load_scorer('{scorer_dir}'); "
            "print(s.score(['Compute 2 + 3.'], ['2 + 3 = 5\\nAnswer: 5']))\"",
            flush=True,
        )
    return 0
