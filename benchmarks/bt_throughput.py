"""BT reward-model training throughput: TRL's RewardTrainer against ours padded, packed and tree-packed.

    python benchmarks/bt_throughput.py                      # SmolLM2-135M, HH-RLHF harmless, 512 tokens, 8 pairs
    python benchmarks/bt_throughput.py --steps 2 --configs tree,trl
    python benchmarks/bt_throughput.py --recipe recipes/bt/smollm2_hh_sharegpt.yaml   # a user's first run's shape

All four runs train the same model (same seed, so the same fresh head) on the same pairs in the same order
(pre-shuffled once, then read sequentially), with the same max length, batch size, learning rate, optimizer
and step count, full fine-tuning by default (--lora for LoRA r16 on every run). `--recipe` takes the shape of
a training recipe instead: its model, LoRA settings, max length, batch size, learning rate and gradient
checkpointing, so the figures are those of a user's run of that recipe (flags given after it still win). Each run is a subprocess of
its own so that its peak RSS is its own. The first step's loss comes from identical weights on identical
pairs, so it must agree across all four: "faster" never means "different".

Reported per run: pairs/s and real tokens/s over the timed steps (after --warmup untimed steps), tokens the
model actually computed (padding included; a tree counts each shared prefix once), peak RSS, and the loss at
every step. The last line is machine-readable:

    bt_throughput trl_pairs_s=<x> padded_pairs_s=<x> packed_pairs_s=<x> tree_pairs_s=<x> tree_vs_trl=<x> rss_ratio=<x>

rss_ratio is tree's peak RSS over TRL's. Results are also written to --out as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "hh_rlhf_harmless_base_test.jsonl.gz"
CONFIGS = ("trl", "padded", "packed", "tree")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--recipe",
        default=None,
        help="take model, LoRA, max length, batch, lr and gradient checkpointing from this training recipe",
    )
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="HH-RLHF transcripts (.jsonl[.gz])")
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--batch", type=int, default=8, help="pairs per optimizer step")
    p.add_argument("--steps", type=int, default=4, help="timed steps per run")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps before the timed ones")
    p.add_argument("--lr", type=float, default=1e-5)
    p.add_argument("--lora", action="store_true", help="LoRA (head trained) instead of full fine-tuning")
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--lora-alpha", type=int, default=32)
    p.add_argument("--lora-dropout", type=float, default=0.0)
    p.add_argument("--lora-targets", default="q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj")
    p.add_argument("--token-budget", type=int, default=None, help="cap on packed row length (default: none)")
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads per run (default: torch's)")
    p.add_argument("--profile", action="store_true", help="profile the last step of each run (top ops)")
    p.add_argument(
        "--repeats",
        type=int,
        default=2,
        help="passes over the configs, every other one in reverse order, so that load from other processes "
        "drifting over time hits every config alike; figures pool all passes",
    )
    p.add_argument(
        "--gradient-checkpointing",
        choices=("true", "false"),
        default="true",
        help="for every run (TRL's RewardConfig default is true; it also keeps TRL's padded batches in memory)",
    )
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "bt_throughput.json"))
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--features", default=None, help=argparse.SUPPRESS)
    p.add_argument("--result", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.recipe and not args.child:
        args = p.parse_args(recipe_flags(args.recipe) + list(argv if argv is not None else sys.argv[1:]))
    return args


def recipe_flags(path: str) -> list[str]:
    """The benchmark flags that reproduce a training recipe's shape (the recipe's layered config)."""
    from rewardmodels.bt import BTConfig
    from rewardmodels.training.arguments import DataArguments, ModelArguments, parse_layered

    model, data, train = parse_layered((ModelArguments, DataArguments, BTConfig), ["--config", path])
    flags = ["--model", model.model_name_or_path, "--max-length", str(data.max_length)]
    flags += ["--batch", str(train.per_device_train_batch_size), "--lr", str(train.learning_rate)]
    flags += ["--gradient-checkpointing", "true" if train.gradient_checkpointing else "false"]
    if model.use_lora:
        flags += ["--lora", "--lora-r", str(model.lora_r), "--lora-alpha", str(model.lora_alpha)]
        flags += [
            "--lora-dropout",
            str(model.lora_dropout),
            "--lora-targets",
            ",".join(model.lora_target_modules),
        ]
    return flags


# ---------------------------------------------------------------- parent: data once, one subprocess per run


def prepare_features(args) -> list[dict]:
    from rewardmodels.data_builders.sources import load_rows
    from rewardmodels.modeling import load_tokenizer
    from rewardmodels.tokenization import resolve_chat_template, tokenize_pairs

    if not Path(args.data).exists():
        raise SystemExit(f"{args.data} is not present (../shared/data comes with the project's CI)")
    rows, report = load_rows(f"hh_rlhf:{args.data}", "preference")
    tokenizer = load_tokenizer(args.model)
    use_template = resolve_chat_template("auto", rows, tokenizer)
    order = list(range(len(rows)))
    random.Random(args.seed).shuffle(order)
    need = (args.warmup + args.steps + int(args.profile)) * args.batch
    picked = [rows[i] for i in order[:need]]
    features, _ = tokenize_pairs(tokenizer, picked, use_template, args.max_length)
    print(f"data: {report}; {len(features)} pairs used, chat template: {use_template}", flush=True)
    return features


def real_tokens(features: list[dict]) -> int:
    """Tokens of the sequences themselves: prefix + chosen and prefix + rejected, no padding."""
    return sum(2 * len(f["prefix_ids"]) + len(f["chosen_ids"]) + len(f["rejected_ids"]) for f in features)


def run_child(config: str, args, features_path: Path, workdir: Path) -> dict:
    result = workdir / f"{config}.json"
    cmd = [
        sys.executable,
        __file__,
        "--child",
        config,
        "--features",
        str(features_path),
        "--result",
        str(result),
    ]
    for flag, value in (
        ("--model", args.model),
        ("--max-length", args.max_length),
        ("--batch", args.batch),
        ("--steps", args.steps),
        ("--warmup", args.warmup),
        ("--lr", args.lr),
        ("--seed", args.seed),
    ):
        cmd += [flag, str(value)]
    if args.lora:
        cmd += ["--lora", "--lora-r", str(args.lora_r), "--lora-alpha", str(args.lora_alpha)]
        cmd += ["--lora-dropout", str(args.lora_dropout), "--lora-targets", args.lora_targets]
    if args.profile:
        cmd.append("--profile")
    if args.token_budget:
        cmd += ["--token-budget", str(args.token_budget)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    cmd += ["--gradient-checkpointing", args.gradient_checkpointing]
    print(f"[{config}] running ...", flush=True)
    started = time.time()
    # Idle OpenMP threads sleep instead of spinning: on a shared machine spinning threads burn the CPU time
    # other processes need and make every figure depend on the neighbours' load.
    env = dict(os.environ, OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"[{config}] failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    out = json.loads(result.read_text())
    print(f"[{config}] done in {time.time() - started:.0f} s", flush=True)
    return out


def summarize(config: str, children: list[dict], features: list[dict], args) -> dict:
    """Pool the timed steps of every pass: pairs and tokens over the summed time."""
    window = slice(args.warmup, args.warmup + args.steps)
    timed_feats = features[args.warmup * args.batch : (args.warmup + args.steps) * args.batch]
    seconds = [sum(c["step_seconds"][window]) for c in children]
    cpu = [sum(c["step_cpu_seconds"][window]) for c in children]
    computed = children[0]["computed_tokens"][window]
    pairs, tokens = len(timed_feats) * len(children), real_tokens(timed_feats) * len(children)
    return {
        "config": config,
        "pairs_s": pairs / sum(seconds),
        "real_tokens_s": tokens / sum(seconds),
        "pairs_per_cpu_s": pairs / sum(cpu),
        "pairs_s_per_pass": [len(timed_feats) / x for x in seconds],
        "step_seconds": [c["step_seconds"][window] for c in children],
        "real_tokens_per_step": real_tokens(timed_feats) / args.steps,
        "computed_tokens_per_step": sum(computed) / len(computed),
        "peak_rss_mib": max(c["peak_rss_mib"] for c in children),
        "losses": children[0]["losses"],
        "losses_agree_across_passes": all(c["losses"] == children[0]["losses"] for c in children),
        "profile": children[-1].get("profile"),
    }


def main_parent(args) -> int:
    from rewardmodels.io import write_json

    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = set(configs) - set(CONFIGS)
    if unknown:
        raise SystemExit(f"unknown configs {sorted(unknown)}; choose from {CONFIGS}")
    features = prepare_features(args)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bt_throughput-") as tmp:
        workdir = Path(tmp)
        features_path = workdir / "features.json"
        features_path.write_text(json.dumps(features))
        runs: dict[str, list[dict]] = {c: [] for c in configs}
        for rep in range(args.repeats):
            for c in configs if rep % 2 == 0 else list(reversed(configs)):
                runs[c].append(run_child(c, args, features_path, workdir))
        results = {c: summarize(c, runs[c], features, args) for c in configs}
    load_after = os.getloadavg()

    print()
    print(
        f"SmolLM2 ({args.model}), HH-RLHF harmless, max_length={args.max_length}, {args.batch} pairs/step, "
        f"{args.steps} timed steps after {args.warmup} warmup, lr={args.lr}, "
        f"{f'LoRA r{args.lora_r}' if args.lora else 'full fine-tune'}, fp32, sdpa, gradient checkpointing "
        f"{args.gradient_checkpointing}, {args.repeats} pass(es) (ABBA order), torch threads "
        f"{args.threads or 'default'}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'PASSIVE')}"
    )
    header = (
        f"{'config':<8} {'pairs/s':>8} {'real tok/s':>10} {'pairs/cpu-s':>11} {'s/step':>7} "
        f"{'computed tok/step':>17} {'real tok/step':>13} {'peak RSS MiB':>12}  losses per step"
    )
    print(header)
    print("-" * len(header))
    for c, r in results.items():
        losses = " ".join(f"{x:.5f}" for x in r["losses"])
        print(
            f"{c:<8} {r['pairs_s']:>8.3f} {r['real_tokens_s']:>10.1f} {r['pairs_per_cpu_s']:>11.3f} "
            f"{args.batch / r['pairs_s']:>7.1f} {r['computed_tokens_per_step']:>17.0f} "
            f"{r['real_tokens_per_step']:>13.0f} {r['peak_rss_mib']:>12.0f}  {losses}"
        )
    print(f"load average before/after: {load[0]:.2f} / {load_after[0]:.2f} (1 min) on {os.cpu_count()} CPUs")
    for c, r in results.items():
        per_pass = ", ".join(f"{x:.3f}" for x in r["pairs_s_per_pass"])
        print(
            f"pairs/s per pass, {c}: {per_pass}; same losses in every pass: {r['losses_agree_across_passes']}"
        )
    if "trl" in results:
        first = results["trl"]["losses"][0]
        for c, r in results.items():
            print(f"first-step loss {c}: {r['losses'][0]:.6f} (vs trl {r['losses'][0] - first:+.2e})")
    for c, r in results.items():
        if r["profile"]:
            print(f"\nprofile of one step, {c} (self CPU time, top ops):\n{r['profile']}")

    def fig(c: str, key: str) -> str:
        return f"{results[c][key]:.4f}" if c in results else "nan"

    ratio = (
        f"{results['tree']['pairs_s'] / results['trl']['pairs_s']:.3f}"
        if {"tree", "trl"} <= results.keys()
        else "nan"
    )
    rss = (
        f"{results['tree']['peak_rss_mib'] / results['trl']['peak_rss_mib']:.3f}"
        if {"tree", "trl"} <= results.keys()
        else "nan"
    )
    write_json(
        args.out,
        {
            "settings": {k: v for k, v in vars(args).items() if k not in ("child", "features", "result")},
            "load_average": [load[0], load_after[0]],
            "results": results,
        },
    )
    print(
        f"bt_throughput trl_pairs_s={fig('trl', 'pairs_s')} padded_pairs_s={fig('padded', 'pairs_s')} "
        f"packed_pairs_s={fig('packed', 'pairs_s')} tree_pairs_s={fig('tree', 'pairs_s')} "
        f"tree_vs_trl={ratio} rss_ratio={rss}"
    )
    return 0


# ---------------------------------------------------------------- child: one run


def make_callback(step_seconds: list[float], step_cpu: list[float], profile_last: bool, total_steps: int):
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.profiler = None

        def on_step_begin(self, args, state, control, **kwargs):
            if profile_last and state.global_step == total_steps - 1:
                import torch.profiler

                self.profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
                self.profiler.__enter__()
            self.t0, self.c0 = time.perf_counter(), time.process_time()

        def on_step_end(self, args, state, control, **kwargs):
            step_seconds.append(time.perf_counter() - self.t0)
            step_cpu.append(time.process_time() - self.c0)
            if self.profiler is not None:
                self.profiler.__exit__(None, None, None)

    return StepTimer()


class RecordingCollator:
    """Counts the token positions the model computes per batch (padding included)."""

    def __init__(self, inner):
        self.inner = inner
        self.computed: list[int] = []

    def __call__(self, features):
        batch = self.inner(features)
        self.computed.append(int(batch["input_ids"].numel()))
        return batch


def main_child(args) -> int:
    import torch
    from transformers import set_seed

    from rewardmodels.modeling import load_tokenizer
    from rewardmodels.training.arguments import ModelArguments
    from rewardmodels.training.run import load_model

    if args.threads:
        torch.set_num_threads(args.threads)
    features = json.loads(Path(args.features).read_text())
    total = args.warmup + args.steps + int(args.profile)
    features = features[: total * args.batch]
    tokenizer = load_tokenizer(args.model)
    set_seed(args.seed)  # the fresh head's initialisation: identical in every run
    # The loader `rewardmodels train bt` uses, for every run (TRL's included), so all start from one model.
    model_args = ModelArguments(
        model_name_or_path=args.model,
        attn_implementation="sdpa",
        model_dtype="float32",
        use_lora=args.lora,
        lora_r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        lora_target_modules=args.lora_targets.split(","),
    )
    model = load_model(model_args, tokenizer, num_labels=1, seed=args.seed)
    common = dict(
        output_dir=str(Path(args.result).parent / f"out-{args.child}"),
        per_device_train_batch_size=args.batch,
        learning_rate=args.lr,
        max_steps=total,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        seed=args.seed,
        train_sampling_strategy="sequential",  # the parent already shuffled: identical batches everywhere
        gradient_checkpointing=args.gradient_checkpointing == "true",
        bf16=False,
        dataloader_num_workers=0,
        disable_tqdm=True,
        use_cpu=True,
    )
    step_seconds: list[float] = []
    step_cpu: list[float] = []
    timer = make_callback(step_seconds, step_cpu, args.profile, total)
    if args.child == "trl":
        from datasets import Dataset
        from trl import RewardConfig, RewardTrainer

        data = Dataset.from_list(
            [
                {
                    "chosen_ids": f["prefix_ids"] + f["chosen_ids"],
                    "rejected_ids": f["prefix_ids"] + f["rejected_ids"],
                }
                for f in features
            ]
        )
        config = RewardConfig(max_length=args.max_length, disable_dropout=True, **common)
        trainer = RewardTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer)
        if len(trainer.train_dataset) != len(features):
            raise SystemExit("TRL filtered pairs out; the runs would not see the same examples")
        recorder = RecordingCollator(trainer.data_collator)
        trainer.data_collator = recorder
    else:
        from rewardmodels.bt import BTConfig, BTTrainer
        from rewardmodels.training.batching import collator_for

        # The collator `rewardmodels train bt --packing <none|packed|tree>` would build for this model.
        choice = collator_for(
            "bt",
            {"padded": "none", "packed": "packed", "tree": "tree"}[args.child],
            model,
            tokenizer,
            features,
            token_budget=args.token_budget,
            max_length=args.max_length,
        )
        inner = choice.collator
        recorder = RecordingCollator(inner)
        config = BTConfig(**common)
        trainer = BTTrainer(model=model, args=config, train_dataset=features, data_collator=recorder)
    trainer.add_callback(timer)
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    profile = None
    if timer.profiler is not None:
        profile = timer.profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    Path(args.result).write_text(
        json.dumps(
            {
                "step_seconds": step_seconds,
                "step_cpu_seconds": step_cpu,
                "computed_tokens": recorder.computed,
                "losses": losses,
                "peak_rss_mib": peak_kib / 1024,
                "profile": profile,
            }
        )
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return main_child(args) if args.child else main_parent(args)


if __name__ == "__main__":
    sys.exit(main())
