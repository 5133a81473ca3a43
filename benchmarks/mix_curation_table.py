"""The curated-versus-uncurated table of docs/results.md (issue 25) from the run folders that
`benchmarks/mix_curation.sh` writes: per run, held-out pair accuracy by source (`final_eval_by_source` of the
training manifest) and the RewardBench-sample scores (`eval rewardbench` results.json); then mean and spread
(sample standard deviation over seeds) per arm.

    python benchmarks/mix_curation_table.py outputs/i25/60
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

SOURCES = ("harmless", "helpful", "math", "synthetic")
SECTIONS = ("Chat", "Chat Hard", "Safety", "Reasoning")


def run_figures(run: Path) -> dict[str, float]:
    """One run's figures, x100: held-out accuracy pooled and per source, RewardBench overall and sections."""
    manifest = json.loads((run / "run" / "rewardmodels_training.json").read_text())
    rb = json.loads((run / "rb" / "results.json").read_text())
    out = {"held-out": 100 * manifest["final_eval"]["eval_accuracy"]}
    for source in SOURCES:
        out[source] = 100 * manifest["final_eval_by_source"][source][f"eval_{source}_accuracy"]
    out["RB overall"] = 100 * rb["overall"]
    out.update({name: 100 * rb["sections"][name] for name in SECTIONS})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", help="The folder holding ARM-sSEED run folders (e.g. outputs/i25/60).")
    args = parser.parse_args(argv)
    root = Path(args.root)
    columns = ["held-out", *SOURCES, "RB overall", *SECTIONS]
    print("| run | " + " | ".join(columns) + " |")
    print("|---|" + "---:|" * len(columns))
    arms: dict[str, list[dict]] = {}
    for run in sorted(root.glob("*-s*")):
        if not (run / "rb" / "results.json").exists():
            continue
        figures = run_figures(run)
        arms.setdefault(run.name.rsplit("-s", 1)[0], []).append(figures)
        print(f"| {run.name} | " + " | ".join(f"{figures[c]:.1f}" for c in columns) + " |")
    for arm, runs in arms.items():
        cells = []
        for c in columns:
            values = [r[c] for r in runs]
            spread = statistics.stdev(values) if len(values) > 1 else float("nan")
            cells.append(f"{statistics.mean(values):.1f} ± {spread:.1f}")
        print(f"| **{arm}, mean ± sd of {len(runs)}** | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
