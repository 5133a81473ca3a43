"""The `rewardmodels eval processbench` command line: flags, loading the scorer, printing the summary.

The evaluation itself (data, scoring with a journal, metric, outputs) is `rewardmodels.eval.processbench`.
"""

from __future__ import annotations

from pathlib import Path

from rewardmodels.cli_common import (
    ArgumentParser,
    add_output_dir_argument,
    add_progress_argument,
    add_scorer_arguments,
    progress_bars,
    scorer_keywords,
    setup_logging,
    usage_error,
)
from rewardmodels.eval import processbench, processbench_threshold


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="rewardmodels eval processbench", description=processbench.__doc__)
    parser.add_argument("--scorer", default=None, help="Scorer directory written by `rewardmodels export`.")
    parser.add_argument(
        "--reuse-scores",
        default=None,
        metavar="PREDICTIONS_JSONL",
        help="Take step scores from an earlier run's predictions.jsonl instead of scoring (e.g. to tune t).",
    )
    parser.add_argument(
        "--dataset", nargs="+", default=[], help="Local ProcessBench files (official schema, .json/.jsonl)."
    )
    parser.add_argument(
        "--hub",
        nargs="*",
        default=None,
        metavar="SUBSET",
        help=f"Load subsets of {processbench.HUB_ID} from the Hub "
        f"(all of {', '.join(processbench.HUB_SUBSETS)} when none are named).",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="t: a step scored below t is an error (default: the threshold stored in the scorer's manifest "
        f"by --store-threshold, else {processbench_threshold.DEFAULT_THRESHOLD}).",
    )
    parser.add_argument(
        "--tune-threshold-on",
        default=None,
        metavar="SUBSET",
        help="Pick t to maximise this subset's F1 and apply it to all subsets (reported as such).",
    )
    parser.add_argument(
        "--store-threshold",
        action="store_true",
        help="With --scorer and --tune-threshold-on: write the tuned t, with the subset and step reading it "
        "was chosen on, into the scorer's reward_model.json (processbench_threshold), so later runs on other "
        "subsets use it out of sample.",
    )
    parser.add_argument("--limit", type=int, default=None, help="Score only the first N rows of each subset.")
    add_output_dir_argument(parser, "Where to write results (default: results/processbench/<scorer>).")
    parser.add_argument("--batch-size", type=int, default=16, help="Solutions per forward pass.")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="Discard step scores journalled in --output-dir by an earlier run.",
    )
    add_progress_argument(parser)
    add_scorer_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    if bool(args.scorer) == bool(args.reuse_scores):
        raise usage_error("give exactly one of --scorer and --reuse-scores")
    if args.store_threshold and not (args.scorer and args.tune_threshold_on):
        raise usage_error("--store-threshold needs --scorer and --tune-threshold-on")
    with progress_bars(not args.no_progress):
        return evaluate(args)


def evaluate(args) -> int:
    """The evaluation the parsed flags describe: data, scoring (or reused scores), results, the summary."""
    from rewardmodels.scorers import ScorerOptions

    load_options = ScorerOptions.from_keywords(**scorer_keywords(args))
    options = dict(load_options.extra)
    hub = list(processbench.HUB_SUBSETS) if args.hub == [] else (args.hub or [])
    examples = processbench.load_examples(args.dataset, hub, args.limit)
    if args.reuse_scores:
        processbench.attach_saved_scores(examples, args.reuse_scores)
        scorer, name = None, Path(args.reuse_scores).resolve().parent.name
    else:
        from rewardmodels.scorers import load_scorer

        scorer = load_scorer(args.scorer, options=load_options)
        name = Path(args.scorer).resolve().name
    output_dir = args.output_dir or Path("results") / "processbench" / name
    extra = {
        "scorer": str(args.scorer or args.reuse_scores),
        "datasets": list(args.dataset),
        "hub_subsets": hub,
    }
    if args.reuse_scores:
        extra["scores_reused_from"] = str(args.reuse_scores)
    if args.limit:
        extra["limit"] = args.limit
    stored = processbench_threshold.stored_threshold(args.scorer) if args.scorer else None
    threshold, source, stored_on = processbench_threshold.resolve_threshold(
        args.threshold, args.tune_threshold_on, stored, options
    )
    if stored_on is not None:  # t from the manifest: say so, and label each subset in- or out-of-sample
        subsets = list(dict.fromkeys(e["subset"] for e in examples))
        extra.update(
            {"threshold_source": source, **processbench_threshold.stored_provenance(stored, subsets)}
        )
    fingerprint = {
        "scorer": str(Path(args.scorer).resolve()) if args.scorer else None,
        "max_length": args.max_length,
        "dtype": args.dtype,
        **({"scorer_options": options} if options else {}),
    }
    results = processbench.run(
        scorer,
        examples,
        output_dir,
        threshold,
        args.tune_threshold_on,
        args.batch_size,
        name,
        extra,
        fingerprint=fingerprint,
        overwrite=args.overwrite,
    )
    for subset, m in results["subsets"].items():
        print(
            f"{subset}: acc_erroneous={_pct(m['acc_erroneous'])} acc_correct={_pct(m['acc_correct'])} "
            f"F1={_pct(m['f1'])} (n={m['n']})"
        )
    print(f"average F1={_pct(results['average']['f1'])}; written to {output_dir}")
    if stored_on is not None:
        print(f"threshold {threshold:.6g} from the scorer manifest, tuned on {stored_on}")
    if args.store_threshold:
        from rewardmodels.scorers import read_manifest

        record = processbench_threshold.threshold_record(
            results, read_manifest(args.scorer), options, args.max_length
        )
        path = processbench_threshold.store_threshold(args.scorer, record)
        print(f"stored threshold {record['value']:.6g} (tuned on {record['tuned_on']}) in {path}")
    return 0


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}"
