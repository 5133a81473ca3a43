"""RewardBench evaluation speed: our evaluator against a naive padded loop, same model, same data, one run.

    .venv/bin/python benchmarks/rb_eval_speed.py [--data ../shared/data/rewardbench_sample.jsonl]
        [--model smollm2-135m | --scorer DIR] [--max-length 2048] [--batch-size N] [--repeats 1]

The naive loop is what reward-bench's pipeline does: rows in dataset order, batches of 8, the chat-templated
text tokenized inside the loop and padded to the longest text of the batch, chosen and rejected in separate
forwards, under no_grad. Ours: every text tokenized once, rows sorted by length, each example's chosen and
rejected run as one tree that computes their shared prompt once, length-sorted batches (one example per
forward on CPU, the evaluator's default there), inference mode, identical sequences scored once (RewardBench
repeats prompt/response pairs across subsets).

Both paths use one model object. The per-example scores must agree (to float tolerance) before any speed is
reported, so a faster path can never be a different one. With --repeats N the two paths alternate
(naive, ours, ours, naive, ...) so that a change in load from other processes hits both alike; the best
time of each is reported. The last line is:

    rb_eval_speed ours_rows_s=<x> naive_rows_s=<x> ratio=<x>

`smollm2-135m` without --scorer gives an untrained (seeded) reward head: fine for timing, and the score
check still compares two real forwards of the same weights.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "rewardbench_sample.jsonl"


def naive_scores(
    scorer, rows: list[dict], max_length: int, batch_size: int = 8
) -> tuple[list[float], list[float]]:
    """reward-bench's shape of loop: dataset order, per-batch tokenization and padding, two forwards a batch."""
    tok, model = scorer.tokenizer, scorer.model
    tok.truncation_side = "left"  # keep the end, where the reward is read, as our scorer does
    tok.padding_side = "right"

    def texts(key: str, batch: list[dict]) -> list[str]:
        return [
            tok.apply_chat_template(
                [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r[key]}],
                tokenize=False,
            )
            for r in batch
        ]

    def forward(strings: list[str]) -> list[float]:
        enc = tok(
            strings,
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
            add_special_tokens=False,
        )
        enc = {k: v.to(scorer.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        # The model's own pooling: the last token that is not padding (pad != eos by construction).
        return model(**enc).logits[:, 0].float().cpu().tolist()

    chosen, rejected = [], []
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            chosen += forward(texts("chosen", batch))
            rejected += forward(texts("rejected", batch))
    return chosen, rejected


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--scorer", help="Use a scorer directory instead of --model.")
    p.add_argument("--max-length", type=int, default=2048)
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="Our evaluator's sequences per forward (default: the evaluator's own default for the device, "
        "one example at a time on CPU; naive is fixed at 8).",
    )
    p.add_argument(
        "--stride", type=int, default=1, help="Every Nth row only (quick runs that keep every subset)."
    )
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice).")
    args = p.parse_args(argv)

    if not Path(args.data).is_file():
        print(f"SKIP: {args.data} not found (../shared/data comes with the project's CI)", file=sys.stderr)
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)

    from rewardmodels.eval import rewardbench as rb
    from rewardmodels.io import read_rows

    rows = read_rows(args.data)[:: args.stride]
    data = rb.prepare_examples(rows, 1)
    if args.scorer:
        from rewardmodels import load_scorer

        scorer = load_scorer(args.scorer, device="cpu", dtype="float32")
        scorer.max_length = args.max_length
    else:
        from rewardmodels.modeling import load_backbone, load_tokenizer
        from rewardmodels.scorers.sequence import SequenceScorer

        tokenizer = load_tokenizer(args.model)
        torch.manual_seed(0)  # the reward head of a plain causal LM is freshly initialised: one output
        model = load_backbone(args.model, "seq_cls", tokenizer=tokenizer, dtype="float32", device="cpu")
        manifest = {
            "kind": "bt",
            "base_model": args.model,
            "max_length": args.max_length,
            "use_chat_template": True,
        }
        scorer = SequenceScorer(model, tokenizer, manifest, torch.device("cpu"))
    batch_size = args.batch_size or rb.default_batch_size(scorer)
    print(
        f"rows={len(rows)} max_length={args.max_length} ours_batch={batch_size} naive_batch=8 "
        f"threads={torch.get_num_threads()} cpus={os.cpu_count()} load_avg={os.getloadavg()}",
        flush=True,
    )

    ours_times, naive_times, ours_records, naive = [], [], None, None
    order = ["naive", "ours"]
    for rep in range(args.repeats):
        for which in order if rep % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            if which == "naive":
                naive = naive_scores(scorer, rows, args.max_length)
                naive_times.append(time.perf_counter() - start)
            else:
                with tempfile.TemporaryDirectory() as tmp:
                    out = rb.run_rewardbench(
                        scorer, data, tmp, batch_size=batch_size, progress=False, write_reports=True
                    )
                ours_times.append(time.perf_counter() - start)
                ours_records = out.records
            print(
                f"  {which}: {time.perf_counter() - start:.1f}s load_avg={os.getloadavg()[0]:.2f}", flush=True
            )

    ours_c = [r["score_chosen"] for r in ours_records]
    ours_r = [r["score_rejected"] for r in ours_records]
    diffs = [abs(a - b) for a, b in zip(ours_c + ours_r, naive[0] + naive[1], strict=True)]
    scale = max(1.0, max(abs(x) for x in ours_c + ours_r))
    flips = sum((a > b) != (c > d) for a, b, c, d in zip(ours_c, ours_r, naive[0], naive[1], strict=True))
    print(
        f"score check: max |ours - naive| = {max(diffs):.3g} (scale {scale:.3g}); correct flags differing: {flips}"
    )
    if max(diffs) > 1e-3 * scale:
        print("FAIL: our scores differ from the naive loop's", file=sys.stderr)
        return 1
    ours_rs = len(rows) / min(ours_times)
    naive_rs = len(rows) / min(naive_times)
    print(
        f"rb_eval_speed ours_rows_s={ours_rs:.3f} naive_rows_s={naive_rs:.3f} ratio={ours_rs / naive_rs:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
