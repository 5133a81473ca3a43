"""Implicit-PRM training step: cached reference log-probs against recomputing the reference, LoRA and full
fine-tuning side by side, in one run.

    python benchmarks/implicit_prm_step.py                  # SmolLM2-135M, PRM800K outcome rows, 512 tokens
    python benchmarks/implicit_prm_step.py --steps 2 --batch 2

Both paths are the trainer's own `compute_loss` (`ImplicitPRMTrainer`) on the same collated batches, then
backward and one AdamW step. "recompute" batches carry no reference log-probs, so the reference runs in the
step (under LoRA the policy with its adapters disabled; under full fine-tuning a frozen copy); "cached"
batches carry the values the first inference pass put in the cache, so the step is the policy alone. Each
batch runs both paths twice, in alternating order from batch to batch, and only the second round is timed
(the first step on a new batch shape pays for fresh allocations, whichever path it is); each figure is the
mean step over the same `--steps` batches (after `--warmup` untimed ones), so the ratio is one of total
times; per-batch ratios go to the JSON. Before any time is reported, the
first batch's loss must agree between the two paths.

Expected: under LoRA the backward computes no base-weight gradients, so the reference forward is about a
third of a recompute step (ratio near 1.5); under full fine-tuning about a quarter (limit near 4/3). The last
line is machine-readable:

    implicit_prm_step lora_cached_s=<x> lora_recompute_s=<x> lora_speedup=<x> full_cached_s=<x> \
        full_recompute_s=<x> full_speedup=<x> ref_cache_speedup=<lora_speedup>
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data" / "prm800k_phase1_stepwise_train.parquet"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--data", default=f"prm800k_stepwise_outcome:{DATA}", help="outcome data spec")
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--batch", type=int, default=4, help="outcome rows per step")
    p.add_argument("--steps", type=int, default=5, help="timed batches per path and mode")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps per path and mode first")
    p.add_argument("--modes", default="lora,full")
    p.add_argument(
        "--packing", default="auto", help="the recipe's --packing: auto (packed rows) or none (padded)"
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "implicit_prm_step.json"))
    return p.parse_args(argv)


def build(mode: str, args, rows, workdir: Path):
    """The trainer (with its reference) and the features with their cached reference log-probs."""
    from rewardmodels.implicit_prm.config import ImplicitPRMConfig
    from rewardmodels.implicit_prm.data import encode_rows
    from rewardmodels.implicit_prm.ref_cache import attach_reference_logps
    from rewardmodels.implicit_prm.train import build_reference
    from rewardmodels.implicit_prm.trainer import ImplicitPRMTrainer
    from rewardmodels.training.arguments import DataArguments, ModelArguments
    from rewardmodels.training.batching import collator_for
    from rewardmodels.training.causal_lm import load_causal_tokenizer
    from rewardmodels.training.run import load_model

    model_args = ModelArguments(model_name_or_path=args.model, use_lora=mode == "lora")
    data_args = DataArguments(max_length=args.max_length)
    config = ImplicitPRMConfig(
        output_dir=str(workdir / mode),
        report_to="none",
        use_cpu=True,
        learning_rate=1e-5,
        packing=args.packing,
    )
    tokenizer = load_causal_tokenizer(model_args)
    features, _ = encode_rows(tokenizer, rows, "ce", False, args.max_length)
    model = load_model(model_args, tokenizer, num_labels=1, seed=0, head="causal_lm")
    reference = build_reference(model_args, config, model)
    collator = collator_for(
        "implicit_prm",
        config.packing,
        model,
        tokenizer,
        features,
        config.packing_token_budget,
        data_args.max_length,
    ).collator
    attach_reference_logps(features, reference, collator, "cpu", None, args.batch)  # the first pass
    trainer = ImplicitPRMTrainer(
        model=model, args=config, data_collator=collator, processing_class=tokenizer, reference=reference
    )
    return trainer, features


def step(trainer, optimizer, batch) -> tuple[float, float]:
    start = time.perf_counter()
    loss = trainer.compute_loss(trainer.model, batch)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start, loss.item()


def run_mode(mode: str, args, rows, workdir: Path) -> dict:
    trainer, features = build(mode, args, rows, workdir)
    trainer.model.train()
    n = args.batch
    batches = [features[i * n : (i + 1) * n] for i in range(args.warmup + args.steps)]

    def collate(part, cached: bool):
        if cached:
            return trainer.data_collator(part)
        return trainer.data_collator([{k: v for k, v in f.items() if k != "reference_logps"} for f in part])

    # Loss check on identical weights before any training step: the two paths must agree.
    with torch.no_grad():
        a = trainer.compute_loss(trainer.model, collate(batches[0], True)).item()
        b = trainer.compute_loss(trainer.model, collate(batches[0], False)).item()
    if abs(a - b) > 1e-5:
        raise SystemExit(f"{mode}: cached loss {a} and recomputed loss {b} differ; not timing")
    params = [p for p in trainer.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5)
    times = {"cached": [], "recompute": []}
    for i, part in enumerate(batches):
        order = ("cached", "recompute") if i % 2 == 0 else ("recompute", "cached")
        # Each batch runs both paths twice and the second round is timed: the first step on a new batch
        # shape pays for fresh allocations (measured: up to 1.7x slower), whichever path comes first.
        for rep in range(2):
            for path in order:
                seconds, _ = step(trainer, optimizer, collate(part, path == "cached"))
                if rep == 1 and i >= args.warmup:
                    times[path].append(seconds)
    tokens = sum(len(s) for f in features[: n * len(batches)] for s in f["sequences"]) / len(batches)
    # Batches differ in length, so the figure is total time over the same batches (a token-weighted mean
    # step), not a median of steps that came from different batches; per-batch ratios are kept too.
    cached, recompute = statistics.fmean(times["cached"]), statistics.fmean(times["recompute"])
    ratios = [r / c for c, r in zip(times["cached"], times["recompute"], strict=True)]
    return {
        "mode": mode,
        "trainable_params": sum(p.numel() for p in params),
        "tokens_per_step": tokens,
        "first_loss_cached": a,
        "first_loss_recompute": b,
        "cached_s": cached,
        "recompute_s": recompute,
        "speedup": recompute / cached,
        "per_batch_speedups": ratios,
        "times": times,
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from rewardmodels.data_builders.sources import load_rows

    rows, _ = load_rows(args.data, "outcome")
    need = args.batch * (args.warmup + args.steps)
    if len(rows) < need:
        raise SystemExit(f"{args.data}: {len(rows)} rows, {need} needed")
    import random

    rows = random.Random(0).sample(rows, need)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in args.modes.split(","):
            results[mode] = run_mode(mode, args, rows, Path(tmp))
            r = results[mode]
            print(
                f"{mode}: {r['trainable_params']:,} trainable, {r['tokens_per_step']:.0f} tokens a step; "
                f"cached {r['cached_s']:.2f} s, recompute {r['recompute_s']:.2f} s a step: {r['speedup']:.2f}x "
                f"(first loss {r['first_loss_cached']:.6f} cached, {r['first_loss_recompute']:.6f} recomputed)",
                flush=True,
            )
    meta = {"model": args.model, "data": args.data, "max_length": args.max_length, "batch": args.batch,
            "steps": args.steps, "warmup": args.warmup, "threads": torch.get_num_threads(),
            "packing": args.packing}  # fmt: skip
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({**meta, "results": results}, indent=2) + "\n")
    parts = []
    for mode in results:
        r = results[mode]
        parts += [f"{mode}_cached_s={r['cached_s']:.3f}", f"{mode}_recompute_s={r['recompute_s']:.3f}",
                  f"{mode}_speedup={r['speedup']:.3f}"]  # fmt: skip
    headline = results.get("lora", next(iter(results.values())))["speedup"]
    print("implicit_prm_step " + " ".join(parts) + f" ref_cache_speedup={headline:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
