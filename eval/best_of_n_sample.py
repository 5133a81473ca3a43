"""`rewardmodels eval best-of-n sample`: N candidate solutions per problem, sampled by a generator model.

Every sample is cached on disk (`rewardmodels.sampling`), so an interrupted or repeated run samples nothing
twice. The rows written are what `rewardmodels eval best-of-n` reads: id, problem, answer, candidates and the
generator's fingerprint. Problem rows are checked before the generator loads.
"""

from __future__ import annotations

from collections.abc import Sequence

from rewardmodels.cli_common import ArgumentParser, progress_bar, progress_bars, setup_logging
from rewardmodels.data_builders.schema import RowError, validate_rows
from rewardmodels.io import read_rows, write_jsonl

PROBLEM_FIELDS = ("problem", "prompt", "question")  # the first that holds a string is the problem


def problem_text(raw: dict) -> str | None:
    return next((raw[k] for k in PROBLEM_FIELDS if isinstance(raw.get(k), str)), None)


def problem_row_errors(raw, i: int) -> list[RowError]:
    """Problems with problem row `i`: a `problem` (or `prompt` / `question`) string and an `answer`."""
    if not isinstance(raw, dict):
        return [RowError(i, "<row>", "wrong type", f"expected an object, got {type(raw).__name__}")]
    errors = []
    if problem_text(raw) is None:
        errors.append(
            RowError(i, "problem", "missing field", "a 'problem' (or 'prompt' / 'question') string")
        )
    if "answer" not in raw:
        errors.append(RowError(i, "answer", "missing field", "required"))
    return errors


def sample_candidates(problems: Sequence[dict], sampler, n: int, source: str = "problems") -> list[dict]:
    """N cached samples per problem row (`problem_row_errors` says what a row needs) as candidate rows."""
    validate_rows(problems, problem_row_errors, source=source, hint=None)
    rows = []
    for i, raw in enumerate(progress_bar(problems, desc="sampling candidates", unit="problem")):
        problem = problem_text(raw)
        rows.append(
            {
                "id": str(raw.get("unique_id", raw.get("id", i))),
                "problem": problem,
                "answer": str(raw["answer"]),
                "candidates": sampler.samples(problem, [], n),
                "generator": sampler.generator.fingerprint,
            }
        )
    return rows


def build_parser() -> ArgumentParser:
    from rewardmodels.sampling import add_sampling_arguments

    parser = ArgumentParser(
        prog="rewardmodels eval best-of-n sample",
        description="Sample N candidate solutions per problem with a generator model (cached on disk).",
    )
    parser.add_argument("--problems", required=True, help="Rows with problem and answer (e.g. MATH-500).")
    parser.add_argument("--output", "-o", required=True, help="Candidate JSONL to write (atomically).")
    parser.add_argument("--n", type=int, default=8, help="Candidates per problem.")
    parser.add_argument("--limit", type=int, default=None, help="Only the first N problems.")
    add_sampling_arguments(parser, "Tokens per candidate.")
    return parser


def main(argv: list[str] | None = None) -> int:
    from rewardmodels.sampling import open_sampler

    args = build_parser().parse_args(argv)
    setup_logging()
    problems = read_rows(args.problems)[: args.limit]
    validate_rows(problems, problem_row_errors, source=args.problems, hint=None)  # before the generator loads
    sampler = open_sampler(args)
    try:
        with progress_bars(not args.no_progress):
            rows = sample_candidates(problems, sampler, args.n, args.problems)
    finally:
        sampler.cache.close()
    write_jsonl(args.output, rows)
    print(
        f"wrote {len(rows)} problems x {args.n} candidates to {args.output}; "
        f"{sampler.generated} samples generated, {sampler.hits} from the cache"
    )
    return 0
