"""`rewardmodels eval robustness`: does a reward model keep its ranking when only the surface changes?

    rewardmodels eval robustness --scorer outputs/demo/scorer --scorer outputs/crome/scorer \\
        --dataset ../shared/data/rewardbench_sample.jsonl [--style-dataset rmbench.jsonl] [--max-rows 60]

- reWordBench-style: every meaning-preserving transform of `rewardmodels.data_builders.spurious` rewrites
  the chosen and rejected responses (`--apply-to both`, or only one side) of a RewardBench-format file;
  each transform's accuracy is reported next to the original's, with the drop and the share of flipped pairs.
- Length bias: the original accuracy split by whether the chosen response is the longer or the shorter one.
- Style matrix: rows in RM-Bench's format (`prompt`, `chosen` and `rejected` each a list of 3 responses:
  concise, detailed plain, detailed markdown; optional `id` and `domain`) give the 3x3 accuracy matrix and
  its hard / normal / easy accuracies.
Each variant's calibration (ECE, Brier, AUROC of sigmoid(chosen - rejected), as RewardBench's:
`eval/calibration.py`) goes into results.json and report.md, and each scorer's original and style curves
into calibration.png. Formulas: `eval/robustness_metrics.py`. Several `--scorer`s are scored one after the
other and reported side by side in results.json, report.md and report.png.

Scoring goes through the RewardBench runner (`eval/rewardbench/runner.py`): each example's responses are
one group for `rewardmodels.scorers.groups`, so any scorer kind works, and every variant (original, each
transform, style) journals its records in its own folder, so a killed run resumes and a rerun scores
nothing. A transform only re-scores the pairs it changed; the others keep their original records. Every
input row is validated before any model loads.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import logging
import re
import sys
from pathlib import Path

from rewardmodels.cli_common import (
    ArgumentParser,
    add_output_dir_argument,
    add_progress_argument,
    add_scorer_arguments,
    run_command,
    scorer_keywords,
    setup_logging,
    usage_error,
)
from rewardmodels.data_builders.schema import (
    DataValidationError,
    RowError,
    is_messages,
    text_of,
    validate_rows,
)
from rewardmodels.data_builders.spurious import TRANSFORMS, parse_transform_names, transform_response
from rewardmodels.errors import InputError
from rewardmodels.eval.calibration import pair_calibration
from rewardmodels.eval.rewardbench.data import Example, PreparedData, load_rows, prepare_examples
from rewardmodels.eval.robustness_metrics import (
    STYLES,
    accuracy,
    length_bias,
    style_summary,
    transform_effect,
)
from rewardmodels.io import read_rows, write_json

logger = logging.getLogger("rewardmodels.eval.robustness")

APPLY_TO = ("both", "chosen", "rejected")
STYLE_HINT = "RM-Bench rows: prompt, chosen and rejected as lists of 3 responses (concise, plain, markdown)."


# ---- data --------------------------------------------------------------------------------------------


def evenly_spaced(items: list, k: int | None) -> list:
    """At most k items at positions floor(i * n / k), i = 0..k-1: every part of a file sorted by subset."""
    if k is None or k >= len(items):
        return items
    return [items[i * len(items) // k] for i in range(k)]


def load_pairs(path: str, max_rows: int | None, drop_malformed: bool) -> PreparedData:
    """RewardBench v1 rows (`prompt`, `chosen`, `rejected`, optional `subset`, `id`), validated."""
    data = prepare_examples(load_rows(path), 1, drop_malformed=drop_malformed, source=path)
    data.examples = evenly_spaced(data.examples, max_rows)
    return data


def style_row_errors(row, i: int) -> list[RowError]:
    """`prompt` text or messages; `chosen` and `rejected` lists of 3 non-empty strings; `domain` a string
    and `id` an int or string when present."""
    if not isinstance(row, dict):
        return [RowError(i, "<row>", "wrong type", f"expected an object, got {type(row).__name__}")]
    errors = []
    if not (isinstance(row.get("prompt"), str) or is_messages(row.get("prompt"))):
        errors.append(RowError(i, "prompt", "wrong type", "expected a string or chat messages"))
    for name in ("chosen", "rejected"):
        value = row.get(name)
        if not (isinstance(value, list) and len(value) == len(STYLES)):
            errors.append(RowError(i, name, "wrong type", f"expected a list of {len(STYLES)} responses"))
        elif not all(isinstance(v, str) and v.strip() for v in value):
            errors.append(RowError(i, name, "empty response", "every response must be a non-empty string"))
    if row.get("domain") is not None and not isinstance(row["domain"], str):
        errors.append(RowError(i, "domain", "wrong type", "expected a string"))
    rid = row.get("id")
    if rid is not None and (isinstance(rid, bool) or not isinstance(rid, int | str)):
        errors.append(RowError(i, "id", "wrong type", "expected an int or a string"))
    return errors


def load_style_rows(path: str, max_rows: int | None) -> list[Example]:
    rows, _ = validate_rows(read_rows(path), style_row_errors, source=path, hint=STYLE_HINT)
    examples, seen = [], {}
    for i, row in enumerate(rows):
        ex = Example(
            i,
            row.get("id", i),
            row.get("domain") or "all",
            row["prompt"],
            [*row["chosen"], *row["rejected"]],
            3,
        )
        if ex.key in seen:
            error = RowError(i, "id", "duplicate id", f"id {ex.id!r} repeats row {seen[ex.key] + 1}")
            raise DataValidationError([error], path, STYLE_HINT)
        seen[ex.key] = i
        examples.append(ex)
    return evenly_spaced(examples, max_rows)


def transformed_examples(examples: list[Example], name: str, apply_to: str) -> list[Example]:
    """The examples transform `name` changes, rewritten (chosen, rejected or both)."""
    out = []
    for ex in examples:
        chosen, rejected = ex.responses
        new_c = transform_response(name, chosen) if apply_to in ("both", "chosen") else chosen
        new_r = transform_response(name, rejected) if apply_to in ("both", "rejected") else rejected
        if new_c is not chosen or new_r is not rejected:
            out.append(Example(ex.index, ex.id, ex.subset, ex.prompt, [new_c, new_r], 1))
    return out


def _digest(examples: list[Example]) -> str:
    blob = json.dumps([[e.prompt, e.responses] for e in examples], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# ---- scoring -----------------------------------------------------------------------------------------


def _run(scorer, examples, version, folder: Path, desc: dict, variant: str, batch_size, overwrite, progress):
    from rewardmodels.eval.rewardbench.runner import run_rewardbench

    data = PreparedData(examples, version, len(examples))
    info = {
        "model": desc.get("path"),
        "fingerprint": {"scorer": desc, "variant": variant, "texts": _digest(examples)},
    }
    outcome = run_rewardbench(
        scorer, data, folder, batch_size=batch_size, run_info=info, overwrite=overwrite,
        progress=progress, write_reports=False,
    )  # fmt: skip
    truncated = outcome.results["data"]["truncated_examples"] or 0
    return {json.dumps(list(e.key)): r for e, r in zip(examples, outcome.records, strict=True)}, truncated


def evaluate_scorer(
    scorer,
    desc: dict,
    out: Path,
    pairs: list[Example] | None,
    transforms: list[str],
    apply_to: str,
    style: list[Example] | None,
    batch_size: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> dict:
    """One scorer's robustness summary; each variant's records are journalled under `out`."""
    summary: dict = {"scorer": desc, "truncated_examples": 0, "calibration": {}}
    args = (batch_size, overwrite, progress)
    if pairs:
        keys = [json.dumps(list(e.key)) for e in pairs]
        original, cut = _run(scorer, pairs, 1, out / "original", desc, "original", *args)
        summary["truncated_examples"] += cut
        base = [original[k] for k in keys]
        summary["original"] = {"pairs": len(base), "accuracy": accuracy(base)}
        summary["calibration"]["original"] = pair_calibration(base)
        lengths = [(len(text_of(e.responses[0])), len(text_of(e.responses[1]))) for e in pairs]
        summary["length_bias"] = length_bias(base, lengths)
        summary["transforms"] = {}
        for name in transforms:
            changed = transformed_examples(pairs, name, apply_to)
            records = dict(original)
            if changed:
                scored, cut = _run(
                    scorer, changed, 1, out / f"transform-{name}", desc, f"{name}:{apply_to}", *args
                )
                records.update(scored)
                summary["truncated_examples"] += cut
            moved = {json.dumps(list(e.key)) for e in changed}
            summary["transforms"][name] = transform_effect(
                base, [records[k] for k in keys], [k in moved for k in keys]
            )
            summary["calibration"][name] = pair_calibration([records[k] for k in keys])  # all pairs
    if style:
        records, cut = _run(scorer, style, 2, out / "style", desc, "style", *args)
        summary["truncated_examples"] += cut
        ordered = [records[json.dumps(list(e.key))] for e in style]
        summary["style"] = style_summary(ordered, [e.subset for e in style])
        summary["calibration"]["style"] = pair_calibration(ordered)  # every chosen_i x rejected_j
    return summary


# ---- command line ------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="rewardmodels eval robustness", description=__doc__)
    p.add_argument("--scorer", action="append", required=True, help="A scorer directory (repeat to compare).")
    p.add_argument("--dataset", default=None, help="RewardBench-format pairs (.jsonl/.json/.parquet).")
    p.add_argument("--style-dataset", default=None, help="RM-Bench-format rows for the 3x3 style matrix.")
    p.add_argument(
        "--transforms", default="all", help=f"Comma-separated transforms: {', '.join(TRANSFORMS)}."
    )
    p.add_argument(
        "--apply-to", choices=APPLY_TO, default="both", help="Which responses a transform rewrites."
    )
    p.add_argument(
        "--max-rows", type=int, default=None, help="Evenly spaced sample of at most N rows per file."
    )
    p.add_argument(
        "--batch-size", type=int, default=None, help="Sequences per forward (default: the scorer's)."
    )
    add_output_dir_argument(p, "Where results and journals go.", default="results/robustness")
    p.add_argument("--drop-malformed", action="store_true", help="Drop and count malformed pair rows.")
    p.add_argument("--overwrite", action="store_true", help="Discard earlier journals in --output-dir.")
    add_progress_argument(p)
    add_scorer_arguments(p, "Token limit per sequence (default: each scorer's own).")
    return p


def _slug(text: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", text.strip("/")).strip("_") or "scorer"
    slug, k = base, 2
    while slug in taken:
        slug, k = f"{base}-{k}", k + 1
    taken.add(slug)
    return slug


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    if not args.dataset and not args.style_dataset:
        raise usage_error(
            "give --dataset (RewardBench-format pairs), --style-dataset (RM-Bench rows) or both"
        )
    try:
        transforms = parse_transform_names(args.transforms)
    except ValueError as e:
        raise InputError(None, None, "--transforms", str(e)) from None
    # Data first: every bad row is reported before a model loads.
    pairs = load_pairs(args.dataset, args.max_rows, args.drop_malformed).examples if args.dataset else None
    style = load_style_rows(args.style_dataset, args.max_rows) if args.style_dataset else None
    from rewardmodels.eval.report import write_text
    from rewardmodels.eval.rewardbench.cli import input_settings
    from rewardmodels.eval.robustness_report import markdown_report, write_calibration_diagram, write_chart
    from rewardmodels.scorers import ScorerOptions, load_scorer, read_manifest

    manifests = {
        path: read_manifest(path) for path in args.scorer
    }  # every directory checked before any loads
    options = ScorerOptions.from_keywords(**scorer_keywords(args))

    out = Path(args.output_dir)
    results = {
        "benchmark": "robustness",
        "dataset": args.dataset,
        "pairs": len(pairs) if pairs else 0,
        "transforms": transforms if pairs else [],
        "apply_to": args.apply_to,
        "style_dataset": args.style_dataset,
        "style_rows": len(style) if style else 0,
        "scorers": {},
    }
    taken: set[str] = set()
    for path in args.scorer:
        scorer = load_scorer(path, options=options)
        desc = {
            "path": str(Path(path).resolve()),
            "kind": manifests[path].get("kind"),
            **input_settings(scorer),
        }
        if options.extra:  # another aggregation is another scoring: its journal is not reused
            desc["scorer_options"] = dict(options.extra)
        folder = out / _slug(path, taken)
        results["scorers"][path] = evaluate_scorer(
            scorer, desc, folder, pairs, transforms, args.apply_to, style,
            args.batch_size, args.overwrite, not args.no_progress,
        )  # fmt: skip
        del scorer
        gc.collect()
        if "torch" in sys.modules and sys.modules["torch"].cuda.is_available():
            sys.modules["torch"].cuda.empty_cache()
    write_json(out / "results.json", results)
    report = markdown_report(results)
    write_text(out / "report.md", report)
    write_chart(out / "report.png", results)
    diagram = write_calibration_diagram(out, results)  # None when no scorer had a scored pair
    print(report)
    print(f"results: {out / 'results.json'}; report: {out / 'report.md'}; chart: {out / 'report.png'}")
    if diagram:
        print(f"calibration: {diagram}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_command("eval robustness", main, None))
