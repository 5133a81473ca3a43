"""The length rule's pair accuracy on each source's held-out split of a BT recipe: the same held-out rows the
training run reports in `final_eval_by_source` (same specs, mixing options and seed), with no model loaded.
A pair is right when the chosen text is strictly shorter than the rejected one (equal lengths are wrong, as
in RewardBench's rule).

    python benchmarks/heldout_length_baseline.py recipes/bt/smollm2_mix.yaml [--seed 1]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None) -> int:
    from rewardmodels.data_builders.schema import text_of
    from rewardmodels.training.arguments import DataArguments, read_recipe
    from rewardmodels.training.run import load_train_eval_sources

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("recipe", help="a BT recipe YAML with train_data (and optionally seed, invalid_rows)")
    p.add_argument("--seed", type=int, default=None, help="the run's seed (default: the recipe's, else 0)")
    args = p.parse_args(argv)
    recipe = read_recipe(args.recipe)
    seed = args.seed if args.seed is not None else int(recipe.values.get("seed", ["0"])[0])
    data = DataArguments(
        train_data=recipe.values["train_data"], invalid_rows=recipe.values.get("invalid_rows", ["error"])[0]
    )
    _, held_out, names = load_train_eval_sources(data, "preference", seed)
    right, total = Counter(), Counter()
    for row, name in zip(held_out, names, strict=True):
        right[name] += len(text_of(row["chosen"])) < len(text_of(row["rejected"]))
        total[name] += 1
    for name in total:
        print(f"{name}: {right[name]}/{total[name]} = {right[name] / total[name]:.3f}")
    print(
        f"pooled: {sum(right.values())}/{sum(total.values())} = {sum(right.values()) / sum(total.values()):.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
