"""`rewardmodels curate`: decontaminate and filter preference pairs, and report what was dropped and why.

    rewardmodels curate PAIRS... [--from-recipe RECIPE.yaml] -o OUT/ [--decontaminate EVAL ...]
        [--scorer DIR ...] [--checkpoints RUN_DIR] [--length-target 0.5]

PAIRS are data specs as training takes them (a canonical .jsonl/.json/.parquet, `hh_rlhf:PATH`,
`prm800k_pairs:PATH?...`, `synthetic:n=...`, each optionally `SPEC|name=NAME`); `--from-recipe` adds a
recipe's `train_data` (with its invalid_rows, column_map and max_train_rows), so curating the shipped mix is
one command. Each pair counts under its row's `source` field, else its spec's name.

Filters, in order (data_builders/curation_steps.py; only those asked for run, and only the ones that need
a model load one):

  --decontaminate   exact prompt match and word 13-gram overlap against evaluation sets
                    (data_builders/decontaminate.py): built-in names rewardbench (v1 and v2 files),
                    processbench and math500 in --eval-data-dir, or any file with a prompt/problem/question
                    field. --decontaminate-action drop (default) or report.
  --scorer          the consistency filter (Skywork-Reward-V2): each pair scored by every scorer directory
                    (and the last --consistency-checkpoints checkpoints of --checkpoints); flagged when every
                    margin s(chosen) - s(rejected) < -tau, then dropped, flipped or reported (--inconsistent).
                    Flipping swaps chosen and rejected and removes the pair's `margin`; ties are never flagged.
  --checkpoints     LIM (LIMR): every pair the run trained on (its trained_keys.json) scored at every
                    checkpoint of a BT run; a_i^k = 1[margin > 0] or sigmoid(margin);
                    s_i = 1 - sum_k (a_i^k - abar^k)^2 / sum_k (1 - abar^k)^2; keep s >= 0.6 (--lim-threshold)
                    or the top --lim-top-fraction. Pairs the run never saw are kept unscored.
  --length-target   per source, rebalance the share of pairs whose chosen is longer (in characters) to the
                    target by dropping a seeded sample of the majority side. The share is always reported.

Scores are cached per scorer in OUT/scores/<name>.jsonl keyed by the pair's hash: a re-run (or one with
another filter setting) scores only pairs it has not seen. Outputs, each written atomically: kept.jsonl
(flipped pairs flipped, each with its `source`), dropped.jsonl (each with `reason`, the filter that dropped
it, and `flags`, all that was found), decisions.jsonl (key, source, action, reasons, and each pair's
consistency margins and LIM score: what `curated=FILE` in a training spec applies, data_builders/mixing.py),
overlaps.jsonl, report.json, report.md, report.png, and with --from-recipe recipe.yaml: the recipe training
on the curated pairs, its held-out split unchanged. docs/curation.md has the details.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from rewardmodels.cli_common import (
    ArgumentParser,
    HelpFormatter,
    add_output_dir_argument,
    add_progress_argument,
    setup_logging,
)
from rewardmodels.data_builders import curation_steps as steps
from rewardmodels.data_builders.curation import LIM_SIGNALS, pair_signal
from rewardmodels.data_builders.decontaminate import (
    BUILTIN_EVALS,
    NGRAM,
    EvalIndex,
    build_index,
    resolve_evals,
)
from rewardmodels.data_builders.mixing import TRAINED_KEYS_FILE, parse_mix, read_trained_keys
from rewardmodels.data_builders.sources import load_rows
from rewardmodels.errors import InputError
from rewardmodels.eval.curate_report import write_report
from rewardmodels.eval.pair_scores import cache_name, fingerprint_of, margins_of, score_pairs
from rewardmodels.eval.run_checkpoints import load_point_scorer, run_points
from rewardmodels.io import atomic_path, read_text, write_jsonl
from rewardmodels.scorers import load_scorer, read_manifest

logger = logging.getLogger("rewardmodels.eval.curate")
DEFAULT_TAU = 1.0
DEFAULT_EVAL_DATA_DIR = "../shared/data"


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="rewardmodels curate", description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("pairs", nargs="*", help="Data specs of preference pairs (as --train_data takes them).")
    p.add_argument("--from-recipe", help="A training recipe YAML: its train_data specs are curated too.")
    add_output_dir_argument(p, "Folder for the curated pairs, caches and report.", required=True)
    p.add_argument("--invalid-rows", choices=("error", "drop"),
                   help="Bad input rows: stop naming the row and field (error), or drop and count them. "
                   "Default: the recipe's invalid_rows, else error.")  # fmt: skip
    p.add_argument("--column-map", help='JSON renaming source columns, e.g. \'{"question": "prompt"}\'.')
    d = p.add_argument_group("decontamination")
    d.add_argument("--decontaminate", nargs="+", action="extend", metavar="EVAL",
                   help=f"Evaluation sets: built-in names ({', '.join(BUILTIN_EVALS)}) or files (.jsonl/.json/"
                   ".parquet with a prompt, problem or question field).")  # fmt: skip
    d.add_argument(
        "--eval-data-dir", default=DEFAULT_EVAL_DATA_DIR, help="Where built-in evaluation sets are found."
    )
    d.add_argument("--decontaminate-action", choices=steps.REPORT_ACTIONS, default="drop",
                   help="drop overlapping pairs, or only report them (overlaps.jsonl either way).")  # fmt: skip
    d.add_argument("--check-responses", action="store_true",
                   help="Also test chosen and rejected: exactly against the evaluation responses, and by n-grams "
                   "against their prompts and responses.")  # fmt: skip
    d.add_argument("--ngram", type=int, default=NGRAM, help="Words per n-gram of the overlap test.")
    c = p.add_argument_group("consistency (Skywork-Reward-V2)")
    c.add_argument("--scorer", action="append", metavar="DIR",
                   help="A scorer directory (`rewardmodels export`); repeat for several. Turns the filter on.")  # fmt: skip
    c.add_argument("--consistency-checkpoints", type=int, default=0, metavar="N",
                   help="Also judge with the last N checkpoints of --checkpoints.")  # fmt: skip
    c.add_argument("--tau", type=float, default=DEFAULT_TAU,
                   help="Flag a pair when every margin is below -tau. The default 1.0 means each scorer gives the "
                   "rejected response at least sigmoid(1) = 73%% under its Bradley-Terry reading.")  # fmt: skip
    c.add_argument("--inconsistent", choices=steps.INCONSISTENT_ACTIONS, default="drop",
                   help="drop the flagged pairs, flip them (chosen and rejected swapped, margin removed), or "
                   "only report them.")  # fmt: skip
    lim = p.add_argument_group("learning impact (LIMR)")
    lim.add_argument("--checkpoints", metavar="RUN_DIR",
                     help="A BT training run's output_dir: every checkpoint-N scores every pair. Turns LIM on.")  # fmt: skip
    lim.add_argument("--lim-signal", choices=LIM_SIGNALS, default="correct",
                     help="a_i^k: correct = 1[margin > 0], sigmoid = sigmoid(margin).")  # fmt: skip
    lim.add_argument(
        "--lim-threshold", type=float, default=0.6, help="Keep pairs with s_i >= this (LIMR's 0.6)."
    )
    lim.add_argument(
        "--lim-top-fraction", type=float, help="Keep the highest-scoring fraction instead of a threshold."
    )
    lim.add_argument("--lim-action", choices=steps.REPORT_ACTIONS, default="drop",
                     help="drop the pairs below, or only report their scores.")  # fmt: skip
    size = p.add_argument_group("length bias")
    size.add_argument("--length-target", type=float,
                      help="Rebalance each source's chosen-longer share (characters) to this, in (0, 1).")  # fmt: skip
    size.add_argument("--seed", type=int, default=0, help="Seed of the rebalancing sample.")
    run = p.add_argument_group("scoring")
    run.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available).")
    run.add_argument("--batch-size", type=int, help="Sequences per forward (default: 1 on CPU, else 16).")
    run.add_argument("--rescore", action="store_true", help="Discard cached scores and score again.")
    add_progress_argument(run)
    return p


def read_recipe(path: str) -> dict:
    import yaml

    try:
        recipe = yaml.safe_load(read_text(path))
    except yaml.YAMLError as e:
        raise InputError(path, None, None, f"not valid YAML ({e})") from None
    data = recipe.get("train_data") if isinstance(recipe, dict) else None
    if isinstance(data, str):
        recipe["train_data"] = data = [data]
    if not isinstance(data, list) or not data or not all(isinstance(s, str) for s in data):
        raise InputError(path, None, "train_data", "expected a list of data specs")
    return recipe


def load_pairs(
    specs: list[str], invalid_rows: str, column_map: dict | None, max_rows: int | None
) -> tuple[list, list]:
    """Every spec's validated rows as Pairs (a row's own `source` first, else the spec's name), and one
    {"name", "spec", "rows"} per spec. Bad rows raise before anything is scored."""
    pairs, inputs = [], []
    for mix in parse_mix(specs):
        if mix.curated is not None:
            raise InputError(
                None, None, "train_data", f"{mix.spec} is already curated (curated={mix.curated})",
                hint="Curate the original specs; check a curated set with `rewardmodels curate OUT/kept.jsonl ...`.",
            )  # fmt: skip
        rows, report = load_rows(mix.spec, "preference", column_map, invalid_rows == "drop", max_rows)
        logger.info("%s: %s", mix.name, report)
        pairs += [
            steps.Pair(row, row["source"] if isinstance(row.get("source"), str) else mix.name) for row in rows
        ]
        inputs.append({"name": mix.name, "spec": mix.spec, "rows": len(rows), "validation": str(report)})
    return pairs, inputs


def curated_recipe(recipe: dict, decisions: Path) -> dict:
    """The recipe with `curated=DECISIONS` on every train_data spec and `-curated` on its output_dir."""
    specs = [s + ("," if "|" in s else "|") + f"curated={decisions}" for s in recipe["train_data"]]
    out = {**recipe, "train_data": specs}
    out["output_dir"] = str(recipe.get("output_dir", "outputs/bt")).rstrip("/") + "-curated"
    return out


@dataclass
class Inputs:
    """Everything `main` reads, checked before any model loads."""

    recipe: dict | None
    pairs: list
    described: list[dict]
    index: EvalIndex | None
    points: list
    trained: set[str] | None  # keys of the pairs the checkpoints' run trained on (None: not recorded)


def read_inputs(args) -> Inputs:
    """The recipe, the pairs, the evaluation index, the run's checkpoints and the scorer manifests, each
    refused with an InputError (file, line, field) before anything is scored."""
    recipe = read_recipe(args.from_recipe) if args.from_recipe else None
    specs = list(args.pairs) + (recipe["train_data"] if recipe else [])
    if not specs:
        raise InputError(None, None, "pairs", "nothing to curate: give data specs or --from-recipe")
    check_settings(args)
    column_map = parse_column_map(args.column_map or (recipe or {}).get("column_map"))
    invalid = args.invalid_rows or (recipe or {}).get("invalid_rows") or "error"
    pairs, described = load_pairs(specs, invalid, column_map, (recipe or {}).get("max_train_rows"))
    index = None
    if args.decontaminate:
        index = build_index(
            resolve_evals(args.decontaminate, args.eval_data_dir), args.ngram, args.check_responses
        )
    points = run_points(args.checkpoints) if args.checkpoints else []
    if args.consistency_checkpoints > len(points):
        raise InputError(args.checkpoints, None, None,
                         f"--consistency-checkpoints {args.consistency_checkpoints} but the run has {len(points)}")  # fmt: skip
    for directory in args.scorer:
        read_manifest(directory)
    trained = read_trained_keys(args.checkpoints) if args.checkpoints else None
    if trained is not None and not any(p.key in trained for p in pairs):
        raise InputError(Path(args.checkpoints) / TRAINED_KEYS_FILE, None, None,
                         "none of these pairs is among the pairs this run trained on: no LIM score to give")  # fmt: skip
    if args.checkpoints and trained is None:
        logger.warning(
            "%s has no %s: every pair gets a LIM score, trained on or not",
            args.checkpoints,
            TRAINED_KEYS_FILE,
        )
    return Inputs(recipe, pairs, described, index, points, trained)


def lim_pairs(inputs: Inputs) -> list:
    """The pairs LIM scores: those the run trained on (all, when the run did not record them). A pair the
    run never saw has no learning trajectory to compare, only a generalisation one."""
    return [p for p in inputs.pairs if inputs.trained is None or p.key in inputs.trained]


def score_points(args, inputs: Inputs, out: Path) -> list[dict]:
    """One key -> (chosen, rejected) dict per checkpoint (cached): the LIM pairs at every checkpoint, and the
    pairs the consistency filter judges at the last --consistency-checkpoints ones, which judge them."""
    lim_rows = [p.row for p in lim_pairs(inputs)]
    judged = [p.row for p in steps.consistency_pairs(inputs.pairs)]
    first_judge = len(inputs.points) - args.consistency_checkpoints
    return [
        score_pairs(
            lambda p=p: load_point_scorer(p.path, args.device),
            lim_rows + (judged if k >= first_judge else []),
            out / "scores" / f"{cache_name(p.name, p.path)}.jsonl",
            fingerprint_of(p.path),
            desc=f"scoring {p.name}",
            **scoring_options(args),
        )  # fmt: skip
        for k, p in enumerate(inputs.points)
    ]


def judge_margins(args, pairs: list, points: list, point_scores: list, out: Path) -> dict[str, list[float]]:
    """Margins of the pairs the consistency filter judges, per judge: each --scorer (scored here, cached),
    then the last --consistency-checkpoints checkpoints (already scored)."""
    judged = [p.row for p in steps.consistency_pairs(pairs)]
    margins = {}
    for directory in args.scorer:
        name = Path(directory).name
        scores = score_pairs(lambda d=directory: load_scorer(d, device=args.device), judged,
                             out / "scores" / f"{cache_name(name, directory)}.jsonl", fingerprint_of(directory),
                             desc=f"scoring with {name}", **scoring_options(args))  # fmt: skip
        margins[str(directory)] = margins_of(scores, judged)
    last = len(points) - args.consistency_checkpoints
    for point, scores in list(zip(points, point_scores, strict=True))[last:]:
        margins[f"{args.checkpoints}/{point.name}"] = margins_of(scores, judged)
    return margins


def lim_report(args, pairs: list, points: list, point_scores: list, everyone: int) -> dict:
    """LIM over `pairs` (`lim_pairs`) from the checkpoints' margins, applied by `curation_steps.lim`."""
    rows = [p.row for p in pairs]
    per_point = [margins_of(scores, rows) for scores in point_scores]
    signals = [[pair_signal(m[i], args.lim_signal) for m in per_point] for i in range(len(rows))]
    threshold = None if args.lim_top_fraction is not None else args.lim_threshold
    found = steps.lim(pairs, signals, threshold, args.lim_top_fraction, args.lim_action)
    return {
        **found,
        "signal": args.lim_signal,
        "checkpoints": [p.name for p in points],
        "run": args.checkpoints,
        "pairs_scored": len(pairs),
        "pairs_not_trained_on": everyone - len(pairs),
    }


