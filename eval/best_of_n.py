"""`rewardmodels eval best-of-n`: how much a scorer gains by picking among N sampled solutions.

Input: one row per problem with `problem`, the gold `answer`, and `candidates` (N solution texts). Each
candidate's final answer is compared with the gold answer, and candidates with each other, by math-verify.
Reported, as fractions of problems:
  top1               the candidate the scorer ranks highest is correct (ties: the earliest candidate)
  majority           the most frequent answer is correct (ties: the answer seen first)
  weighted_majority  the answer with the largest summed score is correct (scores in [0, 1] are used as they
                     are, others through a sigmoid, so that weights are positive; see --weights)
  pass_at_n          some candidate is correct (the oracle)
  random             expected accuracy of a uniformly random candidate (the share of correct candidates)
and the same for the first k candidates, k = 1, 2, 4, ... up to N. Calibration (`eval/calibration.py`): ECE,
Brier and AUROC of every candidate's score as P(correct) against its verdict, and calibration.png.

`rewardmodels eval best-of-n sample` (`best_of_n_sample.py`) builds the candidates with a generator model.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

from rewardmodels.cli_common import (
    ArgumentParser,
    add_output_dir_argument,
    add_progress_argument,
    add_scorer_arguments,
    progress_bar,
    progress_bars,
    scorer_keywords,
    setup_logging,
)
from rewardmodels.data_builders.schema import RowError, validate_rows
from rewardmodels.errors import InputError
from rewardmodels.eval import calibration
from rewardmodels.io import read_rows, write_json, write_jsonl
from rewardmodels.scorers.capabilities import ReportsCompute

logger = logging.getLogger("rewardmodels")

METRICS = ("top1", "majority", "weighted_majority", "pass_at_n", "random")


# ---- answers ----------------------------------------------------------------------------------------------------


def candidate_row_errors(raw, i: int) -> list[RowError]:
    """Problems with candidate row `i`: `problem` (or `prompt`) a string, `answer` the gold answer (a string
    or a number), `candidates` a non-empty list of texts (strings or {"text": ...})."""
    if not isinstance(raw, dict):
        return [RowError(i, "<row>", "wrong type", f"expected an object, got {type(raw).__name__}")]
    errors = []
    if not isinstance(raw.get("problem", raw.get("prompt")), str):
        errors.append(RowError(i, "problem", "wrong type", "expected a string"))
    answer = raw.get("answer")
    if isinstance(answer, bool) or not isinstance(answer, str | int | float):
        errors.append(RowError(i, "answer", "wrong type", "expected the gold answer"))
    cands = raw.get("candidates")
    if not isinstance(cands, list) or not cands:
        errors.append(RowError(i, "candidates", "wrong type", "expected a non-empty list"))
    elif not all(isinstance(candidate_text(c), str) for c in cands):
        errors.append(RowError(i, "candidates", "wrong type", "every candidate must be text"))
    return errors


def candidate_text(candidate):
    return candidate.get("text") if isinstance(candidate, dict) else candidate


def load_candidates(path: str) -> list[dict]:
    """Candidate rows: problem (or prompt), answer, candidates (strings or {"text": ...}). Every bad row is
    reported at once, by the file's line and field."""
    raw_rows = read_rows(path)
    if not raw_rows:
        raise InputError(path, None, None, "no candidate rows: the file is empty")
    raw_rows, _ = validate_rows(raw_rows, candidate_row_errors, source=path, hint=None)
    return [
        {
            "id": str(raw.get("id", i)),
            "problem": raw.get("problem", raw.get("prompt")),
            "answer": str(raw["answer"]),
            "candidates": [candidate_text(c) for c in raw["candidates"]],
        }
        for i, raw in enumerate(raw_rows)
    ]


def judge(problem: dict) -> tuple[list[bool], list[int | None]]:
    """Per candidate: whether its answer matches the gold one, and an answer group (None: no answer found).
    Answers are extracted and compared as the MC labeller does (`rewardmodels.answers`); two candidates share
    a group when their answers match."""
    from rewardmodels.answers import answers_match, parse_answer, parse_gold

    gold = parse_gold(problem["answer"])
    correct, groups = [], []
    reps: list[tuple[str, list]] = []  # (extracted string, parsed) of each group's first member
    for text in problem["candidates"]:
        pred = parse_answer(text)
        correct.append(answers_match(gold, pred))
        if not pred:
            groups.append(None)
            continue
        label = str(pred[-1])
        group = next(
            (g for g, (rep_label, rep) in enumerate(reps) if rep_label == label or answers_match(rep, pred)),
            None,
        )
        if group is None:
            reps.append((label, pred))
            group = len(reps) - 1
        groups.append(group)
    return correct, groups


def weight_mode(scores: Sequence[float], how: str = "auto") -> str:
    """'auto' resolves to 'raw' when every score is in [0, 1] (PRM probabilities), else to 'sigmoid'."""
    if how not in ("auto", "raw", "sigmoid"):
        raise ValueError(f"weights must be auto, raw or sigmoid, got {how!r}")
    if how != "auto":
        return how
    return "raw" if all(0.0 <= s <= 1.0 for s in scores if not math.isnan(s)) else "sigmoid"


