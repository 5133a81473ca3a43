"""GRPO with TRL, rewarded by an exported scorer: in process, or through a running `rewardmodels serve`.

    python recipes/rl/grpo_trl.py --scorer outputs/demo/scorer --policy smollm2-135m --steps 2 --output outputs/rl/grpo
    python recipes/rl/grpo_trl.py --remote http://127.0.0.1:5000 --policy smollm2-135m --steps 2 --output outputs/rl/grpo

The prompts are the synthetic arithmetic task's questions as plain text, the format the demo scorer was
trained on (a scorer trained on chat data takes TRL's conversational prompts as they are). Every reward
GRPO receives is printed with its completion, so what the policy is optimised for can be read off the log.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def logged(reward_func):
    """`reward_func`, printing each (reward, completion) it hands to the trainer."""

    def wrapper(prompts, completions, **kwargs):
        values = reward_func(prompts, completions, **kwargs)
        for value, completion in zip(values, completions, strict=True):
            print(f"reward {value:+.3f}  {completion[:60]!r}", flush=True)
        return values

    wrapper.__name__ = reward_func.__name__
    return wrapper


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--scorer", help="Scorer directory, loaded in this process.")
    source.add_argument(
        "--remote", help="Base URL of a running `rewardmodels serve` (token: $RM_SERVE_TOKEN)."
    )
    parser.add_argument("--policy", required=True, help="Causal LM to train (path, Hub id or smollm2-135m).")
    parser.add_argument("--steps", type=int, default=2, help="GRPO steps.")
    parser.add_argument("--generations", type=int, default=4, help="Completions per prompt.")
    parser.add_argument("--max-completion-length", type=int, default=32, help="Tokens per completion.")
    parser.add_argument(
        "--normalize", action="store_true", help="Standardise rewards with the manifest's statistics."
    )
    parser.add_argument("--output", required=True, help="GRPOTrainer output_dir.")
    args = parser.parse_args(argv)

    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from rewardmodels.data_builders import synthetic
    from rewardmodels.modeling import load_backbone, resolve_model_path

    if args.scorer:
        from rewardmodels.scorers import load_scorer

        reward_func = load_scorer(args.scorer, device="cpu").as_reward_func(normalize=args.normalize)
    else:
        from rewardmodels.serving.client import remote_reward_func

        reward_func = remote_reward_func(args.remote)  # async: TRL awaits it
    path = resolve_model_path(args.policy)
    tokenizer = AutoTokenizer.from_pretrained(path)
    policy = load_backbone(path, "causal_lm", dtype="float32", device="cpu")
    prompts = [r["prompt"] for r in synthetic.preference_rows(8, seed=0)]
    config = GRPOConfig(
        output_dir=args.output,
        per_device_train_batch_size=args.generations,
        num_generations=args.generations,
        max_completion_length=args.max_completion_length,
        max_steps=args.steps,
        learning_rate=1e-6,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=not torch.cuda.is_available(),
        seed=0,
    )
    reward = reward_func if args.remote else logged(reward_func)
    trainer = GRPOTrainer(
        model=policy,
        reward_funcs=[reward],
        args=config,
        train_dataset=Dataset.from_list([{"prompt": p} for p in prompts]),
        processing_class=tokenizer,
    )
    trainer.train()
    for entry in trainer.state.log_history:
        if f"rewards/{reward.__name__}/mean" in entry:
            print(f"step {entry['step']}: reward mean {entry[f'rewards/{reward.__name__}/mean']:+.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