def scoring_options(args) -> dict:
    return {"batch_size": args.batch_size, "progress": not args.no_progress, "rescore": args.rescore}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.scorer, args.decontaminate = args.scorer or [], args.decontaminate or []
    setup_logging()
    out = Path(args.output_dir)
    inputs = read_inputs(args)
    pairs, points = inputs.pairs, inputs.points
    report: dict = {"inputs": inputs.described}
    if inputs.index is not None:
        found = steps.decontaminate(pairs, inputs.index, args.decontaminate_action, args.check_responses)
        report["decontamination"] = {**found, "ngram": args.ngram, "check_responses": args.check_responses,
                                     "files": inputs.index.files, "eval_rows": inputs.index.rows}  # fmt: skip
    point_scores = score_points(args, inputs, out)
    if args.scorer or args.consistency_checkpoints:
        margins = judge_margins(args, pairs, points, point_scores, out)
        report["consistency"] = steps.consistency(pairs, margins, args.tau, args.inconsistent)
    if points:
        report["lim"] = lim_report(args, lim_pairs(inputs), points, point_scores, len(pairs))
    report["length"] = steps.length(pairs, args.length_target, args.seed)
    report["counts"] = steps.counts(pairs)
    write_outputs(out, pairs, report, inputs.recipe)
    print_summary(report, out)
    return 0