def to_weights(scores: Sequence[float], mode: str) -> list[float]:
    """Positive vote weights: raw scores, or sigmoid of real-valued ones; unscored (NaN) candidates weigh 0."""
    if mode == "raw":
        return [0.0 if math.isnan(s) else s for s in scores]
    return [0.0 if math.isnan(s) else 1 / (1 + math.exp(-s)) for s in scores]


def _vote(groups: Sequence[int | None], weights: Sequence[float]) -> int | None:
    """The index of the first member of the group with the largest total weight (ties: the group seen first)."""
    totals: dict[int, float] = {}
    first: dict[int, int] = {}
    for i, (g, w) in enumerate(zip(groups, weights, strict=True)):
        if g is None:
            continue
        totals[g] = totals.get(g, 0.0) + w
        first.setdefault(g, i)
    if not totals:
        return None
    best = max(totals, key=lambda g: (totals[g], -first[g]))
    return first[best]


def problem_metrics(
    correct: Sequence[bool], groups: Sequence[int | None], scores: Sequence[float], weights
) -> dict:
    """The five outcomes for one problem's candidates (1.0/0.0, and a fraction for `random`)."""
    ranked = [(-math.inf if math.isnan(s) else s) for s in scores]
    top = max(range(len(ranked)), key=lambda i: (ranked[i], -i))
    majority = _vote(groups, [1.0] * len(groups))
    weighted = _vote(groups, weights)
    return {
        "top1": float(correct[top]),
        "majority": float(majority is not None and correct[majority]),
        "weighted_majority": float(weighted is not None and correct[weighted]),
        "pass_at_n": float(any(correct)),
        "random": sum(correct) / len(correct),
        "top_index": top,
    }


def evaluate(problems: list[dict], weights: str = "auto") -> dict:
    """Metrics over problems that carry `scores`, at N and at every power of two below it."""
    judged = []
    for p in progress_bar(problems, desc="checking answers", unit="problem", disable=len(problems) < 20):
        correct, groups = judge(p)
        p["correct"], p["groups"] = correct, groups
        judged.append(p)
    # One weighting for every problem alike, decided from all scores.
    mode = weight_mode([s for p in judged for s in p["scores"]], weights)
    n_max = max(len(p["candidates"]) for p in judged)
    ks = sorted({k for k in (2**i for i in range(n_max.bit_length())) if k < n_max} | {n_max})
    at_n = {}
    for k in ks:
        per = []
        for p in judged:
            kk = min(k, len(p["candidates"]))
            per.append(
                problem_metrics(
                    p["correct"][:kk], p["groups"][:kk], p["scores"][:kk], to_weights(p["scores"][:kk], mode)
                )
            )
        at_n[str(k)] = {m: sum(x[m] for x in per) / len(per) for m in METRICS}
        if k == n_max:
            for p, x in zip(judged, per, strict=True):
                p["metrics"] = x
    return {
        "n_problems": len(judged),
        "n_candidates": n_max,
        "weights": mode,
        **at_n[str(n_max)],
        "at_n": at_n,
        "calibration": calibration.best_of_n_calibration(judged),  # all N candidates, NaN scores left out
    }


def markdown_report(results: dict, title: str) -> str:
    from rewardmodels.eval.report import markdown_table

    rows = [[k, *(m[x] for x in METRICS)] for k, m in results["at_n"].items()]
    table = markdown_table(
        ["N", *METRICS], rows, percent_columns=(1, 2, 3, 4, 5), align_right=(0, 1, 2, 3, 4, 5)
    )
    return "\n".join(
        [
            f"# Best-of-N: {title}",
            "",
            f"{results['n_problems']} problems, up to {results['n_candidates']} candidates each; answers compared "
            f"with math-verify; vote weights: {results['weights']}. Accuracies in percent.",
            "",
            table,
            "",
            *calibration.markdown_lines({"candidates": results.get("calibration")}),
        ]
    )


JOURNAL_NAME = "scores_journal.jsonl"  # candidate scores, appended chunk by chunk (eval/journal.py)


def _journal_key(record: dict) -> tuple[int, str]:
    return record["problem"], record["id"]


def score_problems(scorer, problems: list[dict], batch_size: int = 16, chunk: int = 16, journal=None) -> None:
    """Fill each problem's `scores`, one per candidate: the candidates go to the scorer as one group per
    problem (`rewardmodels.scorers.groups`: the prompt runs once where the scorer can share it, repeated
    candidates are scored once), `chunk` problems per call.

    With a journal, problems it holds are filled from it, a chunk whose problems are all done is skipped, and
    each scored chunk is appended to it (NaN, an unscored candidate, is stored as null).
    """
    from rewardmodels.scorers.groups import score_response_groups

    done = journal.done if journal is not None else {}
    for i, p in enumerate(problems):
        if (i, p["id"]) in done:
            p["scores"] = [math.nan if s is None else float(s) for s in done[(i, p["id"])]["scores"]]
    for start in progress_bar(range(0, len(problems), chunk), desc="best-of-n scoring", unit="chunk"):
        part = list(range(start, min(start + chunk, len(problems))))
        if all((i, problems[i]["id"]) in done for i in part):
            continue
        prompts = [problems[i]["problem"] for i in part]
        scored = score_response_groups(scorer, prompts, [problems[i]["candidates"] for i in part], batch_size)
        for i, scores in zip(part, scored, strict=True):
            problems[i]["scores"] = scores
        if journal is not None:
            journal.append(
                {
                    "problem": i,
                    "id": problems[i]["id"],
                    "scores": [None if math.isnan(s) else s for s in problems[i]["scores"]],
                }
                for i in part
            )


