"""Does each method learn, on SmolLM2-135M, a synthetic task whose answer is known? (issue 22, part 3)

    python benchmarks/method_works.py --method {bt,prm,implicit-prm,generative,crome} --task {a,b,c} --seed S

One run trains the method with its recipe, `recipes/<method>/smollm2_synthetic*.yaml`, through its real
`rewardmodels train <method>` entry point (in this process; flags override the data, seed, output, steps),
exports the result, and measures it on held-out problems from another generator seed (seed + 1000), pooled
over all of them, with the project's own metrics (`method_works_eval`). It prints

    method_works method=M task=T seed=S metric=NAME value=V baseline=B control=C wall_s=W

and appends the same record, with the details (every baseline, the trainer's own final eval, settings,
commit), to --output as JSON lines, written atomically. A (method, task, seed) already there is not run
again (its lines are printed as stored) unless --overwrite. Per method:

  bt            metric pair_accuracy (fraction). baseline: the length rule on the same pairs (longer is
                better). control: the untrained model (base + fresh head, same seed) read the same way.
  prm           metric first_error_f1 (ProcessBench's first-error F1, percent) from the exported scorer's
                step probabilities at threshold 0.5. baseline: the position prior's F1 (all four step
                baselines of eval.step_baselines are in the JSON). control: the untrained model at 0.5.
  implicit-prm  two lines. outcome_accuracy: sign of r(y) = beta * log-ratio against the label (baseline:
                the majority label's rate; control: the untrained base's reference-free score
                beta * sum log pi(y) with the accuracy-best threshold of the tuning split). first_error_f1:
                step scores (the scorer's reading: sigmoid(q_k) by default, r_k with --step-scores reward;
                both in the JSON) with the F1-best threshold of a separate tuning split (seed + 2000);
                baseline the position prior; control the untrained base's reference-free step scores read
                the same way, with its own threshold tuned on the same split.
  generative    SFT on templated chains; three lines. verdict_accuracy: P(yes) >= 0.5 iff the solution
                is right, one greedy chain (--temperature; baseline: majority label; control: the untrained
                base as verifier, read the same way). first_error_f1: predict_first_error from that chain's
                verdicts (baseline: position prior; control: the untrained base). kK_minus_k1: verdict
                accuracy with K=--parallel sampled chains averaged minus one sampled chain
                (--parallel-temperature, on the first --parallel-rows rows; baseline: K=1's accuracy;
                control: K's accuracy).
  crome         plain BT and Crome-augmented BT (data_builders.crome.augment with the rule oracle
                data_builders.crome_rules.RuleOracle), the same steps and batch size, trained on pairs where
                --transform sits on the chosen side with probability --chosen-share; tested on pairs with
                it on the rejected side (flipped) and on the chosen side (unflipped). metric gap_closed =
                (crome flipped - plain flipped) / (plain unflipped - plain flipped); baseline: plain
                flipped accuracy; control: plain unflipped accuracy; all four accuracies in the JSON.

Budget (defaults, per method, sized for at most about 15 minutes a run on 2 CPU cores at task (a); see
BUDGETS): training rows, steps, held-out rows, max_length (the recipe's unless given), generated tokens.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: `benchmarks` and the repo's tests live beside it
    sys.path.insert(0, str(REPO))

from benchmarks.method_works_runs import RUNS, Line, Settings, run  # noqa: E402

METHODS = tuple(RUNS)
TASKS = ("a", "b", "c")
# Per method: training rows, optimizer steps, held-out rows, tuning rows (implicit-prm), max_length (None:
# the recipe's), and for the generative verifier the chain budget; each is a flag below.
BUDGETS: dict[str, dict] = {
    "bt": {"train_rows": 1000, "steps": 40, "test_rows": 200},
    "prm": {"train_rows": 2000, "steps": 60, "test_rows": 200},
    "implicit-prm": {"train_rows": 1000, "steps": 60, "test_rows": 200, "tune_rows": 200},
    "generative": {
        "train_rows": 600,
        "steps": 150,  # 60 (240 chains) learnt the chain format but left the verdict at chance (seed 0: 0.50)
        "test_rows": 100,
        "max_new_tokens": 160,
        "parallel_rows": 20,
        "control_rows": 10,
    },
    "crome": {"train_rows": 1000, "steps": 40, "test_rows": 200},
}
DEFAULT_OUTPUT = REPO / "benchmarks" / "results" / "method_works.jsonl"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from rewardmodels.cli_common import HelpFormatter

    budgets = "; ".join(f"{m}: " + ", ".join(f"{k}={v}" for k, v in b.items()) for m, b in BUDGETS.items())
    p = argparse.ArgumentParser(
        prog="benchmarks/method_works.py", description=__doc__, formatter_class=HelpFormatter,
        epilog=f"Default budgets: {budgets}.",
    )  # fmt: skip
    p.add_argument("--method", required=True, choices=METHODS, help="The method to train and measure.")
    p.add_argument("--task", required=True, choices=TASKS,
                   help="Rung of the synthetic ladder: a answer slips, b single-digit 1-2 operation slips, "
                   "c the full task (data_builders.synthetic, spec `synthetic:...,task=T`).")  # fmt: skip
    p.add_argument("--seed", type=int, required=True,
                   help="Training seed and training-data generator seed; held-out problems use seed + 1000, "
                   "threshold tuning seed + 2000.")  # fmt: skip
    p.add_argument(
        "--output", default=str(DEFAULT_OUTPUT), help="JSON-lines file the records are appended to."
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="Run again even if --output holds this (method, task, seed), replacing its records.",
    )
    p.add_argument(
        "--workdir",
        default=str(REPO / "outputs" / "method_works"),
        help="Where the run's model, scorer and data go (a subfolder per run, deleted afterwards).",
    )
    p.add_argument("--keep", action="store_true", help="Keep the run's subfolder (models, scorers, pairs).")
    p.add_argument(
        "--model",
        default=None,
        help="Backbone instead of the recipe's (smollm2-135m); tests use a tiny random model.",
    )
    p.add_argument(
        "--train-rows", type=int, help="Training problems (pairs or solutions). Default: per method."
    )
    p.add_argument("--steps", type=int, help="Optimizer steps (--max_steps). Default: per method.")
    p.add_argument("--test-rows", type=int, help="Held-out problems (seed + 1000). Default: per method.")
    p.add_argument("--tune-rows", type=int, help="Threshold-tuning problems (seed + 2000), implicit-prm.")
    p.add_argument(
        "--control-rows",
        type=int,
        help="Read the untrained control on the first N held-out rows only (default: all; "
        "generative: 10, as the untrained verifier writes every chain to --max-new-tokens).",
    )
    p.add_argument("--max-length", type=int, help="Token limit per sequence instead of the recipe's.")
    p.add_argument("--step-scores", choices=("sigmoid_q", "reward"),
                   help="Implicit-prm: the step reading whose tuned F1 is printed (both are in the JSON); "
                   "default: the exported scorer's (sigmoid_q, sigmoid of q at each step's end).")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=16, help="Sequences per scoring forward.")
    p.add_argument(
        "--max-new-tokens",
        type=int,
        help="Generative: tokens per verification chain (default 160: a 5-step templated chain is at most 138 tokens).",
    )
    p.add_argument("--temperature", type=float, default=0.0,
                   help="Generative: chain temperature of the verdict and F1 lines (0 = greedy, ThinkPRM's "
                   "inference default).")  # fmt: skip
    p.add_argument(
        "--parallel-temperature",
        type=float,
        default=0.6,
        help="Generative: the sampling temperature of the K vs K=1 comparison (both sides).",
    )
    p.add_argument(
        "--parallel", type=int, default=4, help="Generative: K, chains averaged, compared with K=1."
    )
    p.add_argument("--parallel-rows", type=int,
                   help="Generative: compare K with K=1 on the first N held-out rows (default 20: K chains cost "
                   "K times one; 0: all rows).")  # fmt: skip
    p.add_argument(
        "--transform", default="filler", help="Crome: the spurious transform (data_builders.spurious)."
    )
    p.add_argument(
        "--chosen-share",
        type=float,
        default=0.9,
        help="Crome: share of training pairs with the transform on the chosen side.",
    )
    p.add_argument(
        "--crome-transforms",
        default=None,
        help="Crome: comma-separated deterministic neutral transforms for augment (default: every "
        "transform but --transform, which the test measures).",
    )
    p.add_argument("--train-flag", action="append", default=[], metavar="FLAG",
                   help="Extra flag for `rewardmodels train`, repeated per token: --train-flag=--lora_r "
                   "--train-flag=32.")  # fmt: skip
    return p.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    budget = BUDGETS[args.method]

    def pick(name: str, default=None):
        value = getattr(args, name)
        return value if value is not None else budget.get(name, default)

    return Settings(
        method=args.method, task=args.task, seed=args.seed,
        workdir=Path(args.workdir) / f"{args.method}-task{args.task}-seed{args.seed}",
        model=args.model, train_rows=pick("train_rows"), test_rows=pick("test_rows"),
        tune_rows=pick("tune_rows", 200), steps=pick("steps"), max_length=args.max_length,
        batch_size=args.batch_size, max_new_tokens=pick("max_new_tokens", 160), temperature=args.temperature,
        parallel_temperature=args.parallel_temperature,
        parallel=args.parallel, parallel_rows=pick("parallel_rows"), control_rows=pick("control_rows"),
        step_scores=args.step_scores, transform=args.transform, chosen_share=args.chosen_share,
        crome_transforms=args.crome_transforms.split(",") if args.crome_transforms else None,
        extra_flags=list(args.train_flag),
    )  # fmt: skip


def number(x: float | None, digits: int) -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def format_line(method: str, task: str, seed: int, line: Line, wall_s: float) -> str:
    """The printed line; F1 figures (percent) with one decimal, the rest with three."""
    digits = 1 if line.metric.endswith("f1") else 3
    return (
        f"method_works method={method} task={task} seed={seed} metric={line.metric} "
        f"value={number(line.value, digits)} baseline={number(line.baseline, digits)} "
        f"control={number(line.control, digits)} wall_s={wall_s:.0f}"
    )


def commit() -> str:
    """HEAD, with "+dirty" when the working tree differs from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True)
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def read_records(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    from rewardmodels.io import read_rows

    return read_rows(path)


def same_run(record: dict, method: str, task: str, seed: int) -> bool:
    return (record.get("method"), record.get("task"), record.get("seed")) == (method, task, seed)


def jsonable(value):
    """NaN as null (JSON has no NaN), recursively."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    output = Path(args.output)
    existing = read_records(output)
    done = [r for r in existing if same_run(r, args.method, args.task, args.seed)]
    if done and not args.overwrite:
        print(f"method_works: {args.method} task {args.task} seed {args.seed} is in {output}; "
              "printing it (--overwrite runs it again)", file=sys.stderr)  # fmt: skip
        for record in done:
            print(record["line"], flush=True)
        return 0
    settings = settings_from(args)
    start = time.perf_counter()
    lines, details = run(settings, keep=args.keep)
    wall = time.perf_counter() - start
    command = "python benchmarks/method_works.py " + " ".join(sys.argv[1:] if argv is None else argv)
    shared = {"method": args.method, "command": command, "task": args.task, "seed": args.seed, "wall_s": round(wall, 1),
              "commit": commit(), "settings": {k: str(v) if isinstance(v, Path) else v
                                               for k, v in vars(settings).items() if k != "timings"},
              "details": details}  # fmt: skip
    records, printed = [], []
    for line in lines:
        text = format_line(args.method, args.task, args.seed, line, wall)
        printed.append(text)
        records.append(jsonable({"line": text, "metric": line.metric, "value": line.value,
                                 "baseline": line.baseline, "control": line.control, **shared}))  # fmt: skip
    from rewardmodels.io import write_jsonl

    kept = [r for r in existing if not same_run(r, args.method, args.task, args.seed)]
    write_jsonl(output, kept + records)  # one atomic rewrite: a run's records land together or not at all
    for text in printed:
        print(text, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
