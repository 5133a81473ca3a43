"""`rewardmodels score`: score a file of prompt/response rows with a scorer directory."""

from __future__ import annotations

import json
from pathlib import Path

from rewardmodels.cli_common import (
    ArgumentParser,
    add_progress_argument,
    add_scorer_arguments,
    progress_bar,
    progress_bars,
    scorer_keywords,
)
from rewardmodels.data_builders.schema import scoring_row_errors, validate_rows
from rewardmodels.errors import InputError
from rewardmodels.io import read_rows, write_jsonl


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="rewardmodels score", description=__doc__)
    parser.add_argument("scorer", help="Scorer directory written by `rewardmodels export`.")
    parser.add_argument(
        "--input",
        "-i",
        required=True,
        help="Rows in .jsonl/.json/.parquet with a prompt and a response field.",
    )
    parser.add_argument(
        "--output",
        "-o",
        required=True,
        help="JSONL to write: each input row plus a `score` field (written atomically).",
    )
    parser.add_argument(
        "--prompt-field", default="prompt", help="Column holding the prompt (string or chat messages)."
    )
    parser.add_argument(
        "--response-field", default="response", help="Column holding the response (string or chat messages)."
    )
    parser.add_argument("--batch-size", type=int, default=16, help="Sequences per forward pass.")
    parser.add_argument("--chunk-size", type=int, default=256, help="Rows scored per progress-bar update.")
    parser.add_argument(
        "--normalize", action="store_true", help="Standardise scores with the manifest's reward mean and std."
    )
    parser.add_argument(
        "--calibrated",
        action="store_true",
        help="Calibrated probabilities sigmoid(a * z + b), with the fit `rewardmodels calibrate` stored in the "
        "manifest (as as_reward_func(calibrated=True) gives them). Not with --normalize.",
    )
    add_progress_argument(parser)
    add_scorer_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.calibrated and args.normalize:
        parser.error("--calibrated and --normalize exclude each other: a calibrated score is a probability")
    # Every row's fields are checked (and an empty file refused) before the scorer loads.
    checks = scoring_row_errors(args.prompt_field, args.response_field)
    rows, _ = validate_rows(
        read_rows(args.input), checks, source=args.input, hint="See --prompt-field/--response-field."
    )
    from rewardmodels.scorers import MANIFEST_NAME, ScorerOptions, load_scorer
    from rewardmodels.scorers.capabilities import NormalizesScores, ReportsTruncation
    from rewardmodels.scorers.reward_funcs import RewardOptions, scorer_calibration

    scorer = load_scorer(args.scorer, options=ScorerOptions.from_keywords(**scorer_keywords(args)))
    if args.normalize and not isinstance(scorer, NormalizesScores):
        reason = f"--normalize: this {scorer.kind} scorer has no reward statistics to normalise with"
        raise InputError(None, None, None, reason)
    calibration = None
    if args.calibrated:
        try:
            RewardOptions(calibrated=True).check(scorer)  # a fit that applies to `score`, as a reward's
        except ValueError as e:
            raise InputError(Path(args.scorer) / MANIFEST_NAME, None, "calibration", str(e)) from None
        calibration = scorer_calibration(scorer)
    scores: list[float] = []
    truncated = 0 if isinstance(scorer, ReportsTruncation) else None
    with (
        progress_bars(not args.no_progress),
        progress_bar(total=len(rows), desc="scoring", unit="row") as bar,
    ):
        for start in range(0, len(rows), args.chunk_size):
            chunk = rows[start : start + args.chunk_size]
            values = scorer.score(
                [r[args.prompt_field] for r in chunk],
                [r[args.response_field] for r in chunk],
                args.batch_size,
            )
            if args.normalize:
                values = scorer.normalize(values)
            elif calibration is not None:
                values = calibration.probabilities(values)
            scores += values
            if truncated is not None:
                truncated += sum(scorer.last_truncated)
            bar.update(len(chunk))
    write_jsonl(args.output, ({**row, "score": s} for row, s in zip(rows, scores, strict=True)))
    print(json.dumps({"rows": len(rows), "output": args.output, "truncated": truncated}))
    return 0
