"""GRPO with TRL, rewarded by an exported scorer (in process, or through a running `rewardmodels serve`), or
verifier-free by RLPR: the policy's own probability of the gold answer after its reasoning.

    python recipes/rl/grpo_trl.py --scorer outputs/demo/scorer --policy smollm2-135m --steps 2 --output outputs/rl/grpo
    python recipes/rl/grpo_trl.py --remote http://127.0.0.1:5000 --policy smollm2-135m --steps 2 --output outputs/rl/grpo
    python recipes/rl/grpo_trl.py --reward reference-probability --policy smollm2-135m --steps 2 --output outputs/rl/rlpr

The prompts are the synthetic arithmetic task's questions as plain text, the format the demo scorer was
trained on (a scorer trained on chat data takes TRL's conversational prompts as they are). With
`--reward reference-probability` the dataset also has a `reference` column, each question's gold answer, and
the reward is the `reference_probability` scorer on the live policy (docs/rl.md, "Verifier-free rewards:
RLPR"); a completion that states no answer is followed by the task's own "Answer: " before the reference.
Every reward GRPO receives is printed with its completion, so what the policy is optimised for can be read
off the log.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def logged(reward_func, digits: int = 3):
    """`reward_func`, printing each (reward, completion) it hands to the trainer."""

    def wrapper(prompts, completions, **kwargs):
        values = reward_func(prompts, completions, **kwargs)
        for value, completion in zip(values, completions, strict=True):
            print(f"reward {value:+.{digits}f}  {completion[:60]!r}", flush=True)
        return values

    wrapper.__name__ = reward_func.__name__
    return wrapper


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--reward",
        choices=("scorer", "reference-probability"),
        default="scorer",
        help="scorer: --scorer or --remote; reference-probability: RLPR on the policy itself (no scorer).",
    )
    source = parser.add_mutually_exclusive_group()
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
    parser.add_argument(
        "--log-probability",
        action="store_true",
        help="reference-probability: mean log-probability of the reference instead of mean probability.",
    )
    parser.add_argument(
        "--std-filter",
        type=float,
        default=None,
        help="reference-probability: flatten the rewards of prompts whose reward std is below this (RLPR's filter).",
    )
    parser.add_argument("--output", required=True, help="GRPOTrainer output_dir.")
    args = parser.parse_args(argv)
    if (args.reward == "scorer") != bool(args.scorer or args.remote):
        parser.error(
            "--reward scorer needs --scorer or --remote; --reward reference-probability takes neither"
        )

    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from rewardmodels.data_builders import synthetic
    from rewardmodels.modeling import load_backbone, resolve_model_path

    path = resolve_model_path(args.policy)
    tokenizer = AutoTokenizer.from_pretrained(path)
    policy = load_backbone(path, "causal_lm", dtype="float32", device="cpu")
    if args.reward == "reference-probability":
        from rewardmodels.scorers.reference_probability import ReferenceProbabilityScorer

        scorer = ReferenceProbabilityScorer(
            policy, tokenizer, log_probability=args.log_probability, fallback_lead_in="\nAnswer: "
        )
        reward_func = scorer.as_reward_func(reference_column="reference")
        if args.std_filter is not None:
            from rewardmodels.scorers.reward_std_filter import StdFilter, std_filtered_reward_func

            reward_func = std_filtered_reward_func(reward_func, args.generations, StdFilter(args.std_filter))
    elif args.scorer:
        from rewardmodels.scorers import load_scorer

        reward_func = load_scorer(args.scorer, device="cpu").as_reward_func(normalize=args.normalize)
    else:
        from rewardmodels.serving.client import remote_reward_func

        reward_func = remote_reward_func(args.remote)  # async: TRL awaits it
    rows = synthetic.preference_rows(8, seed=0)
    # the gold answer is the correct solution's last line, "Answer: N"
    dataset = [{"prompt": r["prompt"], "reference": r["chosen"].rsplit("Answer: ", 1)[1]} for r in rows]
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
    # RLPR rewards are differences of probabilities, often below 1e-3: printed with more digits
    reward = reward_func if args.remote else logged(reward_func, 5 if args.reward != "scorer" else 3)
    trainer = GRPOTrainer(
        model=policy,
        reward_funcs=[reward],
        args=config,
        train_dataset=Dataset.from_list(dataset),
        processing_class=tokenizer,
    )
    trainer.train()
    for entry in trainer.state.log_history:
        if f"rewards/{reward.__name__}/mean" in entry:
            print(f"step {entry['step']}: reward mean {entry[f'rewards/{reward.__name__}/mean']:+.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
