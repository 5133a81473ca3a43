"""Step scores of two model-free ProcessBench baselines, in the predictions.jsonl form that
`rewardmodels eval processbench --reuse-scores` reads, so they go through the same metric and threshold
choice (fixed, tuned in-sample, tuned on other subsets) as a real scorer:

  length  s_k = -(characters of steps 1..k): a step is flagged once the solution has run on long enough,
          so the tuned threshold is the best "the first error comes after c characters" rule
  random  s_k ~ Uniform(0, 1), i.i.d., seeded

    python benchmarks/processbench_baselines.py --dataset a.json b.json --out-dir outputs/pb-baselines
    rewardmodels eval processbench --reuse-scores outputs/pb-baselines/length.jsonl --dataset a.json b.json \\
        --tune-threshold-on a --output-dir outputs/pb-length
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rewardmodels.eval.step_baselines import length_scores  # noqa: E402 - after the path setup


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", nargs="+", required=True, help="ProcessBench files (official schema)")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    from rewardmodels.eval.processbench import load_examples
    from rewardmodels.io import write_jsonl

    examples = load_examples(args.dataset)
    rng = random.Random(args.seed)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, scores in (
        ("length", lambda steps: length_scores(steps)),
        ("random", lambda steps: [rng.random() for _ in steps]),
    ):
        rows = ({"id": e["id"], "subset": e["subset"], "step_scores": scores(e["steps"])} for e in examples)
        write_jsonl(out / f"{name}.jsonl", rows)
        print(f"{out / name}.jsonl: {len(examples)} examples")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
