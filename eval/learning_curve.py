"""`rewardmodels report curve`: held-out accuracy at every checkpoint of a BT run, against training compute,
and ScaleRL's saturating curve fitted through it.

    rewardmodels report curve outputs/bt-smollm2-mix [--dataset HELD_OUT.jsonl] [--output-dir DIR]

Points: every checkpoint-N of RUN_DIR, then the final model when its step is not a checkpoint's. Each is
scored on the held-out pairs (default RUN_DIR/held_out.jsonl, which `train bt` writes with each row's
`source`); accuracy is the share of pairs whose chosen scores strictly above its rejected (a tie is wrong,
as in RewardBench), overall and per `source`. Pairs marked `tie: true` are left out. Scores are cached per
checkpoint under OUTPUT_DIR/scores/, so a re-run (say, after more checkpoints were saved) scores only what
is new.

Compute: C = tokens x (4 N_frozen + 6 N_trainable) (eval/run_checkpoints.py: forward 2N per token, the
activation gradients 2N more through every layer, the weight gradients 2N for trained parameters only; the
input embedding matrix, a lookup, is not counted). Tokens are `num_input_tokens_seen` from each point's
trainer_state.json (BT runs record it), or step x --tokens-per-step for runs that did not.

Fit: R(C) = R0 + (A - R0) / (1 + (C_mid / C)^B) by least squares (eval/curve_fit.py), errors on A, C_mid
and B from the Jacobian covariance at the optimum. R0, the accuracy as C -> 0, is by default measured: the
step-0 model (the base with the head initialised from the run's seed, as training initialised it) scored
on the same pairs; `--r0 fit` fits it, `--r0 0.5` fixes it. Writes curve.json and curve.png (atomically).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from rewardmodels.cli_common import (
    ArgumentParser,
    HelpFormatter,
    add_output_dir_argument,
    add_progress_argument,
    setup_logging,
)
from rewardmodels.data_builders.curation import is_tie, row_key
from rewardmodels.data_builders.mixing import HELD_OUT_FILE
from rewardmodels.data_builders.schema import preference_row_errors, validate_rows
from rewardmodels.errors import InputError
from rewardmodels.eval.curve_fit import fit_curve
from rewardmodels.eval.pair_scores import cache_name, fingerprint_of, score_pairs
from rewardmodels.eval.run_checkpoints import (
    bt_manifest,
    load_initial_scorer,
    load_point_scorer,
    parameter_counts,
    run_points,
)
from rewardmodels.io import read_rows, write_json

logger = logging.getLogger("rewardmodels.eval.learning_curve")
FORMULA = "C = tokens x (4 N_frozen + 6 N_trainable)"
MODEL = "R(C) = R0 + (A - R0) / (1 + (C_mid / C)^B)"
UNCERTAINTY = "one standard error from the Jacobian covariance s^2 (J^T J)^-1 at the optimum"


def accuracy_of(rows: list[dict], scores: dict[str, tuple[float, float]]) -> dict:
    """{"accuracy", "pairs", "by_source": {source: accuracy}}: chosen strictly above rejected."""
    hits: dict[str, list[bool]] = {}
    for row in rows:
        chosen, rejected = scores[row_key(row)]
        hits.setdefault(str(row.get("source", "all")), []).append(chosen > rejected)
    every = [h for values in hits.values() for h in values]
    return {
        "accuracy": sum(every) / len(every),
        "pairs": len(every),
        "by_source": {name: sum(v) / len(v) for name, v in hits.items()},
    }


def read_held_out(path: Path) -> list[dict]:
    """Validated preference rows, ties left out; bad rows are an InputError before any model loads."""
    if not path.is_file():
        raise InputError(
            path, None, None, "no held-out pairs here",
            hint=f"Pass --dataset with pairs (a `source` field gives per-source accuracy); BT runs write {HELD_OUT_FILE}.",
        )  # fmt: skip
    rows, _ = validate_rows(read_rows(path), preference_row_errors, source=str(path))
    kept = [r for r in rows if not is_tie(r)]
    if not kept:
        raise InputError(path, None, "tie", "every pair is a tie: no accuracy to measure")
    return kept


def fit_or_error(compute: list[float], values: list[float], r0: float | None) -> dict:
    try:
        return fit_curve(compute, values, r0).to_dict()
    except ValueError as e:
        return {"error": str(e)}


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="rewardmodels report curve", description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("run_dir", help="A `rewardmodels train bt` output_dir with checkpoint-N folders.")
    p.add_argument(
        "--dataset",
        help=f"Held-out pairs to score (.jsonl/.json/.parquet; a `source` field splits the accuracy). Default: "
        f"RUN_DIR/{HELD_OUT_FILE}, the held-out split the run wrote.",
    )
    add_output_dir_argument(p, "Where curve.json, curve.png and the score caches go. Default: RUN_DIR/curve.")
    p.add_argument(
        "--r0",
        default="base",
        help="R0, the accuracy as compute -> 0: `base` measures the step-0 model (the base with the head the "
        "run's seed initialised; runs without a recorded seed fall back to `fit`), `fit` fits it, a number "
        "fixes it.",
    )
    p.add_argument(
        "--tokens-per-step",
        type=int,
        help="Tokens per optimizer step, for runs whose trainer_state.json has no num_input_tokens_seen "
        "(tokens = step x this). Ignored where the count was recorded.",
    )
    p.add_argument("--no-final", action="store_true", help="Leave out the final model in RUN_DIR itself.")
    p.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available).")
    p.add_argument("--batch-size", type=int, help="Sequences per forward (default: 1 on CPU, else 16).")
    p.add_argument(
        "--rescore", action="store_true", help="Discard the cached scores and score every point again."
    )
    add_progress_argument(p)
    return p


def parse_r0(text: str) -> str | float:
    if text in ("base", "fit"):
        return text
    try:
        return float(text)
    except ValueError:
        raise InputError(None, None, "--r0", f"expected base, fit or a number, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    run_dir = Path(args.run_dir)
    r0_choice = parse_r0(args.r0)
    points = run_points(run_dir, include_final=not args.no_final)
    dataset = Path(args.dataset) if args.dataset else run_dir / HELD_OUT_FILE
    rows = read_held_out(dataset)
    missing = [p.name for p in points if p.tokens is None]
    if missing and args.tokens_per_step is None:
        raise InputError(
            points[0].path / "trainer_state.json", None, "num_input_tokens_seen",
            f"no token count recorded for {', '.join(missing)}",
            hint="Pass --tokens-per-step N, or train with --include_num_input_tokens_seen true (the BT default).",
        )  # fmt: skip
    out = Path(args.output_dir) if args.output_dir else run_dir / "curve"
    counts = parameter_counts(points[0].path)
    options = {"batch_size": args.batch_size, "progress": not args.no_progress, "rescore": args.rescore}

    measured = []
    for point in points:
        scores = score_pairs(
            lambda point=point: load_point_scorer(point.path, args.device),
            rows, out / "scores" / f"{cache_name(point.name, point.path)}.jsonl", fingerprint_of(point.path),
            desc=f"scoring {point.name}", **options,
        )  # fmt: skip
        tokens = point.tokens if point.tokens is not None else point.step * args.tokens_per_step
        measured.append(
            {"name": point.name, "step": point.step, "tokens": tokens, "tokens_recorded": point.tokens is not None,
             "compute": float(tokens) * counts.flops_per_token, **accuracy_of(rows, scores)}
        )  # fmt: skip

    initial = None
    if r0_choice == "base":
        seed = bt_manifest(points[0].path).get("seed")
        if seed is not None:
            scores = score_pairs(
                lambda: load_initial_scorer(points[0].path, args.device),
                rows, out / "scores" / f"{cache_name('step-0', points[0].path)}.jsonl",
                {"scorer": "step-0", "run": str(run_dir.resolve()), "seed": seed},
                desc="scoring step 0", **options,
            )  # fmt: skip
            initial = accuracy_of(rows, scores)
        else:
            logger.warning("the run's manifest records no seed: R0 is fitted instead of measured at step 0")
    fixed = r0_choice if isinstance(r0_choice, float) else (initial["accuracy"] if initial else None)
    fit_points = [m for m in measured if m["compute"] > 0]
    compute = [m["compute"] for m in fit_points]
    result = {
        "run_dir": str(run_dir),
        "dataset": str(dataset),
        "formula": FORMULA,
        "model": MODEL,
        "uncertainty": UNCERTAINTY,
        "parameters": {**counts.__dict__, "flops_per_token": counts.flops_per_token},
        "points": measured,
        "initial": initial,
        "r0": "measured at step 0" if initial else ("given" if isinstance(r0_choice, float) else "fitted"),
        "fit": fit_or_error(compute, [m["accuracy"] for m in fit_points], fixed),
        "fits_by_source": {
            name: fit_or_error(
                compute,
                [m["by_source"][name] for m in fit_points],
                initial["by_source"].get(name)
                if initial
                else (fixed if isinstance(r0_choice, float) else None),
            )
            for name in measured[0]["by_source"]
        },
    }
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "curve.json", result)
    from rewardmodels.eval.curve_plot import write_curve_png

    write_curve_png(out / "curve.png", result)
    print(summary(result))
    print(f"wrote {out / 'curve.json'} and {out / 'curve.png'}")
    return 0


def summary(result: dict) -> str:
    """The points as a table, then the fit: A +- err, C_mid +- err, B +- err, and where R0 came from."""
    sources = list(result["points"][0]["by_source"])
    head = f"{'point':<18} {'step':>6} {'tokens':>12} {'compute':>10} {'acc':>6} " + " ".join(
        f"{s[:10]:>10}" for s in sources
    )
    lines = [
        f"training compute: {result['formula']} = tokens x {result['parameters']['flops_per_token']:.4g}",
        head,
    ]
    for m in result["points"]:
        lines.append(
            f"{m['name']:<18} {m['step']:>6} {m['tokens']:>12} {m['compute']:>10.3g} {m['accuracy']:>6.3f} "
            + " ".join(f"{m['by_source'][s]:>10.3f}" for s in sources)
        )
    if result["initial"]:
        lines.append(f"{'step 0 (base)':<18} {0:>6} {0:>12} {0:>10} {result['initial']['accuracy']:>6.3f}")
    fit = result["fit"]
    if "error" in fit:
        lines.append(f"no fit: {fit['error']}")
        return "\n".join(lines)
    lines += [
        f"fit {result['model']} ({result['uncertainty']}; {fit['dof']} degrees of freedom):",
        f"  A (ceiling) = {fit['a']:.4f} +- {_num(fit['a_err'], '.4f')}",
        f"  C_mid       = {fit['c_mid']:.4g} +- {_num(fit['c_mid_err'], '.3g')} FLOPs",
        f"  B           = {fit['b']:.3f} +- {_num(fit['b_err'], '.3f')}",
        f"  R0          = {fit['r0']:.4f} ({result['r0']})",
    ]
    return "\n".join(lines)


def _num(value: float, spec: str) -> str:
    return (
        "n/a (no residual degrees of freedom)" if value is None or math.isnan(value) else format(value, spec)
    )


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

__all__ = ["accuracy_of", "build_parser", "main", "summary"]