def _problems_digest(problems: list[dict]) -> str:
    # The candidates' content enters the fingerprint: a re-sampled file under the same name is new data.
    import hashlib
    import json

    text = json.dumps([[p["id"], p["problem"], p["candidates"]] for p in problems], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def run(
    scorer,
    problems: list[dict],
    output_dir: str | Path,
    weights: str = "auto",
    batch_size: int = 16,
    title: str = "scorer",
    extra: dict | None = None,
    fingerprint: dict | None = None,
    overwrite: bool = False,
    chunk: int = 16,
) -> dict:
    """Score every problem's candidates (resuming from the journal in `output_dir`), evaluate, write outputs.

    `fingerprint` (scorer and options) and the problems' content must match the journal's before its scores
    are reused; `overwrite` discards them.
    """
    from rewardmodels.eval.journal import Journal

    settings = {"problems": _problems_digest(problems), **(fingerprint or {})}
    journal = Journal(Path(output_dir) / JOURNAL_NAME, settings, _journal_key, overwrite=overwrite)
    if len(journal):
        logger.info(
            "resuming: %d of %d problems already scored in %s", len(journal), len(problems), output_dir
        )
    score_problems(scorer, problems, batch_size, chunk, journal)
    results = {"benchmark": "best_of_n", **(extra or {}), **evaluate(problems, weights)}
    if isinstance(scorer, ReportsCompute):  # what scoring cost in this run, for compute/accuracy curves
        results["compute"] = scorer.compute_report()
    out = Path(output_dir)
    write_json(out / "results.json", results)
    write_jsonl(
        out / "per_problem.jsonl",
        (
            {
                "id": p["id"],
                "answer": p["answer"],
                "scores": [None if math.isnan(s) else s for s in p["scores"]],
                "correct": p["correct"],
                "answer_groups": p["groups"],
                **p["metrics"],
            }
            for p in problems
        ),
    )
    from rewardmodels.eval.report import write_text

    write_text(out / "results.md", markdown_report(results, title))
    calibration.write_diagram(out, {"candidates": results["calibration"]}, f"Best-of-N: {title}")
    return results


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="rewardmodels eval best-of-n",
        description=__doc__,
        epilog="Build candidates first with: rewardmodels eval best-of-n sample --help",
    )
    parser.add_argument("--scorer", required=True, help="Scorer directory written by `rewardmodels export`.")
    parser.add_argument("--candidates", required=True, help="Candidate JSONL (problem, answer, candidates).")
    parser.add_argument(
        "--weights",
        choices=["auto", "raw", "sigmoid"],
        default="auto",
        help="Vote weights for weighted majority: auto = raw if every score is in [0, 1].",
    )
    parser.add_argument("--limit", type=int, default=None, help="Only the first N problems.")
    add_output_dir_argument(parser, "Where results go (default: results/best_of_n/<scorer>).")
    parser.add_argument("--batch-size", type=int, default=16, help="Sequences per forward pass.")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="Discard candidate scores journalled in --output-dir earlier.",
    )
    add_progress_argument(parser)
    add_scorer_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "sample":
        from rewardmodels.eval.best_of_n_sample import main as sample_main

        return sample_main(argv[1:])
    args = build_parser().parse_args(argv)
    setup_logging()

    from rewardmodels.scorers import ScorerOptions, load_scorer

    problems = load_candidates(args.candidates)[: args.limit]
    options = ScorerOptions.from_keywords(**scorer_keywords(args))
    scorer = load_scorer(args.scorer, options=options)
    name = Path(args.scorer).resolve().name
    out = args.output_dir or Path("results") / "best_of_n" / name
    extra = {"scorer": str(args.scorer), "candidates": args.candidates}
    if args.limit:
        extra["limit"] = args.limit
    fingerprint = {"scorer": str(Path(args.scorer).resolve()), "dtype": args.dtype}
    if args.max_length is not None:  # another cut is another scoring: its journal is not reused
        fingerprint["max_length"] = args.max_length
    if options.extra:  # as is another aggregation
        fingerprint["scorer_options"] = dict(options.extra)
    with progress_bars(not args.no_progress):
        results = run(
            scorer, problems, out, args.weights, args.batch_size, name, extra, fingerprint, args.overwrite
        )
    print(" ".join(f"{m}={100 * results[m]:.1f}" for m in METRICS) + f"; written to {out}")
    return 0
