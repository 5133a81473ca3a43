"""`rewardmodels calibrate SCORER --dataset D`: fit temperature scaling, p = sigmoid(a * z + b), and store it.

The scorer scores every row of D (`eval/calibrate_data.py`: preference pairs, labelled responses, labelled
steps or ProcessBench rows; bad rows are refused with their line and field before the scorer loads). The
rows are split by prompt into a fit part (--fit-fraction) and a held-out part; a and b are fitted by log-loss
on the fit part (`eval/calibration_fit.py`, Newton's method), and ECE (15 equal-width bins), Brier, AUROC and
log-loss are reported before (a = 1, b = 0: the scorer as it is) and after, on the held-out part only.

z is the raw score as a logit (`rewardmodels.scorers.calibration`): the score itself for a scorer whose score
is a logit (BT, DPO, an implicit PRM's response score), log(s / (1 - s)) for one whose score is a probability
(a PRM, a generative verifier, an implicit PRM's sigmoid(q) step scores). Which, the scorer declares
(`DeclaresScoreScale`); --score-scale overrides it, and for a kind that declares nothing `auto` reads it off
the scores (probability when every finite score lies in [0, 1]).

Pairs fit the scale alone, sigmoid(a * (z_chosen - z_rejected)), with b = 0: which response of a pair comes
first is arbitrary, so the log-loss of both orders is symmetric in b and its minimum has b = 0 (and a common
shift of all scores, which b would be, cancels in every difference). The per-response reward sigmoid(a * z)
is then the pair-calibrated logit read against 0: docs/rl.md, "Calibrated rewards".

Outputs in --output-dir: results.json (the fit, the split sizes, held-out metrics before and after),
calibration.png (held-out reliability before and after) and scores_journal.jsonl, the raw scores, journalled
chunk by chunk so a killed run resumes without re-scoring (a journal of another scorer, dataset or setting is
refused unless --overwrite). Unless --dry-run, the fit is written into the scorer's manifest (atomically)
as `calibration`; `as_reward_func(calibrated=True)`, `rewardmodels score --calibrated` and `rewardmodels
serve --calibrated` then return calibrated probabilities.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from rewardmodels.cli_common import (
    ArgumentParser,
    HelpFormatter,
    add_output_dir_argument,
    add_progress_argument,
    add_scorer_arguments,
    scorer_keywords,
)
from rewardmodels.errors import InputError
from rewardmodels.eval import calibrate_data as data
from rewardmodels.eval.calibrate_results import fit_and_evaluate, manifest_entry
from rewardmodels.io import read_rows, write_json
from rewardmodels.scorers.calibration import CALIBRATION_KEY, SCORE_SCALES

JOURNAL_NAME = "scores_journal.jsonl"
RESULTS_NAME = "results.json"
DIAGRAM_NAME = "calibration.png"


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


# ---- scoring ------------------------------------------------------------------------------------------------


def score_chunk(scorer, fmt: str, rows: Sequence[dict], batch_size: int) -> list[list[float]]:
    """Each row's raw scores: [chosen, rejected] (pairs, one call for both), [score] (responses), or the
    step scores (steps, processbench)."""
    prompts = [data.prompt_of(r, fmt) for r in rows]
    if fmt == "pairs":
        values = scorer.score(
            prompts + prompts, [r["chosen"] for r in rows] + [r["rejected"] for r in rows], batch_size
        )
        return [[float(c), float(r)] for c, r in zip(values[: len(rows)], values[len(rows) :], strict=True)]
    if fmt == "responses":
        return [[float(v)] for v in scorer.score(prompts, [r["completion"] for r in rows], batch_size)]
    steps = [r["completions"] if fmt == "steps" else r["steps"] for r in rows]
    return [[float(v) for v in s] for s in scorer.score_steps(prompts, steps, batch_size)]


def score_rows(
    scorer, fmt: str, rows: Sequence[dict], journal, batch_size: int, chunk_size: int, progress: bool
):
    """Every row's raw scores, in row order: those in `journal` reused, the rest scored `chunk_size` rows at a
    time and appended to it."""
    todo = [i for i in range(len(rows)) if i not in journal]
    with tqdm(total=len(todo), desc="scoring", unit="row", disable=not progress) as bar:
        for start in range(0, len(todo), chunk_size):
            take = todo[start : start + chunk_size]
            values = score_chunk(scorer, fmt, [rows[i] for i in take], batch_size)
            journal.append({"row": i, "scores": v} for i, v in zip(take, values, strict=True))
            bar.update(len(take))
    return [journal.done[i]["scores"] for i in range(len(rows))]


def resolve_score_scale(
    requested: str, scorer, source: str, values: Sequence[Sequence[float]]
) -> tuple[str, str]:
    """(scale, where it came from): --score-scale when given; else the scorer's declaration for `source`;
    else "probability" when every finite score lies in [0, 1], "logit" otherwise."""
    from rewardmodels.scorers.capabilities import DeclaresScoreScale, DeclaresStepScoreScale

    if requested != "auto":
        return requested, "--score-scale"
    if source == "score" and isinstance(scorer, DeclaresScoreScale):
        return scorer.score_scale, "declared by the scorer"
    if source == "score_steps" and isinstance(scorer, DeclaresStepScoreScale):
        return scorer.step_score_scale, "declared by the scorer"
    finite = [s for row in values for s in row if math.isfinite(s)]
    if finite and all(0.0 <= s <= 1.0 for s in finite):
        return "probability", "read off the scores (every finite score lies in [0, 1])"
    return "logit", "read off the scores (some lie outside [0, 1])"


# ---- command ------------------------------------------------------------------------------------------------


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="rewardmodels calibrate", description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("scorer", help="Scorer directory written by `rewardmodels export`.")
    parser.add_argument(
        "--dataset", required=True, help="Labelled rows (.jsonl/.json/.parquet): see --format."
    )
    parser.add_argument(
        "--format",
        choices=("auto", *data.FORMATS),
        default="auto",
        help="pairs (prompt, chosen, rejected), responses (prompt, completion or response, label 0/1), steps "
        "(prompt, completions, labels) or processbench (problem, steps, label); auto: from the first row.",
    )
    add_output_dir_argument(parser, "Where results.json, calibration.png and the journal go.", required=True)
    parser.add_argument(
        "--fit-fraction", type=float, default=0.5, help="Share of prompts fitted on; the rest is held out."
    )
    parser.add_argument("--seed", type=int, default=0, help="Seed of the split by prompt.")
    parser.add_argument(
        "--score-scale",
        choices=("auto", *SCORE_SCALES),
        default="auto",
        help="How z is read off a raw score s: logit (z = s) or probability (z = log(s / (1 - s))); auto: "
        "as the scorer declares, else probability when every score lies in [0, 1].",
    )
    parser.add_argument(
        "--max-rows", type=int, default=None, help="Use only the first N rows of the dataset."
    )
    parser.add_argument("--batch-size", type=int, default=16, help="Sequences per forward pass.")
    parser.add_argument("--chunk-size", type=int, default=64, help="Rows scored (and journalled) per step.")
    add_progress_argument(parser)
    add_scorer_arguments(parser)
    parser.add_argument(
        "--dry-run", action="store_true", help="Fit and report, but leave the manifest as it is."
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="Discard a journal of scores in --output-dir."
    )
    return parser


def journal_settings(scorer_dir: Path, manifest: dict, args, fmt: str, sha256: str, options: dict) -> dict:
    """What the journalled scores depend on: the scorer (manifest less its calibration, weight files' sizes
    and times), the dataset's content and rows used, the format and the scoring options."""
    weights = sorted(
        (f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in scorer_dir.glob("*.safetensors")
    )
    return {
        "scorer": str(scorer_dir.resolve()),
        "manifest": {k: v for k, v in manifest.items() if k != CALIBRATION_KEY},
        "weights": weights,
        "dataset_sha256": sha256,
        "max_rows": args.max_rows,
        "format": fmt,
        "max_length": args.max_length,
        "dtype": args.dtype,
        "scorer_options": options,
    }


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 0.0 < args.fit_fraction < 1.0:
        parser.error(f"--fit-fraction must lie strictly between 0 and 1, got {args.fit_fraction}")
    if args.batch_size < 1 or args.chunk_size < 1:
        parser.error("--batch-size and --chunk-size must be >= 1")
    keywords = scorer_keywords(args)
    # the journal's fingerprint: the kind's options, and the kernel when one is named (device, dtype and
    # max_length are recorded on their own)
    options = {
        k: v
        for k, v in keywords.items()
        if k not in ("device", "dtype", "max_length") and not (k == "attn_implementation" and v is None)
    }
    from rewardmodels.scorers import MANIFEST_NAME, ScorerOptions, load_scorer, read_manifest

    # Everything that can be wrong with the input is found before the scorer loads.
    scorer_dir = Path(args.scorer)
    manifest = read_manifest(scorer_dir)
    rows = read_rows(args.dataset)[: args.max_rows]
    fmt = data.detect_format(rows, args.dataset) if args.format == "auto" else args.format
    rows = data.checked_rows(rows, fmt, args.dataset)
    fit_rows, held_rows = data.split_rows(rows, fmt, args.fit_fraction, args.seed)
    sha256 = file_sha256(args.dataset)

    from rewardmodels.eval.journal import Journal

    out = Path(args.output_dir)
    settings = journal_settings(scorer_dir, manifest, args, fmt, sha256, options)
    try:
        journal = Journal(out / JOURNAL_NAME, settings, lambda r: r["row"], overwrite=args.overwrite)
    except ValueError as e:
        raise InputError(out / JOURNAL_NAME, None, None, str(e)) from None
    scorer = load_scorer(scorer_dir, options=ScorerOptions.from_keywords(**keywords))
    source = data.SOURCE_OF[fmt]
    if source == "score_steps":
        from rewardmodels.scorers.capabilities import ScoresSteps

        if not isinstance(scorer, ScoresSteps):
            raise InputError(
                args.dataset,
                None,
                None,
                f"{fmt} rows are step labels, but this {scorer.kind} scorer gives no step scores",
                hint="Calibrate it on pairs or labelled responses.",
            )
    values = score_rows(scorer, fmt, rows, journal, args.batch_size, args.chunk_size, not args.no_progress)
    scale, scale_from = resolve_score_scale(args.score_scale, scorer, source, values)

    fit_points = data.points(fmt, [rows[i] for i in fit_rows], [values[i] for i in fit_rows], scale)
    held_points = data.points(fmt, [rows[i] for i in held_rows], [values[i] for i in held_rows], scale)
    for name, (z, _, _) in (("fit", fit_points), ("held-out", held_points)):
        if not z:
            raise InputError(args.dataset, None, None, f"the {name} part has no scored point")
    try:
        fitted = fit_and_evaluate(fmt, fit_points[:2], held_points[:2])
    except ValueError as e:
        raise InputError(
            args.dataset, None, None, str(e), hint="Use more (or harder) rows, or another --seed."
        ) from None
    results = {
        "scorer": str(scorer_dir),
        "kind": scorer.kind,
        "format": fmt,
        "target": data.TARGET_OF[fmt],
        "source": source,
        "score_scale": scale,
        "score_scale_from": scale_from,
        "fitted_on": {
            "path": str(Path(args.dataset).resolve()),
            "sha256": sha256,
            "rows": len(rows),
            "fit_fraction": args.fit_fraction,
            "seed": args.seed,
            "split": "by prompt",
            "fit_rows": len(fit_rows),
            "heldout_rows": len(held_rows),
            "fit_points": len(fit_points[0]),
            "heldout_points": len(held_points[0]),
            "unscored_points": fit_points[2] + held_points[2],
            "scorer_options": options,
        },
        **fitted,
    }
    entry = manifest_entry(results)
    results["calibration"] = entry
    manifest_path = scorer_dir / MANIFEST_NAME
    if args.dry_run:
        results["manifest"] = f"not written (--dry-run): {manifest_path}"
    elif entry["scale"] <= 0.0:
        # A scale <= 0 says these scores do not rank the labels the right way round (or not at all): a
        # reward calibrated with it would be constant or would invert the scorer, so it is reported, not stored.
        results["manifest"] = (
            f"not written: the fitted scale {entry['scale']:.4g} is <= 0, so on these rows the scorer's "
            f"scores do not rise with the label (held-out AUROC {results['heldout']['before']['auroc']:.3f})"
        )
    else:
        fresh = read_manifest(scorer_dir)  # as it is now, so nothing written to it meanwhile is lost
        results["replaced"] = fresh.get(CALIBRATION_KEY)
        write_json(manifest_path, {**fresh, CALIBRATION_KEY: entry})
        results["manifest"] = f"written: {manifest_path}"
    write_json(out / RESULTS_NAME, results)
    write_diagram(out, results)
    before, after = results["heldout"]["before"], results["heldout"]["after"]
    print(
        json.dumps(
            {
                "scale": entry["scale"],
                "bias": entry["bias"],
                "target": entry["target"],
                "heldout_points": len(held_points[0]),
                "ece_before": before["ece"],
                "ece_after": after["ece"],
                "log_loss_before": before["log_loss"],
                "log_loss_after": after["log_loss"],
                "results": str(out / RESULTS_NAME),
                "manifest": results["manifest"],
            }
        )
    )
    return 0


def write_diagram(out: Path, results: dict) -> None:
    """calibration.png: the held-out reliability before and after the fit."""
    from rewardmodels.eval.calibration_plot import write_reliability_diagram

    held = results["heldout"]
    title = f"{Path(results['scorer']).name}: held-out {results['target']} calibration"
    write_reliability_diagram(out / DIAGRAM_NAME, {"before": held["before"], "after": held["after"]}, title)


__all__ = ["main", "resolve_score_scale", "score_chunk", "score_rows"]