def check_settings(args) -> None:
    """Refuse out-of-range settings before anything loads."""
    if args.length_target is not None and not 0.0 < args.length_target < 1.0:
        raise InputError(None, None, "--length-target", f"must be in (0, 1), got {args.length_target}")
    if args.lim_top_fraction is not None and not 0.0 < args.lim_top_fraction <= 1.0:
        raise InputError(None, None, "--lim-top-fraction", f"must be in (0, 1], got {args.lim_top_fraction}")
    if args.ngram < 1:
        raise InputError(None, None, "--ngram", f"must be at least 1, got {args.ngram}")
    if args.consistency_checkpoints and not args.checkpoints:
        raise InputError(None, None, "--consistency-checkpoints", "needs --checkpoints RUN_DIR")


def parse_column_map(value) -> dict | None:
    """A column map given as JSON text (the flag, or a recipe's string) or a mapping (a recipe's YAML)."""
    if value is None or isinstance(value, dict):
        return value
    try:
        mapping = json.loads(value)
    except json.JSONDecodeError as e:
        raise InputError(None, None, "--column-map", f"not a JSON object ({e})") from None
    if not isinstance(mapping, dict):
        raise InputError(None, None, "--column-map", "expected a JSON object of source -> canonical names")
    return mapping


def write_outputs(out: Path, pairs: list, report: dict, recipe: dict | None) -> None:
    """kept, dropped, decisions and overlaps as JSONL, the report, and the curated recipe (atomically)."""
    kept = write_jsonl(out / "kept.jsonl", (p.output_row() for p in pairs if p.active))
    write_jsonl(out / "dropped.jsonl", ({**p.row, "source": p.source, "reason": p.reasons[-1], "reasons": p.reasons,
                                         "flags": p.flags} for p in pairs if not p.active))  # fmt: skip
    # every pair's decision, with the scores behind it (margins per judge, LIM); overlaps have their own file
    write_jsonl(out / "decisions.jsonl", ({"key": p.key, "source": p.source, "action": p.action, "reasons": p.reasons,
                                           **{k: v for k, v in p.flags.items() if k != "overlaps"}} for p in pairs))  # fmt: skip
    write_jsonl(out / "overlaps.jsonl", ({"key": p.key, "source": p.source, "action": p.action,
                                          "overlaps": p.flags["overlaps"]} for p in pairs if "overlaps" in p.flags))  # fmt: skip
    outputs = {name: str(out / f"{name}.jsonl") for name in ("kept", "dropped", "decisions", "overlaps")}
    if recipe is not None:
        import yaml

        with atomic_path(out / "recipe.yaml") as tmp:
            header = (
                f"# Written by `rewardmodels curate -o {out}`: the recipe on its curated pairs (report.md).\n"
            )
            tmp.write_text(
                header + yaml.safe_dump(curated_recipe(recipe, out / "decisions.jsonl"), sort_keys=False)
            )
        outputs["recipe"] = str(out / "recipe.yaml")
    report["outputs"] = {**outputs, "kept_rows": kept, "report": str(out / "report.md")}
    write_report(out, report)


def print_summary(report: dict, out: Path) -> None:
    print(f"{'source':<18} {'read':>7} {'kept':>7} {'flipped':>8} {'dropped':>8}  reasons")
    for name, entry in report["counts"].items():
        reasons = ", ".join(f"{r}: {n}" for r, n in entry["reasons"].items())
        print(
            f"{name:<18} {entry['read']:>7} {entry['kept']:>7} {entry['flipped']:>8} {entry['dropped']:>8}  {reasons}"
        )
    print(f"wrote {out}/kept.jsonl, dropped.jsonl, decisions.jsonl, report.md, report.json, report.png")
